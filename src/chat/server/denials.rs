//! The console's lines about connections turned away at a password room's door, collapsed per
//! source address: at most one line per address per [`WINDOW`]; those held back meanwhile are
//! counted, and said in one line once the window has passed. One address hammering the door
//! cannot flood the console. Bounded: at most [`TRACKED`] addresses are followed at once
//! (beyond, each line is shown).
//!
//! Plain data, with the time given by the caller. Imports only `attempts` (an address's key).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::attempts::key;

/// At most one line per address in this long.
pub const WINDOW: Duration = Duration::from_secs(1);
/// Addresses followed at once.
pub const TRACKED: usize = 1024;

/// The addresses whose denials were shown lately.
#[derive(Debug, Default)]
pub struct Denials {
    seen: HashMap<IpAddr, Seen>,
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    /// When its last line was shown.
    shown: Instant,
    /// Denials since, not shown.
    held: u32,
}

impl Denials {
    /// A connection from `ip` was turned away at `now`: true when its line is shown, false when
    /// it is held back (counted, and said later by [`Denials::due`]).
    pub fn show(&mut self, ip: IpAddr, now: Instant) -> bool {
        let key = key(ip);
        if let Some(seen) = self.seen.get_mut(&key)
            && now.saturating_duration_since(seen.shown) < WINDOW
        {
            seen.held = seen.held.saturating_add(1);
            return false;
        }
        if self.seen.len() >= TRACKED && !self.seen.contains_key(&key) {
            return true;
        }
        // A window passed with denials held: `due` says them first.
        if self.seen.get(&key).is_none_or(|seen| seen.held == 0) {
            self.seen.insert(
                key,
                Seen {
                    shown: now,
                    held: 0,
                },
            );
        }
        true
    }

    /// The addresses whose window has passed, forgotten: those with denials held back, and how
    /// many, to be said in one line each.
    pub fn due(&mut self, now: Instant) -> Vec<(IpAddr, u32)> {
        let mut due = Vec::new();
        self.seen.retain(|ip, seen| {
            if now.saturating_duration_since(seen.shown) < WINDOW {
                return true;
            }
            if seen.held > 0 {
                due.push((*ip, seen.held));
            }
            false
        });
        due.sort();
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn one_line_per_address_per_second_and_the_rest_counted() {
        let mut denials = Denials::default();
        let start = Instant::now();
        let shown = (0..4000u32)
            .filter(|n| denials.show(A, start + Duration::from_micros(u64::from(*n))))
            .count();
        assert_eq!(shown, 1, "4,000 in 4 ms: one line");
        assert!(denials.show(B, start), "another address has its own line");
        assert!(denials.due(start + Duration::from_millis(500)).is_empty());
        let later = start + WINDOW;
        assert_eq!(denials.due(later), [(A, 3999)]);
        assert!(denials.show(A, later), "a new window, a new line");
    }

    #[test]
    fn the_addresses_followed_are_bounded() {
        let mut denials = Denials::default();
        let now = Instant::now();
        for n in 0..(TRACKED as u32 + 10) {
            assert!(denials.show(IpAddr::V4(n.into()), now));
        }
        assert_eq!(denials.seen.len(), TRACKED);
    }
}
