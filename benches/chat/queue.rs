//! Limits (b), single mode's queue: a first client is served (it only reads), then `--clients`
//! more connect and wait in the queue, and for `--duration` seconds each sends `--size`-byte
//! lines as fast as its socket takes them: as fast as the server (its `--rate-limit`) allows.
//! The server's memory, threads and descriptors are sampled all along (`sampler.rs`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::bench::{Bench, Kind};
use crate::cli::QueueArgs;
use crate::report::{AsGiven, Decimals, Endings};
use crate::sampler::{Resources, Watch};
use crate::setup::Crowd;

/// The greetings have settled after this long without a byte...
const QUIET: Duration = Duration::from_secs(1);
/// ...or after this long in all.
const SETTLE_LIMIT: Duration = Duration::from_secs(20);
/// Most lines a client is given at a time while its socket takes them without waiting.
const LINES_AT_A_TIME: usize = 16;

/// The JSON report of a queue run.
#[derive(Debug, Serialize)]
pub struct QueueReport {
    pub kind: Kind,
    pub clients: usize,
    pub size: usize,
    pub duration_s: AsGiven,
    pub setup_s: Decimals<3>,
    /// Whole lines the queued clients' sockets took, all of them together.
    pub lines_sent: u64,
    pub lines_per_s: Decimals<0>,
    /// Queued clients the server closed (or that failed), why, and the `* bye` lines they got.
    pub queued_closed: usize,
    pub closed_reasons: BTreeMap<String, usize>,
    pub byes: BTreeMap<String, usize>,
    pub served_open: bool,
    /// soquete's `! ` error lines, and each kind of notice and error line, and how many.
    pub errors: u64,
    pub notice_kinds: BTreeMap<String, u64>,
    pub samples: Vec<String>,
    pub resources: Resources,
}

/// Runs limits (b).
pub fn run(args: &QueueArgs) -> Result<QueueReport, String> {
    let server = &args.server;
    let mut b = Bench::new(server.addr, server.kind, args.size).map_err(|e| e.to_string())?;
    let mut watch = Watch::start(server.server_pid);
    let started = Instant::now();
    // The served client first, then the queue.
    let served = Crowd {
        listeners: 1,
        ..Crowd::default()
    };
    b.connect_crowd(served)?;
    b.await_arrival(started)?;
    b.connect_crowd(Crowd::talkers(args.clients))?;
    b.await_arrival(started)?;
    b.settle(QUIET, SETTLE_LIMIT)?;
    let setup_s = started.elapsed().as_secs_f64();
    watch.steady();
    let start = Instant::now();
    b.phase_start = Some(start);
    let window = Duration::from_secs_f64(args.duration);
    let queued = 1..=args.clients;
    while start.elapsed() < window {
        for i in queued.clone() {
            b.write_more(i, LINES_AT_A_TIME);
        }
        b.pump(Duration::from_millis(5))
            .map_err(|e| e.to_string())?;
    }
    let resources = watch.finish();
    let lines_sent: u64 = queued
        .clone()
        .map(|i| b.clients[i].bytes_out / args.size as u64)
        .sum();
    let endings = Endings::of(&b.clients[queued.clone()]);
    let t = std::mem::take(&mut b.tally);
    Ok(QueueReport {
        kind: server.kind,
        clients: args.clients,
        size: args.size,
        duration_s: AsGiven(args.duration),
        setup_s: Decimals(setup_s),
        lines_sent,
        lines_per_s: Decimals(lines_sent as f64 / args.duration),
        queued_closed: queued.filter(|&i| !b.clients[i].open).count(),
        closed_reasons: endings.reasons,
        byes: endings.byes,
        served_open: b.clients[0].open,
        errors: t.errors,
        notice_kinds: t.notice_kinds,
        samples: t.samples,
        resources,
    })
}
