//! A client's outbox: the items the hub queues for the client's writer thread, the bounds they
//! are held to, and the counters the hub and the connection's two threads share. The hub only
//! ever adds without blocking ([`offer`]); the writer takes away; a client that stops reading
//! holds up only itself.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

/// Items (a message, or a batch of one author's messages) a client may have waiting to be written
/// before the hub stops taking input until it drains (see [`STALL_TIMEOUT`]).
pub const OUTBOX_CAPACITY: usize = 32 * 1024;
/// Bytes a client may have waiting to be written before the hub stops taking input until it
/// drains. Broadcasts are shared, so a full outbox costs the server far less than this.
pub const OUTBOX_BYTES: usize = 4 * 1024 * 1024;
/// A client with something to read that reads nothing for this long is disconnected ("too
/// slow"); and the hub never waits longer than this for one client's outbox to drain, so one
/// slow reader holds up nobody for longer.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(2);

/// Encoded bytes, shared by every writer that sends them: a broadcast is encoded once per flavour.
pub type Bytes = Arc<[u8]>;

/// One item of a client's outbox.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Written one after another, copying nothing.
    pub parts: Parts,
    /// Lines in `parts`.
    pub lines: u32,
    /// Counted against the outbox's bounds. A replay of the history is not: its bytes are the
    /// history's own, shared, and a resuming client must not be dropped for catching up.
    pub counted: bool,
}

/// Pieces of encoded bytes, written one after another.
#[derive(Debug, Clone)]
pub enum Parts {
    /// One piece: a reply, a notice, a ping.
    One(Bytes),
    /// One member's own list (the lines kept for a connection until it joined).
    List(Vec<Bytes>),
    /// The room's messages of one round of the hub, one list shared by every member of a flavour
    /// (the hub allocates it once per round, a writer frees nothing but a reference), less the
    /// pieces of `without`, which saw its own lines as it typed them.
    Round {
        pieces: Arc<[Part]>,
        without: Option<u64>,
    },
}

/// One author's piece of a round.
#[derive(Debug, Clone)]
pub struct Part {
    pub bytes: Bytes,
    /// The author, when it saw these lines as it typed them and is not sent them back.
    pub seen_by: Option<u64>,
}

impl Parts {
    /// The pieces, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Bytes> {
        let (list, pieces, without): (&[Bytes], &[Part], _) = match self {
            Parts::One(bytes) => (std::slice::from_ref(bytes), &[], None),
            Parts::List(list) => (list, &[], None),
            Parts::Round { pieces, without } => (&[], pieces, *without),
        };
        let round = pieces
            .iter()
            .filter(move |part| part.seen_by.is_none() || part.seen_by != without);
        list.iter().chain(round.map(|part| &part.bytes))
    }

    /// At most this many pieces (a bound on the slices of a vectored write).
    pub fn most(&self) -> usize {
        match self {
            Parts::One(_) => 1,
            Parts::List(list) => list.len(),
            Parts::Round { pieces, .. } => pieces.len(),
        }
    }
}

impl Outgoing {
    /// One encoded piece.
    pub fn one(bytes: Bytes, lines: u32, counted: bool) -> Outgoing {
        Outgoing {
            parts: Parts::One(bytes),
            lines,
            counted,
        }
    }

    /// Bytes in all the parts.
    pub fn len(&self) -> usize {
        self.parts.iter().map(|part| part.len()).sum()
    }

    /// All the parts in one buffer (the writer never copies them).
    #[cfg(test)]
    pub fn concat(&self) -> Vec<u8> {
        self.parts
            .iter()
            .flat_map(|part| part.iter().copied())
            .collect()
    }
}

