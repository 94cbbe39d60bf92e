//! One accepted socket: its reader thread (bytes → lines → hub events, at the client's rate
//! limit), its writer thread (the hub's bounded outbox → the socket, with a write timeout and a
//! heartbeat), and the counters `/status` shows. Both threads share the one socket (one file
//! descriptor per client) and run on small stacks, so ten thousand clients fit.

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::chat::protocol::{
    ClientFrame, Greeting, HEARTBEAT_INTERVAL, Incoming, LineReader, ServerFrame,
    classify_first_line,
};
use crate::cli::RateLimit;

use super::hub::{Ending, Event, Input};
use super::throttle::TokenBucket;
use crate::net::clock::millis_from_env;
use crate::platform::sockopt::{self, DeadPeerDetection};
use crate::platform::threads::spawn_small;

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
/// Longest a writer keeps trying to write to a client that reads nothing, once the hub is done
/// with it (a `bye` to a client that stopped reading).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// A blocked write returns this often, so the writer sees its progress and its end.
pub const WRITE_TICK: Duration = Duration::from_millis(250);
/// Most bytes a writer hands the kernel in one write: what has queued up goes out together.
pub const WRITE_BATCH: usize = 64 * 1024;
/// Most parts in one vectored write (Linux takes up to 1024).
pub const WRITE_PARTS: usize = 256;
/// Most lines a reader hands the hub in one event (what already arrived, never waiting for
/// more), and most bytes of text in one.
pub const INPUT_BATCH_LINES: usize = 256;
pub const INPUT_BATCH_BYTES: usize = 32 * 1024;
/// How long a new connection may stay silent before it is announced anyway; a connection closed
/// within it without a word (a port probe, `nc -z`) is never announced.
pub const JOIN_GRACE: Duration = Duration::from_secs(1);
/// How often an idle reader wakes up to see whether the hub has closed its client.
pub const READ_TICK: Duration = Duration::from_millis(500);
/// TCP keepalive: an idle connection is probed after this long without traffic…
pub const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);
/// …then every this long, and given up after [`KEEPALIVE_PROBES`] unanswered probes.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// Unanswered keepalive probes before the kernel drops the connection.
pub const KEEPALIVE_PROBES: u32 = 3;
/// Data (a heartbeat, say) left unacknowledged this long means the peer is gone (Linux's
/// TCP_USER_TIMEOUT): a half-open client is dropped in seconds, not after the kernel's ~15 min.
pub const UNACKED_TIMEOUT: Duration = Duration::from_secs(30);
/// Stack of a reader thread: lines, a read buffer and serde_json's recursion, which
/// [`MAX_JSON_DEPTH`] bounds.
pub const READER_STACK: usize = 128 * 1024;
/// Deepest nesting of arrays and objects read from a client. Frames are flat (depth 1); deeper
/// JSON is refused before serde_json recurses into it, so a reader's small stack always holds.
pub const MAX_JSON_DEPTH: usize = 32;
/// Stack of a writer thread: it only copies bytes to the socket.
pub const WRITER_STACK: usize = 64 * 1024;

/// Encoded bytes, shared by every writer that sends them: a broadcast is encoded once per flavour.
pub type Bytes = Arc<[u8]>;

/// One item of a client's outbox.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Written one after another. The room's messages of one round of the hub are one item
    /// whose parts every member's outbox shares (each member's without its own lines if it
    /// already saw them), so the writer sends them with one vectored write, copying nothing.
    pub parts: Vec<Bytes>,
    /// Lines in `parts`.
    pub lines: u32,
    /// Counted against the outbox's bounds. A replay of the history is not: its bytes are the
    /// history's own, shared, and a resuming client must not be dropped for catching up.
    pub counted: bool,
}

impl Outgoing {
    /// One encoded piece.
    pub fn one(bytes: Bytes, lines: u32, counted: bool) -> Outgoing {
        Outgoing {
            parts: vec![bytes],
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
        self.parts.concat()
    }
}

/// How a client's reader treats it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    pub rate_limit: RateLimit,
    /// Close a client that sends nothing for this long.
    pub idle_timeout: Option<Duration>,
}

