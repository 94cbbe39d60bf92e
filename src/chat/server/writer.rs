//! A client's writer thread: the hub's outbox → the socket, whatever has queued up in one
//! vectored write, with a write timeout, and a heartbeat for structured clients.

use std::io::{self, IoSlice};
use std::net::Shutdown;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::chat::protocol::ServerFrame;

use super::event::{Ending, Event};
use super::link::Link;
use super::outbox::{Bytes, Outgoing, Stats};

/// Longest a writer keeps trying to write to a client that reads nothing, once the hub is done
/// with it (a `bye` to a client that stopped reading).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// A blocked write returns this often, so the writer sees its progress and its end.
pub const WRITE_TICK: Duration = Duration::from_millis(250);
/// Most bytes a writer hands the kernel in one write: what has queued up goes out together.
pub const WRITE_BATCH: usize = 64 * 1024;
/// Most parts in one vectored write (Linux takes up to 1024).
pub const WRITE_PARTS: usize = 256;
/// Stack of a writer thread: it only copies bytes to the socket.
pub const WRITER_STACK: usize = 64 * 1024;

/// Writes what the hub queues, in order, until the hub drops the outbox; then half-closes, so
/// the client reads everything (a `bye` included) before end of stream. Whatever has queued up
/// goes out in one vectored write (up to [`WRITE_BATCH`] bytes or [`WRITE_PARTS`] parts). A
/// structured client that was sent nothing for `heartbeat` gets a `ping`. A reset stops it, and
/// leaves the client's end to its reader.
pub fn write_loop(
    id: u64,
    link: &Link,
    queue: &Receiver<Outgoing>,
    stats: &Stats,
    (events, room): (&Sender<Event>, &Sender<()>),
    heartbeat: Duration,
) {
    let ping: Bytes = ServerFrame::Ping.to_json_line().into();
    let mut batch: Vec<Outgoing> = Vec::new();
    loop {
        // crossbeam spins, then yields a few times, before it parks: the next round mostly comes
        // in that time. A channel that parks sooner (std's mpsc, measured on a TLS fan-out) made
        // the server wake writers 8× as often through futexes and spend more CPU, not less.
        let first = match queue.recv_timeout(heartbeat) {
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
        let (mut size, mut parts) = (first.len(), first.parts.most());
        batch.push(first);
        while size < WRITE_BATCH && parts < WRITE_PARTS {
            let Ok(next) = queue.try_recv() else { break };
            (size, parts) = (size + next.len(), parts + next.parts.most());
            batch.push(next);
        }
        let written = write_patiently(link, &batch, stats);
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
        // A reset: what the client sent before it is still to be read. The writer only stops;
        // the reader reads the rest and then ends the client, so the end never overtakes the
        // client's last lines (nor drops its last, unfinished one).
        if let Err(err) = &written
            && peer_gone(err)
        {
            stats.lose(format!("connection lost: {err}"));
        }
        if !stats.above_low_water() && stats.congested.swap(false, Ordering::AcqRel) {
            let _ = room.try_send(());
        }
        if let Err(err) = written {
            if peer_gone(&err) {
                break;
            }
            stats.close();
            let _ = link.socket().shutdown(Shutdown::Both);
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
    link.finish();
    let _ = events.send(Event::WriterDone);
}

/// The peer reset the connection (or it was already reset): the kernel has ended it, and the
/// reader meets its end too once it has read what came before.
fn peer_gone(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::NotConnected
    )
}

/// Writes all of `items`, noting every bit of progress; gives up (TimedOut) after
/// [`WRITE_TIMEOUT`] without any. The socket's own timeout is [`WRITE_TICK`], so a blocked write
/// comes back often to say how far it got.
fn write_patiently(link: &Link, items: &[Outgoing], stats: &Stats) -> io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = items
        .iter()
        .flat_map(|item| item.parts.iter())
        .filter(|part| !part.is_empty())
        .map(|part| IoSlice::new(part))
        .collect();
    link.write_patiently(&mut slices, WRITE_TIMEOUT, || stats.touch())
}
