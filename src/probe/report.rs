//! What the probe found, as plain serializable data: the events in the order they were learned,
//! folded into one [`Report`] per run, and the exit code it comes to. Gathering happens in
//! `rounds`, printing in `render`; nothing here touches the network or the terminal.

use std::net::{IpAddr, SocketAddr};

use serde::Serialize;

use super::connect::{ChatCheck, Outcome, Verdict};
use super::resolve::DnsAnswer;
use super::tls::TlsCheck;
use crate::net::target::Target;

/// Exit code: every address of every target reachable (with --any: every target), and a soquete
/// server on each target, with --chat.
pub const EXIT_ALL_REACHABLE: i32 = 0;
/// Exit code: some addresses reachable, not all (with --any: some targets).
pub const EXIT_SOME_REACHABLE: i32 = 1;
/// Exit code: no address reachable.
pub const EXIT_NONE_REACHABLE: i32 = 2;
/// Exit code: a name did not resolve.
pub const EXIT_RESOLUTION_FAILED: i32 = 3;
/// Exit code: reachable, but a check failed: --chat found no soquete server (or one that needs
/// TLS, reached without --tls), or --tls a
/// certificate that does not verify, has expired or does not name the host.
pub const EXIT_CHECK_FAILED: i32 = 4;

/// Something the probe learned, in the order it learned it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A round begins: the name was resolved (an address literal stands for itself).
    Dns {
        /// The target as given on the command line.
        target: String,
        /// The round, from 1.
        round: u32,
        /// What the system resolver said (or `literal` for an address).
        system: DnsAnswer,
        /// What the DNS server of --server said.
        server: Option<DnsAnswer>,
        /// Remarks on the answer: private addresses in DNS, disagreement, --expect-ip mismatch.
        warnings: Vec<String>,
    },
    /// The DNS answer changed between rounds.
    DnsChange {
        /// The target as given on the command line.
        target: String,
        /// The round that saw the new answer.
        round: u32,
        /// When, RFC 3339.
        time: String,
        /// The addresses of the round before.
        before: Vec<IpAddr>,
        /// The addresses now.
        after: Vec<IpAddr>,
    },
    /// One connection attempt to one address.
    Attempt {
        /// The target as given on the command line.
        target: String,
        /// The round, from 1.
        round: u32,
        /// The address tried.
        address: SocketAddr,
        /// The verdict and what came with it (flattened into the event).
        #[serde(flatten)]
        outcome: Outcome,
        /// What the verdict usually means, in plain words.
        hint: Option<String>,
    },
}

/// Per-address statistics over all rounds, ping-style.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AddressSummary {
    /// The address.
    pub address: SocketAddr,
    /// Attempts made.
    pub sent: u32,
    /// Attempts that found the port open.
    pub open: u32,
    /// Share of attempts not open, in percent (kept exact, printed with three decimals).
    #[serde(serialize_with = "rounded")]
    pub loss_pct: f64,
    /// Shortest time to an open verdict.
    pub rtt_min_ms: Option<f64>,
    /// Mean time to an open verdict (kept exact, printed with three decimals).
    #[serde(serialize_with = "rounded_option")]
    pub rtt_avg_ms: Option<f64>,
    /// Longest time to an open verdict.
    pub rtt_max_ms: Option<f64>,
    /// Standard deviation of the times to an open verdict, as ping's mdev (kept exact, printed
    /// with three decimals).
    #[serde(serialize_with = "rounded_option")]
    pub rtt_mdev_ms: Option<f64>,
    /// The sum of squared deviations from the mean (Welford's running M2), from which mdev is
    /// computed without rounding creeping in round after round.
    #[serde(skip)]
    rtt_m2: f64,
    /// The last attempt's verdict.
    pub last_verdict: Verdict,
    /// The last attempt's time to verdict, source, OS error and hint.
    pub last_time_ms: f64,
    /// The last attempt's local address (see [`Outcome::source`]).
    pub source: Option<String>,
    /// The last attempt's OS error.
    pub os_error: Option<String>,
    /// What the last verdict usually means.
    pub hint: Option<String>,
    /// The last --chat check made.
    pub chat: Option<ChatCheck>,
    /// The last --tls check made (absent from JSON without --tls).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<Box<TlsCheck>>,
}

