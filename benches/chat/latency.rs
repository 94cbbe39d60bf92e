//! The latency summary of a paced run: percentiles of the send-to-delivery times.

use serde::Serialize;

use crate::report::Decimals;

/// Percentiles of the latency samples, in milliseconds (null when there was no sample).
#[derive(Debug, Serialize)]
pub struct Latency {
    pub count: usize,
    pub p50_ms: Decimals<4>,
    pub p90_ms: Decimals<4>,
    pub p99_ms: Decimals<4>,
    pub p999_ms: Decimals<4>,
    pub max_ms: Decimals<4>,
}

impl Latency {
    /// Summarises `samples` (nanoseconds), sorting them.
    pub fn of(samples: &mut [u64]) -> Latency {
        samples.sort_unstable();
        let sorted = &*samples;
        Latency {
            count: sorted.len(),
            p50_ms: Decimals(percentile(sorted, 50.0)),
            p90_ms: Decimals(percentile(sorted, 90.0)),
            p99_ms: Decimals(percentile(sorted, 99.0)),
            p999_ms: Decimals(percentile(sorted, 99.9)),
            max_ms: Decimals(sorted.last().map(|&v| v as f64 / 1e6).unwrap_or(f64::NAN)),
        }
    }
}

/// The `p`th percentile of `sorted` nanoseconds (nearest rank), in milliseconds.
fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)] as f64 / 1e6
}
