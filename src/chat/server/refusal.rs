//! Connections beyond `--max-clients`, refused without a thread each: the accept thread writes
//! the refusal line without blocking, and one lingering thread keeps a bounded number of refused
//! sockets: it answers a `hello` that comes within [`HELLO_WAIT`] with a `bye` frame, then
//! half-closes, and keeps the socket open until its client closes or [`REFUSE_LINGER`] passes.
//! Closing with the client's `hello` unread would reset the connection, and a reset may destroy
//! the line before the client reads it. A burst of refusals beyond [`LINGERING`] is closed at
//! once, after the line. So a flood of connections costs the server one thread and at most twice
//! [`LINGERING`] sockets. On a TLS port the same is said inside TLS: the lingering thread does
//! the handshake without blocking (rustls over the non-blocking socket), then writes the line.
//! A client whose first byte is not a TLS handshake's (0x16), or that says nothing within
//! [`HELLO_WAIT`], is told in plain text, as on a plain port. Beyond [`LINGERING`] a refused
//! socket on a TLS port is only closed.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use rustls::{ServerConfig, ServerConnection};
use std::sync::Arc;

use crate::chat::protocol::{Greeting, MAX_LINE_BYTES};
use crate::platform::threads::spawn_small;

use super::reader::first_greeting;

/// The first byte of a TLS record that carries a handshake: a TLS client's first.
const TLS_HANDSHAKE: u8 = 0x16;

/// How long a refused client gets to read its line and close before the server closes.
pub const REFUSE_LINGER: Duration = Duration::from_secs(2);
/// How long a refused connection has to say `hello` to be told in a frame too (a soquete client
/// says it as it connects).
pub const HELLO_WAIT: Duration = Duration::from_millis(500);
/// Refused sockets kept open at once (and as many more waiting to be); beyond that they are
/// closed as soon as they are told.
pub const LINGERING: usize = 32;
/// How often the lingering thread looks at its sockets.
const LINGER_TICK: Duration = Duration::from_millis(20);
/// Most bytes read from a refused socket at one look: beyond its first line, what it sends is
/// thrown away.
const DRAIN_BYTES: usize = 4096;
/// Stack of the lingering thread: a small buffer, and a first line classified.
const LINGER_STACK: usize = 128 * 1024;

/// What a refused connection is told.
pub struct Refusal {
    /// A line any client can read, written at once (None: nothing, as a broker's raw clients
    /// hear nothing of the server's own).
    pub line: Option<Vec<u8>>,
    /// The frame a soquete client gets if it says `hello` within [`HELLO_WAIT`].
    pub bye: Vec<u8>,
    /// On a TLS port, its configuration: the refusal is said inside TLS.
    pub tls: Option<Arc<ServerConfig>>,
}

/// Tells refused connections so and lets them go.
pub struct Refusals {
    /// To the lingering thread; None when it could not start (refused sockets are then closed
    /// as soon as they are told).
    lingering: Option<Sender<Refused>>,
}

/// A refused socket the lingering thread keeps.
struct Refused {
    stream: TcpStream,
    since: Instant,
    /// The `bye` for a `hello`, until it is sent or [`HELLO_WAIT`] passes (then the socket is
    /// half-closed).
    bye: Option<Vec<u8>>,
    /// What the client sent so far, up to its first line.
    first: Vec<u8>,
    /// On a TLS port: the session, and the line to write once its handshake is done; None once
    /// the client turned out plain.
    tls: Option<(Box<ServerConnection>, Option<Vec<u8>>)>,
    /// On a TLS port, until the first byte comes (or [`HELLO_WAIT`] passes without one).
    sniffing: bool,
}

impl Refusals {
    /// Starts the lingering thread; it ends once this is dropped and its sockets are let go.
    pub fn start() -> Refusals {
        let (lingering, arrivals) = crossbeam_channel::bounded(LINGERING);
        let started = spawn_small("refusals", LINGER_STACK, move || linger(&arrivals));
        Refusals {
            lingering: started.ok().map(|()| lingering),
        }
    }

    /// Writes the refusal's line to `stream` without blocking (a fresh connection always takes
    /// it), and hands the socket to the lingering thread; when that one has its hands full, the
    /// socket is half-closed, what arrived is read, and it is closed.
    pub fn refuse(&self, stream: TcpStream, refusal: Refusal) {
        if stream.set_nonblocking(true).is_err() {
            return;
        }
        let tls = match refusal.tls {
            Some(config) => match ServerConnection::new(config) {
                Ok(session) => Some((Box::new(session), refusal.line)),
                Err(_) => return,
            },
            None => {
                if let Some(line) = &refusal.line {
                    let _ = (&stream).write(line);
                }
                None
            }
        };
        let refused = Refused {
            sniffing: tls.is_some(),
            stream,
            since: Instant::now(),
            bye: Some(refusal.bye),
            first: Vec::new(),
            tls,
        };
        let Some(lingering) = &self.lingering else {
            return refused.close_now();
        };
        if let Err(full) = lingering.try_send(refused) {
            full.into_inner().close_now();
        }
    }
}

