//! Load generator for `soquete serve` and `ncat --broker`: one mio (epoll) event loop for every
//! client on one thread (the fan-out can deal its clients out to `--threads N` loops), raw text
//! lines over TCP, never a thread per client. `benches/chat.sh` starts the servers and drives it;
//! each run prints one JSON object on stdout.
//!
//! ```text
//! chat fanout  --addr 127.0.0.1:P --kind soquete|broker|ncat [--clients 50] [--lines 1000]
//!              [--size 64] [--threads 1]
//! chat paced   --addr A --kind K [--clients 50] [--rate 10000] [--duration 10] [--stalled 1]
//!              [--warmup 0] [--latency]
//! chat idle    --addr A --kind K [--clients 10000] [--connect-rate 1000] [--hold 5]
//! all of them: [--server-pid PID] (server CPU, RSS and threads from /proc)
//! ```
//!
//! Every test line names its sender and is checked by every receiver:
//! `c0017 0000123 0000001234567 ppp…p` (sender, per-sender sequence, send time in ns since the
//! generator started, padding of one letter chosen by sender and sequence) — `--size` bytes with
//! the newline. soquete's `[HH:MM:SS] <guest-N> ` prefix is stripped and its `* ` notices are
//! counted, not checked. A line that does not parse exactly is corrupted (two lines glued, a cut
//! line); a sequence gap is lost lines; a sequence going back is a duplicate or reordering.
//!
//! Setup is synchronised before any timed phase: every client connects (soquete: and reads its
//! greeting), then sends `h0017` lines, resent every 300 ms, until every reading client has seen
//! the hello of every other client; then 200 ms of draining, and the clock starts.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

const HEADER: usize = 28; // "c0017 0000123 0000001234567 "
const HELLO_RESEND: Duration = Duration::from_millis(300);
const SETUP_LIMIT: Duration = Duration::from_secs(60);
const SETTLE: Duration = Duration::from_millis(200);
const BUCKET: Duration = Duration::from_millis(100);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// `soquete serve` (group mode): a greeting first, lines labelled with time and author.
    Soquete,
    Ncat,
    /// `soquete serve --mode broker`: bare lines, nothing of the server's own.
    Broker,
}

#[derive(Debug, Clone)]
struct Opts {
    mode: String,
    addr: SocketAddr,
    kind: Kind,
    clients: usize,
    lines: u32,
    size: usize,
    rate: f64,
    duration: f64,
    warmup: f64,
    stalled: usize,
    stall_rcvbuf: usize,
    latency: bool,
    connect_rate: f64,
    hold: f64,
    server_pid: Option<u32>,
    /// Fan-out only: threads reading the clients (each its own epoll loop over a share of them).
    threads: usize,
}

