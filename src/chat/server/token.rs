//! Resume tokens: a structured client's secret, which alone lets it take back its session (its
//! name, and what it missed) after its connection is lost. The server hands a token out in the
//! `welcome` and keeps only its SHA-256, in memory and in `--log`; a `hello`'s token is hashed
//! and compared in constant time. While a session's connection is gone, its name stays reserved
//! for it ([`Reservations`]) for a while.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

use crate::chat::protocol::{name_key, validate_name};

/// How long a name stays reserved for its session after the connection drops without a quit.
pub const NAME_RESERVE: Duration = Duration::from_secs(5 * 60);
/// Tests shorten [`NAME_RESERVE`] with this variable (milliseconds); the face reads it.
pub const NAME_RESERVE_ENV: &str = "SOQUETE_NAME_RESERVE_MS";
/// Most names reserved at once: beyond them, a dropped name is free at once.
pub const MAX_RESERVED: usize = 65_536;
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
    pub reveal: Option<String>,
}

/// A line of the log about sessions: one began (or was renamed), or ended.
#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SessionLine {
    /// The session of this token's digest has (from now on) this name.
    Session { name: String, token_sha256: String },
    /// It ended (a quit, or its reservation ran out): its name is free.
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

/// The sessions a log leaves open (begun, not ended), read line by line.
#[derive(Default)]
pub struct OpenSessions {
    /// By digest: in which order each was last named, and its name.
    open: HashMap<String, (u64, String)>,
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
                    self.open.insert(token_sha256, (self.lines, name));
                }
            }
            SessionLine::SessionEnd { token_sha256 } => {
                self.open.remove(&token_sha256);
            }
        }
        true
    }

    /// The open sessions, oldest first, as `(name, digest)`; lines that are not ours are left out.
    pub fn into_list(self) -> Vec<(String, Digest)> {
        let mut open: Vec<(u64, String, Digest)> = self
            .open
            .into_iter()
            .filter_map(|(hex, (order, name))| Some((order, name, Digest::from_hex(&hex)?)))
            .collect();
        open.sort_by_key(|(order, ..)| *order);
        open.into_iter()
            .map(|(_, name, digest)| (name, digest))
            .collect()
    }
}

/// A name kept for the session that dropped it.
pub struct Reserved {
    /// The name as its session had it.
    pub name: String,
    pub digest: Digest,
    until: Instant,
}

/// The names reserved now, by their key (`name_key`), each until its time runs out.
pub struct Reservations {
    by_key: HashMap<String, Reserved>,
    window: Duration,
}

impl Reservations {
    /// None reserved yet; each name will be kept for `window`.
    pub fn new(window: Duration) -> Reservations {
        Reservations {
            by_key: HashMap::new(),
            window,
        }
    }

    /// The names of `sessions` (as a log left them open, oldest first), each kept for `window`
    /// from now; a name that is not valid (an edited log) is left out.
    pub fn restored(window: Duration, sessions: Vec<(String, Digest)>) -> Reservations {
        let mut reserved = Reservations::new(window);
        for (name, digest) in sessions {
            if let Ok(name) = validate_name(&name) {
                reserved.reserve(name, digest);
            }
        }
        reserved
    }

    /// Keeps `name` for the session of `digest`, from now; false when too many are kept
    /// already (the name is then free at once).
    pub fn reserve(&mut self, name: String, digest: Digest) -> bool {
        if self.window.is_zero() || self.by_key.len() >= MAX_RESERVED {
            return false;
        }
        let until = Instant::now() + self.window;
        let kept = Reserved {
            name,
            digest,
            until,
        };
        self.by_key.insert(name_key(&kept.name), kept);
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
            self.by_key.remove(key);
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
        over.iter()
            .filter_map(|key| self.by_key.remove(key))
            .collect()
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
        let mut kept = Reservations::new(Duration::from_secs(60));
        assert!(kept.reserve("Ana".into(), a));
        assert_eq!(kept.held("ana"), Some("Ana"));
        assert!(!kept.claim("ana", &b));
        assert!(kept.claim("ana", &a));
        assert!(kept.held("ana").is_none(), "claimed once");

        let mut brief = Reservations::new(Duration::from_nanos(1));
        assert!(brief.reserve("ana".into(), a));
        let over = brief.expire();
        assert_eq!(over.len(), 1);
        assert!(brief.held("ana").is_none());
        assert!(!Reservations::new(Duration::ZERO).reserve("x".into(), a));
    }
}
