//! Single mode's line: who is being served, who waits, (under `--sync`) whose turn it is, and
//! what the waiting clients typed, kept for their turn within a budget (per client and in all),
//! even for clients that left before it came.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

/// Most lines one waiting client may have kept.
pub const KEPT_LINES: usize = 1000;
/// Most bytes one waiting client may have kept.
pub const KEPT_BYTES_EACH: usize = 64 * 1024;
/// Most bytes all waiting clients, and those that left before their turn, may have kept together.
pub const KEPT_BYTES_TOTAL: usize = 4 * 1024 * 1024;
/// What a kept line counts beyond its text: keeping even an empty one is not free.
pub const KEPT_LINE_COST: usize = 64;

/// Whose turn it is under `--sync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Turn {
    /// The client asks first.
    #[default]
    Client,
    Server,
}

/// What one waiting client typed, kept for its turn.
#[derive(Debug, Default)]
pub struct Kept {
    /// Each line's text, and whether it was an action (`/me`).
    pub lines: Vec<(String, bool)>,
    /// What the lines count against the budgets.
    pub bytes: usize,
    /// Set at the first line not kept: the client was told, and nothing more is kept for it.
    pub full: bool,
}

/// Which budget a line did not fit in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// [`KEPT_LINES`].
    Lines,
    /// [`KEPT_BYTES_EACH`].
    Client,
    /// [`KEPT_BYTES_TOTAL`].
    Total,
}

/// What became of a line offered to be kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keeping {
    /// Kept; `first` when it is the client's first kept line.
    Kept { first: bool },
    /// Not kept, and from now on nothing until the client's turn: it is to be told why.
    Refused(Limit),
    /// Not kept: the client was told already.
    Dropped,
}

/// A client that left before its turn, with what it kept: its lines reach the console when its
/// turn comes, marked so.
#[derive(Debug)]
pub struct Departed {
    pub name: String,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    pub kept: Kept,
}

/// Who is being served and who waits.
#[derive(Debug, Default)]
pub struct Session {
    pub current: Option<u64>,
    /// Waiting clients, first in line first; a client that left with lines kept keeps its place.
    pub queue: VecDeque<u64>,
    /// The clients in `queue` that left before their turn, with what they kept.
    pub left: HashMap<u64, Departed>,
    pub turn: Turn,
    /// When the served client was served, or last said something: `--idle-timeout` counts from
    /// here (waiting in line is not being idle).
    pub heard: Option<Instant>,
    /// What all kept lines count against [`KEPT_BYTES_TOTAL`].
    kept_bytes: usize,
}

impl Session {
    /// The client's place, for `/status`.
    pub fn state_of(&self, id: u64) -> String {
        if self.current == Some(id) {
            return "served".into();
        }
        match self.position(id) {
            Some(position) => format!("queued #{position}"),
            None => "-".into(),
        }
    }

