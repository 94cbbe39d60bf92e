//! What the processes use: the server's memory, threads, CPU time and descriptors from
//! `/proc/PID`, the generator's own CPU time and context switches, and its descriptor limit.

use serde::Serialize;

/// The server's memory and threads, from `/proc/PID/status`.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct ServerState {
    /// VmRSS: resident memory now.
    pub rss_kib: u64,
    /// VmHWM: the peak of resident memory.
    pub hwm_kib: u64,
    pub threads: u64,
}

/// The server's memory and threads now; `None` when it cannot be read (no such process).
pub fn server_state(pid: u32) -> Option<ServerState> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> u64 {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Some(ServerState {
        rss_kib: field("VmRSS:"),
        hwm_kib: field("VmHWM:"),
        threads: field("Threads:"),
    })
}

/// The server's CPU time so far (user and system), in seconds.
pub fn server_cpu_secs(pid: u32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    let ticks = rustix::param::clock_ticks_per_second() as f64;
    Some((utime + stime) / ticks)
}

/// How many descriptors the server has open.
pub fn server_fds(pid: u32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

/// What this generator has used so far. Over a phase, it tells whether the generator or the
/// server set the pace.
#[derive(Clone, Copy)]
pub struct OwnUsage {
    /// CPU seconds, user and system.
    pub cpu_s: f64,
    /// Times it waited for the network (voluntary context switches).
    pub waits: i64,
    /// Times the kernel put another thread on its core (involuntary context switches).
    pub preempted: i64,
}

impl OwnUsage {
    /// What was used from the reading `before` to this one.
    pub fn since(self, before: OwnUsage) -> OwnUsage {
        OwnUsage {
            cpu_s: self.cpu_s - before.cpu_s,
            waits: self.waits - before.waits,
            preempted: self.preempted - before.preempted,
        }
    }
}

/// This generator's usage so far (NaN CPU time when the kernel will not say).
pub fn own_usage() -> OwnUsage {
    // SAFETY: rusage is plain integers, valid as zeroes; getrusage only writes the struct passed.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return OwnUsage {
            cpu_s: f64::NAN,
            waits: 0,
            preempted: 0,
        };
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    OwnUsage {
        cpu_s: secs(usage.ru_utime) + secs(usage.ru_stime),
        waits: usage.ru_nvcsw,
        preempted: usage.ru_nivcsw,
    }
}

/// Raises this process's soft limit on open descriptors to the hard limit (10,000 idle clients
/// need more than the usual 1,024).
pub fn raise_nofile() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    // None is unlimited.
    let below_hard = match (limit.current, limit.maximum) {
        (Some(soft), Some(hard)) => soft < hard,
        (Some(_), None) => true,
        (None, _) => false,
    };
    if below_hard {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        // Best effort: with the usual limit the run still works, on fewer clients.
        let _ = setrlimit(Resource::Nofile, raised);
    }
}
