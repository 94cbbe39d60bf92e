//! One connection to the server, plain TCP or TLS, and the dialer that makes it, to one address
//! of one target at a time (`servers` says which): with `--tls`, every connection (the first and
//! each reconnection) is verified for the name that target gave, and a server whose certificate
//! is refused is never talked to (`servers` skips it, or ends the session when no server is
//! left); there is no plain-text fallback. On the first connection only, a self-signed
//! certificate never seen before is shown to the user, on a terminal, to accept.

use std::io::{self, BufRead, IsTerminal, Read, Write};
use std::net::{Shutdown, TcpStream};

use super::servers::Server;
use crate::error::{Error, Result};
use crate::net::target::{CONNECT_TIMEOUT, Target};
use crate::net::tls::client::{ClientTls, Refusal, Trusted};
use crate::net::tls::stream::TlsStream;

/// A connection to the server.
pub enum Connection {
    Plain(TcpStream),
    Tls(TlsStream),
}

impl Connection {
    /// The TCP socket (beneath TLS).
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Connection::Plain(tcp) => tcp,
            Connection::Tls(tls) => tls.tcp(),
        }
    }

    /// A reading end for the reader thread.
    pub fn reader(&self) -> io::Result<Box<dyn Read + Send>> {
        Ok(match self {
            Connection::Plain(tcp) => Box::new(tcp.try_clone()?),
            Connection::Tls(tls) => Box::new(tls.reader()?),
        })
    }

    /// Sends all of `bytes`.
    pub fn write_all(&self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Connection::Plain(tcp) => {
                let mut writer = tcp;
                writer.write_all(bytes)
            }
            Connection::Tls(tls) => tls.write_all(bytes),
        }
    }

    /// Half-closes (`Write`: TLS's close_notify, then FIN) or closes.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Connection::Plain(tcp) => tcp.shutdown(how),
            Connection::Tls(tls) => tls.shutdown(how),
        }
    }
}

/// Why a connection was not made.
pub enum Failure {
    /// The server could not be reached (or the handshake broke off): try again later.
    Unreachable(Error),
    /// The server's certificate was refused: the session ends, loudly.
    Refused(Refusal),
}

/// Makes connections to the servers of one room, plain or TLS.
#[derive(Clone)]
pub struct Dialer {
    /// The servers as the user named them, in order (never empty).
    pub targets: Vec<Target>,
    pub tls: Option<ClientTls>,
}

impl Dialer {
    /// Connects to `server` within [`CONNECT_TIMEOUT`] (and with TLS, verifies it for its
    /// target's name); the way the server's certificate was trusted comes with a TLS connection.
    pub fn dial(
        &self,
        server: &Server,
    ) -> std::result::Result<(Connection, Option<Trusted>), Failure> {
        let tcp = TcpStream::connect_timeout(&server.addr, CONNECT_TIMEOUT).map_err(|err| {
            Failure::Unreachable(Error::io(
                format!("cannot connect to {}", server.label()),
                err,
            ))
        })?;
        let Some(tls) = &self.tls else {
            return Ok((Connection::Plain(tcp), None));
        };
        let name = server.target.to_string();
        match tls.connect(tcp, &server.target.host, &name) {
            Ok(Ok((stream, trusted))) => Ok((Connection::Tls(stream), Some(trusted))),
            Ok(Err(refusal)) => Err(Failure::Refused(refusal)),
            Err(err) => Err(Failure::Unreachable(err)),
        }
    }

    /// The first connection to `server`: as [`Dialer::dial`], but a self-signed certificate
    /// never seen is shown on the terminal (when stdin and stderr are one) for the user to
    /// accept; accepted, it is remembered and the client connects again. An unreachable server
    /// is the inner error (the next may answer); a refused certificate, the outer one.
    pub fn first(&self, server: &Server) -> Result<std::result::Result<Connection, Error>> {
        let asking = io::stdin().is_terminal() && io::stderr().is_terminal();
        let mut asked = false;
        loop {
            let refusal = match self.dial(server) {
                Ok((connection, trusted)) => {
                    if let (Connection::Tls(stream), Some(trusted)) = (&connection, trusted) {
                        note_tls(stream, &trusted);
                    }
                    return Ok(Ok(connection));
                }
                Err(Failure::Unreachable(err)) => return Ok(Err(err)),
                Err(Failure::Refused(refusal)) => refusal,
            };
            match (&refusal, &self.tls) {
                (Refusal::Unknown { fingerprint, .. }, Some(tls)) if asking && !asked => {
                    asked = true;
                    let name = server.target.to_string();
                    if !ask_to_trust(&name, &fingerprint.to_string())? {
                        return Err(refused(format!(
                            "{name}'s certificate was not accepted: not connecting"
                        )));
                    }
                    tls.trust(&name, fingerprint)?;
                }
                _ => return Err(refused(refusal.to_string())),
            }
        }
    }
}

/// A refused certificate as soquete's error (exit 1), its message one line.
pub fn refused(message: String) -> Error {
    Error::io(
        "TLS",
        io::Error::new(io::ErrorKind::PermissionDenied, message),
    )
}

/// Says on stderr how the first connection is protected.
fn note_tls(stream: &TlsStream, trusted: &Trusted) {
    let negotiated = stream.negotiated();
    let how = match trusted {
        Trusted::ByCa => "certificate verified",
        Trusted::ByKnownHost => "certificate as remembered in known_hosts",
        Trusted::ByFingerprint => "certificate as --tls-fingerprint gave, now remembered",
    };
    eprintln!("{} {}, {how}", negotiated.version, negotiated.cipher);
}

/// ssh's question, on stderr; the answer from stdin. Only `y` or `yes` says yes.
fn ask_to_trust(server: &str, fingerprint: &str) -> Result<bool> {
    eprintln!(
        "The certificate of {server} is not from a trusted CA (self-signed?).\n\
         Its fingerprint is {fingerprint}\n\
         Compare it with the one the server printed at start (or its operator gives you)."
    );
    eprint!("Trust it and remember it for {server} (y/N)? ");
    let mut answer = String::new();
    io::stdin()
        .lock()
        .take(64)
        .read_line(&mut answer)
        .map_err(|err| Error::io("reading the answer", err))?;
    let answer = answer.trim();
    Ok(answer.eq_ignore_ascii_case("y") || answer.eq_ignore_ascii_case("yes"))
}