/// Everything about one target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetReport {
    /// The target as given on the command line.
    pub target: String,
    /// Its host: a name or an address.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// The system resolver's latest answer (as in the `dns` events).
    pub system: Option<DnsAnswer>,
    /// The --server DNS server's latest answer (as in the `dns` events).
    pub server: Option<DnsAnswer>,
    /// Every remark on the DNS answers, each once.
    pub warnings: Vec<String>,
    /// Each address tried, in the order first tried.
    pub addresses: Vec<AddressSummary>,
    /// At least one address was open.
    pub reachable: bool,
    /// With --chat: a soquete server answered on some open address.
    pub soquete: Option<bool>,
    /// With --tls: every TLS check passed (absent from JSON without --tls).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_ok: Option<bool>,
    /// Some round resolved the name.
    pub resolved: bool,
    /// Rounds begun (each resolves the name again).
    pub rounds: u32,
    /// Rounds lost because the name did not resolve: no address was tried.
    pub lost_rounds: u32,
    /// Why the last lost round was lost, in plain words.
    pub lost_reason: Option<String>,
}

/// The whole probe: what every renderer prints from, and the `--json` document as it stands.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// One report per target, in command-line order.
    pub targets: Vec<TargetReport>,
    /// Ctrl-C ended the run: attempts still under way then have no verdict.
    pub interrupted: bool,
    /// Set by [`Report::close`] once every event is in (documented in the man page).
    pub exit_code: i32,
}

impl Event {
    /// The target (as given on the command line) the event is about.
    pub fn target(&self) -> &str {
        match self {
            Event::Dns { target, .. }
            | Event::DnsChange { target, .. }
            | Event::Attempt { target, .. } => target,
        }
    }
}

impl Report {
    /// An empty report for `targets`, about to be probed.
    pub fn new(targets: &[Target]) -> Report {
        Report {
            targets: targets
                .iter()
                .map(|t| TargetReport::new(t.to_string(), t.host.clone(), t.port))
                .collect(),
            interrupted: false,
            exit_code: EXIT_ALL_REACHABLE,
        }
    }

    /// Folds one event into the report of the target at `index` (by position: the same target
    /// may be given twice).
    pub fn record(&mut self, index: usize, event: &Event) {
        if let Some(report) = self.targets.get_mut(index) {
            report.record(event);
        }
    }

    /// Settles the exit code once every event is in, given the checks asked for (and --any).
    pub fn close(&mut self, checks: Checks) -> i32 {
        self.exit_code = exit_code(checks, &self.targets);
        self.exit_code
    }
}

/// The checks after an open verdict that were asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checks {
    /// --chat: a soquete server must answer.
    pub chat: bool,
    /// --tls: the certificate must verify and name the host.
    pub tls: bool,
    /// --any: a target counts as reachable when one of its addresses is (nc's rule).
    pub any: bool,
}

/// The exit code from the reports (documented in the man page). What is counted is each
/// address of each target (a target with none tried counts as one unreachable, and so do a
/// target's rounds lost to DNS), or with --any each target (not reachable when a round was lost).
fn exit_code(checks: Checks, reports: &[TargetReport]) -> i32 {
    // A target with no round told (Ctrl-C came first) was not reached; its name did not fail.
    if reports.iter().any(|r| r.rounds > 0 && !r.resolved) {
        return EXIT_RESOLUTION_FAILED;
    }
    let (reachable, counted) = reports.iter().fold((0, 0), |(up, all), r| {
        let open = r.addresses.iter().filter(|a| a.open > 0).count();
        // A round lost to DNS is one more thing not reachable.
        let lost = usize::from(r.lost_rounds > 0);
        if checks.any || r.addresses.is_empty() {
            (up + usize::from(open > 0 && lost == 0), all + 1)
        } else {
            (up + open, all + r.addresses.len() + lost)
        }
    });
    if reachable == 0 {
        EXIT_NONE_REACHABLE
    } else if reachable < counted {
        EXIT_SOME_REACHABLE
    } else if (checks.chat && reports.iter().any(|r| r.soquete != Some(true)))
        || (checks.tls && reports.iter().any(|r| r.tls_ok != Some(true)))
    {
        EXIT_CHECK_FAILED
    } else {
        EXIT_ALL_REACHABLE
    }
}

impl TargetReport {
    /// An empty report for a target about to be probed.
    pub fn new(target: String, host: String, port: u16) -> TargetReport {
        TargetReport {
            target,
            host,
            port,
            system: None,
            server: None,
            warnings: Vec::new(),
            addresses: Vec::new(),
            reachable: false,
            soquete: None,
            tls_ok: None,
            resolved: false,
            rounds: 0,
            lost_rounds: 0,
            lost_reason: None,
        }
    }

