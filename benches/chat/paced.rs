//! Scenarios 2 and 3, paced talkers: `--clients` talkers send at a steady total `--rate` for
//! `--duration` seconds and read everything, beside `--stalled` clients that never read (what
//! becomes of them, and of the others' deliveries), with latency samples under `--latency`, and
//! `--listeners` that read and never write; `--resources` samples the server all along.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::bench::{Bench, Client, Kind};
use crate::cli::PacedArgs;
use crate::latency::Latency;
use crate::report::{AsGiven, Checks, Decimals, Endings, spent};
use crate::sampler::{Resources, Watch};
use crate::setup::Crowd;
use crate::timeline::Timeline;
use crate::usage::{ServerState, server_cpu_secs, server_state};

/// How long the generator waits after the window for the lines still in flight.
const DRAIN: Duration = Duration::from_secs(3);

/// The JSON report of a paced run.
#[derive(Debug, Serialize)]
pub struct PacedReport {
    pub kind: Kind,
    pub clients: usize,
    pub stalled: usize,
    pub rate: AsGiven,
    pub duration_s: AsGiven,
    pub size: usize,
    pub setup_s: Decimals<3>,
    pub expected: u64,
    pub delivered: u64,
    /// Delivered inside the window.
    pub delivered_in_window: u64,
    pub window_lines_per_s: Decimals<0>,
    #[serde(flatten)]
    pub checks: Checks,
    pub longest_silence_s: Decimals<1>,
    pub longest_silence_from_s: Decimals<1>,
    pub per_second: Vec<u64>,
    pub talkers_closed: usize,
    pub talkers_closed_reasons: BTreeMap<String, usize>,
    pub talkers_byes: BTreeMap<String, usize>,
    pub stalled_clients: Vec<StalledClient>,
    pub listeners: usize,
    /// Test lines the listeners were due (every line of every talker), got, and missed.
    pub listener_expected: u64,
    pub listener_delivered: u64,
    pub listener_lost: u64,
    pub listeners_closed: usize,
    pub listeners_closed_reasons: BTreeMap<String, usize>,
    /// Each kind of notice and error line the clients got, and how many.
    pub notice_kinds: BTreeMap<String, u64>,
    pub resources: Option<Resources>,
    /// Each distinct "too slow" notice: when it first came (s into the phase) and its text.
    pub slow_notices: Vec<(Decimals<3>, String)>,
    pub server_cpu_s: Option<Decimals<3>>,
    pub server_at_end: Option<ServerState>,
    pub latency: Option<Latency>,
    pub samples: Vec<String>,
}

/// What became of a stalled client once it read again after the window.
#[derive(Debug, Serialize)]
pub struct StalledClient {
    pub open_after_drain: bool,
    /// When the server closed it, seconds into the phase.
    pub closed_at_s: Option<Decimals<3>>,
    /// Why it was closed (`end of stream`, `read: …`).
    pub close: Option<String>,
    /// The `* bye` line it got.
    pub bye: Option<String>,
    /// Bytes it received, the setup's included.
    pub bytes_read_after: u64,
}

impl StalledClient {
    fn of(c: &Client) -> StalledClient {
        StalledClient {
            open_after_drain: c.open,
            closed_at_s: c.closed_at.map(|d| Decimals(d.as_secs_f64())),
            close: c.close_reason.clone(),
            bye: c.bye.clone(),
            bytes_read_after: c.bytes_in,
        }
    }
}

