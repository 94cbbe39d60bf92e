//! The generator's engine: one mio (epoll) poll over many non-blocking TCP clients, each with its
//! queue of lines to send and its partial line read. What a received line counts for is
//! `tally.rs`'s; the scenarios drive the engine.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use serde::Serialize;

use crate::line;
use crate::tally::Tally;

/// The width of a timeline bucket: deliveries are counted per 100 ms of the timed phase.
pub const BUCKET: Duration = Duration::from_millis(100);

/// Which server the generator talks to, hence what its lines look like on the way back.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, clap::ValueEnum)]
pub enum Kind {
    /// `soquete serve` (group mode): a greeting first, lines labelled with time and author.
    Soquete,
    /// `ncat --broker`: bare lines, nothing of the server's own.
    Ncat,
    /// `soquete serve --mode broker`: bare lines, nothing of the server's own.
    Broker,
}

/// What a client does in a run.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Role {
    /// Sends test lines and reads everything.
    Talker,
    /// Says hello, then never reads (until the timed phase is over).
    Stalled,
    /// Reads everything and never writes a byte.
    Listener,
}

/// One client connection and what it has done so far.
pub struct Client {
    /// The client's number among all the generator's clients (what its lines carry).
    pub id: usize,
    pub stream: TcpStream,
    /// Its TLS session (`--tls`): the bytes above go through it.
    tls: Option<Box<rustls::ClientConnection>>,
    /// The non-blocking connect has completed.
    pub connected: bool,
    /// soquete: a `* ` notice (its greeting) has come.
    pub greeted: bool,
    /// Reads what arrives; a stalled client never does (after setup).
    pub reading: bool,
    /// Sends test lines.
    pub talker: bool,
    /// Reads and never writes (its test lines are counted apart from the talkers').
    pub listener: bool,
    /// Not closed yet (by the server, or on an error).
    pub open: bool,
    /// Queued bytes, written from `out_pos` on.
    out: Vec<u8>,
    out_pos: usize,
    /// The socket took no more: wait for it to be writable.
    blocked: bool,
    /// The start of a line whose newline has not come yet.
    partial: Vec<u8>,
    /// Sequence number of its next test line (so far: how many it sent).
    pub next_seq: u32,
    /// When its next line is due, in the phase (paced runs).
    pub next_due: Duration,
    pub bytes_in: u64,
    /// Bytes read from the socket: with TLS, the records with their headers and tags.
    pub wire_in: u64,
    /// Bytes the socket took from it.
    pub bytes_out: u64,
    pub lines_in: u64,
    /// When it was closed, in the phase.
    pub closed_at: Option<Duration>,
    pub close_reason: Option<String>,
    /// The `* bye` line it got.
    pub bye: Option<String>,
    /// When it last sent its hello.
    pub last_hello: Option<Instant>,
}

impl Client {
    /// The poll interest of a client: a stalled one is not read.
    pub fn interest(&self) -> Interest {
        if self.reading {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::WRITABLE
        }
    }
}

/// When a chunk of bytes arrived: in the phase, since the generator's base, and its 100 ms bucket.
#[derive(Clone, Copy)]
pub struct Stamp {
    /// Since the phase started.
    pub at: Duration,
    /// Since the generator's base, the clock of the send times in the lines.
    pub received_ns: u64,
    /// The 100 ms bucket of the phase.
    pub bucket: usize,
}

