//! One client's transport, shared by its reader and writer threads: the plain socket, or TLS
//! over it (rustls over the blocking socket). On a TLS port the first byte tells a TLS client
//! (0x16, a handshake record) from a plain one, and a connection silent for the greeting grace is
//! plain too (a TLS client speaks first): a plain one is served as it is with `--tls-optional`,
//! and otherwise told in one readable line how to connect with TLS, then closed.
//!
//! The rustls state sits behind a lock held only while it is worked on, never across a blocking
//! read or write of the socket: the reader reads the socket, then hands rustls what came; the
//! writer hands rustls plain text, then writes what rustls made. Whatever rustls makes is written
//! under a second lock (`owed`, which holds what is still owed to the socket), so records leave
//! in the order they were made, whichever thread made them; and a reader blocked in a read never
//! holds up a write. The writer's records go from rustls straight to the socket with a write that
//! never waits (so it may hold the rustls state meanwhile); only what the socket cannot take at
//! once is copied into `owed`, and written from there with the lock on rustls let go.

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use rustls::{ProtocolVersion, ServerConfig, ServerConnection};

use crate::chat::protocol::NEEDS_TLS;
use crate::platform::sockopt;

/// The first byte of a TLS record that carries a handshake (a ClientHello, first of all).
const TLS_HANDSHAKE: u8 = 0x16;
/// Longest a TLS handshake may take, once its first byte came.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a plain client told to use TLS has to read the line and close, before the server does.
const TOLD_LINGER: Duration = Duration::from_secs(2);
/// Most bytes read (and thrown away) from a plain client told to use TLS.
const TOLD_DRAIN: usize = 64 * 1024;
/// Bytes read from the socket at once for rustls.
const RAW_READ: usize = 4096;
/// Why a connection taken as plain is closed when its first byte is a TLS handshake's.
const LATE_HELLO: &str =
    "a TLS handshake after the wait, on a connection taken as plain text (--tls-optional): closed";
/// How long a writer waits at once for the first byte to decide what a connection is.
const DECIDE_TICK: Duration = Duration::from_millis(50);

/// How a TLS port's connection turned out.
enum State {
    /// The first byte has not come yet.
    Sniffing,
    /// Plain text, served as such (`--tls-optional`).
    Plain,
    /// TLS: the session and the bytes read from the socket that rustls has not taken yet.
    Tls {
        session: Box<ServerConnection>,
        unread: Vec<u8>,
    },
    /// Plain text on a TLS-only port: told so, nothing else is written.
    Refused,
}

/// The TLS side of a link.
struct Secure {
    state: Mutex<State>,
    decided: Condvar,
    /// Bytes rustls made that the socket has not taken yet; held by whoever writes to the socket.
    owed: Mutex<Vec<u8>>,
    /// The configuration current when the connection arrived (a reload does not change it).
    config: Arc<ServerConfig>,
    optional: bool,
    /// Taken as plain for saying nothing in the wait (`--tls-optional`), its first byte not
    /// looked at yet: a TLS client late with its ClientHello is closed, never read as text.
    unlooked: AtomicBool,
}

/// A client's transport.
pub struct Link {
    socket: Arc<TcpStream>,
    secure: Option<Secure>,
    /// The TLS version, once negotiated (for `/status`).
    pub version: OnceLock<&'static str>,
    /// Longest the whole TLS handshake may take, its reads and writes ([`HANDSHAKE_TIMEOUT`]).
    handshake_limit: Duration,
}

/// What the start of a connection turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub enum Begin {
    /// Lines may be read: TLS was negotiated, or the connection is plain; `silent` when it said
    /// nothing for the greeting grace (which the sniffing already waited).
    Ready { silent: bool },
    /// The connection ended before any line, for this reason.
    Ended(String),
}

/// What a TLS write achieved.
#[derive(Debug, PartialEq, Eq)]
pub enum Progress {
    /// This many bytes of plain text were taken.
    Accepted(usize),
    /// Bytes owed to the socket went out, and more are owed: nothing new was taken.
    Partial,
}

impl Link {
    /// A plain connection.
    pub fn plain(socket: Arc<TcpStream>) -> Link {
        Link {
            socket,
            secure: None,
            version: OnceLock::new(),
            handshake_limit: HANDSHAKE_TIMEOUT,
        }
    }

    /// A connection on a TLS port, served with `config` (and plain too when `optional`).
    pub fn tls(socket: Arc<TcpStream>, config: Arc<ServerConfig>, optional: bool) -> Link {
        Link {
            socket,
            secure: Some(Secure {
                state: Mutex::new(State::Sniffing),
                decided: Condvar::new(),
                owed: Mutex::new(Vec::new()),
                config,
                optional,
                unlooked: AtomicBool::new(false),
            }),
            version: OnceLock::new(),
            handshake_limit: HANDSHAKE_TIMEOUT,
        }
    }

