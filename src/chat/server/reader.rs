//! A client's reader thread: the socket's bytes → lines → hub events, at the client's rate
//! limit. The first line says what the client is (structured or raw); later lines are its input.

use std::io::{self, Read};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use crate::chat::protocol::{ClientFrame, Greeting, Incoming, LineReader, classify_first_line};

use super::config::Policy;
use super::event::{Ending, Event, Input};
use super::link::{Begin, Link, is_late_hello};
use super::outbox::Stats;

/// Most lines a reader hands the hub in one event (what already arrived, never waiting for
/// more).
pub const INPUT_BATCH_LINES: usize = 256;
/// Most bytes of text a reader hands the hub in one event.
pub const INPUT_BATCH_BYTES: usize = 32 * 1024;
/// How long a new connection may stay silent before it is announced anyway; a connection closed
/// within it without a word (a port probe, `nc -z`) is never announced.
pub const JOIN_GRACE: Duration = Duration::from_secs(1);
/// How often an idle reader wakes up to see whether the hub has closed its client.
pub const READ_TICK: Duration = Duration::from_millis(500);
/// Stack of a reader thread: lines, a read buffer and serde_json's recursion, which
/// [`MAX_JSON_DEPTH`] bounds.
pub const READER_STACK: usize = 128 * 1024;
/// Deepest nesting of arrays and objects read from a client. Frames are flat (depth 1); deeper
/// JSON is refused before serde_json recurses into it, so a reader's small stack always holds.
pub const MAX_JSON_DEPTH: usize = 32;

/// Where a reader starts reading its connection.
#[derive(Debug, Default)]
pub enum Start {
    /// At its first byte.
    #[default]
    Fresh,
    /// After its TLS handshake (or, with `--tls-optional`, the wait for its first byte, `silent`
    /// when nothing came), done before it took a seat.
    Begun { silent: bool },
    /// After the room's password was checked (`access`): `first` is the `hello` of a soquete
    /// client (None: a raw client, which joins at once), `leftover` what was read after it.
    Admitted {
        first: Option<Greeting>,
        leftover: Vec<u8>,
    },
}

/// Counts the bytes that come in; a read past the client's idle deadline fails (`TimedOut`).
struct Counting<'a> {
    stream: &'a Link,
    stats: &'a Stats,
    /// When the client is idle (`--idle-timeout`) unless a complete line comes first: bytes
    /// that trickle in without ending a line, or an overlong line, do not put it off.
    idle_at: Option<Instant>,
    /// Bytes still read after a reset met while waiting for a token; then end of stream.
    budget: Option<usize>,
}

impl Read for Counting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.idle_at.is_some_and(|at| Instant::now() >= at) {
            return Err(io::ErrorKind::TimedOut.into());
        }
        let room = self.budget.unwrap_or(usize::MAX).min(buf.len());
        if room == 0 && !buf.is_empty() {
            return Ok(0);
        }
        let buf = &mut buf[..room];
        let n = self.stream.read(buf)?;
        if let Some(left) = &mut self.budget {
            *left -= n;
        }
        Stats::add(&self.stats.bytes_in, n as u64);
        Ok(n)
    }
}

