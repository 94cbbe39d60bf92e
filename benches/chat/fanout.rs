//! Scenario 1, fan-out: every client sends `--lines` lines as fast as the socket takes them and
//! everyone reads; the clients can be dealt out to `--threads` event loops, one thread each.
//! With `--at-once` nobody says anything before the clock starts (no hello exchange): every
//! client's first line is a test line, sent while the others have not written yet.

use std::collections::BTreeMap;
use std::io;
use std::time::{Duration, Instant};

use mio::Token;
use serde::Serialize;

use crate::bench::{Bench, Kind};
use crate::cli::FanoutArgs;
use crate::report::{Checks, Decimals, Endings, spent};
use crate::setup::Crowd;
use crate::usage::{OwnUsage, own_usage, server_cpu_secs};

/// How long the fan-out may run in all.
const LIMIT: Duration = Duration::from_secs(120);
/// How long the fan-out may go without a delivery before it is given up.
const STALL: Duration = Duration::from_secs(5);

/// The JSON report of a fan-out run.
#[derive(Debug, Serialize)]
pub struct FanoutReport {
    pub kind: Kind,
    pub clients: usize,
    pub lines: u32,
    pub size: usize,
    /// Started at once, without the hello exchange.
    pub at_once: bool,
    pub setup_s: Decimals<3>,
    pub expected: u64,
    pub delivered: u64,
    #[serde(flatten)]
    pub checks: Checks,
    /// From the start to the last delivery.
    pub elapsed_s: Decimals<4>,
    pub lines_per_s: Decimals<0>,
    /// `complete`, or why the run stopped short.
    pub stop: &'static str,
    pub clients_closed: usize,
    pub closed_reasons: BTreeMap<String, usize>,
    pub byes: BTreeMap<String, usize>,
    /// How many "too slow" notices came.
    pub slow_notices: usize,
    pub server_cpu_s: Option<Decimals<3>>,
    pub generator_cpu_s: Decimals<3>,
    pub generator_threads: usize,
    pub generator_waits: i64,
    pub generator_preempted: i64,
    pub bytes_in: u64,
    /// What came off the sockets: `bytes_in` plus TLS's record headers and tags.
    pub wire_bytes_in: u64,
    pub samples: Vec<String>,
}

/// Runs scenario 1.
pub fn run(args: &FanoutArgs) -> Result<FanoutReport, String> {
    let server = &args.server;
    let mut b = Bench::new(server.addr, server.kind, args.size).map_err(|e| e.to_string())?;
    b.also.clone_from(&server.also);
    b.tls = server.tls.then(crate::tls::client_config);
    let setup = if args.at_once {
        b.setup_at_once(args.clients)?
    } else {
        b.setup(Crowd::talkers(args.clients))?
    };
    let cpu0 = server.server_pid.and_then(server_cpu_secs);
    let usage0 = own_usage();
    let bytes0: u64 = b.clients.iter().map(|c| c.bytes_in).sum();
    let wire0: u64 = b.clients.iter().map(|c| c.wire_in).sum();
    let shards = b.split(args.threads).map_err(|e| e.to_string())?;
    let start = Instant::now();
    let ran: Vec<Result<(Bench, &str), String>> = std::thread::scope(|scope| {
        let running: Vec<_> = shards
            .into_iter()
            .map(|mut shard| {
                scope.spawn(move || {
                    let stop = shard.run_fanout(start, args.lines)?;
                    Ok((shard, stop))
                })
            })
            .collect();
        running
            .into_iter()
            .map(|thread| {
                thread
                    .join()
                    .unwrap_or_else(|_| Err("a thread panicked".into()))
            })
            .collect()
    });
    let mut stops = Vec::new();
    let mut shards = Vec::new();
    for result in ran {
        let (shard, stop) = result?;
        stops.push(stop);
        shards.push(shard);
    }
    let stop = stops
        .into_iter()
        .find(|&stop| stop != "complete")
        .unwrap_or("complete");
    let mut b = Bench::merge(shards);
    let cpu1 = server.server_pid.and_then(server_cpu_secs);
    let usage1 = own_usage();
    let bytes_in = b.clients.iter().map(|c| c.bytes_in).sum::<u64>() - bytes0;
    let wire_bytes_in = b.clients.iter().map(|c| c.wire_in).sum::<u64>() - wire0;
    let expected = b.finish_tally(args.clients);
    let endings = Endings::of(&b.clients[..args.clients]);
    let OwnUsage {
        cpu_s,
        waits,
        preempted,
    } = usage1.since(usage0);
    let t = b.tally;
    let elapsed = t.last_delivery.unwrap_or_default().as_secs_f64();
    Ok(FanoutReport {
        kind: server.kind,
        clients: args.clients,
        lines: args.lines,
        size: args.size,
        at_once: args.at_once,
        setup_s: Decimals(setup),
        expected,
        delivered: t.delivered,
        checks: Checks::of(&t),
        elapsed_s: Decimals(elapsed),
        lines_per_s: Decimals(t.delivered as f64 / elapsed.max(1e-9)),
        stop,
        clients_closed: b.clients.iter().filter(|c| !c.open).count(),
        closed_reasons: endings.reasons,
        byes: endings.byes,
        slow_notices: t.slow_notices.len(),
        server_cpu_s: spent(cpu0, cpu1),
        generator_cpu_s: Decimals(cpu_s),
        generator_threads: args.threads,
        generator_waits: waits,
        generator_preempted: preempted,
        bytes_in,
        wire_bytes_in,
        samples: t.samples,
    })
}

