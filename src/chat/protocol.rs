//! The chat wire protocol, version 1 (docs/PROTOCOL.md): line framing, the JSON frames structured
//! clients speak, the text lines raw clients (nc, telnet, a Python socket) read, and commands.

use std::io::{self, Read};

use chrono::{DateTime, FixedOffset, Timelike};
use serde::{Deserialize, Serialize};

/// Protocol version spoken in `hello` and `welcome`.
pub const PROTOCOL_VERSION: u32 = 1;
/// The course's port, the default of `serve`, `chat` and `probe`.
pub use crate::net::DEFAULT_PORT;
/// Longest line accepted; the rest of a longer line is discarded and its sender told.
pub const MAX_LINE_BYTES: usize = 8 * 1024;
/// How often the server sends structured clients a `ping` when nothing else was sent.
pub const HEARTBEAT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);
/// A structured client that hears nothing for this long takes the connection as lost.
pub const HEARTBEAT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);
/// Longest nickname, in characters.
pub const MAX_NAME_CHARS: usize = 32;

/// A frame a structured client sends: one JSON object per line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// First line of a structured connection.
    Hello {
        version: u32,
        name: String,
        /// Last sequence number this client saw (for resuming after a reconnect).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_seq: Option<u64>,
        /// A reachability probe (`soquete probe --chat`): the server answers `welcome` and
        /// `bye`, and the probe never joins the room.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        probe: bool,
    },
    /// A chat line; text starting with `/` is a command, as for raw clients.
    Msg { text: String },
    /// Change name.
    Nick { name: String },
    /// Ask for the member list.
    Who,
    /// Leave; the server answers `bye` and closes.
    Quit,
}

/// One member in a `who` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub name: String,
    /// The member's `IP:PORT` as the server sees it.
    pub addr: String,
    /// `structured` or `raw`.
    pub kind: String,
}

/// A frame the server sends to structured clients; raw clients get the same as a text line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// Answer to `hello` (or the greeting of a raw client).
    Welcome {
        version: u32,
        server: String,
        mode: String,
        name: String,
        room_size: usize,
        /// The room's latest sequence number (0 before any message): where a client resumes from.
        #[serde(default)]
        last_seq: u64,
        /// On a resume: messages missed that are older than the server's history, so they
        /// cannot be replayed (replayed ones follow the welcome as ordinary `msg` frames).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        missed: Option<u64>,
    },
    /// A heartbeat, sent to structured clients after [`HEARTBEAT_INTERVAL`] without other
    /// traffic, so a client notices a dead or half-open connection within seconds.
    Ping,
    /// A chat message: author, the server's time and a per-room sequence number in one frame.
    Msg {
        seq: u64,
        time: DateTime<FixedOffset>,
        from: String,
        text: String,
        /// True for `/me` actions.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        action: bool,
    },
    /// Someone joined.
    Join {
        time: DateTime<FixedOffset>,
        name: String,
        addr: String,
    },
    /// Someone left.
    Leave {
        time: DateTime<FixedOffset>,
        name: String,
        reason: String,
    },
    /// Someone changed name.
    Nick {
        time: DateTime<FixedOffset>,
        old: String,
        new: String,
    },
    /// The member list.
    Who { members: Vec<Member> },
    /// Information for this client only (help text, queue position, turn-taking).
    Notice { text: String },
    /// Something this client sent was refused.
    Error { code: String, message: String },
    /// The server is closing this connection: `reason` for people, `code` for programs.
    Bye {
        reason: String,
        #[serde(default)]
        code: ByeCode,
    },
}

/// Why the server closes a connection, for programs: a client acts on this, never on the words
/// of `reason`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ByeCode {
    /// The whole server is going away (Ctrl-C, SIGTERM): a client may reconnect and resume.
    Shutdown,
    /// The client asked to leave (`/quit`, `exit`).
    Quit,
    /// The same name resumed on another connection, which replaces this one.
    Replaced,
    /// Nothing was heard from the client for `--idle-timeout`.
    Idle,
    /// A `probe` hello was answered.
    Probe,
    /// The operator ended the session at the console (single mode).
    Ended,
    /// A code this client does not know (a newer server), or none (an older one).
    #[default]
    #[serde(other)]
    Unknown,
}

