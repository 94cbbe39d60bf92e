//! What a client does with each event (a line typed, a line received, end of input, the server
//! closing, the connection lost and made again): the whole of the client's behaviour as a state
//! machine that never touches a socket or a terminal, so it is tested event by event.
//!
//! Surviving a lost server (structured mode): the session keeps the highest sequence number it
//! has shown, asks for what follows it when it re-joins (`hello.last_seq`), never shows a message
//! twice, keeps lines typed while disconnected to send after the re-join, and keeps the messages
//! it sent until the server echoes them back (group mode), resending those the server never
//! stamped.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;

use super::reconnect::{self, Reconnect};
use crate::chat::protocol::{
    ByeCode, ClientFrame, Command, MAX_LINE_BYTES, PROTOCOL_VERSION, ServerFrame, parse_command,
};

/// Lines kept while disconnected; beyond it, input is not read until the server is back (a
/// pipe then waits, as it does for a slow server).
pub const MAX_QUEUED_LINES: usize = 10_000;

/// How the session was asked to behave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Plain text lines, no soquete protocol (talks to nc, ncat, a Python server).
    pub raw: bool,
    /// Question/answer turn-taking: after a line is sent, further lines are refused until the
    /// other side answers.
    pub sync: bool,
    /// The name sent in `hello`.
    pub name: String,
    /// How to reconnect when the server is lost; None: a lost server ends the session (always
    /// so with `raw`: a plain server has no resume).
    pub reconnect: Option<Reconnect>,
}

/// Something that happened to the client.
#[derive(Debug)]
pub enum Event {
    /// A connection is up (the first one, or a new one after a loss).
    Connected {
        local: SocketAddr,
        remote: SocketAddr,
    },
    /// The user entered a line; `terminated` is false for a last line without a newline.
    Typed { text: String, terminated: bool },
    /// Standard input ended (end of a pipe or file, Ctrl-D in the editor).
    InputEnded,
    /// Ctrl-C in the editor: leave at once.
    Interrupted,
    /// One line from the server, without its terminator.
    Received(String),
    /// Bytes from a `--raw` server, as they arrived (no line framing: a prompt without a
    /// newline is shown at once, and output stays byte for byte what the server sent).
    ReceivedRaw(Vec<u8>),
    /// The server sent a line longer than the protocol's limit; its start was dropped.
    Overlong,
    /// The server closed its side cleanly (end of stream).
    ServerClosed,
    /// Reading from or writing to the server failed, or the server fell silent.
    Lost(String),
    /// An attempt to connect again failed.
    ReconnectFailed(String),
    /// The server did not confirm our leaving in time.
    QuitTimeout,
    /// No welcome arrived in time after `hello`.
    WelcomeTimeout,
    /// After a re-join, the replay of missed messages did not visibly end in time.
    ReplayTimeout,
}

/// What the client must do in answer to an event, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write these bytes to the server.
    Send(Vec<u8>),
    /// Shut down our sending side (FIN): everything typed has been sent.
    HalfClose,
    /// Show something.
    Show(Output),
    /// Our name changed (the welcome or a `/nick`): the prompt shows it.
    Rename(String),
    /// We asked to leave: wait a bounded time for the server to confirm. Asked again each time
    /// a frame shows the server still working through what we sent: the wait starts over, so
    /// a slow (rate-limited) server reading a long input is waited for as long as it progresses.
    AwaitConfirmation,
    /// We re-joined and the server replays what we missed: wait a bounded time for its end.
    AwaitReplay,
    /// Drop the connection (if any is left) and connect again after this pause.
    Reconnect(Duration),
    /// Wait for the server's heartbeat (true), or stop (false): a server that does not speak
    /// soquete (or has not shown yet that it does: no welcome) sends none.
    Heartbeat(bool),
    /// The session is over.
    Finish(End),
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// Normally: we left, the server said bye, or a raw server closed. Exit code 0.
    Done,
    /// The connection failed under us. Exit code 1.
    Lost(String),
}

/// Something to show the user, in both renderings: one for people and one for `--json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// A line the server sent: chat data, on stdout.
    Data { human: String, json: String },
    /// A change of the connection's state (connected, closed): on stderr for people, and as a JSON
    /// event on stdout with `--json`. `human` is None where the final error message says it.
    State { human: Option<String>, json: String },
    /// A remark of the client itself (a line refused under `--sync`, a hint): stderr only.
    Note(String),
    /// Bytes a `--raw` server sent, as they arrived: written unchanged to stdout from a pipe;
    /// on a line editor and with `--json`, shown line by line, a partial line (a prompt) once
    /// no more bytes follow for a moment.
    Raw(Vec<u8>),
}

/// Events the client adds to the server's frames in `--json` output.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LocalEvent<'a> {
    /// The connection is up: both ends, as `IP:PORT`.
    Connected { local: String, remote: String },
    /// A line that is not a frame: everything in `--raw`, and a server's plain-text greeting.
    /// `partial`: the text ends without a newline (a prompt such as `Name: `, or the last
    /// bytes before the server closed); the rest of that line, if any, comes as the next `line`.
    Line {
        text: &'a str,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        partial: bool,
    },
    /// We sent everything and shut down our sending side (`--raw` at end of input).
    HalfClosed,
    /// The connection ended normally; `by` is `server` or `client`.
    Closed { by: &'a str },
    /// The connection failed (for good: no reconnection follows).
    Lost { error: &'a str },
    /// The connection was lost (or an attempt failed); attempt `attempt` follows in `delay_ms`.
    Reconnecting {
        attempt: u32,
        delay_ms: u64,
        error: &'a str,
    },
    /// A new connection is up after a loss: both ends, as `IP:PORT`.
    Reconnected { local: String, remote: String },
    /// Messages sent while we were away that the server could no longer replay.
    Missed { count: u64 },
}

impl LocalEvent<'_> {
    /// The event as one JSON line (without its newline).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("local events always serialize")
    }
}

/// A message sent and not yet echoed back by the server.
#[derive(Debug, Clone)]
struct Unconfirmed {
    /// The line as typed, sent again as it is.
    line: String,
    /// The text the server's echo carries, and whether it is a `/me` action.
    echo: String,
    action: bool,
}

