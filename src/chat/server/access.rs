//! The room's door, for a server started with a password: every connection is asked for it
//! (`* password:`) before the hub hears of it, so nothing of the room reaches a connection that
//! has not given it (no kept lines, no join, never made a listener). A soquete client gives it
//! in its `hello`; a raw client's first line is the password, never relayed, logged or echoed.
//! Wrong, or missing: one `error` (a readable `! …` line to a raw client), then the connection
//! closes. Each source address's tries wait in line ([`Attempts`]), on the connection's own
//! thread: the hub and every other client go on meanwhile. All of it goes through the
//! connection's [`Link`]: on a TLS port, inside TLS, once the handshake is done.

use std::io::{self, IoSlice};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::chat::protocol::{
    BAD_PASSWORD, ByeCode, ClientFrame, Greeting, Incoming, LineReader, PASSWORD_PROMPT,
    PASSWORD_REQUIRED, Password, ServerFrame, TOO_MANY_TRIES,
};

use super::attempts::{Attempts, Turn};
use super::link::Link;
use super::lobby::{Crowded, Lobby, Place};
use super::reader::{Start, first_greeting};

/// How long a connection has to give its password (it holds a thread meanwhile).
pub const PASSWORD_WAIT: Duration = Duration::from_secs(15);
/// After telling a connection it may not come in, how long what it still sends is read (so
/// closing does not reset the connection before it reads why).
const LINGER: Duration = Duration::from_millis(500);
/// Longest a write to a connection at the door may make no progress.
const WRITE_PATIENCE: Duration = Duration::from_secs(10);
/// Most bytes read while lingering.
const LINGER_BYTES: usize = 64 * 1024;

/// The password, every address's tries, and the connections at the door.
#[derive(Debug)]
pub struct Access {
    password: Password,
    attempts: Attempts,
    lobby: Arc<Lobby>,
}

/// What became of a connection at the door.
#[derive(Debug)]
pub enum Admission {
    /// The right password: the connection goes on as any other, from where the check stopped.
    In(Start),
    /// Turned away, and told so (then [`close`] it): why, and the failures from its address
    /// when a try was checked.
    Out {
        reason: String,
        failures: Option<u32>,
    },
}

/// What the first line offered.
enum Offer {
    /// A soquete client's `hello`, with its password.
    Structured {
        greeting: Greeting,
        password: String,
    },
    /// A raw client's first line.
    Raw(String),
}

impl Access {
    /// The door for `password`, the pause after a first failure being `first_delay`.
    pub fn new(password: Password, first_delay: Duration) -> Access {
        Access {
            password,
            attempts: Attempts::new(first_delay),
            lobby: Arc::default(),
        }
    }

    /// A place at the door for a connection from `ip` (before it is given a thread), or why
    /// there is none: its address, or the whole door, is crowded already.
    pub fn enter(&self, ip: IpAddr) -> Result<Place, Crowded> {
        self.lobby.enter(ip)
    }

