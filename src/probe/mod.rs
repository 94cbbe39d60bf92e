//! `soquete probe`: is that (dynamic-DNS) host and port reachable, on every address it resolves
//! to, and is a soquete server there. A thread per target resolves; a thread per address connects;
//! the main thread prints each verdict as soon as it arrives.

pub mod connect;
pub mod report;
pub mod resolve;

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use crate::cli::ProbeArgs;
use crate::error::{Error, Result};
use crate::net::target::Target;
use crate::output;
use report::{Document, Event, TargetReport};
use resolve::{DnsAnswer, Families};

/// Exit code: every target reachable (and a soquete server on each, with --chat).
pub const EXIT_ALL_REACHABLE: i32 = 0;
/// Exit code: some targets reachable, not all.
pub const EXIT_SOME_REACHABLE: i32 = 1;
/// Exit code: no target reachable.
pub const EXIT_NONE_REACHABLE: i32 = 2;
/// Exit code: a name did not resolve.
pub const EXIT_RESOLUTION_FAILED: i32 = 3;
/// Exit code: reachable, but the --chat check found no soquete server.
pub const EXIT_CHECK_FAILED: i32 = 4;

/// What the probe runs on, once the command line has been understood.
#[derive(Debug, Clone)]
pub struct Config {
    pub targets: Vec<Target>,
    pub timeout: Duration,
    pub families: Families,
    /// None: until Ctrl-C.
    pub rounds: Option<u32>,
    pub interval: Duration,
    pub chat: bool,
    pub dns_server: Option<SocketAddr>,
    pub expect_ip: Vec<IpAddr>,
    pub json: bool,
}

impl Config {
    /// Reads the arguments; a bad target or DNS server is a usage error.
    pub fn from_args(args: &ProbeArgs) -> Result<Config> {
        let targets = args
            .targets
            .iter()
            .map(|text| Target::parse(text))
            .collect::<Result<Vec<_>>>()?;
        let dns_server = args
            .dns_server
            .as_deref()
            .map(parse_dns_server)
            .transpose()?;
        Ok(Config {
            targets,
            timeout: Duration::from_secs_f64(args.timeout),
            families: Families {
                ipv4: !args.ipv6,
                ipv6: !args.ipv4,
            },
            rounds: match args.count {
                None => Some(1),
                Some(0) => None,
                Some(n) => Some(n),
            },
            interval: Duration::from_secs_f64(args.interval),
            chat: args.chat,
            dns_server,
            expect_ip: args.expect_ip.clone(),
            json: args.json,
        })
    }

    /// More than one round: ping-style output.
    fn repeated(&self) -> bool {
        self.rounds != Some(1)
    }
}

/// `IP` or `IP:PORT` (port 53 by default), IPv6 bracketed with a port.
fn parse_dns_server(text: &str) -> Result<SocketAddr> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    text.trim_matches(['[', ']'])
        .parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| Error::Usage(format!("bad DNS server '{text}': expected IP or IP:PORT")))
}