/// The client's state between events.
#[derive(Debug)]
pub struct Session {
    settings: Settings,
    /// Our name as the server knows it (the welcome may change it).
    name: String,
    /// Every name this session has had: a replay after a re-join carries the old ones.
    names: Vec<String>,
    /// A connection is up.
    up: bool,
    /// Connections made so far; from the second on, each is a re-join.
    connections: u32,
    welcomed: bool,
    /// Failed attempts in a row since the connection was lost.
    attempt: u32,
    /// The highest sequence number shown (or the room's at our first welcome): a message at or
    /// below it is never shown again, and a re-join asks for what follows it.
    last_seq: u64,
    /// After a re-join's welcome: the room's last sequence number, which the replay reaches.
    resume_until: Option<u64>,
    /// Whether the server echoes our messages (group or broker mode, or not known yet), so the
    /// ones not echoed back are known to be unconfirmed.
    tracking: bool,
    /// Messages sent and not echoed back yet, oldest first: sent again after a re-join.
    unconfirmed: VecDeque<Unconfirmed>,
    /// Lines typed while there was no connection to send them on, oldest first.
    queued: VecDeque<String>,
    /// Input ended, or `/quit` came, while disconnected: leave once everything is delivered.
    leave_when_delivered: bool,
    /// Under `--sync`: a line was sent and no answer has come yet.
    awaiting_answer: bool,
    /// Input ended while awaiting an answer: leave once it comes.
    leave_after_answer: bool,
    /// We sent `quit` (structured) or half-closed (raw).
    leaving: bool,
    finished: bool,
    /// The server turned out not to speak the soquete protocol: it is talked to as with `--raw`
    /// from then on (plain lines both ways, no heartbeat, no reconnection).
    foreign: bool,
    /// Before any welcome, a line that is not a JSON object arrived.
    plain_line_seen: bool,
    /// The welcome did not come in time.
    welcome_overdue: bool,
    /// `--raw`: the start of the line being received, to see a line that is exactly `exit`.
    raw_line: Vec<u8>,
}

impl Session {
    /// A session that has not connected yet.
    pub fn new(settings: Settings) -> Session {
        let name = settings.name.clone();
        Session {
            names: vec![name.clone()],
            settings,
            name,
            up: false,
            connections: 0,
            welcomed: false,
            attempt: 0,
            last_seq: 0,
            resume_until: None,
            tracking: true,
            unconfirmed: VecDeque::new(),
            queued: VecDeque::new(),
            leave_when_delivered: false,
            awaiting_answer: false,
            leave_after_answer: false,
            leaving: false,
            finished: false,
            foreign: false,
            plain_line_seen: false,
            welcome_overdue: false,
            raw_line: Vec::new(),
        }
    }

    /// True when lines go as plain text: `--raw`, or a server found not to speak soquete.
    fn plain(&self) -> bool {
        self.settings.raw || self.foreign
    }

    /// True once the session has produced [`Action::Finish`].
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// False while so many typed lines wait for the server that no more should be read yet.
    pub fn accepts_input(&self) -> bool {
        self.queued.len() < MAX_QUEUED_LINES
    }

    /// The actions one event calls for.
    pub fn handle(&mut self, event: Event) -> Vec<Action> {
        if self.finished {
            return Vec::new();
        }
        let mut actions = Vec::new();
        match event {
            Event::Connected { local, remote } => self.connected(local, remote, &mut actions),
            Event::Typed { text, terminated } => self.typed(text, terminated, &mut actions),
            Event::InputEnded => {
                if self.holding() {
                    self.leave_when_delivered(&mut actions);
                } else if self.settings.sync && self.awaiting_answer {
                    self.leave_after_answer = true;
                } else {
                    self.input_done(&mut actions);
                }
            }
            Event::Interrupted => {
                if self.plain() {
                    self.finish(&mut actions, End::Done, "client");
                } else if !self.up {
                    self.give_up_now(&mut actions);
                } else {
                    self.leave(&mut actions);
                }
            }
            Event::Received(line) => self.received(&line, &mut actions),
            Event::ReceivedRaw(bytes) => self.received_raw(bytes, &mut actions),
            Event::Overlong => actions.push(Action::Show(Output::Note(
                "* the server sent an overlong line; its start was dropped".into(),
            ))),
            Event::ServerClosed => self.connection_lost(
                "the server closed the connection without a bye",
                true,
                &mut actions,
            ),
            Event::Lost(error) => self.connection_lost(&error, false, &mut actions),
            Event::ReconnectFailed(error) => self.retry(&error, &mut actions),
            Event::QuitTimeout => {
                // A plain server is waited for until it closes, as with `--raw`.
                if self.leaving && self.up && !self.plain() {
                    let error = if self.welcomed {
                        "the server did not confirm our leaving in time"
                    } else {
                        "the server did not confirm our leaving in time, nor ever welcome us: \
                         is it a soquete server? (--raw talks to any TCP server)"
                    };
                    self.lose(&mut actions, error);
                }
            }
            Event::WelcomeTimeout => {
                if !self.welcomed && self.up && !self.plain() {
                    self.welcome_overdue = true;
                    if self.plain_line_seen {
                        self.go_foreign(&mut actions);
                    } else {
                        actions.push(Action::Show(Output::Note(
                            "* no welcome from the server yet: is it a soquete server? \
                             (--raw talks to any TCP server)"
                                .into(),
                        )));
                        // A silent `nc -l` is no lost server: wait for the welcome instead.
                        actions.push(Action::Heartbeat(false));
                    }
                }
            }
            Event::ReplayTimeout => {
                if self.resume_until.is_some() {
                    self.resumed(&mut actions);
                }
            }
        }
        actions
    }

    /// True while typed lines must wait: no connection, or a re-join not complete yet (the
    /// replay of what we missed comes first, and our unconfirmed messages go before new ones).
    fn holding(&self) -> bool {
        !self.plain()
            && (!self.up || self.resume_until.is_some() || (self.connections > 1 && !self.welcomed))
    }

    fn connected(&mut self, local: SocketAddr, remote: SocketAddr, actions: &mut Vec<Action>) {
        self.connections += 1;
        self.up = true;
        self.welcomed = false;
        let rejoin = self.connections > 1;
        if rejoin {
            actions.push(state(
                Some(format!("* reconnected: local {local} → remote {remote}")),
                LocalEvent::Reconnected {
                    local: local.to_string(),
                    remote: remote.to_string(),
                },
            ));
        } else {
            actions.push(state(
                Some(format!("* connected: local {local} → remote {remote}")),
                LocalEvent::Connected {
                    local: local.to_string(),
                    remote: remote.to_string(),
                },
            ));
        }
        if !self.settings.raw {
            actions.push(Action::Send(
                ClientFrame::Hello {
                    version: PROTOCOL_VERSION,
                    name: self.name.clone(),
                    last_seq: rejoin.then_some(self.last_seq),
                    probe: false,
                }
                .to_json_line(),
            ));
        }
    }

    fn typed(&mut self, text: String, terminated: bool, actions: &mut Vec<Action>) {
        if self.leaving || self.leave_when_delivered {
            actions.push(Action::Show(Output::Note(
                "* leaving: line not sent".into(),
            )));
            return;
        }
        let command = parse_command(&text);
        if self.plain() {
            // In raw mode `exit` is a message too (the labs' peers end on it), `/quit` is ours.
            let quit = command == Some(Command::Quit);
            if quit && text.trim() == "exit" {
                actions.push(Action::Send(b"exit\n".to_vec()));
            }
            if quit {
                self.finish(actions, End::Done, "client");
                return;
            }
            if self.refuse_out_of_turn(actions) {
                return;
            }
            let mut bytes = text.into_bytes();
            if terminated {
                bytes.push(b'\n');
            }
            actions.push(Action::Send(bytes));
        } else {
            if text.trim().is_empty() {
                return;
            }
            if command == Some(Command::Quit) {
                if self.holding() {
                    self.leave_when_delivered(actions);
                } else {
                    self.leave(actions);
                }
                return;
            }
            if self.refuse_out_of_turn(actions) {
                return;
            }
            if self.holding() {
                self.queued.push_back(text);
            } else {
                self.send_line(text, actions);
            }
        }
        self.awaiting_answer = self.settings.sync;
    }

