//! What the user typed that the server is not yet known to have: lines typed while there was no
//! connection (sent after the re-join), and messages sent and not yet echoed back (sent again
//! after a re-join, since the server may never have stamped them).

use std::collections::VecDeque;

use crate::chat::protocol::{ClientFrame, Command, MAX_LINE_BYTES, parse_command};

/// Lines kept while disconnected; beyond it, input is not read until the server is back (a
/// pipe then waits, as it does for a slow server).
pub const MAX_QUEUED_LINES: usize = 10_000;

/// A message sent and not yet echoed back by the server.
#[derive(Debug, Clone)]
struct Unconfirmed {
    /// The line as typed, sent again as it is.
    line: String,
    /// The text the server's echo carries, and whether it is a `/me` action.
    echo: String,
    action: bool,
}

/// The session's typed lines between the keyboard and the room.
#[derive(Debug)]
pub(super) struct Pending {
    /// Whether the server echoes our messages (group or broker mode, or not known yet), so the
    /// ones not echoed back are known to be unconfirmed.
    tracking: bool,
    /// Messages sent and not echoed back yet, oldest first: sent again after a re-join.
    unconfirmed: VecDeque<Unconfirmed>,
    /// Lines typed while there was no connection to send them on, oldest first.
    queued: VecDeque<String>,
}

impl Pending {
    /// Nothing typed yet; echoes are expected until the welcome says otherwise.
    pub(super) fn new() -> Pending {
        Pending {
            tracking: true,
            unconfirmed: VecDeque::new(),
            queued: VecDeque::new(),
        }
    }

    /// False while so many typed lines wait for the server that no more should be read yet.
    pub(super) fn accepts_input(&self) -> bool {
        self.queued.len() < MAX_QUEUED_LINES
    }

    /// Keeps a line typed while it cannot be sent yet.
    pub(super) fn hold(&mut self, line: String) {
        self.queued.push_back(line);
    }

    /// The `msg` frame for a typed line, which is kept until its echo if the server echoes.
    pub(super) fn send(&mut self, line: String) -> Vec<u8> {
        let bytes = ClientFrame::Msg { text: line.clone() }.to_json_line();
        if self.tracking
            && bytes.len() <= MAX_LINE_BYTES
            && let Some((echo, action)) = expected_echo(&line)
        {
            self.unconfirmed
                .push_back(Unconfirmed { line, echo, action });
        }
        bytes
    }

    /// Whether the server echoes our messages; when it does not, none can be confirmed, so
    /// none is kept.
    pub(super) fn track_echoes(&mut self, on: bool) {
        self.tracking = on;
        if !on {
            self.unconfirmed.clear();
        }
    }

    /// Our message `text` came back: it and everything sent before it reached the server (it
    /// handles one connection's lines in order). Text the server changed matches nothing: then
    /// it confirms the oldest.
    pub(super) fn confirm(&mut self, text: &str, action: bool) {
        match self
            .unconfirmed
            .iter()
            .position(|u| u.echo == text && u.action == action)
        {
            Some(at) => drop(self.unconfirmed.drain(..=at)),
            None => drop(self.unconfirmed.pop_front()),
        }
    }

    /// The frames that go once a re-join is complete, in order: every unconfirmed message again,
    /// then each line typed meanwhile (unconfirmed in its turn). `typed` says whether there was
    /// any of the latter.
    pub(super) fn redeliver(&mut self) -> (Vec<Vec<u8>>, bool) {
        let mut frames: Vec<Vec<u8>> = self
            .unconfirmed
            .iter()
            .map(|unconfirmed| {
                ClientFrame::Msg {
                    text: unconfirmed.line.clone(),
                }
                .to_json_line()
            })
            .collect();
        let queued = std::mem::take(&mut self.queued);
        let typed = !queued.is_empty();
        for line in queued {
            frames.push(self.send(line));
        }
        (frames, typed)
    }

    /// Lines the server is not known to have: typed meanwhile, or sent and not confirmed.
    pub(super) fn waiting(&self) -> usize {
        self.queued.len() + self.unconfirmed.len()
    }

    /// True when every message sent has been echoed back (or none is tracked).
    pub(super) fn all_confirmed(&self) -> bool {
        self.unconfirmed.is_empty()
    }
}

/// What the server's echo of a typed line carries (its text, and whether it is a `/me`), for
/// the lines the server turns into messages; None for other commands.
fn expected_echo(line: &str) -> Option<(String, bool)> {
    match parse_command(line) {
        None => Some((line.replace(['\n', '\r'], " "), false)),
        Some(Command::Me(action)) if !action.is_empty() => Some((action, true)),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(frames: &[Vec<u8>]) -> Vec<String> {
        frames
            .iter()
            .map(|frame| {
                let frame: ClientFrame = serde_json::from_slice(frame).unwrap();
                let ClientFrame::Msg { text } = frame else {
                    panic!("{frame:?}")
                };
                text
            })
            .collect()
    }

    #[test]
    fn messages_and_actions_wait_for_their_echo_but_other_commands_do_not() {
        let mut pending = Pending::new();
        for line in ["oi", "/me acena", "/nick bia", "/who", "/me"] {
            pending.send(line.into());
        }
        assert_eq!(pending.waiting(), 2);
        pending.confirm("acena", false);
        assert_eq!(
            pending.waiting(),
            1,
            "an echo that matches nothing confirms the oldest"
        );
        pending.confirm("acena", true);
        assert!(pending.all_confirmed());
    }

    #[test]
    fn an_echo_confirms_its_message_and_every_one_sent_before() {
        let mut pending = Pending::new();
        for line in ["a", "b", "c"] {
            pending.send(line.into());
        }
        pending.confirm("b", false);
        let (frames, typed) = pending.redeliver();
        assert_eq!(texts(&frames), ["c"]);
        assert!(!typed);
    }

    #[test]
    fn after_a_rejoin_the_unconfirmed_go_first_then_the_lines_typed_meanwhile() {
        let mut pending = Pending::new();
        pending.send("sent".into());
        pending.hold("typed 1".into());
        pending.hold("/me typed 2".into());
        assert_eq!(pending.waiting(), 3);
        let (frames, typed) = pending.redeliver();
        assert_eq!(texts(&frames), ["sent", "typed 1", "/me typed 2"]);
        assert!(typed);
        // Still unconfirmed until their echoes come.
        assert_eq!(pending.waiting(), 3);
    }

    #[test]
    fn a_server_that_does_not_echo_keeps_nothing_unconfirmed() {
        let mut pending = Pending::new();
        pending.send("before the welcome".into());
        pending.track_echoes(false);
        assert!(pending.all_confirmed());
        pending.send("after".into());
        assert_eq!(pending.waiting(), 0);
    }

    #[test]
    fn a_line_too_long_for_the_server_is_not_waited_for() {
        let mut pending = Pending::new();
        pending.send("x".repeat(MAX_LINE_BYTES));
        assert!(pending.all_confirmed());
    }

    #[test]
    fn input_waits_once_too_many_lines_are_held() {
        let mut pending = Pending::new();
        for _ in 0..MAX_QUEUED_LINES - 1 {
            pending.hold(String::new());
        }
        assert!(pending.accepts_input());
        pending.hold(String::new());
        assert!(!pending.accepts_input());
    }
}