/// How a chat message's text line starts: `[HH:MM:SS] <from> `, or `[HH:MM:SS] * from ` for
/// an action (`/me`).
fn text_prefix(time: &DateTime<FixedOffset>, from: &str, action: bool) -> String {
    let clock = format!(
        "{:02}:{:02}:{:02}",
        time.hour(),
        time.minute(),
        time.second()
    );
    if action {
        format!("[{clock}] * {from} ")
    } else {
        format!("[{clock}] <{from}> ")
    }
}

/// Encodes the chat messages of one author at one time as JSON and text lines, byte for byte as
/// [`ServerFrame::Msg`] does, with what they share encoded once: a batch of lines costs little
/// more than its text.
pub struct MsgEncoder {
    /// `,"time":"…","from":"…","text":`
    json_middle: Vec<u8>,
    /// `[HH:MM:SS] <from> ` and `[HH:MM:SS] * from `.
    text_prefixes: [String; 2],
}

impl MsgEncoder {
    pub fn new(time: &DateTime<FixedOffset>, from: &str) -> MsgEncoder {
        let mut json_middle = b",\"time\":".to_vec();
        serde_json::to_writer(&mut json_middle, time).expect("times always serialize");
        json_middle.extend_from_slice(b",\"from\":");
        serde_json::to_writer(&mut json_middle, from).expect("strings always serialize");
        json_middle.extend_from_slice(b",\"text\":");
        MsgEncoder {
            json_middle,
            text_prefixes: [false, true].map(|action| text_prefix(time, from, action)),
        }
    }

    /// Appends message `seq` as a JSON line to `json`.
    pub fn json_line(&self, seq: u64, message: &str, action: bool, json: &mut Vec<u8>) {
        json.extend_from_slice(b"{\"type\":\"msg\",\"seq\":");
        json.extend_from_slice(seq.to_string().as_bytes());
        json.extend_from_slice(&self.json_middle);
        serde_json::to_writer(&mut *json, message).expect("strings always serialize");
        if action {
            json.extend_from_slice(b",\"action\":true");
        }
        json.extend_from_slice(b"}\n");
    }

    /// Appends the message as a text line to `text`.
    pub fn text_line(&self, message: &str, action: bool, text: &mut String) {
        text.push_str(&self.text_prefixes[usize::from(action)]);
        text.push_str(message);
        text.push('\n');
    }
}

impl ClientFrame {
    /// The frame as one JSON line (with its newline), as a structured client sends it.
    pub fn to_json_line(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(self).expect("frames always serialize");
        line.push(b'\n');
        line
    }
}

impl ServerFrame {
    /// The frame as one JSON line (with its newline), for structured clients.
    pub fn to_json_line(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(self).expect("frames always serialize");
        line.push(b'\n');
        line
    }

    /// The frame as one readable text line (with its newline), for raw clients.
    pub fn to_text_line(&self) -> Vec<u8> {
        let text = match self {
            ServerFrame::Welcome {
                server,
                mode,
                name,
                room_size,
                ..
            } => format!(
                "* welcome to {server} ({mode} mode): you are {name}, {room_size} here; /help lists commands"
            ),
            ServerFrame::Msg {
                time,
                from,
                text,
                action,
                ..
            } => text_prefix(time, from, *action) + text,
            ServerFrame::Join { name, addr, .. } => format!("* {name} joined ({addr})"),
            ServerFrame::Leave { name, reason, .. } => format!("* {name} left ({reason})"),
            ServerFrame::Nick { old, new, .. } => format!("* {old} is now known as {new}"),
            ServerFrame::Who { members } => {
                let list: Vec<String> = members
                    .iter()
                    .map(|m| format!("{} ({})", m.name, m.addr))
                    .collect();
                format!("* {} here: {}", members.len(), list.join(", "))
            }
            ServerFrame::Notice { text } => format!("* {text}"),
            ServerFrame::Error { message, .. } => format!("! {message}"),
            ServerFrame::Bye { reason, .. } => format!("* bye: {reason}"),
            ServerFrame::Ping => "* ping".to_string(),
        };
        let mut line = text.into_bytes();
        line.push(b'\n');
        line
    }
}