    /// Sends a typed line as a `msg` frame, and keeps it until its echo if the server echoes.
    fn send_line(&mut self, line: String, actions: &mut Vec<Action>) {
        let bytes = ClientFrame::Msg { text: line.clone() }.to_json_line();
        if self.tracking
            && bytes.len() <= MAX_LINE_BYTES
            && let Some((echo, action)) = expected_echo(&line)
        {
            self.unconfirmed
                .push_back(Unconfirmed { line, echo, action });
        }
        actions.push(Action::Send(bytes));
    }

    /// Under `--sync`, refuses a line sent before the answer to the previous one.
    fn refuse_out_of_turn(&self, actions: &mut Vec<Action>) -> bool {
        if self.settings.sync && self.awaiting_answer {
            actions.push(Action::Show(Output::Note(
                "* wait for the answer before sending again (--sync): line not sent".into(),
            )));
            return true;
        }
        false
    }

    /// Bytes from a `--raw` server: shown as they are; a line that is exactly `exit` ends the
    /// session (the labs' peers end a session with `exit`, from either side).
    fn received_raw(&mut self, bytes: Vec<u8>, actions: &mut Vec<Action>) {
        /// Longer than any `exit` line worth looking at: the rest is not kept.
        const KEEP: usize = 16;
        let mut exit = false;
        for &byte in &bytes {
            if byte == b'\n' {
                exit |= self.raw_line.trim_ascii() == b"exit";
                self.raw_line.clear();
            } else if self.raw_line.len() < KEEP {
                self.raw_line.push(byte);
            }
        }
        if bytes.is_empty() {
            return;
        }
        actions.push(Action::Show(Output::Raw(bytes)));
        self.answered(actions);
        if exit && !self.finished {
            self.server_said_exit(actions);
        }
    }

    /// A line from a server that does not speak soquete (found out after connecting).
    fn received_plain(&mut self, line: &str, actions: &mut Vec<Action>) {
        actions.push(Action::Show(Output::Data {
            human: line.to_string(),
            json: LocalEvent::Line {
                text: line,
                partial: false,
            }
            .to_json(),
        }));
        self.answered(actions);
        if line.trim() == "exit" && !self.finished {
            self.server_said_exit(actions);
        }
    }

    /// The server sent `exit`: we close the connection (the server did not).
    fn server_said_exit(&mut self, actions: &mut Vec<Action>) {
        actions.push(state(
            Some("* the server said exit: connection closed".into()),
            LocalEvent::Closed { by: "client" },
        ));
        actions.push(Action::Finish(End::Done));
        self.finished = true;
    }

    /// The server does not speak soquete: say so once, and talk to it as `--raw` does.
    fn go_foreign(&mut self, actions: &mut Vec<Action>) {
        self.foreign = true;
        self.unconfirmed.clear();
        actions.push(Action::Show(Output::Note(
            "* this server does not speak the soquete protocol; use --raw to talk to it \
             (talking plain lines to it meanwhile)"
                .into(),
        )));
        actions.push(Action::Heartbeat(false));
        if self.leaving {
            // We asked to leave and it will not confirm: end our side, as --raw does.
            self.leaving = false;
            self.input_done(actions);
        }
    }

    fn received(&mut self, line: &str, actions: &mut Vec<Action>) {
        if self.plain() {
            self.received_plain(line, actions);
            return;
        }
        let Ok(frame) = serde_json::from_str::<ServerFrame>(line) else {
            self.unknown_line(line, actions);
            return;
        };
        match &frame {
            // The heartbeat only proves the connection alive; it is never shown. An idle server
            // also means the replay after a re-join is over.
            ServerFrame::Ping => {
                if self.resume_until.is_some() {
                    self.resumed(actions);
                }
                return;
            }
            // A replay overlaps what we saw before the loss: each message is shown once.
            ServerFrame::Msg { seq, .. } if *seq <= self.last_seq => return,
            _ => {}
        }
        let human = String::from_utf8_lossy(&frame.to_text_line())
            .trim_end()
            .to_string();
        actions.push(Action::Show(Output::Data {
            human,
            json: line.to_string(),
        }));
        match frame {
            ServerFrame::Welcome {
                name,
                mode,
                last_seq,
                missed,
                ..
            } => self.welcomed(name, &mode, last_seq, missed, actions),
            ServerFrame::Nick { old, new, .. } if old == self.name => {
                self.name = new.clone();
                self.names.push(new.clone());
                actions.push(Action::Rename(new));
                self.answered(actions);
            }
            ServerFrame::Msg {
                seq,
                from,
                text,
                action,
                ..
            } => {
                self.last_seq = seq;
                if self.names.contains(&from) {
                    // Our own message coming back is not the other side's answer, but it
                    // confirms that message and every one we sent before it.
                    self.confirmed(&text, action);
                } else {
                    self.answered(actions);
                }
                if self.resume_until.is_some_and(|until| seq >= until) {
                    self.resumed(actions);
                }
            }
            ServerFrame::Bye { reason, code } => {
                let rejoining = self.connections > 1 && !self.welcomed;
                let resumable = self.settings.reconnect.is_some() && !self.leaving;
                if resumable && (rejoining || code == ByeCode::Shutdown) {
                    // The server is going away (or refused the re-join): we did not ask to leave.
                    self.connection_lost(&format!("bye: {reason}"), true, actions);
                } else {
                    self.finish(actions, End::Done, "server");
                }
            }
            _ => self.answered(actions),
        }
        if self.leaving && self.up && !self.finished {
            // Still working through our lines (an echo, a notice): no reason to give up yet.
            actions.push(Action::AwaitConfirmation);
        }
    }

    fn welcomed(
        &mut self,
        name: String,
        mode: &str,
        room_last_seq: u64,
        missed: Option<u64>,
        actions: &mut Vec<Action>,
    ) {
        self.welcomed = true;
        if std::mem::take(&mut self.welcome_overdue) {
            actions.push(Action::Heartbeat(true));
        }
        if !self.names.contains(&name) {
            self.names.push(name.clone());
        }
        self.name = name.clone();
        actions.push(Action::Rename(name));
        // Only a room (group or broker mode) echoes every message to its author.
        self.tracking = matches!(mode, "group" | "broker");
        if !self.tracking {
            self.unconfirmed.clear();
        }
        if self.connections <= 1 {
            // Messages from before we joined are not ours to see, nor to ask for on a re-join.
            self.last_seq = self.last_seq.max(room_last_seq);
            return;
        }
        self.attempt = 0;
        self.awaiting_answer = false;
        if let Some(count) = missed.filter(|&count| count > 0) {
            let human = if count == 1 {
                "* 1 message was missed while disconnected".to_string()
            } else {
                format!("* {count} messages were missed while disconnected")
            };
            actions.push(state(Some(human), LocalEvent::Missed { count }));
        }
        if room_last_seq < self.last_seq {
            actions.push(Action::Show(Output::Note(
                "* the server lost its history (restarted without --log?): message numbers \
                 start again"
                    .into(),
            )));
            self.last_seq = room_last_seq;
            self.resumed(actions);
        } else if room_last_seq > self.last_seq {
            self.resume_until = Some(room_last_seq);
            actions.push(Action::AwaitReplay);
        } else {
            self.resumed(actions);
        }
    }

