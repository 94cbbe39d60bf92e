//! Surviving a lost server (structured mode): the pause before each attempt to connect again
//! and when to give up, the re-join's welcome and replay (on the same server, or on another of
//! the room's: failover), and what is delivered after it.

use std::net::SocketAddr;

use super::{Action, End, LocalEvent, Output, Session, state};
use crate::chat::client::reconnect;
use crate::chat::protocol::Secret;

impl Session {
    /// The line a new connection after a loss is told with: `reconnected`, or, on another
    /// server than the one lost, which one it moved to and from.
    pub(super) fn reconnected(
        &self,
        local: SocketAddr,
        remote: SocketAddr,
        previous: Option<SocketAddr>,
    ) -> Action {
        let human = match previous.filter(|_| self.moved) {
            Some(previous) => format!(
                "* connected to another server: local {local} → remote {remote} (after \
                 {previous} went away)"
            ),
            None => format!("* reconnected: local {local} → remote {remote}"),
        };
        state(
            Some(human),
            LocalEvent::Reconnected {
                local: local.to_string(),
                remote: remote.to_string(),
                previous: previous
                    .filter(|_| self.moved)
                    .map(|previous| previous.to_string()),
            },
        )
    }

    /// A welcome into a room with another epoch than ours: a server restarted without its
    /// history, or, after moving to another server, a server of another room. It is shown
    /// `from` its start or from now on.
    pub(super) fn new_room_note(&self, from: &str) -> Action {
        Action::Show(Output::Note(if self.moved {
            format!(
                "* this server holds another room than the one we were in (not one room across \
                 servers: serve --cluster?): it is shown {from}"
            )
        } else {
            format!(
                "* the server restarted without its history (no --log?): its new room is shown \
                 {from}"
            )
        }))
    }

