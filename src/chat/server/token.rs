//! Resume tokens: a structured client's secret, which alone lets it take back its session (its
//! name, and what it missed) after its connection is lost. The server hands a token out in the
//! `welcome` and keeps only its SHA-256, in memory and in `--log`; a `hello`'s token is hashed
//! and compared in constant time. While a session's connection is gone, its name stays reserved
//! for it ([`Reservations`]) for a while, and the log keeps until when, so a restart gives back
//! only the time left.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

use crate::chat::protocol::{Secret, name_key, validate_name};
use crate::net::clock::now;

/// How long a name stays reserved for its session after the connection drops without a quit.
pub const NAME_RESERVE: Duration = Duration::from_secs(5 * 60);
/// Tests shorten [`NAME_RESERVE`] with this variable (milliseconds); the face reads it.
pub const NAME_RESERVE_ENV: &str = "SOQUETE_NAME_RESERVE_MS";
/// Most names reserved at once: beyond them, a newly dropped name is free at once (the names
/// reserved already stay so).
pub const MAX_RESERVED: usize = 65_536;
/// Most names reserved at once for the sessions of one [`Source`]: beyond them, its newly
/// dropped names are free at once. A reservation is never pushed out, by anyone: people behind
/// one address (a NAT, a lab of 30) cannot free each other's names by dropping sessions.
pub const MAX_RESERVED_PER_SOURCE: usize = 64;
/// Random bytes in a token: 128 bits, written as 32 lowercase hex digits.
const TOKEN_BYTES: usize = 16;

/// The SHA-256 of a token: what the server keeps of it.
#[derive(Clone, Copy)]
pub struct Digest([u8; 32]);

impl Digest {
    /// The digest of `token` (whatever a client sent: only our own tokens ever match).
    pub fn of(token: &str) -> Digest {
        Digest(Sha256::digest(token.as_bytes()).into())
    }

    /// Equal, in a time that does not depend on where they differ.
    pub fn matches(&self, other: &Digest) -> bool {
        self.0.ct_eq(&other.0).into()
    }

    /// 64 lowercase hex digits, as the log keeps it.
    pub fn hex(&self) -> String {
        hex(&self.0)
    }

    /// Read back from the log.
    fn from_hex(text: &str) -> Option<Digest> {
        if text.len() != 64 || !text.is_ascii() {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(text.as_bytes().chunks(2)) {
            *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
        }
        Some(Digest(bytes))
    }
}

/// A new session's token, from the OS's generator, and its digest; None when the generator
/// fails (the session then cannot resume).
pub fn new_token() -> Option<(String, Digest)> {
    let mut bytes = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut bytes).ok()?;
    let token = hex(&bytes);
    let digest = Digest::of(&token);
    Some((token, digest))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A client's session: the digest of its token, and the token itself until its welcome gives it.
pub struct Resumable {
    pub digest: Digest,
    /// The token, for the next welcome only (then forgotten).
    pub reveal: Option<Secret>,
}

/// A line of the log about sessions: one began (or was renamed), dropped, or ended.
#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SessionLine {
    /// The session of this token's digest has (from now on) this name.
    Session { name: String, token_sha256: String },
    /// Its connection dropped: its name is reserved for it until then.
    SessionReserved {
        token_sha256: String,
        until: DateTime<FixedOffset>,
    },
    /// It ended (a quit, or its reservation ran out or was pushed out): its name is free.
    SessionEnd { token_sha256: String },
}

impl SessionLine {
    /// The line for the log, with its newline.
    pub fn to_json_line(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(self).expect("strings always serialize");
        line.push(b'\n');
        line
    }
}

/// A session a log leaves open: its name, its digest, and until when its name is reserved
/// (None when it was connected when the server stopped).
pub type OpenSession = (String, Digest, Option<DateTime<FixedOffset>>);

/// The sessions a log leaves open (begun, not ended), read line by line.
#[derive(Default)]
pub struct OpenSessions {
    /// By digest: in which order each was last named, its name, and its reservation's end.
    open: HashMap<String, (u64, String, Option<DateTime<FixedOffset>>)>,
    lines: u64,
}

