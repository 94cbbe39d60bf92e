//! Connections at a password room's door, each of which holds a thread: at most
//! [`MAX_PER_ADDRESS`] from one address at the prompt (an IPv4 address, or an IPv6 /64), and at
//! most [`MAX_AT_DOOR`] in all (at the prompt, or waiting for their turn to be checked). A
//! connection beyond either is refused at once by the accept thread, without a thread of its
//! own. A [`Place`] is given back when dropped.
//!
//! Plain data behind one mutex. Imports only `attempts` (an address's key).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use super::attempts::key;

/// Connections from one address waiting at the prompt (for their password line) at once.
pub const MAX_PER_ADDRESS: usize = 8;
/// Connections at the door at once, from every address: at the prompt, or with their password
/// waiting for its turn.
pub const MAX_AT_DOOR: usize = 256;

/// Why a connection may not wait at the door.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crowded {
    /// Its address has [`MAX_PER_ADDRESS`] at the prompt already.
    Address,
    /// [`MAX_AT_DOOR`] connections are there already.
    Door,
}

impl Crowded {
    /// The line a refused connection reads (any client can: it has not said what it is yet).
    pub fn line(self) -> String {
        match self {
            Crowded::Address => format!(
                "too many connections from your address are waiting for the password prompt \
                 (at most {MAX_PER_ADDRESS}): try again later"
            ),
            Crowded::Door => format!(
                "too many connections are waiting for the password prompt (at most \
                 {MAX_AT_DOOR}): try again later"
            ),
        }
    }
}

/// The connections at the door.
#[derive(Debug, Default)]
pub struct Lobby {
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    /// At the prompt, per address key.
    prompted: HashMap<IpAddr, usize>,
    /// At the door in all.
    total: usize,
}

/// A connection's place at the door, given back when dropped.
#[derive(Debug)]
pub struct Place {
    lobby: Arc<Lobby>,
    key: IpAddr,
    /// Still waiting for its password line (it counts against its address).
    at_prompt: bool,
}

impl Lobby {
    /// A place at the prompt for a connection from `ip`, or why there is none.
    pub fn enter(self: &Arc<Self>, ip: IpAddr) -> Result<Place, Crowded> {
        let key = key(ip);
        let mut counts = self.lock();
        if counts.total >= MAX_AT_DOOR {
            return Err(Crowded::Door);
        }
        let prompted = counts.prompted.get(&key).copied().unwrap_or(0);
        if prompted >= MAX_PER_ADDRESS {
            return Err(Crowded::Address);
        }
        counts.prompted.insert(key, prompted + 1);
        counts.total += 1;
        Ok(Place {
            lobby: Arc::clone(self),
            key,
            at_prompt: true,
        })
    }

    /// Connections at the door now, and at the prompt from `ip`'s address.
    #[cfg(test)]
    pub fn counts(&self, ip: IpAddr) -> (usize, usize) {
        let counts = self.lock();
        let prompted = counts.prompted.get(&key(ip)).copied().unwrap_or(0);
        (counts.total, prompted)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

impl Counts {
    fn leave_prompt(&mut self, key: IpAddr) {
        if let Some(count) = self.prompted.get_mut(&key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.prompted.remove(&key);
            }
        }
    }
}

impl Place {
    /// Its password line came: it no longer counts against its address at the prompt (its
    /// address's tries waiting are bounded by `attempts`), only against the door's total.
    pub fn answered(&mut self) {
        if std::mem::take(&mut self.at_prompt) {
            self.lobby.lock().leave_prompt(self.key);
        }
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut counts = self.lobby.lock();
        if self.at_prompt {
            counts.leave_prompt(self.key);
        }
        counts.total = counts.total.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));

    #[test]
    fn one_address_gets_eight_places_at_the_prompt_and_one_answered_frees_one() {
        let lobby = Arc::new(Lobby::default());
        let mut places: Vec<Place> = (0..MAX_PER_ADDRESS)
            .map(|_| lobby.enter(A).unwrap())
            .collect();
        assert_eq!(lobby.enter(A).unwrap_err(), Crowded::Address);
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        let elsewhere = lobby.enter(other).unwrap();
        places[0].answered();
        let ninth = lobby.enter(A).unwrap();
        assert_eq!(lobby.counts(A), (MAX_PER_ADDRESS + 2, MAX_PER_ADDRESS));
        drop((places, ninth, elsewhere));
        assert_eq!(lobby.counts(A), (0, 0));
        assert!(lobby.lock().prompted.is_empty());
    }

    #[test]
    fn the_door_holds_at_most_its_total() {
        let lobby = Arc::new(Lobby::default());
        let places: Vec<Place> = (0..MAX_AT_DOOR as u32)
            .map(|n| lobby.enter(IpAddr::V4(n.into())).unwrap())
            .collect();
        let more: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(lobby.enter(more).unwrap_err(), Crowded::Door);
        drop(places);
        assert!(lobby.enter(more).is_ok());
    }
}
