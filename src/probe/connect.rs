//! One TCP connection attempt to one address, its verdict in the vocabulary of nmap's `--reason`,
//! and the optional soquete protocol check that follows an open verdict.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use serde::Serialize;
use socket2::{Domain, Protocol, Socket, Type};

use crate::chat::protocol::{
    ClientFrame, MAX_LINE_BYTES, PASSWORD_PROMPT, PASSWORD_REQUIRED, PROTOCOL_VERSION, ServerFrame,
    says_needs_tls,
};
use crate::net::clock::millis;
use crate::net::tls::stream::TlsStream;
use crate::net::wildcard_for;

/// How long the `--chat` check waits for the server to speak.
pub const CHAT_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// What became of a connection attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The handshake completed (SYN-ACK).
    Open,
    /// A reset came back (RST): nothing listens there.
    Closed,
    /// No answer before the timeout.
    Filtered,
    /// An ICMP error: no route, host down, administratively prohibited, protocol unreachable.
    Unreachable,
    /// A failure on this machine.
    Error,
}

impl Verdict {
    /// The word shown in reports.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Open => "open",
            Verdict::Closed => "closed",
            Verdict::Filtered => "filtered",
            Verdict::Unreachable => "unreachable",
            Verdict::Error => "error",
        }
    }

    /// What the verdict usually means for `address`, in plain words.
    pub fn hint(self, address: &SocketAddr) -> Option<&'static str> {
        match self {
            Verdict::Open => None,
            Verdict::Closed if address.ip().is_loopback() => {
                Some("nothing listens on that port on this machine")
            }
            Verdict::Closed => Some(
                "nothing listens on that port there, or it listens on 127.0.0.1 only \
                 (serve with --bind 0.0.0.0)",
            ),
            Verdict::Filtered => Some(
                "no answer at all: a cloud firewall or security group drops the packets, \
                 or DNS points at an old IP",
            ),
            Verdict::Unreachable => Some(
                "a router or the host refused: no route to it, the host is down, or a firewall \
                 rejects it",
            ),
            Verdict::Error => Some("this machine could not even try (see the error)"),
        }
    }
}

/// What a `--chat` check found behind an open port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "found", rename_all = "snake_case")]
pub enum ChatCheck {
    /// A soquete server answered the hello.
    Soquete {
        /// The server's name and version, from its welcome.
        server: String,
        /// The protocol version it speaks.
        version: u32,
        /// How it serves: group, single, echo or broker.
        mode: String,
        /// Clients in the room (the probe is not counted).
        room_size: usize,
    },
    /// A soquete server whose room needs a password: it said so before any was sent (the
    /// check never sends one).
    PasswordRequired,
    /// A soquete server on a TLS-only port, reached without `--tls`: it said so in its line.
    NeedsTls,
    /// Something spoke, but not the soquete protocol.
    NotSoquete {
        /// The first line it said, made printable, at most 80 characters.
        first_line: String,
    },
    /// The connection opened but nothing was said before the check's deadline.
    Silent,
    /// The peer closed (or reset) the connection without a word, before the deadline.
    HungUp,
}

impl ChatCheck {
    /// True when a soquete server is there.
    pub fn is_soquete(&self) -> bool {
        matches!(
            self,
            ChatCheck::Soquete { .. } | ChatCheck::PasswordRequired
        )
    }
}

/// One attempt's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    /// What became of the attempt.
    pub verdict: Verdict,
    /// Time from the start of the attempt to the verdict.
    pub time_ms: f64,
    /// The local `IP:PORT` (or just the IP the route would use, when no connection was made).
    pub source: Option<String>,
    /// The OS error behind a verdict other than open.
    pub os_error: Option<String>,
    /// What the --chat check found, when it ran.
    pub chat: Option<ChatCheck>,
    /// What the --tls check found, when it ran (absent from JSON without --tls).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<Box<super::tls::TlsCheck>>,
    /// The address is on a directly connected network and nothing answered ARP or neighbour
    /// discovery (said in `os_error` and the hint).
    #[serde(skip)]
    pub no_neighbour: bool,
}