    /// Welcomed again after a loss: what the server could not replay is counted, and what it
    /// replays is waited for before our own lines go.
    pub(super) fn rejoined(
        &mut self,
        room_last_seq: u64,
        missed: Option<u64>,
        actions: &mut Vec<Action>,
    ) {
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

    /// A welcome's `token`: keeps it; says whether it begins a new session (a re-join the server
    /// did not resume: a token other than the one we sent).
    pub(super) fn new_session(&mut self, token: Option<Secret>) -> bool {
        let Some(token) = token else {
            // An older server, with no tokens: a re-join resumes as it always did.
            return false;
        };
        let fresh = self.token.as_ref() != Some(&token);
        self.token = Some(token);
        fresh
    }

    /// Welcomed again after a loss, but as a new session (away longer than the server keeps a
    /// name, or a server restarted without its log): nothing is replayed; what was typed
    /// meanwhile goes now.
    pub(super) fn rejoined_afresh(
        &mut self,
        room_last_seq: u64,
        new_room: bool,
        actions: &mut Vec<Action>,
    ) {
        self.awaiting_answer = false;
        if new_room {
            actions.push(self.new_room_note("from now on"));
        } else if room_last_seq > self.last_seq {
            let count = room_last_seq - self.last_seq;
            let human = format!(
                "* the server did not resume this session (away too long?): {} said meanwhile \
                 not shown",
                plural(u32::try_from(count).unwrap_or(u32::MAX), "message")
            );
            actions.push(state(Some(human), LocalEvent::Missed { count }));
        }
        self.last_seq = room_last_seq;
        self.resumed(actions);
    }

    /// The re-join is complete: what was never confirmed goes again, then what was typed
    /// meanwhile, in order; then we leave if input ended meanwhile.
    pub(super) fn resumed(&mut self, actions: &mut Vec<Action>) {
        self.resume_until = None;
        let (frames, sent_any) = self.pending.redeliver();
        actions.extend(frames.into_iter().map(Action::Send));
        if self.settings.sync && sent_any {
            self.awaiting_answer = true;
        }
        if std::mem::take(&mut self.leave_when_delivered) {
            self.leave(actions);
        }
    }

    /// We want to leave while disconnected: at once if nothing we typed is waiting, else once
    /// it is delivered.
    pub(super) fn leave_when_delivered(&mut self, actions: &mut Vec<Action>) {
        if !self.up && self.pending.waiting() == 0 {
            self.finish(actions, End::Done, "client");
            return;
        }
        if !self.up && !self.leave_when_delivered {
            actions.push(Action::Show(Output::Note(format!(
                "* leaving once reconnected and {} delivered (Ctrl-C leaves now)",
                lines(self.pending.waiting())
            ))));
        }
        self.leave_when_delivered = true;
    }

    /// `N typed lines not sent` while lines wait for the server: said when the session ends
    /// without a server to take them (a refused certificate).
    pub fn unsent(&self) -> Option<String> {
        let waiting = self.pending.waiting();
        (waiting > 0).then(|| format!("{} not sent", lines(waiting)))
    }

    /// Ctrl-C while disconnected: no waiting for the server.
    pub(super) fn give_up_now(&mut self, actions: &mut Vec<Action>) {
        let waiting = self.pending.waiting();
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

    /// The connection ended without our asking (`closed`: cleanly, by end of stream or a
    /// shutdown `bye`): the end of the session, or a reason to connect again.
    pub(super) fn connection_lost(&mut self, error: &str, closed: bool, actions: &mut Vec<Action>) {
        if self.drop_connection(error, closed, actions) {
            self.retry(error, actions);
        }
    }

    /// A full server (`--max-clients`) refused us: we try again, as after a loss, saying so.
    pub(super) fn refused(&mut self, actions: &mut Vec<Action>) {
        let error = "the server is full (--max-clients)";
        if self.drop_connection(error, false, actions) {
            self.schedule("the server is full — trying again", error, actions);
        }
    }

    /// With several servers, one that gave no welcome in time (`nc -l`, a server that only
    /// sends text) is skipped as one that refused: the next is tried, as after a loss; lines
    /// typed meanwhile wait for the welcome elsewhere.
    pub(super) fn skip_unwelcoming(&mut self, actions: &mut Vec<Action>) {
        let server = self
            .remote
            .map_or_else(|| "the server".to_string(), |remote| remote.to_string());
        let error = format!("{server}: no welcome in time (not a soquete server?)");
        if self.drop_connection(&error, false, actions) {
            self.schedule(&format!("{error} — skipped; reconnecting"), &error, actions);
        }
    }

    /// The connection is gone: ends the session (false), or readies it to connect again (true).
    fn drop_connection(&mut self, error: &str, closed: bool, actions: &mut Vec<Action>) -> bool {
        let reconnects = !self.plain() && self.settings.reconnect.is_some();
        let delivered = self.pending.all_confirmed();
        if !reconnects || (self.leaving && delivered) {
            if closed && (self.plain() || self.leaving) {
                self.finish(actions, End::Done, "server");
            } else {
                self.lose(actions, error);
            }
            return false;
        }
        if std::mem::take(&mut self.leaving) {
            // We were leaving, but not everything we said is known to have arrived: deliver it
            // again, then leave.
            self.leave_when_delivered = true;
        }
        self.up = false;
        self.welcomed = false;
        self.resume_until = None;
        true
    }

    /// The connection has held since its welcome ([`Event::Steady`]): the next loss is a new
    /// one, met at once by the next server and then by the backoff from its start. Until then a
    /// server that welcomes and drops us counts as a failed attempt: the backoff goes on growing
    /// and `--reconnect-attempts` counts it.
    ///
    /// [`Event::Steady`]: super::Event::Steady
    pub(super) fn steady(&mut self) {
        if self.up && self.welcomed {
            self.attempt = 0;
        }
    }

    /// Schedules the next attempt to connect, or gives up past the limit.
    pub(super) fn retry(&mut self, error: &str, actions: &mut Vec<Action>) {
        self.schedule(
            &format!("connection lost ({error}) — reconnecting"),
            error,
            actions,
        );
    }

    /// The next attempt to connect, told as `* {what} in 0.5 s (attempt 1)`; or the end, past
    /// the limit of attempts.
    fn schedule(&mut self, what: &str, error: &str, actions: &mut Vec<Action>) {
        let Some(policy) = self.settings.reconnect else {
            self.lose(actions, error);
            return;
        };
        self.attempt += 1;
        if policy.exhausted(self.attempt) {
            let mut error = format!(
                "gave up after {} to reconnect ({error})",
                plural(self.attempt - 1, "attempt")
            );
            let waiting = self.pending.waiting();
            if waiting > 0 {
                error.push_str(&format!(": {} not sent", lines(waiting)));
            }
            self.lose(actions, &error);
            return;
        }
        let delay = policy.pause(self.attempt, reconnect::jitter());
        let when = if delay.is_zero() {
            "now, to the next server".to_string()
        } else {
            format!("in {}", reconnect::describe(delay))
        };
        actions.push(state(
            Some(format!("* {what} {when} (attempt {})", self.attempt)),
            LocalEvent::Reconnecting {
                attempt: self.attempt,
                delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                error,
            },
        ));
        actions.push(Action::Reconnect(delay));
    }
}

/// `1 attempt`, `3 attempts`.
fn plural(count: u32, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

/// `1 typed line`, `2 typed lines`.
fn lines(count: usize) -> String {
    plural(u32::try_from(count).unwrap_or(u32::MAX), "typed line")
}