    /// The socket underneath (options, addresses, shutdown).
    pub fn socket(&self) -> &TcpStream {
        &self.socket
    }

    /// Decides what the connection is, on the reader's thread: on a TLS port, reads its first
    /// byte (waiting at most the socket's read timeout, the greeting grace) and does the
    /// handshake, or tells a plain client to use TLS.
    pub fn begin(&self) -> Begin {
        let Some(secure) = &self.secure else {
            return Begin::Ready { silent: false };
        };
        let mut first = [0u8; 1];
        let (plain, silent) = match self.socket.peek(&mut first) {
            Ok(1..) if first[0] == TLS_HANDSHAKE => return self.handshake(secure),
            Ok(1..) => (true, false),
            Err(err) if is_timeout(&err) => (true, true),
            // Closed or reset without a word: the reader meets the end and says so.
            _ => (false, false),
        };
        if plain && !secure.optional {
            self.decide(State::Refused);
            self.tell_to_use_tls();
            return Begin::Ended(if silent {
                "said nothing (a TLS client speaks first): told the server needs TLS".into()
            } else {
                "spoke plain text to a TLS port: told the server needs TLS".into()
            });
        }
        secure.unlooked.store(silent, Ordering::Relaxed);
        self.decide(State::Plain);
        Begin::Ready { silent }
    }

