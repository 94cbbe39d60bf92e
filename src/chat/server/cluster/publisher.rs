//! The publisher: one thread per server, with its own connection, that stores the hub's rounds
//! in the room's stream (stamped by the `STAMP` script, one call for the rounds waiting). The
//! hub hands a round over without waiting ([`Publisher::offer`]); a round that cannot be stored
//! within [`GIVE_UP`] is reported back, so that its authors are told it was not delivered.

use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::chat::server::event::Event;

use super::Known;
use super::entry::{Line, News, Round};
use super::setup::ClusterSetup;
use super::store::{Store, why};

/// Rounds waiting for the publisher: beyond them, the hub reports a round as not delivered
/// rather than wait for Redis.
pub const QUEUE: usize = 1024;
/// Most lines stored in one call (the rounds waiting are merged up to this).
const MERGE_LINES: usize = 4096;
/// How long a round is tried again (reconnecting) before it is given up.
pub const GIVE_UP: Duration = Duration::from_secs(5);
const RETRY_PAUSE: Duration = Duration::from_millis(100);

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

/// Stores rounds until the hub is gone. Each call is numbered: a call retried after a lost reply
/// is stored once (the script skips a number it has seen).
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
    while let Ok(mut round) = rounds.recv() {
        while round.lines.len() < MERGE_LINES {
            match rounds.try_recv() {
                Ok(next) => round.lines.extend(next.lines),
                Err(_) => break,
            }
        }
        number += 1;
        let deadline = Instant::now() + GIVE_UP;
        loop {
            if store.is_none() {
                store = Store::open(setup).ok();
            }
            let failure = match store.as_mut() {
                Some(open) => match open.stamp(server, number, maxlen, room.now(), &round) {
                    Ok(seq) => {
                        room.saw(u64::try_from(seq).unwrap_or(0));
                        break;
                    }
                    Err(err) => {
                        store = None;
                        why(&err)
                    }
                },
                None => format!("cannot reach Redis at {}", setup.shown()),
            };
            if Instant::now() >= deadline {
                let news = News::Unpublished {
                    clients: authors(&round.lines),
                    why: failure,
                };
                if events.send(Event::Cluster(news)).is_err() {
                    return;
                }
                break;
            }
            std::thread::sleep(RETRY_PAUSE);
        }
    }
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