/// Turns the socket's bytes into hub events: the first line says what the client is, later lines
/// are its input, handed over together when several have arrived already. A connection silent
/// for [`JOIN_GRACE`] is reported once as silent. Each line waits for a token of the client's
/// rate limit: while it waits the socket is not read, and TCP slows the sender down. A reader
/// that starts after the password check goes on from there (TLS, if any, begun already).
pub fn read_loop(
    id: u64,
    link: &Link,
    stats: &Stats,
    events: &Sender<Event>,
    policy: Policy,
    start: Start,
) {
    // On a TLS port: the handshake, or a plain client told to use TLS (the password check did
    // this first, when there is one).
    let begun = match start {
        Start::Fresh => link.begin(),
        Start::Begun { silent } => Begin::Ready { silent },
        Start::Admitted { .. } => Begin::Ready { silent: false },
    };
    let mut waited = match begun {
        Begin::Ready { silent } => silent,
        Begin::Ended(reason) => {
            if !stats.is_closed() {
                let ending = Ending::Forced;
                let _ = events.send(Event::Closed { id, reason, ending });
            }
            return;
        }
    };
    if let Some(version) = link.version.get() {
        let _ = stats.tls.set(version);
    }
    let stream = link.socket();
    if waited {
        let _ = stream.set_read_timeout(Some(READ_TICK));
        if events.send(Event::Silent { id }).is_err() {
            return;
        }
    }
    // A timeout too far off to come (`--idle-timeout` near u64::MAX seconds) is none.
    let idle_at = |now: Instant| policy.idle_timeout.and_then(|limit| now.checked_add(limit));
    let mut reader = LineReader::new(Counting {
        stream: link,
        stats,
        idle_at: idle_at(Instant::now()),
        budget: None,
    });
    // Until the first line says otherwise, the client may be telnet.
    reader.set_telnet(policy.telnet);
    let mut bucket = policy.rate_limit.bucket(Instant::now());
    let mut first = true;
    let mut structured = false;
    let mut throttled = false;
    // A line read while gathering a batch that could not join it (no token, or too long).
    let mut carried = None;
    if let Start::Admitted {
        first: said,
        leftover,
    } = start
    {
        let _ = stream.set_read_timeout(Some(READ_TICK));
        reader.preload(&leftover);
        waited = true;
        let event = match said {
            Some(greeting) => {
                (first, structured) = (false, true);
                reader.set_telnet(false);
                Stats::add(&stats.msgs_in, 1);
                Event::First { id, greeting }
            }
            // A raw client that gave the password is a person there: it joins at once.
            None => Event::Silent { id },
        };
        if events.send(event).is_err() {
            return;
        }
    }
    let (reason, ending) = loop {
        if stats.is_closed() {
            return;
        }
        // After a reset, the last batch read: its complete lines went, a cut one does not.
        if carried.is_none()
            && reader.get_ref().budget == Some(0)
            && !reader.pending().contains(&b'\n')
            && let Some(reason) = stats.lost.get()
        {
            break (reason.clone(), Ending::Forced);
        }
        let incoming = match carried.take() {
            Some(incoming) => incoming,
            None => reader.next_line(),
        };
        if matches!(incoming, Ok(Some(_)))
            && let Some(bucket) = &mut bucket
        {
            while let Err(wait) = bucket.take(Instant::now()) {
                if !std::mem::replace(&mut throttled, true)
                    && events.send(Event::Throttled { id }).is_err()
                {
                    return;
                }
                if stats.is_closed() {
                    return;
                }
                if reset_met(stream, stats).is_some() {
                    break;
                }
                thread::sleep(wait.min(READ_TICK));
            }
        }
        // Reset while held back: what the client sent is not read at its rate (the kernel may
        // hold hours of it). What the line reader holds and one batch more go, then its end.
        if bucket.is_some() && stats.lost.get().is_some() {
            bucket = None;
            reader.get_mut().budget = Some(INPUT_BATCH_BYTES);
        }
        // A complete line, let through: the idle time starts now, not before the wait for its
        // token (a client held back by the rate limit is busy, not idle).
        if matches!(incoming, Ok(Some(Incoming::Line(_)))) {
            reader.get_mut().idle_at = idle_at(Instant::now());
        }
        let event = match incoming {
            Ok(Some(Incoming::Line(line))) if first => {
                first = false;
                Stats::add(&stats.msgs_in, 1);
                let greeting = first_greeting(line);
                structured = matches!(greeting, Greeting::Structured { .. });
                reader.set_telnet(policy.telnet && !structured);
                if !waited {
                    let _ = stream.set_read_timeout(Some(READ_TICK));
                }
                Event::First { id, greeting }
            }
            Ok(Some(Incoming::Line(line))) => {
                let mut size = line.len();
                let mut inputs = vec![parse_input(&line, structured)];
                // Lines that have arrived already go along, each with its token.
                while inputs.len() < INPUT_BATCH_LINES
                    && size < INPUT_BATCH_BYTES
                    && reader.pending().contains(&b'\n')
                {
                    match reader.next_line() {
                        Ok(Some(Incoming::Line(line)))
                            if bucket
                                .as_mut()
                                .is_none_or(|bucket| bucket.take(Instant::now()).is_ok()) =>
                        {
                            size += line.len();
                            inputs.push(parse_input(&line, structured));
                        }
                        other => {
                            carried = Some(other);
                            break;
                        }
                    }
                }
                Stats::add(&stats.msgs_in, inputs.len() as u64);
                Event::Input { id, inputs }
            }
            Ok(Some(Incoming::Overlong)) => Event::Overlong { id },
            Ok(Some(Incoming::Telnet(requests))) => Event::Telnet { id, requests },
            // A port probe (`nc -z`, a health check) closes, or resets, without a word.
            Ok(None) if first && !waited => {
                break ("closed without a word".to_string(), Ending::Graceful);
            }
            // After a reset the reason is the reset's, whichever thread met it. A socket with no
            // peer any more was reset: the writer met it and has not said so yet.
            Ok(None) => match reset_met(stream, stats) {
                Some(reason) => break (reason, Ending::Forced),
                None => break ("closed by the client".to_string(), Ending::Graceful),
            },
            Err(err)
                if first
                    && !waited
                    && reader.pending().is_empty()
                    && matches!(
                        err.kind(),
                        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
                    ) =>
            {
                break ("closed without a word".to_string(), Ending::Forced);
            }
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if first && !std::mem::replace(&mut waited, true) {
                    let _ = stream.set_read_timeout(Some(READ_TICK));
                    Event::Silent { id }
                } else if reader
                    .get_ref()
                    .idle_at
                    .is_some_and(|at| Instant::now() >= at)
                {
                    // Said once: the hub lets the client go.
                    reader.get_mut().idle_at = None;
                    Event::Idle { id }
                } else {
                    continue;
                }
            }
            // A TLS client late with its ClientHello, taken as plain: nothing it sent is read.
            Err(err) if is_late_hello(&err) => break (err.to_string(), Ending::Forced),
            // What arrived before a reset is what the client said: read to its end, the last
            // line even unfinished, as after a clean close. (When the writer meets the reset
            // first, this reader sees a clean end of stream: the same words arrive either way.)
            Err(err) => {
                let err = crate::net::tls::failure::describe_io(&err);
                stats.lose(format!("connection lost: {err}"));
                reader.finish();
                continue;
            }
        };
        if events.send(event).is_err() {
            return;
        }
    };
    if !stats.is_closed() {
        let _ = events.send(Event::Closed { id, reason, ending });
    }
}

