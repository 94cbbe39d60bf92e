//! Name resolution for the probe: the system resolver (what a client really gets), a DNS server
//! asked directly (with TTLs), and notes on addresses that should not be in public DNS.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use dns_lookup::{AddrInfoHints, LookupErrorKind};
use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use serde::Serialize;

use crate::net::clock::millis;
use crate::net::wildcard_for;

/// Why a name did not resolve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DnsFailure {
    /// The name does not exist (NXDOMAIN).
    Nxdomain,
    /// The name exists but has no A/AAAA record (of the families asked for).
    NoRecords,
    /// No answer in time (a temporary failure).
    Timeout,
    /// Anything else (the resolver said so).
    Other,
}

impl DnsFailure {
    /// Plain words for the report.
    pub fn describe(self) -> &'static str {
        match self {
            DnsFailure::Nxdomain => "the name does not exist (NXDOMAIN)",
            DnsFailure::NoRecords => "the name exists but has no address records",
            DnsFailure::Timeout => "no answer from the resolver in time",
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

/// Resolves `host` as a client would: through the system resolver (getaddrinfo).
pub fn system(host: &str, families: Families) -> DnsAnswer {
    let start = Instant::now();
    let hints = AddrInfoHints {
        socktype: dns_lookup::SockType::Stream.into(),
        ..AddrInfoHints::default()
    };
    let result = dns_lookup::getaddrinfo(Some(host), None, Some(hints));
    let time_ms = millis(start.elapsed());
    let mut answer = DnsAnswer {
        source: "system".into(),
        records: Vec::new(),
        time_ms,
        failure: None,
        error: None,
    };
    match result {
        Ok(infos) => {
            for info in infos.flatten() {
                let address = info.sockaddr.ip();
                if families.keeps(&address) && !answer.records.iter().any(|r| r.address == address)
                {
                    answer.records.push(DnsRecord { address, ttl: None });
                }
            }
            if answer.records.is_empty() {
                answer.failure = Some(DnsFailure::NoRecords);
                answer.error = Some("no address of the families asked for".into());
            }
        }
        Err(err) => {
            answer.failure = Some(match err.kind() {
                LookupErrorKind::NoName => DnsFailure::Nxdomain,
                LookupErrorKind::NoData => DnsFailure::NoRecords,
                LookupErrorKind::Again => DnsFailure::Timeout,
                _ => DnsFailure::Other,
            });
            answer.error = Some(std::io::Error::from(err).to_string());
        }
    }
    answer
}

/// Asks the DNS server at `server` directly for the A and AAAA records of `host`, over UDP.
pub fn ask_server(
    host: &str,
    server: SocketAddr,
    families: Families,
    timeout: Duration,
) -> DnsAnswer {
    let start = Instant::now();
    let mut answer = DnsAnswer {
        source: server.to_string(),
        records: Vec::new(),
        time_ms: 0.0,
        failure: None,
        error: None,
    };
    let mut kinds = Vec::new();
    if families.ipv4 {
        kinds.push(RecordType::A);
    }
    if families.ipv6 {
        kinds.push(RecordType::AAAA);
    }
    let mut nxdomain = false;
    let mut timed_out = false;
    let mut errors = Vec::new();
    for (index, kind) in kinds.into_iter().enumerate() {
        match query(host, kind, server, timeout, index as u16) {
            Ok((code, records)) => {
                nxdomain |= code == ResponseCode::NXDomain;
                if code != ResponseCode::NoError && code != ResponseCode::NXDomain {
                    errors.push(format!("{kind}: the server answered {code}"));
                }
                answer.records.extend(records);
            }
            Err(err) => {
                timed_out |= matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                );
                errors.push(format!("{kind}: {err}"));
            }
        }
    }
    // One family's records are an answer, even when the other family's query failed.
    if answer.records.is_empty() {
        answer.failure = Some(if nxdomain {
            DnsFailure::Nxdomain
        } else if timed_out {
            DnsFailure::Timeout
        } else if !errors.is_empty() {
            DnsFailure::Other
        } else {
            DnsFailure::NoRecords
        });
    }
    if !errors.is_empty() {
        answer.error = Some(errors.join("; "));
    }
    answer.time_ms = millis(start.elapsed());
    answer
}

fn query(
    host: &str,
    kind: RecordType,
    server: SocketAddr,
    timeout: Duration,
    salt: u16,
) -> std::io::Result<(ResponseCode, Vec<DnsRecord>)> {
    let invalid = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidData, what);
    let name = Name::from_utf8(host).map_err(|err| invalid(format!("bad name {host}: {err}")))?;
    let id = (std::process::id() as u16)
        .wrapping_add(salt)
        .wrapping_mul(31);
    let mut request = Message::query();
    request.metadata.id = id;
    request.metadata.recursion_desired = true;
    request.add_query(Query::query(name, kind));
    let bytes = request.to_vec().map_err(|err| invalid(err.to_string()))?;

