//! What the probe found, as plain serializable data, and its renderings: readable lines and JSON.
//! Gathering happens elsewhere; nothing here touches the network.

use std::net::{IpAddr, SocketAddr};

use serde::Serialize;

use super::connect::{ChatCheck, Outcome, Verdict};
use super::resolve::DnsAnswer;

/// Something the probe learned, in the order it learned it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A name was resolved (each round, with --count).
    Dns {
        target: String,
        round: u32,
        system: DnsAnswer,
        server: Option<DnsAnswer>,
        /// Remarks on the answer: private addresses in DNS, disagreement, --expect-ip mismatch.
        warnings: Vec<String>,
    },
    /// The DNS answer changed between rounds.
    DnsChange {
        target: String,
        round: u32,
        time: String,
        before: Vec<IpAddr>,
        after: Vec<IpAddr>,
    },
    /// One connection attempt to one address.
    Attempt {
        target: String,
        round: u32,
        address: SocketAddr,
        #[serde(flatten)]
        outcome: Outcome,
        hint: Option<String>,
    },
}

/// Per-address statistics over all rounds, ping-style.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AddressSummary {
    pub address: SocketAddr,
    pub sent: u32,
    pub open: u32,
    pub loss_pct: f64,
    pub rtt_min_ms: Option<f64>,
    pub rtt_avg_ms: Option<f64>,
    pub rtt_max_ms: Option<f64>,
    pub rtt_mdev_ms: Option<f64>,
    pub last_verdict: Verdict,
    /// The last attempt's time to verdict, source, OS error and hint.
    pub last_time_ms: f64,
    pub source: Option<String>,
    pub os_error: Option<String>,
    pub hint: Option<String>,
    pub chat: Option<ChatCheck>,
}

/// Everything about one target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetReport {
    pub target: String,
    pub host: String,
    pub port: u16,
    pub dns: Option<DnsAnswer>,
    pub dns_server: Option<DnsAnswer>,
    pub warnings: Vec<String>,
    pub addresses: Vec<AddressSummary>,
    /// At least one address was open.
    pub reachable: bool,
    /// With --chat: a soquete server answered on some open address.
    pub soquete: Option<bool>,
    pub resolved: bool,
}

/// The whole probe, for `--json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Document {
    pub targets: Vec<TargetReport>,
    pub exit_code: i32,
}

impl TargetReport {
    /// An empty report for a target about to be probed.
    pub fn new(target: String, host: String, port: u16) -> TargetReport {
        TargetReport {
            target,
            host,
            port,
            dns: None,
            dns_server: None,
            warnings: Vec::new(),
            addresses: Vec::new(),
            reachable: false,
            soquete: None,
            resolved: false,
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
                self.dns = Some(system.clone());
                self.dns_server = server.clone();
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
            last_verdict: verdict,
            last_time_ms: 0.0,
            source: None,
            os_error: None,
            hint: None,
            chat: None,
        }
    }

    fn add(&mut self, outcome: &Outcome) {
        let previous_open = self.open;
        self.sent += 1;
        self.last_verdict = outcome.verdict;
        self.last_time_ms = outcome.time_ms;
        self.source = outcome.source.clone();
        self.os_error = outcome.os_error.clone();
        self.hint = outcome.verdict.hint(&self.address).map(str::to_string);
        if outcome.chat.is_some() {
            self.chat = outcome.chat.clone();
        }
        if outcome.verdict == Verdict::Open {
            self.open += 1;
            let rtt = outcome.time_ms;
            let n = f64::from(self.open);
            let old_avg = self.rtt_avg_ms.unwrap_or(0.0);
            let avg = old_avg + (rtt - old_avg) / n;
            // mdev as ping computes it: the standard deviation of the round-trip times.
            let old_var = self.rtt_mdev_ms.map_or(0.0, |m| m * m) * f64::from(previous_open);
            let var = (old_var + (rtt - old_avg) * (rtt - avg)) / n;
            self.rtt_avg_ms = Some(round3(avg));
            self.rtt_mdev_ms = Some(round3(var.max(0.0).sqrt()));
            self.rtt_min_ms = Some(self.rtt_min_ms.map_or(rtt, |m| m.min(rtt)));
            self.rtt_max_ms = Some(self.rtt_max_ms.map_or(rtt, |m| m.max(rtt)));
        }
        self.loss_pct = round3(100.0 * f64::from(self.sent - self.open) / f64::from(self.sent));
    }
}

fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

/// Readable lines for one event. `label` prefixes every line when several targets are probed;
/// `rounds` shows `seq=N` (ping-style) when there is more than one round.
pub fn event_lines(event: &Event, label: Option<&str>, rounds: bool) -> Vec<String> {
    let prefix = label.map_or_else(String::new, |l| format!("{l}  "));
    let mut lines = Vec::new();
    match event {
        Event::Dns {
            system,
            server,
            warnings,
            round,
            ..
        } => {
            if *round <= 1 {
                lines.push(format!("{prefix}dns  {}", dns_line(system)));
                if let Some(server) = server {
                    lines.push(format!("{prefix}dns  {}", dns_line(server)));
                }
                for warning in warnings {
                    lines.push(format!("{prefix}!    {warning}"));
                }
            }
        }
        Event::DnsChange {
            time,
            before,
            after,
            ..
        } => {
            lines.push(format!(
                "{prefix}dns  answer changed at {time}: {} -> {}",
                list(before),
                list(after)
            ));
        }
        Event::Attempt {
            target,
            address,
            outcome,
            round,
            hint,
        } => {
            // A target given as IP:PORT is its only address: name it once.
            let prefix = if *target == address.to_string() {
                String::new()
            } else {
                prefix.clone()
            };
            let seq = if rounds {
                format!("seq={round}  ")
            } else {
                String::new()
            };
            let mut line = format!(
                "{prefix}{:<22} {seq}{:<11} {:>9.3} ms",
                address.to_string(),
                outcome.verdict.word(),
                outcome.time_ms
            );
            if let Some(source) = &outcome.source {
                line.push_str(&format!("  from {source}"));
            }
            if let Some(error) = &outcome.os_error {
                line.push_str(&format!("  ({error})"));
            }
            lines.push(line);
            if let Some(check) = &outcome.chat {
                lines.push(format!("{prefix}{:<22} {}", "", chat_line(check)));
            }
            // Ping-style rounds repeat the same verdict: the hint is said on the first round.
            if let Some(hint) = hint.as_ref().filter(|_| *round <= 1) {
                lines.push(format!("{prefix}{:<22} hint: {hint}", ""));
            }
        }
    }
    lines
}

