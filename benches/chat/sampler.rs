//! The server's resources all along a run: a thread of the generator's own reads
//! /proc/PID/status every 10 ms for the peaks of memory and threads (and counts the server's
//! descriptors every 100 ms), beside readings at the run's landmarks: idle (before the first
//! connection), steady (the clients connected and settled, before the load) and end.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Serialize;

use crate::usage::{ServerState, server_fds, server_state};

/// How often the server's status is read: a refusal that holds a thread for a second is seen.
const EVERY: Duration = Duration::from_millis(10);
/// Its descriptors are counted every this many samples (a directory of thousands to list).
const FDS_EVERY: u64 = 10;

/// The highest readings of the server seen by the sampler.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Peaks {
    /// VmRSS.
    pub rss_kib: u64,
    pub threads: u64,
    pub fds: usize,
    /// How many times the status was read.
    pub samples: u64,
}

impl Peaks {
    /// Takes a reading into the peaks.
    fn add(&mut self, state: Option<ServerState>, fds: Option<usize>) {
        if let Some(s) = state {
            self.rss_kib = self.rss_kib.max(s.rss_kib);
            self.threads = self.threads.max(s.threads);
            self.samples += 1;
        }
        if let Some(fds) = fds {
            self.fds = self.fds.max(fds);
        }
    }
}

/// The thread that samples a server until it is told to stop.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Peaks>>,
}

impl Sampler {
    /// Starts sampling the server `pid` (without one, nothing is sampled).
    pub fn start(pid: Option<u32>) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = pid.map(|pid| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || sample_until(pid, &stop))
        });
        Sampler { stop, thread }
    }

    /// Stops the sampling (after one last reading) and returns the peaks.
    pub fn finish(self) -> Peaks {
        self.stop.store(true, Ordering::SeqCst);
        self.thread
            .map(|t| t.join().unwrap_or_default())
            .unwrap_or_default()
    }
}

fn sample_until(pid: u32, stop: &AtomicBool) -> Peaks {
    let mut peaks = Peaks::default();
    for k in 0u64.. {
        let stopping = stop.load(Ordering::SeqCst);
        let fds = (k % FDS_EVERY == 0 || stopping)
            .then(|| server_fds(pid))
            .flatten();
        peaks.add(server_state(pid), fds);
        if stopping {
            break;
        }
        std::thread::sleep(EVERY);
    }
    peaks
}

/// The server's resources over a run, for the JSON report.
#[derive(Debug, Serialize)]
pub struct Resources {
    /// Before the first connection.
    pub idle: Option<ServerState>,
    pub idle_fds: Option<usize>,
    /// The clients connected and settled, before the load.
    pub steady: Option<ServerState>,
    pub steady_fds: Option<usize>,
    /// The highest readings from before the first connection to the end.
    pub peak: Peaks,
    /// When the load was over, the clients still connected.
    pub end: Option<ServerState>,
    pub end_fds: Option<usize>,
}

/// Watches a server through a run: [`Watch::start`] before the first connection,
/// [`Watch::steady`] before the load, [`Watch::finish`] after it.
pub struct Watch {
    pid: Option<u32>,
    idle: (Option<ServerState>, Option<usize>),
    steady: (Option<ServerState>, Option<usize>),
    sampler: Sampler,
}

/// The server's state and descriptors now.
fn reading(pid: Option<u32>) -> (Option<ServerState>, Option<usize>) {
    (pid.and_then(server_state), pid.and_then(server_fds))
}

impl Watch {
    /// Reads the idle server and starts sampling it.
    pub fn start(pid: Option<u32>) -> Watch {
        Watch {
            pid,
            idle: reading(pid),
            steady: (None, None),
            sampler: Sampler::start(pid),
        }
    }

    /// Reads the server in its steady state.
    pub fn steady(&mut self) {
        self.steady = reading(self.pid);
    }

    /// Reads the server at the end and stops sampling.
    pub fn finish(self) -> Resources {
        let end = reading(self.pid);
        let mut peak = self.sampler.finish();
        peak.add(end.0, end.1);
        Resources {
            idle: self.idle.0,
            idle_fds: self.idle.1,
            steady: self.steady.0,
            steady_fds: self.steady.1,
            peak,
            end: end.0,
            end_fds: end.1,
        }
    }
}
