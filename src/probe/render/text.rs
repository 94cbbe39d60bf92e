//! Readable lines: each event as it arrives (a line per attempt, `seq=N` when the probe repeats,
//! the target's name first when there are several), then ping-style summaries.

use std::net::IpAddr;

use super::Renderer;
use crate::error::Result;
use crate::net::sanitize::{neutralize, visible};
use crate::net::tls::certificate::days;
use crate::probe::connect::ChatCheck;
use crate::probe::report::{Event, Report, TargetReport, round3};
use crate::probe::resolve::DnsAnswer;
use crate::probe::tls::TlsCheck;

/// Lines for people.
#[derive(Debug, Clone, Copy, Default)]
pub struct Text {
    /// Several targets: each line starts with its target's name.
    pub label_targets: bool,
    /// More than one round: `seq=N` on each attempt, and the summaries at the end.
    pub rounds: bool,
}

impl Renderer for Text {
    fn event(&self, event: &Event) -> Result<Vec<u8>> {
        let label = self.label_targets.then_some(event.target());
        Ok(joined(event_lines(event, label, self.rounds)))
    }

    fn finish(&self, report: &Report) -> Result<Vec<u8>> {
        let interrupted = report.interrupted.then(|| {
            "--- interrupted (Ctrl-C): any attempt still under way was left without a verdict"
                .to_string()
        });
        let lines = report
            .targets
            .iter()
            .flat_map(|target| summary_lines(target, self.rounds))
            .chain(interrupted);
        Ok(joined(lines))
    }
}

/// Each line followed by a newline.
fn joined(lines: impl IntoIterator<Item = String>) -> Vec<u8> {
    let mut bytes = Vec::new();
    for line in lines {
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
    }
    bytes
}

/// Readable lines for one event. `label` prefixes every line when several targets are probed;
/// `rounds` shows `seq=N` (ping-style) when there is more than one round.
fn event_lines(event: &Event, label: Option<&str>, rounds: bool) -> Vec<String> {
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
                for answer in std::iter::once(system).chain(server) {
                    lines.push(format!("{prefix}dns  {}", dns_line(answer)));
                    if let Some(chain) = chain_line(answer) {
                        lines.push(format!("{prefix}dns    {chain}"));
                    }
                }
                for warning in warnings {
                    lines.push(format!("{prefix}!    {warning}"));
                }
            } else if system.failure.is_some() {
                // A later round without addresses: lost, and said so in its turn.
                lines.push(format!("{prefix}seq={round}  lost: {}", dns_line(system)));
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
            if let Some(check) = &outcome.tls {
                let lines_of_tls = tls_lines(check, &target_host(target));
                lines.extend(
                    lines_of_tls
                        .into_iter()
                        .map(|line| format!("{prefix}{:<22} {line}", "")),
                );
            }
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
            "{source}, after {:.1} ms: {}{}",
            answer.time_ms,
            failure.describe(),
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

/// The CNAME steps, dig's way round: `www.test -> mid.test (ttl 77 s) -> host.test (ttl 88 s)`.
fn chain_line(answer: &DnsAnswer) -> Option<String> {
    let first = answer.chain.first()?;
    let mut line = format!("cname chain: {}", first.name);
    for step in &answer.chain {
        line.push_str(&format!(" -> {} (ttl {} s)", step.target, step.ttl));
    }
    Some(line)
}

/// The host part of a target as given (`HOST:PORT`, `[v6]:PORT`).
fn target_host(target: &str) -> String {
    crate::net::target::Target::parse(target).map_or_else(|_| target.to_string(), |t| t.host)
}

/// What `--tls` found, a line each; the certificate's text is the server's, so neutralised.
fn tls_lines(check: &TlsCheck, host: &str) -> Vec<String> {
    let safe = |text: &str| neutralize(text).into_owned();
    // A certificate's names shown as they are, escapes included: two never look the same.
    let shown = |text: &str| visible(text).into_owned();
    if let Some(error) = &check.error {
        return vec![format!("tls: handshake failed: {}", safe(error))];
    }
    let mut lines = vec![format!(
        "tls: {} {}, handshake {:.3} ms",
        check.version.as_deref().unwrap_or("?"),
        check.cipher.as_deref().unwrap_or("?"),
        check.handshake_ms.unwrap_or(0.0)
    )];
    if let Some(cert) = &check.certificate {
        let names = if cert.names.is_empty() {
            "no names".to_string()
        } else {
            shown(&cert.names.join(", "))
        };
        let among = match check.names_host {
            Some(true) => format!("{host} among them"),
            _ => format!("{host} NOT among them"),
        };
        lines.push(format!(
            "certificate: {}; names: {names} ({among})",
            shown(&cert.subject)
        ));
        let expiry = if cert.days_left < 0 {
            format!("expired {} ago", days(-cert.days_left))
        } else {
            format!("{} left", days(cert.days_left))
        };
        lines.push(format!(
            "issuer: {}; valid until {} ({expiry})",
            shown(&cert.issuer),
            cert.not_after
        ));
        lines.push(format!("fingerprint: {}", cert.fingerprint));
        lines.push(match check.chain_length {
            1 => "chain: 1 certificate sent (the server's own alone)".to_string(),
            sent => format!("chain: {sent} certificates sent (the server's own first)"),
        });
    }
    let against = match check.verified_against.as_str() {
        "system" => "the system's roots".to_string(),
        file => format!("the CA in {}", safe(file)),
    };
    lines.push(match &check.problem {
        None => format!("verified: yes, against {against}"),
        Some(problem) => format!("verified: NO, against {against}: {}", safe(problem)),
    });
    for warning in &check.warnings {
        lines.push(format!("! {}", safe(warning)));
    }
    lines
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
        ChatCheck::PasswordRequired => {
            "soquete server: its room needs a password (none was tried)".into()
        }
        ChatCheck::NeedsTls => "a soquete server that needs TLS: add --tls".into(),
        ChatCheck::NotSoquete { first_line } => {
            format!("something answered that is not soquete: \"{first_line}\"")
        }
        ChatCheck::Silent => "open but silent: nothing answered the soquete hello".into(),
        ChatCheck::HungUp => "open, then closed without a word: something accepts and hangs up \
                              at once (a full or filtering server; not a soquete server)"
            .into(),
    }
}

