//! Scenario 4, idle clients: `--clients` connections opened at `--connect-rate` per second,
//! which read (and drop) whatever the server sends and never write; the server's memory and
//! threads from /proc once its traffic has settled and `--hold` seconds have passed.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::bench::{Bench, Client, Kind, Role};
use crate::cli::IdleArgs;
use crate::line;
use crate::report::{AsGiven, Decimals, Endings};
use crate::sampler::Sampler;
use crate::usage::{ServerState, server_fds, server_state};

/// How long the connecting may take in all.
const CONNECT_LIMIT: Duration = Duration::from_secs(600);
/// The server's traffic has settled after this long without a byte...
const QUIET: Duration = Duration::from_secs(3);
/// ...or after this long in all.
const SETTLE_LIMIT: Duration = Duration::from_secs(120);

/// The JSON report of an idle run.
#[derive(Debug, Serialize)]
pub struct IdleReport {
    pub kind: Kind,
    pub clients: usize,
    pub connect_rate: AsGiven,
    pub connect_s: Decimals<2>,
    pub settle_s: Decimals<2>,
    pub hold_s: AsGiven,
    pub connect_errors: u64,
    pub first_connect_error: Option<String>,
    pub connected: usize,
    pub open: usize,
    pub open_connected: usize,
    pub greeted: usize,
    pub lines_in: u64,
    pub bytes_in: u64,
    pub closed_reasons: BTreeMap<String, usize>,
    pub byes: BTreeMap<String, usize>,
    pub server_before: Option<ServerState>,
    pub server_steady: Option<ServerState>,
    pub server_fds: Option<usize>,
    pub peak_rss_kib: u64,
    pub peak_threads: u64,
}

/// Runs scenario 4.
pub fn run(args: &IdleArgs) -> Result<IdleReport, String> {
    let server = &args.server;
    let mut b =
        Bench::new(server.addr, server.kind, line::DEFAULT_SIZE).map_err(|e| e.to_string())?;
    b.also.clone_from(&server.also);
    b.tls = server.tls.then(crate::tls::client_config);
    let pid = server.server_pid;
    let server_before = pid.and_then(server_state);
    let sampler = Sampler::start(pid);
    let start = Instant::now();
    b.phase_start = Some(start);
    let mut connect_errors = 0u64;
    let mut first_connect_error = None;
    // Connect at a bounded rate, reading all along.
    while b.clients.len() + (connect_errors as usize) < args.clients {
        let due = (start.elapsed().as_secs_f64() * args.connect_rate) as usize + 1;
        while b.clients.len() + (connect_errors as usize) < due.min(args.clients) {
            if let Err(e) = b.connect(Role::Listener, 0) {
                connect_errors += 1;
                first_connect_error.get_or_insert(e.to_string());
            }
        }
        b.pump(Duration::from_millis(2))
            .map_err(|e| e.to_string())?;
        if start.elapsed() > CONNECT_LIMIT {
            break;
        }
    }
    let connect_s = start.elapsed().as_secs_f64();
    // Wait for the handshakes and for the server's traffic (greetings, join notices) to settle.
    let settle_s = b.settle(QUIET, SETTLE_LIMIT)?;
    // Hold, idle, then measure.
    let hold_until = Instant::now() + Duration::from_secs_f64(args.hold);
    while Instant::now() < hold_until {
        b.pump(Duration::from_millis(50))
            .map_err(|e| e.to_string())?;
    }
    let peaks = sampler.finish();
    let server_steady = pid.and_then(server_state);
    let fds = pid.and_then(server_fds);
    let endings = Endings::of(&b.clients);
    let count = |f: fn(&Client) -> bool| b.clients.iter().filter(|c| f(c)).count();
    Ok(IdleReport {
        kind: server.kind,
        clients: args.clients,
        connect_rate: AsGiven(args.connect_rate),
        connect_s: Decimals(connect_s),
        settle_s: Decimals(settle_s),
        hold_s: AsGiven(args.hold),
        connect_errors,
        first_connect_error,
        connected: count(|c| c.connected),
        open: count(|c| c.open),
        open_connected: count(|c| c.open && c.connected),
        greeted: count(|c| c.greeted),
        lines_in: b.clients.iter().map(|c| c.lines_in).sum(),
        bytes_in: b.clients.iter().map(|c| c.bytes_in).sum(),
        closed_reasons: endings.reasons,
        byes: endings.byes,
        server_before,
        server_steady,
        server_fds: fds,
        peak_rss_kib: peaks.rss_kib,
        peak_threads: peaks.threads,
    })
}
