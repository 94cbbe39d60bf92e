//! The accept thread: each connection gets its reader and writer, unless `--max-clients` are
//! connected already (then it is told so and closed, by `refusal`); at shutdown a connection of
//! our own wakes it from `accept()`. On a TLS port without a password, a connection takes no
//! seat until its handshake is done, and does it in a [`Lobby`] of its own, as at a password
//! room's door: at most [`MAX_PER_ADDRESS`] from one address at once, and [`MAX_AT_DOOR`] in
//! all. Beyond, it waits its address's turn without a thread (a class behind one address
//! connecting at once), [`MAX_WAITING_PER_ADDRESS`] at most; beyond that it is closed at once
//! (and the console says so, collapsed per address).

use std::io;
use std::net::IpAddr;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use crossbeam_channel::Sender;
use rustls::ServerConfig;

use crate::chat::protocol::{ByeCode, ServerFrame, TOO_MANY_TRIES};
use crate::net::tls::server::ServerTls;

use super::access::Access;
use super::config::Policy;
use super::connection::{self, Door, Seats, Serving};
use super::event::Event;
use super::lobby::{
    Crowded, Entry, Lobby, MAX_AT_DOOR, MAX_PER_ADDRESS, MAX_WAITING, MAX_WAITING_PER_ADDRESS,
    Waiter,
};
use super::refusal::{Refusal, Refusals};

/// Pause after a failed accept (out of file descriptors, say), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Limit on the connection that wakes the accept thread at shutdown.
const WAKE_TIMEOUT: Duration = Duration::from_secs(1);

/// Accepts until told to stop; each connection gets its reader and writer, unless
/// `--max-clients` are connected already (`connected` counts them; the hub counts them down).
/// In a password room a connection first waits at the door, where it takes no seat, unless
/// the door is crowded (then it is told so and closed at once, as a refused one is). On a TLS
/// port without a password its handshake is its door: it is closed at once when crowded.
pub fn accept_loop(
    listener: &TcpListener,
    (events, room): (&Sender<Event>, &Sender<()>),
    stop: &AtomicBool,
    (max_clients, connected, tell_refused): (Option<usize>, &Arc<AtomicUsize>, bool),
    (policy, tls, access): (Policy, Option<&ServerTls>, Option<Arc<Access>>),
) {
    let mut next_id = 1u64;
    let refusals = Refusals::start();
    let handshakes = Arc::new(Lobby::default());
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
                    let tls = tls.map(ServerTls::config);
                    refuse(stream, (max, tell_refused, tls), events, &refusals);
                    continue;
                }
                let seats = Seats {
                    max: max_clients,
                    connected: Arc::clone(connected),
                };
                // A reload serves new connections; this one keeps the certificate it came to.
                let serving_tls = tls.map(|tls| (tls.config(), tls.optional));
                let id = next_id;
                next_id += 1;
                let door = match (&access, tls) {
                    (Some(access), _) => match access.enter(peer.ip()) {
                        Ok(place) => Some(Door {
                            access: Some(Arc::clone(access)),
                            place,
                            seats,
                        }),
                        Err(crowded) => {
                            let tls = tls.map(ServerTls::config);
                            crowd(stream, (peer.ip(), crowded, tls), events, &refusals);
                            continue;
                        }
                    },
                    (None, Some(_)) => {
                        let ends = (events.clone(), room.clone());
                        let waiter: Waiter = Box::new(move |place| {
                            let door = Door {
                                access: None,
                                place,
                                seats,
                            };
                            let serving = (policy, serving_tls, Some(door));
                            open((id, stream, peer), (&ends.0, &ends.1), serving, None);
                        });
                        match handshakes.enter_or_wait(peer.ip(), waiter) {
                            Ok(Entry::In(place, waiter)) => waiter(place),
                            Ok(Entry::Waiting) => {}
                            Err(crowded) => crowd_handshakes(peer, crowded, events),
                        }
                        continue;
                    }
                    (None, None) => None,
                };
                // At the door, a connection takes a seat only once let in.
                let counted = door.is_none().then(|| {
                    connected.fetch_add(1, Ordering::Relaxed);
                    &**connected
                });
                let serving = (policy, serving_tls, door);
                open((id, stream, peer), (events, room), serving, counted);
            }
            Err(err) => {
                eprintln!("soquete: accepting a connection: {err}");
                thread::sleep(ACCEPT_BACKOFF);
            }
        }
    }
}

