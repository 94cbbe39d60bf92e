//! Membership and naming: a connection accepted, told apart (structured or raw) by its first
//! line, named (its wish, or `guest-N`), welcomed (with what it missed, when it resumes),
//! renamed, and let go; names are unique whatever their case, and so are names that look alike.

use std::net::Shutdown;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::chat::protocol::{
    ByeCode, Greeting, Member, PROTOCOL_VERSION, ServerFrame, name_key, validate_name,
};
use crate::net::clock::now;

use crate::chat::server::cluster::{Line, Verdict};
use crate::chat::server::config::Mode;
use crate::chat::server::event::{Accepted, Ending, Input, Kind};
use crate::chat::server::outbox::Outgoing;

use super::Hub;
use super::client::Client;
use super::round::Unheard;
use super::session::Departed;

/// Join and leave notices go to everyone while the room has at most this many members; in a
/// larger room they would grow with the square of its size, so only the console logs them
/// (`/who` still lists everyone).
pub const ANNOUNCE_LIMIT: usize = 100;

/// The name no client may take or look like, whatever the console is called: the server's voice.
const RESERVED_NAME: &str = "server";

impl Hub {
    /// A new connection, not named yet: its writer is counted, and (but by a broker) it is
    /// greeted with a line any client can read.
    pub(super) fn accepted(&mut self, accepted: Accepted) {
        self.live_writers += 1;
        let id = accepted.id;
        self.clients.insert(id, Client::new(accepted));
        // A raw client such as the course's may wait for a reply before finishing its first
        // line: it hears something readable at once.
        let greeting = match self.settings.mode {
            Mode::Group => format!(
                "soquete chat server (group mode) at {}: type a line to talk to everyone, /help lists commands",
                self.settings.listening
            ),
            Mode::Echo => "soquete echo server: every line you send comes back".to_string(),
            Mode::Single => self.single_accepted(id),
            Mode::Broker => return,
        };
        self.send(id, &ServerFrame::Notice { text: greeting });
    }

    /// The first line says what the connection is: a soquete client's `hello` (or a probe),
    /// or a raw client's first line of text.
    pub(super) fn first_line(&mut self, id: u64, greeting: Greeting) {
        // What was said before this line goes out (or, to this connection, is kept for it) first.
        self.flush_round();
        // A shared room asks Redis first (and may wait for its reader): then this goes on.
        let Some(greeting) = self.admit(id, greeting) else {
            return;
        };
        self.first_line_now(id, greeting);
        self.admission_done(id);
    }

    /// The first line, handled (once a shared room's Redis has had its say).
    fn first_line_now(&mut self, id: u64, greeting: Greeting) {
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        if matches!(greeting, Greeting::Structured { .. }) {
            client.unheard = Unheard::default();
        }
        match greeting {
            Greeting::Structured { probe: true, .. } => {
                // `soquete probe --chat`: say what is here, and let it go without a join.
                client.kind = Kind::Structured;
                self.welcome(id);
                self.send(
                    id,
                    &ServerFrame::Bye {
                        reason: "probe answered".into(),
                        code: ByeCode::Probe,
                    },
                );
                self.remove(id, "answered a soquete probe", Ending::Graceful);
            }
            Greeting::Structured {
                name,
                last_seq,
                epoch,
                token,
                ..
            } => {
                client.kind = Kind::Structured;
                if self.settings.mode.is_room() {
                    // Only the session's token resumes it (a name in use, what was missed).
                    self.open_session(id, &name, (last_seq, epoch), token);
                }
                let Some(client) = self.clients.get(&id) else {
                    return;
                };
                if client.named() {
                    // Announced as raw after the grace, then it said hello: it keeps its place.
                    self.nick(id, &name);
                    self.welcome(id);
                } else {
                    self.join(id, Some(&name));
                }
            }
            Greeting::BadHello(why) => {
                // Never text: it may carry a token or a password.
                client.kind = Kind::Structured;
                self.refuse(id, "bad_frame", &why);
                self.remove(id, "sent a hello that is not valid", Ending::Graceful);
            }
            Greeting::Raw(line) => {
                if client.kind == Kind::Pending {
                    client.kind = Kind::Raw;
                }
                if !client.named() {
                    self.join(id, None);
                }
                self.input(id, Input::Text(line));
            }
        }
    }

