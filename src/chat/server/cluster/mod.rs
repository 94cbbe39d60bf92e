//! `serve --cluster redis://… --room NAME`: several servers, one room, its log in a Redis stream
//! (docs/CLUSTER.md). The hub stamps nothing itself: it hands each round's lines to the
//! publisher thread, which stamps and appends them in Redis in one call; one reader thread
//! follows the stream and hands every server's entries to the hub, which keeps them in its
//! history and fans them out as it does its own. So every server delivers one order, the
//! stream's, and one numbering, the room's.
//!
//! Files import downwards: `publisher` and `reader` (the threads) → `store` (the keys, the
//! connection, the script) → `setup` (the flags, checked) and `entry` (plain data, which the
//! server's `event` carries).

pub mod entry;
mod presence;
mod publisher;
mod reader;
pub mod setup;
mod store;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_channel::Sender;

use crate::error::{Error, Result};

use super::event::Event;

pub use entry::{Entry, Line, News, Op, Round, Verdict};
pub use presence::{TTL as PRESENCE_TTL, TTL_ENV as PRESENCE_TTL_ENV, Timing};
pub use publisher::{Publisher, authors};
pub use setup::{ClusterSetup, REDIS_PASSWORD_ENV};
use store::Store;
pub use store::{MIN_STREAM_LEN, STREAM_LEN_ENV};

/// What the reader and the publisher know of the room, should Redis lose it (restarted without
/// persistence): its epoch, and the highest `seq` seen.
pub struct Known {
    seq: AtomicU64,
    /// The last `seq` this server's reader has read.
    read: AtomicU64,
    epoch: String,
}

impl Known {
    /// `seq` was seen (read or stamped).
    fn saw(&self, seq: u64) {
        self.seq.fetch_max(seq, Ordering::Relaxed);
    }

    /// The reader read up to `seq`.
    fn read(&self, seq: u64) {
        self.read.fetch_max(seq, Ordering::Relaxed);
        self.saw(seq);
    }

    /// The last `seq` this server's reader has read.
    fn read_so_far(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }

    /// How far the room's numbering is ahead of what this server's reader has read.
    fn unread(&self) -> u64 {
        let seq = self.seq.load(Ordering::Relaxed);
        seq.saturating_sub(self.read.load(Ordering::Relaxed))
    }

    /// The highest `seq` seen, and the epoch.
    fn now(&self) -> (u64, &str) {
        (self.seq.load(Ordering::Relaxed), &self.epoch)
    }
}

/// Requests waiting for the presence thread: beyond them, the hub decides alone.
const OPS_QUEUE: usize = 65_536;

/// What the hub holds of the cluster: who it is, and where its rounds go.
pub struct Link {
    /// This server's id in the room's entries (new at each start).
    pub server: String,
    pub publisher: Publisher,
    /// Requests about names, sessions and members, for the presence thread.
    pub presence: Sender<Op>,
    /// The Redis URL, its password masked, for the console's lines.
    pub shown: String,
    /// The first guest number of this server's own block.
    pub guests: u64,
    /// The other servers' members when this one started.
    pub remote: Vec<crate::chat::protocol::Member>,
}

/// A room in Redis, reached at start, before the server listens: the threads are not started.
pub struct Joined {
    setup: Arc<ClusterSetup>,
    reader: Store,
    publisher: Store,
    presence: Store,
    /// The first guest number this server gives (each server has its own block of them).
    pub guests: u64,
    last_id: String,
    /// The room's epoch.
    pub epoch: String,
    /// The room's last `seq`.
    pub seq: u64,
    /// The room's last messages, oldest first, for the history.
    pub entries: Vec<Entry>,
}

