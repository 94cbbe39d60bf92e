//! What the server concludes about its own name from one check's [`Facts`]: all well, or the
//! findings, each with the hint `soquete probe` would give. Plain data in, plain text out.

use std::collections::BTreeSet;
use std::fmt::Write;
use std::net::IpAddr;

use super::check::Facts;

/// One thing wrong with the name, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding(pub String);

/// The findings of one check (none: all is well), and a one-line summary of what was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub findings: Vec<Finding>,
    /// The addresses seen, for the ok line and `/status`.
    pub seen: String,
}

impl Verdict {
    /// Judges `facts` about `name`, served on `port`.
    pub fn of(name: &str, port: u16, facts: &Facts) -> Verdict {
        let mut findings = Vec::new();
        let published = facts.published();
        let cached = facts.cached.as_ref().ok();
        let authoritative = facts.authoritative.as_ref().ok().filter(|a| !a.is_empty());
        if published.is_empty() {
            let why = [&facts.cached, &facts.authoritative]
                .iter()
                .filter_map(|r| r.as_ref().err().cloned())
                .collect::<Vec<_>>()
                .join("; ");
            let why = if why.is_empty() {
                "no address records".into()
            } else {
                why
            };
            findings.push(Finding(format!(
                "{name} does not resolve ({why}): check that the DDNS client runs and updates the record"
            )));
        }
        // The cache answered but the authority could not be asked: said, not skipped in silence
        // (a name that does not resolve at all says both reasons above).
        if let (Err(why), false) = (&facts.authoritative, published.is_empty()) {
            findings.push(Finding(format!(
                "the name's authoritative servers could not be asked: {why} (a stale cache cannot \
                 be told from a fresh one)"
            )));
        }
        if let (Some(cached), Some(authoritative)) = (cached, authoritative)
            && cached != authoritative
        {
            findings.push(Finding(format!(
                "stale DNS: the authoritative servers say {}, the resolver's cache says {}: clients \
                 get the old address until the cache expires (lower the record's TTL, or wait it out)",
                list(authoritative),
                list(cached)
            )));
        }
        if let Ok(public) = &facts.public {
            for ip in public {
                let same_family: Vec<&IpAddr> = published
                    .iter()
                    .filter(|p| p.is_ipv4() == ip.is_ipv4())
                    .collect();
                // A name without AAAA is no fault: many servers serve IPv4 only.
                let points_elsewhere = !same_family.is_empty() && !same_family.contains(&ip);
                let lacks_v4 = same_family.is_empty() && ip.is_ipv4() && !published.is_empty();
                if points_elsewhere || lacks_v4 {
                    findings.push(Finding(format!(
                        "stale DNS: {name} points at {}, but this server's public address is {ip} \
                         (STUN): update the DDNS record",
                        if same_family.is_empty() {
                            "no IPv4 address".into()
                        } else {
                            list(&published)
                        }
                    )));
                }
            }
        }
        for ip in &published {
            if let Some(note) = crate::net::address::unfit_for_public_dns(ip) {
                findings.push(Finding(format!("{name} publishes {ip}, a {note}")));
            }
        }
        for (ip, error) in &facts.port {
            if let (Some(error), Some(bound)) = (error, facts.loopback_bind) {
                // Not the router's fault: nothing outside this machine can reach the server.
                findings.push(Finding(format!(
                    "port {port} does not answer on {ip} ({error}): listening on {bound} only: \
                     serve --bind 0.0.0.0"
                )));
            } else if let Some(error) = error {
                findings.push(Finding(format!(
                    "port {port} does not answer on {ip} ({error}): forward port {port} on the \
                     router to this machine and allow it in its firewall (a router that does not \
                     loop its own public address back looks the same: try soquete probe from outside)"
                )));
            }
        }
        if let Err(why) = &facts.public {
            findings.push(Finding(format!(
                "this server's public address is unknown: {why} (try another --stun server, or allow UDP out)"
            )));
        }
        let mut seen = format!("{name} -> {}", list(&published));
        if let Ok(public) = &facts.public {
            let _ = write!(seen, ", public address {} (STUN)", list(public));
        }
        if !facts.port.is_empty() && facts.port.iter().all(|(_, error)| error.is_none()) {
            let _ = write!(seen, ", port {port} answers");
        }
        Verdict { findings, seen }
    }

    /// All well.
    pub fn is_ok(&self) -> bool {
        self.findings.is_empty()
    }

    /// The verdict in one line: what was seen, or every finding.
    pub fn line(&self) -> String {
        if self.is_ok() {
            format!("ok: {}", self.seen)
        } else {
            let findings: Vec<&str> = self.findings.iter().map(|f| f.0.as_str()).collect();
            format!("warning: {}", findings.join("; "))
        }
    }
}

/// Addresses, comma-separated; `(none)` for none.
fn list<'a>(addresses: impl IntoIterator<Item = &'a IpAddr>) -> String {
    let all: Vec<String> = addresses.into_iter().map(IpAddr::to_string).collect();
    if all.is_empty() {
        "(none)".into()
    } else {
        all.join(", ")
    }
}

/// The set of findings, to tell a change from the same verdict again.
pub fn key(verdict: &Verdict) -> BTreeSet<Finding> {
    verdict.findings.iter().cloned().collect()
}

#[cfg(test)]
mod tests;