    /// Names a client (its wish if free and valid, else `guest-N`), welcomes it and announces it.
    pub(super) fn join(&mut self, id: u64, wish: Option<&str>) {
        // What the room said before this client joined is not for it (a resume replays it from
        // the history, after the welcome).
        self.flush_round();
        let name = match wish.map(validate_name) {
            Some(Ok(name)) => match self
                .name_taken(&name, id)
                .or_else(|| self.taken_elsewhere(id, &name))
            {
                None => name,
                Some(held) => {
                    self.send(id, &name_taken(&name, &held));
                    self.guest_name()
                }
            },
            Some(Err(message)) => {
                self.send(
                    id,
                    &ServerFrame::Error {
                        code: "bad_name".into(),
                        message,
                    },
                );
                self.guest_name()
            }
            None => self.guest_name(),
        };
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        client.name = name.clone();
        self.names.insert(name_key(&name), id);
        let (peer, local, kind) = (client.peer, client.local, client.kind);
        // What the room said since the connection was accepted comes first, then its welcome.
        self.release_unheard(id);
        // An echo client sent raw hears nothing but its own lines back after the greeting.
        if self.settings.mode != Mode::Echo || kind == Kind::Structured {
            self.welcome(id);
        }
        match self.settings.mode {
            Mode::Group | Mode::Broker => {
                self.console.event(&format!(
                    "connected {peer} → {local} ({name}, {})",
                    kind.label()
                ));
                self.notice_shared(Line::Join {
                    name: name.clone(),
                    addr: peer.to_string(),
                    kind: kind.label().into(),
                    client: id,
                });
                self.joined_shared(id);
                if self.names.len() <= ANNOUNCE_LIMIT {
                    let frame = ServerFrame::Join {
                        time: now(),
                        name,
                        addr: peer.to_string(),
                    };
                    self.broadcast(&frame, Some(id));
                }
            }
            Mode::Echo => self.console.event(&format!(
                "connected {peer} → {local} ({name}, {})",
                kind.label()
            )),
            Mode::Single => self.single_joined(id),
        }
    }

    /// The `welcome`; for a client that resumes, followed by every kept message it missed.
    pub(super) fn welcome(&mut self, id: u64) {
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        let (replay, missed) = match client.resume.take() {
            Some(last_seq) => self.history.since(last_seq, self.seq),
            None => (Vec::new(), 0),
        };
        let token = self.reveal_token(id);
        let client = &self.clients[&id];
        let frame = ServerFrame::Welcome {
            version: PROTOCOL_VERSION,
            server: format!("soquete {}", env!("CARGO_PKG_VERSION")),
            mode: self.settings.mode.name().into(),
            name: client.name.clone(),
            room_size: self.names.len() + self.remote_members(),
            last_seq: self.seq,
            epoch: Some(self.history.epoch().to_string()),
            missed: (missed > 0).then_some(missed),
            token,
        };
        let stats = Arc::clone(&client.stats);
        let structured = client.kind == Kind::Structured;
        self.send(id, &frame);
        if let Some(outbox) = &self.clients.get(&id).and_then(|c| c.outbox.as_ref()) {
            for bytes in replay {
                let _ = outbox.send(Outgoing::one(bytes, 1, false));
            }
        }
        if structured {
            stats.start_heartbeat();
        }
    }

    /// The next free `guest-N`.
    fn guest_name(&mut self) -> String {
        loop {
            self.guests += 1;
            let name = format!("guest-{}", self.guests);
            let elsewhere = self.waiting.remote.iter().any(|m| m.name == name);
            if !elsewhere && self.name_taken(&name, u64::MAX).is_none() {
                return name;
            }
        }
    }

    /// `name`, which a shared room's Redis says another server holds, as this client's hello
    /// asked for it.
    fn taken_elsewhere(&self, id: u64, name: &str) -> Option<String> {
        let admission = self.waiting.admitted.get(&id)?;
        let asked = admission.key.as_deref() == Some(name_key(name).as_str());
        matches!(admission.verdict, Some(Verdict::Taken))
            .then_some(name.to_string())
            .filter(|_| asked)
    }

    /// Members of the other servers of a shared room (their consoles not counted).
    fn remote_members(&self) -> usize {
        self.waiting
            .remote
            .iter()
            .filter(|m| m.kind != "console")
            .count()
    }

    /// True when `name` looks like one in use or reserved on this server.
    pub(super) fn name_taken_here(&self, name: &str, except: u64) -> bool {
        self.name_taken(name, except).is_some()
    }

    /// The name in use or reserved that `name` looks like (the same [`name_key`]), if any: a
    /// member's but `except`'s, the console's, or `server`, which no client may pass for.
    fn name_taken(&self, name: &str, except: u64) -> Option<String> {
        let wanted = name_key(name);
        [self.settings.name.as_str(), RESERVED_NAME]
            .into_iter()
            .find(|reserved| name_key(reserved) == wanted)
            .map(str::to_string)
            .or_else(|| {
                let id = *self.names.get(&wanted).filter(|&&id| id != except)?;
                Some(self.clients.get(&id)?.name.clone())
            })
            .or_else(|| self.reserved.held(&wanted).map(str::to_string))
    }