/// Runs the probe and returns its exit code.
pub fn run(args: &ProbeArgs) -> Result<i32> {
    let config = Arc::new(Config::from_args(args)?);
    let stop = stop_signal(&config)?;
    let (events_tx, events_rx) = crossbeam_channel::unbounded::<Event>();
    let mut workers = Vec::new();
    for (index, target) in config.targets.iter().cloned().enumerate() {
        let config = Arc::clone(&config);
        let events = events_tx.clone();
        let stop = stop.clone();
        let worker = std::thread::Builder::new()
            .name(format!("probe-{index}"))
            .spawn(move || probe_target(&config, &target, &events, &stop))
            .map_err(|err| Error::io("starting a probe thread", err))?;
        workers.push(worker);
    }
    drop(events_tx);

    let mut reports: Vec<TargetReport> = config
        .targets
        .iter()
        .map(|t| TargetReport::new(t.to_string(), t.host.clone(), t.port))
        .collect();
    let label_targets = config.targets.len() > 1;
    let stdout = std::io::stdout();
    for event in events_rx.iter() {
        let target = event_target(&event);
        if let Some(report) = reports.iter_mut().find(|r| r.target == target) {
            report.record(&event);
        }
        let mut out = stdout.lock();
        if config.json {
            if config.repeated() {
                serde_json::to_writer(&mut out, &event).map_err(std::io::Error::from)?;
                out.write_all(b"\n")?;
            }
        } else {
            let label = label_targets.then_some(target.as_str());
            for line in report::event_lines(&event, label, config.repeated()) {
                writeln!(out, "{line}")?;
            }
        }
        out.flush()?;
    }
    for worker in workers {
        let _ = worker.join();
    }

    let code = exit_code(&config, &reports);
    let mut out = stdout.lock();
    if config.json {
        if config.repeated() {
            for report in &reports {
                let summary = serde_json::json!({"type": "summary", "target": report.target, "addresses": report.addresses});
                serde_json::to_writer(&mut out, &summary).map_err(std::io::Error::from)?;
                out.write_all(b"\n")?;
            }
            writeln!(
                out,
                "{}",
                serde_json::json!({"type": "exit", "exit_code": code})
            )?;
        } else {
            output::write_json(
                &mut out,
                &Document {
                    targets: reports,
                    exit_code: code,
                },
            )?;
        }
    } else {
        for report in &reports {
            for line in report::summary_lines(report, config.repeated()) {
                writeln!(out, "{line}")?;
            }
        }
    }
    out.flush()?;
    Ok(code)
}

fn event_target(event: &Event) -> String {
    match event {
        Event::Dns { target, .. }
        | Event::DnsChange { target, .. }
        | Event::Attempt { target, .. } => target.clone(),
    }
}

/// The exit code from the reports (documented in the man page).
pub fn exit_code(config: &Config, reports: &[TargetReport]) -> i32 {
    if reports.iter().any(|r| !r.resolved) {
        return EXIT_RESOLUTION_FAILED;
    }
    let reachable = reports.iter().filter(|r| r.reachable).count();
    if reachable == 0 {
        EXIT_NONE_REACHABLE
    } else if reachable < reports.len() {
        EXIT_SOME_REACHABLE
    } else if config.chat && reports.iter().any(|r| r.soquete != Some(true)) {
        EXIT_CHECK_FAILED
    } else {
        EXIT_ALL_REACHABLE
    }
}

/// A receiver that disconnects on Ctrl-C, when the probe repeats; otherwise one that never fires.
fn stop_signal(config: &Config) -> Result<Receiver<()>> {
    if !config.repeated() {
        return Ok(crossbeam_channel::never());
    }
    let (tx, rx) = crossbeam_channel::bounded::<()>(0);
    let sender = Mutex::new(Some(tx));
    ctrlc::set_handler(move || {
        // Dropping the only sender wakes every thread waiting on the receiver.
        if let Ok(mut sender) = sender.lock() {
            sender.take();
        }
    })
    .map_err(|err| Error::Unsupported(format!("cannot catch Ctrl-C: {err}")))?;
    Ok(rx)
}

/// Probes one target round after round; every address of a round concurrently.
fn probe_target(config: &Config, target: &Target, events: &Sender<Event>, stop: &Receiver<()>) {
    let name = target.to_string();
    let mut previous: Option<Vec<IpAddr>> = None;
    let mut round = 1u32;
    loop {
        let started = Instant::now();
        let addresses = match resolve_round(config, target, round, &mut previous, events) {
            Some(addresses) => addresses,
            None => return,
        };
        std::thread::scope(|scope| {
            for ip in addresses {
                let address = SocketAddr::new(ip, target.port);
                let events = events.clone();
                let name = name.clone();
                scope.spawn(move || {
                    let outcome = connect::attempt(address, config.timeout, config.chat);
                    let hint = outcome.verdict.hint(&address).map(str::to_string);
                    let _ = events.send(Event::Attempt {
                        target: name,
                        round,
                        address,
                        outcome,
                        hint,
                    });
                });
            }
        });
        if config.rounds.is_some_and(|rounds| round >= rounds) {
            return;
        }
        round += 1;
        let left = config.interval.saturating_sub(started.elapsed());
        if stop.recv_timeout(left) != Err(crossbeam_channel::RecvTimeoutError::Timeout) {
            return;
        }
    }
}