    /// Folds one event about this target in.
    pub fn record(&mut self, event: &Event) {
        match event {
            Event::Dns {
                system,
                server,
                warnings,
                ..
            } => {
                self.resolved |= system.failure.is_none();
                self.rounds += 1;
                if let Some(failure) = system.failure {
                    self.lost_rounds += 1;
                    self.lost_reason = Some(failure.describe().to_string());
                }
                self.system = Some(system.clone());
                self.server = server.clone();
                for warning in warnings {
                    if !self.warnings.contains(warning) {
                        self.warnings.push(warning.clone());
                    }
                }
            }
            Event::DnsChange { .. } => {}
            Event::Attempt {
                address, outcome, ..
            } => {
                let summary = match self
                    .addresses
                    .iter_mut()
                    .position(|s| s.address == *address)
                {
                    Some(index) => &mut self.addresses[index],
                    None => {
                        self.addresses
                            .push(AddressSummary::new(*address, outcome.verdict));
                        self.addresses.last_mut().expect("just pushed")
                    }
                };
                summary.add(outcome);
                self.reachable |= outcome.verdict == Verdict::Open;
                if let Some(check) = &outcome.chat {
                    let found = check.is_soquete();
                    self.soquete = Some(self.soquete.unwrap_or(false) || found);
                }
                // Every address must pass: a client may land on any of them.
                if let Some(check) = &outcome.tls {
                    self.tls_ok = Some(self.tls_ok.unwrap_or(true) && check.ok);
                }
            }
        }
    }
}

impl AddressSummary {
    fn new(address: SocketAddr, verdict: Verdict) -> AddressSummary {
        AddressSummary {
            address,
            sent: 0,
            open: 0,
            loss_pct: 0.0,
            rtt_min_ms: None,
            rtt_avg_ms: None,
            rtt_max_ms: None,
            rtt_mdev_ms: None,
            rtt_m2: 0.0,
            last_verdict: verdict,
            last_time_ms: 0.0,
            source: None,
            os_error: None,
            hint: None,
            chat: None,
            tls: None,
        }
    }

    fn add(&mut self, outcome: &Outcome) {
        self.sent += 1;
        self.last_verdict = outcome.verdict;
        self.last_time_ms = outcome.time_ms;
        self.source = outcome.source.clone();
        self.os_error = outcome.os_error.clone();
        self.hint = outcome.hint(&self.address).map(str::to_string);
        if outcome.chat.is_some() {
            self.chat = outcome.chat.clone();
        }
        if outcome.tls.is_some() {
            self.tls = outcome.tls.clone();
        }
        if outcome.verdict == Verdict::Open {
            self.open += 1;
            let rtt = outcome.time_ms;
            let n = f64::from(self.open);
            let old_avg = self.rtt_avg_ms.unwrap_or(0.0);
            let avg = old_avg + (rtt - old_avg) / n;
            // mdev as ping computes it: the standard deviation of the round-trip times, by
            // Welford's method over exact values (rounding happens only when printing).
            self.rtt_m2 += (rtt - old_avg) * (rtt - avg);
            self.rtt_avg_ms = Some(avg);
            self.rtt_mdev_ms = Some((self.rtt_m2 / n).max(0.0).sqrt());
            self.rtt_min_ms = Some(self.rtt_min_ms.map_or(rtt, |m| m.min(rtt)));
            self.rtt_max_ms = Some(self.rtt_max_ms.map_or(rtt, |m| m.max(rtt)));
        }
        self.loss_pct = 100.0 * f64::from(self.sent - self.open) / f64::from(self.sent);
    }
}

/// `value` rounded to three decimals, for printing.
pub fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

fn rounded<S: serde::Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(round3(*value))
}

fn rounded_option<S: serde::Serializer>(
    value: &Option<f64>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    value.map(round3).serialize(serializer)
}

/// Events and reports for the tests of this module and of the renderers.
#[cfg(test)]
pub mod sample {
    use super::*;

    /// An attempt on 127.0.0.1:1 for target `h:1`.
    pub fn attempt(round: u32, verdict: Verdict, time_ms: f64) -> Event {
        Event::Attempt {
            target: "h:1".into(),
            round,
            address: "127.0.0.1:1".parse().unwrap(),
            outcome: Outcome {
                verdict,
                time_ms,
                source: None,
                os_error: None,
                chat: None,
                tls: None,
                no_neighbour: false,
            },
            hint: verdict
                .hint(&"127.0.0.1:1".parse().unwrap())
                .map(str::to_string),
        }
    }

    /// The system resolver's answer for `h`: one address, 127.0.0.1.
    pub fn dns(round: u32) -> Event {
        Event::Dns {
            target: "h:1".into(),
            round,
            system: DnsAnswer {
                source: "system".into(),
                records: vec![crate::probe::resolve::DnsRecord {
                    address: "127.0.0.1".parse().unwrap(),
                    ttl: None,
                }],
                time_ms: 0.5,
                failure: None,
                error: None,
                chain: Vec::new(),
            },
            server: None,
            warnings: vec!["127.0.0.1 in DNS: loopback".into()],
        }
    }

