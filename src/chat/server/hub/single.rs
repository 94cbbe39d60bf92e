//! Single mode (labs 07-01 and 07-02): one client at a time talks with the person at the server
//! console; the others wait in arrival order, and what they type meanwhile is kept. With `--sync`
//! the two sides take strict turns, the client first.

use crate::chat::protocol::{ByeCode, Command, ServerFrame, parse_command};

use crate::chat::server::event::{Ending, Kind};

use super::Hub;
use super::session::Turn;

/// Most lines a queued client may have kept for later.
pub const MAX_HELD: usize = 1000;

impl Hub {
    /// A new connection: served at once if nobody is, else queued. Returns its greeting.
    pub(super) fn single_accepted(&mut self, id: u64) -> String {
        let client = &self.clients[&id];
        let (peer, local) = (client.peer, client.local);
        if self.session.current.is_none() {
            self.session.current = Some(id);
            self.session.turn = Turn::Client;
            self.console
                .event(&format!("connected {peer} → {local}: serving it"));
            let sync = if self.settings.sync {
                "; strict turns (--sync): you speak first, then wait for the answer"
            } else {
                ""
            };
            format!(
                "soquete chat server (single mode): you are talking with {} at the server console{sync}",
                self.settings.name
            )
        } else {
            self.session.queue.push_back(id);
            let position = self.session.queue.len();
            self.console.event(&format!(
                "connected {peer} → {local}: queued at position {position}"
            ));
            let kept = if self.settings.sync {
                "your first line is kept"
            } else {
                "what you type now is kept"
            };
            format!(
                "soquete chat server (single mode) is serving another client: you are queued at position {position}; {kept} and delivered when your turn comes"
            )
        }
    }

    /// A client got its name: a structured client that waits hears its place as a frame too.
    pub(super) fn single_joined(&mut self, id: u64) {
        if self.clients[&id].kind != Kind::Structured {
            return;
        }
        if let Some(index) = self.session.queue.iter().position(|&q| q == id) {
            self.tell_position(id, index + 1);
        }
    }

    /// A client's line: to the console if it is served (and it is its turn), kept if it waits.
    pub(super) fn single_said(&mut self, id: u64, text: String, action: bool) {
        if self.session.current == Some(id) {
            if self.settings.sync && self.session.turn == Turn::Server {
                return self.refuse(
                    id,
                    "not_your_turn",
                    "wait for the answer before sending again (--sync): that line was not delivered",
                );
            }
            return self.client_said(id, text, action);
        }
        let sync = self.settings.sync;
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        if sync && !client.held.is_empty() {
            return self.refuse(
                id,
                "not_your_turn",
                "you have asked already; wait for the answer (--sync): that line was not kept",
            );
        }
        if client.held.len() >= MAX_HELD {
            return self.refuse(
                id,
                "too_many_kept",
                &format!("{MAX_HELD} lines are kept already: that line was not kept"),
            );
        }
        client.held.push((text, action));
        if client.held.len() == 1 {
            self.send(
                id,
                &ServerFrame::Notice {
                    text: "kept: delivered when your turn comes".into(),
                },
            );
        }
    }

    /// The served client's line reaches the console; a structured client gets it back stamped.
    fn client_said(&mut self, id: u64, text: String, action: bool) {
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        let (name, kind) = (client.name.clone(), client.kind);
        let frame = self.msg(name, text, action);
        self.console.message(&frame);
        if kind == Kind::Structured {
            self.send(id, &frame);
        }
        self.session.turn = Turn::Server;
    }

    /// A line typed at the console goes to the served client; `exit` ends its session.
    pub(super) fn single_console(&mut self, line: &str) {
        let Some(current) = self.session.current else {
            if !line.trim().is_empty() {
                self.console
                    .event("! no client is being served: that line was not sent");
            }
            return;
        };
        let (text, action) = match parse_command(line) {
            Some(Command::Quit) => {
                self.send(
                    current,
                    &ServerFrame::Bye {
                        reason: "the server ended the session".into(),
                        code: ByeCode::Ended,
                    },
                );
                return self.remove(current, "session ended at the console", Ending::Graceful);
            }
            Some(Command::Me(action)) if !action.is_empty() => (action, true),
            Some(_) => {
                return self
                    .console
                    .event("! not a console command; /help lists them");
            }
            None if line.trim().is_empty() => return,
            None => (line.to_string(), false),
        };
        if self.settings.sync && self.session.turn == Turn::Client {
            return self
                .console
                .event("! wait for the client's question first (--sync): that line was not sent");
        }
        let frame = self.msg(self.settings.name.clone(), text, action);
        self.send(current, &frame);
        self.session.turn = Turn::Client;
    }

    /// A client left: the next in line is served, or the ones behind it move up.
    pub(super) fn single_removed(&mut self, id: u64) {
        if self.session.current == Some(id) {
            self.session.current = None;
            self.serve_next();
        } else if let Some(index) = self.session.queue.iter().position(|&q| q == id) {
            self.session.queue.remove(index);
            self.tell_positions(index);
        }
    }

    /// Serves the first waiting client still connected; what it typed while waiting follows.
    fn serve_next(&mut self) {
        while let Some(next) = self.session.queue.pop_front() {
            let Some(client) = self.clients.get_mut(&next) else {
                continue;
            };
            let held = std::mem::take(&mut client.held);
            let (peer, local) = (client.peer, client.local);
            let name = if client.name.is_empty() {
                "not named yet".to_string()
            } else {
                client.name.clone()
            };
            self.session.current = Some(next);
            self.session.turn = Turn::Client;
            self.console
                .event(&format!("serving {peer} → {local} ({name})"));
            let text = format!(
                "your turn: you are now talking with {} at the server console",
                self.settings.name
            );
            self.send(next, &ServerFrame::Notice { text });
            for (text, action) in held {
                self.client_said(next, text, action);
            }
            self.tell_positions(0);
            return;
        }
    }

    /// Tells every waiting client from `from` on its (new) place in line.
    fn tell_positions(&mut self, from: usize) {
        let waiting: Vec<u64> = self.session.queue.iter().skip(from).copied().collect();
        for (offset, id) in waiting.into_iter().enumerate() {
            self.tell_position(id, from + offset + 1);
        }
    }

    /// Tells one waiting client its place in line.
    fn tell_position(&mut self, id: u64, position: usize) {
        let text = format!("you are queued at position {position}");
        self.send(id, &ServerFrame::Notice { text });
    }
}