/// Traffic counters and flags of one connection, written by its threads and the hub, read by the
/// hub (for `/status`, and to see a client that stopped reading).
#[derive(Debug, Default)]
pub struct Stats {
    pub msgs_in: AtomicU64,
    pub bytes_in: AtomicU64,
    pub msgs_out: AtomicU64,
    pub bytes_out: AtomicU64,
    /// Counted messages in the outbox, not yet written (the hub adds, the writer subtracts).
    pub queued_msgs: AtomicUsize,
    /// Counted bytes in the outbox, not yet written.
    pub queued_bytes: AtomicUsize,
    /// Set once a structured client has its `welcome`: from then on it gets heartbeats.
    pub heartbeat: AtomicBool,
    /// Set when the hub is done with the client: the reader stops forwarding and exits.
    pub closed: AtomicBool,
    /// When the writer last got bytes into the socket, or found work after being idle
    /// ([`clock_ms`]): with something queued and no progress for [`STALL_TIMEOUT`], the client
    /// is too slow.
    pub progress: AtomicU64,
    /// Set by the hub while it waits for this outbox to drain; the writer clears it and wakes
    /// the hub once the outbox is down to half its bounds.
    pub congested: AtomicBool,
    /// Why the connection was lost (a reset), set by whichever of the reader and the writer met
    /// it first. The writer stops; the reader still reads what arrived before, then ends the
    /// client with this reason. Nothing is written any more, so nothing is waiting either.
    pub lost: OnceLock<String>,
    /// The TLS version, once negotiated (None: plain TCP).
    pub tls: OnceLock<&'static str>,
}

/// Milliseconds since the server started: a clock every thread can store in an atomic.
pub fn clock_ms() -> u64 {
    static EPOCH: std::sync::LazyLock<Instant> = std::sync::LazyLock::new(Instant::now);
    u64::try_from(EPOCH.elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl Stats {
    /// Adds to a counter (the reader's and writer's traffic counts).
    pub fn add(counter: &AtomicU64, amount: u64) {
        counter.fetch_add(amount, Ordering::Relaxed);
    }

    /// True once the hub has closed this client.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// Marks the client closed.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
    }

    /// Notes that the connection was lost, and why (the first reason stays).
    pub fn lose(&self, reason: String) {
        let _ = self.lost.set(reason);
    }

    /// A counter's current value.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Restarts the stall clock: the writer is making progress (or has just been given work).
    pub fn touch(&self) {
        self.progress.store(clock_ms(), Ordering::Relaxed);
    }

    /// How long the writer has had work and made no progress (zero while nothing is queued).
    pub fn stalled_for(&self) -> Duration {
        if self.queued_msgs.load(Ordering::Relaxed) == 0 || self.lost.get().is_some() {
            return Duration::ZERO;
        }
        let since = self.progress.load(Ordering::Relaxed);
        Duration::from_millis(clock_ms().saturating_sub(since))
    }

    /// True while the outbox is above half its bounds (the hub waits until it is not).
    pub fn above_low_water(&self) -> bool {
        self.lost.get().is_none()
            && (self.queued_msgs.load(Ordering::Relaxed) > OUTBOX_CAPACITY / 2
                || self.queued_bytes.load(Ordering::Relaxed) > OUTBOX_BYTES / 2)
    }

    /// Starts heartbeats; called after the `welcome` is queued, so no ping can overtake it.
    pub fn start_heartbeat(&self) {
        self.heartbeat.store(true, Ordering::Release);
    }
}

/// Queues without blocking, and says whether the outbox is now over its bounds, in messages or
/// in bytes (the hub then waits for it to drain). A closed queue takes nothing: its client is
/// already on its way out.
pub fn offer(outbox: &Sender<Outgoing>, stats: &Stats, outgoing: Outgoing) -> bool {
    let len = outgoing.len();
    // Added before the send (the hub is the only one adding), so the writer's subtraction can
    // never come first. A queue that was empty starts the stall clock.
    if stats.queued_msgs.fetch_add(1, Ordering::Relaxed) == 0 {
        stats.touch();
    }
    let queued = stats.queued_bytes.fetch_add(len, Ordering::Relaxed) + len;
    if outbox.send(outgoing).is_err() {
        stats.queued_msgs.fetch_sub(1, Ordering::Relaxed);
        stats.queued_bytes.fetch_sub(len, Ordering::Relaxed);
        return false;
    }
    let over = queued > OUTBOX_BYTES || stats.queued_msgs.load(Ordering::Relaxed) > OUTBOX_CAPACITY;
    if over {
        stats.congested.store(true, Ordering::Release);
    }
    over
}
