//! The client's connection to its server: the socket's set-up, the thread that reads the
//! server (lines, or raw bytes), and [`Link`], which holds the live connection, replaces it
//! after a loss (dialing on a thread of its own) and names the server in error messages.

use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::thread;
use std::time::Duration;

use crossbeam_channel::Sender;

use super::connection::{Connection, Dialer, Failure};
use super::servers::Server;
use super::session::Event;
use super::{KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_PROBES, WRITE_TIMEOUT};
use crate::chat::protocol::{HEARTBEAT_TIMEOUT, Incoming, LineReader, MAX_FRAME_BYTES};
use crate::error::{Context, Error, Result};
use crate::net::tls::client::Refusal;
use crate::platform::sockopt::{DeadPeerDetection, detect_dead_peers};

/// Sets the socket's timeouts and keepalive; returns both ends.
fn prepare(stream: &TcpStream) -> io::Result<(SocketAddr, SocketAddr)> {
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    // Chat lines are small and typed by people: send each at once.
    stream.set_nodelay(true)?;
    // Data we sent that the server never acknowledges (it vanished mid-write) ends the
    // connection as soon as the heartbeat would, instead of after TCP's 15 minutes of retries.
    let how = DeadPeerDetection {
        idle: KEEPALIVE_IDLE,
        interval: KEEPALIVE_INTERVAL,
        probes: KEEPALIVE_PROBES,
        unacked: HEARTBEAT_TIMEOUT,
    };
    detect_dead_peers(stream, &how)?;
    Ok((stream.local_addr()?, stream.peer_addr()?))
}

/// What the connection threads report to the driver.
pub(super) enum Wire {
    /// An event from the reader of connection number `conn`.
    Server { conn: u64, event: Event },
    /// The outcome of an attempt to connect again, and the server it reached.
    Dialed(std::result::Result<(Connection, Server), String>),
    /// Servers a round skipped for their certificates: a loud line each, to show.
    Skipped(Vec<String>),
    /// Every server's certificate was refused on a reconnection: the session ends.
    Refused(Refusal),
}

/// The connection to the server, replaced by a new one after a loss.
pub(super) struct Link {
    pub(super) dialer: Dialer,
    /// `--raw`: the server's bytes are passed on as they arrive, not cut into lines.
    pub(super) raw: bool,
    /// Where readers and the dialer report.
    pub(super) wire: Sender<Wire>,
    /// The live connection and its number.
    pub(super) current: Option<(u64, Connection)>,
    pub(super) connections: u64,
    /// The server's end of the latest connection, for the final error message.
    pub(super) remote: Option<SocketAddr>,
    /// The server of the latest connection: the next round starts after it.
    pub(super) server: Option<Server>,
    /// Bytes of the first connection read before its reader started (asking for a password).
    pub(super) first_bytes: Vec<u8>,
    /// The reader that read them, which the first connection's reader thread goes on with.
    pub(super) first_reader: Option<Box<dyn Read + Send>>,
}

impl Link {
    /// Takes a new connection: prepares it and starts its reader; returns both ends.
    pub(super) fn adopt(&mut self, stream: Connection) -> Result<(SocketAddr, SocketAddr)> {
        let server = self.server_text();
        let context = || format!("connection to {server}");
        let (local, remote) = prepare(stream.tcp()).with_context(context)?;
        let reader = match self.first_reader.take() {
            Some(reader) => reader,
            None => stream.reader().with_context(context)?,
        };
        self.connections += 1;
        let already = std::mem::take(&mut self.first_bytes);
        spawn_server_reader(
            reader,
            (self.raw, already),
            self.connections,
            self.wire.clone(),
        )
        .context("starting the reader thread")?;
        self.current = Some((self.connections, stream));
        self.remote = Some(remote);
        Ok((local, remote))
    }

    pub(super) fn is_current(&self, conn: u64) -> bool {
        self.current.as_ref().is_some_and(|(id, _)| *id == conn)
    }

