//! What the hub knows of one accepted connection, and how it queues bytes for it.

use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

use chrono::{DateTime, FixedOffset};
use crossbeam_channel::Sender;

use crate::chat::protocol::Member;
use crate::net::clock::now;

use crate::chat::server::event::{Accepted, Kind};
use crate::chat::server::outbox::{self, Outgoing, Stats};
use crate::chat::server::token::Resumable;

use super::round::Unheard;
use super::session::Kept;

/// What the hub knows of one accepted connection.
pub struct Client {
    /// The client's end of the connection.
    pub peer: SocketAddr,
    /// The server's end.
    pub local: SocketAddr,
    /// When it was accepted.
    pub since: DateTime<FixedOffset>,
    /// Shared with the reader and writer; the hub uses it for a forced shutdown.
    pub stream: Arc<TcpStream>,
    /// None once the hub is done with the client: the writer drains what is queued and exits.
    pub outbox: Option<Sender<Outgoing>>,
    /// Counters and flags shared with the client's threads.
    pub stats: Arc<Stats>,
    pub kind: Kind,
    /// Empty until the client is named (first line, or the join grace).
    pub name: String,
    /// Lines a queued client typed (single mode), delivered once it is served.
    pub held: Kept,
    /// Group and broker mode: what the room said since this connection arrived, kept until it
    /// says what it is. A raw client (or a listener) gets it first; a structured one never (a raw
    /// line may pass for a frame).
    pub unheard: Unheard,
    /// The last `seq` a reconnecting client saw: what it missed follows its `welcome`.
    pub resume: Option<u64>,
    /// A structured member's session (group and broker mode): what resumes it.
    pub token: Option<Resumable>,
}

impl Client {
    /// A connection just accepted: not named, its kind not known yet.
    pub fn new(accepted: Accepted) -> Client {
        let Accepted {
            peer,
            local,
            stream,
            outbox,
            stats,
            ..
        } = accepted;
        Client {
            peer,
            local,
            since: now(),
            stream,
            outbox: Some(outbox),
            stats,
            kind: Kind::Pending,
            name: String::new(),
            held: Kept::default(),
            unheard: Unheard::default(),
            resume: None,
            token: None,
        }
    }

    /// True once the client has a name (it has joined).
    pub fn named(&self) -> bool {
        !self.name.is_empty()
    }

    /// The client as `/who` lists it.
    pub fn member(&self) -> Member {
        Member {
            name: self.name.clone(),
            addr: self.peer.to_string(),
            kind: self.kind.label().to_string(),
        }
    }

    /// Queues without blocking (see [`outbox::offer`]); says whether the outbox is now over its
    /// bounds. A client the hub is done with takes nothing: it is already on its way out.
    pub fn offer(&self, outgoing: Outgoing) -> bool {
        let Some(outbox) = &self.outbox else {
            return false;
        };
        outbox::offer(outbox, &self.stats, outgoing)
    }
}