/// Runs scenario 2 or 3.
pub fn run(args: &PacedArgs) -> Result<PacedReport, String> {
    let server = &args.server;
    let mut b = Bench::new(server.addr, server.kind, args.size).map_err(|e| e.to_string())?;
    b.also.clone_from(&server.also);
    b.tls = server.tls.then(crate::tls::client_config);
    b.record_latency = args.latency;
    let mut watch = args.resources.then(|| Watch::start(server.server_pid));
    let crowd = Crowd {
        talkers: args.clients,
        stalled: args.stalled,
        stall_rcvbuf: args.stall_rcvbuf,
        listeners: args.listeners,
    };
    let setup = b.setup(crowd)?;
    if let Some(watch) = &mut watch {
        watch.steady();
    }
    let cpu0 = server.server_pid.and_then(server_cpu_secs);
    let start = Instant::now();
    b.phase_start = Some(start);
    let window = Duration::from_secs_f64(args.duration);
    b.window = window;
    b.warmup_ns = start.duration_since(b.base).as_nanos() as u64
        + Duration::from_secs_f64(args.warmup).as_nanos() as u64;
    let talkers = 0..args.clients;
    let stalled = args.clients..args.clients + args.stalled;
    let listeners = stalled.end..stalled.end + args.listeners;
    let period = Duration::from_secs_f64(args.clients as f64 / args.rate);
    for i in talkers.clone() {
        b.clients[i].next_due = period.mul_f64(i as f64 / args.clients as f64);
    }
    // Timed phase: each talker queues its lines on schedule, however the server keeps up.
    loop {
        let at = start.elapsed();
        if at >= window {
            break;
        }
        let mut next = window;
        for i in talkers.clone() {
            if !b.clients[i].open {
                continue;
            }
            let mut queued = false;
            while b.clients[i].next_due <= at {
                b.queue_line(i);
                b.clients[i].next_due += period;
                queued = true;
            }
            if queued {
                b.flush(i);
            }
            next = next.min(b.clients[i].next_due);
        }
        let wait = next.saturating_sub(start.elapsed());
        b.pump(wait).map_err(|e| e.to_string())?;
    }
    let cpu1 = server.server_pid.and_then(server_cpu_secs);
    let server_at_end = server.server_pid.and_then(server_state);
    // Drain what is in flight. The stalled clients now read too, to see what the server did
    // with them (closed with a bye, or kept).
    for i in stalled.clone() {
        if b.clients[i].open {
            b.start_reading(i);
        }
    }
    let drain_until = Instant::now() + DRAIN;
    while Instant::now() < drain_until {
        b.pump(Duration::from_millis(20))
            .map_err(|e| e.to_string())?;
        let sent: u64 = talkers
            .clone()
            .map(|s| u64::from(b.clients[s].next_seq))
            .sum();
        let stalled_done = stalled.clone().all(|i| !b.clients[i].open);
        let listeners_done = b.tally.listener_delivered >= sent * args.listeners as u64;
        if b.tally.delivered >= sent * (args.clients as u64 - 1) && stalled_done && listeners_done {
            break;
        }
    }
    let resources = watch.map(Watch::finish);
    let expected = b.finish_tally(args.clients);
    let listener_expected = b.finish_listeners(listeners.clone(), args.clients);
    let endings = Endings::of(&b.clients[talkers.clone()]);
    let listener_endings = Endings::of(&b.clients[listeners.clone()]);
    let t = &mut b.tally;
    let timeline = Timeline::of(&t.buckets, window);
    let latency = args.latency.then(|| Latency::of(&mut t.latencies));
    let t = std::mem::take(t);
    Ok(PacedReport {
        kind: server.kind,
        clients: args.clients,
        stalled: args.stalled,
        rate: AsGiven(args.rate),
        duration_s: AsGiven(args.duration),
        size: args.size,
        setup_s: Decimals(setup),
        expected,
        delivered: t.delivered,
        delivered_in_window: t.delivered_in_window,
        window_lines_per_s: Decimals(t.delivered_in_window as f64 / args.duration),
        checks: Checks::of(&t),
        longest_silence_s: Decimals(timeline.longest_silence_s),
        longest_silence_from_s: Decimals(timeline.longest_silence_from_s),
        per_second: timeline.per_second,
        talkers_closed: talkers.filter(|&i| !b.clients[i].open).count(),
        talkers_closed_reasons: endings.reasons,
        talkers_byes: endings.byes,
        stalled_clients: stalled.map(|i| StalledClient::of(&b.clients[i])).collect(),
        listeners: args.listeners,
        listener_expected,
        listener_delivered: t.listener_delivered,
        listener_lost: t.listener_lost,
        listeners_closed: listeners.filter(|&i| !b.clients[i].open).count(),
        listeners_closed_reasons: listener_endings.reasons,
        notice_kinds: t.notice_kinds,
        resources,
        slow_notices: t
            .slow_notices
            .into_iter()
            .map(|(at, text)| (Decimals(at), text))
            .collect(),
        server_cpu_s: spent(cpu0, cpu1),
        server_at_end,
        latency,
        samples: t.samples,
    })
}