    /// Reads plain text: the client's bytes, decrypted on a TLS connection. End of stream is
    /// `Ok(0)`, with or without the client's close_notify (a chat line has nothing to truncate).
    /// A connection taken as plain whose first byte is a TLS handshake's (a TLS client late with
    /// its ClientHello: never the start of text) fails (`InvalidData`), nothing of it read.
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(secure) = self.secure.as_ref().filter(|_| self.is_tls()) else {
            let n = (&*self.socket).read(buf)?;
            if n > 0
                && let Some(secure) = &self.secure
                && secure.unlooked.swap(false, Ordering::Relaxed)
                && buf[0] == TLS_HANDSHAKE
            {
                return Err(io::Error::new(io::ErrorKind::InvalidData, LATE_HELLO));
            }
            return Ok(n);
        };
        let mut raw = [0u8; RAW_READ];
        loop {
            let wants_write = {
                let mut state = lock(&secure.state);
                let State::Tls { session, unread } = &mut *state else {
                    return Err(io::ErrorKind::NotConnected.into());
                };
                match session.reader().read(buf) {
                    Ok(n) => return Ok(n),
                    Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                    Err(err) if err.kind() != io::ErrorKind::WouldBlock => return Err(err),
                    Err(_) => {}
                }
                if unread.is_empty() {
                    None
                } else {
                    let taken = session.read_tls(&mut unread.as_slice())?;
                    if taken == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "TLS: a record rustls cannot take",
                        ));
                    }
                    unread.drain(..taken);
                    let processed = session.process_new_packets();
                    Some((session.wants_write(), processed))
                }
            };
            match wants_write {
                Some((wants_write, processed)) => {
                    if wants_write {
                        self.flush(secure)?;
                    }
                    if let Err(err) = processed {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("TLS: {err}"),
                        ));
                    }
                }
                None => {
                    let n = (&*self.socket).read(&mut raw)?;
                    let mut state = lock(&secure.state);
                    if let State::Tls { session, unread } = &mut *state {
                        if n == 0 {
                            // End of stream: rustls hears it as a read of nothing.
                            session.read_tls(&mut io::empty())?;
                            if let Err(err) = session.process_new_packets() {
                                return Err(io::Error::new(
                                    io::ErrorKind::InvalidData,
                                    format!("TLS: {err}"),
                                ));
                            }
                        } else {
                            unread.extend_from_slice(&raw[..n]);
                        }
                    }
                }
            }
        }
    }

    /// Writes plain text: on a TLS connection, what the socket owes first, then `bufs` through
    /// rustls (before the handshake ends, rustls keeps it). Timeouts are the socket's; call again.
    pub fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<Progress> {
        let Some(secure) = &self.secure else {
            return (&*self.socket).write_vectored(bufs).map(Progress::Accepted);
        };
        let mut owed = lock(&secure.owed);
        if !owed.is_empty() {
            let n = (&*self.socket).write(&owed)?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            owed.drain(..n);
            if !owed.is_empty() {
                return Ok(Progress::Partial);
            }
        }
        let mut state = lock(&secure.state);
        if matches!(*state, State::Sniffing) {
            drop(owed);
            let _ = secure
                .decided
                .wait_timeout(state, DECIDE_TICK)
                .unwrap_or_else(PoisonError::into_inner);
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let taken = match &mut *state {
            State::Sniffing => 0,
            State::Plain => {
                drop(state);
                return (&*self.socket).write_vectored(bufs).map(Progress::Accepted);
            }
            State::Refused => bufs.iter().map(|buf| buf.len()).sum(),
            State::Tls { session, .. } => {
                let taken = session.writer().write_vectored(bufs)?;
                // Nothing is owed (see above): the records go straight from rustls to the socket
                // while it takes them at once, and only what it cannot take now is copied out.
                let mut socket = Unwaiting(&self.socket);
                while session.wants_write() {
                    match session.write_tls(&mut socket) {
                        Ok(0) => break,
                        Ok(_) => {}
                        Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                        Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                        Err(err) => return Err(err),
                    }
                }
                while session.wants_write() {
                    session.write_tls(&mut *owed)?;
                }
                taken
            }
        };
        drop(state);
        if taken == 0 && owed.is_empty() && bufs.iter().any(|buf| !buf.is_empty()) {
            // The handshake is still on and rustls holds all it will: wait for it.
            drop(owed);
            std::thread::sleep(DECIDE_TICK);
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(Progress::Accepted(taken))
    }

    /// Writes all of `bufs` (and what is owed to the socket), calling `progress` at every bit
    /// of it; gives up (TimedOut) after `patience` without any. The socket's write timeout is
    /// how often a blocked write comes back.
    pub fn write_patiently(
        &self,
        bufs: &mut [IoSlice<'_>],
        patience: Duration,
        mut progress: impl FnMut(),
    ) -> io::Result<()> {
        let mut rest = bufs;
        let mut last = Instant::now();
        // Over TLS, what rustls made of the last bytes is owed to the socket until it is written.
        while !rest.is_empty() || self.owes() {
            match self.write_vectored(rest) {
                Ok(Progress::Accepted(0)) if !rest.is_empty() => {
                    return Err(io::ErrorKind::WriteZero.into());
                }
                Ok(Progress::Accepted(n)) => {
                    IoSlice::advance_slices(&mut rest, n);
                    last = Instant::now();
                    progress();
                }
                Ok(Progress::Partial) => {
                    last = Instant::now();
                    progress();
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) if is_timeout(&err) => {
                    if last.elapsed() >= patience {
                        return Err(io::ErrorKind::TimedOut.into());
                    }
                }
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    /// Whether bytes rustls made are still owed to the socket.
    pub fn owes(&self) -> bool {
        self.secure
            .as_ref()
            .is_some_and(|secure| !lock(&secure.owed).is_empty())
    }

    /// Ends the sending side: TLS's close_notify (within the socket's write timeout), then the
    /// socket's half-close, so the client reads everything before the end of the stream.
    pub fn finish(&self) {
        if let Some(secure) = &self.secure
            && let State::Tls { session, .. } = &mut *lock(&secure.state)
        {
            session.send_close_notify();
        }
        if let Some(secure) = &self.secure {
            let _ = self.flush(secure);
        }
        let _ = self.socket.shutdown(Shutdown::Write);
    }

    /// Whether this is a TLS-only port's connection that did not turn out TLS (it closed, or
    /// reset, before its first byte): nothing may be written to it in plain text.
    pub fn plain_on_tls_only(&self) -> bool {
        self.secure
            .as_ref()
            .is_some_and(|secure| !secure.optional && !self.is_tls())
    }

    /// Whether the connection was found to be TLS.
    fn is_tls(&self) -> bool {
        self.version.get().is_some()
    }

    /// Settles what the connection is, and wakes a writer waiting to know.
    fn decide(&self, decided: State) {
        if let Some(secure) = &self.secure {
            *lock(&secure.state) = decided;
            secure.decided.notify_all();
        }
    }

    /// The TLS handshake, bounded as a whole (reads and the writes of its answers) by
    /// [`HANDSHAKE_TIMEOUT`].
    fn handshake(&self, secure: &Secure) -> Begin {
        let session = match ServerConnection::new(Arc::clone(&secure.config)) {
            Ok(session) => Box::new(session),
            Err(err) => return Begin::Ended(format!("TLS could not start: {err}")),
        };
        self.decide(State::Tls {
            session,
            unread: Vec::new(),
        });
        let deadline = Instant::now() + self.handshake_limit;
        let mut raw = [0u8; RAW_READ];
        loop {
            let version = match &*lock(&secure.state) {
                State::Tls { session, .. } if !session.is_handshaking() => {
                    session.protocol_version()
                }
                _ => None,
            };
            if let Some(version) = version {
                let _ = self.version.set(version_name(version));
                return Begin::Ready { silent: false };
            }
            if Instant::now() >= deadline {
                return Begin::Ended(format!(
                    "TLS handshake not finished within {} s",
                    self.handshake_limit.as_secs()
                ));
            }
            let n = match (&*self.socket).read(&mut raw) {
                Ok(0) => return Begin::Ended("closed during the TLS handshake".into()),
                Ok(n) => n,
                Err(err) if is_timeout(&err) || err.kind() == io::ErrorKind::Interrupted => {
                    continue;
                }
                Err(err) => return Begin::Ended(format!("lost during the TLS handshake: {err}")),
            };
            let mut fed = &raw[..n];
            let mut failed = None;
            while !fed.is_empty() && failed.is_none() {
                let mut state = lock(&secure.state);
                let State::Tls { session, .. } = &mut *state else {
                    break;
                };
                match session.read_tls(&mut fed) {
                    Ok(_) => {}
                    Err(err) => failed = Some(err.to_string()),
                }
                if let Err(err) = session.process_new_packets() {
                    failed = Some(crate::net::tls::failure::describe(&err));
                }
            }
            // The handshake's answer, or the alert that ends it.
            let flushed = self.flush_until(secure, Some(deadline));
            if let Some(err) = failed {
                return Begin::Ended(format!("TLS handshake failed: {err}"));
            }
            if let Err(err) = flushed {
                return Begin::Ended(format!("lost during the TLS handshake: {err}"));
            }
        }
    }

    /// Writes all rustls has made to the socket, giving up after [`HANDSHAKE_TIMEOUT`] without
    /// progress.
    fn flush(&self, secure: &Secure) -> io::Result<()> {
        self.flush_until(secure, None)
    }

    /// As [`Link::flush`]; with a deadline (the handshake's), giving up when it passes.
    fn flush_until(&self, secure: &Secure, deadline: Option<Instant>) -> io::Result<()> {
        let mut owed = lock(&secure.owed);
        if let State::Tls { session, .. } = &mut *lock(&secure.state) {
            while session.wants_write() {
                session.write_tls(&mut *owed)?;
            }
        }
        let mut last = Instant::now();
        while !owed.is_empty() {
            match (&*self.socket).write(&owed) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    owed.drain(..n);
                    last = Instant::now();
                }
                Err(err) if is_timeout(&err) || err.kind() == io::ErrorKind::Interrupted => {
                    let late = match deadline {
                        Some(deadline) => Instant::now() >= deadline,
                        None => last.elapsed() >= HANDSHAKE_TIMEOUT,
                    };
                    if late {
                        return Err(io::ErrorKind::TimedOut.into());
                    }
                }
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    /// One readable line for a plain client on a TLS-only port, then the end: what it sent is
    /// read (closed unread, the connection would be reset, and the line perhaps lost with it).
    fn tell_to_use_tls(&self) {
        let line = match self.socket.local_addr() {
            Ok(local) => needs_tls_line(&local.ip().to_string(), local.port()),
            Err(_) => return,
        };
        let mut socket = &*self.socket;
        let _ = socket.write_all(line.as_bytes());
        let _ = socket.shutdown(Shutdown::Write);
        let until = Instant::now() + TOLD_LINGER;
        let mut sink = [0u8; 1024];
        let mut drained = 0;
        while drained < TOLD_DRAIN && Instant::now() < until {
            match socket.read(&mut sink) {
                Ok(0) => break,
                Ok(n) => drained += n,
                Err(err) if is_timeout(&err) || err.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    }
}

/// Whether a read failed for a TLS client late with its ClientHello (see [`Link::read`]).
pub fn is_late_hello(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::InvalidData && err.to_string() == LATE_HELLO
}

/// The socket, written without waiting (what it cannot take at once is `WouldBlock`), so the
/// rustls state can be held while its records go out.
struct Unwaiting<'a>(&'a TcpStream);

impl Write for Unwaiting<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        sockopt::send_now(self.0, bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The line a plain client on a TLS-only port reads, with the ways to connect to `host`:`port`.
pub fn needs_tls_line(host: &str, port: u16) -> String {
    let address = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    format!(
        "{NEEDS_TLS}: connect with `soquete chat --tls {address}`, `ncat --ssl {host} {port}` or `openssl s_client -quiet -connect {address}`\n"
    )
}

/// How `/status` names a TLS version.
fn version_name(version: ProtocolVersion) -> &'static str {
    match version {
        ProtocolVersion::TLSv1_3 => "TLSv1.3",
        ProtocolVersion::TLSv1_2 => "TLSv1.2",
        _ => "TLS",
    }
}

/// A read or write that hit the socket's timeout.
fn is_timeout(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// The guarded value, even if a thread panicked holding it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests;
