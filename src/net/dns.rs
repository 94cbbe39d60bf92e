//! Asking DNS servers directly, past every cache: the nameservers this machine is configured
//! with (`/etc/resolv.conf`), a name's authoritative servers (found through them), and a name's
//! A and AAAA records from one server, both questions under one deadline. Answers are hostile:
//! bounded in size, matched by ID, and only their address records are kept.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};

use super::sanitize::neutralize;
use super::wildcard_for;

/// Where the system resolver's nameservers are listed.
const RESOLV_CONF: &str = "/etc/resolv.conf";
/// The largest answer read over UDP (EDNS-less servers stop at 512 bytes).
const MAX_ANSWER_BYTES: usize = 4096;
/// Authoritative servers asked for one name: the first that answers is enough.
const MAX_AUTHORITIES: usize = 4;

/// What one DNS server said about a name's addresses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Addresses {
    /// The A and AAAA records of the answer, sorted, without repeats.
    pub addresses: BTreeSet<IpAddr>,
    /// NXDOMAIN: the name does not exist.
    pub nxdomain: bool,
}

/// The nameservers of `/etc/resolv.conf`, on port 53, in its order.
pub fn configured_nameservers() -> Vec<SocketAddr> {
    std::fs::read_to_string(RESOLV_CONF)
        .map(|text| nameservers_in(&text))
        .unwrap_or_default()
}

/// The `nameserver` lines of a resolv.conf.
fn nameservers_in(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("nameserver"))
                .then(|| words.next()?.parse::<IpAddr>().ok())
                .flatten()
        })
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// The addresses of the servers authoritative for `name`'s zone, found by asking `resolver` for
/// the NS records of `name`, then of each parent, until a zone answers; the servers' own names
/// go through the system resolver.
pub fn authorities(
    name: &str,
    resolver: SocketAddr,
    timeout: Duration,
) -> std::io::Result<Vec<SocketAddr>> {
    let mut zone = parse_name(name)?;
    while !zone.is_root() {
        let answer = ask(&zone, &[RecordType::NS], resolver, timeout, true)?;
        let servers: Vec<String> = answer
            .answers
            .iter()
            // Only the zone's own NS records: a name that is a CNAME brings its target's.
            .filter(|record| record.name == zone)
            .filter_map(|record| match &record.data {
                // A name from the network, shown in an error: made safe for a terminal.
                RData::NS(ns) => Some(neutralize(&ns.0.to_ascii()).into_owned()),
                _ => None,
            })
            .collect();
        if !servers.is_empty() {
            let addresses = servers
                .iter()
                .filter_map(|server| (server.as_str(), 53).to_socket_addrs().ok())
                .flatten()
                .take(MAX_AUTHORITIES)
                .collect::<Vec<_>>();
            if addresses.is_empty() {
                return Err(std::io::Error::other(format!(
                    "the nameservers of {zone} ({}) do not resolve",
                    servers.join(", ")
                )));
            }
            return Ok(addresses);
        }
        zone = zone.base_name();
    }
    Err(std::io::Error::other(format!(
        "no zone above {name} has NS records at {resolver}"
    )))
}

/// The A and AAAA records of `name` at `server`, both asked at once under one `timeout`;
/// `recursion` asks a resolver to look further, off for an authoritative server.
pub fn addresses(
    name: &str,
    server: SocketAddr,
    timeout: Duration,
    recursion: bool,
) -> std::io::Result<Addresses> {
    let name = parse_name(name)?;
    let answer = ask(
        &name,
        &[RecordType::A, RecordType::AAAA],
        server,
        timeout,
        recursion,
    )?;
    let mut found = Addresses {
        nxdomain: answer.nxdomain,
        ..Addresses::default()
    };
    for record in &answer.answers {
        match &record.data {
            RData::A(a) => found.addresses.insert(IpAddr::V4(a.0)),
            RData::AAAA(aaaa) => found.addresses.insert(IpAddr::V6(aaaa.0)),
            _ => false,
        };
    }
    Ok(found)
}

/// The answer records of every question, gathered from one server.
struct Answer {
    answers: Vec<hickory_proto::rr::Record>,
    nxdomain: bool,
}

/// Asks `server` the questions `kinds` about `name` on one UDP socket, each its own message,
/// and gathers the answers until all came or `timeout` passed.
fn ask(
    name: &Name,
    kinds: &[RecordType],
    server: SocketAddr,
    timeout: Duration,
    recursion: bool,
) -> std::io::Result<Answer> {
    let invalid = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidData, what);
    let socket = UdpSocket::bind(wildcard_for(server))?;
    socket.connect(server)?;
    let mut waiting = Vec::new();
    for &kind in kinds {
        let mut id = [0u8; 2];
        getrandom::fill(&mut id).map_err(|err| std::io::Error::other(err.to_string()))?;
        let id = u16::from_be_bytes(id);
        let mut request = Message::query();
        request.metadata.id = id;
        request.metadata.recursion_desired = recursion;
        request.add_query(Query::query(name.clone(), kind));
        socket.send(&request.to_vec().map_err(|err| invalid(err.to_string()))?)?;
        waiting.push(id);
    }
    let deadline = Instant::now() + timeout;
    let mut answer = Answer {
        answers: Vec::new(),
        nxdomain: false,
    };
    let mut buffer = [0u8; MAX_ANSWER_BYTES];
    while !waiting.is_empty() {
        let timed_out = || {
            std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer from the DNS server {server} in {timeout:?}"),
            )
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(timed_out());
        }
        socket.set_read_timeout(Some(left))?;
        let size = match socket.recv(&mut buffer) {
            Ok(size) => size,
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => return Err(timed_out()),
            Err(err) => return Err(err),
        };
        let Ok(response) = Message::from_vec(&buffer[..size]) else {
            continue;
        };
        let Some(at) = waiting.iter().position(|&id| id == response.metadata.id) else {
            continue;
        };
        waiting.swap_remove(at);
        match response.metadata.response_code {
            ResponseCode::NoError => answer.answers.extend(response.answers),
            ResponseCode::NXDomain => answer.nxdomain = true,
            code => {
                return Err(std::io::Error::other(format!(
                    "the DNS server {server} answered {code}"
                )));
            }
        }
    }
    Ok(answer)
}

/// `name` as a fully qualified DNS name.
fn parse_name(name: &str) -> std::io::Result<Name> {
    let mut parsed = Name::from_utf8(name).map_err(|err| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("bad name {name}: {err}"),
        )
    })?;
    parsed.set_fqdn(true);
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_nameservers_are_read_in_order() {
        let text =
            "# comment\nsearch lan\nnameserver 192.0.2.53\nnameserver ::1\nnameserver bogus\n";
        assert_eq!(
            nameservers_in(text),
            [
                "192.0.2.53:53".parse().unwrap(),
                "[::1]:53".parse().unwrap()
            ]
        );
    }

    #[test]
    fn a_server_that_does_not_answer_times_out_within_the_deadline() {
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let started = Instant::now();
        let err = addresses(
            "ddns.test",
            silent.local_addr().unwrap(),
            Duration::from_millis(200),
            false,
        )
        .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