    /// Each waiting client still connected, with its index in the queue and its place in line:
    /// the clients still connected ahead of it, plus one (the kept lines of one that left take
    /// no time when its turn comes).
    pub fn places(&self) -> impl Iterator<Item = (usize, u64, usize)> + '_ {
        self.queue
            .iter()
            .enumerate()
            .filter(|(_, id)| !self.left.contains_key(id))
            .enumerate()
            .map(|(ahead, (index, &id))| (index, id, ahead + 1))
    }

    /// A waiting client's place in line (see [`Session::places`]).
    pub fn position(&self, id: u64) -> Option<usize> {
        self.places()
            .find(|&(_, waiting, _)| waiting == id)
            .map(|(_, _, place)| place)
    }

    /// Keeps a waiting client's line in `kept`, if it fits the client's budgets and everyone's.
    pub fn keep(&mut self, kept: &mut Kept, text: String, action: bool) -> Keeping {
        if kept.full {
            return Keeping::Dropped;
        }
        let cost = text.len() + KEPT_LINE_COST;
        let limit = if kept.lines.len() >= KEPT_LINES {
            Some(Limit::Lines)
        } else if kept.bytes + cost > KEPT_BYTES_EACH {
            Some(Limit::Client)
        } else if self.kept_bytes + cost > KEPT_BYTES_TOTAL {
            Some(Limit::Total)
        } else {
            None
        };
        if let Some(limit) = limit {
            kept.full = true;
            return Keeping::Refused(limit);
        }
        kept.lines.push((text, action));
        kept.bytes += cost;
        self.kept_bytes += cost;
        Keeping::Kept {
            first: kept.lines.len() == 1,
        }
    }

    /// Takes a client's kept lines out of the budget (delivered, or dropped): they count no more.
    pub fn release(&mut self, kept: Kept) -> Vec<(String, bool)> {
        self.kept_bytes = self.kept_bytes.saturating_sub(kept.bytes);
        kept.lines
    }

    /// What all kept lines count now.
    #[cfg(test)]
    pub fn kept_bytes(&self) -> usize {
        self.kept_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_keeps_lines_up_to_its_budget_then_is_refused_once_and_keeps_nothing_more() {
        let mut session = Session::default();
        let mut kept = Kept::default();
        let line = "x".repeat(8000);
        assert_eq!(
            session.keep(&mut kept, line.clone(), false),
            Keeping::Kept { first: true }
        );
        let each = KEPT_BYTES_EACH / (8000 + KEPT_LINE_COST);
        for _ in 1..each {
            assert_eq!(
                session.keep(&mut kept, line.clone(), false),
                Keeping::Kept { first: false }
            );
        }
        assert_eq!(
            session.keep(&mut kept, line.clone(), false),
            Keeping::Refused(Limit::Client)
        );
        // Told once; a short line that would fit is not kept either, so none arrives out of order.
        assert_eq!(
            session.keep(&mut kept, "oi".into(), false),
            Keeping::Dropped
        );
        assert_eq!(kept.lines.len(), each);
        assert_eq!(session.kept_bytes(), each * (8000 + KEPT_LINE_COST));
        assert_eq!(session.release(kept).len(), each);
        assert_eq!(session.kept_bytes(), 0);
    }

    #[test]
    fn all_waiting_clients_together_keep_no_more_than_the_total() {
        let mut session = Session::default();
        let line = "y".repeat(8000);
        let mut clients: Vec<Kept> = Vec::new();
        let mut refused = 0;
        for _ in 0..2 * KEPT_BYTES_TOTAL / KEPT_BYTES_EACH {
            let mut kept = Kept::default();
            while !kept.full {
                let keeping = session.keep(&mut kept, line.clone(), false);
                refused += usize::from(keeping == Keeping::Refused(Limit::Total));
            }
            clients.push(kept);
        }
        assert!(session.kept_bytes() <= KEPT_BYTES_TOTAL);
        assert!(refused > 0, "some clients met the total");
        let counted: usize = clients.iter().map(|k| k.bytes).sum();
        assert_eq!(counted, session.kept_bytes());
        // What is delivered makes room again.
        let first = clients.remove(0);
        let freed = first.bytes;
        session.release(first);
        assert_eq!(session.kept_bytes(), counted - freed);
        let mut newcomer = Kept::default();
        assert_eq!(
            session.keep(&mut newcomer, line, false),
            Keeping::Kept { first: true }
        );
    }

    #[test]
    fn a_line_of_tiny_lines_is_bounded_in_lines_too() {
        let mut session = Session::default();
        let mut kept = Kept::default();
        for _ in 0..KEPT_LINES {
            assert!(matches!(
                session.keep(&mut kept, "a".into(), true),
                Keeping::Kept { .. }
            ));
        }
        assert_eq!(
            session.keep(&mut kept, "a".into(), true),
            Keeping::Refused(Limit::Lines)
        );
    }

    #[test]
    fn a_place_in_line_counts_only_the_clients_still_there() {
        let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let mut session = Session {
            current: Some(1),
            queue: VecDeque::from([2, 3, 4]),
            ..Session::default()
        };
        assert_eq!(session.position(4), Some(3));
        session.left.insert(
            3,
            Departed {
                name: "guest-3".into(),
                peer,
                local: peer,
                kept: Kept::default(),
            },
        );
        assert_eq!(session.position(4), Some(2));
        assert_eq!(session.state_of(4), "queued #2");
        assert_eq!(session.state_of(1), "served");
        assert_eq!(session.position(9), None);
    }
}
