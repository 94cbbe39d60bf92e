//! Sessions and their resume tokens (group and broker mode): a structured client's welcome gives
//! it a secret token, and only a `hello` that carries it takes the session back, its name (from
//! a connection still open, or from the reservation its drop left) and what it missed. A name
//! dropped without a quit stays reserved for its session for a while (`name_reserve`), at most
//! [`MAX_RESERVED_PER_SOURCE`] for one address (or IPv6 /64); the log keeps each session's token
//! digest, never the token, and until when its name is reserved, so that a restart with `--log`
//! lets it resume in the time it had left.
//!
//! [`MAX_RESERVED_PER_SOURCE`]: crate::chat::server::token::MAX_RESERVED_PER_SOURCE

use chrono::{DateTime, FixedOffset};

use crate::chat::protocol::{ByeCode, Secret, ServerFrame, name_key, validate_name};
use crate::chat::server::cluster::{Op, Verdict};
use crate::chat::server::event::Ending;
use crate::chat::server::token::{Digest, Reserve, Resumable, SessionLine, Source, new_token};

use super::Hub;
use super::client::Client;
use super::room::log_failed;

impl Hub {
    /// A structured client's `hello` (group and broker mode): with the token of the session that
    /// holds or has reserved the name it asks for, it takes that session over and resumes after
    /// `last_seq`; anything else is a new session, with a new token, and no replay of what was
    /// said before it joined.
    pub(super) fn open_session(
        &mut self,
        id: u64,
        wish: &str,
        (last_seq, epoch): (Option<u64>, Option<String>),
        token: Option<Secret>,
    ) {
        let resumed = token.is_some_and(|token| self.resume_session(id, wish, token));
        // A `last_seq` of another room (the server restarted without its history) says nothing
        // of this one: the client gets this room from its start.
        let here = epoch.is_none_or(|epoch| epoch == self.history.epoch());
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        if resumed {
            client.resume = last_seq.map(|seq| if here { seq } else { 0 });
            return;
        }
        // A shared room made the token when it asked Redis for the name.
        let fresh = self
            .waiting
            .admitted
            .get_mut(&id)
            .and_then(|a| a.fresh.take());
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        match fresh.or_else(|| new_token().map(|(token, digest)| (Secret::new(token), digest))) {
            Some((token, digest)) => {
                client.token = Some(Resumable {
                    digest,
                    reveal: Some(token),
                })
            }
            None => self.console.event(&format!(
                "! the system's random generator failed: {} cannot resume if it drops",
                client.peer
            )),
        }
    }

    /// True when `token` is that of the session holding the name `wish`, live or reserved: the
    /// client takes the session over (a live connection of it is told it is replaced, and let go).
    fn resume_session(&mut self, id: u64, wish: &str, token: Secret) -> bool {
        let Ok(name) = validate_name(wish) else {
            return false;
        };
        let key = name_key(&name);
        let digest = Digest::of(token.expose());
        let resumed = match self.names.get(&key).copied().filter(|&old| old != id) {
            Some(old) => {
                let theirs = self.clients.get(&old).and_then(|c| c.token.as_ref());
                let same = theirs.is_some_and(|theirs| theirs.digest.matches(&digest));
                if same {
                    self.replace(old, id, &name);
                }
                same
            }
            None => self.reserved.claim(&key, &digest) || self.resumed_elsewhere(id),
        };
        if let Some(client) = self.clients.get_mut(&id).filter(|_| resumed) {
            client.token = Some(Resumable {
                digest,
                reveal: Some(token),
            });
        }
        resumed
    }

    /// The session's old connection, most likely half-open since the network dropped, is told
    /// and let go; its session goes on on `id`.
    fn replace(&mut self, old: u64, id: u64, name: &str) {
        if let Some(client) = self.clients.get_mut(&old) {
            client.token = None;
        }
        let newcomer = self.clients[&id].peer;
        self.send(
            old,
            &ServerFrame::Bye {
                reason: format!("{name} reconnected from {newcomer}: this connection is replaced"),
                code: ByeCode::Replaced,
            },
        );
        self.remove(old, "reconnected", Ending::Graceful);
    }

