//! Name resolution for the probe: the system resolver (what a client really gets) and a DNS
//! server asked directly (with TTLs), each under a deadline, with what failed and why.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use dns_lookup::{AddrInfoHints, LookupErrorKind};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use serde::Serialize;

use crate::net::clock::millis;
use crate::net::dns::{self, CnameStep, Reply};

/// Why a name did not resolve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DnsFailure {
    /// The name does not exist (NXDOMAIN).
    Nxdomain,
    /// The system resolver does not know the name (getaddrinfo's EAI_NONAME: no hosts entry,
    /// and DNS, if it was asked at all, found nothing): not said to be NXDOMAIN.
    NoName,
    /// The name exists but has no A/AAAA record (of the families asked for).
    NoRecords,
    /// No answer in time (a temporary failure).
    Timeout,
    /// The resolver answered SERVFAIL.
    Servfail,
    /// The resolver answered REFUSED.
    Refused,
    /// Anything else (the resolver said so).
    Other,
}

impl DnsFailure {
    /// Plain words for the report.
    pub fn describe(self) -> &'static str {
        match self {
            DnsFailure::Nxdomain => "the name does not exist (NXDOMAIN)",
            DnsFailure::NoName => {
                "the name is not known (no hosts entry, and DNS, if asked, did not know it)"
            }
            DnsFailure::NoRecords => "the name exists but has no address records",
            DnsFailure::Timeout => "no answer from the resolver in time",
            DnsFailure::Servfail => {
                "the resolver answered SERVFAIL: it could not get an answer from the name's own \
                 servers (down, a broken delegation or DNSSEC)"
            }
            DnsFailure::Refused => {
                "the resolver answered REFUSED: it does not answer this client, or for this name"
            }
            DnsFailure::Other => "the resolver failed",
        }
    }
}

/// One address in a DNS answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DnsRecord {
    /// The address.
    pub address: IpAddr,
    /// Time to live in seconds (known only when a DNS server was asked directly).
    pub ttl: Option<u32>,
}

/// What one resolver said about one name.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DnsAnswer {
    /// `system` (the OS resolver) or the DNS server's `IP:PORT`.
    pub source: String,
    /// The addresses served, in the resolver's order.
    pub records: Vec<DnsRecord>,
    /// How long the resolver took.
    pub time_ms: f64,
    /// Why the name did not resolve, when it did not.
    pub failure: Option<DnsFailure>,
    /// The resolver's own words, when it failed.
    pub error: Option<String>,
    /// The CNAME steps from the name to the addresses, with their TTLs (known only when a
    /// nameserver was asked directly).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub chain: Vec<CnameStep>,
}

impl DnsAnswer {
    /// The addresses, in the resolver's order.
    pub fn addresses(&self) -> Vec<IpAddr> {
        self.records.iter().map(|r| r.address).collect()
    }
}

/// Which address families to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Families {
    /// Keep IPv4 addresses.
    pub ipv4: bool,
    /// Keep IPv6 addresses.
    pub ipv6: bool,
}

impl Families {
    fn keeps(&self, address: &IpAddr) -> bool {
        match address {
            IpAddr::V4(_) => self.ipv4,
            IpAddr::V6(_) => self.ipv6,
        }
    }
}

