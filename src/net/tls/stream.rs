//! A TLS client connection over a blocking TCP socket, shared by a reader thread and a writer:
//! the rustls state sits behind a lock held only while it works, never during a read from the
//! socket, so a read that waits for the server never holds up a line being sent.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rustls::ClientConnection;

use crate::net::sanitize::neutralize;

/// How many bytes one read from the socket takes (a TLS record is at most ~16 KiB).
const READ_CHUNK: usize = 18 * 1024;

/// The writing end: it owns the connection's lifetime; [`TlsStream::reader`] gives the reading
/// end.
pub struct TlsStream {
    tcp: TcpStream,
    conn: Arc<Mutex<ClientConnection>>,
}

/// What was negotiated, for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// `TLSv1.3` or `TLSv1.2`.
    pub version: String,
    /// The cipher suite, as IANA names it (`TLS13_AES_256_GCM_SHA384`).
    pub cipher: String,
}

impl TlsStream {
    /// Completes the handshake on `tcp` within `limit`, all of it: each read and write may
    /// wait only for the time left, so a server that drips bytes cannot hold it longer.
    pub fn handshake(
        tcp: TcpStream,
        mut conn: ClientConnection,
        limit: Duration,
    ) -> io::Result<TlsStream> {
        let (read_timeout, write_timeout) = (tcp.read_timeout()?, tcp.write_timeout()?);
        let mut io = Deadlined {
            tcp: &tcp,
            deadline: Instant::now() + limit,
            received: 0,
            start: Vec::new(),
        };
        while conn.is_handshaking() {
            match conn.complete_io(&mut io) {
                Ok((0, 0)) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the server closed the connection during the TLS handshake",
                    ));
                }
                Ok(_) => {}
                Err(err)
                    if matches!(
                        err.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    let within = seconds(limit);
                    let why = match io.received {
                        0 => format!(
                            "no TLS answer from the server within {within} (is TLS on at its end?)"
                        ),
                        _ => format!(
                            "not finished within {within} \
                             (the server answers too slowly, or not in TLS)"
                        ),
                    };
                    return Err(io::Error::new(io::ErrorKind::TimedOut, why));
                }
                Err(err) => return Err(plain_text(err, &io.start)),
            }
        }
        tcp.set_read_timeout(read_timeout)?;
        tcp.set_write_timeout(write_timeout)?;
        Ok(TlsStream {
            tcp,
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// The TCP socket beneath (for its addresses and options).
    pub fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    /// The protocol version and cipher suite negotiated.
    pub fn negotiated(&self) -> Negotiated {
        let conn = lock(&self.conn);
        Negotiated {
            version: conn
                .protocol_version()
                .map_or_else(|| "?".into(), version_name),
            cipher: conn
                .negotiated_cipher_suite()
                .map_or_else(|| "?".into(), |suite| format!("{:?}", suite.suite())),
        }
    }

    /// The reading end, for another thread.
    pub fn reader(&self) -> io::Result<TlsReader> {
        Ok(TlsReader {
            tcp: self.tcp.try_clone()?,
            conn: Arc::clone(&self.conn),
            pending: Vec::new(),
            eof: false,
        })
    }

    /// Encrypts and sends all of `bytes`.
    pub fn write_all(&self, bytes: &[u8]) -> io::Result<()> {
        let mut conn = lock(&self.conn);
        conn.writer().write_all(bytes)?;
        flush(&mut conn, &self.tcp)
    }

    /// `Shutdown::Write` sends TLS's close_notify, then TCP's FIN; `Both` closes the socket.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        if how != Shutdown::Read {
            let mut conn = lock(&self.conn);
            conn.send_close_notify();
            // The socket may be gone already; the shutdown below says so if it matters.
            let _ = flush(&mut conn, &self.tcp);
        }
        self.tcp.shutdown(how)
    }
}

/// `TLSv1.3`, as openssl prints it.
pub fn version_name(version: rustls::ProtocolVersion) -> String {
    match version {
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".into(),
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".into(),
        other => format!("{other:?}"),
    }
}

/// The socket during the handshake: each read and write waits at most until `deadline`, and
/// fails with `TimedOut` once it has passed (rustls's `complete_io` reads until the handshake
/// is done, so a timeout per read alone would not bound it).
struct Deadlined<'a> {
    tcp: &'a TcpStream,
    deadline: Instant,
    /// Bytes read so far: none means no TLS answer at all.
    received: usize,
    /// The first of them (at most [`START_BYTES`]), to show what a plain-text server said.
    start: Vec<u8>,
}

