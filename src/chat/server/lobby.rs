//! Connections at a password room's door, or in their TLS handshake, each of which holds a
//! thread: at most [`MAX_PER_ADDRESS`] from one address at the prompt (an IPv4 address, or an
//! IPv6 /64), and at most [`MAX_AT_DOOR`] in all (at the prompt, or waiting for their turn to be
//! checked). A connection beyond either is refused at once by the accept thread, without a
//! thread of its own. A [`Place`] is given back when dropped. TLS handshakes take milliseconds,
//! so a class behind one address connecting at once may wait in line for a place
//! ([`Lobby::enter_or_wait`]): at most [`MAX_WAITING_PER_ADDRESS`] from one address and
//! [`MAX_WAITING`] in all, each without a thread; a place given back goes to the next in line
//! from its address.
//!
//! Plain data behind one mutex. Imports only `attempts` (an address's key).

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use super::attempts::key;

/// Connections from one address waiting at the prompt (for their password line) at once.
pub const MAX_PER_ADDRESS: usize = 8;
/// Connections at the door at once, from every address: at the prompt, or with their password
/// waiting for its turn.
pub const MAX_AT_DOOR: usize = 256;

/// Connections from one address waiting in line for a place (without a thread), beyond those
/// at the prompt.
pub const MAX_WAITING_PER_ADDRESS: usize = 56;
/// Connections waiting in line for a place, from every address.
pub const MAX_WAITING: usize = 256;

/// What a connection waiting in line does once it has a place (starts its thread).
pub type Waiter = Box<dyn FnOnce(Place) + Send>;

/// Where a connection that may wait in line went.
pub enum Entry {
    /// It has a place now: its waiter, given back, is for the caller to run with it.
    In(Place, Waiter),
    /// In line: its waiter runs when a place from its address is given back.
    Waiting,
}

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
#[derive(Default)]
pub struct Lobby {
    counts: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    /// At the prompt, per address key.
    prompted: HashMap<IpAddr, usize>,
    /// At the door in all.
    total: usize,
    /// Waiting in line for a place, per address key, first come first.
    waiting: HashMap<IpAddr, VecDeque<Waiter>>,
    /// Waiting in line in all.
    waiting_total: usize,
}

