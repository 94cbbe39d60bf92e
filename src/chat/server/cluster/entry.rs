//! The words the hub and the cluster's threads exchange: a [`Round`] of [`Line`]s the hub hands
//! to the publisher, and the [`Entry`]s the reader finds in the room's stream, every server's
//! alike. Plain data (the server's `event` vocabulary carries them).

use chrono::{DateTime, FixedOffset};

use crate::chat::protocol::{MAX_LINE_BYTES, Member, MsgEncoder, ServerFrame};
use crate::net::sanitize::neutralize;

/// What one round of the hub said to the room, in order, stamped in Redis in one call.
#[derive(Debug, Clone, PartialEq)]
pub struct Round {
    /// The hub's clock when the round was handed over: every message's `time`.
    pub time: DateTime<FixedOffset>,
    pub lines: Vec<Line>,
}

/// One thing said to the room, with the id of the client (on this server) that said it: 0 for
/// the console.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    Msg {
        from: String,
        text: String,
        action: bool,
        client: u64,
        /// Delivered already to this server's members, while the room was split (docs/CLUSTER.md):
        /// not sent to them again when the stream gives it back.
        held: bool,
    },
    Join {
        name: String,
        addr: String,
        kind: String,
        client: u64,
    },
    Leave {
        name: String,
        reason: String,
        client: u64,
    },
    Nick {
        old: String,
        new: String,
        client: u64,
    },
}

impl Line {
    /// The author, on its server.
    pub fn client(&self) -> u64 {
        match self {
            Line::Msg { client, .. }
            | Line::Join { client, .. }
            | Line::Leave { client, .. }
            | Line::Nick { client, .. } => *client,
        }
    }

    /// Bytes it weighs in a round (to bound one).
    pub fn weight(&self) -> usize {
        match self {
            Line::Msg { from, text, .. } => from.len() + text.len() + 96,
            _ => 128,
        }
    }
}

/// Which server, and which of its clients, an entry came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub server: String,
    pub client: u64,
}

/// An entry of the room's stream, read back.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// A chat message, numbered by the room.
    Msg {
        seq: u64,
        time: DateTime<FixedOffset>,
        from: String,
        text: String,
        action: bool,
        origin: Origin,
        /// Its server's members heard it while the room was split (see [`Line::Msg`]).
        held: bool,
    },
    /// A join, leave or nick notice (no `seq`: PROTOCOL.md section 6).
    Notice { frame: ServerFrame, origin: Origin },
}

impl Entry {
    /// The message as structured clients read it (None for a notice).
    pub fn json_line(&self) -> Option<(u64, Vec<u8>)> {
        match self {
            Entry::Msg {
                seq,
                time,
                from,
                text,
                action,
                ..
            } => {
                let mut json = Vec::new();
                MsgEncoder::new(time, from).json_line(*seq, text, *action, &mut json);
                Some((*seq, json))
            }
            Entry::Notice { .. } => None,
        }
    }
}

/// What the cluster's threads tell the hub about Redis itself.
#[derive(Debug, Clone, PartialEq)]
pub enum News {
    /// The reader lost Redis (why): nothing from the other servers arrives until it is back.
    ReaderLost(String),
    /// The reader reached Redis again, and goes on from the entry it had read last.
    ReaderBack,
    /// A round could not be stored (why): these clients' lines were not delivered to anyone.
    Unpublished { clients: Vec<u64>, why: String },
    /// Answers to the hub's [`Op::Admit`] and [`Op::Claim`], by client.
    Verdicts(Vec<(u64, Verdict)>),
    /// The members of the other servers, as their last beats left them.
    Remote(Vec<Member>),
}

/// What the hub asks of the room's names and sessions in Redis (the presence thread batches
/// them). A name is always its `name_key`; a session is the hex SHA-256 of its token.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// A structured `hello` for this name: does its `token`'s session hold it (a resume from
    /// any server), or is it free (then it is claimed, for the new session `fresh`)?
    Admit {
        id: u64,
        key: String,
        token: Option<String>,
        fresh: String,
    },
    /// A raw member's name: claimed if free; with an `id`, the hub waits for the verdict
    /// (`/nick`), without, it does not (a guest's number is this server's alone).
    Claim { id: Option<u64>, key: String },
    /// This server gives the name up (left, renamed, quit, its reservation over): deleted if it
    /// still holds it (for the session of `digest`, when the name was a session's).
    Release { key: String, digest: Option<String> },
    /// A session's name now (welcomed, renamed).
    Session { digest: String, key: String },
    /// A member dropped without a quit: its name and session live for the reservation only.
    Dropped { key: String, digest: String },
    /// A session ended (quit, its reservation ran out).
    EndSession { digest: String },
    /// A member of this server, for the others' `/who` ("ADDR KIND").
    Member { name: String, about: String },
    /// A member of this server left.
    Gone { name: String },
}

/// The answer to an [`Op::Admit`] or a waited-for [`Op::Claim`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The hello's token is the session holding the name: it resumes here.
    Resumed,
    /// The name was free: it is this client's now.
    Claimed,
    /// This server holds the name: its hub decides, as a single server would.
    Ours,
    /// Another server holds it.
    Taken,
    /// Redis could not be asked: the hub decides alone (the room is split).
    Unknown,
}

/// What a server of the room wrote is clean already; what else may be in Redis is made so: one
/// line, no terminal controls, no longer than a line may be.
pub fn clean(text: &str) -> String {
    let mut text = if text.bytes().all(|b| (b' '..=b'~').contains(&b)) {
        text.to_string()
    } else {
        neutralize(&text.replace(['\n', '\r'], " ")).into_owned()
    };
    if text.len() > MAX_LINE_BYTES {
        let mut end = MAX_LINE_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}