    /// The token for this client's welcome, once (the session is logged under its name then).
    pub(super) fn reveal_token(&mut self, id: u64) -> Option<Secret> {
        let token = self.clients.get_mut(&id)?.token.as_mut()?.reveal.take();
        if token.is_some() {
            self.log_session(id);
        }
        token
    }

    /// True when a shared room's Redis said this client's token resumes its session (held on
    /// another server, or reserved there).
    fn resumed_elsewhere(&self, id: u64) -> bool {
        let admission = self.waiting.admitted.get(&id);
        admission.is_some_and(|a| a.verdict == Some(Verdict::Resumed))
    }

    /// Logs the name of this client's session (it began, or it was renamed); a shared room's
    /// Redis learns it too (a token resumes it on any server of the room).
    pub(super) fn log_session(&mut self, id: u64) {
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        if let Some(token) = &client.token {
            // What Redis's admission did already (a resume, a new name) is not done again.
            let key = name_key(&client.name);
            let admitted = self.waiting.admitted.get(&id).is_some_and(|a| {
                a.key.as_ref() == Some(&key)
                    && matches!(a.verdict, Some(Verdict::Resumed | Verdict::Claimed))
            });
            if !admitted {
                let digest = token.digest.hex();
                self.presence(Op::Session { digest, key });
            }
            let line = SessionLine::Session {
                name: client.name.clone(),
                token_sha256: token.digest.hex(),
            };
            log_failed(self.history.append(&line.to_json_line()));
        }
    }

    /// The client quits: its session ends, and its name is free at once.
    pub(super) fn end_session(&mut self, id: u64) {
        if let Some(token) = self.clients.get_mut(&id).and_then(|c| c.token.take()) {
            self.presence(Op::EndSession {
                digest: token.digest.hex(),
            });
            self.log_session_end(&token.digest);
        }
    }

    /// A member that left without a quit keeps its name reserved for its session (unless its
    /// address has as many reserved as it may, or the table is full: then its session ends).
    pub(super) fn reserve_name(&mut self, client: &mut Client) {
        let Some(token) = client.token.take() else {
            return;
        };
        let source = Source::of(client.peer.ip());
        let (key, digest) = (name_key(&client.name), token.digest.hex());
        match self
            .reserved
            .reserve(client.name.clone(), token.digest, source)
        {
            Reserve::Kept { until } => {
                self.presence(Op::Dropped { key, digest });
                self.log_reserved(&token.digest, until)
            }
            Reserve::NotKept => {
                self.presence(Op::EndSession {
                    digest: digest.clone(),
                });
                self.presence(Op::Release {
                    key,
                    digest: Some(digest),
                });
                self.log_session_end(&token.digest)
            }
        }
    }

    /// Says in the log until when the session's name is reserved, so a restart keeps it only
    /// for the time it has left.
    pub(super) fn log_reserved(&mut self, digest: &Digest, until: DateTime<FixedOffset>) {
        let line = SessionLine::SessionReserved {
            token_sha256: digest.hex(),
            until,
        };
        log_failed(self.history.append(&line.to_json_line()));
    }

    /// Frees the names whose reservation ran out: their sessions are over.
    pub(super) fn expire_reservations(&mut self) {
        for over in self.reserved.expire() {
            let digest = over.digest.hex();
            self.presence(Op::EndSession {
                digest: digest.clone(),
            });
            self.presence(Op::Release {
                key: name_key(&over.name),
                digest: Some(digest),
            });
            self.log_session_end(&over.digest);
        }
    }

    fn log_session_end(&mut self, digest: &Digest) {
        let line = SessionLine::SessionEnd {
            token_sha256: digest.hex(),
        };
        log_failed(self.history.append(&line.to_json_line()));
    }
}

#[cfg(test)]
mod tests;
