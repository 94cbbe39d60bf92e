//! Time as soquete shows it: the local wall clock with its UTC offset, and durations in
//! milliseconds for reports.

use std::time::Duration;

use chrono::{DateTime, FixedOffset, Local};

/// The local clock, with the local UTC offset, as chat frames and probe reports carry it.
pub fn now() -> DateTime<FixedOffset> {
    Local::now().fixed_offset()
}

/// Milliseconds as a float, rounded to the microsecond, for reports.
pub fn millis(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1e6).round() / 1e3
}

/// A test override: a positive number of milliseconds in the environment variable `var`.
pub fn millis_from_env(var: &str) -> Option<Duration> {
    std::env::var(var)
        .ok()
        .and_then(|ms| ms.trim().parse::<u64>().ok())
        .filter(|&ms| ms > 0)
        .map(Duration::from_millis)
}