    /// `/nick`: unique without regard to case (in a shared room, asked of Redis first); everyone
    /// hears of the change.
    pub(super) fn nick(&mut self, id: u64, wish: &str) {
        if !self.ask_nick(id, wish) {
            self.nick_now(id, wish);
        }
    }

    /// `/nick`, once a shared room's Redis has had its say.
    pub(super) fn nick_now(&mut self, id: u64, wish: &str) {
        let name = match validate_name(wish) {
            Ok(name) => name,
            Err(message) => return self.refuse(id, "bad_name", &message),
        };
        if let Some(held) = self.name_taken(&name, id) {
            return self.send(id, &name_taken(&name, &held));
        }
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        let old = std::mem::replace(&mut client.name, name.clone());
        if old == name {
            return;
        }
        self.names.remove(&name_key(&old));
        self.names.insert(name_key(&name), id);
        self.renamed_shared(id, &old);
        self.log_session(id);
        let frame = ServerFrame::Nick {
            time: now(),
            old,
            new: name,
        };
        self.console.message(&frame);
        if self.settings.mode.is_room() {
            if let ServerFrame::Nick { old, new, .. } = &frame {
                let (old, new) = (old.clone(), new.clone());
                self.notice_shared(Line::Nick {
                    old,
                    new,
                    client: id,
                });
            }
            self.broadcast(&frame, None);
        } else {
            self.send(id, &frame);
        }
    }

    /// The console, then every named client in order of arrival.
    pub(super) fn members(&self) -> Vec<Member> {
        let console = Member {
            name: self.settings.name.clone(),
            addr: self.settings.listening.to_string(),
            kind: "console".into(),
        };
        std::iter::once(console)
            .chain(
                self.clients
                    .values()
                    .filter(|c| c.named())
                    .map(Client::member),
            )
            .chain(self.waiting.remote.iter().cloned())
            .collect()
    }

    /// Forgets a client; announces it left if it had joined.
    pub(super) fn remove(&mut self, id: u64, reason: &str, ending: Ending) {
        // What the room said before this client left is still its to read (a graceful ending
        // drains the outbox).
        self.flush_round();
        self.admission_gone(id);
        let Some(mut client) = self.clients.remove(&id) else {
            return;
        };
        self.connected.fetch_sub(1, Ordering::Relaxed);
        client.stats.close();
        client.outbox = None;
        if ending == Ending::Forced {
            let _ = client.stream.shutdown(Shutdown::Both);
        }
        self.congested.remove(&id);
        let (peer, local) = (client.peer, client.local);
        // Single mode: what a waiting client kept still reaches the console at its turn.
        let departed = (self.settings.mode == Mode::Single).then(|| Departed {
            name: client.name.clone(),
            peer,
            local,
            kept: std::mem::take(&mut client.held),
        });
        if !client.named() {
            self.console.event(&format!(
                "probe {peer} → {local}: {reason}, without joining{}",
                self.whose(peer)
            ));
        } else {
            // Counted with the one leaving, as its join was counted with it.
            let announce = self.names.len() <= ANNOUNCE_LIMIT;
            self.names.remove(&name_key(&client.name));
            self.left_shared(&client);
            self.reserve_name(&mut client);
            self.console.event(&format!(
                "disconnected {peer} → {local} ({}: {reason})",
                client.name
            ));
            if self.settings.mode.is_room() {
                self.notice_shared(Line::Leave {
                    name: client.name.clone(),
                    reason: reason.into(),
                    client: id,
                });
            }
            if self.settings.mode.is_room() && announce {
                let frame = ServerFrame::Leave {
                    time: now(),
                    name: client.name,
                    reason: reason.into(),
                };
                self.broadcast(&frame, None);
            }
        }
        if let Some(departed) = departed {
            self.single_removed(id, departed);
        }
    }
}

/// The error for a name someone has already, or one that looks like it (`held`).
pub(super) fn name_taken(name: &str, held: &str) -> ServerFrame {
    let message = if name == held {
        format!("the name {name} is taken (names are unique, whatever their case)")
    } else {
        format!(
            "the name {name} looks like {held}, which is taken (names that look alike, whatever their case, are one name)"
        )
    };
    ServerFrame::Error {
        code: "name_taken".into(),
        message,
    }
}

#[cfg(test)]
mod tests;
