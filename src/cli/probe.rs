//! `soquete probe`'s flags and their conversion into `probe::Config`.

use clap::Args;

use super::parse_interval;

/// `soquete probe`: reachability of (dynamic-DNS) hosts, address by address.
#[derive(Args, Debug, Clone)]
#[command(
    after_long_help = "Verdicts, per address: open (the handshake completed), closed (a reset \
    came back: nothing listens there, or only on 127.0.0.1), filtered (no answer before the \
    timeout: a firewall or security group drops it, or DNS points at an old IP), unreachable (an \
    ICMP error: no route, host down, administratively prohibited, protocol unreachable; or a \
    host on this very link that ARP/neighbour discovery cannot find), error (a local \
    failure).\n\n\
    Exit status: 0 every address of every target reachable (and, with --chat, a soquete server \
    on each target); 1 some addresses reachable, not all (a dead AAAA beside a live A is 1: the \
    IPv6 users of that host cannot connect); 2 none reachable; 3 a name did not resolve; 4 \
    reachable, but a check failed: --chat found no soquete server (or one that needs TLS, \
    reached without --tls: add --tls), or --tls a certificate that does not verify, has expired or does not name HOST; 64 bad arguments (as in every \
    subcommand). With --any a target counts as reachable when one of its addresses is (nc -z's \
    rule), and 0/1/2 count targets.\n\n\
    Ctrl-C ends the run at once with the summary so far (an attempt still under way gets no \
    verdict, and its address counts as not reachable); a second Ctrl-C exits at once with 130.\n\n\
    --tls: after the TCP verdict, a TLS handshake with HOST as the name (SNI), then: handshake \
    time, TLS version and cipher, the certificate's subject and names (and whether HOST is among \
    them: a certificate for another name is a classic sign of DNS pointing at an old address), \
    issuer, days until expiry (a warning under 14), SHA-256 fingerprint, and whether the chain \
    verifies against the system's roots (or --tls-ca). With --chat too, the soquete check \
    speaks through TLS (as to `serve --tls`).\n\n\
    --json: without --count (or with -c 1) one document at the end, {\"targets\": [...], \
    \"interrupted\", \"exit_code\"}; with -c N (N not 1) NDJSON: a line per event as it \
    happens (type dns, dns_change, attempt; every round begins with its dns line), then a line \
    {\"type\": \"summary\", ...} per target holding the same fields as a target of the \
    document, and {\"type\": \"exit\", \"interrupted\", \"exit_code\"}. A target's fields: \
    target, host, port, system and server (the latest DNS answers: source, records [{address, \
    ttl}], time_ms, failure (nxdomain, no_name, no_records, timeout, servfail, refused, other), error, \
    chain [{name, target, ttl}]), warnings, addresses (per address: sent, open, loss_pct, \
    rtt_min/avg/max/mdev_ms, last_verdict, last_time_ms, source, os_error, hint, chat, tls), \
    reachable, soquete, tls_ok, resolved, rounds (begun), lost_rounds (no address: the name did \
    not resolve), lost_reason. The README has the full table.\n\n\
    Examples:\n  soquete probe meuchat.ddns.net\n  \
    soquete probe meuchat.ddns.net:443 || echo \"some address of it is down\"\n  \
    soquete probe meuchat.ddns.net:443 --any || echo \"no address of it answers\"\n  \
    soquete probe meuchat.ddns.net:65432 --chat --expect-ip 203.0.113.7\n  \
    soquete probe localhost:22 --count 5 --interval 0.5\n  \
    soquete probe example.org:443 --server 8.8.8.8 --json\n  \
    soquete probe --tls meuchat.ddns.net:443"
)]
pub struct ProbeArgs {
    #[arg(
        value_name = "HOST[:PORT]",
        required = true,
        help = "Targets: HOST, HOST:PORT, IPv4, [IPv6]:PORT (port 65432 when not given)"
    )]
    pub targets: Vec<String>,

    /// Seconds to wait for each connection before calling it filtered
    #[arg(short = 'w', long = "timeout", value_name = "SECS", default_value = "3", value_parser = parse_timeout)]
    pub timeout: f64,

    /// IPv4 addresses only
    #[arg(short = '4', long = "ipv4", conflicts_with = "ipv6")]
    pub ipv4: bool,

    /// IPv6 addresses only
    #[arg(short = '6', long = "ipv6")]
    pub ipv6: bool,

    /// Rounds of attempts, ping-style (0: until Ctrl-C); each round resolves the name again, and a round it does not resolve is lost (shown, counted in the summary and the exit status)
    #[arg(short = 'c', long = "count", value_name = "N")]
    pub count: Option<u32>,

    /// Seconds between rounds
    #[arg(short = 'i', long = "interval", value_name = "SECS", default_value = "1", value_parser = parse_interval)]
    pub interval: f64,

    /// After connecting, speak the soquete protocol and report what server is there
    #[arg(long = "chat")]
    pub chat: bool,

    /// After connecting, a TLS handshake: version, cipher, the certificate's names, issuer,
    /// expiry and fingerprint, and whether it verifies (against the system's roots, or --tls-ca)
    #[arg(long = "tls")]
    pub tls: bool,

    /// With --tls: verify against the CA certificates of this PEM file instead of the system's.
    /// A file that cannot be read or holds no certificate: exit 64
    #[arg(long = "tls-ca", value_name = "FILE", requires = "tls")]
    pub tls_ca: Option<std::path::PathBuf>,

    /// Also ask this DNS server directly (IP or IP:PORT), show its answers and TTLs, flag disagreement
    #[arg(long = "server", value_name = "IP")]
    pub dns_server: Option<String>,

    /// The address the host really has (repeatable); DNS answers are compared with it
    #[arg(long = "expect-ip", value_name = "IP")]
    pub expect_ip: Vec<std::net::IpAddr>,

    /// Exit 0 when each target has one open address (nc -z's rule), not only when every address is open
    #[arg(long = "any")]
    pub any: bool,

    /// One JSON document (NDJSON, a line per event then a summary per target, with --count other than 1)
    #[arg(long = "json")]
    pub json: bool,
}

