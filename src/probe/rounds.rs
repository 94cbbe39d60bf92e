//! The gathering: a thread per target runs round after round (resolve, then connect to every
//! address at once) and sends each finding to the main thread as an [`Event`]. Nothing here
//! prints.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
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
use crate::net::tls::roots::Roots;

/// The probe threads at work, and the events they send.
pub struct Rounds {
    /// Every event with the index of its target (the same target may be given twice), in the
    /// order learned; disconnects when every target is done.
    pub events: Receiver<(usize, Event)>,
    /// Disconnects on the first Ctrl-C: the run ends at once with what is known.
    pub interrupted: Receiver<()>,
    workers: Vec<JoinHandle<()>>,
}

impl Rounds {
    /// Starts a thread per target, and the Ctrl-C handler that stops them.
    pub fn start(config: Config) -> Result<Rounds> {
        let roots = match config.tls {
            true => Some(Arc::new(Roots::load(config.tls_ca.as_deref())?)),
            false => None,
        };
        let config = Arc::new(config);
        let stop = stop_signal()?;
        let (events_tx, events) = crossbeam_channel::unbounded();
        let mut workers = Vec::new();
        for (index, target) in config.targets.iter().cloned().enumerate() {
            let config = Arc::clone(&config);
            let events = Outbox {
                index,
                sender: events_tx.clone(),
            };
            let stop = stop.clone();
            let roots = roots.clone();
            let worker = std::thread::Builder::new()
                .name(format!("probe-{index}"))
                .spawn(move || probe_target(&config, roots.as_deref(), &target, &events, &stop))
                .context("starting a probe thread")?;
            workers.push(worker);
        }
        Ok(Rounds {
            events,
            interrupted: stop,
            workers,
        })
    }

    /// Waits for every probe thread; call once the events have run dry (after a Ctrl-C, do
    /// not: a thread may be in a connect for the whole timeout, and the process ends anyway).
    pub fn join(self) {
        for worker in self.workers {
            // A panicked probe thread has already said so on stderr; its target stays unreached.
            let _ = worker.join();
        }
    }
}

/// A receiver that disconnects on the first Ctrl-C; a second Ctrl-C ends the process at once.
fn stop_signal() -> Result<Receiver<()>> {
    let (tx, rx) = crossbeam_channel::bounded::<()>(0);
    let interrupts = Interrupts::new(tx);
    ctrlc::set_handler(move || {
        if interrupts.interrupt() {
            std::process::exit(EXIT_INTERRUPTED);
        }
    })
    .map_err(|err| Error::Unsupported(format!("cannot catch Ctrl-C: {err}")))?;
    Ok(rx)
}

/// Exit status after a second Ctrl-C (128 + SIGINT, as a shell reports a process it interrupted).
pub const EXIT_INTERRUPTED: i32 = 130;

/// What Ctrl-C does: the first one stops the run (its sender dropped), the next ones ask for
/// the process to end at once.
struct Interrupts {
    count: AtomicU32,
    stop: Mutex<Option<Sender<()>>>,
}

impl Interrupts {
    fn new(stop: Sender<()>) -> Interrupts {
        Interrupts {
            count: AtomicU32::new(0),
            stop: Mutex::new(Some(stop)),
        }
    }

    /// One Ctrl-C; true when the process should end now (it is not the first).
    fn interrupt(&self) -> bool {
        if self.count.fetch_add(1, Ordering::SeqCst) > 0 {
            return true;
        }
        // Dropping the only sender wakes every thread waiting on the receiver.
        if let Ok(mut stop) = self.stop.lock() {
            stop.take();
        }
        false
    }
}

/// Where one target's thread sends its events: tagged with the target's index.
#[derive(Clone)]
struct Outbox {
    index: usize,
    sender: Sender<(usize, Event)>,
}

impl Outbox {
    /// Sends `event`; a receiver gone (the run is ending) is not an error.
    fn send(&self, event: Event) {
        let _ = self.sender.send((self.index, event));
    }
}

/// Probes one target round after round; every address of a round concurrently.
fn probe_target(
    config: &Config,
    roots: Option<&Roots>,
    target: &Target,
    events: &Outbox,
    stop: &Receiver<()>,
) {
    let name = target.to_string();
    let mut previous: Option<Vec<IpAddr>> = None;
    let mut round = 1u32;
    loop {
        let started = Instant::now();
        // A round without addresses is a lost round (reported with its reason); the next one
        // resolves again.
        let addresses =
            resolve_round(config, target, round, &mut previous, events).unwrap_or_default();
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
                    let hint = outcome.hint(&address).map(str::to_string);
                    events.send(Event::Attempt {
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
    events: &Outbox,
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
                chain: Vec::new(),
            }
        }
        None => resolve::system(&target.host, config.families, config.timeout),
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
        events.send(Event::DnsChange {
            target: name.clone(),
            round,
            time: now().to_rfc3339(),
            before: before.clone(),
            after: addresses.clone(),
        });
    }
    *previous = Some(addresses.clone());
    // Every round begins with its Dns event, an address literal's too: the report counts the
    // rounds by them (the text shows the answer once).
    events.send(Event::Dns {
        target: name,
        round,
        system,
        server,
        warnings,
    });
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
        // One warning per kind of address, however many of that kind DNS serves.
        let mut noted: Vec<(&str, Vec<IpAddr>)> = Vec::new();
        for address in &served {
            if let Some(note) = crate::net::address::unfit_for_public_dns(address) {
                match noted.iter_mut().find(|(n, _)| *n == note) {
                    Some((_, addresses)) => addresses.push(*address),
                    None => noted.push((note, vec![*address])),
                }
            }
        }
        for (note, addresses) in noted {
            let named = match addresses.as_slice() {
                [one] => one.to_string(),
                [first, second] => format!("{first} and {second}"),
                [first, second, rest @ ..] => {
                    format!("{first}, {second} and {} more", rest.len())
                }
                [] => continue,
            };
            warnings.push(format!("{named} in DNS: {note}"));
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
    if !config.expect_ip.is_empty() && !is_name {
        let literal = served.iter().filter(|a| !config.expect_ip.contains(a));
        for address in literal {
            warnings.push(format!(
                "{address} is an address, not a name: --expect-ip compares what DNS serves for a \
                 name, and {address} is not one of the expected addresses"
            ));
        }
    } else if !config.expect_ip.is_empty() && system.failure.is_none() {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_ctrl_c_stops_the_run_and_the_second_ends_the_process() {
        let (tx, stopped) = crossbeam_channel::bounded::<()>(0);
        let interrupts = Interrupts::new(tx);
        assert!(!interrupts.interrupt(), "the first one only stops the run");
        assert_eq!(
            stopped.recv_timeout(std::time::Duration::from_secs(1)),
            Err(crossbeam_channel::RecvTimeoutError::Disconnected)
        );
        assert!(interrupts.interrupt(), "the second one ends it at once");
        assert!(interrupts.interrupt());
    }
}
