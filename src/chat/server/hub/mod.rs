//! The hub: the one thread that owns the room (its members, their names, its sequence number,
//! history and log). Readers, the accept thread, the console and Ctrl-C talk to it over one
//! bounded channel; it talks to each client through that client's bounded outbox without ever
//! blocking, so a client that stops reading only ever holds up itself.
//!
//! This file is the loop and the hub's state. What the hub does with an event lives beside it,
//! each file adding methods to [`Hub`]: `members` (joining, naming, leaving), `commands` (a
//! member's input), `room` (stamping and fanning out the room's messages), `congestion` (slow
//! readers), `operator` (the console's lines), `single` (single mode's line). The plain state
//! they keep is in `client`, `round` and `session`, which import none of them.

mod admit;
mod client;
mod commands;
mod congestion;
mod members;
mod operator;
mod resume;
mod room;
mod round;
mod session;
mod shared;
mod single;
mod waiting;

#[cfg(test)]
mod fixture;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset};
use crossbeam_channel::{Receiver, RecvTimeoutError};

use crate::chat::protocol::{ByeCode, MAX_LINE_BYTES, ServerFrame};
use crate::net::clock::now;
use crate::net::tls::server::ServerTls;

use super::cluster::{Line, Link};
use super::config::Mode;
use super::console::Console;
use super::ddns::Report;
use super::denials::Denials;
use super::event::{Ending, Event};
use super::history::History;
use super::throttle::RateLimit;
use super::token::Reservations;

use client::Client;
use round::RoomBatch;
use session::Session;
use waiting::Waiting;

/// How long, at Ctrl-C, the writers get to deliver `bye` before the process exits.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// How often the hub looks for clients that stopped reading ([`STALL_TIMEOUT`]).
///
/// [`STALL_TIMEOUT`]: super::outbox::STALL_TIMEOUT
pub const STALL_CHECK: Duration = Duration::from_millis(250);
/// Most events handled in one round before the round's messages are queued for the members.
pub const ROUND_EVENTS: usize = 64;
/// Most bytes of messages (of the larger flavour) stamped in one round.
pub const ROUND_BYTES: usize = 256 * 1024;

/// What the hub needs to know of how the server was started.
pub struct Settings {
    pub mode: Mode,
    pub sync: bool,
    /// The console's name.
    pub name: String,
    /// The listening socket's address.
    pub listening: SocketAddr,
    /// For the notice a flooder gets.
    pub rate_limit: RateLimit,
    /// For the `bye` of an idle client.
    pub idle_timeout: Option<Duration>,
    /// The certificate served, for `/status` and `/reload` (None: plain TCP).
    pub tls: Option<Arc<ServerTls>>,
    /// How long a dropped client's name stays reserved for its resume token.
    pub name_reserve: Duration,
    /// `--ddns`: the last check of the server's name, for `/status`.
    pub ddns: Option<Report>,
    /// `--cluster`: the room is shared through Redis; the hub stamps nothing itself.
    pub cluster: Option<Link>,
}

/// The owner of the room.
pub struct Hub {
    settings: Settings,
    /// When the server started, for `/status`.
    started: DateTime<FixedOffset>,
    /// Every accepted connection, in order of arrival.
    clients: BTreeMap<u64, Client>,
    /// The room's last sequence number.
    seq: u64,
    /// The last `guest-N` handed out.
    guests: u64,
    /// Writer threads not yet finished: at shutdown the hub waits for them.
    live_writers: usize,
    console: Console,
    /// Single mode: who is served, who waits.
    session: Session,
    /// The room's last messages, and its log.
    history: History,
    /// Connections open now, shared with the accept thread (`--max-clients`).
    connected: Arc<AtomicUsize>,
    /// Every member's name by its `name_key` (names that look alike are one), and its client.
    names: HashMap<String, u64>,
    /// Names kept for the sessions that dropped them, until they resume or their time runs out.
    reserved: Reservations,
    /// Clients whose outbox went over its bounds, and since when: the hub takes no input until
    /// they drain to half, or [`STALL_TIMEOUT`] passes and they are let go.
    ///
    /// [`STALL_TIMEOUT`]: super::outbox::STALL_TIMEOUT
    congested: BTreeMap<u64, Instant>,
    /// Writers say here that a congested outbox has drained.
    room: Receiver<()>,
    /// Clients to let go, with the reason: handled one after another, never recursively (a
    /// leave notice may congest someone else).
    drops: VecDeque<(u64, String)>,
    /// When [`STALL_CHECK`] last looked.
    last_stall_check: Instant,
    /// The room's messages stamped in this round, not yet queued for the members.
    round: RoomBatch,
    /// Connections turned away at the door lately, per address: the console's lines collapsed.
    denials: Denials,
    /// `--cluster`: what this round said, for the publisher, and its weight in bytes.
    unpublished: (Vec<Line>, usize),
    /// `--cluster`: hellos and `/nick`s waiting for Redis or the reader; the other servers' members.
    waiting: Waiting,
}

