//! The accept thread: each connection gets its reader and writer, unless `--max-clients` are
//! connected already (then it is told so and closed); at shutdown a connection of our own wakes
//! it from `accept()`.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use crate::chat::protocol::{ByeCode, Greeting, MAX_LINE_BYTES, ServerFrame, classify_first_line};

use super::config::Policy;
use super::connection;
use super::event::Event;
use super::reader::{MAX_JSON_DEPTH, nesting_within};

/// Pause after a failed accept (out of file descriptors, say), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Limit on the connection that wakes the accept thread at shutdown.
const WAKE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a client refused by `--max-clients` gets to read its "server full" line.
const REFUSE_LINGER: Duration = Duration::from_secs(2);
/// Stack of the short-lived thread that tells a refused client.
const REFUSE_STACK: usize = 64 * 1024;
/// How long a refused connection has to say `hello` to be told in a frame too (a soquete client
/// says it as it connects); the close waits that long for a silent one.
const HELLO_WAIT: Duration = Duration::from_millis(500);

/// Accepts until told to stop; each connection gets its reader and writer, unless
/// `--max-clients` are connected already (`connected` counts them; the hub counts them down).
pub fn accept_loop(
    listener: &TcpListener,
    (events, room): (&Sender<Event>, &Sender<()>),
    stop: &AtomicBool,
    (max_clients, connected, tell_refused): (Option<usize>, &AtomicUsize, bool),
    policy: Policy,
) {
    let mut next_id = 1u64;
    loop {
        let accepted = listener.accept();
        if stop.load(Ordering::SeqCst) {
            return;
        }
        match accepted {
            Ok((stream, peer)) => {
                if let Some(max) = max_clients
                    && connected.load(Ordering::Relaxed) >= max
                {
                    refuse(stream, max, tell_refused, events);
                    continue;
                }
                connected.fetch_add(1, Ordering::Relaxed);
                if let Err(err) = connection::start(next_id, stream, events, room, policy) {
                    // Failed before the hub heard of it: it never counted.
                    connected.fetch_sub(1, Ordering::Relaxed);
                    if matches!(
                        err.kind(),
                        io::ErrorKind::NotConnected
                            | io::ErrorKind::ConnectionReset
                            | io::ErrorKind::ConnectionAborted
                    ) {
                        // Reset as soon as it was made: a port probe, nothing to worry about.
                        let _ = events.send(Event::Vanished { peer });
                    } else {
                        eprintln!("soquete: setting up connection {next_id}: {err}");
                    }
                }
                next_id += 1;
            }
            Err(err) => {
                eprintln!("soquete: accepting a connection: {err}");
                thread::sleep(ACCEPT_BACKOFF);
            }
        }
    }
}

/// Tells a connection beyond `--max-clients` so (when `tell`), in a line any client can read (it
/// has not said what it is yet), then, if it says `hello` within [`HELLO_WAIT`], in a `bye`
/// frame with the code `full` too (a broker's raw clients hear nothing, but a soquete client
/// has said what it is); and closes it. The close lingers until the client closes or
/// [`REFUSE_LINGER`] passes: closing with its `hello` unread would reset the connection, and
/// the reset could destroy the line before the client reads it.
fn refuse(stream: TcpStream, max: usize, tell: bool, events: &Sender<Event>) {
    if let Ok(peer) = stream.peer_addr() {
        let _ = events.try_send(Event::Refused { peer });
    }
    let tell = move || {
        let start = Instant::now();
        let reason =
            format!("server full: {max} clients are connected (--max-clients); try again later");
        let _ = stream.set_write_timeout(Some(REFUSE_LINGER));
        if tell {
            let _ = (&stream).write_all(format!("* {reason}\n").as_bytes());
        }
        let mut sink = [0u8; 512];
        let mut first = Vec::new();
        while !first.contains(&b'\n') && first.len() <= MAX_LINE_BYTES {
            let left = HELLO_WAIT.saturating_sub(start.elapsed());
            if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
                break;
            }
            match (&stream).read(&mut sink) {
                Ok(0) | Err(_) => break,
                Ok(n) => first.extend_from_slice(&sink[..n]),
            }
        }
        if let Some(end) = first.iter().position(|&byte| byte == b'\n') {
            let line = String::from_utf8_lossy(&first[..end]);
            if nesting_within(&line, MAX_JSON_DEPTH)
                && let Greeting::Structured { .. } = classify_first_line(&line)
            {
                let bye = ServerFrame::Bye {
                    reason,
                    code: ByeCode::Full,
                };
                let _ = (&stream).write_all(&bye.to_json_line());
            }
        }
        let _ = stream.shutdown(std::net::Shutdown::Write);
        let _ = stream.set_read_timeout(Some(REFUSE_LINGER));
        let deadline = start + REFUSE_LINGER;
        while Instant::now() < deadline {
            match (&stream).read(&mut sink) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    };
    // Without a thread to spare, the connection is simply closed.
    let _ = thread::Builder::new()
        .name("refuse".into())
        .stack_size(REFUSE_STACK)
        .spawn(tell);
}

/// Wakes the accept thread from `accept()` (which has no timeout of its own) with a connection
/// of our own, once it has been told to stop; says whether the connection was made.
pub fn wake(listening: SocketAddr) -> bool {
    TcpStream::connect_timeout(&reachable(listening), WAKE_TIMEOUT).is_ok()
}

/// The address to reach a listener at: a wildcard address is reached on loopback.
fn reachable(listening: SocketAddr) -> SocketAddr {
    let mut addr = listening;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    addr
}