/// One event loop over a set of clients, and the tally of what they received.
pub struct Bench {
    /// The server's address.
    pub addr: SocketAddr,
    /// More servers of the same room (`--also`): client k connects to the k-th address of
    /// `addr` followed by these, round the list.
    pub also: Vec<SocketAddr>,
    pub kind: Kind,
    /// Bytes of a test line, newline included.
    pub size: usize,
    /// Keeps a latency sample for every test line received (sent after the warm-up).
    pub record_latency: bool,
    /// The event loop; a client's token is its index in `clients`.
    pub poll: Poll,
    events: Events,
    pub clients: Vec<Client>,
    /// Clients that take part in the hello exchange and the sequence checks.
    pub n: usize,
    /// expected[receiver * n + sender]: next sequence number due.
    pub expected: Vec<u32>,
    /// hello_seen[receiver * n + sender]: the receiver has seen the sender's hello.
    pub hello_seen: Vec<bool>,
    /// Hellos the reading clients have not seen yet.
    pub hellos_missing: usize,
    /// Where the send times in the lines count from.
    pub base: Instant,
    /// When the timed phase started (deliveries before it count at 0).
    pub phase_start: Option<Instant>,
    /// Deliveries up to this far into the phase are in the window.
    pub window: Duration,
    /// Lines sent before this (since `base`) are not sampled for latency.
    pub warmup_ns: u64,
    pub tally: Tally,
    /// The read buffer, shared by all clients.
    buf: Vec<u8>,
    /// Clients speak TLS with this configuration (`--tls`).
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

impl Bench {
    /// An engine without clients, for a server at `addr` of `kind` and test lines of `size` bytes.
    pub fn new(addr: SocketAddr, kind: Kind, size: usize) -> io::Result<Bench> {
        Ok(Bench {
            addr,
            also: Vec::new(),
            kind,
            size,
            record_latency: false,
            poll: Poll::new()?,
            events: Events::with_capacity(4096),
            clients: Vec::new(),
            n: 0,
            expected: Vec::new(),
            hello_seen: Vec::new(),
            hellos_missing: 0,
            base: Instant::now(),
            phase_start: None,
            window: Duration::MAX,
            warmup_ns: 0,
            tally: Tally::default(),
            buf: vec![0; 256 * 1024],
            tls: None,
        })
    }

    fn now_ns(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    fn since_start(&self, at: Instant) -> Duration {
        self.phase_start
            .map(|s| at.saturating_duration_since(s))
            .unwrap_or_default()
    }

    /// Opens one more client in `role` (non-blocking connect), with a receive buffer of `rcvbuf`
    /// bytes (0: the system's).
    pub fn connect(&mut self, role: Role, rcvbuf: usize) -> io::Result<()> {
        let addr = self.address_of(self.clients.len());
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM,
            None,
        )?;
        socket.set_nonblocking(true)?;
        if rcvbuf > 0 {
            socket.set_recv_buffer_size(rcvbuf)?;
        }
        match socket.connect(&addr.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(e),
        }
        let std_stream: std::net::TcpStream = socket.into();
        let id = self.clients.len();
        let mut client = Client {
            id,
            stream: TcpStream::from_std(std_stream),
            tls: self.tls.as_ref().map(crate::tls::session),
            connected: false,
            greeted: false,
            reading: role != Role::Stalled,
            talker: role == Role::Talker,
            listener: role == Role::Listener,
            open: true,
            out: Vec::new(),
            out_pos: 0,
            blocked: false,
            partial: Vec::new(),
            next_seq: 0,
            next_due: Duration::ZERO,
            bytes_in: 0,
            wire_in: 0,
            bytes_out: 0,
            lines_in: 0,
            closed_at: None,
            close_reason: None,
            bye: None,
            last_hello: None,
        };
        let interest = client.interest();
        self.poll
            .registry()
            .register(&mut client.stream, Token(id), interest)?;
        self.clients.push(client);
        Ok(())
    }

    /// The server client `id` connects to: the servers taken in turn.
    pub fn address_of(&self, id: usize) -> SocketAddr {
        match id % (1 + self.also.len()) {
            0 => self.addr,
            k => self.also[k - 1],
        }
    }

    /// Closes client `i` (once), noting when and why.
    pub fn close(&mut self, i: usize, reason: String) {
        let now = Instant::now();
        let at = self.since_start(now);
        let c = &mut self.clients[i];
        if !c.open {
            return;
        }
        c.open = false;
        c.closed_at = Some(at);
        c.close_reason = Some(reason);
        let _ = self.poll.registry().deregister(&mut c.stream);
    }

