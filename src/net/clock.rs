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