    /// Asks the connection for the password and checks it, waiting its address's turn; its
    /// `place` at the prompt is left once its line comes.
    pub fn admit(&self, link: &Link, ip: IpAddr, telnet: bool, place: &mut Place) -> Admission {
        if write_all(link, format!("{PASSWORD_PROMPT}\n").as_bytes()).is_err() {
            return out("closed before the password prompt", None);
        }
        let mut reader = LineReader::new(Deadline {
            link,
            deadline: Instant::now() + PASSWORD_WAIT,
        });
        reader.set_telnet(telnet);
        let line = loop {
            match reader.next_line() {
                Ok(Some(Incoming::Line(line))) => break Some(line),
                // Too long to be a password: a wrong one, checked in its turn as any other.
                Ok(Some(Incoming::Overlong)) => break None,
                Ok(Some(Incoming::Telnet(requests))) => {
                    let _ = write_all(link, &requests.answer);
                }
                Ok(None) => return out("closed without a password", None),
                Err(err)
                    if matches!(
                        err.kind(),
                        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
                    ) =>
                {
                    let secs = PASSWORD_WAIT.as_secs();
                    let message = format!("no password within {secs} s: this room needs one");
                    turn_away(link, false, PASSWORD_REQUIRED, &message);
                    return out(&format!("no password within {secs} s"), None);
                }
                Err(err) => return out(&format!("connection lost: {err}"), None),
            }
        };
        place.answered();
        let offer = match line {
            Some(line) => offer(line),
            None => Offer::Raw(String::new()),
        };
        if let Offer::Structured {
            greeting: Greeting::BadHello(why),
            ..
        } = &offer
        {
            turn_away(link, true, "bad_frame", why);
            return out("a hello that is not valid", None);
        }
        let (structured, given) = match &offer {
            Offer::Structured { password, .. } => (true, password.as_str()),
            Offer::Raw(line) => (false, line.as_str()),
        };
        if let Offer::Structured {
            greeting: Greeting::Structured { probe: true, .. },
            ..
        } = offer
        {
            turn_away(
                link,
                true,
                PASSWORD_REQUIRED,
                "this room needs a password (a probe is never let in)",
            );
            return out("a soquete probe, told the room needs a password", None);
        }
        if structured && given.is_empty() {
            turn_away(link, true, PASSWORD_REQUIRED, "this room needs a password");
            return out("a hello without a password", None);
        }
        match self.attempts.reserve(ip, Instant::now()) {
            Turn::At(at) => std::thread::sleep(at.saturating_duration_since(Instant::now())),
            Turn::Busy(wait) => {
                let message = format!(
                    "too many password tries from your address at once: try again in {} s",
                    wait.as_secs().max(1)
                );
                turn_away(link, structured, TOO_MANY_TRIES, &message);
                return out("too many tries waiting from its address", None);
            }
            Turn::Full => {
                let message = "too many addresses are trying passwords at once: try again later";
                turn_away(link, structured, TOO_MANY_TRIES, message);
                return out("too many addresses with tries waiting", None);
            }
        }
        let right = self.password.matches(given);
        let failures = self.attempts.checked(ip, right, Instant::now());
        if !right {
            turn_away(link, structured, BAD_PASSWORD, "wrong password");
            return out("wrong password", Some(failures));
        }
        let first = match offer {
            Offer::Structured { greeting, .. } => Some(greeting),
            Offer::Raw(_) => None,
        };
        Admission::In(Start::Admitted {
            first,
            leftover: reader.pending().to_vec(),
        })
    }
}

fn out(reason: &str, failures: Option<u32>) -> Admission {
    Admission::Out {
        reason: reason.into(),
        failures,
    }
}

/// What a first line offers: a `hello` (its password, if any, taken out of what the hub will
/// see), or a raw client's password.
fn offer(line: String) -> Offer {
    match first_greeting(line.clone()) {
        Greeting::Raw(_) => Offer::Raw(line),
        // Nested shallow enough to parse: `first_greeting` checked.
        greeting => Offer::Structured {
            password: hello_password(&line),
            greeting,
        },
    }
}

/// The password a `hello` carried; empty when none (a probe's is never looked at).
fn hello_password(line: &str) -> String {
    match serde_json::from_str::<ClientFrame>(line) {
        Ok(ClientFrame::Hello {
            password: Some(password),
            probe: false,
            ..
        }) => password.expose().to_owned(),
        _ => String::new(),
    }
}

/// Tells a connection why it may not come in, in its own kind ([`close`] then closes it).
fn turn_away(link: &Link, structured: bool, code: &str, message: &str) {
    let frame = ServerFrame::Error {
        code: code.into(),
        message: message.into(),
    };
    let bytes = if structured {
        frame.to_json_line()
    } else {
        frame.to_text_line()
    };
    let _ = write_all(link, &bytes);
}

/// Tells a connection let in that there is no seat for it (`--max-clients`), in its own kind: a
/// `bye` (code `full`: a soquete client tries again later) or a readable line.
pub fn tell_full(link: &Link, structured: bool, reason: String) {
    let bytes = if structured {
        let bye = ServerFrame::Bye {
            reason,
            code: ByeCode::Full,
        };
        bye.to_json_line()
    } else {
        format!("* {reason}\n").into_bytes()
    };
    let _ = write_all(link, &bytes);
}

/// Writes all of `bytes` to the connection, giving up after [`WRITE_PATIENCE`] without progress.
fn write_all(link: &Link, bytes: &[u8]) -> io::Result<()> {
    link.write_patiently(&mut [IoSlice::new(bytes)], WRITE_PATIENCE, || ())
}

/// Closes a connection turned away, gracefully: what it still sends is read a moment, so the
/// close is a FIN (after TLS's close_notify) it reads after the error, never a reset that could
/// take the error with it.
pub fn close(link: &Link) {
    link.finish();
    let _ = link.socket().set_read_timeout(Some(LINGER));
    let deadline = Instant::now() + LINGER;
    let (mut buffer, mut read) = ([0u8; 4096], 0);
    while read < LINGER_BYTES && Instant::now() < deadline {
        match link.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => read += n,
        }
    }
}

/// The socket, read until a deadline: each read waits at most what is left of it.
struct Deadline<'a> {
    link: &'a Link,
    deadline: Instant,
}

impl io::Read for Deadline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        self.link.socket().set_read_timeout(Some(left))?;
        self.link.read(buf)
    }
}
