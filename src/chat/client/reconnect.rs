//! When to try again after the server is lost, and where: exponential backoff with jitter,
//! bounded in the pause between attempts and, optionally, in the number of attempts; with
//! several servers (several targets, or a name with several addresses), each attempt is a round
//! over all of them, starting with the one after the server lost, and the first round goes at
//! once.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// The pause before the first attempt; each failed attempt doubles it, up to the maximum.
pub const FIRST_DELAY: Duration = Duration::from_millis(500);
/// The longest pause between attempts unless `--reconnect-max` says otherwise.
pub const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(30);
/// Attempts before giving up when input comes from a pipe or file and `--reconnect-attempts` is
/// not given (about three minutes with the default pauses): nobody is there to press Ctrl-C.
pub const DEFAULT_PIPED_ATTEMPTS: u32 = 10;

/// How a client reconnects after losing its server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reconnect {
    /// The longest pause between two attempts.
    pub max_delay: Duration,
    /// Failed attempts in a row after which the client gives up; None: never.
    pub attempts: Option<u32>,
    /// More than one server to try (failover): the first attempt after a loss goes at once, to
    /// the next server, and the backoff starts once every server was tried.
    pub failover: bool,
}

impl Reconnect {
    /// The pause before attempt `attempt` (1 for the first): [`FIRST_DELAY`] doubled for each
    /// earlier attempt, capped at `max_delay`, then scaled by `jitter` (0.0 to 1.0) into its upper
    /// half, so clients that lost the same server do not all come back at the same instant.
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let doublings = attempt.saturating_sub(1).min(20);
        let base = FIRST_DELAY
            .saturating_mul(1 << doublings)
            .min(self.max_delay);
        base.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
    }

    /// The pause before attempt `attempt` (1 for the first after a loss): with failover, none
    /// before the first (the other servers are tried at once), then [`Reconnect::delay`] from
    /// its start; with one server, [`Reconnect::delay`].
    pub fn pause(&self, attempt: u32, jitter: f64) -> Duration {
        match (self.failover, attempt) {
            (true, 0 | 1) => Duration::ZERO,
            (true, attempt) => self.delay(attempt - 1, jitter),
            (false, attempt) => self.delay(attempt, jitter),
        }
    }

    /// True when attempt `attempt` is past the limit.
    pub fn exhausted(&self, attempt: u32) -> bool {
        self.attempts.is_some_and(|limit| attempt > limit)
    }
}

/// The order in which one attempt tries `count` servers: the one after `last` (the server the
/// client was on, by its position) first, round the list, `last` itself at the end (it may be
/// back); from the first without `last` (the first connection, or a server no longer listed).
pub fn rotation(count: usize, last: Option<usize>) -> impl Iterator<Item = usize> {
    let start = last.filter(|&last| last < count).map_or(0, |last| last + 1);
    (0..count).map(move |step| (start + step) % count)
}

/// A random number in 0.0..1.0, for jitter: the standard library's per-process random keys are
/// random enough for spreading retries, and need no dependency.
pub fn jitter() -> f64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(0);
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// A pause as people read it: `0.5 s`, `2.0 s`, `30 s`.
pub fn describe(delay: Duration) -> String {
    let secs = delay.as_secs_f64();
    if secs < 10.0 {
        format!("{secs:.1} s")
    } else {
        format!("{secs:.0} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_the_maximum_and_jitter_stays_in_the_upper_half() {
        let policy = Reconnect {
            max_delay: Duration::from_secs(30),
            attempts: None,
            failover: false,
        };
        let full: Vec<f64> = (1..=8)
            .map(|n| policy.delay(n, 1.0).as_secs_f64())
            .collect();
        assert_eq!(full, [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]);
        assert_eq!(policy.delay(3, 0.0), Duration::from_secs(1));
        assert_eq!(policy.delay(u32::MAX, 1.0), Duration::from_secs(30));
        let short = Reconnect {
            max_delay: Duration::from_millis(100),
            attempts: None,
            failover: false,
        };
        assert_eq!(short.delay(1, 1.0), Duration::from_millis(100));
    }

    #[test]
    fn attempts_are_bounded_only_when_asked() {
        let forever = Reconnect {
            max_delay: DEFAULT_MAX_DELAY,
            attempts: None,
            failover: false,
        };
        assert!(!forever.exhausted(1_000_000));
        let three = Reconnect {
            attempts: Some(3),
            ..forever
        };
        assert!(!three.exhausted(3));
        assert!(three.exhausted(4));
    }

    #[test]
    fn with_failover_the_first_attempt_goes_at_once_and_the_backoff_follows() {
        let one = Reconnect {
            max_delay: Duration::from_secs(30),
            attempts: None,
            failover: false,
        };
        let several = Reconnect {
            failover: true,
            ..one
        };
        let pauses = |policy: &Reconnect| -> Vec<f64> {
            (1..=5)
                .map(|n| policy.pause(n, 1.0).as_secs_f64())
                .collect()
        };
        assert_eq!(pauses(&one), [0.5, 1.0, 2.0, 4.0, 8.0]);
        assert_eq!(pauses(&several), [0.0, 0.5, 1.0, 2.0, 4.0]);
        assert_eq!(several.pause(u32::MAX, 1.0), Duration::from_secs(30));
    }

    #[test]
    fn a_round_starts_after_the_server_lost_and_ends_with_it() {
        let order = |count, last| rotation(count, last).collect::<Vec<_>>();
        assert_eq!(order(3, None), [0, 1, 2], "the first connection: in order");
        assert_eq!(order(3, Some(0)), [1, 2, 0]);
        assert_eq!(order(3, Some(1)), [2, 0, 1]);
        assert_eq!(order(3, Some(2)), [0, 1, 2], "round the list");
        assert_eq!(order(1, Some(0)), [0], "one server: itself again");
        assert_eq!(
            order(2, Some(5)),
            [0, 1],
            "no longer listed: from the first"
        );
        assert_eq!(order(0, None), Vec::<usize>::new());
    }

    #[test]
    fn jitter_is_a_fraction_and_varies() {
        let draws: Vec<f64> = (0..32).map(|_| jitter()).collect();
        assert!(draws.iter().all(|j| (0.0..1.0).contains(j)));
        assert!(draws.iter().any(|&j| j != draws[0]));
    }

    #[test]
    fn pauses_read_naturally() {
        assert_eq!(describe(Duration::from_millis(500)), "0.5 s");
        assert_eq!(describe(Duration::from_secs(2)), "2.0 s");
        assert_eq!(describe(Duration::from_secs(30)), "30 s");
    }
}