    /// The re-join is complete: what was never confirmed goes again, then what was typed
    /// meanwhile, in order; then we leave if input ended meanwhile.
    fn resumed(&mut self, actions: &mut Vec<Action>) {
        self.resume_until = None;
        for unconfirmed in &self.unconfirmed {
            actions.push(Action::Send(
                ClientFrame::Msg {
                    text: unconfirmed.line.clone(),
                }
                .to_json_line(),
            ));
        }
        let queued = std::mem::take(&mut self.queued);
        let sent_any = !queued.is_empty();
        for line in queued {
            self.send_line(line, actions);
        }
        if self.settings.sync && sent_any {
            self.awaiting_answer = true;
        }
        if std::mem::take(&mut self.leave_when_delivered) {
            self.leave(actions);
        }
    }

    /// Our message `text` came back: it and everything sent before it reached the server (it
    /// handles one connection's lines in order). Text the server changed matches nothing: then
    /// it confirms the oldest.
    fn confirmed(&mut self, text: &str, action: bool) {
        match self
            .unconfirmed
            .iter()
            .position(|u| u.echo == text && u.action == action)
        {
            Some(at) => drop(self.unconfirmed.drain(..=at)),
            None => drop(self.unconfirmed.pop_front()),
        }
    }

    /// A line that is no frame: the plain-text greeting every server sends first (for raw
    /// clients), or a frame of a newer protocol.
    fn unknown_line(&mut self, line: &str, actions: &mut Vec<Action>) {
        let is_json_object =
            serde_json::from_str::<serde_json::Value>(line).is_ok_and(|value| value.is_object());
        let json = if is_json_object {
            line.to_string()
        } else {
            LocalEvent::Line {
                text: line,
                partial: false,
            }
            .to_json()
        };
        // Shown as it came: a soquete greeting starts with `* ` itself.
        actions.push(Action::Show(Output::Data {
            human: line.to_string(),
            json,
        }));
        if !is_json_object && !self.welcomed && self.connections == 1 {
            self.plain_line_seen = true;
            if self.welcome_overdue {
                self.go_foreign(actions);
            }
        }
    }

    /// The other side answered: under `--sync` the turn is ours again.
    fn answered(&mut self, actions: &mut Vec<Action>) {
        self.awaiting_answer = false;
        if std::mem::take(&mut self.leave_after_answer) && !self.finished {
            self.input_done(actions);
        }
    }

    /// Input ended: a soquete server is told we leave; a raw server gets our FIN.
    fn input_done(&mut self, actions: &mut Vec<Action>) {
        if self.leaving {
            return;
        }
        if self.plain() {
            self.leaving = true;
            actions.push(Action::HalfClose);
            actions.push(state(
                Some(
                    "* end of input: sent everything, half-closed; waiting for the server to close"
                        .into(),
                ),
                LocalEvent::HalfClosed,
            ));
        } else {
            self.leave(actions);
        }
    }

    /// We want to leave while disconnected: at once if nothing we typed is waiting, else once
    /// it is delivered.
    fn leave_when_delivered(&mut self, actions: &mut Vec<Action>) {
        if !self.up && self.queued.is_empty() && self.unconfirmed.is_empty() {
            self.finish(actions, End::Done, "client");
            return;
        }
        if !self.up && !self.leave_when_delivered {
            actions.push(Action::Show(Output::Note(format!(
                "* leaving once reconnected and {} delivered (Ctrl-C leaves now)",
                lines(self.queued.len() + self.unconfirmed.len())
            ))));
        }
        self.leave_when_delivered = true;
    }

    /// Ctrl-C while disconnected: no waiting for the server.
    fn give_up_now(&mut self, actions: &mut Vec<Action>) {
        let waiting = self.queued.len() + self.unconfirmed.len();
        if waiting == 0 {
            self.finish(actions, End::Done, "client");
        } else {
            let error = format!(
                "interrupted while reconnecting: {} not sent",
                lines(waiting)
            );
            self.lose(actions, &error);
        }
    }

    fn leave(&mut self, actions: &mut Vec<Action>) {
        if self.leaving {
            return;
        }
        self.leaving = true;
        actions.push(Action::Send(ClientFrame::Quit.to_json_line()));
        actions.push(Action::AwaitConfirmation);
    }

    /// The connection ended without our asking (`closed`: cleanly, by end of stream or a
    /// shutdown `bye`): the end of the session, or a reason to connect again.
    fn connection_lost(&mut self, error: &str, closed: bool, actions: &mut Vec<Action>) {
        let reconnects = !self.plain() && self.settings.reconnect.is_some();
        let delivered = self.unconfirmed.is_empty();
        if !reconnects || (self.leaving && delivered) {
            if closed && (self.plain() || self.leaving) {
                self.finish(actions, End::Done, "server");
            } else {
                self.lose(actions, error);
            }
            return;
        }
        if std::mem::take(&mut self.leaving) {
            // We were leaving, but not everything we said is known to have arrived: deliver it
            // again, then leave.
            self.leave_when_delivered = true;
        }
        self.up = false;
        self.welcomed = false;
        self.resume_until = None;
        self.retry(error, actions);
    }

    /// Schedules the next attempt to connect, or gives up past the limit.
    fn retry(&mut self, error: &str, actions: &mut Vec<Action>) {
        let Some(policy) = self.settings.reconnect else {
            self.lose(actions, error);
            return;
        };
        self.attempt += 1;
        if policy.exhausted(self.attempt) {
            let error = format!(
                "gave up after {} to reconnect ({error})",
                plural(self.attempt - 1, "attempt")
            );
            self.lose(actions, &error);
            return;
        }
        let delay = policy.delay(self.attempt, reconnect::jitter());
        actions.push(state(
            Some(format!(
                "* connection lost ({error}) — reconnecting in {} (attempt {})",
                reconnect::describe(delay),
                self.attempt
            )),
            LocalEvent::Reconnecting {
                attempt: self.attempt,
                delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                error,
            },
        ));
        actions.push(Action::Reconnect(delay));
    }

    fn finish(&mut self, actions: &mut Vec<Action>, end: End, by: &str) {
        let human = match by {
            "server" => "* closed by the server",
            _ => "* closed",
        };
        actions.push(state(Some(human.into()), LocalEvent::Closed { by }));
        actions.push(Action::Finish(end));
        self.finished = true;
    }

