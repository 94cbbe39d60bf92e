//! The session with a server that does not speak soquete: `--raw` (the server's bytes shown as
//! they arrive), or a server found out after connecting (plain lines, as `--raw` would), and
//! the labs' `exit` that ends a session from either side.

use super::{Action, End, LocalEvent, Output, Session, state};
use crate::chat::protocol::NEEDS_TLS;

impl Session {
    /// Bytes from a `--raw` server: shown as they are; a line that is exactly `exit` ends the
    /// session (the labs' peers end a session with `exit`, from either side).
    pub(super) fn received_raw(&mut self, bytes: Vec<u8>, actions: &mut Vec<Action>) {
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
        let needs_tls = self.raw_start_says_needs_tls(&bytes);
        actions.push(Action::Show(Output::Raw(bytes)));
        if needs_tls {
            // A soquete server on a TLS-only port: shown as it came, and said as without --raw.
            actions.push(state(None, LocalEvent::Lost { error: "needs TLS" }));
            actions.push(Action::Finish(End::NeedsTls));
            self.finished = true;
            return;
        }
        self.answered(actions);
        if exit && !self.finished {
            self.server_said_exit(actions);
        }
    }

    /// Whether the server's first bytes, once there are enough of them, are the line a soquete
    /// server on a TLS-only port says to a plain client.
    fn raw_start_says_needs_tls(&mut self, bytes: &[u8]) -> bool {
        let wanted = NEEDS_TLS.as_bytes();
        if self.raw_start_seen {
            return false;
        }
        let room = wanted.len() - self.raw_start.len();
        self.raw_start
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
        if self.raw_start.len() < wanted.len() {
            return false;
        }
        self.raw_start_seen = true;
        self.raw_start == wanted
    }

    /// A line from a server that does not speak soquete (found out after connecting).
    pub(super) fn received_plain(&mut self, line: &str, actions: &mut Vec<Action>) {
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
    pub(super) fn go_foreign(&mut self, actions: &mut Vec<Action>) {
        self.foreign = true;
        self.pending.track_echoes(false);
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

    /// A line that is no frame: the plain-text greeting every server sends first (for raw
    /// clients), or a frame of a newer protocol.
    pub(super) fn unknown_line(&mut self, line: &str, actions: &mut Vec<Action>) {
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
}