fn dns_line(answer: &DnsAnswer) -> String {
    let source = match answer.source.as_str() {
        "system" => "system resolver".to_string(),
        "literal" => {
            return match (answer.addresses().first(), &answer.error) {
                (Some(address), _) => format!("{address} is an address: nothing to resolve"),
                (None, error) => error.clone().unwrap_or_default(),
            };
        }
        server => format!("server {server}"),
    };
    match (answer.failure, &answer.error) {
        (Some(failure), error) => format!(
            "{source}: {} after {:.1} ms{}",
            failure.describe(),
            answer.time_ms,
            error
                .as_ref()
                .map_or_else(String::new, |e| format!(" ({e})"))
        ),
        (None, _) => {
            let records: Vec<String> = answer
                .records
                .iter()
                .map(|r| match r.ttl {
                    Some(ttl) => format!("{} (ttl {ttl} s)", r.address),
                    None => r.address.to_string(),
                })
                .collect();
            format!(
                "{source}: {} address{} in {:.1} ms: {}",
                records.len(),
                if records.len() == 1 { "" } else { "es" },
                answer.time_ms,
                records.join(", ")
            )
        }
    }
}

fn chat_line(check: &ChatCheck) -> String {
    match check {
        ChatCheck::Soquete {
            server,
            version,
            mode,
            room_size,
        } => format!(
            "soquete server: {server}, protocol v{version}, {mode} mode, {room_size} in the room"
        ),
        ChatCheck::NotSoquete { first_line } => {
            format!("something answered that is not soquete: \"{first_line}\"")
        }
        ChatCheck::Silent => "open but silent: nothing answered the soquete hello".into(),
    }
}

/// The closing lines: a per-address summary, ping-style, when there was more than one round.
pub fn summary_lines(report: &TargetReport, rounds: bool) -> Vec<String> {
    if !rounds {
        return Vec::new();
    }
    report
        .addresses
        .iter()
        .map(|s| {
            let rtt = match (s.rtt_min_ms, s.rtt_avg_ms, s.rtt_max_ms, s.rtt_mdev_ms) {
                (Some(min), Some(avg), Some(max), Some(mdev)) => {
                    format!(", rtt min/avg/max/mdev = {min:.3}/{avg:.3}/{max:.3}/{mdev:.3} ms")
                }
                _ => String::new(),
            };
            format!(
                "--- {} ({}): {} sent, {} open, {}% loss{rtt}",
                s.address, report.target, s.sent, s.open, s.loss_pct
            )
        })
        .collect()
}

fn list(addresses: &[IpAddr]) -> String {
    if addresses.is_empty() {
        return "(none)".into();
    }
    addresses
        .iter()
        .map(IpAddr::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(verdict: Verdict, time_ms: f64) -> Outcome {
        Outcome {
            verdict,
            time_ms,
            source: None,
            os_error: None,
            chat: None,
        }
    }

    fn attempt(round: u32, verdict: Verdict, time_ms: f64) -> Event {
        Event::Attempt {
            target: "h:1".into(),
            round,
            address: "127.0.0.1:1".parse().unwrap(),
            outcome: outcome(verdict, time_ms),
            hint: None,
        }
    }

    #[test]
    fn summary_counts_loss_and_rtt_like_ping() {
        let mut report = TargetReport::new("h:1".into(), "h".into(), 1);
        report.record(&attempt(1, Verdict::Open, 1.0));
        report.record(&attempt(2, Verdict::Filtered, 3000.0));
        report.record(&attempt(3, Verdict::Open, 3.0));
        let s = &report.addresses[0];
        assert_eq!((s.sent, s.open), (3, 2));
        assert_eq!(s.loss_pct, 33.333);
        assert_eq!(
            (s.rtt_min_ms, s.rtt_avg_ms, s.rtt_max_ms),
            (Some(1.0), Some(2.0), Some(3.0))
        );
        assert_eq!(s.rtt_mdev_ms, Some(1.0));
        assert!(report.reachable);
        let lines = summary_lines(&report, true);
        assert_eq!(
            lines[0],
            "--- 127.0.0.1:1 (h:1): 3 sent, 2 open, 33.333% loss, rtt min/avg/max/mdev = 1.000/2.000/3.000/1.000 ms"
        );
    }

    #[test]
    fn attempt_line_names_address_verdict_and_time() {
        let lines = event_lines(&attempt(1, Verdict::Closed, 0.25), None, false);
        assert!(lines[0].starts_with("127.0.0.1:1"), "{lines:?}");
        assert!(
            lines[0].contains("closed") && lines[0].contains("0.250 ms"),
            "{lines:?}"
        );
    }
}