    fn lose(&mut self, actions: &mut Vec<Action>, error: &str) {
        // The error itself is printed once, by main, as every soquete error is.
        actions.push(state(None, LocalEvent::Lost { error }));
        actions.push(Action::Finish(End::Lost(error.to_string())));
        self.finished = true;
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

fn plural(count: u32, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

fn lines(count: usize) -> String {
    plural(u32::try_from(count).unwrap_or(u32::MAX), "typed line")
}

fn state(human: Option<String>, event: LocalEvent<'_>) -> Action {
    Action::Show(Output::State {
        human,
        json: event.to_json(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connected(raw: bool, sync: bool) -> Session {
        let mut session = Session::new(Settings {
            raw,
            sync,
            name: "ana".into(),
            reconnect: None,
        });
        session.handle(Event::Connected {
            local: "127.0.0.1:50322".parse().unwrap(),
            remote: "127.0.0.1:65432".parse().unwrap(),
        });
        session
    }

    fn typed(text: &str) -> Event {
        Event::Typed {
            text: text.into(),
            terminated: true,
        }
    }

    fn sent(actions: &[Action]) -> Vec<String> {
        actions
            .iter()
            .filter_map(|action| match action {
                Action::Send(bytes) => Some(String::from_utf8(bytes.clone()).unwrap()),
                _ => None,
            })
            .collect()
    }

    fn shown(actions: &[Action]) -> Vec<String> {
        actions
            .iter()
            .filter_map(|action| match action {
                Action::Show(Output::Data { human, .. }) => Some(human.clone()),
                Action::Show(Output::Note(note)) => Some(note.clone()),
                Action::Show(Output::State { human, .. }) => human.clone(),
                _ => None,
            })
            .collect()
    }

    fn end(actions: &[Action]) -> Option<End> {
        actions.iter().find_map(|action| match action {
            Action::Finish(end) => Some(end.clone()),
            _ => None,
        })
    }

    const WELCOME: &str = r#"{"type":"welcome","version":1,"server":"soquete","mode":"group","name":"ana","room_size":2}"#;
    const FROM_BIA: &str =
        r#"{"type":"msg","seq":1,"time":"2026-11-26T14:03:07-03:00","from":"bia","text":"oi"}"#;
    const FROM_ANA: &str =
        r#"{"type":"msg","seq":2,"time":"2026-11-26T14:03:08-03:00","from":"ana","text":"olá"}"#;

    #[test]
    fn connecting_shows_both_ends_and_says_hello() {
        let mut session = Session::new(Settings {
            raw: false,
            sync: false,
            name: "ana".into(),
            reconnect: None,
        });
        let actions = session.handle(Event::Connected {
            local: "127.0.0.1:50322".parse().unwrap(),
            remote: "127.0.0.1:65432".parse().unwrap(),
        });
        assert_eq!(
            shown(&actions),
            ["* connected: local 127.0.0.1:50322 → remote 127.0.0.1:65432"]
        );
        assert_eq!(
            sent(&actions),
            ["{\"type\":\"hello\",\"version\":1,\"name\":\"ana\"}\n"]
        );
    }

    #[test]
    fn greeting_is_a_notice_and_frames_render_as_text() {
        let mut session = connected(false, false);
        // Shown as it comes: soquete's greeting starts with `* ` itself.
        assert_eq!(
            shown(&session.handle(Event::Received("* soquete chat server".into()))),
            ["* soquete chat server"]
        );
        let actions = session.handle(Event::Received(WELCOME.into()));
        assert!(shown(&actions)[0].starts_with("* welcome to soquete (group mode)"));
        assert!(actions.contains(&Action::Rename("ana".into())));
        assert_eq!(
            shown(&session.handle(Event::Received(FROM_BIA.into()))),
            ["[14:03:07] <bia> oi"]
        );
    }

    #[test]
    fn json_output_is_the_frame_as_received() {
        let mut session = connected(false, false);
        let actions = session.handle(Event::Received(FROM_BIA.into()));
        assert_eq!(
            actions,
            [Action::Show(Output::Data {
                human: "[14:03:07] <bia> oi".into(),
                json: FROM_BIA.into()
            })]
        );
        let actions = session.handle(Event::Received("plain".into()));
        let Action::Show(Output::Data { json, .. }) = &actions[0] else {
            panic!("{actions:?}")
        };
        assert_eq!(json, r#"{"type":"line","text":"plain"}"#);
    }

    #[test]
    fn lines_and_commands_are_sent_as_msg_frames_and_quit_as_quit() {
        let mut session = connected(false, false);
        assert_eq!(
            sent(&session.handle(typed("olá, mundo"))),
            ["{\"type\":\"msg\",\"text\":\"olá, mundo\"}\n"]
        );
        assert_eq!(
            sent(&session.handle(typed("/nick bia"))),
            ["{\"type\":\"msg\",\"text\":\"/nick bia\"}\n"]
        );
        assert!(sent(&session.handle(typed("   "))).is_empty());
        let actions = session.handle(typed("exit"));
        assert_eq!(sent(&actions), ["{\"type\":\"quit\"}\n"]);
        assert!(actions.contains(&Action::AwaitConfirmation));
        assert_eq!(
            shown(&session.handle(typed("late"))),
            ["* leaving: line not sent"]
        );
    }

    #[test]
    fn end_of_input_leaves_and_bye_ends_normally() {
        let mut session = connected(false, false);
        session.handle(Event::Received(WELCOME.into()));
        let actions = session.handle(Event::InputEnded);
        assert_eq!(sent(&actions), ["{\"type\":\"quit\"}\n"]);
        let actions = session.handle(Event::Received(
            r#"{"type":"bye","reason":"you left"}"#.into(),
        ));
        assert_eq!(
            shown(&actions),
            ["* bye: you left", "* closed by the server"]
        );
        assert_eq!(end(&actions), Some(End::Done));
        assert!(session.is_finished());
        assert!(session.handle(Event::ServerClosed).is_empty());
    }

    #[test]
    fn close_without_bye_is_a_lost_connection_but_after_quit_it_is_not() {
        let mut session = connected(false, false);
        let actions = session.handle(Event::ServerClosed);
        assert!(matches!(end(&actions), Some(End::Lost(_))));

        let mut session = connected(false, false);
        session.handle(typed("/quit"));
        assert_eq!(end(&session.handle(Event::ServerClosed)), Some(End::Done));
    }

    #[test]
    fn sync_refuses_a_second_line_until_an_answer_comes() {
        let mut session = connected(false, true);
        session.handle(Event::Received(WELCOME.into()));
        assert_eq!(sent(&session.handle(typed("q1"))).len(), 1);
        let actions = session.handle(typed("q2"));
        assert!(sent(&actions).is_empty());
        assert_eq!(
            shown(&actions),
            ["* wait for the answer before sending again (--sync): line not sent"]
        );
        // Our own message echoed back is no answer.
        session.handle(Event::Received(FROM_ANA.into()));
        assert!(sent(&session.handle(typed("q2"))).is_empty());
        // The answer comes after our message in the room's order.
        session.handle(Event::Received(FROM_BIA.replace("\"seq\":1", "\"seq\":3")));
        assert_eq!(sent(&session.handle(typed("q3"))).len(), 1);
        // Leaving is never out of turn.
        assert_eq!(
            sent(&session.handle(typed("/quit"))),
            ["{\"type\":\"quit\"}\n"]
        );
    }

    #[test]
    fn sync_leaving_goes_out_even_out_of_turn_with_no_refusal() {
        for quit in ["exit", "/quit", " exit "] {
            let mut session = connected(false, true);
            session.handle(Event::Received(WELCOME.into()));
            session.handle(typed("x1"));
            // Out of turn: refused, not sent, not kept for later.
            let actions = session.handle(typed("x2"));
            assert!(sent(&actions).is_empty());
            assert_eq!(shown(&actions).len(), 1, "{quit}: one refusal");
            let actions = session.handle(typed(quit));
            assert_eq!(sent(&actions), ["{\"type\":\"quit\"}\n"], "{quit}");
            assert!(shown(&actions).is_empty(), "{quit}: no refusal notice");
            assert!(actions.contains(&Action::AwaitConfirmation));
        }
        // --raw: `exit` goes out as a line, `/quit` leaves without a word; neither refused.
        for (quit, wire) in [("exit", vec!["x1\n", "exit\n"]), ("/quit", vec!["x1\n"])] {
            let mut session = connected(true, true);
            let mut all = sent(&session.handle(typed("x1")));
            assert!(sent(&session.handle(typed("x2"))).is_empty());
            let actions = session.handle(typed(quit));
            all.extend(sent(&actions));
            assert_eq!(all, wire, "{quit}");
            assert!(
                shown(&actions).iter().all(|l| !l.contains("--sync")),
                "{quit}"
            );
            assert_eq!(end(&actions), Some(End::Done), "{quit}");
        }
    }

    #[test]
    fn leaving_waits_again_while_the_server_works_through_our_lines() {
        let mut session = connected(false, false);
        session.handle(Event::Received(WELCOME.into()));
        session.handle(typed("olá"));
        let actions = session.handle(Event::InputEnded);
        assert_eq!(sent(&actions), ["{\"type\":\"quit\"}\n"]);
        assert!(actions.contains(&Action::AwaitConfirmation));
        // Each echo (or any other frame) is progress: the wait for the bye starts over.
        let actions = session.handle(Event::Received(FROM_ANA.into()));
        assert!(actions.contains(&Action::AwaitConfirmation));
        let actions = session.handle(Event::Received(FROM_BIA.replace("\"seq\":1", "\"seq\":3")));
        assert!(actions.contains(&Action::AwaitConfirmation));
        // A ping only shows the server alive, not progressing.
        assert!(
            session
                .handle(Event::Received(r#"{"type":"ping"}"#.into()))
                .is_empty()
        );
        // After a stretch of no progress at all, the wait ends.
        let actions = session.handle(Event::QuitTimeout);
        assert!(matches!(end(&actions), Some(End::Lost(_))));

        // The bye ends it, with no new wait.
        let mut session = connected(false, false);
        session.handle(Event::Received(WELCOME.into()));
        session.handle(Event::InputEnded);
        let actions = session.handle(Event::Received(
            r#"{"type":"bye","reason":"you left"}"#.into(),
        ));
        assert!(!actions.contains(&Action::AwaitConfirmation));
        assert_eq!(end(&actions), Some(End::Done));
    }

    #[test]
    fn sync_end_of_input_waits_for_the_pending_answer() {
        let mut session = connected(true, true);
        session.handle(typed("Hello Server"));
        assert!(session.handle(Event::InputEnded).is_empty());
        let actions = session.handle(Event::Received("Hello Client".into()));
        assert!(actions.contains(&Action::HalfClose));
    }

    #[test]
    fn raw_sends_lines_as_typed_and_half_closes_at_end_of_input() {
        let mut session = connected(true, false);
        assert!(sent(&session.handle(raw(b"hi\n"))).is_empty());
        assert_eq!(sent(&session.handle(typed("olá"))), ["olá\n"]);
        assert_eq!(sent(&session.handle(typed(""))), ["\n"]);
        let last = Event::Typed {
            text: "no newline".into(),
            terminated: false,
        };
        assert_eq!(sent(&session.handle(last)), ["no newline"]);
        let actions = session.handle(Event::InputEnded);
        assert_eq!(actions[0], Action::HalfClose);
        assert_eq!(
            session.handle(raw(b"bye")),
            [Action::Show(Output::Raw(b"bye".to_vec()))]
        );
        let actions = session.handle(Event::ServerClosed);
        assert_eq!(shown(&actions), ["* closed by the server"]);
        assert_eq!(end(&actions), Some(End::Done));
    }

    fn raw(bytes: &[u8]) -> Event {
        Event::ReceivedRaw(bytes.to_vec())
    }

    #[test]
    fn raw_bytes_are_shown_as_they_arrive_unchanged() {
        let mut session = connected(true, false);
        // A prompt without a newline is shown at once; bytes that are no UTF-8 stay as they are.
        for bytes in [&b"Name: "[..], b"\xff\xfe\r\n", b"two\nlines\n"] {
            assert_eq!(
                session.handle(raw(bytes)),
                [Action::Show(Output::Raw(bytes.to_vec()))]
            );
        }
        // `exit` ends the session only as a whole line, however the bytes are cut.
        assert_eq!(end(&session.handle(raw(b"exiting\nnot exit\nex"))), None);
        let actions = session.handle(raw(b"it\r\nafter"));
        assert_eq!(
            actions[0],
            Action::Show(Output::Raw(b"it\r\nafter".to_vec()))
        );
        assert_eq!(end(&actions), Some(End::Done));
    }

    #[test]
    fn raw_exit_is_sent_and_ends_and_a_peer_exit_ends_too() {
        let mut session = connected(true, false);
        let actions = session.handle(typed("exit"));
        assert_eq!(sent(&actions), ["exit\n"]);
        assert_eq!(end(&actions), Some(End::Done));

        let mut session = connected(true, false);
        let actions = session.handle(typed("/quit"));
        assert!(sent(&actions).is_empty());
        assert_eq!(end(&actions), Some(End::Done));

        // The server's `exit` ends the session, and the client is the one that closes.
        let mut session = connected(true, false);
        let actions = session.handle(raw(b"exit\n"));
        assert_eq!(
            actions[1],
            Action::Show(Output::State {
                human: Some("* the server said exit: connection closed".into()),
                json: r#"{"type":"closed","by":"client"}"#.into()
            })
        );
        assert_eq!(end(&actions), Some(End::Done));
    }

    const FOREIGN: &str = "* this server does not speak the soquete protocol; use --raw to talk \
                           to it (talking plain lines to it meanwhile)";

    #[test]
    fn a_server_without_welcome_that_sends_plain_lines_is_talked_to_plainly() {
        let mut session = connected(false, false);
        // Before the welcome is due, a plain line may be a greeting: shown as it is.
        let actions = session.handle(Event::Received("hello from nc".into()));
        assert_eq!(shown(&actions), ["hello from nc"]);
        let actions = session.handle(Event::WelcomeTimeout);
        assert_eq!(shown(&actions), [FOREIGN]);
        assert!(actions.contains(&Action::Heartbeat(false)));
        // From then on, as --raw: plain lines both ways, end of input half-closes.
        assert_eq!(
            shown(&session.handle(Event::Received("{\"a\":1}".into()))),
            ["{\"a\":1}"]
        );
        assert_eq!(sent(&session.handle(typed("oi nc"))), ["oi nc\n"]);
        assert_eq!(session.handle(Event::InputEnded)[0], Action::HalfClose);
        assert!(session.handle(Event::QuitTimeout).is_empty());
        let actions = session.handle(Event::ServerClosed);
        assert_eq!(shown(&actions), ["* closed by the server"]);
        assert_eq!(end(&actions), Some(End::Done));
    }

    #[test]
    fn a_silent_server_gets_a_hint_then_its_first_plain_line_tells() {
        let mut session = connected(false, false);
        let actions = session.handle(Event::WelcomeTimeout);
        assert!(shown(&actions)[0].starts_with("* no welcome from the server yet"));
        assert!(actions.contains(&Action::Heartbeat(false)));
        // Input ended meanwhile: we asked to leave, and a plain server will never confirm.
        assert_eq!(sent(&session.handle(typed("hi"))).len(), 1);
        session.handle(Event::InputEnded);
        let actions = session.handle(Event::Received("who are you?".into()));
        assert_eq!(shown(&actions)[..2], ["who are you?", FOREIGN]);
        assert!(actions.contains(&Action::HalfClose), "{actions:?}");
        assert!(session.handle(Event::QuitTimeout).is_empty());
        assert_eq!(end(&session.handle(Event::ServerClosed)), Some(End::Done));
    }

    #[test]
    fn a_late_welcome_restarts_the_heartbeat() {
        let mut session = connected(false, false);
        session.handle(Event::WelcomeTimeout);
        let actions = session.handle(Event::Received(WELCOME.into()));
        assert!(actions.contains(&Action::Heartbeat(true)), "{actions:?}");
        assert_eq!(sent(&session.handle(typed("oi"))).len(), 1);
    }

    #[test]
    fn a_soquete_server_is_never_taken_for_a_plain_one() {
        let mut session = connected(false, false);
        session.handle(Event::Received("* soquete chat server (group mode)".into()));
        session.handle(Event::Received(WELCOME.into()));
        assert!(session.handle(Event::WelcomeTimeout).is_empty());
        assert!(shown(&session.handle(Event::Received("plain".into()))) == ["plain"]);
        assert_eq!(
            sent(&session.handle(typed("oi"))),
            ["{\"type\":\"msg\",\"text\":\"oi\"}\n"]
        );
    }

    #[test]
    fn connection_errors_end_as_lost_with_a_json_event() {
        let mut session = connected(false, false);
        let actions = session.handle(Event::Lost("Connection reset by peer".into()));
        assert_eq!(
            actions[0],
            Action::Show(Output::State {
                human: None,
                json: r#"{"type":"lost","error":"Connection reset by peer"}"#.into()
            })
        );
        assert_eq!(
            end(&actions),
            Some(End::Lost("Connection reset by peer".into()))
        );
    }

    #[test]
    fn renames_follow_the_server() {
        let mut session = connected(false, true);
        session.handle(Event::Received(WELCOME.replace("\"ana\"", "\"ana2\"")));
        let nick = r#"{"type":"nick","time":"2026-11-26T14:03:07-03:00","old":"ana2","new":"bea"}"#;
        assert!(
            session
                .handle(Event::Received(nick.into()))
                .contains(&Action::Rename("bea".into()))
        );
        let own = FROM_ANA.replace("\"ana\"", "\"bea\"");
        session.handle(typed("q"));
        session.handle(Event::Received(own));
        assert!(
            sent(&session.handle(typed("q2"))).is_empty(),
            "own echo is no answer"
        );
    }

    fn resuming() -> Session {
        let mut session = Session::new(Settings {
            raw: false,
            sync: false,
            name: "ana".into(),
            reconnect: Some(Reconnect {
                max_delay: Duration::from_secs(30),
                attempts: Some(3),
            }),
        });
        session.handle(Event::Connected {
            local: "127.0.0.1:50322".parse().unwrap(),
            remote: "127.0.0.1:65432".parse().unwrap(),
        });
        session.handle(Event::Received(WELCOME.into()));
        session
    }

    fn reconnect(session: &mut Session) -> Vec<Action> {
        session.handle(Event::Connected {
            local: "127.0.0.1:50400".parse().unwrap(),
            remote: "127.0.0.1:65432".parse().unwrap(),
        })
    }

    fn msg(seq: u64, from: &str, text: &str) -> Event {
        Event::Received(format!(
            r#"{{"type":"msg","seq":{seq},"time":"2026-11-26T14:03:07-03:00","from":"{from}","text":"{text}"}}"#
        ))
    }

    fn welcome_back(last_seq: u64, missed: Option<u64>) -> Event {
        let missed = missed.map_or(String::new(), |n| format!(r#","missed":{n}"#));
        Event::Received(format!(
            r#"{{"type":"welcome","version":1,"server":"soquete","mode":"group","name":"ana","room_size":2,"last_seq":{last_seq}{missed}}}"#
        ))
    }

    fn delay(actions: &[Action]) -> Option<Duration> {
        actions.iter().find_map(|action| match action {
            Action::Reconnect(delay) => Some(*delay),
            _ => None,
        })
    }

    #[test]
    fn a_lost_server_is_reconnected_to_with_growing_pauses_then_given_up() {
        let mut session = resuming();
        let actions = session.handle(Event::ServerClosed);
        let lines = shown(&actions);
        assert!(
            lines[0].starts_with(
                "* connection lost (the server closed the connection without a bye) — \
                 reconnecting in "
            ) && lines[0].ends_with(" s (attempt 1)"),
            "{lines:?}"
        );
        let first = delay(&actions).expect("a reconnection is scheduled");
        assert!(first >= Duration::from_millis(250) && first <= Duration::from_millis(500));
        assert_eq!(end(&actions), None);

        let actions = session.handle(Event::ReconnectFailed("Connection refused".into()));
        assert!(shown(&actions)[0].contains("(attempt 2)"), "{actions:?}");
        assert!(delay(&actions).unwrap() >= Duration::from_millis(500));
        session.handle(Event::ReconnectFailed("Connection refused".into()));
        let actions = session.handle(Event::ReconnectFailed("Connection refused".into()));
        assert_eq!(
            end(&actions),
            Some(End::Lost(
                "gave up after 3 attempts to reconnect (Connection refused)".into()
            ))
        );
    }

    #[test]
    fn rejoin_asks_for_what_follows_the_last_message_seen_and_shows_each_once() {
        let mut session = resuming();
        for seq in 1..=3 {
            session.handle(msg(seq, "bia", &format!("m{seq}")));
        }
        session.handle(Event::Lost("Connection reset by peer".into()));
        let actions = reconnect(&mut session);
        assert_eq!(
            shown(&actions),
            ["* reconnected: local 127.0.0.1:50400 → remote 127.0.0.1:65432"]
        );
        assert_eq!(
            sent(&actions),
            ["{\"type\":\"hello\",\"version\":1,\"name\":\"ana\",\"last_seq\":3}\n"]
        );
        let actions = session.handle(welcome_back(5, None));
        assert!(actions.contains(&Action::AwaitReplay));
        let mut seen = Vec::new();
        for seq in 3..=5 {
            seen.extend(shown(&session.handle(msg(seq, "bia", &format!("m{seq}")))));
        }
        assert_eq!(
            seen,
            ["[14:03:07] <bia> m4", "[14:03:07] <bia> m5"],
            "the overlap is not shown again"
        );
    }

    #[test]
    fn lines_typed_while_disconnected_go_after_the_replay_in_order() {
        let mut session = resuming();
        session.handle(Event::ServerClosed);
        assert!(sent(&session.handle(typed("one"))).is_empty());
        assert!(sent(&session.handle(typed("/me two"))).is_empty());
        reconnect(&mut session);
        assert!(sent(&session.handle(typed("three"))).is_empty(), "not yet");
        assert!(sent(&session.handle(welcome_back(2, None))).is_empty());
        session.handle(msg(1, "bia", "replayed"));
        let actions = session.handle(msg(2, "bia", "replayed"));
        assert_eq!(
            sent(&actions),
            [
                "{\"type\":\"msg\",\"text\":\"one\"}\n",
                "{\"type\":\"msg\",\"text\":\"/me two\"}\n",
                "{\"type\":\"msg\",\"text\":\"three\"}\n",
            ]
        );
        assert_eq!(sent(&session.handle(typed("four"))).len(), 1, "live again");
    }

    #[test]
    fn messages_the_server_never_echoed_are_sent_again_but_not_those_it_replays() {
        let mut session = resuming();
        session.handle(typed("a"));
        session.handle(typed("b"));
        session.handle(typed("c"));
        session.handle(msg(1, "ana", "a"));
        session.handle(Event::Lost("timed out".into()));
        reconnect(&mut session);
        session.handle(welcome_back(2, None));
        // The server stamped b before it went down: the replay confirms it; c never arrived.
        let actions = session.handle(msg(2, "ana", "b"));
        assert_eq!(sent(&actions), ["{\"type\":\"msg\",\"text\":\"c\"}\n"]);
    }

    #[test]
    fn an_empty_gap_resumes_at_the_welcome_and_missed_messages_are_counted() {
        let mut session = resuming();
        session.handle(msg(1, "bia", "x"));
        session.handle(Event::ServerClosed);
        session.handle(typed("queued"));
        reconnect(&mut session);
        let actions = session.handle(welcome_back(1, Some(7)));
        assert_eq!(sent(&actions), ["{\"type\":\"msg\",\"text\":\"queued\"}\n"]);
        assert!(
            shown(&actions).contains(&"* 7 messages were missed while disconnected".into()),
            "{actions:?}"
        );
    }

    #[test]
    fn pings_are_never_shown_and_end_a_replay_that_does_not_come() {
        let mut session = resuming();
        assert!(
            session
                .handle(Event::Received(r#"{"type":"ping"}"#.into()))
                .is_empty()
        );
        session.handle(msg(1, "bia", "x"));
        session.handle(Event::ServerClosed);
        session.handle(typed("queued"));
        reconnect(&mut session);
        session.handle(welcome_back(9, None));
        let actions = session.handle(Event::Received(r#"{"type":"ping"}"#.into()));
        assert!(shown(&actions).is_empty());
        assert_eq!(sent(&actions).len(), 1);
        // A server that does not replay at all: the replay timer ends the wait too.
        session.handle(Event::ServerClosed);
        session.handle(typed("later"));
        reconnect(&mut session);
        session.handle(welcome_back(20, None));
        // `queued` was never echoed back either: it goes again, before `later`.
        assert_eq!(
            sent(&session.handle(Event::ReplayTimeout)),
            [
                "{\"type\":\"msg\",\"text\":\"queued\"}\n",
                "{\"type\":\"msg\",\"text\":\"later\"}\n"
            ]
        );
    }

    #[test]
    fn a_server_that_lost_its_history_starts_the_numbers_again() {
        let mut session = resuming();
        session.handle(msg(8, "bia", "x"));
        session.handle(Event::ServerClosed);
        reconnect(&mut session);
        let actions = session.handle(welcome_back(0, None));
        assert!(
            shown(&actions)
                .iter()
                .any(|l| l.contains("lost its history"))
        );
        assert_eq!(
            shown(&session.handle(msg(1, "bia", "new"))),
            ["[14:03:07] <bia> new"]
        );
    }

    #[test]
    fn a_shutdown_bye_reconnects_but_a_bye_after_our_quit_ends() {
        let mut session = resuming();
        let actions = session.handle(Event::Received(
            r#"{"type":"bye","reason":"the server is shutting down","code":"shutdown"}"#.into(),
        ));
        assert_eq!(shown(&actions)[0], "* bye: the server is shutting down");
        assert!(delay(&actions).is_some());
        assert_eq!(end(&actions), None);

        let mut session = resuming();
        session.handle(typed("/quit"));
        let actions = session.handle(Event::Received(
            r#"{"type":"bye","reason":"the server is shutting down","code":"shutdown"}"#.into(),
        ));
        assert_eq!(end(&actions), Some(End::Done));
    }

    #[test]
    fn leaving_with_unconfirmed_messages_delivers_them_first() {
        let mut session = resuming();
        session.handle(typed("important"));
        session.handle(Event::InputEnded);
        let actions = session.handle(Event::ServerClosed);
        assert!(delay(&actions).is_some(), "{actions:?}");
        reconnect(&mut session);
        let actions = session.handle(welcome_back(0, None));
        assert_eq!(
            sent(&actions),
            [
                "{\"type\":\"msg\",\"text\":\"important\"}\n",
                "{\"type\":\"quit\"}\n"
            ]
        );
    }

    #[test]
    fn end_of_input_while_disconnected_waits_only_for_something_to_deliver() {
        let mut session = resuming();
        session.handle(Event::ServerClosed);
        assert_eq!(end(&session.handle(Event::InputEnded)), Some(End::Done));

        let mut session = resuming();
        session.handle(Event::ServerClosed);
        session.handle(typed("keep me"));
        let actions = session.handle(Event::InputEnded);
        assert_eq!(end(&actions), None);
        assert_eq!(
            shown(&actions),
            ["* leaving once reconnected and 1 typed line delivered (Ctrl-C leaves now)"]
        );
        let actions = session.handle(Event::Interrupted);
        assert_eq!(
            end(&actions),
            Some(End::Lost(
                "interrupted while reconnecting: 1 typed line not sent".into()
            ))
        );
    }

    #[test]
    fn without_reconnect_a_shutdown_bye_ends_normally_and_a_loss_is_final() {
        let mut session = connected(false, false);
        session.handle(Event::Received(WELCOME.into()));
        let actions = session.handle(Event::Received(
            r#"{"type":"bye","reason":"the server is shutting down","code":"shutdown"}"#.into(),
        ));
        assert_eq!(end(&actions), Some(End::Done));
        let mut session = connected(false, false);
        let actions = session.handle(Event::Lost("no word from the server".into()));
        assert!(delay(&actions).is_none());
        assert!(matches!(end(&actions), Some(End::Lost(_))));
    }
}
