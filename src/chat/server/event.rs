//! The server's event vocabulary: what the accept thread, the readers and writers, the console
//! and Ctrl-C tell the hub, and the words those messages are made of (a client's input, its
//! kind, how it is let go). Plain data, resting only on the outbox's types (an accepted
//! connection arrives with its outbox): every other file of the server may use it.

use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

use crossbeam_channel::Sender;

use crate::chat::protocol::{Greeting, TelnetRequests};

use super::cluster::entry::{Entry, News};
use super::outbox::{Outgoing, Stats};

/// Everything the hub hears about, from every thread.
pub enum Event {
    /// A connection was accepted (its reader starts after this is sent).
    Accepted(Box<Accepted>),
    /// The first line of a connection, which tells a structured client from a raw one.
    First { id: u64, greeting: Greeting },
    /// The connection has said nothing for the join grace: a person at nc, most likely.
    Silent { id: u64 },
    /// Lines after the first, in order (several when they arrived together).
    Input { id: u64, inputs: Vec<Input> },
    /// A line longer than the protocol allows was dropped.
    Overlong { id: u64 },
    /// A raw client's telnet sent commands that ask for something (an answer, Ctrl-C).
    Telnet { id: u64, requests: TelnetRequests },
    /// The client's reader has started waiting for its rate limit (sent once per client).
    Throttled { id: u64 },
    /// The client has sent nothing for the idle timeout.
    Idle { id: u64 },
    /// The connection ended: end of stream (graceful: what is queued is still written), or a
    /// reset or failed write (forced).
    Closed {
        id: u64,
        reason: String,
        ending: Ending,
    },
    /// A writer thread has finished.
    WriterDone,
    /// A connection beyond `--max-clients` was told the server is full and closed.
    Refused { peer: SocketAddr },
    /// A connection was turned away at the password check (and told why): the hub never
    /// heard of it otherwise. `failures`: wrong passwords from its address so far, when one
    /// was checked.
    Denied {
        peer: SocketAddr,
        reason: String,
        failures: Option<u32>,
    },
    /// A connection ended before it could be set up (a port probe), or before its TLS handshake
    /// was done: why.
    Vanished { peer: SocketAddr, reason: String },
    /// A line typed at the server console.
    Console(String),
    /// `--cluster`: entries of the room's stream, every server's, in the stream's order.
    Shared(Vec<Entry>),
    /// `--cluster`: news of Redis itself (lost, back, a round not stored).
    Cluster(News),
    /// Ctrl-C.
    Shutdown,
}

/// A client's input, the same for raw and structured clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A chat line (commands start with `/`).
    Text(String),
    Nick(String),
    Who,
    Quit,
    /// A structured line that is not a frame the client may send.
    Bad(String),
}

/// How a client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Has not sent its first line yet; written to as raw.
    Pending,
    Raw,
    Structured,
}

impl Kind {
    /// The kind as `/status` and `/who` show it.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Pending => "-",
            Kind::Raw => "raw",
            Kind::Structured => "structured",
        }
    }
}

/// How a client is let go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Queued output is still written, then the connection half-closes.
    Graceful,
    /// The socket is shut down at once (the client stopped reading).
    Forced,
}

/// A freshly accepted connection, handed to the hub before its reader starts.
pub struct Accepted {
    pub id: u64,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    /// The socket, shared with the reader and writer; the hub uses it for a forced shutdown.
    pub stream: Arc<TcpStream>,
    pub outbox: Sender<Outgoing>,
    pub stats: Arc<Stats>,
}
