//! The frames of the protocol: what a structured client sends ([`ClientFrame`]), what the server
//! sends ([`ServerFrame`], with its `bye` code), each as one JSON line and, for raw clients, as
//! one text line; and [`MsgEncoder`], which writes a batch of chat messages as the frame would.

use chrono::{DateTime, FixedOffset, Timelike};
use serde::{Deserialize, Serialize};

use super::{MAX_LINE_BYTES, Secret};

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
        /// The room `last_seq` belongs to (the `epoch` of the welcome it had): in another room
        /// (a server restarted without its history) `last_seq` means nothing.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        epoch: Option<String>,
        /// The resume token of the session this client resumes (its welcome gave it): only a
        /// hello with it takes back a name in use or reserved, and what was missed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<Secret>,
        /// A reachability probe (`soquete probe --chat`): the server answers `welcome` and
        /// `bye`, and the probe never joins the room.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        probe: bool,
        /// The room's password, for a server started with one (never kept, logged or relayed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password: Option<Secret>,
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
        /// The room's identity, opaque: the same as long as its history carries over (a restart
        /// with `--log` keeps it), a new one when it does not. None from an older server.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        epoch: Option<String>,
        /// On a resume: messages missed that are older than the server's history, so they
        /// cannot be replayed (replayed ones follow the welcome as ordinary `msg` frames).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        missed: Option<u64>,
        /// A structured client's resume token (group and broker mode): secret, the same for as
        /// long as its session lasts; a `hello` that resumes carries it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<Secret>,
    },
    /// A heartbeat, sent to structured clients after
    /// [`HEARTBEAT_INTERVAL`](super::HEARTBEAT_INTERVAL) without other traffic, so a client
    /// notices a dead or half-open connection within seconds.
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
        /// True for a provisional message of a split room (`--cluster`, Redis away): `seq` is 0,
        /// the room numbers it when it is whole again (PROTOCOL.md section 11).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        held: bool,
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
    /// The member list, or one page of it: a room of more than [`WHO_PAGE`] members is listed
    /// over several `who` frames in a row (see [`ServerFrame::who_pages`]).
    Who {
        members: Vec<Member>,
        /// On a list split over several frames: how many members the whole list has.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        total: Option<usize>,
        /// On a list split over several frames: how many members the frames before this one
        /// listed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        offset: Option<usize>,
        /// On a list split over several frames: true on every frame but the last.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        more: bool,
    },
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

/// Most members one `who` frame lists. A member takes at most [`MEMBER_BYTES`] in a frame, so a
/// page of them stays well within [`MAX_FRAME_BYTES`]; with everyday names and IPv4 addresses
/// (under 100 bytes a member) it even fits the 8 KiB lines of clients older than the split.
pub const WHO_PAGE: usize = 50;

/// Most bytes one member of a `who` list takes in a JSON frame: a name of
/// [`MAX_NAME_CHARS`](super::MAX_NAME_CHARS) characters of up to 4 bytes each, or of up to 2
/// once JSON escapes `"` and `\` (128); the longest address, a scoped IPv6 one
/// (`[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff%4294967295]:65535`, 58); the longest kind
/// (`structured`, 10); and the keys and punctuation (`{"name":"","addr":"","kind":""},`, 32).
pub const MEMBER_BYTES: usize = 128 + 58 + 10 + 32;

/// What a frame may carry besides its one long text: its type and keys, a `seq` of 20 digits, a
/// time of up to 35 characters, a name (up to 128 bytes as JSON), the words around a text the
/// server quotes back (an `unknown command …`, a `bad_frame` error) and `"action":true`. A
/// generous bound: the longest such envelope today is under 500 bytes.
pub const FRAME_ENVELOPE_BYTES: usize = 4 * 1024;