    let socket = UdpSocket::bind(wildcard_for(server))?;
    socket.connect(server)?;
    socket.set_read_timeout(Some(timeout))?;
    socket.send(&bytes)?;
    let mut buffer = [0u8; 4096];
    // Skip stray datagrams that do not answer our query; bounded by the read timeout.
    for _ in 0..16 {
        let size = socket.recv(&mut buffer)?;
        let Ok(response) = Message::from_vec(&buffer[..size]) else {
            continue;
        };
        if response.metadata.id != id {
            continue;
        }
        let records = response
            .answers
            .iter()
            .filter_map(|record| {
                let address = match &record.data {
                    RData::A(a) => IpAddr::V4(a.0),
                    RData::AAAA(aaaa) => IpAddr::V6(aaaa.0),
                    _ => return None,
                };
                Some(DnsRecord {
                    address,
                    ttl: Some(record.ttl),
                })
            })
            .collect();
        return Ok((response.metadata.response_code, records));
    }
    Err(invalid("no matching answer".into()))
}

/// A remark about an address that a public DNS name should not carry.
pub fn address_note(address: &IpAddr) -> Option<&'static str> {
    match address {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            if v4.is_loopback() {
                Some("loopback address: only this very machine can reach it")
            } else if v4.is_private() {
                Some(
                    "private (RFC 1918) address: the DDNS client probably published its interface \
                     address from behind NAT; publish the public IP instead",
                )
            } else if a == 100 && (64..128).contains(&b) {
                Some(
                    "carrier-grade NAT (100.64.0.0/10) address: the host sits behind the \
                     provider's NAT and cannot be reached from outside by this address",
                )
            } else if v4.is_link_local() {
                Some("link-local address: valid only on the host's own network segment")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            if v6.is_loopback() {
                Some("loopback address: only this very machine can reach it")
            } else if v6.segments()[0] & 0xffc0 == 0xfe80 {
                Some("link-local address: valid only on the host's own network segment")
            } else if v6.segments()[0] & 0xfe00 == 0xfc00 {
                Some("unique-local (private) IPv6 address: not reachable from the Internet")
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_unfit_for_public_dns_are_noted() {
        for private in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.10",
            "100.64.0.1",
            "127.0.0.1",
            "169.254.1.1",
            "::1",
            "fe80::1",
            "fd00::1",
        ] {
            assert!(
                address_note(&private.parse().unwrap()).is_some(),
                "{private}"
            );
        }
        for public in ["203.0.113.7", "8.8.8.8", "100.128.0.1", "2001:db8::1"] {
            assert!(address_note(&public.parse().unwrap()).is_none(), "{public}");
        }
    }

    #[test]
    fn localhost_resolves_through_the_system() {
        let answer = system(
            "localhost",
            Families {
                ipv4: true,
                ipv6: true,
            },
        );
        assert!(answer.failure.is_none(), "{answer:?}");
        assert!(answer.addresses().iter().any(IpAddr::is_loopback));
        let v4 = system(
            "localhost",
            Families {
                ipv4: true,
                ipv6: false,
            },
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
        );
        assert!(answer.records.is_empty());
        assert!(
            matches!(
                answer.failure,
                Some(DnsFailure::Nxdomain | DnsFailure::Timeout | DnsFailure::Other)
            ),
            "{answer:?}"
        );
    }
}