impl Bench {
    /// Deals the clients out to `parts` benches with a poll each, for one thread each: client k
    /// to bench k % parts. Every bench keeps the whole table of expected sequence numbers (it
    /// only updates the rows of its own clients).
    fn split(mut self, parts: usize) -> io::Result<Vec<Bench>> {
        let mut shards = Vec::with_capacity(parts);
        for _ in 0..parts {
            let mut shard = Bench::new(self.addr, self.kind, self.size)?;
            shard.also.clone_from(&self.also);
            shard.n = self.n;
            shard.expected = self.expected.clone();
            shard.base = self.base;
            shard.tls = self.tls.clone();
            shards.push(shard);
        }
        for (k, mut client) in std::mem::take(&mut self.clients).into_iter().enumerate() {
            let shard = &mut shards[k % parts];
            if client.open {
                self.poll.registry().deregister(&mut client.stream)?;
                let token = Token(shard.clients.len());
                let interest = client.interest();
                shard
                    .poll
                    .registry()
                    .register(&mut client.stream, token, interest)?;
            }
            shard.clients.push(client);
        }
        Ok(shards)
    }

    /// The fan-out phase on this bench's clients, from `start`: every client writes its `lines`
    /// lines, then the bench reads until its clients have every line of every other client (or
    /// stops, and says why).
    fn run_fanout(&mut self, start: Instant, lines: u32) -> Result<&'static str, String> {
        self.phase_start = Some(start);
        self.base = start;
        for i in 0..self.clients.len() {
            for _ in 0..lines {
                self.queue_line(i);
            }
            self.flush(i);
        }
        let readers = self.clients.iter().filter(|c| c.reading).count() as u64;
        let want = readers * (self.n as u64 - 1) * u64::from(lines);
        let mut last_progress = (Instant::now(), 0u64);
        while self.tally.delivered + self.tally.lost < want {
            self.pump(Duration::from_millis(50))
                .map_err(|e| e.to_string())?;
            if self.tally.delivered != last_progress.1 {
                last_progress = (Instant::now(), self.tally.delivered);
            } else if last_progress.0.elapsed() > STALL {
                return Ok("no delivery for 5 s");
            }
            if start.elapsed() > LIMIT {
                return Ok("120 s limit");
            }
        }
        Ok("complete")
    }

    /// One bench again from the ones [`Bench::split`] made: clients in their original order,
    /// each one's row of expected sequence numbers, the tallies added up.
    fn merge(shards: Vec<Bench>) -> Bench {
        let mut shards = shards.into_iter();
        let mut merged = shards.next().expect("at least one bench");
        for shard in shards {
            let n = merged.n;
            for client in &shard.clients {
                let row = client.id * n..(client.id + 1) * n;
                merged.expected[row.clone()].copy_from_slice(&shard.expected[row]);
            }
            merged.clients.extend(shard.clients);
            merged.tally.absorb(shard.tally);
        }
        merged.clients.sort_by_key(|c| c.id);
        merged
    }
}