/// The hint for an address that ARP or neighbour discovery could not find on its link.
const NO_NEIGHBOUR_HINT: &str = "no answer to ARP/neighbour discovery: the host is down or not \
                                 on this link";

impl Outcome {
    /// What the outcome usually means for `address`, in plain words.
    pub fn hint(&self, address: &SocketAddr) -> Option<&'static str> {
        if self.no_neighbour {
            return Some(NO_NEIGHBOUR_HINT);
        }
        self.verdict.hint(address)
    }
}

/// Connects to `address` with `timeout`, then runs the chat check if asked and the port is open.
pub fn attempt(address: SocketAddr, timeout: Duration, chat: bool) -> Outcome {
    let start = Instant::now();
    let result = connect(address, timeout);
    let time_ms = millis(start.elapsed());
    match result {
        Ok(stream) => {
            let source = stream.local_addr().ok().map(|a| a.to_string());
            let chat = chat.then(|| check_chat(stream));
            Outcome {
                verdict: Verdict::Open,
                time_ms,
                source,
                os_error: None,
                chat,
                tls: None,
                no_neighbour: false,
            }
        }
        Err(err) => {
            let mut verdict = classify(&err);
            let mut os_error = err.to_string();
            // Silence from a host on this very link: the kernel asked it by ARP or neighbour
            // discovery and nothing answered (it gives up a little after 3 s, -w's default).
            let no_neighbour =
                verdict == Verdict::Filtered && crate::platform::neighbour_unresolved(address.ip());
            if no_neighbour {
                verdict = Verdict::Unreachable;
                os_error = format!("{os_error}; no answer to ARP/neighbour discovery");
            }
            Outcome {
                verdict,
                time_ms,
                source: route_source(address).map(|ip| ip.to_string()),
                os_error: Some(os_error),
                chat: None,
                tls: None,
                no_neighbour,
            }
        }
    }
}

