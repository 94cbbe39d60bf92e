//! One accepted socket: its options (no delay, timeouts, dead-peer detection), the password
//! check when the room has one (on a thread of its own: `access`), its reader and writer
//! threads, and the hub's first word of it. Both threads share the one socket (one file
//! descriptor per client), through its [`Link`] (plain, or TLS), and run on small stacks, so ten
//! thousand clients fit. On a TLS port with a password, the handshake comes first: the password
//! is asked for, and given, inside TLS. On a TLS port without one, the handshake (or, with
//! `--tls-optional`, the wait for the first byte) is done on that thread too, before the hub
//! hears of the connection: until it is done, the connection takes no seat of `--max-clients`.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crossbeam_channel::Sender;
use rustls::ServerConfig;

use crate::platform::sockopt::{self, DeadPeerDetection};
use crate::platform::threads::spawn_small;

use super::access::{self, Access, Admission};
use super::config::Policy;
use super::event::{Accepted, Ending, Event};
use super::link::{Begin, Link};
use super::lobby::Place;
use super::outbox::Stats;
use super::reader::{JOIN_GRACE, READER_STACK, Start, read_loop};
use super::writer::{WRITE_TICK, WRITER_STACK, write_loop};

/// TCP keepalive: an idle connection is probed after this long without traffic…
pub const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);
/// …then every this long, and given up after [`KEEPALIVE_PROBES`] unanswered probes.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// Unanswered keepalive probes before the kernel drops the connection.
pub const KEEPALIVE_PROBES: u32 = 3;
/// Data (a heartbeat, say) left unacknowledged this long means the peer is gone (Linux's
/// TCP_USER_TIMEOUT): a half-open client is dropped in seconds, not after the kernel's ~15 min.
pub const UNACKED_TIMEOUT: Duration = Duration::from_secs(30);

/// How a connection is served: its policy; TLS (the configuration current when it arrived, a
/// reload serving only later ones, and whether plain clients are served too); the room's
/// door, when it has a password.
pub type Serving = (Policy, Option<(Arc<ServerConfig>, bool)>, Option<Door>);

/// A connection held before it takes a seat: at a password room's door (`access`, the check),
/// or in its TLS handshake (no password); its place there (given back once it is let in or
/// turned away), and the seats of `--max-clients` it takes one of once let in.
pub struct Door {
    pub access: Option<Arc<Access>>,
    pub place: Place,
    pub seats: Seats,
}

/// The seats of `--max-clients`: the connections the hub counts.
#[derive(Debug, Clone)]
pub struct Seats {
    pub max: Option<usize>,
    pub connected: Arc<AtomicUsize>,
}

