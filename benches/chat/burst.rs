//! Limits (a), a burst of connections against a full server: `--holders` clients connect first,
//! take the server's places (`--max-clients`), read and stay; then `--clients` connections are
//! opened at once, each reading what it is told and keeping its end open, as an attacker's
//! would, until `--hold` seconds after the last one was opened. The server's memory, threads
//! and descriptors are sampled all along (`sampler.rs`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::bench::{Bench, Kind, Role};
use crate::cli::BurstArgs;
use crate::line;
use crate::report::{AsGiven, Decimals, Endings};
use crate::sampler::{Resources, Watch};
use crate::setup::Crowd;
use crate::tally::Tally;

/// The holders' traffic has settled after this long without a byte...
const QUIET: Duration = Duration::from_secs(1);
/// ...or after this long in all.
const SETTLE_LIMIT: Duration = Duration::from_secs(20);
/// How many connections are opened between two looks at the ones already open.
const BATCH: usize = 64;

/// The JSON report of a burst.
#[derive(Debug, Serialize)]
pub struct BurstReport {
    pub kind: Kind,
    pub holders: usize,
    pub clients: usize,
    pub hold_s: AsGiven,
    pub setup_s: Decimals<3>,
    /// How long opening the burst's connections took.
    pub burst_s: Decimals<3>,
    pub connect_errors: u64,
    pub first_connect_error: Option<String>,
    /// The burst's connections whose handshake completed.
    pub connected: usize,
    /// The burst's connections that got at least one line (soquete: "server full").
    pub told: usize,
    /// The burst's connections the server had not closed by the end.
    pub still_open: usize,
    /// How the others ended (`end of stream`: closed by the server), and how many.
    pub closed_reasons: BTreeMap<String, usize>,
    /// Holders still connected at the end.
    pub holders_open: usize,
    /// Each kind of notice the clients got during the burst, and how many.
    pub notice_kinds: BTreeMap<String, u64>,
    pub resources: Resources,
}

/// Runs limits (a).
pub fn run(args: &BurstArgs) -> Result<BurstReport, String> {
    let server = &args.server;
    let mut b =
        Bench::new(server.addr, server.kind, line::DEFAULT_SIZE).map_err(|e| e.to_string())?;
    let mut watch = Watch::start(server.server_pid);
    let started = Instant::now();
    let holders = Crowd {
        listeners: args.holders,
        ..Crowd::default()
    };
    b.connect_crowd(holders)?;
    b.await_arrival(started)?;
    b.settle(QUIET, SETTLE_LIMIT)?;
    let setup_s = started.elapsed().as_secs_f64();
    watch.steady();
    b.tally = Tally::default();
    let start = Instant::now();
    b.phase_start = Some(start);
    let mut connect_errors = 0u64;
    let mut first_connect_error = None;
    for k in 0..args.clients {
        if let Err(e) = b.connect(Role::Listener, 0) {
            connect_errors += 1;
            first_connect_error.get_or_insert(e.to_string());
        }
        if k % BATCH == BATCH - 1 {
            b.pump(Duration::ZERO).map_err(|e| e.to_string())?;
        }
    }
    let burst_s = start.elapsed().as_secs_f64();
    let hold_until = Instant::now() + Duration::from_secs_f64(args.hold);
    while Instant::now() < hold_until {
        b.pump(Duration::from_millis(20))
            .map_err(|e| e.to_string())?;
    }
    let resources = watch.finish();
    let (held, burst) = b.clients.split_at(args.holders.min(b.clients.len()));
    let endings = Endings::of(burst);
    Ok(BurstReport {
        kind: server.kind,
        holders: args.holders,
        clients: args.clients,
        hold_s: AsGiven(args.hold),
        setup_s: Decimals(setup_s),
        burst_s: Decimals(burst_s),
        connect_errors,
        first_connect_error,
        connected: burst.iter().filter(|c| c.connected).count(),
        told: burst.iter().filter(|c| c.lines_in > 0).count(),
        still_open: burst.iter().filter(|c| c.open).count(),
        closed_reasons: endings.reasons,
        holders_open: held.iter().filter(|c| c.open).count(),
        notice_kinds: std::mem::take(&mut b.tally.notice_kinds),
        resources,
    })
}