impl OpenSessions {
    /// Takes a log line if it is about sessions; says whether it was.
    pub fn read(&mut self, line: &[u8]) -> bool {
        let Ok(line) = serde_json::from_slice::<SessionLine>(line) else {
            return false;
        };
        self.lines += 1;
        match line {
            SessionLine::Session { name, token_sha256 } => {
                if self.open.len() < MAX_RESERVED || self.open.contains_key(&token_sha256) {
                    self.open.insert(token_sha256, (self.lines, name, None));
                }
            }
            SessionLine::SessionReserved {
                token_sha256,
                until,
            } => {
                if let Some((.., end)) = self.open.get_mut(&token_sha256) {
                    *end = Some(until);
                }
            }
            SessionLine::SessionEnd { token_sha256 } => {
                self.open.remove(&token_sha256);
            }
        }
        true
    }

    /// The open sessions, oldest first; lines that are not ours are left out.
    pub fn into_list(self) -> Vec<OpenSession> {
        let mut open: Vec<(u64, OpenSession)> = self
            .open
            .into_iter()
            .filter_map(|(hex, (order, name, until))| {
                Some((order, (name, Digest::from_hex(&hex)?, until)))
            })
            .collect();
        open.sort_by_key(|(order, _)| *order);
        open.into_iter().map(|(_, session)| session).collect()
    }
}

/// Where a session came from, as far as reservations count: its IPv4 address, or the /64 of its
/// IPv6 one (what one host or one site is usually given). An IPv4-mapped address is its IPv4.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Source(IpAddr);

impl Source {
    pub fn of(ip: IpAddr) -> Source {
        match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Source(IpAddr::V4(v4)),
                None => {
                    let mut segments = v6.segments();
                    segments[4..].fill(0);
                    Source(IpAddr::V6(Ipv6Addr::from(segments)))
                }
            },
            v4 => Source(v4),
        }
    }
}

/// A name kept for the session that dropped it.
pub struct Reserved {
    /// The name as its session had it.
    pub name: String,
    pub digest: Digest,
    /// None for a session restored from the log (the log does not keep addresses).
    source: Option<Source>,
    until: Instant,
}

/// What [`Reservations::reserve`] did.
pub enum Reserve {
    /// The name is kept until then.
    Kept { until: DateTime<FixedOffset> },
    /// Not kept (its source is at its limit, the table is full, or reservations are off): the
    /// name is free at once.
    NotKept,
}

/// The names reserved now, by their key (`name_key`), each until its time runs out; at most
/// [`MAX_RESERVED`] in all, and [`MAX_RESERVED_PER_SOURCE`] for each [`Source`].
pub struct Reservations {
    by_key: HashMap<String, Reserved>,
    /// Each source's reserved keys.
    by_source: HashMap<Source, VecDeque<String>>,
    window: Duration,
    per_source: usize,
    total: usize,
}

impl Reservations {
    /// None reserved yet; each name will be kept for `window`.
    pub fn new(window: Duration) -> Reservations {
        Reservations::with_limits(window, MAX_RESERVED_PER_SOURCE, MAX_RESERVED)
    }

    /// As [`Reservations::new`], with other limits (tests).
    pub fn with_limits(window: Duration, per_source: usize, total: usize) -> Reservations {
        Reservations {
            by_key: HashMap::new(),
            by_source: HashMap::new(),
            window,
            per_source,
            total,
        }
    }

    /// The names of `sessions` (as a log left them open, oldest first), each kept for the time
    /// its reservation had left (never more than `window`), or for `window` from now when it was
    /// connected when the server stopped; a name that is not valid (an edited log), or whose
    /// time is over, is left out.
    pub fn restored(window: Duration, sessions: Vec<OpenSession>) -> Reservations {
        let mut reserved = Reservations::new(window);
        let start = now();
        for (name, digest, until) in sessions {
            let left = until.map_or(window, |until| {
                (until - start).to_std().unwrap_or_default().min(window)
            });
            if let Ok(name) = validate_name(&name)
                && !left.is_zero()
            {
                reserved.keep(name, digest, None, left);
            }
        }
        reserved
    }

    /// Every name kept, with its session and until when (the log is told at a restart).
    pub fn ends(&self) -> Vec<(Digest, DateTime<FixedOffset>)> {
        let (instant, wall) = (Instant::now(), now());
        self.by_key
            .values()
            .map(|kept| {
                let left = kept.until.saturating_duration_since(instant);
                (kept.digest, wall + left)
            })
            .collect()
    }

