//! The timeline of a paced run's window: deliveries second by second, and the longest silence.

use std::time::Duration;

use crate::bench::BUCKET;

/// What the 100 ms buckets of a window say.
#[derive(Debug, PartialEq)]
pub struct Timeline {
    /// Deliveries in each second of the window.
    pub per_second: Vec<u64>,
    /// The longest run of buckets without a delivery, in seconds.
    pub longest_silence_s: f64,
    /// Where in the window that run started, in seconds.
    pub longest_silence_from_s: f64,
}

impl Timeline {
    /// Reads the deliveries per bucket (`buckets`, possibly shorter or longer than the window)
    /// over a window of `window`.
    pub fn of(buckets: &[u64], window: Duration) -> Timeline {
        let in_window = (window.as_nanos() / BUCKET.as_nanos()) as usize;
        let mut buckets = buckets.to_vec();
        buckets.resize(in_window.max(buckets.len()), 0);
        let buckets = &buckets[..in_window];
        let (mut longest, mut run, mut longest_from) = (0usize, 0usize, 0usize);
        for (k, &count) in buckets.iter().enumerate() {
            if count == 0 {
                run += 1;
                if run > longest {
                    longest = run;
                    longest_from = k + 1 - run;
                }
            } else {
                run = 0;
            }
        }
        Timeline {
            per_second: buckets.chunks(10).map(|c| c.iter().sum()).collect(),
            longest_silence_s: longest as f64 * BUCKET.as_secs_f64(),
            longest_silence_from_s: longest_from as f64 * BUCKET.as_secs_f64(),
        }
    }
}