    /// A report for `h:1` with the events folded in and closed.
    pub fn report(events: &[Event]) -> Report {
        let mut report = Report::new(&[Target::parse("h:1").unwrap()]);
        for event in events {
            report.record(0, event);
        }
        report.close(Checks::default());
        report
    }
}

#[cfg(test)]
mod tests {
    use super::sample::{attempt, dns, report};
    use super::*;

    #[test]
    fn summary_counts_loss_and_rtt_like_ping() {
        let mut report = TargetReport::new("h:1".into(), "h".into(), 1);
        report.record(&attempt(1, Verdict::Open, 1.0));
        report.record(&attempt(2, Verdict::Filtered, 3000.0));
        report.record(&attempt(3, Verdict::Open, 3.0));
        let s = &report.addresses[0];
        assert_eq!((s.sent, s.open), (3, 2));
        assert_eq!(round3(s.loss_pct), 33.333);
        assert_eq!(
            (s.rtt_min_ms, s.rtt_avg_ms, s.rtt_max_ms),
            (Some(1.0), Some(2.0), Some(3.0))
        );
        assert_eq!(s.rtt_mdev_ms, Some(1.0));
        assert!(report.reachable);
    }

    #[test]
    fn the_summary_keeps_full_precision_over_many_rounds() {
        let times: Vec<f64> = (0..200).map(|i| 0.1 + 0.0007 * f64::from(i % 7)).collect();
        let mut report = TargetReport::new("h:1".into(), "h".into(), 1);
        for (round, time) in (1..).zip(&times) {
            report.record(&attempt(round, Verdict::Open, *time));
        }
        let mean = times.iter().sum::<f64>() / 200.0;
        let mdev = (times.iter().map(|t| (t - mean).powi(2)).sum::<f64>() / 200.0).sqrt();
        let s = &report.addresses[0];
        assert!((s.rtt_avg_ms.unwrap() - mean).abs() < 1e-12, "{s:?} {mean}");
        assert!(
            (s.rtt_mdev_ms.unwrap() - mdev).abs() < 1e-12,
            "{s:?} {mdev}"
        );
        let json = serde_json::to_value(s).unwrap();
        assert_eq!(
            json["rtt_mdev_ms"],
            round3(mdev),
            "rounded only when printed"
        );
    }

    #[test]
    fn events_go_to_their_target_and_settle_the_exit_code() {
        let mut lost = dns(1);
        if let Event::Dns { system, .. } = &mut lost {
            system.records.clear();
            system.failure = Some(crate::probe::resolve::DnsFailure::NoRecords);
        }
        let unresolved = report(&[lost]);
        assert_eq!(unresolved.exit_code, EXIT_RESOLUTION_FAILED);
        // Ctrl-C before a target's first round was told: not reached, not a name that failed.
        let never_began = report(&[]);
        assert_eq!(never_began.exit_code, EXIT_NONE_REACHABLE);
        let closed = report(&[dns(1), attempt(1, Verdict::Closed, 0.1)]);
        assert_eq!(closed.exit_code, EXIT_NONE_REACHABLE);
        assert_eq!(closed.targets[0].warnings, ["127.0.0.1 in DNS: loopback"]);
        let mut open = report(&[dns(1), attempt(1, Verdict::Open, 0.1)]);
        assert_eq!(open.exit_code, EXIT_ALL_REACHABLE);
        let chat = Checks {
            chat: true,
            ..Checks::default()
        };
        assert_eq!(
            open.close(chat),
            EXIT_CHECK_FAILED,
            "no soquete server seen"
        );
        let tls = Checks {
            tls: true,
            ..Checks::default()
        };
        assert_eq!(open.close(tls), EXIT_CHECK_FAILED, "no TLS check passed");
    }

    /// An attempt of target `h:1` on `address`.
    fn attempt_on(address: &str, verdict: Verdict) -> Event {
        match attempt(1, verdict, 0.1) {
            Event::Attempt {
                target,
                round,
                outcome,
                hint,
                ..
            } => Event::Attempt {
                target,
                round,
                address: address.parse().unwrap(),
                outcome,
                hint,
            },
            other => other,
        }
    }

    #[test]
    fn every_address_counts_unless_any_is_asked_for() {
        let events = [
            dns(1),
            attempt_on("[::1]:1", Verdict::Closed),
            attempt_on("127.0.0.1:1", Verdict::Open),
        ];
        let mut half = report(&events);
        assert_eq!(half.exit_code, EXIT_SOME_REACHABLE, "a dead AAAA counts");
        let any = Checks {
            any: true,
            ..Checks::default()
        };
        assert_eq!(half.close(any), EXIT_ALL_REACHABLE, "nc's rule");
        let dead = report(&events[..2]);
        assert_eq!(dead.exit_code, EXIT_NONE_REACHABLE);
    }
}