    /// Keeps `name` for the session of `digest`, which came from `source`, for the window from
    /// now, unless its source is at its limit or the whole table is full: then this name is the
    /// one not kept, and every name kept already stays kept.
    pub fn reserve(&mut self, name: String, digest: Digest, source: Source) -> Reserve {
        let at_limit = self.by_source.get(&source).map_or(0, VecDeque::len) >= self.per_source;
        if self.window.is_zero() || at_limit {
            return Reserve::NotKept;
        }
        match self.keep(name, digest, Some(source), self.window) {
            true => Reserve::Kept {
                until: now() + self.window,
            },
            false => Reserve::NotKept,
        }
    }

    /// Keeps a name for `left` from now, if the table has room and the name is not kept already.
    fn keep(
        &mut self,
        name: String,
        digest: Digest,
        source: Option<Source>,
        left: Duration,
    ) -> bool {
        let key = name_key(&name);
        if self.by_key.len() >= self.total || self.by_key.contains_key(&key) {
            return false;
        }
        if let Some(source) = source {
            self.by_source
                .entry(source)
                .or_default()
                .push_back(key.clone());
        }
        let until = Instant::now() + left;
        let kept = Reserved {
            name,
            digest,
            source,
            until,
        };
        self.by_key.insert(key, kept);
        true
    }

    /// The name kept for a session whose key (`name_key`) is `key`, while it is kept.
    pub fn held(&self, key: &str) -> Option<&str> {
        self.by_key
            .get(key)
            .filter(|kept| kept.until > Instant::now())
            .map(|kept| kept.name.as_str())
    }

    /// The name of this key, given back to the session of `digest` if it is kept for it.
    pub fn claim(&mut self, key: &str, digest: &Digest) -> bool {
        let mine = self.held(key).is_some() && self.by_key[key].digest.matches(digest);
        if mine {
            self.forget(key);
        }
        mine
    }

    /// Forgets the names whose time has run out; returns them.
    pub fn expire(&mut self) -> Vec<Reserved> {
        let now = Instant::now();
        let over: Vec<String> = self
            .by_key
            .iter()
            .filter(|(_, kept)| kept.until <= now)
            .map(|(key, _)| key.clone())
            .collect();
        over.iter().filter_map(|key| self.forget(key)).collect()
    }