/// Traffic counters of one connection, written by its threads, read by the hub for `/status`.
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
}

/// Milliseconds since the server started: a clock every thread can store in an atomic.
pub fn clock_ms() -> u64 {
    static EPOCH: std::sync::LazyLock<Instant> = std::sync::LazyLock::new(Instant::now);
    u64::try_from(EPOCH.elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl Stats {
    fn add(counter: &AtomicU64, amount: u64) {
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
        if self.queued_msgs.load(Ordering::Relaxed) == 0 {
            return Duration::ZERO;
        }
        let since = self.progress.load(Ordering::Relaxed);
        Duration::from_millis(clock_ms().saturating_sub(since))
    }

    /// True while the outbox is above half its bounds (the hub waits until it is not).
    pub fn above_low_water(&self) -> bool {
        self.queued_msgs.load(Ordering::Relaxed) > OUTBOX_CAPACITY / 2
            || self.queued_bytes.load(Ordering::Relaxed) > OUTBOX_BYTES / 2
    }

    /// Starts heartbeats; called after the `welcome` is queued, so no ping can overtake it.
    pub fn start_heartbeat(&self) {
        self.heartbeat.store(true, Ordering::Release);
    }
}

/// A freshly accepted connection, handed to the hub before its reader starts.
pub struct Accepted {
    pub id: u64,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    /// The socket, shared with the reader and writer; the hub uses it for a forced shutdown.
    pub stream: Arc<TcpStream>,
    pub outbox: Sender<Outgoing>,
    pub stats: Arc<Stats>,
}

/// Sets up the socket and starts its writer and reader; the hub hears of it first. An error
/// means the hub never heard of the connection; a thread that cannot start is reported to the
/// hub as the client's end.
pub fn start(
    id: u64,
    stream: TcpStream,
    events: &Sender<Event>,
    room: &Sender<()>,
    policy: Policy,
) -> io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_write_timeout(Some(WRITE_TICK))?;
    stream.set_read_timeout(Some(JOIN_GRACE))?;
    detect_dead_peers(&stream)?;
    let peer = stream.peer_addr()?;
    let local = stream.local_addr()?;
    let stats = Arc::new(Stats::default());
    // Unbounded as a channel (no slots allocated up front for an idle client), bounded by the
    // hub, which counts messages and bytes against OUTBOX_CAPACITY and OUTBOX_BYTES.
    let (outbox, queue) = crossbeam_channel::unbounded();

    let stream = Arc::new(stream);
    let (writer_stream, reader_stream) = (Arc::clone(&stream), Arc::clone(&stream));
    let accepted = Accepted {
        id,
        peer,
        local,
        stream,
        outbox,
        stats: Arc::clone(&stats),
    };
    if events.send(Event::Accepted(Box::new(accepted))).is_err() {
        return Ok(()); // the hub has stopped: dropping the socket closes it
    }

    // The hub counts on a writer for every accepted client: if one cannot start, it hears so.
    let (writer_stats, writer_events) = (Arc::clone(&stats), events.clone());
    let room = room.clone();
    let writer = spawn_small(&format!("writer-{id}"), WRITER_STACK, move || {
        let ends = (&writer_events, &room);
        write_loop(id, &writer_stream, &queue, &writer_stats, ends);
    });
    if let Err(err) = writer {
        let _ = events.send(Event::WriterDone);
        let reason = format!("the server could not start a thread: {err}");
        let _ = events.send(Event::Closed {
            id,
            reason,
            ending: Ending::Forced,
        });
        return Ok(()); // told to the hub, which counts the client out and prints why
    }
    let reader_events = events.clone();
    let reader = spawn_small(&format!("reader-{id}"), READER_STACK, move || {
        read_loop(id, &reader_stream, &stats, &reader_events, policy);
    });
    if let Err(err) = reader {
        let reason = format!("the server could not start a thread: {err}");
        let _ = events.send(Event::Closed {
            id,
            reason,
            ending: Ending::Forced,
        });
    }
    Ok(())
}

/// TCP keepalive finds a silent peer that vanished; the unacknowledged-data timeout finds one
/// that vanished while we were sending to it (keepalive never fires then).
fn detect_dead_peers(stream: &TcpStream) -> io::Result<()> {
    let how = DeadPeerDetection {
        idle: KEEPALIVE_IDLE,
        interval: KEEPALIVE_INTERVAL,
        probes: KEEPALIVE_PROBES,
        unacked: UNACKED_TIMEOUT,
    };
    sockopt::detect_dead_peers(stream, &how)
}

/// Tests shorten the server's heartbeat with this variable (milliseconds).
pub const HEARTBEAT_INTERVAL_ENV: &str = "SOQUETE_HEARTBEAT_INTERVAL_MS";

/// [`HEARTBEAT_INTERVAL`], or the test override in [`HEARTBEAT_INTERVAL_ENV`].
fn heartbeat_interval() -> Duration {
    static INTERVAL: OnceLock<Duration> = OnceLock::new();
    *INTERVAL.get_or_init(|| millis_from_env(HEARTBEAT_INTERVAL_ENV).unwrap_or(HEARTBEAT_INTERVAL))
}

/// Writes what the hub queues, in order, until the hub drops the outbox; then half-closes, so
/// the client reads everything (a `bye` included) before end of stream. Whatever has queued up
/// goes out in one vectored write (up to [`WRITE_BATCH`] bytes or [`WRITE_PARTS`] parts). A
/// structured client that was sent nothing for [`HEARTBEAT_INTERVAL`] gets a `ping`.
fn write_loop(
    id: u64,
    stream: &TcpStream,
    queue: &Receiver<Outgoing>,
    stats: &Stats,
    (events, room): (&Sender<Event>, &Sender<()>),
) {
    let ping: Bytes = ServerFrame::Ping.to_json_line().into();
    let mut batch: Vec<Outgoing> = Vec::new();
    loop {
        let first = match queue.recv_timeout(heartbeat_interval()) {
            Ok(outgoing) => outgoing,
            // The welcome is queued before heartbeats start: an empty queue then is really idle.
            Err(RecvTimeoutError::Timeout)
                if stats.heartbeat.load(Ordering::Acquire) && queue.is_empty() =>
            {
                Outgoing::one(Arc::clone(&ping), 1, false)
            }
            Err(RecvTimeoutError::Timeout) => {
                // Idle: give back the room a large batch took.
                batch = Vec::new();
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        // Work after a wait: the stall clock starts now, not at the last write.
        stats.touch();
        let (mut size, mut parts) = (first.len(), first.parts.len());
        batch.push(first);
        while size < WRITE_BATCH && parts < WRITE_PARTS {
            let Ok(next) = queue.try_recv() else { break };
            (size, parts) = (size + next.len(), parts + next.parts.len());
            batch.push(next);
        }
        let written = write_patiently(stream, &batch, stats);
        let (mut lines, mut counted_msgs, mut counted_bytes) = (0u64, 0usize, 0usize);
        for item in batch.drain(..) {
            lines += u64::from(item.lines);
            if item.counted {
                counted_msgs += 1;
                counted_bytes += item.len();
            }
        }
        stats.queued_msgs.fetch_sub(counted_msgs, Ordering::Relaxed);
        stats
            .queued_bytes
            .fetch_sub(counted_bytes, Ordering::Relaxed);
        if !stats.above_low_water() && stats.congested.swap(false, Ordering::AcqRel) {
            let _ = room.try_send(());
        }
        if let Err(err) = written {
            stats.close();
            let _ = stream.shutdown(Shutdown::Both);
            let reason = if err.kind() == io::ErrorKind::TimedOut {
                format!("too slow: nothing read for {} s", WRITE_TIMEOUT.as_secs())
            } else {
                format!("connection lost: {err}")
            };
            let ending = Ending::Forced;
            let _ = events.send(Event::Closed { id, reason, ending });
            break;
        }
        Stats::add(&stats.msgs_out, lines);
        Stats::add(&stats.bytes_out, size as u64);
    }
    let _ = stream.shutdown(Shutdown::Write);
    let _ = events.send(Event::WriterDone);
}

/// Writes all of `items`, noting every bit of progress; gives up (TimedOut) after
/// [`WRITE_TIMEOUT`] without any. The socket's own timeout is [`WRITE_TICK`], so a blocked write
/// comes back often to say how far it got.
fn write_patiently(stream: &TcpStream, items: &[Outgoing], stats: &Stats) -> io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = items
        .iter()
        .flat_map(|item| &item.parts)
        .filter(|part| !part.is_empty())
        .map(|part| IoSlice::new(part))
        .collect();
    let mut rest = &mut slices[..];
    let mut last = Instant::now();
    while !rest.is_empty() {
        match (&*stream).write_vectored(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                IoSlice::advance_slices(&mut rest, n);
                last = Instant::now();
                stats.touch();
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if last.elapsed() >= WRITE_TIMEOUT {
                    return Err(io::ErrorKind::TimedOut.into());
                }
            }
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// Counts the bytes that come in.
struct Counting<'a> {
    stream: &'a TcpStream,
    stats: &'a Stats,
}

impl Read for Counting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.stream.read(buf)?;
        Stats::add(&self.stats.bytes_in, n as u64);
        Ok(n)
    }
}

/// Turns the socket's bytes into hub events: the first line says what the client is, later lines
/// are its input, handed over together when several have arrived already. A connection silent
/// for [`JOIN_GRACE`] is reported once as silent. Each line waits for a token of the client's
/// rate limit: while it waits the socket is not read, and TCP slows the sender down.
fn read_loop(id: u64, stream: &TcpStream, stats: &Stats, events: &Sender<Event>, policy: Policy) {
    let mut reader = LineReader::new(Counting { stream, stats });
    let mut bucket = match policy.rate_limit {
        RateLimit::Off => None,
        RateLimit::Bucket { per_second, burst } => {
            Some(TokenBucket::new(per_second, burst, Instant::now()))
        }
    };
    let mut first = true;
    let mut structured = false;
    let mut waited = false;
    let mut throttled = false;
    let mut last_heard = Instant::now();
    let mut idle_reported = false;
    // A line read while gathering a batch that could not join it (no token, or too long).
    let mut carried = None;
    let (reason, ending) = loop {
        if stats.is_closed() {
            return;
        }
        let incoming = match carried.take() {
            Some(incoming) => incoming,
            None => reader.next_line(),
        };
        if matches!(incoming, Ok(Some(_))) {
            last_heard = Instant::now();
            if let Some(bucket) = &mut bucket {
                while let Err(wait) = bucket.take(Instant::now()) {
                    if !std::mem::replace(&mut throttled, true)
                        && events.send(Event::Throttled { id }).is_err()
                    {
                        return;
                    }
                    if stats.is_closed() {
                        return;
                    }
                    thread::sleep(wait.min(READ_TICK));
                }
            }
        }
        let event = match incoming {
            Ok(Some(Incoming::Line(line))) if first => {
                first = false;
                Stats::add(&stats.msgs_in, 1);
                let greeting = if nesting_within(&line, MAX_JSON_DEPTH) {
                    classify_first_line(&line)
                } else {
                    Greeting::Raw(line)
                };
                structured = matches!(greeting, Greeting::Structured { .. });
                if !waited {
                    let _ = stream.set_read_timeout(Some(READ_TICK));
                }
                Event::First { id, greeting }
            }
            Ok(Some(Incoming::Line(line))) => {
                let mut size = line.len();
                let mut inputs = vec![parse_input(&line, structured)];
                // Lines that have arrived already go along, each with its token.
                while inputs.len() < INPUT_BATCH_LINES
                    && size < INPUT_BATCH_BYTES
                    && reader.pending().contains(&b'\n')
                {
                    match reader.next_line() {
                        Ok(Some(Incoming::Line(line)))
                            if bucket
                                .as_mut()
                                .is_none_or(|bucket| bucket.take(Instant::now()).is_ok()) =>
                        {
                            size += line.len();
                            inputs.push(parse_input(&line, structured));
                        }
                        other => {
                            carried = Some(other);
                            break;
                        }
                    }
                }
                Stats::add(&stats.msgs_in, inputs.len() as u64);
                Event::Input { id, inputs }
            }
            Ok(Some(Incoming::Overlong)) => Event::Overlong { id },
            // A port probe (`nc -z`, a health check) closes, or resets, without a word.
            Ok(None) if first && !waited => {
                break ("closed without a word".to_string(), Ending::Graceful);
            }
            Ok(None) => break ("closed by the client".to_string(), Ending::Graceful),
            Err(err)
                if first
                    && !waited
                    && reader.pending().is_empty()
                    && matches!(
                        err.kind(),
                        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
                    ) =>
            {
                break ("closed without a word".to_string(), Ending::Forced);
            }
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if first && !std::mem::replace(&mut waited, true) {
                    let _ = stream.set_read_timeout(Some(READ_TICK));
                    Event::Silent { id }
                } else if policy
                    .idle_timeout
                    .is_some_and(|limit| last_heard.elapsed() >= limit)
                    && !std::mem::replace(&mut idle_reported, true)
                {
                    Event::Idle { id }
                } else {
                    continue;
                }
            }
            Err(err) => break (format!("connection lost: {err}"), Ending::Forced),
        };
        if events.send(event).is_err() {
            return;
        }
    };
    if !stats.is_closed() {
        let _ = events.send(Event::Closed { id, reason, ending });
    }
}