/// What the first line of a connection says about the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Greeting {
    /// A soquete client: JSON from now on.
    Structured {
        name: String,
        last_seq: Option<u64>,
        probe: bool,
    },
    /// Anything else (nc, telnet, a Python socket): plain text, and this line is its first message.
    Raw(String),
}

/// Tells a structured client from a raw one by its first line, without any flag on either side.
pub fn classify_first_line(line: &str) -> Greeting {
    if line.trim_start().starts_with('{')
        && let Ok(ClientFrame::Hello {
            name,
            last_seq,
            probe,
            ..
        }) = serde_json::from_str(line)
    {
        return Greeting::Structured {
            name,
            last_seq,
            probe,
        };
    }
    Greeting::Raw(line.to_string())
}

/// A chat command, typed by raw and structured clients alike (and at the server console).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Nick(String),
    Who,
    Me(String),
    Help,
    Quit,
    Status,
    Unknown(String),
}

/// Reads `text` as a command: `/word args`, or exactly `exit` (the labs' way to end a session).
pub fn parse_command(text: &str) -> Option<Command> {
    let trimmed = text.trim();
    if trimmed == "exit" {
        return Some(Command::Quit);
    }
    let rest = trimmed.strip_prefix('/')?;
    let (word, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let args = args.trim();
    Some(match word.to_ascii_lowercase().as_str() {
        "nick" | "name" => Command::Nick(args.to_string()),
        "who" | "names" => Command::Who,
        "me" => Command::Me(args.to_string()),
        "help" | "?" => Command::Help,
        "quit" | "exit" | "bye" => Command::Quit,
        "status" => Command::Status,
        _ => Command::Unknown(word.to_string()),
    })
}

/// The help text every client gets for `/help`.
pub const HELP: &[&str] = &[
    "/nick NAME   change your name (names are unique, case-insensitive)",
    "/who         list members with their IP:port",
    "/me ACTION   say what you are doing",
    "/quit        leave (a line that is exactly `exit` does too)",
    "/help        this list",
];

/// Checks a proposed name: 1 to 32 characters, no spaces or control characters, not a command.
pub fn validate_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("a name cannot be empty".into());
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(format!("a name has at most {MAX_NAME_CHARS} characters"));
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("a name cannot contain spaces or control characters".into());
    }
    if name.starts_with(['/', '*', '!', '[', '<']) {
        return Err("a name cannot start with / * ! [ or <".into());
    }
    Ok(name.to_string())
}

/// What [`LineReader`] yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// One complete line, without its terminator; invalid UTF-8 replaced by U+FFFD.
    Line(String),
    /// A line longer than the limit: its first part was dropped, the rest is being discarded.
    Overlong,
}

/// Splits a byte stream into lines, whatever TCP does to the bytes: several lines in one read and
/// one line over many reads come out exactly as sent. Accepts `\n`, `\r\n` and telnet's `\r\0`;
/// a last line without a terminator is yielded at end of stream.
pub struct LineReader<R> {
    inner: R,
    buffer: Vec<u8>,
    /// Bytes of `buffer` already scanned for a terminator.
    scanned: usize,
    max_line: usize,
    discarding: bool,
    eof: bool,
}

impl<R: Read> LineReader<R> {
    /// A reader with the protocol's line limit.
    pub fn new(inner: R) -> Self {
        Self::with_limit(inner, MAX_LINE_BYTES)
    }

    /// A reader with a chosen line limit (bytes).
    pub fn with_limit(inner: R, max_line: usize) -> Self {
        LineReader {
            inner,
            buffer: Vec::with_capacity(1024),
            scanned: 0,
            max_line,
            discarding: false,
            eof: false,
        }
    }

    /// Bytes received that do not yet form a complete line.
    pub fn pending(&self) -> &[u8] {
        &self.buffer
    }