    /// Removes a reservation, and its place in its source's list.
    fn forget(&mut self, key: &str) -> Option<Reserved> {
        let kept = self.by_key.remove(key)?;
        if let Some(source) = kept.source
            && let Some(keys) = self.by_source.get_mut(&source)
        {
            keys.retain(|k| k != key);
            if keys.is_empty() {
                self.by_source.remove(&source);
            }
        }
        Some(kept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_128_random_bits_in_lowercase_hex_and_only_their_own_digest_matches() {
        let (token, digest) = new_token().unwrap();
        let (other, _) = new_token().unwrap();
        assert_eq!(token.len(), 32);
        assert!(
            token
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        );
        assert_ne!(token, other);
        assert!(digest.matches(&Digest::of(&token)));
        assert!(!digest.matches(&Digest::of(&other)));
        assert!(!digest.hex().contains(&token));
        assert!(Digest::from_hex(&digest.hex()).unwrap().matches(&digest));
        assert!(Digest::from_hex("zz").is_none());
    }

    #[test]
    fn a_log_leaves_open_the_sessions_begun_and_not_ended() {
        let (a, b) = (Digest::of("a"), Digest::of("b"));
        let mut open = OpenSessions::default();
        for line in [
            SessionLine::Session {
                name: "ana".into(),
                token_sha256: a.hex(),
            },
            SessionLine::Session {
                name: "bia".into(),
                token_sha256: b.hex(),
            },
            SessionLine::SessionEnd {
                token_sha256: b.hex(),
            },
            SessionLine::Session {
                name: "ana_b".into(),
                token_sha256: a.hex(),
            },
        ] {
            assert!(open.read(&line.to_json_line()));
        }
        assert!(!open.read(br#"{"type":"msg","seq":1}"#));
        let list = open.into_list();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].0, "ana_b", "renamed");
        assert!(list[0].1.matches(&a));
    }

    #[test]
    fn a_reserved_name_goes_to_its_digest_alone_until_its_time_runs_out() {
        let (a, b) = (Digest::of("a"), Digest::of("b"));
        let here = Source::of([127, 0, 0, 1].into());
        let mut kept = Reservations::new(Duration::from_secs(60));
        assert!(matches!(
            kept.reserve("Ana".into(), a, here),
            Reserve::Kept { .. }
        ));
        assert_eq!(kept.held("ana"), Some("Ana"));
        assert!(!kept.claim("ana", &b));
        assert!(kept.claim("ana", &a));
        assert!(kept.held("ana").is_none(), "claimed once");

        let mut brief = Reservations::new(Duration::from_nanos(1));
        assert!(matches!(
            brief.reserve("ana".into(), a, here),
            Reserve::Kept { .. }
        ));
        let over = brief.expire();
        assert_eq!(over.len(), 1);
        assert!(brief.held("ana").is_none());
        assert!(matches!(
            Reservations::new(Duration::ZERO).reserve("x".into(), a, here),
            Reserve::NotKept
        ));
    }

    #[test]
    fn one_source_keeps_at_most_its_limit_and_never_pushes_out_anyones_names() {
        let ana = Digest::of("ana");
        let home = Source::of([10, 0, 0, 1].into());
        let attacker = Source::of([10, 0, 0, 66].into());
        let mut kept = Reservations::with_limits(Duration::from_secs(60), 4, 8);
        // A neighbour behind the same address as ana dropped first: kept.
        kept.reserve("ana".into(), ana, home);
        for n in 0..MAX_RESERVED + 10 {
            let digest = Digest::of(&n.to_string());
            kept.reserve(format!("x{n}"), digest, attacker);
        }
        assert_eq!(kept.by_key.len(), 5, "the attacker keeps its limit, 4");
        assert!(
            kept.held(&name_key("x0")).is_some(),
            "its first four stay kept"
        );
        assert!(
            kept.held(&name_key("x4")).is_none(),
            "beyond its limit: not kept"
        );
        // The same address as ana, at its limit, cannot push ana's name out either.
        for n in 0..10 {
            kept.reserve(format!("h{n}"), Digest::of("h"), home);
        }
        assert_eq!(kept.held("ana"), Some("ana"), "never pushed out");
        assert!(kept.held(&name_key("h2")).is_some() && kept.held(&name_key("h3")).is_none());
        // A full table keeps what it has: the newcomer is the one not kept.
        let other = Source::of([10, 1, 0, 1].into());
        assert!(matches!(
            kept.reserve("z".into(), Digest::of("z"), other),
            Reserve::NotKept
        ));
        assert_eq!(kept.by_key.len(), 8);
        assert!(kept.claim("ana", &ana));
        assert_eq!(
            kept.by_source[&home].len(),
            3,
            "claimed: its source forgets it"
        );
    }

    #[test]
    fn a_source_is_an_ipv4_address_or_an_ipv6_64() {
        let ip = |text: &str| Source::of(text.parse().unwrap());
        assert_eq!(ip("2001:db8:1:2::1"), ip("2001:db8:1:2:ffff::9"));
        assert_ne!(ip("2001:db8:1:2::1"), ip("2001:db8:1:3::1"));
        assert_eq!(ip("::ffff:192.0.2.7"), ip("192.0.2.7"));
        assert_ne!(ip("192.0.2.7"), ip("192.0.2.8"));
    }

    #[test]
    fn a_restart_keeps_a_reserved_name_only_for_the_time_it_had_left() {
        let window = Duration::from_secs(300);
        let line = |name: &str, until: Option<i64>| {
            let digest = Digest::of(name);
            let mut lines = SessionLine::Session {
                name: name.into(),
                token_sha256: digest.hex(),
            }
            .to_json_line();
            if let Some(secs) = until {
                let until = now() + chrono::Duration::seconds(secs);
                let token_sha256 = digest.hex();
                lines.extend(
                    SessionLine::SessionReserved {
                        token_sha256,
                        until,
                    }
                    .to_json_line(),
                );
            }
            lines
        };
        let mut open = OpenSessions::default();
        let log = [
            line("over", Some(-1)),
            line("left", Some(30)),
            line("live", None),
            line("odd", Some(10_000)),
        ]
        .concat();
        for line in log.split_inclusive(|&b| b == b'\n') {
            assert!(open.read(line));
        }
        let kept = Reservations::restored(window, open.into_list());
        assert!(
            kept.held("over").is_none(),
            "its time ran out while the server was down"
        );
        let left = |key: &str| kept.by_key[key].until - Instant::now();
        assert!(
            left("left") <= Duration::from_secs(30),
            "{:?}",
            left("left")
        );
        assert!(left("left") > Duration::from_secs(20));
        assert!(
            left("live") > Duration::from_secs(290),
            "connected at the stop: a window"
        );
        assert!(left("odd") <= window, "never more than the window");
        assert_eq!(kept.ends().len(), 3);
    }
}