/// Longest line the server ever sends (a JSON frame or a text line, its newline included): what
/// a client must be ready to read.
///
/// Every text a server frame carries comes from one line a client sent, of at most
/// [`MAX_LINE_BYTES`]: a chat message, or an error that quotes it. Made safe for a terminal, a
/// byte of it grows to at most 3 (a control character or a byte of invalid UTF-8 becomes
/// U+FFFD, 3 bytes, which JSON leaves as it is; what JSON does escape in such a text, `"`, `\`
/// and tab, grows from 1 byte to 2). The bound allows twice that: 6 bytes a byte is what JSON
/// makes of text that was never neutralised (`\u001b` for ESC), so the client's limit does not
/// rest on the server having cleaned every text. Then the envelope. A `who` frame is at most
/// [`WHO_PAGE`] × [`MEMBER_BYTES`] and an envelope, far less.
pub const MAX_FRAME_BYTES: usize = 6 * MAX_LINE_BYTES + FRAME_ENVELOPE_BYTES;

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
    /// The server has `--max-clients` connected already: the client was refused, and may try
    /// again later.
    Full,
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
    /// An encoder for the messages `from` sends at `time`.
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

    /// Appends the message as a provisional JSON line to `json`: held while the room is split,
    /// without a number (`"seq":0,"held":true`).
    pub fn json_held(&self, message: &str, action: bool, json: &mut Vec<u8>) {
        self.json_line(0, message, action, json);
        json.truncate(json.len() - 2);
        json.extend_from_slice(b",\"held\":true}\n");
    }

    /// Appends the message as a text line to `text`.
    pub fn text_line(&self, message: &str, action: bool, text: &mut String) {
        text.push_str(&self.text_prefixes[usize::from(action)]);
        text.push_str(message);
        text.push('\n');
    }
}

/// A frame as one JSON line, with its newline: how both kinds of frame go out as JSON.
fn json_line(frame: &impl Serialize) -> Vec<u8> {
    let mut line = serde_json::to_vec(frame).expect("frames always serialize");
    line.push(b'\n');
    line
}

impl ClientFrame {
    /// The frame as one JSON line (with its newline), as a structured client sends it.
    pub fn to_json_line(&self) -> Vec<u8> {
        json_line(self)
    }
}

impl ServerFrame {
    /// The member list as `who` frames: one frame for a room of up to [`WHO_PAGE`] members (as
    /// it always was); else pages of [`WHO_PAGE`], each with the `total`, its `offset` and, but
    /// on the last, `more`.
    pub fn who_pages(members: Vec<Member>) -> Vec<ServerFrame> {
        let total = members.len();
        if total <= WHO_PAGE {
            return vec![ServerFrame::Who {
                members,
                total: None,
                offset: None,
                more: false,
            }];
        }
        let mut members = members.into_iter();
        (0..total)
            .step_by(WHO_PAGE)
            .map(|offset| ServerFrame::Who {
                members: members.by_ref().take(WHO_PAGE).collect(),
                total: Some(total),
                offset: Some(offset),
                more: offset + WHO_PAGE < total,
            })
            .collect()
    }

