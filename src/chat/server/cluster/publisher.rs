//! The publisher: one thread per server, with its own connection, that stores the hub's rounds
//! in the room's stream (stamped by the `STAMP` script, one call for the rounds waiting). The
//! hub hands a round over without waiting ([`Publisher::offer`]). While Redis is away, rounds
//! wait, in order (up to [`QUEUE`]; beyond, the hub tells their authors they were not
//! delivered), and are stored when it is back; a round Redis refuses is reported back, so that
//! its authors are told.

use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::chat::server::event::Event;

use super::Known;
use super::entry::{Line, News, Round};
use super::setup::ClusterSetup;
use super::store::{READER_FRESH, Store, why};

/// Rounds waiting for the publisher: beyond them, the hub reports a round as not delivered
/// rather than wait for Redis.
pub const QUEUE: usize = 1024;
/// Most lines stored in one call (the rounds waiting are merged up to this).
const MERGE_LINES: usize = 4096;
/// Most messages the room's numbering may be ahead of a live server's reader before the next
/// call is stored (the stream keeps [`MIN_STREAM_LEN`] entries: several windows).
///
/// [`MIN_STREAM_LEN`]: super::store::MIN_STREAM_LEN
pub const WINDOW: u64 = 8192;

/// The window for a stream of `maxlen` entries: [`WINDOW`], or an eighth of a short stream.
fn window(maxlen: usize) -> u64 {
    WINDOW.min(maxlen as u64 / 8).max(1)
}
/// How long the publisher waits for its reader, at most (a reader cut off from Redis does not
/// hold the publisher up for ever: Redis is away for it too).
const WINDOW_PAUSE: Duration = Duration::from_millis(1);
const WINDOW_WAITS: usize = 5000;

/// The pause before trying Redis again, doubling up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(1);

/// The hub's end: where rounds go.
pub struct Publisher {
    rounds: Sender<Round>,
}

impl Publisher {
    pub fn new(rounds: Sender<Round>) -> Publisher {
        Publisher { rounds }
    }

    /// Hands `round` over without waiting; gives it back when the queue is full (Redis is not
    /// keeping up) or the publisher is gone.
    pub fn offer(&self, round: Round) -> Result<(), Round> {
        self.rounds.try_send(round).map_err(|err| match err {
            TrySendError::Full(round) | TrySendError::Disconnected(round) => round,
        })
    }
}

/// Stores rounds until the hub is gone, in calls of at most a window's lines (the rounds
/// waiting merged, a long one cut). Each call is numbered: a call retried after a lost reply is
/// stored once (the script skips a number it has seen).
pub fn publish(
    setup: &ClusterSetup,
    (server, room): (&str, &Known),
    maxlen: usize,
    store: Store,
    rounds: &Receiver<Round>,
    events: &Sender<Event>,
) {
    let mut store = Some(store);
    let mut number = 0u64;
    let most = MERGE_LINES.min(window(maxlen) as usize);
    while let Ok(mut round) = rounds.recv() {
        while round.lines.len() < most {
            match rounds.try_recv() {
                Ok(next) => round.lines.extend(next.lines),
                Err(_) => break,
            }
        }
        let mut lines = round.lines;
        while !lines.is_empty() {
            let rest = lines.split_off(lines.len().min(most));
            let call = Round {
                time: round.time,
                lines,
            };
            lines = rest;
            number += 1;
            // A burst is stored no faster than this server reads it back (and the script waits
            // for every live server's reader): the stream keeps every entry until the readers
            // have it (its length is several windows).
            for _ in 0..WINDOW_WAITS {
                if room.unread() <= window(maxlen) {
                    break;
                }
                std::thread::sleep(WINDOW_PAUSE);
            }
            let limits = (window(maxlen), READER_FRESH.as_millis() as u64);
            let call = (number, &call);
            if !store_call(
                setup,
                (server, room),
                (maxlen, limits),
                &mut store,
                call,
                events,
            ) {
                return;
            }
        }
    }
}

/// Stores one call, trying again while Redis is away; false when the hub is gone.
fn store_call(
    setup: &ClusterSetup,
    (server, room): (&str, &Known),
    (maxlen, (window, ttl)): (usize, (u64, u64)),
    store: &mut Option<Store>,
    (number, call): (u64, &Round),
    events: &Sender<Event>,
) -> bool {
    let mut pause = RETRY_FIRST;
    let mut waits = 0;
    loop {
        if store.is_none() {
            *store = Store::open(setup).ok();
        }
        if let Some(open) = store.as_mut() {
            // A reader that does not catch up in WINDOW_WAITS pauses is not waited for longer
            // (its server is alive but stuck): it will say what it lost.
            let window = if waits < WINDOW_WAITS {
                window
            } else {
                u64::MAX / 2
            };
            match open.stamp(server, number, maxlen, room.now(), (window, ttl), call) {
                Ok(-2) => {
                    waits += 1;
                    std::thread::sleep(WINDOW_PAUSE);
                    continue;
                }
                Ok(seq) => {
                    room.saw(u64::try_from(seq).unwrap_or(0));
                    return true;
                }
                // Redis answered no (out of memory, a missing permission): trying again would
                // hold the room up for ever; this call's authors are told.
                Err(err) if !lost(&err) => {
                    let news = News::Unpublished {
                        clients: authors(&call.lines),
                        why: why(&err),
                    };
                    return events.send(Event::Cluster(news)).is_ok();
                }
                Err(_) => *store = None,
            }
        }
        // Redis is away: the call waits for it (the hub keeps taking rounds, up to QUEUE).
        std::thread::sleep(pause);
        pause = (pause * 2).min(RETRY_MAX);
    }
}

/// True when `err` says the connection to Redis is lost (the round is tried again), not that
/// Redis refused it.
fn lost(err: &redis::RedisError) -> bool {
    err.is_io_error()
        || err.is_timeout()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
}

/// The clients whose messages are in `lines`, once each.
pub fn authors(lines: &[Line]) -> Vec<u64> {
    let mut clients: Vec<u64> = lines
        .iter()
        .filter(|line| matches!(line, Line::Msg { .. }))
        .map(Line::client)
        .collect();
    clients.sort_unstable();
    clients.dedup();
    clients
}