impl Seats {
    /// Takes a seat; false (and none taken) when all are taken.
    pub fn take(&self) -> bool {
        let before = self.connected.fetch_add(1, Ordering::Relaxed);
        if self.max.is_some_and(|max| before >= max) {
            self.connected.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// What a connection told there is no seat for reads.
    pub fn full_reason(max: usize) -> String {
        format!("server full: {max} clients are connected (--max-clients); try again later")
    }
}

/// A connection about to join: its id, socket, transport and addresses.
type Joining = (u64, Arc<TcpStream>, Arc<Link>, SocketAddr, SocketAddr);

/// Sets up the socket and starts its writer and reader; the hub hears of it first. At a `door`
/// (a password, or a TLS handshake), a thread of its own does the handshake and checks the
/// password first, and the hub hears of the connection only once it is right and a seat is free
/// (or, turned away, as [`Event::Denied`]; one that fails its handshake, as [`Event::Vanished`]).
/// An error means the hub never heard of the connection; a thread that cannot start is
/// reported to the hub as the client's end.
pub fn start(
    id: u64,
    stream: TcpStream,
    (events, room): (&Sender<Event>, &Sender<()>),
    (policy, tls, door): Serving,
) -> io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_write_timeout(Some(WRITE_TICK))?;
    stream.set_read_timeout(Some(JOIN_GRACE))?;
    detect_dead_peers(&stream)?;
    let peer = stream.peer_addr()?;
    let local = stream.local_addr()?;
    let stream = Arc::new(stream);
    let link = Arc::new(match tls {
        Some((config, optional)) => Link::tls(Arc::clone(&stream), config, optional),
        None => Link::plain(Arc::clone(&stream)),
    });
    let Some(Door {
        access,
        mut place,
        seats,
    }) = door
    else {
        let joining = (id, stream, link, peer, local);
        enter(joining, events, room, policy, Start::Fresh);
        return Ok(());
    };
    let (events, room) = (events.clone(), room.clone());
    spawn_small(&format!("door-{id}"), READER_STACK, move || {
        let checked = access.is_some();
        // Without a password, one that never got as far as a line is a probe, as on any port.
        let turned_away = |reason: String, failures| {
            if checked {
                Event::Denied {
                    peer,
                    reason,
                    failures,
                }
            } else {
                Event::Vanished { peer, reason }
            }
        };
        // On a TLS port the handshake comes first (a plain client is told to use TLS, and
        // never asked for the password): the password crosses inside TLS.
        let admitted = catch_unwind(AssertUnwindSafe(|| match link.begin() {
            // Ended before its first byte: never asked, in plain text, on a TLS-only port.
            Begin::Ready { .. } if link.plain_on_tls_only() => Some(Admission::Out {
                reason: "closed without a word".into(),
                failures: None,
            }),
            Begin::Ready { silent } => Some(match &access {
                Some(access) => access.admit(&link, peer.ip(), policy.telnet, &mut place),
                None => Admission::In(Start::Begun { silent }),
            }),
            Begin::Ended(reason) => {
                let _ = events.send(turned_away(reason, None));
                None
            }
        }));
        // Let in or turned away, it leaves the door before anyone hears of it.
        drop(place);
        match admitted {
            Ok(None) => {}
            Ok(Some(Admission::In(start))) if !seats.take() => {
                let reason = Seats::full_reason(seats.max.unwrap_or_default());
                // Not having said what it is (no password asked), it is told in a line.
                let structured = matches!(&start, Start::Admitted { first: Some(_), .. });
                let _ = events.send(Event::Refused { peer });
                access::tell_full(&link, structured, reason);
                access::close(&link);
            }
            Ok(Some(Admission::In(start))) => {
                enter(
                    (id, stream, link, peer, local),
                    &events,
                    &room,
                    policy,
                    start,
                );
            }
            // The console hears of it before the client sees the end of the stream.
            Ok(Some(Admission::Out { reason, failures })) => {
                let _ = events.send(turned_away(reason, failures));
                access::close(&link);
            }
            Err(_) => {
                let reason = "internal error in the server (its password check failed)".into();
                let _ = events.send(turned_away(reason, None));
                access::close(&link);
            }
        }
    })
}

/// The connection joins the server: the hub hears of it, then its writer and reader start
/// (the reader from `start`).
fn enter(
    (id, stream, link, peer, local): Joining,
    events: &Sender<Event>,
    room: &Sender<()>,
    policy: Policy,
    start: Start,
) {
    let stats = Arc::new(Stats::default());
    // Unbounded as a channel (no slots allocated up front for an idle client), bounded by the
    // hub, which counts messages and bytes against OUTBOX_CAPACITY and OUTBOX_BYTES.
    let (outbox, queue) = crossbeam_channel::unbounded();

    let (writer_stream, reader_stream) = (Arc::clone(&link), link);
    let accepted = Accepted {
        id,
        peer,
        local,
        stream,
        outbox,
        stats: Arc::clone(&stats),
    };
    if events.send(Event::Accepted(Box::new(accepted))).is_err() {
        return; // the hub has stopped: dropping the socket closes it
    }

    // The hub counts on a writer for every accepted client: if one cannot start, it hears so.
    let (writer_stats, writer_events) = (Arc::clone(&stats), events.clone());
    let room = room.clone();
    let guard = (id, events.clone(), Role::Writer);
    let writer = spawn_small(&format!("writer-{id}"), WRITER_STACK, move || {
        guarded(guard, || {
            let ends = (&writer_events, &room);
            write_loop(
                id,
                &writer_stream,
                &queue,
                &writer_stats,
                ends,
                policy.heartbeat,
            );
        });
    });
    if let Err(err) = writer {
        let _ = events.send(Event::WriterDone);
        let reason = format!("the server could not start a thread: {err}");
        let _ = events.send(Event::Closed {
            id,
            reason,
            ending: Ending::Forced,
        });
        return; // told to the hub, which counts the client out and prints why
    }
    let reader_events = events.clone();
    let guard = (id, events.clone(), Role::Reader);
    let reader = spawn_small(&format!("reader-{id}"), READER_STACK, move || {
        guarded(guard, || {
            read_loop(id, &reader_stream, &stats, &reader_events, policy, start);
        });
    });
    if let Err(err) = reader {
        let reason = format!("the server could not start a thread: {err}");
        let _ = events.send(Event::Closed {
            id,
            reason,
            ending: Ending::Forced,
        });
    }
}

/// Which of a client's two threads a [`guarded`] body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Reader,
    Writer,
}

/// Runs the body of client `id`'s reader or writer. Should it panic (a bug: nothing a client
/// sends may cause one), the client ends as a lost connection does: the hub hears `Closed`, so
/// the client leaves the room and its name is free again, never a ghost; and of a writer,
/// `WriterDone`, so shutdown does not wait for it. The panic itself is on stderr already.
fn guarded((id, events, role): (u64, Sender<Event>, Role), body: impl FnOnce()) {
    if catch_unwind(AssertUnwindSafe(body)).is_ok() {
        return;
    }
    let thread = match role {
        Role::Reader => "reader",
        Role::Writer => "writer",
    };
    let _ = events.send(Event::Closed {
        id,
        reason: format!("internal error in the server (its {thread} thread failed)"),
        ending: Ending::Forced,
    });
    if role == Role::Writer {
        let _ = events.send(Event::WriterDone);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// What a guarded body that returns (or panics) tells the hub.
    fn told(role: Role, body: impl FnOnce()) -> Vec<Event> {
        let (events, inbox) = crossbeam_channel::unbounded();
        guarded((7, events, role), body);
        inbox.try_iter().collect()
    }

    #[test]
    fn a_client_thread_that_panics_ends_its_client_as_a_lost_connection_would() {
        let reader = told(Role::Reader, || panic!("a bug in the reader"));
        assert!(
            matches!(
                reader.as_slice(),
                [Event::Closed { id: 7, reason, ending: Ending::Forced }]
                    if reason.contains("reader thread failed")
            ),
            "the hub hears the reader's client closed, and nothing else"
        );
        let writer = told(Role::Writer, || panic!("a bug in the writer"));
        assert!(
            matches!(
                writer.as_slice(),
                [
                    Event::Closed {
                        id: 7,
                        ending: Ending::Forced,
                        ..
                    },
                    Event::WriterDone
                ]
            ),
            "the hub hears the writer's client closed, and the writer done"
        );
    }

    #[test]
    fn a_client_thread_that_returns_tells_the_hub_nothing_more() {
        assert!(told(Role::Reader, || ()).is_empty());
        assert!(told(Role::Writer, || ()).is_empty());
    }
}