impl std::fmt::Debug for Lobby {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let counts = self.lock();
        f.debug_struct("Lobby")
            .field("total", &counts.total)
            .field("waiting", &counts.waiting_total)
            .finish()
    }
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
        self.take(&mut self.lock(), key)
    }

    /// A place for a connection from `ip`, or, when its address has [`MAX_PER_ADDRESS`] at the
    /// prompt already, a place in line (its `waiter` runs once a place is given back to that
    /// address); or why there is neither (then `waiter` is dropped, unrun). Looked at and taken
    /// under one lock: a connection waits only while its address's places are all taken, so
    /// one of them given back always starts it.
    pub fn enter_or_wait(self: &Arc<Self>, ip: IpAddr, waiter: Waiter) -> Result<Entry, Crowded> {
        let key = key(ip);
        let mut counts = self.lock();
        match self.take(&mut counts, key) {
            Ok(place) => Ok(Entry::In(place, waiter)),
            Err(Crowded::Door) => Err(Crowded::Door),
            Err(Crowded::Address) if counts.waiting_total >= MAX_WAITING => Err(Crowded::Door),
            Err(Crowded::Address) => {
                let line = counts.waiting.entry(key).or_default();
                if line.len() >= MAX_WAITING_PER_ADDRESS {
                    return Err(Crowded::Address);
                }
                line.push_back(waiter);
                counts.waiting_total += 1;
                Ok(Entry::Waiting)
            }
        }
    }

    /// A place at the prompt for `key`'s address, counted in `counts`, or why there is none.
    fn take(self: &Arc<Self>, counts: &mut Counts, key: IpAddr) -> Result<Place, Crowded> {
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
    /// The next connection in line from `key`'s address, taken out of the line.
    fn next_waiting(&mut self, key: IpAddr) -> Option<Waiter> {
        let line = self.waiting.get_mut(&key)?;
        let next = line.pop_front();
        if line.is_empty() {
            self.waiting.remove(&key);
        }
        self.waiting_total -= usize::from(next.is_some());
        next
    }

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

impl Place {
    /// Gives the place to its address's next in line (the counts stay), or back to the lobby.
    fn hand_over(&mut self) -> Option<(Waiter, Place)> {
        let mut counts = self.lobby.lock();
        if self.at_prompt
            && let Some(waiter) = counts.next_waiting(self.key)
        {
            let place = Place {
                lobby: Arc::clone(&self.lobby),
                key: self.key,
                at_prompt: true,
            };
            return Some((waiter, place));
        }
        if self.at_prompt {
            counts.leave_prompt(self.key);
        }
        counts.total = counts.total.saturating_sub(1);
        None
    }
}

thread_local! {
    /// While a thread runs waiters (a place given back starts the next in line), the places
    /// given back meanwhile go in here, for that same loop: one waiter whose start fails (its
    /// place dropped at once) never nests the next one's on the stack.
    static HANDED_OVER: RefCell<Option<VecDeque<(Waiter, Place)>>> = const { RefCell::new(None) };
}

impl Drop for Place {
    fn drop(&mut self) {
        let Some(next) = self.hand_over() else {
            return;
        };
        match HANDED_OVER.try_with(|queue| queue.borrow().is_some()) {
            Ok(true) => {
                HANDED_OVER.with(|queue| queue.borrow_mut().as_mut().map(|q| q.push_back(next)));
                return;
            }
            Ok(false) => {}
            // A thread being torn down has none: the waiter runs at once.
            Err(_) => {
                let (waiter, place) = next;
                return waiter(place);
            }
        }
        let mut next = next;
        HANDED_OVER.with(|queue| *queue.borrow_mut() = Some(VecDeque::new()));
        loop {
            let (waiter, place) = next;
            waiter(place);
            match HANDED_OVER
                .with(|queue| queue.borrow_mut().as_mut().and_then(VecDeque::pop_front))
            {
                Some(more) => next = more,
                None => break,
            }
        }
        HANDED_OVER.with(|queue| *queue.borrow_mut() = None);
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

    #[test]
    fn beyond_its_eight_an_address_waits_in_line_and_a_place_given_back_starts_the_next() {
        use std::sync::mpsc;
        let lobby = Arc::new(Lobby::default());
        let (started, starts) = mpsc::channel();
        let waiter = |n: usize| -> Waiter {
            let started = started.clone();
            Box::new(move |place| started.send((n, place)).unwrap())
        };
        let mut places: Vec<Place> = (0..MAX_PER_ADDRESS)
            .map(|n| match lobby.enter_or_wait(A, waiter(n)) {
                Ok(Entry::In(place, _)) => place,
                _ => panic!("a place"),
            })
            .collect();
        for n in 0..MAX_WAITING_PER_ADDRESS {
            assert!(matches!(
                lobby.enter_or_wait(A, waiter(n)),
                Ok(Entry::Waiting)
            ));
        }
        assert!(matches!(
            lobby.enter_or_wait(A, waiter(99)),
            Err(Crowded::Address)
        ));
        // Another address has its own places.
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        let Ok(Entry::In(elsewhere, _)) = lobby.enter_or_wait(other, waiter(0)) else {
            panic!("a place for another address");
        };
        // A place given back goes to the first in line, the counts unchanged.
        drop(places.pop());
        let (first, place) = starts.try_recv().expect("the first in line starts");
        assert_eq!(first, 0);
        assert_eq!(lobby.counts(A), (MAX_PER_ADDRESS + 1, MAX_PER_ADDRESS));
        // One that starts and gives its place back at once (its start failed) hands it on
        // without nesting: the next runs after it, on the same thread.
        drop(place);
        let (second, place) = starts.try_recv().expect("the next starts");
        assert_eq!(second, 1);
        // The rest in line hold the channel that holds their places: let them go first.
        lobby.lock().waiting.clear();
        drop((place, places, elsewhere, started, starts));
        assert_eq!(lobby.counts(A), (0, 0));
    }
}