    /// One poll round: waits at most `timeout`, handles what is ready.
    pub fn pump(&mut self, timeout: Duration) -> io::Result<()> {
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        }
        let ready: Vec<(usize, bool, bool)> = self
            .events
            .iter()
            .map(|e| {
                (
                    e.token().0,
                    e.is_readable() || e.is_read_closed() || e.is_error(),
                    e.is_writable() || e.is_error(),
                )
            })
            .collect();
        for (i, readable, writable) in ready {
            if i >= self.clients.len() || !self.clients[i].open {
                continue;
            }
            if writable {
                if !self.clients[i].connected {
                    self.check_connected(i);
                }
                self.clients[i].blocked = false;
                self.flush(i);
            }
            if readable && self.clients[i].reading {
                self.read(i);
            }
        }
        Ok(())
    }

    fn check_connected(&mut self, i: usize) {
        let c = &mut self.clients[i];
        match c.stream.take_error() {
            Ok(Some(e)) | Err(e) => {
                self.close(i, format!("connect: {e}"));
                return;
            }
            Ok(None) => {}
        }
        match c.stream.peer_addr() {
            Ok(_) => {
                c.connected = true;
                let _ = c.stream.set_nodelay(true);
            }
            Err(e) if e.kind() == io::ErrorKind::NotConnected => {}
            Err(e) => self.close(i, format!("connect: {e}")),
        }
    }

    /// Writes what client `i` has queued, as far as the socket takes it.
    pub fn flush(&mut self, i: usize) {
        if self.clients[i].tls.is_some() {
            return self.flush_tls(i);
        }
        loop {
            let c = &mut self.clients[i];
            if !c.open || !c.connected || c.blocked || c.out_pos >= c.out.len() {
                if c.out_pos >= c.out.len() {
                    c.out.clear();
                    c.out_pos = 0;
                }
                return;
            }
            match c.stream.write(&c.out[c.out_pos..]) {
                Ok(0) => {
                    self.close(i, "write returned 0".into());
                    return;
                }
                Ok(n) => {
                    c.out_pos += n;
                    c.bytes_out += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    c.blocked = true;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.close(i, format!("write: {e}"));
                    return;
                }
            }
        }
    }

