//! The gathering: a thread per target runs round after round (resolve, then connect to every
//! address at once) and sends each finding to the main thread as an [`Event`]. Nothing here
//! prints.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};

use super::config::Config;
use super::connect::{self, Verdict};
use super::report::Event;
use super::resolve::{self, DnsAnswer};
use super::tls;
use crate::error::{Context, Error, Result};
use crate::net::clock::now;
use crate::net::target::Target;
use crate::net::tls::client::Roots;

/// The probe threads at work, and the events they send.
pub struct Rounds {
    /// Every event, in the order learned; disconnects when every target is done.
    pub events: Receiver<Event>,
    workers: Vec<JoinHandle<()>>,
}

impl Rounds {
    /// Starts a thread per target (and, when the probe repeats, the Ctrl-C handler that stops it).
    pub fn start(config: Config) -> Result<Rounds> {
        let roots = match config.tls {
            true => Some(Arc::new(Roots::load(config.tls_ca.as_deref())?)),
            false => None,
        };
        let config = Arc::new(config);
        let stop = stop_signal(&config)?;
        let (events_tx, events) = crossbeam_channel::unbounded::<Event>();
        let mut workers = Vec::new();
        for (index, target) in config.targets.iter().cloned().enumerate() {
            let config = Arc::clone(&config);
            let events = events_tx.clone();
            let stop = stop.clone();
            let roots = roots.clone();
            let worker = std::thread::Builder::new()
                .name(format!("probe-{index}"))
                .spawn(move || probe_target(&config, roots.as_deref(), &target, &events, &stop))
                .context("starting a probe thread")?;
            workers.push(worker);
        }
        Ok(Rounds { events, workers })
    }

    /// Waits for every probe thread; call once the events have run dry.
    pub fn join(self) {
        for worker in self.workers {
            // A panicked probe thread has already said so on stderr; its target stays unreached.
            let _ = worker.join();
        }
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
fn probe_target(
    config: &Config,
    roots: Option<&Roots>,
    target: &Target,
    events: &Sender<Event>,
    stop: &Receiver<()>,
) {
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
                    // With --tls, the --chat check speaks through TLS, after the handshake.
                    let plain_chat = config.chat && roots.is_none();
                    let mut outcome = connect::attempt(address, config.timeout, plain_chat);
                    if let Some(roots) = roots.filter(|_| outcome.verdict == Verdict::Open) {
                        let host = &target.host;
                        let (check, chat) =
                            tls::check(address, host, config.timeout, roots, config.chat);
                        outcome.tls = Some(Box::new(check));
                        outcome.chat = chat;
                    }
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
            time: now().to_rfc3339(),
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
