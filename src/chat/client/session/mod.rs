//! What a client does with each event (a line typed, a line received, end of input, the server
//! closing, the connection lost and made again): the whole of the client's behaviour as a state
//! machine that never touches a socket or a terminal, so it is tested event by event.
//!
//! Surviving a lost server (structured mode): the session keeps the highest sequence number it
//! has shown, asks for what follows it when it re-joins (`hello.last_seq`, with the room's
//! `epoch`: a server restarted without its history is a new room, shown from its start), never
//! shows a message twice, keeps lines typed while disconnected to send after the re-join, and keeps the messages
//! it sent until the server echoes them back (group mode), resending those the server never
//! stamped.
//!
//! The vocabulary in and out is in `events`; what was typed and is not yet delivered in
//! `pending`; reconnecting and re-joining in `rejoin`; servers that do not speak soquete in
//! `plain`; the `hello`, and the password only to a server that asked, in `door`.

mod door;
mod events;
mod pending;
mod plain;
mod received;
mod rejoin;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;

use super::reconnect::Reconnect;
use crate::chat::protocol::{ClientFrame, Command, Password, Secret, parse_command};
pub use events::{Action, End, Event, LocalEvent, Output};
pub use pending::MAX_QUEUED_LINES;
use pending::Pending;

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
    /// The room's password, sent in a `hello` only to a server that asked for it (`door`).
    pub password: Option<Password>,
    /// The connection is TLS: the password crosses it unreadable (else the user is warned).
    pub encrypted: bool,
    /// How to reconnect when the server is lost; None: a lost server ends the session (always
    /// so with `raw`: a plain server has no resume).
    pub reconnect: Option<Reconnect>,
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
    /// Connections made so far.
    connections: u32,
    /// The server's end of the latest connection, and whether it is another server than the
    /// one before (failover: several servers of one room).
    remote: Option<SocketAddr>,
    moved: bool,
    /// Welcomed on the current connection.
    welcomed: bool,
    /// Welcomed once at least: from then on each new connection is a re-join, which resumes
    /// (until then, refused by a full server say, a connection joins fresh).
    joined: bool,
    /// Failed attempts in a row since the last connection that held (`Event::Steady`): a
    /// connection welcomed and lost soon after counts as failed.
    attempt: u32,
    /// The highest sequence number shown (or the room's at our first welcome): a message at or
    /// below it is never shown again, and a re-join asks for what follows it.
    last_seq: u64,
    /// After a re-join's welcome: the room's last sequence number, which the replay reaches.
    resume_until: Option<u64>,
    /// The room `last_seq` belongs to (the welcome's `epoch`): a welcome with another one is a
    /// server that restarted without its history.
    epoch: Option<String>,
    /// Our session's resume token (the welcome's `token`): a re-join sends it, and only it
    /// takes our name and what we missed back. Never shown.
    token: Option<Secret>,
    /// Lines typed and not yet known to have reached the server.
    pending: Pending,
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
    /// `--raw`: the server's first bytes, up to the length of the line a soquete server on a
    /// TLS-only port says, and whether they were looked at (only once, on the first bytes).
    raw_start: Vec<u8>,
    raw_start_seen: bool,
    /// Holding a password, the `hello` waits for the server's first line: is it the prompt?
    awaiting_prompt: bool,
    /// The password went in this connection's `hello`.
    password_sent: bool,
    /// The user was told the password crossed in clear.
    warned_in_clear: bool,
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
            remote: None,
            moved: false,
            welcomed: false,
            joined: false,
            attempt: 0,
            last_seq: 0,
            resume_until: None,
            epoch: None,
            token: None,
            pending: Pending::new(),
            leave_when_delivered: false,
            awaiting_answer: false,
            leave_after_answer: false,
            leaving: false,
            finished: false,
            foreign: false,
            plain_line_seen: false,
            welcome_overdue: false,
            raw_line: Vec::new(),
            raw_start: Vec::new(),
            raw_start_seen: false,
            awaiting_prompt: false,
            password_sent: false,
            warned_in_clear: false,
        }
    }

    /// True with several servers to go round (failover).
    fn failover(&self) -> bool {
        self.settings
            .reconnect
            .is_some_and(|policy| policy.failover)
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
        self.pending.accepts_input()
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
                if !self.welcomed && self.up && !self.plain() && self.failover() {
                    self.skip_unwelcoming(&mut actions);
                } else if !self.welcomed && self.up && !self.plain() {
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
            Event::PromptTimeout => self.prompt_overdue(&mut actions),
            Event::Steady => self.steady(),
            Event::ReplayTimeout => {
                if self.resume_until.is_some() {
                    self.resumed(&mut actions);
                }
            }
        }
        actions
    }

    /// True while typed lines must wait: no connection, or a re-join not complete yet (the
    /// replay of what we missed comes first, and our unconfirmed messages go before new ones),
    /// or, with several servers, no welcome yet (a server that never sends one is skipped).
    fn holding(&self) -> bool {
        !self.plain()
            && (!self.up
                || self.awaiting_prompt
                || self.resume_until.is_some()
                || ((self.connections > 1 || self.failover()) && !self.welcomed))
    }

    fn connected(&mut self, local: SocketAddr, remote: SocketAddr, actions: &mut Vec<Action>) {
        self.connections += 1;
        self.up = true;
        self.welcomed = false;
        // A plain line on an earlier connection (a full server's refusal) says nothing of this
        // one. (`welcome_overdue` stays: it restarts the heartbeat at the welcome.)
        self.plain_line_seen = false;
        let previous = self.remote.replace(remote);
        self.moved = previous.is_some_and(|previous| previous != remote);
        if self.joined {
            actions.push(self.reconnected(local, remote, previous));
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
            if self.connections > 1 && self.failover() {
                actions.push(Action::AwaitWelcome);
            }
            self.greet(actions);
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
                self.pending.hold(text);
            } else {
                self.send_line(text, actions);
            }
        }
        self.awaiting_answer = self.settings.sync;
    }

    /// Sends a typed line as a `msg` frame, and keeps it until its echo if the server echoes.
    fn send_line(&mut self, line: String, actions: &mut Vec<Action>) {
        actions.push(Action::Send(self.pending.send(line)));
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

    /// The server welcomed us, on the first connection or after a re-join, to a room at
    /// `room_last_seq` whose identity is `epoch`.
    fn welcomed(
        &mut self,
        name: String,
        mode: &str,
        (room_last_seq, epoch): (u64, Option<String>),
        (missed, fresh): (Option<u64>, bool),
        actions: &mut Vec<Action>,
    ) {
        self.welcomed = true;
        let new_room = matches!((&self.epoch, &epoch), (Some(old), Some(new)) if old != new);
        if epoch.is_some() {
            self.epoch = epoch;
        }
        if std::mem::take(&mut self.welcome_overdue) {
            actions.push(Action::Heartbeat(true));
        }
        actions.push(Action::AwaitSteady);
        if !self.names.contains(&name) {
            self.names.push(name.clone());
        }
        self.name = name.clone();
        actions.push(Action::Rename(name));
        // Only a room (group or broker mode) echoes every message to its author.
        self.pending
            .track_echoes(matches!(mode, "group" | "broker"));
        if !std::mem::replace(&mut self.joined, true) {
            // Messages from before we joined are not ours to see, nor to ask for on a re-join.
            self.last_seq = self.last_seq.max(room_last_seq);
            if self.connections > 1 || self.failover() {
                // Refused or skipped before, or one of several servers (each may be `nc -l`):
                // what was typed meanwhile goes now.
                self.resumed(actions);
            }
            return;
        }
        if fresh {
            // The server did not take us back: nothing is replayed.
            self.rejoined_afresh(room_last_seq, new_room, actions);
            return;
        }
        if new_room {
            // Its numbers start again: what it replays is all new to us, whatever its `seq`.
            actions.push(self.new_room_note("from its start"));
            self.last_seq = 0;
        }
        self.rejoined(room_last_seq, missed, actions);
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

    fn leave(&mut self, actions: &mut Vec<Action>) {
        if self.leaving {
            return;
        }
        self.leaving = true;
        actions.push(Action::Send(ClientFrame::Quit.to_json_line()));
        actions.push(Action::AwaitConfirmation);
    }

    /// Ends the session normally; `by` (`server` or `client`) closed the connection.
    fn finish(&mut self, actions: &mut Vec<Action>, end: End, by: &str) {
        let human = match by {
            "server" => "* closed by the server",
            _ => "* closed",
        };
        actions.push(state(Some(human.into()), LocalEvent::Closed { by }));
        actions.push(Action::Finish(end));
        self.finished = true;
    }

    /// Ends the session with the connection failed.
    fn lose(&mut self, actions: &mut Vec<Action>, error: &str) {
        // The error itself is printed once, by main, as every soquete error is.
        actions.push(state(None, LocalEvent::Lost { error }));
        actions.push(Action::Finish(End::Lost(error.to_string())));
        self.finished = true;
    }
}

/// A change of the connection's state, for people (`human`) and for `--json`.
fn state(human: Option<String>, event: LocalEvent<'_>) -> Action {
    Action::Show(Output::State {
        human,
        json: event.to_json(),
    })
}
