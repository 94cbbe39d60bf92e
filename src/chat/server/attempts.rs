//! Password tries, per source address: each address's checks are taken one after another, the
//! first at once and each next one after a pause that doubles with every failure from that
//! address (0.5 s, 1 s, 2 s … up to 10 s), so one address gets at most 10 tries in any minute,
//! and 1,000 tries take hours, however many connections it opens at once. The pause is waited
//! out by the connection's own thread, never the hub's. The table is bounded in size, always.
//!
//! Plain data behind one mutex, with the time given by the caller, so it is tested without a
//! clock. Imports nothing of the server.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The pause after an address's first failure; it doubles with each further failure.
pub const FIRST_DELAY: Duration = Duration::from_millis(500);
/// The longest pause between two tries from one address: with it, at most 10 tries in any
/// minute (0, 0.5, 1.5, 3.5, 7.5, 15.5, 25.5, 35.5, 45.5, 55.5 s), then 6 a minute.
pub const DELAY_CAP_FACTOR: u32 = 20;
/// Tries from one address waiting for their turn at once; more are refused unchecked.
pub const MAX_WAITING: u32 = 8;
/// Addresses remembered; when full, the one heard from longest ago (with no tries in line) is
/// forgotten; when every one has tries in line, a new address is refused unchecked.
pub const MAX_ADDRESSES: usize = 4096;
/// An address not heard from for this long starts afresh.
pub const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);

/// What one address has done.
#[derive(Debug, Clone, Copy)]
struct Record {
    /// Wrong passwords so far.
    failures: u32,
    /// Tries reserved and not checked yet.
    waiting: u32,
    /// When the next try may be checked.
    next_check: Instant,
    /// When the address was last heard from.
    seen: Instant,
}

/// A try's place in line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// Check the password at this time (now or later: wait until then first).
    At(Instant),
    /// Too many tries from this address are waiting already: refused without a check; the
    /// address's next free turn is this far off.
    Busy(Duration),
    /// The table is full of addresses with tries in line: a new address is refused unchecked.
    Full,
}

/// Every address's failures, bounded.
#[derive(Debug)]
pub struct Attempts {
    first_delay: Duration,
    table: Mutex<HashMap<IpAddr, Record>>,
}

impl Attempts {
    /// Pauses starting at `first_delay` (tests and benchmarks shorten it), capped at
    /// [`DELAY_CAP_FACTOR`] times it.
    pub fn new(first_delay: Duration) -> Attempts {
        Attempts {
            first_delay,
            table: Mutex::new(HashMap::new()),
        }
    }

    /// The pause after `failures` failures (none before the first).
    pub fn delay(&self, failures: u32) -> Duration {
        if failures == 0 {
            return Duration::ZERO;
        }
        let doubled = self
            .first_delay
            .saturating_mul(1u32 << (failures - 1).min(20));
        doubled.min(self.first_delay.saturating_mul(DELAY_CAP_FACTOR))
    }

    /// The least time `tries` wrong tries from one address take, first to last check.
    #[cfg(test)]
    pub fn minimum_time(&self, tries: u32) -> Duration {
        (1..tries).map(|failures| self.delay(failures)).sum()
    }

    /// Reserves a try for `ip` at `now`: when it may be checked. Tries waiting count as failures
    /// for the pause that follows them, so connections opened at once wait in line.
    pub fn reserve(&self, ip: IpAddr, now: Instant) -> Turn {
        let mut table = self.lock();
        let key = key(ip);
        if !table.contains_key(&key) && table.len() >= MAX_ADDRESSES {
            forget_some(&mut table, now);
            if table.len() >= MAX_ADDRESSES {
                // Every address has tries in line: none may be forgotten.
                return Turn::Full;
            }
        }
        let record = table.entry(key).or_insert(Record {
            failures: 0,
            waiting: 0,
            next_check: now,
            seen: now,
        });
        if now.duration_since(record.seen) > FORGET_AFTER && record.waiting == 0 {
            record.failures = 0;
            record.next_check = now;
        }
        record.seen = now;
        if record.waiting >= MAX_WAITING {
            return Turn::Busy(record.next_check.saturating_duration_since(now));
        }
        record.waiting += 1;
        let at = record.next_check.max(now);
        record.next_check = at + self.delay(record.failures + record.waiting);
        Turn::At(at)
    }

    /// The try reserved for `ip` was checked: a right password forgets the address's failures
    /// (but not its other tries still in line: behind a NAT, a member's login must not let a
    /// guesser queue more), a wrong one counts. Returns the failures from the address so far.
    pub fn checked(&self, ip: IpAddr, right: bool, now: Instant) -> u32 {
        let mut table = self.lock();
        let key = key(ip);
        let Some(record) = table.get_mut(&key) else {
            return u32::from(!right);
        };
        record.waiting = record.waiting.saturating_sub(1);
        if right {
            record.failures = 0;
            if record.waiting == 0 {
                table.remove(&key);
            }
            return 0;
        }
        record.failures = record.failures.saturating_add(1);
        record.seen = now;
        record.failures
    }

    /// Addresses remembered now.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Record>> {
        self.table
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

/// The address a try is counted against: an IPv4 address (an IPv4-mapped IPv6 one too), or an
/// IPv6 address's /64, which one machine usually holds whole.
pub(super) fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
    }
}