impl Refused {
    /// Half-closes, reads what arrived already (its hello: closed unread, it would reset), and
    /// closes.
    fn close_now(mut self) {
        if let Some((session, _)) = &mut self.tls {
            session.send_close_notify();
            self.send_tls();
        }
        let _ = self.stream.shutdown(Shutdown::Write);
        let mut sink = [0u8; 512];
        let _ = (&self.stream).read(&mut sink);
    }

    /// Reads what has arrived; answers a `hello` within [`HELLO_WAIT`], then half-closes. Says
    /// whether to keep the socket: its client is still there and [`REFUSE_LINGER`] has not passed.
    fn look(&mut self, now: Instant) -> bool {
        let mut sink = [0u8; 512];
        let mut read = 0;
        let open = loop {
            if read >= DRAIN_BYTES {
                break true;
            }
            match (&self.stream).read(&mut sink) {
                Ok(0) => break false,
                Ok(n) => {
                    read += n;
                    if self.sniffing && sink[0] != TLS_HANDSHAKE {
                        self.turn_plain();
                    }
                    self.sniffing = false;
                    let Some(plain) = self.decrypt(&sink[..n]) else {
                        // Not TLS, or TLS gone wrong: nothing more can be said.
                        self.send_tls();
                        return false;
                    };
                    if self.bye.is_some() && self.first.len() <= MAX_LINE_BYTES {
                        self.first.extend_from_slice(&plain);
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => break err.kind() == io::ErrorKind::WouldBlock,
            }
        };
        // Silent for the wait: not a TLS client (which speaks first).
        if self.sniffing && now >= self.since + HELLO_WAIT {
            self.sniffing = false;
            self.turn_plain();
        }
        // On a TLS port the line goes once the handshake is done.
        if let Some((session, line)) = &mut self.tls
            && !session.is_handshaking()
            && let Some(line) = line.take()
        {
            let _ = session.writer().write_all(&line);
        }
        let handshaking = self.tls.as_ref().is_some_and(|(s, _)| s.is_handshaking());
        let said = self.first.contains(&b'\n') || !open || self.first.len() > MAX_LINE_BYTES;
        if self.bye.is_some() && !handshaking && (said || now >= self.since + HELLO_WAIT) {
            if let Some(bye) = self.bye.take().filter(|_| says_hello(&self.first)) {
                self.write(&bye);
            }
            self.first = Vec::new();
            if let Some((session, _)) = &mut self.tls {
                session.send_close_notify();
            }
            self.send_tls();
            let _ = self.stream.shutdown(Shutdown::Write);
        }
        self.send_tls();
        open && now < self.since + REFUSE_LINGER
    }

    /// A client on a TLS port that does not speak TLS: told in plain text, as on a plain port.
    fn turn_plain(&mut self) {
        if let Some((_, Some(line))) = self.tls.take() {
            let _ = (&self.stream).write(&line);
        }
    }

    /// The plain text in `bytes`: themselves on a plain port; on a TLS port what rustls makes of
    /// them (None when they are not TLS).
    fn decrypt(&mut self, mut bytes: &[u8]) -> Option<Vec<u8>> {
        let Some((session, _)) = &mut self.tls else {
            return Some(bytes.to_vec());
        };
        let mut plain = Vec::new();
        while !bytes.is_empty() {
            session.read_tls(&mut bytes).ok()?;
            session.process_new_packets().ok()?;
            let _ = session.reader().read_to_end(&mut plain);
        }
        Some(plain)
    }

    /// Writes `bytes` without blocking, inside TLS on a TLS port.
    fn write(&mut self, bytes: &[u8]) {
        match &mut self.tls {
            Some((session, _)) => {
                let _ = session.writer().write_all(bytes);
            }
            None => {
                let _ = (&self.stream).write(bytes);
            }
        }
    }

    /// Writes what rustls has made, without blocking (a refused socket's buffer has room for it;
    /// what does not fit is dropped with the socket).
    fn send_tls(&mut self) {
        if let Some((session, _)) = &mut self.tls {
            while session.wants_write() {
                if session.write_tls(&mut &self.stream).is_err() {
                    break;
                }
            }
        }
    }
}

/// True when the first line of `bytes` is a soquete client's `hello`.
fn says_hello(bytes: &[u8]) -> bool {
    let Some(end) = bytes.iter().position(|&byte| byte == b'\n') else {
        return false;
    };
    let line = String::from_utf8_lossy(&bytes[..end]).into_owned();
    matches!(first_greeting(line), Greeting::Structured { .. })
}

/// Keeps refused sockets until their clients close or [`REFUSE_LINGER`] passes, at most
/// [`LINGERING`] at once; ends when the accept thread drops its [`Refusals`].
fn linger(arrivals: &Receiver<Refused>) {
    let mut open: Vec<Refused> = Vec::with_capacity(LINGERING);
    loop {
        let arrived = if open.is_empty() {
            arrivals.recv().map_err(|_| RecvTimeoutError::Disconnected)
        } else if open.len() < LINGERING {
            arrivals.recv_timeout(LINGER_TICK)
        } else {
            std::thread::sleep(LINGER_TICK);
            Err(RecvTimeoutError::Timeout)
        };
        match arrived {
            Ok(refused) => open.push(refused),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        while open.len() < LINGERING {
            let Ok(refused) = arrivals.try_recv() else {
                break;
            };
            open.push(refused);
        }
        let now = Instant::now();
        open.retain_mut(|refused| refused.look(now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A connection and its accepted end.
    fn pair(listener: &TcpListener) -> (TcpStream, TcpStream) {
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        (client, accepted)
    }

    /// Everything the client reads up to the end of the stream.
    fn heard(mut client: TcpStream) -> String {
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut heard = String::new();
        client.read_to_string(&mut heard).unwrap();
        heard
    }

    fn refusal() -> Refusal {
        Refusal {
            line: Some(b"* server full\n".to_vec()),
            bye: b"{\"type\":\"bye\"}\n".to_vec(),
            tls: None,
        }
    }

    #[test]
    fn a_refused_soquete_client_reads_the_line_and_the_bye_then_end_of_stream() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let refusals = Refusals::start();
        let (mut client, accepted) = pair(&listener);
        client
            .write_all(b"{\"type\":\"hello\",\"version\":1,\"name\":\"ana\"}\n")
            .unwrap();
        refusals.refuse(accepted, refusal());
        assert_eq!(heard(client), "* server full\n{\"type\":\"bye\"}\n");
    }

    #[test]
    fn a_refused_raw_client_reads_the_line_then_end_of_stream() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let refusals = Refusals::start();
        let (mut client, accepted) = pair(&listener);
        client.write_all(b"oi\n").unwrap();
        refusals.refuse(accepted, refusal());
        assert_eq!(heard(client), "* server full\n");
        // One that says nothing gets the end when the wait for a hello is over.
        let (client, accepted) = pair(&listener);
        refusals.refuse(accepted, refusal());
        assert_eq!(heard(client), "* server full\n");
    }

    #[test]
    fn beyond_what_lingers_refused_sockets_are_closed_at_once() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        // No lingering thread to take them: each is closed as soon as it is told.
        let refusals = Refusals { lingering: None };
        let (client, accepted) = pair(&listener);
        refusals.refuse(accepted, refusal());
        assert_eq!(heard(client), "* server full\n");
    }

    #[test]
    fn on_a_tls_port_a_plain_client_reads_the_line_in_plain_text() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let refusals = Refusals::start();
        let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let served = crate::net::tls::server::identity(
            made.cert.pem().as_bytes(),
            made.signing_key.serialize_pem().as_bytes(),
        )
        .unwrap();
        let on_tls = || Refusal {
            tls: Some(Arc::clone(&served.config)),
            ..refusal()
        };
        // nc: a first byte that is not TLS.
        let (mut client, accepted) = pair(&listener);
        client.write_all(b"oi\n").unwrap();
        refusals.refuse(accepted, on_tls());
        assert_eq!(heard(client), "* server full\n");
        // A client that says nothing (a TLS client speaks first).
        let (client, accepted) = pair(&listener);
        refusals.refuse(accepted, on_tls());
        assert_eq!(heard(client), "* server full\n");
        // A soquete client without --tls: its hello gets the bye too.
        let (mut client, accepted) = pair(&listener);
        client
            .write_all(b"{\"type\":\"hello\",\"version\":1,\"name\":\"ana\"}\n")
            .unwrap();
        refusals.refuse(accepted, on_tls());
        assert_eq!(heard(client), "* server full\n{\"type\":\"bye\"}\n");
    }
}