/// The closing lines: a per-address summary, ping-style, when there was more than one round.
fn summary_lines(report: &TargetReport, rounds: bool) -> Vec<String> {
    if !rounds {
        return Vec::new();
    }
    let lost = report.lost_reason.as_ref().map(|reason| {
        format!(
            "--- {}: {} of {} rounds lost, no address to try: {reason}",
            report.target, report.lost_rounds, report.rounds
        )
    });
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
                s.address,
                report.target,
                s.sent,
                s.open,
                round3(s.loss_pct)
            )
        })
        .chain(lost)
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
    use crate::net::tls::certificate::CertificateInfo;
    use crate::probe::connect::Verdict;
    use crate::probe::report::sample::{attempt, dns, report};

    fn text(renderer: Text, event: &Event) -> String {
        String::from_utf8(renderer.event(event).unwrap()).unwrap()
    }

    #[test]
    fn a_certificates_text_is_neutralised_and_the_verdict_said() {
        let hostile = "evil\u{1b}]0;pwned\u{7}";
        let cert = CertificateInfo {
            subject: format!("CN={hostile}"),
            names: vec![hostile.to_string()],
            issuer: "CN=x".into(),
            self_signed: true,
            not_before: "2026-01-01T00:00:00+00:00".into(),
            not_after: "2026-12-01T00:00:00+00:00".into(),
            days_left: 3,
            fingerprint: "SHA256:AB".into(),
        };
        let check = TlsCheck {
            error: None,
            handshake_ms: Some(1.5),
            version: Some("TLSv1.3".into()),
            cipher: Some("TLS13_AES_128_GCM_SHA256".into()),
            certificate: Some(cert),
            chain_length: 1,
            chain_incomplete: false,
            names_host: Some(false),
            chain_verified: false,
            verified_against: "system".into(),
            problem: Some("it is self-signed: no CA vouches for it".into()),
            warnings: vec!["the certificate expires in 3 days: renew it".into()],
            ok: false,
        };
        let lines = tls_lines(&check, "h").join("\n");
        assert!(
            !lines.contains('\u{1b}') && !lines.contains('\u{7}'),
            "{lines:?}"
        );
        assert!(lines.contains("(h NOT among them)"), "{lines}");
        assert!(lines.contains("(3 days left)"), "{lines}");
        assert!(lines.contains("verified: NO, against the system's roots: it is self-signed"));
        assert!(
            lines.ends_with("! the certificate expires in 3 days: renew it"),
            "{lines}"
        );
    }

    #[test]
    fn an_attempt_is_one_aligned_line_and_a_first_round_hint() {
        let once = Text::default();
        assert_eq!(
            text(once, &attempt(1, Verdict::Closed, 0.25)),
            "127.0.0.1:1            closed          0.250 ms\n                       \
             hint: nothing listens on that port on this machine\n"
        );
        let repeated = Text {
            rounds: true,
            ..Text::default()
        };
        assert_eq!(
            text(repeated, &attempt(2, Verdict::Open, 12.5)),
            "127.0.0.1:1            seq=2  open           12.500 ms\n"
        );
    }

    #[test]
    fn a_dns_failure_says_the_time_first_then_what_the_resolver_said() {
        let failed = DnsAnswer {
            source: "system".into(),
            records: Vec::new(),
            time_ms: 1.4,
            failure: Some(crate::probe::resolve::DnsFailure::Refused),
            error: Some("refused".into()),
            chain: Vec::new(),
        };
        assert_eq!(
            dns_line(&failed),
            "system resolver, after 1.4 ms: the resolver answered REFUSED: it does not answer \
             this client, or for this name (refused)"
        );
    }

    #[test]
    fn several_targets_name_theirs_and_dns_is_said_on_the_first_round() {
        let labelled = Text {
            label_targets: true,
            rounds: true,
        };
        assert_eq!(
            text(labelled, &dns(1)),
            "h:1  dns  system resolver: 1 address in 0.5 ms: 127.0.0.1\n\
             h:1  !    127.0.0.1 in DNS: loopback\n"
        );
        assert_eq!(text(labelled, &dns(2)), "");
    }

    #[test]
    fn summaries_are_ping_style_and_only_when_the_probe_repeats() {
        let events = [
            dns(1),
            attempt(1, Verdict::Open, 1.0),
            attempt(2, Verdict::Filtered, 3000.0),
            attempt(3, Verdict::Open, 3.0),
        ];
        let report = report(&events);
        let repeated = Text {
            rounds: true,
            ..Text::default()
        };
        assert_eq!(
            String::from_utf8(repeated.finish(&report).unwrap()).unwrap(),
            "--- 127.0.0.1:1 (h:1): 3 sent, 2 open, 33.333% loss, \
             rtt min/avg/max/mdev = 1.000/2.000/3.000/1.000 ms\n"
        );
        assert!(Text::default().finish(&report).unwrap().is_empty());
    }
}
