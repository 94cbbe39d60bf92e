//! The frames of the protocol: what a structured client sends ([`ClientFrame`]), what the server
//! sends ([`ServerFrame`], with its `bye` code), each as one JSON line and, for raw clients, as
//! one text line; and [`MsgEncoder`], which writes a batch of chat messages as the frame would.

use chrono::{DateTime, FixedOffset, Timelike};
use serde::{Deserialize, Serialize};

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
        /// The room's identity, opaque: the same as long as its history carries over (a restart
        /// with `--log` keeps it), a new one when it does not. None from an older server.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        epoch: Option<String>,
        /// On a resume: messages missed that are older than the server's history, so they
        /// cannot be replayed (replayed ones follow the welcome as ordinary `msg` frames).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        missed: Option<u64>,
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
