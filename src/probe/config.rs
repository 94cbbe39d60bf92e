//! What the probe runs on: plain data, built from the command line at the face (`cli/`), so
//! nothing in the probe knows how the flags were spelt.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::resolve::Families;
use crate::error::{Error, Result};
use crate::net::target::Target;

/// What the probe runs on, once the command line has been understood.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The hosts and ports to probe, in the order given.
    pub targets: Vec<Target>,
    /// How long each connection attempt (and each direct DNS query) may take.
    pub timeout: Duration,
    /// Which address families to resolve and try.
    pub families: Families,
    /// How many rounds; None: until Ctrl-C.
    pub rounds: Option<u32>,
    /// Time from the start of one round to the start of the next.
    pub interval: Duration,
    /// After an open verdict, check for a soquete server behind the port.
    pub chat: bool,
    /// After an open verdict, a TLS handshake and the certificate's details.
    pub tls: bool,
    /// `--tls-ca`: verify against this PEM file's CAs instead of the system's roots.
    pub tls_ca: Option<std::path::PathBuf>,
    /// A DNS server to ask directly, besides the system resolver.
    pub dns_server: Option<SocketAddr>,
    /// The addresses the host really has, to compare DNS answers with.
    pub expect_ip: Vec<IpAddr>,
    /// The exit code counts targets (one open address is enough, nc's rule), not addresses.
    pub any: bool,
    /// Machine-readable output: one document, or NDJSON when the probe repeats.
    pub json: bool,
}

/// Reads one probe target as [`Target::parse`] does, but refuses what a probe cannot mean, each
/// with the fix: no host (`:80`, `''` would probe this machine without saying so), an address
/// of a family -4/-6 excludes (and, as everywhere, `::1:80` for `[::1]:80`).
pub fn parse_target(text: &str, families: Families) -> Result<Target> {
    let text = text.trim();
    let bad = |why: String| Error::Usage(format!("bad target '{text}': {why}"));
    if text.is_empty() || (text.starts_with(':') && !text.starts_with("::")) {
        let port = if text.is_empty() { ":PORT" } else { text };
        return Err(bad(format!(
            "name the host to probe (127.0.0.1{port} for this machine)"
        )));
    }
    let target = Target::parse(text)?;
    match target.host.parse::<IpAddr>() {
        Ok(IpAddr::V4(_)) if !families.ipv4 => Err(bad(format!(
            "{} is an IPv4 address and -6 asks for IPv6 only: drop -6",
            target.host
        ))),
        Ok(IpAddr::V6(_)) if !families.ipv6 => Err(bad(format!(
            "{} is an IPv6 address and -4 asks for IPv4 only: drop -4",
            target.host
        ))),
        _ => Ok(target),
    }
}

impl Config {
    /// More than one round: ping-style output.
    pub fn repeated(&self) -> bool {
        self.rounds != Some(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOTH: Families = Families {
        ipv4: true,
        ipv6: true,
    };

    fn refusal(text: &str, families: Families) -> String {
        match parse_target(text, families) {
            Err(Error::Usage(message)) => message,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn odd_targets_are_refused_with_the_fix() {
        assert!(refusal(":80", BOTH).contains("127.0.0.1:80 for this machine"));
        assert!(refusal("", BOTH).contains("name the host"));
        assert!(refusal("::1:80", BOTH).contains("[::1]:80"));
        assert!(refusal("fe80::1:2", BOTH).contains("[fe80::1]:2"));
        let v6 = Families {
            ipv4: false,
            ipv6: true,
        };
        assert!(refusal("10.0.0.1:80", v6).contains("drop -6"));
        let v4 = Families {
            ipv4: true,
            ipv6: false,
        };
        assert!(refusal("[::1]:80", v4).contains("drop -4"));
        for fine in ["::1", "[::1]:80", "2001:db8::1", "host:80", "10.0.0.1"] {
            assert!(parse_target(fine, BOTH).is_ok(), "{fine}");
        }
    }
}