/// How much of a server's first bytes is kept to show it answered in plain text.
const START_BYTES: usize = 64;

/// A handshake error, or when the server's first bytes were no TLS record (an ssh banner, a
/// web server's error page), what it said instead: its first line, neutralised.
fn plain_text(err: io::Error, start: &[u8]) -> io::Error {
    let not_tls = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|inner| matches!(inner, rustls::Error::InvalidMessage(_)));
    if !not_tls || start.is_empty() {
        return err;
    }
    let text = String::from_utf8_lossy(start);
    let line = text.split(['\r', '\n']).next().unwrap_or_default();
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "the server answered in plain text, not TLS: \"{}\" (is TLS on at its end? for a \
             plain server, connect without --tls)",
            neutralize(line)
        ),
    )
}

impl Deadlined<'_> {
    /// The time left, or `TimedOut`.
    fn left(&self) -> io::Result<Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        match left.is_zero() {
            true => Err(io::Error::from(io::ErrorKind::TimedOut)),
            false => Ok(left),
        }
    }
}

impl Read for Deadlined<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.tcp.set_read_timeout(Some(self.left()?))?;
        let n = (&mut &*self.tcp).read(buf)?;
        self.received += n;
        let keep = n.min(START_BYTES - self.start.len());
        self.start.extend_from_slice(&buf[..keep]);
        Ok(n)
    }
}

impl Write for Deadlined<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tcp.set_write_timeout(Some(self.left()?))?;
        (&mut &*self.tcp).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        (&mut &*self.tcp).flush()
    }
}

/// `10 s`, `300 ms`.
fn seconds(limit: Duration) -> String {
    match limit.subsec_millis() {
        0 => format!("{} s", limit.as_secs()),
        _ => format!("{} ms", limit.as_millis()),
    }
}

/// The connection's state; a thread that panicked holding it left it as it was, which is as
/// good as any for a connection about to fail.
fn lock(conn: &Mutex<ClientConnection>) -> MutexGuard<'_, ClientConnection> {
    conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Sends whatever rustls has queued (records, alerts, close_notify).
fn flush(conn: &mut ClientConnection, tcp: &TcpStream) -> io::Result<()> {
    let mut tcp = tcp;
    while conn.wants_write() {
        conn.write_tls(&mut tcp)?;
    }
    tcp.flush()
}

/// The reading end of a [`TlsStream`]: plain bytes out of the server's records. End of
/// stream is `Ok(0)`, whether the server sent close_notify or only closed TCP (as nc-like
/// peers do); a record that fails to decrypt or verify is an `InvalidData` error.
pub struct TlsReader {
    tcp: TcpStream,
    conn: Arc<Mutex<ClientConnection>>,
    /// Bytes read from the socket that rustls has not taken yet.
    pending: Vec<u8>,
    eof: bool,
}

impl Read for TlsReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            {
                let shared = Arc::clone(&self.conn);
                let mut conn = lock(&shared);
                self.feed(&mut conn)?;
                match conn.reader().read(buf) {
                    Ok(n) => return Ok(n),
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                    Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                    Err(err) => return Err(err),
                }
                if self.eof && self.pending.is_empty() {
                    return Ok(0);
                }
            }
            // Without the lock: the writer may send meanwhile.
            let mut chunk = vec![0u8; READ_CHUNK];
            match self.tcp.read(&mut chunk) {
                Ok(0) => self.eof = true,
                Ok(n) => self.pending.extend_from_slice(&chunk[..n]),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
    }
}

impl TlsReader {
    /// Gives rustls the bytes read so far (as many as it takes) and end of stream once they
    /// are all in; sends what it answers (a key update, an alert).
    fn feed(&mut self, conn: &mut ClientConnection) -> io::Result<()> {
        while !self.pending.is_empty() {
            let mut slice = &self.pending[..];
            // An error: its plaintext buffer is full, and the caller reads that first.
            let taken = conn.read_tls(&mut slice).unwrap_or_default();
            self.pending.drain(..taken);
            let processed = conn.process_new_packets();
            let _ = flush(conn, &self.tcp);
            processed.map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err))?;
            if taken == 0 {
                break;
            }
        }
        if self.eof && self.pending.is_empty() {
            conn.read_tls(&mut &[][..])?;
            conn.process_new_packets()
                .map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err))?;
        }
        Ok(())
    }
}
