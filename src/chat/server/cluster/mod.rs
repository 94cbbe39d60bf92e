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
mod publisher;
mod reader;
pub mod setup;
mod store;

use std::sync::Arc;

use crossbeam_channel::Sender;

use crate::error::{Error, Result};

use super::event::Event;

pub use entry::{Entry, Line, News, Round};
pub use publisher::{Publisher, authors};
pub use setup::{ClusterSetup, REDIS_PASSWORD_ENV};
use store::Store;

/// What the hub holds of the cluster: who it is, and where its rounds go.
pub struct Link {
    /// This server's id in the room's entries (new at each start).
    pub server: String,
    pub publisher: Publisher,
    /// The Redis URL, its password masked, for the console's lines.
    pub shown: String,
}

/// A room in Redis, reached at start, before the server listens: the threads are not started.
pub struct Joined {
    setup: Arc<ClusterSetup>,
    reader: Store,
    publisher: Store,
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
    let entries = loaded.entries.iter().filter_map(reader::parse).collect();
    let reader = reader
        .for_reading()
        .map_err(|err| Error::io("reading the room", std::io::Error::other(store::why(&err))))?;
    Ok(Joined {
        setup,
        reader,
        publisher,
        last_id: loaded.last_id,
        epoch: loaded.epoch,
        seq: loaded.seq,
        entries,
    })
}

impl Joined {
    /// Starts the reader and the publisher, which tell the hub on `events`; `history` bounds the
    /// stream (`MAXLEN ~`). Returns what the hub holds.
    pub fn start(self, events: &Sender<Event>, history: usize) -> Result<Link> {
        let server = server_id();
        let shown = self.setup.shown();
        let (rounds, queue) = crossbeam_channel::bounded(publisher::QUEUE);
        let (setup, to_hub) = (Arc::clone(&self.setup), events.clone());
        let (reader, last_id) = (self.reader, self.last_id);
        super::spawn("cluster-reader", move || {
            reader::follow(&setup, reader, last_id, &to_hub)
        })?;
        let (setup, to_hub, id) = (self.setup, events.clone(), server.clone());
        let store = self.publisher;
        super::spawn("cluster-publisher", move || {
            publisher::publish(&setup, &id, history, store, &queue, &to_hub)
        })?;
        Ok(Link {
            server,
            publisher: Publisher::new(rounds),
            shown,
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