fn connect(address: SocketAddr, timeout: Duration) -> std::io::Result<TcpStream> {
    let socket = Socket::new(
        Domain::for_address(address),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    socket.connect_timeout(&address.into(), timeout)?;
    Ok(socket.into())
}

/// Maps an OS connect error to a verdict. Silence (a timeout) is never called closed.
pub fn classify(err: &std::io::Error) -> Verdict {
    match err.kind() {
        ErrorKind::ConnectionRefused => Verdict::Closed,
        ErrorKind::TimedOut | ErrorKind::WouldBlock => Verdict::Filtered,
        ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable => Verdict::Unreachable,
        // An ICMP "administratively prohibited" arrives as EACCES/EPERM on some systems.
        ErrorKind::PermissionDenied => Verdict::Unreachable,
        _ if crate::platform::is_icmp_unreachable(err) => Verdict::Unreachable,
        _ => Verdict::Error,
    }
}

/// The source IP the OS would route from to reach `address` (a UDP connect sends nothing).
fn route_source(address: SocketAddr) -> Option<IpAddr> {
    let socket = UdpSocket::bind(wildcard_for(address)).ok()?;
    socket.connect(address).ok()?;
    socket.local_addr().ok().map(|a| a.ip())
}

/// Says hello in the soquete protocol and reads what comes back, for at most
/// [`CHAT_CHECK_TIMEOUT`]. Leaves politely (`quit`) when a soquete server answered.
pub fn check_chat(stream: TcpStream) -> ChatCheck {
    check_chat_until(stream, Instant::now() + CHAT_CHECK_TIMEOUT)
}

/// [`check_chat`] over TLS (`probe --tls --chat`), once the handshake is done.
pub fn check_chat_tls(stream: &TlsStream) -> ChatCheck {
    let Ok(reader) = stream.reader() else {
        return ChatCheck::Silent;
    };
    let deadline = Instant::now() + CHAT_CHECK_TIMEOUT;
    check_chat_over(
        stream.tcp(),
        reader,
        |bytes| stream.write_all(bytes),
        deadline,
    )
}

/// [`check_chat`] with its deadline given.
fn check_chat_until(stream: TcpStream, deadline: Instant) -> ChatCheck {
    let write = |bytes: &[u8]| (&stream).write_all(bytes);
    check_chat_over(&stream, &stream, write, deadline)
}

/// The check over any connection: `socket` carries the read deadlines, `reader` and `write`
/// the protocol (plain, or through TLS).
fn check_chat_over(
    socket: &TcpStream,
    reader: impl Read,
    mut write: impl FnMut(&[u8]) -> std::io::Result<()>,
    deadline: Instant,
) -> ChatCheck {
    let hello = ClientFrame::Hello {
        version: PROTOCOL_VERSION,
        name: "soquete-probe".into(),
        last_seq: None,
        epoch: None,
        token: None,
        probe: true,
        // Never a password: a room that needs one says so, and the check stops there.
        password: None,
    };
    let _ = write(&hello.to_json_line());
    let mut reader = BufReader::new(Deadline {
        socket,
        reader,
        deadline,
    });
    let mut first_line: Option<String> = None;
    let mut hung_up = false;
    // Bounded: a server that streams lines forever is cut off by the deadline or the count, and
    // one endless line by the line limit.
    for _ in 0..64 {
        let Some(text) = next_line(&mut reader) else {
            // Before the deadline, the end of the stream (or a reset) is the peer's doing.
            hung_up = Instant::now() < deadline;
            break;
        };
        if let Ok(ServerFrame::Welcome {
            version,
            server,
            mode,
            room_size,
            ..
        }) = serde_json::from_str::<ServerFrame>(text.trim_end())
        {
            let _ = write(&ClientFrame::Quit.to_json_line());
            return ChatCheck::Soquete {
                server,
                version,
                mode,
                room_size,
            };
        }
        // A room with a password answers the hello (which carries none) with this error.
        if let Ok(ServerFrame::Error { code, .. }) = serde_json::from_str(text.trim_end())
            && code == PASSWORD_REQUIRED
            && first_line.as_deref() == Some(PASSWORD_PROMPT)
        {
            return ChatCheck::PasswordRequired;
        }
        if first_line.is_none() && says_needs_tls(&text) {
            return ChatCheck::NeedsTls;
        }
        first_line.get_or_insert_with(|| printable(text.trim_end()));
    }
    match first_line {
        Some(first_line) => ChatCheck::NotSoquete { first_line },
        None if hung_up => ChatCheck::HungUp,
        None => ChatCheck::Silent,
    }
}

/// The next line, its terminator kept, of at most [`MAX_LINE_BYTES`] (the protocol's limit: a
/// longer one comes in pieces). None at end of stream, past the deadline, on an error, or when a
/// whole line is not UTF-8.
fn next_line(reader: &mut impl BufRead) -> Option<String> {
    let mut bytes = Vec::new();
    let limit = MAX_LINE_BYTES as u64;
    match reader.take(limit).read_until(b'\n', &mut bytes) {
        Ok(0) | Err(_) => return None,
        Ok(_) => {}
    }
    if bytes.len() as u64 == limit && !bytes.ends_with(b"\n") {
        // A piece of an overlong line may end inside a character.
        return Some(String::from_utf8_lossy(&bytes).into_owned());
    }
    String::from_utf8(bytes).ok()
}

/// A stream whose every read ends by the deadline, however slowly the peer dribbles bytes:
/// `reader` reads from `socket`, which carries the timeout.
struct Deadline<'a, R> {
    socket: &'a TcpStream,
    reader: R,
    deadline: Instant,
}