/// One line after the first: JSON frames for structured clients, text for raw ones.
pub fn parse_input(line: &str, structured: bool) -> Input {
    if !structured || line.trim().is_empty() {
        return Input::Text(line.to_string());
    }
    if !nesting_within(line, MAX_JSON_DEPTH) {
        return Input::Bad(format!(
            "not a protocol frame: nested deeper than {MAX_JSON_DEPTH} levels"
        ));
    }
    match serde_json::from_str::<ClientFrame>(line) {
        Ok(ClientFrame::Msg { text }) => Input::Text(text),
        Ok(ClientFrame::Nick { name }) => Input::Nick(name),
        Ok(ClientFrame::Who) => Input::Who,
        Ok(ClientFrame::Quit) => Input::Quit,
        Ok(ClientFrame::Hello { .. }) => Input::Bad("hello is only valid as the first line".into()),
        Err(err) => Input::Bad(format!("not a protocol frame: {err}")),
    }
}

/// True when `[` and `{` (outside strings) nest no deeper than `limit`.
fn nesting_within(line: &str, limit: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for byte in line.bytes() {
        match byte {
            _ if escaped => escaped = false,
            b'\\' if in_string => escaped = true,
            b'"' => in_string = !in_string,
            b'[' | b'{' if !in_string => {
                depth += 1;
                if depth > limit {
                    return false;
                }
            }
            b']' | b'}' if !in_string => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_nesting_is_refused_before_parsing_and_brackets_in_strings_do_not_count() {
        let deep = format!("{}{}", "[".repeat(33), "]".repeat(33));
        assert!(!nesting_within(&deep, 32));
        assert!(nesting_within(
            &format!("{}{}", "[".repeat(32), "]".repeat(32)),
            32
        ));
        assert!(nesting_within(r#"{"text":"[[[[[[\"[[[["}"#, 2));
        let frame = format!(r#"{{"type":"msg","text":"oi","x":{deep}}}"#);
        assert!(matches!(parse_input(&frame, true), Input::Bad(_)));
    }

    #[test]
    fn a_msg_frame_claiming_an_author_is_only_its_text() {
        let input = parse_input(r#"{"type":"msg","from":"ana","text":"oi"}"#, true);
        assert_eq!(input, Input::Text("oi".into()));
    }

    #[test]
    fn raw_lines_are_text_even_when_they_look_like_json() {
        let line = r#"{"type":"quit"}"#;
        assert_eq!(parse_input(line, false), Input::Text(line.into()));
        assert_eq!(parse_input(line, true), Input::Quit);
    }

    #[test]
    fn garbage_from_a_structured_client_is_refused() {
        assert!(matches!(parse_input("not json", true), Input::Bad(_)));
    }
}
