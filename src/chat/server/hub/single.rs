//! Single mode (labs 07-01 and 07-02): one client at a time talks with the person at the server
//! console; the others wait in arrival order, and what they type meanwhile is kept (within the
//! budgets of `session`), even if they leave before their turn. With `--sync` the two sides take
//! strict turns, the client first. Waiting in line is not being idle: `--idle-timeout` counts
//! for the served client only, from when it is served.

use std::time::Instant;

use crate::chat::protocol::{ByeCode, Command, ServerFrame, parse_command};

use crate::chat::server::config::Mode;
use crate::chat::server::event::{Ending, Kind};

use super::Hub;
use super::session::{
    Departed, KEPT_BYTES_EACH, KEPT_BYTES_TOTAL, KEPT_LINES, Keeping, Limit, Turn,
};

/// How the console marks the kept lines of a client that left before its turn.
pub const LEFT_MARK: &str = "(left before its turn)";

impl Hub {
    /// A new connection: served at once if nobody is, else queued. Returns its greeting.
    pub(super) fn single_accepted(&mut self, id: u64) -> String {
        let client = &self.clients[&id];
        let (peer, local) = (client.peer, client.local);
        if self.session.current.is_none() {
            self.session.current = Some(id);
            self.session.turn = Turn::Client;
            self.session.heard = Some(Instant::now());
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
            let position = self.session.position(id).unwrap_or_default();
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
        if let Some(position) = self.session.position(id) {
            self.tell_position(id, position);
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
        if sync && !client.held.lines.is_empty() {
            return self.refuse(
                id,
                "not_your_turn",
                "you have asked already; wait for the answer (--sync): that line was not kept",
            );
        }
        match self.session.keep(&mut client.held, text, action) {
            Keeping::Kept { first: true } => self.send(
                id,
                &ServerFrame::Notice {
                    text: "kept: delivered when your turn comes".into(),
                },
            ),
            Keeping::Kept { first: false } | Keeping::Dropped => {}
            Keeping::Refused(limit) => {
                let why = match limit {
                    Limit::Lines => format!("{KEPT_LINES} lines are kept for you already"),
                    Limit::Client => format!(
                        "{} KiB are kept for you already (the most one client may have kept)",
                        KEPT_BYTES_EACH / 1024
                    ),
                    Limit::Total => format!(
                        "the waiting clients have {} MiB kept already (the most the server keeps)",
                        KEPT_BYTES_TOTAL / (1024 * 1024)
                    ),
                };
                self.refuse(
                    id,
                    "too_many_kept",
                    &format!("{why}: that line and what you send until your turn are not kept"),
                );
            }
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

    /// A client left: the next in line is served, or the ones behind it move up. A waiting
    /// client that kept lines keeps its place: they reach the console when its turn comes.
    pub(super) fn single_removed(&mut self, id: u64, departed: Departed) {
        if self.session.current == Some(id) {
            self.session.current = None;
            self.session.release(departed.kept);
            self.serve_next();
        } else if let Some(index) = self.session.queue.iter().position(|&q| q == id) {
            let kept = departed.kept.lines.len();
            if kept == 0 {
                self.session.queue.remove(index);
            } else {
                self.console.event(&format!(
                    "{} left before its turn: its {kept} kept line(s) will be shown when its turn comes",
                    departed.name
                ));
                self.session.left.insert(id, departed);
            }
            self.tell_positions(index);
        }
    }

    /// Serves the first waiting client still connected, and what it typed while waiting
    /// follows; the kept lines of clients that left before their turn are shown on the way.
    fn serve_next(&mut self) {
        while let Some(next) = self.session.queue.pop_front() {
            if let Some(departed) = self.session.left.remove(&next) {
                self.show_departed(departed);
                continue;
            }
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
            self.session.heard = Some(Instant::now());
            self.console
                .event(&format!("serving {peer} → {local} ({name})"));
            let text = format!(
                "your turn: you are now talking with {} at the server console",
                self.settings.name
            );
            self.send(next, &ServerFrame::Notice { text });
            for (text, action) in self.session.release(held) {
                self.client_said(next, text, action);
            }
            self.tell_positions(0);
            return;
        }
    }

    /// The turn of a client that left before it: its kept lines reach the console, marked so.
    fn show_departed(&mut self, departed: Departed) {
        let Departed {
            name,
            peer,
            local,
            kept,
        } = departed;
        self.console.event(&format!(
            "turn of {peer} → {local} ({name}), which left before its turn: what it kept"
        ));
        for (text, action) in self.session.release(kept) {
            let frame = self.msg(name.clone(), text, action);
            let line = String::from_utf8_lossy(&frame.to_text_line()).into_owned();
            self.console
                .event(&format!("{} {LEFT_MARK}", line.trim_end_matches('\n')));
        }
    }

    /// The served client said something: its idle time starts again.
    pub(super) fn single_heard(&mut self, id: u64) {
        if self.session.current == Some(id) {
            self.session.heard = Some(Instant::now());
        }
    }

    /// `--idle-timeout` in single mode: the served client that has said nothing for it since it
    /// was served is let go. Waiting clients are never idle (their readers' reports are not
    /// heeded: the hub alone knows who waits).
    pub(super) fn single_idle_check(&mut self) {
        let (Some(limit), Some(current), Some(heard)) = (
            self.settings.idle_timeout,
            self.session.current,
            self.session.heard,
        ) else {
            return;
        };
        if self.settings.mode == Mode::Single && heard.elapsed() >= limit {
            self.session.heard = None;
            self.idle(current);
        }
    }

    /// Tells every waiting client still connected from index `from` on its (new) place in line.
    fn tell_positions(&mut self, from: usize) {
        let waiting: Vec<(u64, usize)> = self
            .session
            .places()
            .filter(|&(index, _, _)| index >= from)
            .map(|(_, id, place)| (id, place))
            .collect();
        for (id, position) in waiting {
            self.tell_position(id, position);
        }
    }

    /// Tells one waiting client its place in line.
    fn tell_position(&mut self, id: u64, position: usize) {
        let text = format!("you are queued at position {position}");
        self.send(id, &ServerFrame::Notice { text });
    }
}
