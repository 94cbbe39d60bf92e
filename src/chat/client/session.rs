//! What a client does with each event (a line typed, a line received, end of input, the server
//! closing): the whole of the client's behaviour as a state machine that never touches a socket or
//! a terminal, so it is tested event by event.

use std::net::SocketAddr;

use serde::Serialize;

use crate::chat::protocol::{ClientFrame, Command, PROTOCOL_VERSION, ServerFrame, parse_command};

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
}

/// Something that happened to the client.
#[derive(Debug)]
pub enum Event {
    /// The connection is up.
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
    /// The server sent a line longer than the protocol's limit; its start was dropped.
    Overlong,
    /// The server closed its side cleanly (end of stream).
    ServerClosed,
    /// Reading from or writing to the server failed.
    Lost(String),
    /// The server did not confirm our leaving in time.
    QuitTimeout,
    /// No welcome arrived in time after `hello`.
    WelcomeTimeout,
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
    /// We asked to leave: wait a bounded time for the server to confirm.
    AwaitConfirmation,
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
}

/// Events the client adds to the server's frames in `--json` output.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LocalEvent<'a> {
    /// The connection is up: both ends, as `IP:PORT`.
    Connected { local: String, remote: String },
    /// A line that is not a frame: everything in `--raw`, and a server's plain-text greeting.
    Line { text: &'a str },
    /// We sent everything and shut down our sending side (`--raw` at end of input).
    HalfClosed,
    /// The connection ended normally; `by` is `server` or `client`.
    Closed { by: &'a str },
    /// The connection failed.
    Lost { error: &'a str },
}

impl LocalEvent<'_> {
    fn to_json(&self) -> String {
        serde_json::to_string(self).expect("local events always serialize")
    }
}

/// The client's state between events.
#[derive(Debug)]
pub struct Session {
    settings: Settings,
    /// Our name as the server knows it (the welcome may change it).
    name: String,
    welcomed: bool,
    /// Under `--sync`: a line was sent and no answer has come yet.
    awaiting_answer: bool,
    /// Input ended while awaiting an answer: leave once it comes.
    leave_after_answer: bool,
    /// We sent `quit` (structured) or half-closed (raw).
    leaving: bool,
    finished: bool,
}

impl Session {
    /// A session that has not connected yet.
    pub fn new(settings: Settings) -> Session {
        let name = settings.name.clone();
        Session {
            settings,
            name,
            welcomed: false,
            awaiting_answer: false,
            leave_after_answer: false,
            leaving: false,
            finished: false,
        }
    }

    /// True once the session has produced [`Action::Finish`].
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The actions one event calls for.
    pub fn handle(&mut self, event: Event) -> Vec<Action> {
        if self.finished {
            return Vec::new();
        }
        let mut actions = Vec::new();
        match event {
            Event::Connected { local, remote } => {
                actions.push(state(
                    Some(format!("* connected: local {local} → remote {remote}")),
                    LocalEvent::Connected {
                        local: local.to_string(),
                        remote: remote.to_string(),
                    },
                ));
                if !self.settings.raw {
                    actions.push(Action::Send(frame(&ClientFrame::Hello {
                        version: PROTOCOL_VERSION,
                        name: self.settings.name.clone(),
                        last_seq: None,
                        probe: false,
                    })));
                }
            }
            Event::Typed { text, terminated } => self.typed(text, terminated, &mut actions),
            Event::InputEnded => {
                if self.settings.sync && self.awaiting_answer {
                    self.leave_after_answer = true;
                } else {
                    self.input_done(&mut actions);
                }
            }
            Event::Interrupted => {
                if self.settings.raw {
                    self.finish(&mut actions, End::Done, "client");
                } else {
                    self.leave(&mut actions);
                }
            }
            Event::Received(line) => self.received(&line, &mut actions),
            Event::Overlong => actions.push(Action::Show(Output::Note(
                "* the server sent an overlong line; its start was dropped".into(),
            ))),
            Event::ServerClosed => {
                if self.settings.raw || self.leaving {
                    self.finish(&mut actions, End::Done, "server");
                } else {
                    self.lose(
                        &mut actions,
                        "the server closed the connection without a bye",
                    );
                }
            }
            Event::Lost(error) => self.lose(&mut actions, &error),
            Event::QuitTimeout => self.lose(
                &mut actions,
                "the server did not confirm our leaving in time",
            ),
            Event::WelcomeTimeout => {
                if !self.welcomed {
                    actions.push(Action::Show(Output::Note(
                        "* no welcome from the server yet: is it a soquete server? \
                         (--raw talks to any TCP server)"
                            .into(),
                    )));
                }
            }
        }
        actions
    }

    fn typed(&mut self, text: String, terminated: bool, actions: &mut Vec<Action>) {
        if self.leaving {
            actions.push(Action::Show(Output::Note(
                "* leaving: line not sent".into(),
            )));
            return;
        }
        let command = parse_command(&text);
        if self.settings.raw {
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
                self.leave(actions);
                return;
            }
            if self.refuse_out_of_turn(actions) {
                return;
            }
            actions.push(Action::Send(frame(&ClientFrame::Msg { text })));
        }
        self.awaiting_answer = self.settings.sync;
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

    fn received(&mut self, line: &str, actions: &mut Vec<Action>) {
        if self.settings.raw {
            actions.push(Action::Show(Output::Data {
                human: line.to_string(),
                json: LocalEvent::Line { text: line }.to_json(),
            }));
            self.answered(actions);
            if line.trim() == "exit" {
                // The labs' peers end a session with `exit`, from either side.
                self.finish(actions, End::Done, "server");
            }
            return;
        }
        let Ok(frame) = serde_json::from_str::<ServerFrame>(line) else {
            self.unknown_line(line, actions);
            return;
        };
        let human = String::from_utf8_lossy(&frame.to_text_line())
            .trim_end()
            .to_string();
        actions.push(Action::Show(Output::Data {
            human,
            json: line.to_string(),
        }));
        match frame {
            ServerFrame::Welcome { name, .. } => {
                self.welcomed = true;
                self.name = name.clone();
                actions.push(Action::Rename(name));
            }
            ServerFrame::Nick { old, new, .. } if old == self.name => {
                self.name = new.clone();
                actions.push(Action::Rename(new));
                self.answered(actions);
            }
            // Our own message coming back is not the other side's answer.
            ServerFrame::Msg { from, .. } if from == self.name => {}
            ServerFrame::Bye { .. } => self.finish(actions, End::Done, "server"),
            _ => self.answered(actions),
        }
    }

    /// A line that is no frame: the plain-text greeting every server sends first (for raw
    /// clients), or a frame of a newer protocol.
    fn unknown_line(&mut self, line: &str, actions: &mut Vec<Action>) {
        let is_json_object =
            serde_json::from_str::<serde_json::Value>(line).is_ok_and(|value| value.is_object());
        let (human, json) = if is_json_object {
            (line.to_string(), line.to_string())
        } else {
            let human = if line.starts_with("* ") {
                line.to_string()
            } else {
                format!("* {line}")
            };
            (human, LocalEvent::Line { text: line }.to_json())
        };
        actions.push(Action::Show(Output::Data { human, json }));
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
        if self.settings.raw {
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

    fn leave(&mut self, actions: &mut Vec<Action>) {
        if self.leaving {
            return;
        }
        self.leaving = true;
        actions.push(Action::Send(frame(&ClientFrame::Quit)));
        actions.push(Action::AwaitConfirmation);
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

fn state(human: Option<String>, event: LocalEvent<'_>) -> Action {
    Action::Show(Output::State {
        human,
        json: event.to_json(),
    })
}

fn frame(frame: &ClientFrame) -> Vec<u8> {
    let mut line = serde_json::to_vec(frame).expect("frames always serialize");
    line.push(b'\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connected(raw: bool, sync: bool) -> Session {
        let mut session = Session::new(Settings {
            raw,
            sync,
            name: "ana".into(),
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
        assert_eq!(
            shown(&session.handle(Event::Received("soquete chat server".into()))),
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
        session.handle(Event::Received(FROM_BIA.into()));
        assert_eq!(sent(&session.handle(typed("q3"))).len(), 1);
        // Leaving is never out of turn.
        assert_eq!(
            sent(&session.handle(typed("/quit"))),
            ["{\"type\":\"quit\"}\n"]
        );
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
        assert!(sent(&session.handle(Event::Received("hi".into()))).is_empty());
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
            shown(&session.handle(Event::Received("bye".into()))),
            ["bye"]
        );
        assert_eq!(end(&session.handle(Event::ServerClosed)), Some(End::Done));
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

        let mut session = connected(true, false);
        assert_eq!(
            end(&session.handle(Event::Received("exit".into()))),
            Some(End::Done)
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
}