impl<R: Read> Read for Deadline<'_, R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ErrorKind::TimedOut.into());
        }
        self.socket.set_read_timeout(Some(left))?;
        self.reader.read(buffer)
    }
}

/// At most 80 characters, neutralised as everything from the network is (escape sequences
/// removed, other control characters replaced), so a hostile banner cannot drive the terminal.
fn printable(text: &str) -> String {
    crate::net::sanitize::neutralize(text)
        .chars()
        .take(80)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn refused_is_closed_and_listening_is_open() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let open = listener.local_addr().unwrap();
        let outcome = attempt(open, Duration::from_secs(3), false);
        assert_eq!(outcome.verdict, Verdict::Open);
        assert!(outcome.source.unwrap().starts_with("127.0.0.1:"));
        drop(listener);
        let outcome = attempt(open, Duration::from_secs(3), false);
        assert_eq!(outcome.verdict, Verdict::Closed, "{outcome:?}");
        assert!(outcome.os_error.is_some());
    }

    #[test]
    fn timeouts_are_filtered_never_closed() {
        let err = std::io::Error::from(ErrorKind::TimedOut);
        assert_eq!(classify(&err), Verdict::Filtered);
        let err = std::io::Error::from(ErrorKind::HostUnreachable);
        assert_eq!(classify(&err), Verdict::Unreachable);
    }

    #[test]
    fn a_banner_that_is_not_soquete_is_reported() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut peer, _) = listener.accept().unwrap();
            peer.write_all(b"SSH-2.0-OpenSSH_9.2\r\n").unwrap();
            let mut sink = [0u8; 256];
            let _ = std::io::Read::read(&mut peer, &mut sink);
        });
        let stream = TcpStream::connect(addr).unwrap();
        let check = check_chat(stream);
        assert_eq!(
            check,
            ChatCheck::NotSoquete {
                first_line: "SSH-2.0-OpenSSH_9.2".into()
            }
        );
        server.join().unwrap();
    }

    /// A peer that answers the hello with one line that never ends, sending `chunk` after
    /// `chunk` with `pause` between them until the check hangs up. Returns the check, how long
    /// it took and how many bytes the peer got out.
    fn endless_line(chunk: &'static [u8], pause: Duration) -> (ChatCheck, Duration, usize) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut peer, _) = listener.accept().unwrap();
            let mut sent = 0usize;
            // Stops when the check hangs up, or after far more than the check may read.
            while sent < 64 << 20 && peer.write_all(chunk).is_ok() {
                sent += chunk.len();
                std::thread::sleep(pause);
            }
            sent
        });
        let started = Instant::now();
        let stream = TcpStream::connect(addr).unwrap();
        let check = check_chat_until(stream, started + Duration::from_millis(300));
        let took = started.elapsed();
        (check, took, server.join().unwrap())
    }

    #[test]
    fn an_endless_line_is_read_in_bounded_pieces() {
        let (check, took, sent) = endless_line(&[b'x'; 4096], Duration::ZERO);
        assert_eq!(
            check,
            ChatCheck::NotSoquete {
                first_line: "x".repeat(80)
            }
        );
        assert!(took < Duration::from_secs(2), "{took:?}");
        assert!(sent < 64 << 20, "the check hung up after {sent} bytes");
    }

    #[test]
    fn a_peer_that_accepts_and_closes_hung_up() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || drop(listener.accept().unwrap()));
        let stream = TcpStream::connect(addr).unwrap();
        server.join().unwrap();
        assert_eq!(check_chat(stream), ChatCheck::HungUp);
    }

    #[test]
    fn a_line_dribbled_byte_by_byte_ends_at_the_deadline() {
        let (check, took, _) = endless_line(b"x", Duration::from_millis(10));
        // As before the bound: a line not finished by the deadline is not a line.
        assert_eq!(check, ChatCheck::Silent);
        assert!(took < Duration::from_secs(2), "{took:?}");
    }
}
