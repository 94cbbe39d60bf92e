//! One accepted socket: its reader thread (bytes → lines → hub events), its writer thread (the
//! hub's bounded outbox → the socket, with a write timeout), and the counters `/status` shows.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};

use crate::chat::protocol::{ClientFrame, Incoming, LineReader, classify_first_line};

use super::hub::{Ending, Event, Input};

/// Messages a client may have waiting to be written before the hub gives up on it.
pub const OUTBOX_CAPACITY: usize = 1024;
/// Longest a single write may block before the client counts as gone.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a new connection may stay silent before it is announced anyway; a connection closed
/// within it without a word (a port probe, `nc -z`) is never announced.
pub const JOIN_GRACE: Duration = Duration::from_secs(1);
/// How often an idle reader wakes up to see whether the hub has closed its client.
pub const READ_TICK: Duration = Duration::from_millis(500);

/// Encoded bytes, shared by every writer that sends them: a broadcast is encoded once per flavour.
pub type Bytes = Arc<[u8]>;

/// Traffic counters of one connection, written by its threads, read by the hub for `/status`.
#[derive(Debug, Default)]
pub struct Stats {
    pub msgs_in: AtomicU64,
    pub bytes_in: AtomicU64,
    pub msgs_out: AtomicU64,
    pub bytes_out: AtomicU64,
    /// Set when the hub is done with the client: the reader stops forwarding and exits.
    pub closed: AtomicBool,
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
}

/// A freshly accepted connection, handed to the hub before its reader starts.
pub struct Accepted {
    pub id: u64,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    /// A handle on the socket, for a forced shutdown.
    pub stream: TcpStream,
    pub outbox: Sender<Bytes>,
    pub stats: Arc<Stats>,
}

/// Sets up the socket and starts its writer and reader; the hub hears of it first.
pub fn start(id: u64, stream: TcpStream, events: &Sender<Event>) -> io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    stream.set_read_timeout(Some(JOIN_GRACE))?;
    let peer = stream.peer_addr()?;
    let local = stream.local_addr()?;
    let stats = Arc::new(Stats::default());
    let (outbox, queue) = crossbeam_channel::bounded(OUTBOX_CAPACITY);

    let writer_stream = stream.try_clone()?;
    let reader_stream = stream.try_clone()?;
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

    let (writer_stats, writer_events) = (Arc::clone(&stats), events.clone());
    thread::Builder::new()
        .name(format!("writer-{id}"))
        .spawn(move || write_loop(id, writer_stream, queue, &writer_stats, &writer_events))?;
    let reader_events = events.clone();
    thread::Builder::new()
        .name(format!("reader-{id}"))
        .spawn(move || read_loop(id, reader_stream, &stats, &reader_events))?;
    Ok(())
}

/// Writes what the hub queues, in order, until the hub drops the outbox; then half-closes, so
/// the client reads everything (a `bye` included) before end of stream.
fn write_loop(
    id: u64,
    mut stream: TcpStream,
    queue: Receiver<Bytes>,
    stats: &Stats,
    events: &Sender<Event>,
) {
    for bytes in queue.iter() {
        if let Err(err) = stream.write_all(&bytes) {
            stats.close();
            let _ = stream.shutdown(Shutdown::Both);
            let reason = if matches!(
                err.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) {
                format!(
                    "too slow: a write blocked for {} s",
                    WRITE_TIMEOUT.as_secs()
                )
            } else {
                format!("connection lost: {err}")
            };
            let ending = Ending::Forced;
            let _ = events.send(Event::Closed { id, reason, ending });
            break;
        }
        Stats::add(&stats.msgs_out, 1);
        Stats::add(&stats.bytes_out, bytes.len() as u64);
    }
    let _ = stream.shutdown(Shutdown::Write);
    let _ = events.send(Event::WriterDone);
}

/// Counts the bytes that come in.
struct Counting<'a> {
    stream: TcpStream,
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
/// are its input. A connection silent for [`JOIN_GRACE`] is reported once as silent.
fn read_loop(id: u64, stream: TcpStream, stats: &Stats, events: &Sender<Event>) {
    let mut reader = LineReader::new(Counting { stream, stats });
    let mut first = true;
    let mut structured = false;
    let mut waited = false;
    let (reason, ending) = loop {
        if stats.is_closed() {
            return;
        }
        let event = match reader.next_line() {
            Ok(Some(Incoming::Line(line))) => {
                Stats::add(&stats.msgs_in, 1);
                if std::mem::take(&mut first) {
                    let greeting = classify_first_line(&line);
                    structured =
                        matches!(greeting, crate::chat::protocol::Greeting::Structured { .. });
                    if !waited {
                        let _ = reader.get_ref().stream.set_read_timeout(Some(READ_TICK));
                    }
                    Event::First { id, greeting }
                } else {
                    Event::Input {
                        id,
                        input: parse_input(&line, structured),
                    }
                }
            }
            Ok(Some(Incoming::Overlong)) => Event::Overlong { id },
            Ok(None) => break ("closed by the client".to_string(), Ending::Graceful),
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if first && !std::mem::replace(&mut waited, true) {
                    let _ = reader.get_ref().stream.set_read_timeout(Some(READ_TICK));
                    Event::Silent { id }
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
    match serde_json::from_str::<ClientFrame>(line) {
        Ok(ClientFrame::Msg { text }) => Input::Text(text),
        Ok(ClientFrame::Nick { name }) => Input::Nick(name),
        Ok(ClientFrame::Who) => Input::Who,
        Ok(ClientFrame::Quit) => Input::Quit,
        Ok(ClientFrame::Hello { .. }) => Input::Bad("hello is only valid as the first line".into()),
        Err(err) => Input::Bad(format!("not a protocol frame: {err}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
