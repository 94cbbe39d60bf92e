//! `--cluster`: what the hub holds back while Redis is asked (a hello's name and session, a
//! `/nick`), or while its reader catches up with a client that saw more of the room than this
//! server has read yet; and the other servers' members, for `/who`. Plain data.

use std::collections::HashMap;
use std::time::Instant;

use crate::chat::protocol::{Greeting, Member, Secret};
use crate::chat::server::cluster::Verdict;
use crate::chat::server::event::Input;
use crate::chat::server::token::Digest;

/// Most inputs kept for one client while it waits (more are dropped: a client that floods
/// before it is welcomed loses its excess, told so).
pub const MAX_KEPT_INPUTS: usize = 1000;

/// A hello waiting for Redis's verdict, or for the reader.
pub struct Admission {
    pub greeting: Greeting,
    /// The name's key asked about (None: not asked, the hub decides alone).
    pub key: Option<String>,
    /// The new session's token and digest, should the hello start one.
    pub fresh: Option<(Secret, Digest)>,
    /// Redis's answer, once it came.
    pub verdict: Option<Verdict>,
    /// Since when it waits for the reader (a resume ahead of this server), if it does.
    pub behind_since: Option<Instant>,
    /// Its inputs meanwhile, in order.
    pub inputs: Vec<Input>,
}

/// What the hub holds back in a shared room.
#[derive(Default)]
pub struct Waiting {
    /// Hellos being admitted, by client.
    pub admitting: HashMap<u64, Admission>,
    /// The hello being handled now, with its verdict (while `first_line` runs).
    pub admitted: HashMap<u64, Admission>,
    /// `/nick`s waiting for Redis, by client: the name asked for.
    pub nicks: HashMap<u64, String>,
    /// The other servers' members, as Redis last said, and as their notices since.
    pub remote: Vec<Member>,
    /// Clients gone before Redis answered them: what to give back when it does.
    pub orphans: HashMap<u64, Orphan>,
    /// The room is split (the reader lost Redis): this server's lines are delivered to its
    /// members at once, provisional, and held for the stream (docs/CLUSTER.md).
    pub split: bool,
}

/// What a client gone while Redis was asked may be given, to give back.
pub struct Orphan {
    /// The name's key.
    pub key: String,
    /// The new session's digest (a claim for a hello), if any.
    pub fresh: Option<String>,
    /// The digest of the token it resumed with, if any.
    pub token: Option<String>,
}