fn parse_opts() -> Result<Opts, String> {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let mode = args
        .next()
        .ok_or("usage: chat fanout|paced|idle --addr A --kind K ...")?;
    let mut o = Opts {
        mode,
        addr: "127.0.0.1:65432".parse().unwrap(),
        kind: Kind::Soquete,
        clients: 50,
        lines: 1000,
        size: 64,
        rate: 10_000.0,
        duration: 10.0,
        warmup: 0.0,
        stalled: 0,
        stall_rcvbuf: 0,
        latency: false,
        connect_rate: 1000.0,
        hold: 5.0,
        server_pid: None,
        threads: 1,
    };
    while let Some(flag) = args.next() {
        if flag == "--latency" {
            o.latency = true;
            continue;
        }
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let bad = |_| format!("bad value for {flag}: {value}");
        match flag.as_str() {
            "--addr" => o.addr = value.parse().map_err(|_| format!("bad --addr {value}"))?,
            "--kind" => {
                o.kind = match value.as_str() {
                    "soquete" => Kind::Soquete,
                    "ncat" => Kind::Ncat,
                    "broker" => Kind::Broker,
                    _ => return Err(format!("bad --kind {value}")),
                }
            }
            "--clients" => o.clients = value.parse().map_err(|_| bad(()))?,
            "--lines" => o.lines = value.parse().map_err(|_| bad(()))?,
            "--size" => o.size = value.parse().map_err(|_| bad(()))?,
            "--rate" => o.rate = value.parse().map_err(|_| bad(()))?,
            "--duration" => o.duration = value.parse().map_err(|_| bad(()))?,
            "--warmup" => o.warmup = value.parse().map_err(|_| bad(()))?,
            "--stalled" => o.stalled = value.parse().map_err(|_| bad(()))?,
            "--stall-rcvbuf" => o.stall_rcvbuf = value.parse().map_err(|_| bad(()))?,
            "--connect-rate" => o.connect_rate = value.parse().map_err(|_| bad(()))?,
            "--hold" => o.hold = value.parse().map_err(|_| bad(()))?,
            "--server-pid" => o.server_pid = Some(value.parse().map_err(|_| bad(()))?),
            "--threads" => o.threads = value.parse().map_err(|_| bad(()))?,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if o.threads == 0 {
        return Err("--threads must be at least 1".into());
    }
    if o.size < HEADER + 2 {
        return Err(format!("--size must be at least {}", HEADER + 2));
    }
    if o.clients + o.stalled > 9999 && o.mode != "idle" {
        return Err("at most 9999 talking clients".into());
    }
    Ok(o)
}

/// What one line's body turned out to be.
enum Body {
    Hello(usize),
    Test { from: usize, seq: u32, sent_ns: u64 },
}

fn digits(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() {
        return None;
    }
    let mut value = 0u64;
    for &b in bytes {
        if !b.is_ascii_digit() {
            return None;
        }
        value = value * 10 + u64::from(b - b'0');
    }
    Some(value)
}

fn pad_char(from: usize, seq: u32) -> u8 {
    b'a' + ((from as u64 * 7 + u64::from(seq)) % 26) as u8
}

fn parse_body(body: &[u8], size: usize) -> Option<Body> {
    if body.len() == 5 && body[0] == b'h' {
        return digits(&body[1..]).map(|from| Body::Hello(from as usize));
    }
    if body.len() != size - 1
        || body[0] != b'c'
        || body[5] != b' '
        || body[13] != b' '
        || body[27] != b' '
    {
        return None;
    }
    let from = digits(&body[1..5])? as usize;
    let seq = digits(&body[6..13])? as u32;
    let sent_ns = digits(&body[14..27])?;
    let pad = pad_char(from, seq);
    if body[HEADER..].iter().any(|&b| b != pad) {
        return None;
    }
    Some(Body::Test { from, seq, sent_ns })
}

fn write_line(out: &mut Vec<u8>, from: usize, seq: u32, sent_ns: u64, size: usize) {
    let start = out.len();
    let _ = write!(
        out,
        "c{from:04} {seq:07} {:013} ",
        sent_ns % 10_000_000_000_000
    );
    debug_assert_eq!(out.len() - start, HEADER);
    out.resize(start + size - 1, pad_char(from, seq));
    out.push(b'\n');
}

struct Client {
    /// The client's number among all the generator's clients (what its lines carry).
    id: usize,
    stream: TcpStream,
    connected: bool,
    greeted: bool,
    /// Reads what arrives; a stalled client never does (after setup).
    reading: bool,
    /// Sends test lines.
    talker: bool,
    open: bool,
    out: Vec<u8>,
    out_pos: usize,
    blocked: bool,
    partial: Vec<u8>,
    next_seq: u32,
    next_due: Duration,
    bytes_in: u64,
    lines_in: u64,
    closed_at: Option<Duration>,
    close_reason: Option<String>,
    bye: Option<String>,
    last_hello: Option<Instant>,
}

/// When a chunk of bytes arrived: in the phase, since the generator's base, and its 100 ms bucket.
#[derive(Clone, Copy)]
struct Stamp {
    at: Duration,
    received_ns: u64,
    bucket: usize,
}

#[derive(Default)]
struct Tally {
    delivered: u64,
    delivered_in_window: u64,
    lost: u64,
    backwards: u64,
    corrupted: u64,
    wrong_sender: u64,
    notices: u64,
    errors: u64,
    samples: Vec<String>,
    slow_notices: Vec<(f64, String)>,
    first_delivery: Option<Duration>,
    last_delivery: Option<Duration>,
    buckets: Vec<u64>,
    latencies: Vec<u64>,
}

struct Bench {
    o: Opts,
    poll: Poll,
    events: Events,
    clients: Vec<Client>,
    n: usize,
    /// expected[receiver * n + sender]: next sequence number due.
    expected: Vec<u32>,
    hello_seen: Vec<bool>,
    hellos_missing: usize,
    base: Instant,
    phase_start: Option<Instant>,
    window: Duration,
    warmup_ns: u64,
    tally: Tally,
    buf: Vec<u8>,
}

impl Bench {
    fn new(o: Opts) -> io::Result<Bench> {
        Ok(Bench {
            o,
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

    /// Opens one more client (non-blocking connect).
    fn connect(&mut self, talker: bool, reading: bool, rcvbuf: usize) -> io::Result<()> {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(self.o.addr),
            socket2::Type::STREAM,
            None,
        )?;
        socket.set_nonblocking(true)?;
        if rcvbuf > 0 {
            socket.set_recv_buffer_size(rcvbuf)?;
        }
        match socket.connect(&self.o.addr.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(e),
        }
        let std_stream: std::net::TcpStream = socket.into();
        let mut stream = TcpStream::from_std(std_stream);
        let id = self.clients.len();
        let interest = if reading {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::WRITABLE
        };
        self.poll
            .registry()
            .register(&mut stream, Token(id), interest)?;
        self.clients.push(Client {
            id,
            stream,
            connected: false,
            greeted: false,
            reading,
            talker,
            open: true,
            out: Vec::new(),
            out_pos: 0,
            blocked: false,
            partial: Vec::new(),
            next_seq: 0,
            next_due: Duration::ZERO,
            bytes_in: 0,
            lines_in: 0,
            closed_at: None,
            close_reason: None,
            bye: None,
            last_hello: None,
        });
        Ok(())
    }

    fn close(&mut self, i: usize, reason: String) {
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
    fn pump(&mut self, timeout: Duration) -> io::Result<()> {
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

    fn flush(&mut self, i: usize) {
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
                Ok(n) => c.out_pos += n,
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

    fn read(&mut self, i: usize) {
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

    fn sample(&mut self, what: &str, line: &[u8]) {
        if self.tally.samples.len() < 8 {
            let text = String::from_utf8_lossy(&line[..line.len().min(120)]);
            self.tally.samples.push(format!("{what}: {text}"));
        }
    }

    fn on_line(&mut self, local: usize, line: &[u8], now: Stamp) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let r = local;
        let me = self.clients[local].id;
        self.clients[r].lines_in += 1;
        let body = match self.o.kind {
            Kind::Ncat | Kind::Broker => line,
            Kind::Soquete => {
                if line.starts_with(b"* ") || line == b"*" {
                    self.clients[r].greeted = true;
                    self.tally.notices += 1;
                    if line.starts_with(b"* bye") {
                        self.clients[r].bye = Some(String::from_utf8_lossy(line).into_owned());
                    }
                    if line.windows(8).any(|w| w == b"too slow") {
                        let at = now.at.as_secs_f64();
                        let text = String::from_utf8_lossy(line).into_owned();
                        if self.tally.slow_notices.len() < 20
                            && !self.tally.slow_notices.iter().any(|(_, t)| *t == text)
                        {
                            self.tally.slow_notices.push((at, text));
                        }
                    }
                    return;
                }
                if line.starts_with(b"! ") {
                    self.tally.errors += 1;
                    self.sample("error line", line);
                    return;
                }
                if line.len() > 12 && line[0] == b'[' && line[9] == b']' && &line[10..12] == b" <" {
                    // The generator's clients are all guest-N: the first '>' ends the name.
                    match memchr::memchr(b'>', &line[12..]) {
                        Some(p) if line.get(12 + p + 1) == Some(&b' ') => &line[12 + p + 2..],
                        _ => {
                            self.tally.corrupted += 1;
                            self.sample("corrupted", line);
                            return;
                        }
                    }
                } else {
                    if line.is_empty() {
                        return;
                    }
                    self.tally.corrupted += 1;
                    self.sample("corrupted", line);
                    return;
                }
            }
        };
        match parse_body(body, self.o.size) {
            Some(Body::Hello(from)) => {
                if from < self.n && from != me && !self.hello_seen[me * self.n + from] {
                    self.hello_seen[me * self.n + from] = true;
                    self.hellos_missing -= 1;
                }
            }
            Some(Body::Test { from, seq, sent_ns }) => {
                if !self.clients[r].talker {
                    return;
                }
                if from >= self.n || from == me {
                    self.tally.wrong_sender += 1;
                    self.sample("wrong sender", line);
                    return;
                }
                let slot = &mut self.expected[me * self.n + from];
                if seq < *slot {
                    self.tally.backwards += 1;
                    return;
                }
                self.tally.lost += u64::from(seq - *slot);
                *slot = seq + 1;
                self.tally.delivered += 1;
                let at = now.at;
                if at <= self.window {
                    self.tally.delivered_in_window += 1;
                }
                self.tally.first_delivery.get_or_insert(at);
                self.tally.last_delivery = Some(at);
                let bucket = now.bucket;
                if bucket < 100_000 {
                    if self.tally.buckets.len() <= bucket {
                        self.tally.buckets.resize(bucket + 1, 0);
                    }
                    self.tally.buckets[bucket] += 1;
                }
                if self.o.latency && sent_ns >= self.warmup_ns {
                    self.tally
                        .latencies
                        .push(now.received_ns.saturating_sub(sent_ns));
                }
            }
            None => {
                self.tally.corrupted += 1;
                self.sample("corrupted", line);
            }
        }
    }

    fn send_hello(&mut self, i: usize) {
        let c = &mut self.clients[i];
        let _ = writeln!(c.out, "h{i:04}");
        c.last_hello = Some(Instant::now());
        self.flush(i);
    }

    /// Connects `talkers` reading clients and `stalled` non-reading ones, waits for the greetings
    /// (soquete) and the hello exchange. Returns the setup time.
    #[allow(clippy::needless_range_loop)] // indexes several arrays by client
    fn setup(&mut self, talkers: usize, stalled: usize) -> Result<f64, String> {
        let started = Instant::now();
        let total = talkers + stalled;
        self.n = total;
        self.expected = vec![0; total * total];
        self.hello_seen = vec![false; total * total];
        self.hellos_missing = talkers * (total - 1);
        for i in 0..total {
            let is_talker = i < talkers;
            let rcvbuf = if is_talker { 0 } else { self.o.stall_rcvbuf };
            self.connect(is_talker, is_talker, rcvbuf)
                .map_err(|e| format!("connect: {e}"))?;
            // One connection per millisecond or so: a burst of 50 overflows a small listen
            // backlog (ncat's), and the kernel then resets some of the connections.
            self.pump(Duration::from_millis(1))
                .map_err(|e| e.to_string())?;
        }
        let mut sent_hello = vec![false; total];
        loop {
            if started.elapsed() > SETUP_LIMIT {
                let connected = self.clients.iter().filter(|c| c.connected).count();
                let greeted = self.clients.iter().filter(|c| c.greeted).count();
                return Err(format!(
                    "setup did not complete in {SETUP_LIMIT:?}: {connected} connected, {greeted} \
                     greeted, {} hellos missing",
                    self.hellos_missing
                ));
            }
            if let Some((i, c)) = self.clients.iter().enumerate().find(|(_, c)| !c.open) {
                return Err(format!(
                    "client {i} closed during setup: {}",
                    c.close_reason.clone().unwrap_or_default()
                ));
            }
            self.pump(Duration::from_millis(10))
                .map_err(|e| e.to_string())?;
            // Whoever is ready says hello: soquete clients once greeted (stalled ones at once).
            for i in 0..total {
                let c = &self.clients[i];
                let ready =
                    c.connected && (self.o.kind != Kind::Soquete || c.greeted || !c.reading);
                if ready && !sent_hello[i] && self.clients.iter().all(|c| c.connected) {
                    sent_hello[i] = true;
                    self.send_hello(i);
                }
            }
            if self.hellos_missing == 0 {
                break;
            }
            // Resend the hellos someone has not seen yet.
            for i in 0..total {
                if !sent_hello[i] {
                    continue;
                }
                let missing = (0..talkers).any(|r| r != i && !self.hello_seen[r * total + i]);
                let due = self.clients[i]
                    .last_hello
                    .is_none_or(|t| t.elapsed() >= HELLO_RESEND);
                if missing && due {
                    self.send_hello(i);
                }
            }
        }
        let settle_until = Instant::now() + SETTLE;
        while Instant::now() < settle_until {
            self.pump(Duration::from_millis(10))
                .map_err(|e| e.to_string())?;
        }
        self.tally = Tally::default();
        Ok(started.elapsed().as_secs_f64())
    }

    /// Queues the next test line of client `i`.
    fn queue_line(&mut self, i: usize) {
        let sent_ns = self.now_ns();
        let size = self.o.size;
        let c = &mut self.clients[i];
        let seq = c.next_seq;
        c.next_seq += 1;
        write_line(&mut c.out, c.id, seq, sent_ns, size);
    }

    /// Deals the clients out to `parts` benches with a poll each, for one thread each: client k
    /// to bench k % parts. Every bench keeps the whole table of expected sequence numbers (it
    /// only updates the rows of its own clients).
    fn split(mut self, parts: usize) -> io::Result<Vec<Bench>> {
        let mut shards = Vec::with_capacity(parts);
        for _ in 0..parts {
            let mut shard = Bench::new(self.o.clone())?;
            shard.n = self.n;
            shard.expected = self.expected.clone();
            shard.base = self.base;
            shards.push(shard);
        }
        for (k, mut client) in std::mem::take(&mut self.clients).into_iter().enumerate() {
            let shard = &mut shards[k % parts];
            if client.open {
                self.poll.registry().deregister(&mut client.stream)?;
                let interest = if client.reading {
                    Interest::READABLE | Interest::WRITABLE
                } else {
                    Interest::WRITABLE
                };
                let token = Token(shard.clients.len());
                shard
                    .poll
                    .registry()
                    .register(&mut client.stream, token, interest)?;
            }
            shard.clients.push(client);
        }
        Ok(shards)
    }

    /// The fan-out phase on this bench's clients, from `start`: every client writes its lines,
    /// then the bench reads until its clients have every line of every other client (or stops,
    /// and says why).
    fn run_fanout(&mut self, start: Instant) -> Result<&'static str, String> {
        self.phase_start = Some(start);
        self.base = start;
        for i in 0..self.clients.len() {
            for _ in 0..self.o.lines {
                self.queue_line(i);
            }
            self.flush(i);
        }
        let readers = self.clients.iter().filter(|c| c.reading).count() as u64;
        let want = readers * (self.n as u64 - 1) * u64::from(self.o.lines);
        let limit = Duration::from_secs(120);
        let mut last_progress = (Instant::now(), 0u64);
        while self.tally.delivered + self.tally.lost < want {
            self.pump(Duration::from_millis(50))
                .map_err(|e| e.to_string())?;
            if self.tally.delivered != last_progress.1 {
                last_progress = (Instant::now(), self.tally.delivered);
            } else if last_progress.0.elapsed() > Duration::from_secs(5) {
                return Ok("no delivery for 5 s");
            }
            if start.elapsed() > limit {
                return Ok("120 s limit");
            }
        }
        Ok("complete")
    }

    /// One bench again from the ones [`Bench::split`] made: clients in their original order,
    /// each one's row of expected sequence numbers, the tallies added up.
    fn merge(shards: Vec<Bench>) -> Bench {
        let mut shards = shards.into_iter();
        let mut merged = shards.next().expect("at least one bench");
        for shard in shards {
            let n = merged.n;
            for client in &shard.clients {
                let row = client.id * n..(client.id + 1) * n;
                merged.expected[row.clone()].copy_from_slice(&shard.expected[row]);
            }
            merged.clients.extend(shard.clients);
            let (t, u) = (&mut merged.tally, shard.tally);
            t.delivered += u.delivered;
            t.delivered_in_window += u.delivered_in_window;
            t.lost += u.lost;
            t.backwards += u.backwards;
            t.corrupted += u.corrupted;
            t.wrong_sender += u.wrong_sender;
            t.notices += u.notices;
            t.errors += u.errors;
            t.samples.extend(u.samples);
            t.samples.truncate(8);
            t.slow_notices.extend(u.slow_notices);
            t.first_delivery = match (t.first_delivery, u.first_delivery) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            t.last_delivery = t.last_delivery.max(u.last_delivery);
            if t.buckets.len() < u.buckets.len() {
                t.buckets.resize(u.buckets.len(), 0);
            }
            for (sum, add) in t.buckets.iter_mut().zip(u.buckets) {
                *sum += add;
            }
            t.latencies.extend(u.latencies);
        }
        merged.clients.sort_by_key(|c| c.id);
        merged
    }

    fn finish_tally(&mut self, talkers: usize) -> u64 {
        // Whatever a reading client never got from a talker is lost.
        let mut expected_total = 0u64;
        for r in 0..talkers {
            for s in 0..talkers {
                if r == s || !self.clients[s].talker {
                    continue;
                }
                let sent = self.clients[s].next_seq;
                expected_total += u64::from(sent);
                let got = self.expected[r * self.n + s];
                self.tally.lost += u64::from(sent.saturating_sub(got));
            }
        }
        expected_total
    }
}

/// How the clients that are closed ended, and the `* bye` lines they got: JSON objects of counts.
fn closed_summary(clients: &[Client]) -> (String, String) {
    let mut reasons: std::collections::BTreeMap<String, usize> = Default::default();
    let mut byes: std::collections::BTreeMap<String, usize> = Default::default();
    for c in clients {
        if !c.open {
            *reasons
                .entry(c.close_reason.clone().unwrap_or_default())
                .or_default() += 1;
        }
        if let Some(bye) = &c.bye {
            *byes.entry(bye.clone()).or_default() += 1;
        }
    }
    (
        serde_json::to_string(&reasons).unwrap_or_default(),
        serde_json::to_string(&byes).unwrap_or_default(),
    )
}

fn proc_status(pid: u32) -> Option<(u64, u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> u64 {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Some((field("VmRSS:"), field("VmHWM:"), field("Threads:")))
}

/// What this generator has used so far: CPU seconds (user and system), times it waited for the
/// network (voluntary context switches) and times the kernel put another thread on its core
/// (involuntary ones). Over a phase, they tell whether the generator or the server set the pace.
fn own_usage() -> (f64, i64, i64) {
    // SAFETY: rusage is plain integers, valid as zeroes; getrusage only writes the struct passed.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return (f64::NAN, 0, 0);
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (
        secs(usage.ru_utime) + secs(usage.ru_stime),
        usage.ru_nvcsw,
        usage.ru_nivcsw,
    )
}

fn proc_cpu_secs(pid: u32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some((utime + stime) / ticks)
}

fn proc_fds(pid: u32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"?\"".into())
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)] as f64 / 1e6
}

/// Scenario 1: every client sends `lines` lines as fast as it can, everyone reads.
fn fanout(o: Opts) -> Result<String, String> {
    let mut b = Bench::new(o.clone()).map_err(|e| e.to_string())?;
    let setup = b.setup(o.clients, 0)?;
    let cpu0 = o.server_pid.and_then(proc_cpu_secs);
    let usage0 = own_usage();
    let bytes0: u64 = b.clients.iter().map(|c| c.bytes_in).sum();
    let shards = b.split(o.threads).map_err(|e| e.to_string())?;
    let start = Instant::now();
    let ran: Vec<Result<(Bench, &str), String>> = std::thread::scope(|scope| {
        let running: Vec<_> = shards
            .into_iter()
            .map(|mut shard| {
                scope.spawn(move || {
                    let stop = shard.run_fanout(start)?;
                    Ok((shard, stop))
                })
            })
            .collect();
        running
            .into_iter()
            .map(|thread| {
                thread
                    .join()
                    .unwrap_or_else(|_| Err("a thread panicked".into()))
            })
            .collect()
    });
    let mut stops = Vec::new();
    let mut shards = Vec::new();
    for result in ran {
        let (shard, stop) = result?;
        stops.push(stop);
        shards.push(shard);
    }
    let stop = stops
        .into_iter()
        .find(|&stop| stop != "complete")
        .unwrap_or("complete");
    let mut b = Bench::merge(shards);
    let cpu1 = o.server_pid.and_then(proc_cpu_secs);
    let usage1 = own_usage();
    let gen_cpu = usage1.0 - usage0.0;
    let (gen_waits, gen_preempted) = (usage1.1 - usage0.1, usage1.2 - usage0.2);
    let bytes_in = b.clients.iter().map(|c| c.bytes_in).sum::<u64>() - bytes0;
    let expected = b.finish_tally(o.clients);
    let t = &b.tally;
    let elapsed = t.last_delivery.unwrap_or_default().as_secs_f64();
    let closed = b.clients.iter().filter(|c| !c.open).count();
    let (reasons, byes) = closed_summary(&b.clients[..o.clients]);
    let cpu = match (cpu0, cpu1) {
        (Some(a), Some(b)) => format!("{:.3}", b - a),
        _ => "null".into(),
    };
    Ok(format!(
        "{{\"mode\":\"fanout\",\"kind\":\"{:?}\",\"clients\":{},\"lines\":{},\"size\":{},\
         \"setup_s\":{setup:.3},\"expected\":{expected},\"delivered\":{},\"lost\":{},\
         \"backwards\":{},\"corrupted\":{},\"wrong_sender\":{},\"errors\":{},\"notices\":{},\
         \"elapsed_s\":{elapsed:.4},\"lines_per_s\":{:.0},\"stop\":\"{stop}\",\
         \"clients_closed\":{closed},\"closed_reasons\":{reasons},\"byes\":{byes},\
         \"slow_notices\":{},\"server_cpu_s\":{cpu},\"generator_cpu_s\":{gen_cpu:.3},\
         \"generator_threads\":{},\"generator_waits\":{gen_waits},\
         \"generator_preempted\":{gen_preempted},\
         \"bytes_in\":{bytes_in},\"samples\":{}}}",
        o.kind,
        o.clients,
        o.lines,
        o.size,
        t.delivered,
        t.lost,
        t.backwards,
        t.corrupted,
        t.wrong_sender,
        t.errors,
        t.notices,
        t.delivered as f64 / elapsed.max(1e-9),
        t.slow_notices.len(),
        o.threads,
        serde_json::to_string(&t.samples).unwrap_or_default(),
    ))
}

/// Scenarios 2 and 3: `clients` talkers at a steady total `rate` for `duration` seconds, plus
/// `stalled` clients that never read; latency samples with `--latency`.
fn paced(o: Opts) -> Result<String, String> {
    let mut b = Bench::new(o.clone()).map_err(|e| e.to_string())?;
    let setup = b.setup(o.clients, o.stalled)?;
    let cpu0 = o.server_pid.and_then(proc_cpu_secs);
    let start = Instant::now();
    b.phase_start = Some(start);
    let window = Duration::from_secs_f64(o.duration);
    b.window = window;
    b.warmup_ns = start.duration_since(b.base).as_nanos() as u64
        + Duration::from_secs_f64(o.warmup).as_nanos() as u64;
    let period = Duration::from_secs_f64(o.clients as f64 / o.rate);
    for i in 0..o.clients {
        b.clients[i].next_due = period.mul_f64(i as f64 / o.clients as f64);
    }
    // Timed phase: each talker queues its lines on schedule, however the server keeps up.
    loop {
        let at = start.elapsed();
        if at >= window {
            break;
        }
        let mut next = window;
        for i in 0..o.clients {
            if !b.clients[i].open {
                continue;
            }
            let mut queued = false;
            while b.clients[i].next_due <= at {
                b.queue_line(i);
                b.clients[i].next_due += period;
                queued = true;
            }
            if queued {
                b.flush(i);
            }
            next = next.min(b.clients[i].next_due);
        }
        let wait = next.saturating_sub(start.elapsed());
        b.pump(wait).map_err(|e| e.to_string())?;
    }
    let cpu1 = o.server_pid.and_then(proc_cpu_secs);
    let rss_end = o.server_pid.and_then(proc_status);
    // Drain: up to 3 s for what is in flight. The stalled clients now read too, to see what the
    // server did with them (closed with a bye, or kept).
    let mut stalled_pending: Vec<u64> = Vec::new();
    for i in o.clients..o.clients + o.stalled {
        if b.clients[i].open {
            let c = &mut b.clients[i];
            c.reading = true;
            let _ = b.poll.registry().reregister(
                &mut c.stream,
                Token(i),
                Interest::READABLE | Interest::WRITABLE,
            );
            b.read(i);
        }
        stalled_pending.push(b.clients[i].bytes_in);
    }
    let drain_until = Instant::now() + Duration::from_secs(3);
    let expected_now = |b: &Bench| {
        let sent: u64 = (0..o.clients)
            .map(|s| u64::from(b.clients[s].next_seq))
            .sum();
        sent * (o.clients as u64 - 1)
    };
    while Instant::now() < drain_until {
        b.pump(Duration::from_millis(20))
            .map_err(|e| e.to_string())?;
        let stalled_done = (o.clients..o.clients + o.stalled).all(|i| !b.clients[i].open);
        if b.tally.delivered >= expected_now(&b) && stalled_done {
            break;
        }
    }
    let expected = b.finish_tally(o.clients);
    let closed_talkers = (0..o.clients).filter(|&i| !b.clients[i].open).count();
    let (reasons, byes) = closed_summary(&b.clients[..o.clients]);
    let stalled_json: Vec<String> = (o.clients..o.clients + o.stalled)
        .map(|i| {
            let c = &b.clients[i];
            format!(
                "{{\"open_after_drain\":{},\"closed_at_s\":{},\"close\":{},\"bye\":{},\
                 \"bytes_read_after\":{}}}",
                c.open,
                c.closed_at
                    .map(|d| format!("{:.3}", d.as_secs_f64()))
                    .unwrap_or("null".into()),
                c.close_reason
                    .as_deref()
                    .map(json_str)
                    .unwrap_or("null".into()),
                c.bye.as_deref().map(json_str).unwrap_or("null".into()),
                c.bytes_in
            )
        })
        .collect();
    let t = &mut b.tally;
    t.latencies.sort_unstable();
    let lat = &t.latencies;
    let buckets_in_window = (window.as_nanos() / BUCKET.as_nanos()) as usize;
    let mut buckets = t.buckets.clone();
    buckets.resize(buckets_in_window.max(buckets.len()), 0);
    // The longest run of 100 ms buckets without a delivery, inside the window.
    let (mut longest, mut run, mut longest_from) = (0usize, 0usize, 0usize);
    for (k, &count) in buckets[..buckets_in_window].iter().enumerate() {
        if count == 0 {
            run += 1;
            if run > longest {
                longest = run;
                longest_from = k + 1 - run;
            }
        } else {
            run = 0;
        }
    }
    let per_second: Vec<u64> = buckets[..buckets_in_window]
        .chunks(10)
        .map(|c| c.iter().sum())
        .collect();
    let cpu = match (cpu0, cpu1) {
        (Some(a), Some(b)) => format!("{:.3}", b - a),
        _ => "null".into(),
    };
    let rss = rss_end
        .map(|(rss, hwm, thr)| format!("{{\"rss_kib\":{rss},\"hwm_kib\":{hwm},\"threads\":{thr}}}"))
        .unwrap_or("null".into());
    let slow: Vec<String> = t
        .slow_notices
        .iter()
        .map(|(at, text)| format!("[{at:.3},{}]", json_str(text)))
        .collect();
    let lat_json = if o.latency {
        format!(
            "{{\"count\":{},\"p50_ms\":{:.4},\"p90_ms\":{:.4},\"p99_ms\":{:.4},\"p999_ms\":{:.4},\
             \"max_ms\":{:.4}}}",
            lat.len(),
            percentile(lat, 50.0),
            percentile(lat, 90.0),
            percentile(lat, 99.0),
            percentile(lat, 99.9),
            lat.last().map(|&v| v as f64 / 1e6).unwrap_or(f64::NAN)
        )
    } else {
        "null".into()
    };
    Ok(format!(
        "{{\"mode\":\"paced\",\"kind\":\"{:?}\",\"clients\":{},\"stalled\":{},\"rate\":{},\
         \"duration_s\":{},\"size\":{},\"setup_s\":{setup:.3},\"expected\":{expected},\
         \"delivered\":{},\"delivered_in_window\":{},\"window_lines_per_s\":{:.0},\
         \"lost\":{},\"backwards\":{},\"corrupted\":{},\"wrong_sender\":{},\"errors\":{},\
         \"notices\":{},\"longest_silence_s\":{:.1},\"longest_silence_from_s\":{:.1},\
         \"per_second\":{:?},\"talkers_closed\":{closed_talkers},\"talkers_closed_reasons\":{reasons},\
         \"talkers_byes\":{byes},\"stalled_clients\":[{}],\
         \"slow_notices\":[{}],\"server_cpu_s\":{cpu},\"server_at_end\":{rss},\
         \"latency\":{lat_json},\"samples\":{}}}",
        o.kind,
        o.clients,
        o.stalled,
        o.rate,
        o.duration,
        o.size,
        t.delivered,
        t.delivered_in_window,
        t.delivered_in_window as f64 / o.duration,
        t.lost,
        t.backwards,
        t.corrupted,
        t.wrong_sender,
        t.errors,
        t.notices,
        longest as f64 * BUCKET.as_secs_f64(),
        longest_from as f64 * BUCKET.as_secs_f64(),
        per_second,
        stalled_json.join(","),
        slow.join(","),
        serde_json::to_string(&t.samples).unwrap_or_default(),
    ))
}

/// Scenario 4: `clients` idle connections opened at `connect_rate` per second; they read (and
/// drop) whatever the server sends, never write. The server's memory and threads from /proc.
fn idle(o: Opts) -> Result<String, String> {
    let mut b = Bench::new(o.clone()).map_err(|e| e.to_string())?;
    b.n = 0;
    let pid = o.server_pid;
    let before = pid.and_then(proc_status);
    let (mut peak_rss, mut peak_threads) = (0u64, 0u64);
    let sample = |peak_rss: &mut u64, peak_threads: &mut u64| {
        if let Some((rss, _, thr)) = pid.and_then(proc_status) {
            *peak_rss = (*peak_rss).max(rss);
            *peak_threads = (*peak_threads).max(thr);
        }
    };
    let start = Instant::now();
    b.phase_start = Some(start);
    let mut connect_errors = 0u64;
    let mut first_connect_error = None;
    let mut last_sample = Instant::now();
    // Connect at a bounded rate, reading all along.
    while b.clients.len() + (connect_errors as usize) < o.clients {
        let due = (start.elapsed().as_secs_f64() * o.connect_rate) as usize + 1;
        while b.clients.len() + (connect_errors as usize) < due.min(o.clients) {
            if let Err(e) = b.connect(false, true, 0) {
                connect_errors += 1;
                first_connect_error.get_or_insert(e.to_string());
            }
        }
        b.pump(Duration::from_millis(2))
            .map_err(|e| e.to_string())?;
        if last_sample.elapsed() > Duration::from_millis(200) {
            sample(&mut peak_rss, &mut peak_threads);
            last_sample = Instant::now();
        }
        if start.elapsed() > Duration::from_secs(600) {
            break;
        }
    }
    let connect_s = start.elapsed().as_secs_f64();
    // Wait for the handshakes and for the server's traffic (greetings, join notices) to settle:
    // until 3 s pass without a byte, at most 120 s.
    let settle_start = Instant::now();
    let mut last_bytes = (Instant::now(), 0u64);
    while settle_start.elapsed() < Duration::from_secs(120) {
        b.pump(Duration::from_millis(50))
            .map_err(|e| e.to_string())?;
        let bytes: u64 = b.clients.iter().map(|c| c.bytes_in).sum();
        if bytes != last_bytes.1 {
            last_bytes = (Instant::now(), bytes);
        } else if last_bytes.0.elapsed() > Duration::from_secs(3)
            && b.clients.iter().all(|c| c.connected || !c.open)
        {
            break;
        }
        if last_sample.elapsed() > Duration::from_millis(200) {
            sample(&mut peak_rss, &mut peak_threads);
            last_sample = Instant::now();
        }
    }
    let settle_s = settle_start.elapsed().as_secs_f64();
    // Hold, idle, then measure.
    let hold_until = Instant::now() + Duration::from_secs_f64(o.hold);
    while Instant::now() < hold_until {
        b.pump(Duration::from_millis(50))
            .map_err(|e| e.to_string())?;
    }
    sample(&mut peak_rss, &mut peak_threads);
    let steady = pid.and_then(proc_status);
    let fds = pid.and_then(proc_fds);
    let connected = b.clients.iter().filter(|c| c.connected).count();
    let open = b.clients.iter().filter(|c| c.open).count();
    let open_connected = b.clients.iter().filter(|c| c.open && c.connected).count();
    let greeted = b.clients.iter().filter(|c| c.greeted).count();
    let lines: u64 = b.clients.iter().map(|c| c.lines_in).sum();
    let bytes: u64 = b.clients.iter().map(|c| c.bytes_in).sum();
    let (reasons, byes) = closed_summary(&b.clients);
    let st = |s: Option<(u64, u64, u64)>| {
        s.map(|(r, h, t)| format!("{{\"rss_kib\":{r},\"hwm_kib\":{h},\"threads\":{t}}}"))
            .unwrap_or("null".into())
    };
    Ok(format!(
        "{{\"mode\":\"idle\",\"kind\":\"{:?}\",\"clients\":{},\"connect_rate\":{},\
         \"connect_s\":{connect_s:.2},\"settle_s\":{settle_s:.2},\"hold_s\":{},\
         \"connect_errors\":{connect_errors},\"first_connect_error\":{},\"connected\":{connected},\
         \"open\":{open},\"open_connected\":{open_connected},\"greeted\":{greeted},\
         \"lines_in\":{lines},\"bytes_in\":{bytes},\"closed_reasons\":{},\"byes\":{},\
         \"server_before\":{},\"server_steady\":{},\"server_fds\":{},\"peak_rss_kib\":{peak_rss},\
         \"peak_threads\":{peak_threads}}}",
        o.kind,
        o.clients,
        o.connect_rate,
        o.hold,
        first_connect_error
            .as_deref()
            .map(json_str)
            .unwrap_or("null".into()),
        reasons,
        byes,
        st(before),
        st(steady),
        fds.map(|f| f.to_string()).unwrap_or("null".into()),
    ))
}

fn raise_nofile() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

fn main() {
    let o = match parse_opts() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("chat bench: {e}");
            std::process::exit(2);
        }
    };
    raise_nofile();
    let result = match o.mode.as_str() {
        "fanout" => fanout(o),
        "paced" => paced(o),
        "idle" => idle(o),
        other => Err(format!("unknown mode {other}: fanout, paced or idle")),
    };
    match result {
        Ok(json) => println!("{json}"),
        Err(e) => {
            eprintln!("chat bench: {e}");
            std::process::exit(1);
        }
    }
}