/// Makes room in a full table: addresses long forgotten go; if none, the one heard from
/// longest ago (without tries waiting).
fn forget_some(table: &mut HashMap<IpAddr, Record>, now: Instant) {
    table.retain(|_, r| r.waiting > 0 || now.duration_since(r.seen) <= FORGET_AFTER);
    if table.len() < MAX_ADDRESSES {
        return;
    }
    let oldest = table
        .iter()
        .filter(|(_, r)| r.waiting == 0)
        .min_by_key(|(_, r)| r.seen)
        .map(|(ip, _)| *ip);
    if let Some(ip) = oldest {
        table.remove(&ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    fn at(turn: Turn) -> Instant {
        match turn {
            Turn::At(at) => at,
            Turn::Busy(_) | Turn::Full => panic!("refused: {turn:?}"),
        }
    }

    /// `n` wrong tries from `ip`, one after another, each as soon as allowed; their check times.
    fn hammer(attempts: &Attempts, ip: IpAddr, start: Instant, n: usize) -> Vec<Instant> {
        let mut now = start;
        (0..n)
            .map(|_| {
                now = at(attempts.reserve(ip, now));
                attempts.checked(ip, false, now);
                now
            })
            .collect()
    }

    #[test]
    fn the_pause_doubles_with_each_failure_up_to_its_cap() {
        let attempts = Attempts::new(FIRST_DELAY);
        let start = Instant::now();
        let times = hammer(&attempts, A, start, 8);
        let gaps: Vec<f64> = times
            .windows(2)
            .map(|w| (w[1] - w[0]).as_secs_f64())
            .collect();
        assert_eq!(gaps, [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]);
    }

    #[test]
    fn at_most_ten_tries_in_a_minute_and_a_thousand_take_hours() {
        let attempts = Attempts::new(FIRST_DELAY);
        let start = Instant::now();
        let times = hammer(&attempts, A, start, 1000);
        let first_minute = times
            .iter()
            .filter(|t| t.duration_since(start) < Duration::from_secs(60))
            .count();
        assert_eq!(first_minute, 10);
        let all = times[999] - times[0];
        assert_eq!(all, attempts.minimum_time(1000));
        assert!(all >= Duration::from_secs(9955), "{all:?}");
    }

    #[test]
    fn tries_sent_at_once_wait_in_line_and_a_ninth_is_refused() {
        let attempts = Attempts::new(FIRST_DELAY);
        let now = Instant::now();
        let turns: Vec<Instant> = (0..MAX_WAITING)
            .map(|_| at(attempts.reserve(A, now)))
            .collect();
        assert_eq!(turns[0], now);
        assert_eq!(turns[1] - now, Duration::from_millis(500));
        assert_eq!(turns[2] - now, Duration::from_millis(1500));
        assert!(matches!(attempts.reserve(A, now), Turn::Busy(_)));
        // Another address is not held up by it.
        assert_eq!(at(attempts.reserve(B, now)), now);
    }

    #[test]
    fn the_right_password_clears_the_address() {
        let attempts = Attempts::new(FIRST_DELAY);
        let now = Instant::now();
        hammer(&attempts, A, now, 3);
        let later = now + Duration::from_secs(60);
        attempts.reserve(A, later);
        assert_eq!(attempts.checked(A, true, later), 0);
        assert_eq!(at(attempts.reserve(A, later)), later);
    }

    #[test]
    fn a_right_password_keeps_the_tries_still_waiting_from_its_address() {
        // Behind one NAT: a guesser has eight tries in line, and a member logs in meanwhile.
        let attempts = Attempts::new(FIRST_DELAY);
        let now = Instant::now();
        for _ in 0..MAX_WAITING {
            at(attempts.reserve(A, now));
        }
        assert_eq!(attempts.checked(A, true, now), 0);
        // Its try is done: one place in line is free again, and only one.
        at(attempts.reserve(A, now));
        assert!(matches!(attempts.reserve(A, now), Turn::Busy(_)));
    }

    #[test]
    fn an_ipv6_machine_counts_as_its_slash_64_and_a_mapped_ipv4_as_itself() {
        let one: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let two: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        assert_eq!(key(one), key(two));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(key(mapped), A);
    }

    #[test]
    fn a_table_full_of_tries_in_line_refuses_new_addresses() {
        let attempts = Attempts::new(FIRST_DELAY);
        let now = Instant::now();
        for n in 0..MAX_ADDRESSES as u32 {
            at(attempts.reserve(IpAddr::V4(n.into()), now));
        }
        let newcomer: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(attempts.reserve(newcomer, now), Turn::Full);
        assert_eq!(attempts.len(), MAX_ADDRESSES);
        // One known already still gets its turn.
        let known = IpAddr::V4(0.into());
        assert!(matches!(attempts.reserve(known, now), Turn::At(_)));
    }

    #[test]
    fn the_table_stays_bounded() {
        let attempts = Attempts::new(FIRST_DELAY);
        let now = Instant::now();
        for n in 0..(MAX_ADDRESSES as u32 + 100) {
            let ip = IpAddr::V4(n.into());
            attempts.reserve(ip, now);
            attempts.checked(ip, false, now);
        }
        assert_eq!(attempts.len(), MAX_ADDRESSES);
    }
}