/// Why the connection was lost, if it was reset: the writer met the reset, or the socket has no
/// peer any more (the writer met it and has not said so yet, or nothing was written to meet it).
fn reset_met(stream: &std::net::TcpStream, stats: &Stats) -> Option<String> {
    if stats.lost.get().is_none() && stream.peer_addr().is_err() {
        stats.lose("connection lost: reset by the client".into());
    }
    stats.lost.get().cloned()
}

/// What a first line says the client is; JSON nested too deep for a reader's stack is raw text,
/// refused before serde_json recurses into it.
pub(super) fn first_greeting(line: String) -> Greeting {
    if nesting_within(&line, MAX_JSON_DEPTH) {
        classify_first_line(&line)
    } else {
        Greeting::Raw(line)
    }
}

/// One line after the first: JSON frames for structured clients, text for raw ones.
pub fn parse_input(line: &str, structured: bool) -> Input {
    if !structured || line.trim().is_empty() {
        return Input::Text(line.to_string());
    }
    if !nesting_within(line, MAX_JSON_DEPTH) {
        return Input::Bad(format!(
            "not a protocol frame: nested deeper than {MAX_JSON_DEPTH} levels"
        ));
    }
    match serde_json::from_str::<ClientFrame>(line) {
        Ok(ClientFrame::Msg { text }) => Input::Text(text),
        Ok(ClientFrame::Nick { name }) => Input::Nick(name),
        Ok(ClientFrame::Who) => Input::Who,
        Ok(ClientFrame::Quit) => Input::Quit,
        Ok(ClientFrame::Hello { .. }) => Input::Bad("hello is only valid as the first line".into()),
        Err(err) => Input::Bad(format!("not a protocol frame: {err}")),
    }
}

/// True when `[` and `{` (outside strings) nest no deeper than `limit`.
pub(super) fn nesting_within(line: &str, limit: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for byte in line.bytes() {
        match byte {
            _ if escaped => escaped = false,
            b'\\' if in_string => escaped = true,
            b'"' => in_string = !in_string,
            b'[' | b'{' if !in_string => {
                depth += 1;
                if depth > limit {
                    return false;
                }
            }
            b']' | b'}' if !in_string => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_nesting_is_refused_before_parsing_and_brackets_in_strings_do_not_count() {
        let deep = format!("{}{}", "[".repeat(33), "]".repeat(33));
        assert!(!nesting_within(&deep, 32));
        assert!(nesting_within(
            &format!("{}{}", "[".repeat(32), "]".repeat(32)),
            32
        ));
        assert!(nesting_within(r#"{"text":"[[[[[[\"[[[["}"#, 2));
        let frame = format!(r#"{{"type":"msg","text":"oi","x":{deep}}}"#);
        assert!(matches!(parse_input(&frame, true), Input::Bad(_)));
    }

    #[test]
    fn a_msg_frame_claiming_an_author_is_only_its_text() {
        let input = parse_input(r#"{"type":"msg","from":"ana","text":"oi"}"#, true);
        assert_eq!(input, Input::Text("oi".into()));
    }

    #[test]
    fn raw_lines_are_text_even_when_they_look_like_json() {
        let line = r#"{"type":"quit"}"#;
        assert_eq!(parse_input(line, false), Input::Text(line.into()));
        assert_eq!(parse_input(line, true), Input::Quit);
    }

    #[test]
    fn garbage_from_a_structured_client_is_refused() {
        assert!(matches!(parse_input("not json", true), Input::Bad(_)));
    }
}