    /// Over TLS: hands rustls what client `i` has queued, and writes what rustls made, as far as
    /// the socket takes it.
    fn flush_tls(&mut self, i: usize) {
        loop {
            let c = &mut self.clients[i];
            let Some(session) = c.tls.as_mut() else {
                return;
            };
            if !c.open || !c.connected || c.blocked {
                return;
            }
            let mut taken = 0;
            if c.out_pos < c.out.len() {
                taken = session.writer().write(&c.out[c.out_pos..]).unwrap_or(0);
                c.out_pos += taken;
                c.bytes_out += taken as u64;
            }
            if c.out_pos >= c.out.len() {
                c.out.clear();
                c.out_pos = 0;
            }
            if !session.wants_write() {
                // All written; or the handshake is on and rustls holds all it will.
                if c.out.is_empty() || taken == 0 {
                    return;
                }
                continue;
            }
            match session.write_tls(&mut c.stream) {
                Ok(0) => return self.close(i, "write returned 0".into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    c.blocked = true;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.close(i, format!("write: {e}")),
            }
        }
    }

    /// Over TLS: reads what client `i` has waiting through rustls, line by line into the tally.
    fn read_tls(&mut self, i: usize) {
        let mut buf = std::mem::take(&mut self.buf);
        loop {
            let c = &mut self.clients[i];
            let Some(session) = c.tls.as_mut() else { break };
            if !c.open {
                break;
            }
            let ended = match session.read_tls(&mut c.stream) {
                Ok(0) => true,
                Ok(n) => {
                    c.wire_in += n as u64;
                    false
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.buf = buf;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.close(i, format!("read: {e}"));
                    break;
                }
            };
            if let Err(e) = session.process_new_packets() {
                self.close(i, format!("tls: {e}"));
                break;
            }
            let wants_write = session.wants_write();
            while let Some(session) = self.clients[i].tls.as_mut() {
                match session.reader().read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        let now = self.stamp(Instant::now());
                        self.clients[i].bytes_in += n as u64;
                        self.take_bytes(i, &buf[..n], now);
                    }
                    Err(_) => break,
                }
            }
            if ended {
                self.close(i, "end of stream".into());
                break;
            }
            if wants_write {
                self.flush(i);
            }
        }
        self.buf = buf;
    }

    /// Reads everything client `i` has waiting, line by line into the tally.
    pub fn read(&mut self, i: usize) {
        if self.clients[i].tls.is_some() {
            return self.read_tls(i);
        }
        let mut buf = std::mem::take(&mut self.buf);
        loop {
            if !self.clients[i].open {
                break;
            }
            match self.clients[i].stream.read(&mut buf) {
                Ok(0) => {
                    self.close(i, "end of stream".into());
                    break;
                }
                Ok(n) => {
                    let now = self.stamp(Instant::now());
                    self.clients[i].bytes_in += n as u64;
                    self.clients[i].wire_in += n as u64;
                    self.take_bytes(i, &buf[..n], now);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.close(i, format!("read: {e}"));
                    break;
                }
            }
        }
        self.buf = buf;
    }

    /// When a chunk of bytes arrived, worked out once for all the lines in it.
    fn stamp(&self, now: Instant) -> Stamp {
        let at = self.since_start(now);
        Stamp {
            at,
            received_ns: now.saturating_duration_since(self.base).as_nanos() as u64,
            bucket: (at.as_nanos() as u64 / BUCKET.as_nanos() as u64) as usize,
        }
    }

    fn take_bytes(&mut self, i: usize, data: &[u8], now: Stamp) {
        let mut rest = data;
        if !self.clients[i].partial.is_empty() {
            match memchr::memchr(b'\n', rest) {
                None => {
                    self.clients[i].partial.extend_from_slice(rest);
                    return;
                }
                Some(p) => {
                    let mut line = std::mem::take(&mut self.clients[i].partial);
                    line.extend_from_slice(&rest[..p]);
                    self.on_line(i, &line, now);
                    rest = &rest[p + 1..];
                }
            }
        }
        while let Some(p) = memchr::memchr(b'\n', rest) {
            self.on_line(i, &rest[..p], now);
            rest = &rest[p + 1..];
        }
        if !rest.is_empty() {
            self.clients[i].partial.extend_from_slice(rest);
        }
    }

    /// Queues client `i`'s hello and sends it.
    pub fn send_hello(&mut self, i: usize) {
        let c = &mut self.clients[i];
        line::write_hello(&mut c.out, i);
        c.last_hello = Some(Instant::now());
        self.flush(i);
    }

    /// Queues the next test line of client `i`.
    pub fn queue_line(&mut self, i: usize) {
        let sent_ns = self.now_ns();
        let size = self.size;
        let c = &mut self.clients[i];
        let seq = c.next_seq;
        c.next_seq += 1;
        line::write_line(&mut c.out, c.id, seq, sent_ns, size);
    }

    /// Sends client `i` more test lines, as many as its socket takes without waiting and at most
    /// `max`, once what it had queued is gone: a client that writes as fast as it is allowed.
    pub fn write_more(&mut self, i: usize, max: usize) {
        for _ in 0..max {
            let c = &self.clients[i];
            if !c.open || !c.connected || c.blocked || c.out_pos < c.out.len() {
                return;
            }
            self.queue_line(i);
            self.flush(i);
        }
    }

    /// Reads client `i` from now on (a stalled client, once the timed phase is over), starting
    /// with what is already waiting.
    pub fn start_reading(&mut self, i: usize) {
        let c = &mut self.clients[i];
        c.reading = true;
        let interest = c.interest();
        let _ = self
            .poll
            .registry()
            .reregister(&mut c.stream, Token(i), interest);
        self.read(i);
    }
}