    /// The frame as one JSON line (with its newline), for structured clients.
    pub fn to_json_line(&self) -> Vec<u8> {
        json_line(self)
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
            ServerFrame::Who {
                members,
                total,
                offset,
                ..
            } => {
                let list: Vec<String> = members
                    .iter()
                    .map(|m| format!("{} ({})", m.name, m.addr))
                    .collect();
                match (total, offset) {
                    (Some(total), Some(offset)) => format!(
                        "* {total} here ({}-{}): {}",
                        offset + 1,
                        offset + members.len(),
                        list.join(", ")
                    ),
                    _ => format!("* {} here: {}", members.len(), list.join(", ")),
                }
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

#[cfg(test)]
mod tests {
    use std::net::{Ipv6Addr, SocketAddrV6};

    use super::*;
    use crate::chat::protocol::MAX_NAME_CHARS;
    use crate::net::sanitize::neutralize;

    /// The longest name: [`MAX_NAME_CHARS`] characters of 4 bytes each.
    fn longest_name() -> String {
        "𝄞".repeat(MAX_NAME_CHARS)
    }

    #[test]
    fn the_largest_frame_a_client_can_make_the_server_send_fits_the_clients_limit() {
        let time = DateTime::parse_from_rfc3339("2026-11-26T14:03:07.123456789-03:00").unwrap();
        // A line of the limit, every byte a control character: U+FFFD each once neutralised,
        // `\u0001` each in JSON were it not; and every byte one that JSON escapes.
        let controls = "\u{1}".repeat(MAX_LINE_BYTES);
        let neutralised = neutralize(&controls).into_owned();
        assert_eq!(neutralised.len(), 3 * MAX_LINE_BYTES);
        for text in [neutralised, controls, "\"".repeat(MAX_LINE_BYTES)] {
            let frames = [
                ServerFrame::Msg {
                    seq: u64::MAX,
                    time,
                    from: longest_name(),
                    text: text.clone(),
                    action: true,
                    held: false,
                },
                ServerFrame::Error {
                    code: "unknown_command".into(),
                    message: format!("unknown command {text}; /help lists commands"),
                },
                ServerFrame::Notice { text: text.clone() },
            ];
            for frame in frames {
                let (json, line) = (frame.to_json_line(), frame.to_text_line());
                assert!(json.len() <= MAX_FRAME_BYTES, "{} bytes", json.len());
                assert!(line.len() <= MAX_FRAME_BYTES, "{} bytes", line.len());
            }
        }
    }

    #[test]
    fn a_large_room_is_listed_in_pages_that_each_fit_and_a_small_one_as_ever() {
        let addr = SocketAddrV6::new(Ipv6Addr::from([0xffff; 8]), 65535, 0, u32::MAX).to_string();
        let longest = Member {
            name: longest_name(),
            addr,
            kind: "structured".into(),
        };
        assert!(serde_json::to_vec(&longest).unwrap().len() < MEMBER_BYTES);
        let members: Vec<Member> = (0..10_000)
            .map(|n| Member {
                name: format!("{n}{}", &longest.name[..4 * (MAX_NAME_CHARS - 5)]),
                ..longest.clone()
            })
            .collect();
        let pages = ServerFrame::who_pages(members.clone());
        assert_eq!(pages.len(), 10_000 / WHO_PAGE);
        let mut listed = Vec::new();
        for (n, page) in pages.iter().enumerate() {
            let json = page.to_json_line();
            assert!(json.len() <= MAX_FRAME_BYTES, "{} bytes", json.len());
            let ServerFrame::Who {
                members,
                total,
                offset,
                more,
            } = page
            else {
                panic!("{page:?}")
            };
            assert_eq!(
                (*total, *offset, *more),
                (Some(10_000), Some(listed.len()), n + 1 < pages.len())
            );
            listed.extend(members.iter().cloned());
        }
        assert_eq!(listed, members);
        let text = String::from_utf8(pages[1].to_text_line()).unwrap();
        assert!(text.starts_with("* 10000 here (51-100): 50𝄞"), "{text}");

        let few = vec![Member {
            name: "ana".into(),
            addr: "127.0.0.1:50322".into(),
            kind: "raw".into(),
        }];
        let pages = ServerFrame::who_pages(few);
        assert_eq!(
            String::from_utf8(pages[0].to_json_line()).unwrap(),
            "{\"type\":\"who\",\"members\":[{\"name\":\"ana\",\"addr\":\"127.0.0.1:50322\",\"kind\":\"raw\"}]}\n"
        );
        assert_eq!(
            pages[0].to_text_line(),
            b"* 1 here: ana (127.0.0.1:50322)\n"
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
            held: false,
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
                held: false,
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
    fn debug_never_shows_a_token_or_a_password_and_the_wire_carries_them() {
        let (token, password) = ("0123456789abcdef0123456789abcdef", "hunter2-secret");
        let hello = format!(
            r#"{{"type":"hello","version":1,"name":"ana","token":"{token}","password":"{password}"}}"#
        );
        let hello: ClientFrame = serde_json::from_str(&hello).unwrap();
        let welcome = format!(
            r#"{{"type":"welcome","version":1,"server":"s","mode":"group","name":"ana","room_size":1,"token":"{token}"}}"#
        );
        let welcome: ServerFrame = serde_json::from_str(&welcome).unwrap();
        let greeting =
            crate::chat::protocol::classify_first_line(&serde_json::to_string(&hello).unwrap());
        for shown in [
            format!("{hello:?}"),
            format!("{welcome:?}"),
            format!("{greeting:?}"),
        ] {
            assert!(
                !shown.contains(token) && !shown.contains(password),
                "{shown}"
            );
        }
        let wire = String::from_utf8(welcome.to_json_line()).unwrap();
        assert!(wire.contains(&format!(r#""token":"{token}""#)), "{wire}");
        let wire = serde_json::to_string(&hello).unwrap();
        assert!(wire.contains(token) && wire.contains(password), "{wire}");
    }
}
