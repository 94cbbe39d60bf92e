//! Sessions and their resume tokens (group and broker mode): a structured client's welcome gives
//! it a secret token, and only a `hello` that carries it takes the session back, its name (from
//! a connection still open, or from the reservation its drop left) and what it missed. A name
//! dropped without a quit stays reserved for its session for a while (`name_reserve`); the log
//! keeps each session's token digest, never the token, so that a restart with `--log` lets it
//! resume.

use crate::chat::protocol::{ByeCode, ServerFrame, name_key, validate_name};
use crate::chat::server::event::Ending;
use crate::chat::server::token::{Digest, Resumable, SessionLine, new_token};

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
        token: Option<String>,
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
        match new_token() {
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
    fn resume_session(&mut self, id: u64, wish: &str, token: String) -> bool {
        let Ok(name) = validate_name(wish) else {
            return false;
        };
        let key = name_key(&name);
        let digest = Digest::of(&token);
        let resumed = match self.names.get(&key).copied().filter(|&old| old != id) {
            Some(old) => {
                let theirs = self.clients.get(&old).and_then(|c| c.token.as_ref());
                let same = theirs.is_some_and(|theirs| theirs.digest.matches(&digest));
                if same {
                    self.replace(old, id, &name);
                }
                same
            }
            None => self.reserved.claim(&key, &digest),
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
    pub(super) fn reveal_token(&mut self, id: u64) -> Option<String> {
        let token = self.clients.get_mut(&id)?.token.as_mut()?.reveal.take();
        if token.is_some() {
            self.log_session(id);
        }
        token
    }

    /// Logs the name of this client's session (it began, or it was renamed).
    pub(super) fn log_session(&mut self, id: u64) {
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        if let Some(token) = &client.token {
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
            self.log_session_end(&token.digest);
        }
    }

    /// A member that left without a quit keeps its name reserved for its session.
    pub(super) fn reserve_name(&mut self, client: &mut Client) {
        let Some(token) = client.token.take() else {
            return;
        };
        if !self.reserved.reserve(client.name.clone(), token.digest) {
            self.log_session_end(&token.digest);
        }
    }

    /// Frees the names whose reservation ran out: their sessions are over.
    pub(super) fn expire_reservations(&mut self) {
        for over in self.reserved.expire() {
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
