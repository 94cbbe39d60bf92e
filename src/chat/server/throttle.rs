//! Flood control: the rate limit a client's lines are read at (`--rate-limit`), and the token
//! bucket per client that holds it. The reader takes a token for every line it hands the hub;
//! without one it sleeps instead of reading, so the flooder's own TCP window closes and its
//! kernel slows it down. Nothing is dropped, and the hub never sees the flood.

use std::time::{Duration, Instant};

/// The rate limit unless one is given: a person typing never reaches it.
pub const DEFAULT_RATE_LIMIT: RateLimit = RateLimit::Bucket {
    per_second: 10.0,
    burst: 20,
};

/// The slowest rate `--rate-limit` takes: a line every 100 s. Slower is no rate a chat needs, and
/// the wait for a token must stay a time the reader can sleep.
pub const MIN_RATE: f64 = 0.01;
/// The fastest rate `--rate-limit` takes (its default burst, twice the rate, still counts in
/// 32 bits); `off` is for faster.
pub const MAX_RATE: f64 = 1e9;

/// How fast one client's lines are read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RateLimit {
    /// Read as fast as the client sends (benchmarks).
    Off,
    /// A token bucket: `burst` lines at once, then `per_second` lines a second.
    Bucket { per_second: f64, burst: u32 },
}

impl RateLimit {
    /// Reads `off`, `RATE/s` or `RATE/s,burst=N` (the burst defaults to twice the rate, at
    /// least 1).
    pub fn parse(text: &str) -> Result<RateLimit, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("off") {
            return Ok(RateLimit::Off);
        }
        let usage = || format!("'{text}' is not a rate limit: write off, 10/s or 50/s,burst=100");
        let (rate, burst) = match text.split_once(',') {
            Some((rate, burst)) => (rate.trim(), Some(burst.trim())),
            None => (text, None),
        };
        let per_second: f64 = rate
            .strip_suffix("/s")
            .and_then(|n| n.trim().parse().ok())
            .filter(|n: &f64| n.is_finite())
            .ok_or_else(usage)?;
        if !(MIN_RATE..=MAX_RATE).contains(&per_second) {
            return Err(format!(
                "the rate must be from {MIN_RATE}/s (a line every {} s) to {MAX_RATE:.0}/s, or off",
                1.0 / MIN_RATE
            ));
        }
        let burst = match burst {
            Some(burst) => burst
                .strip_prefix("burst=")
                .and_then(|n| n.trim().parse::<u32>().ok())
                .filter(|&n| n >= 1)
                .ok_or_else(usage)?,
            None => (per_second * 2.0).ceil().clamp(1.0, f64::from(u32::MAX)) as u32,
        };
        Ok(RateLimit::Bucket { per_second, burst })
    }

    /// The client's bucket, full; None when the limit is off.
    pub fn bucket(self, now: Instant) -> Option<TokenBucket> {
        match self {
            RateLimit::Off => None,
            RateLimit::Bucket { per_second, burst } => {
                Some(TokenBucket::new(per_second, burst, now))
            }
        }
    }
}

/// `burst` lines at once, then `per_second` lines a second.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    per_second: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(per_second: f64, burst: u32, now: Instant) -> TokenBucket {
        TokenBucket {
            per_second,
            burst: f64::from(burst),
            tokens: f64::from(burst),
            last: now,
        }
    }

    /// Takes one token, or says how long until there is one.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            // The rate is checked when parsed; a wait too long for a Duration is a very long one.
            let wait = (1.0 - self.tokens) / self.per_second;
            Err(Duration::try_from_secs_f64(wait).unwrap_or(Duration::MAX))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_parse() {
        assert_eq!(RateLimit::parse("off"), Ok(RateLimit::Off));
        assert_eq!(
            RateLimit::parse("50/s,burst=100"),
            Ok(RateLimit::Bucket {
                per_second: 50.0,
                burst: 100
            })
        );
        assert_eq!(
            RateLimit::parse("10/s"),
            Ok(RateLimit::Bucket {
                per_second: 10.0,
                burst: 20
            })
        );
        for bad in [
            "",
            "10",
            "0/s",
            "-1/s",
            "10/s,burst=0",
            "10/s,size=3",
            "x/s",
            "NaN/s",
            "inf/s",
            "1e-300/s",
            "0.009/s",
            "1e10/s",
        ] {
            assert!(RateLimit::parse(bad).is_err(), "{bad:?}");
        }
        let err = RateLimit::parse("1e-300/s").unwrap_err();
        assert!(err.contains("from 0.01/s (a line every 100 s)"), "{err}");
        assert!(RateLimit::parse("0.01/s").is_ok());
        assert!(RateLimit::parse("1000000000/s").is_ok());
    }

    #[test]
    fn the_slowest_rate_waits_a_long_time_and_never_panics() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(MIN_RATE, 1, start);
        assert_eq!(bucket.take(start), Ok(()));
        assert_eq!(bucket.take(start), Err(Duration::from_secs(100)));
        // Not a rate the parser gives, but a bucket never panics on it.
        let mut bucket = TokenBucket::new(1e-300, 1, start);
        assert_eq!(bucket.take(start), Ok(()));
        assert_eq!(bucket.take(start), Err(Duration::MAX));
    }

    #[test]
    fn a_burst_then_the_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(10.0, 20, start);
        for _ in 0..20 {
            assert_eq!(bucket.take(start), Ok(()));
        }
        let wait = bucket.take(start).unwrap_err();
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-6, "{wait:?}");
        assert_eq!(bucket.take(start + Duration::from_millis(100)), Ok(()));
        assert!(bucket.take(start + Duration::from_millis(150)).is_err());
        // A long pause refills up to the burst, never beyond.
        let later = start + Duration::from_secs(60);
        for _ in 0..20 {
            assert_eq!(bucket.take(later), Ok(()));
        }
        assert!(bucket.take(later).is_err());
    }
}