    /// Closes the live connection, if any; its reader then ends, and what it still reports is
    /// ignored.
    pub(super) fn drop_current(&mut self) {
        if let Some((_, stream)) = self.current.take() {
            // The socket may already be gone.
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Connects again after `delay`, on a thread, so the user's input is handled meanwhile:
    /// one round over the servers, from the one after the server lost.
    pub(super) fn dial(&self, delay: Duration) -> io::Result<()> {
        let (dialer, wire) = (self.dialer.clone(), self.wire.clone());
        let last = self.server.as_ref().map(|server| server.addr);
        thread::Builder::new()
            .name("chat-reconnect".into())
            .spawn(move || {
                thread::sleep(delay);
                let (skipped, dialed) = dialer.round(last);
                if !skipped.is_empty() {
                    let _ = wire.send(Wire::Skipped(skipped));
                }
                let report = match dialed {
                    Ok(reached) => Wire::Dialed(Ok(reached)),
                    Err(Failure::Unreachable(err)) => Wire::Dialed(Err(err.to_string())),
                    Err(Failure::Refused(refusal)) => Wire::Refused(refusal),
                };
                let _ = wire.send(report);
            })?;
        Ok(())
    }

    /// The server's address as the final error message names it.
    pub(super) fn remote_text(&self) -> String {
        self.remote
            .map_or_else(|| self.server_text(), |remote| remote.to_string())
    }

    /// The server of the latest connection as the user named it, or else the first target.
    pub(super) fn server_text(&self) -> String {
        match &self.server {
            Some(server) => server.label(),
            None => self.dialer.targets[0].to_string(),
        }
    }

    pub(super) fn denied_error(&self, reason: String) -> Error {
        let remote = self.remote_text();
        Error::io(
            format!("the server at {remote} did not let us in"),
            io::Error::other(reason),
        )
    }

    pub(super) fn needs_tls_error(&self) -> Error {
        let remote = self.remote_text();
        Error::io(
            format!("the server at {remote} needs TLS"),
            io::Error::other("add --tls"),
        )
    }

    pub(super) fn lost_error(&self, error: String) -> Error {
        let remote = self.remote_text();
        Error::io(
            format!("connection to {remote} lost"),
            io::Error::other(error),
        )
    }
}

/// The server's lines (or, `raw`, its bytes as they arrive), as events tagged with the
/// connection's number, until it closes or the connection fails.
fn spawn_server_reader(
    stream: Box<dyn Read + Send>,
    (raw, already): (bool, Vec<u8>),
    conn: u64,
    wire: Sender<Wire>,
) -> io::Result<()> {
    thread::Builder::new()
        .name("chat-server-reader".into())
        .spawn(move || {
            if raw {
                return read_raw(stream, conn, &wire);
            }
            // Every frame a soquete server may send, however long (MAX_FRAME_BYTES).
            let mut reader = LineReader::with_limit(stream, MAX_FRAME_BYTES);
            reader.preload(&already);
            loop {
                let (event, last) = match reader.next_line() {
                    Ok(Some(Incoming::Line(line))) => (Event::Received(line), false),
                    Ok(Some(Incoming::Overlong)) => (Event::Overlong, false),
                    // Telnet's commands are a server's business: this reader never asks.
                    Ok(Some(Incoming::Telnet(_))) => continue,
                    Ok(None) => (Event::ServerClosed, true),
                    Err(err) => (Event::Lost(err.to_string()), true),
                };
                if wire.send(Wire::Server { conn, event }).is_err() || last {
                    return;
                }
            }
        })?;
    Ok(())
}

/// Passes the server's bytes on as they arrive, until it closes or the connection fails.
fn read_raw(mut stream: Box<dyn Read + Send>, conn: u64, wire: &Sender<Wire>) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let (event, last) = match stream.read(&mut buffer) {
            Ok(0) => (Event::ServerClosed, true),
            Ok(n) => (Event::ReceivedRaw(buffer[..n].to_vec()), false),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => (Event::Lost(err.to_string()), true),
        };
        if wire.send(Wire::Server { conn, event }).is_err() || last {
            return;
        }
    }
}