/// Starts a connection's threads (see [`connection::start`]); `counted`: the seats of
/// `--max-clients`, when it took one already (given back if it could not start).
fn open(
    (id, stream, peer): (u64, TcpStream, SocketAddr),
    (events, room): (&Sender<Event>, &Sender<()>),
    serving: Serving,
    counted: Option<&AtomicUsize>,
) {
    let Err(err) = connection::start(id, stream, (events, room), serving) else {
        return;
    };
    // Failed before the hub heard of it: it never counted.
    if let Some(connected) = counted {
        connected.fetch_sub(1, Ordering::Relaxed);
    }
    if matches!(
        err.kind(),
        io::ErrorKind::NotConnected
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
    ) {
        // Reset as soon as it was made: a port probe, nothing to worry about.
        let reason = "closed without a word".into();
        let _ = events.send(Event::Vanished { peer, reason });
    } else {
        eprintln!("soquete: setting up connection {id}: {err}");
    }
}

/// Tells a connection beyond `--max-clients` so (when `tell`), in a line any client can read (it
/// has not said what it is yet), and, if it says `hello` at once, in a `bye` frame with the code
/// `full` too (a broker's raw clients hear nothing, but a soquete client has said what it is);
/// then closes it: without a thread of its own (see [`Refusals`]).
fn refuse(
    stream: TcpStream,
    (max, tell, tls): (usize, bool, Option<Arc<ServerConfig>>),
    events: &Sender<Event>,
    refusals: &Refusals,
) {
    if let Ok(peer) = stream.peer_addr() {
        let _ = events.try_send(Event::Refused { peer });
    }
    let reason = Seats::full_reason(max);
    let line = tell.then(|| format!("* {reason}\n").into_bytes());
    let bye = ServerFrame::Bye {
        reason,
        code: ByeCode::Full,
    };
    let refusal = Refusal {
        line,
        bye: bye.to_json_line(),
        tls,
    };
    refusals.refuse(stream, refusal);
}

/// Tells a connection the password room's door is crowded (its address has too many there, or
/// everyone has), in a line any client can read, and an `error` frame (`too_many_tries`) if it
/// says `hello` at once; then closes it, without a thread of its own (see [`Refusals`]).
fn crowd(
    stream: TcpStream,
    (ip, crowded, tls): (IpAddr, Crowded, Option<Arc<ServerConfig>>),
    events: &Sender<Event>,
    refusals: &Refusals,
) {
    if let Ok(peer) = stream.peer_addr() {
        let reason = match crowded {
            Crowded::Address => format!("too many connections from {ip} at the password prompt"),
            Crowded::Door => "too many connections at the password prompt".to_string(),
        };
        let _ = events.try_send(Event::Denied {
            peer,
            reason,
            failures: None,
        });
    }
    let message = crowded.line();
    let error = ServerFrame::Error {
        code: TOO_MANY_TRIES.into(),
        message: message.clone(),
    };
    let refusal = Refusal {
        line: Some(format!("* {message}\n").into_bytes()),
        bye: error.to_json_line(),
        tls,
    };
    refusals.refuse(stream, refusal);
}

/// Says on the console that a connection was closed at once (nothing said to it: it may not be
/// TLS yet) because its address had [`MAX_PER_ADDRESS`] in their TLS handshake and as many
/// waiting in line as it may have already (or [`MAX_AT_DOOR`] were, from every address); the
/// hub collapses these per address.
fn crowd_handshakes(peer: SocketAddr, crowded: Crowded, events: &Sender<Event>) {
    let reason = match crowded {
        Crowded::Address => format!(
            "too many connections from {} in their TLS handshake (at most {MAX_PER_ADDRESS} at \
             once, and {MAX_WAITING_PER_ADDRESS} waiting for their turn): closed",
            peer.ip()
        ),
        Crowded::Door => format!(
            "too many connections in their TLS handshake (at most {MAX_AT_DOOR} at once, and \
             {MAX_WAITING} waiting for their turn): closed"
        ),
    };
    let _ = events.try_send(Event::Denied {
        peer,
        reason,
        failures: None,
    });
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