/// Resolves `host` as a client would: through the system resolver (getaddrinfo), for at most
/// `timeout`. When the system resolver fails without saying why (a temporary failure, or no
/// answer in time), the nameservers it uses are asked directly, to say what they answered.
pub fn system(host: &str, families: Families, timeout: Duration) -> DnsAnswer {
    let start = Instant::now();
    let deadline = start + timeout;
    let (tx, rx) = crossbeam_channel::bounded(1);
    let name = host.to_string();
    // Detached: a resolver that never answers keeps this thread, never the probe.
    let _ = std::thread::Builder::new()
        .name("probe-getaddrinfo".into())
        .spawn(move || {
            let hints = AddrInfoHints {
                socktype: dns_lookup::SockType::Stream.into(),
                ..AddrInfoHints::default()
            };
            let result = dns_lookup::getaddrinfo(Some(&name), None, Some(hints)).map(|infos| {
                infos
                    .flatten()
                    .map(|info| info.sockaddr.ip())
                    .collect::<Vec<IpAddr>>()
            });
            let _ = tx.send(result);
        });
    // Half the time for the system resolver alone; then the nameservers are asked meanwhile.
    let mut direct = None;
    let first = rx.recv_timeout(timeout / 2);
    let result = match first {
        Ok(result) => Some(result),
        Err(_) => {
            direct = Some(ask_nameservers(host, families, deadline));
            rx.recv_timeout(dns::left(deadline)).ok()
        }
    };
    let mut answer = DnsAnswer {
        source: "system".into(),
        records: Vec::new(),
        time_ms: millis(start.elapsed()),
        failure: None,
        error: None,
        chain: Vec::new(),
    };
    let (failure, error) = match result {
        Some(Ok(addresses)) => {
            for address in addresses {
                if families.keeps(&address) && !answer.records.iter().any(|r| r.address == address)
                {
                    answer.records.push(DnsRecord { address, ttl: None });
                }
            }
            if !answer.records.is_empty() {
                return answer;
            }
            (
                DnsFailure::NoRecords,
                "no address of the families asked for".to_string(),
            )
        }
        Some(Err(err)) => {
            let failure = match err.kind() {
                LookupErrorKind::NoName => DnsFailure::NoName,
                LookupErrorKind::NoData => DnsFailure::NoRecords,
                LookupErrorKind::Again => DnsFailure::Timeout,
                _ => DnsFailure::Other,
            };
            (failure, std::io::Error::from(err).to_string())
        }
        None => (
            DnsFailure::Timeout,
            format!(
                "the system resolver said nothing in {:.1} s",
                timeout.as_secs_f64()
            ),
        ),
    };
    answer.failure = Some(failure);
    answer.error = Some(error);
    if matches!(failure, DnsFailure::Timeout | DnsFailure::Other) {
        // "Temporary failure" says nothing: what did the nameservers say?
        let direct = direct.unwrap_or_else(|| ask_nameservers(host, families, deadline));
        if let Ok(said) = direct.recv_timeout(dns::left(deadline)) {
            explain(&mut answer, said);
        }
    }
    answer.time_ms = millis(start.elapsed());
    answer
}

/// Starts asking the system's nameservers directly, each at once; the first answer that says
/// something (a response, or an error other than silence) comes on the channel.
fn ask_nameservers(
    host: &str,
    families: Families,
    deadline: Instant,
) -> crossbeam_channel::Receiver<DnsAnswer> {
    let (tx, rx) = crossbeam_channel::bounded(3);
    for server in crate::platform::nameservers() {
        let tx = tx.clone();
        let host = host.to_string();
        let _ = std::thread::Builder::new()
            .name("probe-nameserver".into())
            .spawn(move || {
                let _ = tx.send(ask_server_until(&host, server, families, deadline));
            });
    }
    rx
}

/// Says in the system resolver's failure what the nameserver answered, when it said more.
fn explain(answer: &mut DnsAnswer, said: DnsAnswer) {
    let failure = match said.failure {
        Some(failure @ (DnsFailure::Servfail | DnsFailure::Refused | DnsFailure::Nxdomain)) => {
            failure
        }
        Some(DnsFailure::Timeout) => DnsFailure::Timeout,
        Some(DnsFailure::Other) => DnsFailure::Other,
        // It answered with addresses (or none) now: the system resolver's failure stands.
        Some(DnsFailure::NoRecords | DnsFailure::NoName) | None => return,
    };
    answer.failure = Some(failure);
    let detail = said.error.unwrap_or_default();
    let system = answer.error.take().unwrap_or_default();
    answer.error = Some(format!("{system}; nameserver {}: {detail}", said.source));
}

/// Asks the DNS server at `server` directly for the A and AAAA records of `host` (at once,
/// under one deadline; over TCP when the UDP answer is truncated).
pub fn ask_server(
    host: &str,
    server: SocketAddr,
    families: Families,
    timeout: Duration,
) -> DnsAnswer {
    ask_server_until(host, server, families, Instant::now() + timeout)
}