impl Hub {
    /// What the console adds to a probe line from `peer`: whether it is the --ddns check's own.
    fn whose(&self, peer: SocketAddr) -> &'static str {
        match &self.settings.ddns {
            Some(ddns) if ddns.is_own_check(peer) => " (the --ddns check)",
            _ => "",
        }
    }

    /// A hub for `settings`, printing on the console, with the room's `history` (reloaded from
    /// the log, whose last message was `seq`); writers wake it on `room`.
    pub fn new(
        settings: Settings,
        console: Console,
        room: Receiver<()>,
        mut history: History,
        seq: u64,
    ) -> Hub {
        // The sessions its log left open can resume: their names are theirs again, from now.
        let reserved = Reservations::restored(settings.name_reserve, history.take_sessions());
        let mut hub = Hub {
            reserved,
            names: HashMap::new(),
            congested: BTreeMap::new(),
            room,
            drops: VecDeque::new(),
            last_stall_check: Instant::now(),
            round: RoomBatch::default(),
            denials: Denials::default(),
            unpublished: (Vec::new(), 0),
            waiting: Waiting::default(),
            history,
            connected: Arc::default(),
            settings,
            started: now(),
            clients: BTreeMap::new(),
            seq,
            guests: 0,
            live_writers: 0,
            console,
            session: Session::default(),
        };
        hub.shared_start();
        // Until when, in the log: another restart gives them only what is left.
        for (digest, until) in hub.reserved.ends() {
            hub.log_reserved(&digest, until);
        }
        hub
    }

    /// Connections open now: the accept thread counts them up (`--max-clients`), the hub down.
    pub fn connected(&self) -> Arc<AtomicUsize> {
        Arc::clone(&self.connected)
    }

    /// Serves events until Ctrl-C, then says `bye` to everyone and waits (a bounded time) for
    /// the writers to deliver it.
    pub fn run(mut self, events: &Receiver<Event>) {
        loop {
            // While an outbox is over its bounds, no input is taken: readers wait on the full
            // event channel, and TCP slows the senders down. Nothing is dropped.
            self.wait_for_room();
            match events.recv_timeout(STALL_CHECK) {
                Ok(Event::Shutdown) | Err(RecvTimeoutError::Disconnected) => break,
                Ok(event) => {
                    self.handle(event);
                    if self.handle_waiting(events) {
                        break;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
            self.settle();
            if self.last_stall_check.elapsed() >= STALL_CHECK {
                self.last_stall_check = Instant::now();
                self.drop_stalled();
                self.single_idle_check();
                self.expire_reservations();
                self.held_denials();
                self.caught_up();
            }
        }
        self.shutdown(events);
    }

    /// Handles the events that are already waiting, up to a round's bounds, then queues the
    /// round's messages for the members: each gets them as one item and wakes once, however many
    /// authors spoke. Says whether Ctrl-C was among them.
    fn handle_waiting(&mut self, events: &Receiver<Event>) -> bool {
        let mut shutdown = false;
        for _ in 0..ROUND_EVENTS {
            let bytes = self.round.bytes + self.unpublished.1;
            if bytes >= ROUND_BYTES || !self.congested.is_empty() {
                break;
            }
            match events.try_recv() {
                Ok(Event::Shutdown) => {
                    shutdown = true;
                    break;
                }
                Ok(event) => self.handle(event),
                Err(_) => break,
            }
        }
        self.publish_round();
        self.flush_round();
        shutdown
    }

    /// Lets go, one after another, of the clients found too slow.
    fn settle(&mut self) {
        while let Some((id, reason)) = self.drops.pop_front() {
            self.remove(id, &reason, Ending::Forced);
        }
    }

    /// Hands one event to the part of the hub it concerns.
    fn handle(&mut self, event: Event) {
        match event {
            Event::Accepted(accepted) => self.accepted(*accepted),
            Event::First { id, greeting } => {
                self.single_heard(id);
                self.first_line(id, greeting);
            }
            Event::Silent { id } => {
                let waits = self.waiting.admitting.contains_key(&id);
                if !waits && self.clients.get(&id).is_some_and(|c| !c.named()) {
                    self.join(id, None);
                }
            }
            Event::Input { id, mut inputs } => {
                if self.keep_while_admitted(id, &mut inputs) {
                    return;
                }
                self.single_heard(id);
                self.inputs(id, inputs);
            }
            Event::Telnet { id, requests } => self.telnet(id, requests),
            Event::Overlong { id } => self.send(
                id,
                &ServerFrame::Error {
                    code: "line_too_long".into(),
                    message: format!(
                        "a line longer than {MAX_LINE_BYTES} bytes was dropped, not delivered"
                    ),
                },
            ),
            Event::Throttled { id } => {
                let rate = match self.settings.rate_limit {
                    RateLimit::Bucket { per_second, .. } => format!("{per_second} lines/s"),
                    RateLimit::Off => "the rate limit".into(),
                };
                let text = format!(
                    "you are sending faster than {rate}: your lines are now read more slowly, none is lost"
                );
                self.send(id, &ServerFrame::Notice { text });
            }
            // Single mode times its served client itself: waiting in line is not being idle.
            Event::Idle { id } => self.idle(id),
            Event::Closed { id, reason, ending } => self.remove(id, &reason, ending),
            Event::WriterDone => self.live_writers = self.live_writers.saturating_sub(1),
            Event::Vanished { peer, reason } => self.console.event(&format!(
                "probe {peer} → {}: {reason}, without joining{}",
                self.settings.listening,
                self.whose(peer)
            )),
            Event::Denied {
                peer,
                reason,
                failures,
            } => self.denied(peer, &reason, failures),
            Event::Refused { peer } => self.console.event(&format!(
                "refused {peer} → {}: server full (--max-clients)",
                self.settings.listening
            )),
            Event::Console(line) => self.console_line(&line),
            Event::Shared(entries) => self.shared(entries),
            Event::Cluster(news) => self.cluster_news(news),
            Event::Shutdown => {}
        }
    }

    /// A connection turned away at the password check (never counted in: it had no seat of
    /// `--max-clients`), shown on the console (never with what it sent).
    /// Those turned away unchecked are collapsed per address: at most one line a second, the
    /// rest counted (checked tries are few already: each waits its address's pause).
    fn denied(&mut self, peer: SocketAddr, reason: &str, failures: Option<u32>) {
        if failures.is_none() && !self.denials.show(peer.ip(), Instant::now()) {
            return;
        }
        let tally = match failures {
            Some(1) => format!(" (1 failed try from {})", peer.ip()),
            Some(n) => format!(" ({n} failed tries from {})", peer.ip()),
            None => String::new(),
        };
        self.console.event(&format!(
            "denied {peer} → {}: {reason}{tally}",
            self.settings.listening
        ));
    }

    /// Says how many connections from each address were turned away and not shown one by one.
    fn held_denials(&mut self) {
        for (ip, count) in self.denials.due(Instant::now()) {
            let connections = if count == 1 {
                "connection"
            } else {
                "connections"
            };
            self.console.event(&format!(
                "denied {count} more {connections} from {ip} → {} within a second (not shown one by one)",
                self.settings.listening
            ));
        }
    }

    /// Lets go of a client that said nothing for `--idle-timeout`.
    fn idle(&mut self, id: u64) {
        let secs = self.settings.idle_timeout.map_or(0, |t| t.as_secs());
        let reason = format!("idle for {secs} s (--idle-timeout)");
        self.send(
            id,
            &ServerFrame::Bye {
                reason: reason.clone(),
                code: ByeCode::Idle,
            },
        );
        // Told to go, it does not come back: its name is free at once.
        self.end_session(id);
        self.remove(id, &reason, Ending::Graceful);
    }

    /// `bye` to everyone; then waits, at most [`SHUTDOWN_GRACE`], for the writers to send it.
    fn shutdown(mut self, events: &Receiver<Event>) {
        let bye = ServerFrame::Bye {
            reason: "the server is shutting down".into(),
            code: ByeCode::Shutdown,
        };
        let ids: Vec<u64> = self.clients.keys().copied().collect();
        for id in ids {
            self.send(id, &bye);
            if let Some(client) = self.clients.get_mut(&id) {
                client.stats.close();
                client.outbox = None;
            }
        }
        self.clients.clear();
        if let Err(err) = self.history.flush() {
            eprintln!("soquete: flushing the log: {err}");
        }
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        while self.live_writers > 0 {
            match events.recv_deadline(deadline) {
                Ok(Event::WriterDone) => self.live_writers -= 1,
                // Accepted in the meantime: dropping it closes it.
                Ok(Event::Accepted(accepted)) => {
                    self.live_writers += 1;
                    accepted.stats.close();
                    let _ = accepted.stream.shutdown(Shutdown::Both);
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        self.console.event("stopped");
    }
}