/// Reaches the room in Redis (within a bounded time: an unreachable Redis is one line naming
/// its masked URL and why), sets its epoch if it is new (to `fresh`), and reads back its last
/// `history` messages.
pub fn join(setup: &ClusterSetup, fresh: &str, history: usize) -> Result<Joined> {
    let setup = Arc::new(setup.clone());
    let mut reader = Store::open(&setup)?;
    let loaded = reader.load(fresh, history).map_err(|err| {
        let context = format!(
            "reading the room {} in Redis at {}",
            setup.room,
            setup.shown()
        );
        Error::io(context, std::io::Error::other(store::why(&err)))
    })?;
    let publisher = Store::open(&setup)?;
    let mut presence = Store::open(&setup)?;
    let guests = presence
        .guest_block()
        .map_err(|err| Error::io("reading the room", std::io::Error::other(store::why(&err))))?;
    let mut entries: Vec<Entry> = loaded.entries.iter().flat_map(reader::parse).collect();
    // Entries hold several messages: only the last `history` are kept.
    let messages = entries
        .iter()
        .filter(|e| matches!(e, Entry::Msg { .. }))
        .count();
    let mut extra = messages.saturating_sub(history);
    entries.retain(|e| {
        let drop = extra > 0 && matches!(e, Entry::Msg { .. });
        extra -= usize::from(drop);
        !drop
    });
    let reader = reader
        .for_reading()
        .map_err(|err| Error::io("reading the room", std::io::Error::other(store::why(&err))))?;
    Ok(Joined {
        setup,
        reader,
        publisher,
        presence,
        guests,
        last_id: loaded.last_id,
        epoch: loaded.epoch,
        seq: loaded.seq,
        entries,
    })
}

impl Joined {
    /// How long a crashed server's members outlive it.
    pub fn ttl(&self) -> std::time::Duration {
        self.setup.ttl
    }

    /// Starts the reader and the publisher, which tell the hub on `events`; `history` bounds the
    /// stream (`MAXLEN ~`). Returns what the hub holds.
    pub fn start(
        mut self,
        events: &Sender<Event>,
        history: usize,
        timing: Timing,
        (console, listening): (&str, std::net::SocketAddr),
    ) -> Result<Link> {
        let server = server_id();
        // The console is a member, and the other servers' members are known, before anyone
        // can connect.
        let about = format!("{listening} console");
        let remote = presence::register(&mut self.presence, &server, timing, (console, &about))
            .map_err(|err| {
                Error::io("joining the room", std::io::Error::other(store::why(&err)))
            })?;
        let shown = self.setup.shown();
        let (rounds, queue) = crossbeam_channel::bounded(publisher::QUEUE);
        let (setup, to_hub) = (Arc::clone(&self.setup), events.clone());
        let (reader, last_id) = (self.reader, self.last_id);
        let known = Arc::new(Known {
            seq: AtomicU64::new(self.seq),
            read: AtomicU64::new(self.seq),
            epoch: self.epoch.clone(),
        });
        let (room, id) = (Arc::clone(&known), server.clone());
        super::spawn("cluster-reader", move || {
            reader::follow(&setup, (reader, &room, &id), last_id, &to_hub)
        })?;
        let (setup, to_hub, id) = (Arc::clone(&self.setup), events.clone(), server.clone());
        let store = self.publisher;
        super::spawn("cluster-publisher", move || {
            let maxlen = history.max(setup.stream_len);
            publisher::publish(&setup, (&id, &known), maxlen, store, &queue, &to_hub)
        })?;
        let (presence, ops) = crossbeam_channel::bounded(OPS_QUEUE);
        let (setup, to_hub, id) = (Arc::clone(&self.setup), events.clone(), server.clone());
        let store = self.presence;
        let console = (console.to_string(), about);
        super::spawn("cluster-presence", move || {
            presence::serve(&setup, &id, timing, (store, console), &ops, &to_hub)
        })?;
        Ok(Link {
            server,
            publisher: Publisher::new(rounds),
            presence,
            shown,
            guests: self.guests,
            remote,
        })
    }
}

/// A new id for this server: 16 random hex digits.
fn server_id() -> String {
    let mut bytes = [0u8; 8];
    let _ = getrandom::fill(&mut bytes);
    let pid = std::process::id().to_be_bytes();
    bytes[..4].iter_mut().zip(pid).for_each(|(b, p)| *b ^= p);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