fn ask_server_until(
    host: &str,
    server: SocketAddr,
    families: Families,
    deadline: Instant,
) -> DnsAnswer {
    let start = Instant::now();
    let mut kinds = Vec::new();
    if families.ipv4 {
        kinds.push(RecordType::A);
    }
    if families.ipv6 {
        kinds.push(RecordType::AAAA);
    }
    let replies = match dns::parse_name(host) {
        Ok(name) => dns::ask(&name, &kinds, server, deadline, true),
        Err(err) => kinds
            .iter()
            .map(|_| Reply::Failed(std::io::Error::new(err.kind(), err.to_string())))
            .collect(),
    };
    let mut answer = DnsAnswer {
        source: server.to_string(),
        records: Vec::new(),
        time_ms: 0.0,
        failure: None,
        error: None,
        chain: Vec::new(),
    };
    let mut codes = Vec::new();
    let mut timed_out = false;
    let mut errors = Vec::new();
    for (kind, reply) in kinds.iter().zip(replies) {
        match reply {
            Reply::Answered {
                code,
                records,
                chain,
                ..
            } => {
                if code != ResponseCode::NoError {
                    errors.push((*kind, format!("the server answered {}", code_name(code))));
                    codes.push(code);
                }
                for (address, ttl) in records {
                    if !answer.records.iter().any(|r| r.address == address) {
                        answer.records.push(DnsRecord {
                            address,
                            ttl: Some(ttl),
                        });
                    }
                }
                for step in chain {
                    if !answer.chain.contains(&step) {
                        answer.chain.push(step);
                    }
                }
            }
            Reply::Failed(err) => {
                timed_out |= matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                );
                let err = if err.kind() == std::io::ErrorKind::ConnectionRefused {
                    format!("{err}: nothing answers there (is the resolver stopped?)")
                } else if timed_out {
                    "no answer in time".to_string()
                } else {
                    err.to_string()
                };
                errors.push((*kind, err));
            }
        }
    }
    // One family's records are an answer, even when the other family's query failed.
    if answer.records.is_empty() {
        answer.failure = Some(if codes.contains(&ResponseCode::NXDomain) {
            DnsFailure::Nxdomain
        } else if codes.contains(&ResponseCode::ServFail) {
            DnsFailure::Servfail
        } else if codes.contains(&ResponseCode::Refused) {
            DnsFailure::Refused
        } else if timed_out {
            DnsFailure::Timeout
        } else if !errors.is_empty() {
            DnsFailure::Other
        } else {
            DnsFailure::NoRecords
        });
    }
    if !errors.is_empty() {
        answer.error = Some(grouped(&errors));
    }
    answer.time_ms = millis(start.elapsed());
    answer
}

/// `A: x; AAAA: x` said once as `A, AAAA: x`; different errors each with their own type.
fn grouped(errors: &[(RecordType, String)]) -> String {
    let mut groups: Vec<(Vec<String>, &str)> = Vec::new();
    for (kind, error) in errors {
        match groups.iter_mut().find(|(_, e)| *e == error.as_str()) {
            Some((kinds, _)) => kinds.push(kind.to_string()),
            None => groups.push((vec![kind.to_string()], error)),
        }
    }
    groups
        .iter()
        .map(|(kinds, error)| format!("{}: {error}", kinds.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A response code as dig prints it.
fn code_name(code: ResponseCode) -> String {
    match code {
        ResponseCode::NXDomain => "NXDOMAIN".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::Refused => "REFUSED".into(),
        other => format!("{other:?}").to_uppercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localhost_resolves_through_the_system() {
        let answer = system(
            "localhost",
            Families {
                ipv4: true,
                ipv6: true,
            },
            Duration::from_secs(3),
        );
        assert!(answer.failure.is_none(), "{answer:?}");
        assert!(answer.addresses().iter().any(IpAddr::is_loopback));
        let v4 = system(
            "localhost",
            Families {
                ipv4: true,
                ipv6: false,
            },
            Duration::from_secs(3),
        );
        assert!(v4.addresses().iter().all(IpAddr::is_ipv4));
    }

    #[test]
    fn invalid_tld_is_nxdomain() {
        let answer = system(
            "name.invalid",
            Families {
                ipv4: true,
                ipv6: true,
            },
            Duration::from_secs(3),
        );
        assert!(answer.records.is_empty());
        assert!(
            matches!(
                answer.failure,
                Some(
                    DnsFailure::Nxdomain
                        | DnsFailure::NoName
                        | DnsFailure::Timeout
                        | DnsFailure::Other
                )
            ),
            "{answer:?}"
        );
    }
}