/// The probe's own configuration, from its command line; a bad target or DNS server is a usage
/// error.
impl TryFrom<ProbeArgs> for crate::probe::Config {
    type Error = crate::error::Error;

    fn try_from(args: ProbeArgs) -> Result<Self, Self::Error> {
        use std::time::Duration;
        let families = crate::probe::resolve::Families {
            ipv4: !args.ipv6,
            ipv6: !args.ipv4,
        };
        let targets = args
            .targets
            .iter()
            .map(|text| crate::probe::config::parse_target(text, families))
            .collect::<Result<Vec<_>, _>>()?;
        let dns_server = args
            .dns_server
            .as_deref()
            .map(parse_dns_server)
            .transpose()?;
        Ok(Self {
            targets,
            timeout: Duration::from_secs_f64(args.timeout),
            families,
            rounds: match args.count {
                None => Some(1),
                Some(0) => None,
                Some(n) => Some(n),
            },
            interval: Duration::from_secs_f64(args.interval),
            chat: args.chat,
            tls: args.tls,
            tls_ca: args.tls_ca,
            dns_server,
            expect_ip: args.expect_ip,
            any: args.any,
            json: args.json,
        })
    }
}

/// `--server`: `IP` or `IP:PORT` (port 53 by default), IPv6 bracketed with a port.
fn parse_dns_server(text: &str) -> Result<std::net::SocketAddr, crate::error::Error> {
    use std::net::{IpAddr, SocketAddr};
    if let Some(fix) = crate::net::target::unbracketed_port(text) {
        return Err(crate::error::Error::Usage(format!(
            "bad DNS server '{text}': {fix}"
        )));
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    text.trim_matches(['[', ']'])
        .parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| {
            crate::error::Error::Usage(format!("bad DNS server '{text}': expected IP or IP:PORT"))
        })
}

fn parse_timeout(text: &str) -> Result<f64, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("'{text}' is not a number of seconds"))?;
    if !(0.001..=300.0).contains(&secs) {
        return Err(format!("{secs} s is out of range (0.001 to 300 seconds)"));
    }
    Ok(secs)
}