/// Resolves for one round and reports it; None when the name does not resolve.
fn resolve_round(
    config: &Config,
    target: &Target,
    round: u32,
    previous: &mut Option<Vec<IpAddr>>,
    events: &Sender<Event>,
) -> Option<Vec<IpAddr>> {
    let name = target.to_string();
    let literal = target.host.parse::<IpAddr>().ok();
    let system = match literal {
        Some(ip) => {
            let wanted = match ip {
                IpAddr::V4(_) => config.families.ipv4,
                IpAddr::V6(_) => config.families.ipv6,
            };
            DnsAnswer {
                source: "literal".into(),
                records: wanted
                    .then_some(resolve::DnsRecord {
                        address: ip,
                        ttl: None,
                    })
                    .into_iter()
                    .collect(),
                time_ms: 0.0,
                failure: (!wanted).then_some(resolve::DnsFailure::NoRecords),
                error: (!wanted)
                    .then(|| "the address is not of the family asked for (-4/-6)".into()),
            }
        }
        None => resolve::system(&target.host, config.families),
    };
    let server = match (config.dns_server, literal) {
        (Some(server), None) => Some(resolve::ask_server(
            &target.host,
            server,
            config.families,
            config.timeout,
        )),
        _ => None,
    };
    let warnings = warnings(config, target, &system, server.as_ref());
    let addresses = system.addresses();
    let failed = system.failure.is_some();
    if let Some(before) = previous.as_ref().filter(|before| **before != addresses) {
        let _ = events.send(Event::DnsChange {
            target: name.clone(),
            round,
            time: crate::net::clock::now().to_rfc3339(),
            before: before.clone(),
            after: addresses.clone(),
        });
    }
    *previous = Some(addresses.clone());
    if literal.is_none() || round == 1 {
        let _ = events.send(Event::Dns {
            target: name,
            round,
            system,
            server,
            warnings,
        });
    }
    (!failed).then_some(addresses)
}

/// Remarks on a DNS answer: addresses unfit for public DNS, disagreement with the DNS server,
/// and the --expect-ip comparison.
fn warnings(
    config: &Config,
    target: &Target,
    system: &DnsAnswer,
    server: Option<&DnsAnswer>,
) -> Vec<String> {
    let mut warnings = Vec::new();
    let is_name = target.host.parse::<IpAddr>().is_err();
    let local_name =
        target.host.eq_ignore_ascii_case("localhost") || target.host.ends_with(".localhost");
    let served = system.addresses();
    if is_name && !local_name {
        for address in &served {
            if let Some(note) = resolve::address_note(address) {
                warnings.push(format!("{address} in DNS: {note}"));
            }
        }
    }
    if let Some(server) = server.filter(|s| s.failure.is_none()) {
        let mut from_server = server.addresses();
        let mut from_system = served.clone();
        from_server.sort();
        from_system.sort();
        if from_server != from_system {
            warnings.push(format!(
                "the system resolver and {} disagree: a cache may still hold an old answer (wait out the TTL)",
                server.source
            ));
        }
    }
    if !config.expect_ip.is_empty() && system.failure.is_none() {
        for address in served.iter().filter(|a| !config.expect_ip.contains(a)) {
            warnings.push(format!(
                "DNS serves {address}, which is not an expected address: the DDNS record is stale, or points elsewhere"
            ));
        }
        for expected in config.expect_ip.iter().filter(|e| !served.contains(e)) {
            warnings.push(format!(
                "DNS does not serve the expected address {expected}: has the DDNS update run?"
            ));
        }
    }
    warnings
}