    /// The next line, `Ok(None)` at end of stream.
    pub fn next_line(&mut self) -> io::Result<Option<Incoming>> {
        loop {
            if let Some(end) = find_terminator(&self.buffer, self.scanned) {
                let (content_end, after) = terminator_bounds(&self.buffer, end);
                let overlong = content_end > self.max_line;
                let line = (!overlong).then(|| clean(&self.buffer[..content_end]));
                self.buffer.drain(..after);
                self.scanned = 0;
                if std::mem::take(&mut self.discarding) {
                    continue;
                }
                // A long line that arrived whole in one read is still too long.
                return Ok(Some(line.map_or(Incoming::Overlong, Incoming::Line)));
            }
            self.scanned = self.buffer.len();
            if self.buffer.len() > self.max_line {
                self.buffer.clear();
                self.scanned = 0;
                if !self.discarding {
                    self.discarding = true;
                    return Ok(Some(Incoming::Overlong));
                }
            }
            if self.eof {
                if self.buffer.is_empty() || std::mem::take(&mut self.discarding) {
                    self.buffer.clear();
                    return Ok(None);
                }
                let line = clean(&self.buffer);
                self.buffer.clear();
                self.scanned = 0;
                return Ok(Some(Incoming::Line(line)));
            }
            let mut chunk = [0u8; 4096];
            match self.inner.read(&mut chunk) {
                Ok(0) => self.eof = true,
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
    }
}

/// Index of the first `\n` at or after `from`, or of the `\0` of a `\r\0` pair.
fn find_terminator(bytes: &[u8], from: usize) -> Option<usize> {
    (from..bytes.len())
        .find(|&i| bytes[i] == b'\n' || (bytes[i] == 0 && i > 0 && bytes[i - 1] == b'\r'))
}

/// For a terminator at `end`: where the line's content ends and where the next line starts.
fn terminator_bounds(buffer: &[u8], end: usize) -> (usize, usize) {
    let content_end = if end > 0 && buffer[end - 1] == b'\r' {
        end - 1
    } else {
        end
    };
    (content_end, end + 1)
}

fn clean(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .trim_end_matches(['\r', '\0'])
        .replace('\0', "")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out its bytes in chunks of a fixed size.
    struct Dribble {
        bytes: Vec<u8>,
        at: usize,
        chunk: usize,
    }

    impl Read for Dribble {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.chunk.min(buf.len()).min(self.bytes.len() - self.at);
            buf[..n].copy_from_slice(&self.bytes[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    fn lines_of(bytes: &[u8], chunk: usize) -> Vec<Incoming> {
        let mut reader = LineReader::with_limit(
            Dribble {
                bytes: bytes.to_vec(),
                at: 0,
                chunk,
            },
            16,
        );
        let mut lines = Vec::new();
        while let Some(line) = reader.next_line().unwrap() {
            lines.push(line);
            assert!(lines.len() < 10_000);
        }
        lines
    }

    fn line(text: &str) -> Incoming {
        Incoming::Line(text.to_string())
    }

    #[test]
    fn many_lines_in_one_read_and_one_line_over_many_reads() {
        let bytes = b"one\ntwo\r\nthree\n";
        for chunk in [1, 2, 3, 4096] {
            assert_eq!(
                lines_of(bytes, chunk),
                [line("one"), line("two"), line("three")],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn telnet_cr_nul_ends_a_line() {
        assert_eq!(lines_of(b"hi\r\0there\r\n", 1), [line("hi"), line("there")]);
    }

    #[test]
    fn last_line_without_newline_is_kept() {
        assert_eq!(lines_of(b"Hello Server", 5), [line("Hello Server")]);
    }

    #[test]
    fn invalid_utf8_is_replaced_and_utf8_kept() {
        assert_eq!(lines_of("olá\n".as_bytes(), 1), [line("olá")]);
        assert_eq!(lines_of(b"a\xffb\n", 1), [line("a\u{fffd}b")]);
    }

    #[test]
    fn a_line_just_over_the_limit_is_overlong_however_it_arrives() {
        let mut bytes = vec![b'x'; 17];
        bytes.extend_from_slice(b"\nok\n");
        for chunk in [1, 5, 4096] {
            assert_eq!(
                lines_of(&bytes, chunk),
                [Incoming::Overlong, line("ok")],
                "chunk {chunk}"
            );
        }
        let mut exact = vec![b'x'; 16];
        exact.push(b'\n');
        assert_eq!(lines_of(&exact, 4096), [line(&"x".repeat(16))]);
    }

    #[test]
    fn overlong_line_is_reported_once_and_the_next_line_survives() {
        let mut bytes = vec![b'x'; 100];
        bytes.extend_from_slice(b"\nok\n");
        assert_eq!(lines_of(&bytes, 7), [Incoming::Overlong, line("ok")]);
    }

    #[test]
    fn first_line_tells_structured_from_raw() {
        let hello = r#"{"type":"hello","version":1,"name":"ana"}"#;
        assert_eq!(
            classify_first_line(hello),
            Greeting::Structured {
                name: "ana".into(),
                last_seq: None,
                probe: false
            }
        );
        let probe = r#"{"type":"hello","version":1,"name":"p","probe":true}"#;
        assert!(matches!(
            classify_first_line(probe),
            Greeting::Structured { probe: true, .. }
        ));
        assert_eq!(
            classify_first_line("Hello Server"),
            Greeting::Raw("Hello Server".into())
        );
        assert_eq!(
            classify_first_line("{not json"),
            Greeting::Raw("{not json".into())
        );
    }

    #[test]
    fn one_frame_carries_time_author_and_text() {
        let frame = ServerFrame::Msg {
            seq: 7,
            time: DateTime::parse_from_rfc3339("2026-11-26T14:03:07-03:00").unwrap(),
            from: "ana".into(),
            text: "oi pessoal".into(),
            action: false,
        };
        let json: serde_json::Value = serde_json::from_slice(&frame.to_json_line()).unwrap();
        assert_eq!(json["type"], "msg");
        assert_eq!(json["seq"], 7);
        assert_eq!(json["time"], "2026-11-26T14:03:07-03:00");
        assert_eq!(json["from"], "ana");
        assert_eq!(json["text"], "oi pessoal");
        assert_eq!(frame.to_text_line(), b"[14:03:07] <ana> oi pessoal\n");
    }

    #[test]
    fn the_batch_encoder_writes_what_the_frame_does() {
        let time = DateTime::parse_from_rfc3339("2026-11-26T14:03:07.123456-03:00").unwrap();
        let encoder = MsgEncoder::new(&time, "ana \"a\" ção");
        for (seq, message, action) in [
            (1, "oi pessoal", false),
            (u64::MAX, "acena \\ \"aspas\" \t tab ✓", true),
            (42, "", false),
        ] {
            let frame = ServerFrame::Msg {
                seq,
                time,
                from: "ana \"a\" ção".into(),
                text: message.into(),
                action,
            };
            let (mut json, mut text) = (Vec::new(), String::new());
            encoder.json_line(seq, message, action, &mut json);
            encoder.text_line(message, action, &mut text);
            assert_eq!(
                String::from_utf8(json).unwrap(),
                String::from_utf8(frame.to_json_line()).unwrap()
            );
            assert_eq!(text.as_bytes(), frame.to_text_line());
        }
    }

    #[test]
    fn commands_parse() {
        assert_eq!(
            parse_command("/nick bia"),
            Some(Command::Nick("bia".into()))
        );
        assert_eq!(parse_command("/WHO"), Some(Command::Who));
        assert_eq!(
            parse_command("/me waves"),
            Some(Command::Me("waves".into()))
        );
        assert_eq!(parse_command("exit"), Some(Command::Quit));
        assert_eq!(parse_command("exit now"), None);
        assert_eq!(
            parse_command("/frobnicate"),
            Some(Command::Unknown("frobnicate".into()))
        );
        assert_eq!(parse_command("hello"), None);
    }

    #[test]
    fn names_are_checked() {
        assert_eq!(validate_name(" ana "), Ok("ana".into()));
        assert!(validate_name("").is_err());
        assert!(validate_name("a b").is_err());
        assert!(validate_name("/x").is_err());
        assert!(validate_name(&"x".repeat(33)).is_err());
        assert!(validate_name("a\u{1b}[31m").is_err());
    }
}
