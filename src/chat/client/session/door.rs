//! The room's password, sent only to a server that asked for it. A password room sends its
//! prompt (`* password:`) before anything else; so a session that holds a password sends its
//! `hello` only once the server's first line has come (or a short wait has run out): with the
//! password when that line is the prompt, without it otherwise. A server that never asks (one
//! without a password, `nc -l`, anyone at the address given) never sees it. Over plain TCP the
//! user is warned, once, that the password crossed the network readable.

use super::{Action, Output, Session};
use crate::chat::protocol::{ClientFrame, PASSWORD_PROMPT, PROTOCOL_VERSION, Secret};

impl Session {
    /// A connection is up: the `hello` goes at once, or, holding a password, once the server's
    /// first line shows whether it asks for it ([`Action::AwaitPrompt`] bounds the wait).
    pub(super) fn greet(&mut self, actions: &mut Vec<Action>) {
        self.password_sent = false;
        if self.settings.password.is_some() {
            self.awaiting_prompt = true;
            actions.push(Action::AwaitPrompt);
        } else {
            self.awaiting_prompt = false;
            self.send_hello(false, actions);
        }
    }

    /// The server's first line, while the `hello` waits for it: the `hello` goes now, with the
    /// password if the line is the prompt. True when the line was the prompt (nothing to show).
    pub(super) fn first_line(&mut self, line: &str, actions: &mut Vec<Action>) -> bool {
        if !std::mem::take(&mut self.awaiting_prompt) {
            return false;
        }
        let asked = line == PASSWORD_PROMPT;
        self.send_hello(asked, actions);
        asked
    }

    /// No line from the server in time: it did not ask, so the `hello` goes without the password.
    pub(super) fn prompt_overdue(&mut self, actions: &mut Vec<Action>) {
        if self.up && std::mem::take(&mut self.awaiting_prompt) {
            self.send_hello(false, actions);
        }
    }

    /// Whether the password was held back on this connection: the server asked too late.
    pub(super) fn password_withheld(&self) -> bool {
        self.settings.password.is_some() && !self.password_sent
    }

    /// Sends the `hello` (a re-join's when we were welcomed before), with the password when the
    /// server `asked`; then, on a first connection, what was typed while it waited.
    fn send_hello(&mut self, asked: bool, actions: &mut Vec<Action>) {
        let rejoin = self.joined;
        let password = self.settings.password.as_ref().filter(|_| asked);
        actions.push(Action::Send(
            ClientFrame::Hello {
                version: PROTOCOL_VERSION,
                name: self.name.clone(),
                last_seq: rejoin.then_some(self.last_seq),
                epoch: self.epoch.clone().filter(|_| rejoin),
                token: self.token.clone().filter(|_| rejoin),
                probe: false,
                password: password.map(|p| Secret::new(p.expose().to_string())),
            }
            .to_json_line(),
        ));
        if password.is_some() {
            self.password_sent = true;
            if !self.settings.encrypted && !std::mem::replace(&mut self.warned_in_clear, true) {
                actions.push(Action::Show(Output::Note(
                    "* warning: the room's password crosses the network readable (no --tls): \
                     anyone on the path can read it"
                        .into(),
                )));
            }
        }
        if self.connections == 1 && !self.joined && !self.failover() {
            // Lines typed while the hello waited go now, after it.
            self.resumed(actions);
        }
    }
}
