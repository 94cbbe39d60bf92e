//! Asking DNS servers directly, past every cache: a name's records from one server, every
//! question sent at once over UDP and answered under one deadline, a truncated answer asked
//! again over TCP; a name's A and AAAA records; a zone's authoritative servers. Answers are
//! hostile: bounded in size and count, matched by a random ID, names neutralised before use.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use serde::Serialize;

use super::sanitize::neutralize;
use super::wildcard_for;

/// The largest DNS message read, over UDP or TCP (a TCP length prefix allows 65,535).
const MAX_MESSAGE: usize = 65_535;
/// Datagrams read for one set of questions at most, against a flood of stray ones.
const MAX_DATAGRAMS: usize = 64;
/// Authoritative servers asked for one name: the first that answers is enough.
const MAX_AUTHORITIES: usize = 4;

/// One step of a CNAME chain: `name` is an alias of `target` for `ttl` seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CnameStep {
    /// The alias (the name asked for, or the target of the step before).
    pub name: String,
    /// The name it points at.
    pub target: String,
    /// Time to live in seconds.
    pub ttl: u32,
}

/// What one DNS server answered for one question.
#[derive(Debug)]
pub enum Reply {
    /// A response, with its code.
    Answered {
        /// The response code (NOERROR, NXDOMAIN, SERVFAIL, REFUSED…).
        code: ResponseCode,
        /// The addresses with their TTLs.
        records: Vec<(IpAddr, u32)>,
        /// The CNAME steps, in the order given.
        chain: Vec<CnameStep>,
        /// The NS records: the zone they are for and the server's name, neutralised.
        nameservers: Vec<(Name, String)>,
    },
    /// Nothing (or only errors) by the deadline: the OS error or "timed out".
    Failed(std::io::Error),
}

/// Asks `server` each of `kinds` about `name` at once, waiting until `deadline` at most; a
/// truncated UDP answer is asked again over TCP within the same deadline. `recursion` asks a
/// resolver to look further, off for an authoritative server. One reply per kind, in order.
pub fn ask(
    name: &Name,
    kinds: &[RecordType],
    server: SocketAddr,
    deadline: Instant,
    recursion: bool,
) -> Vec<Reply> {
    let mut first = [0u8; 2];
    if let Err(err) = getrandom::fill(&mut first) {
        return kinds
            .iter()
            .map(|_| Reply::Failed(std::io::Error::other(err.to_string())))
            .collect();
    }
    // Consecutive IDs from a random start: unguessable from outside, distinct from each other.
    let first = u16::from_be_bytes(first);
    let requests: Vec<(u16, Vec<u8>)> = (0u16..)
        .zip(kinds)
        .map(|(index, &kind)| {
            let id = first.wrapping_add(index);
            (id, encode(name, kind, id, recursion))
        })
        .collect();
    let mut replies: Vec<Option<Udp>> = kinds.iter().map(|_| None).collect();
    let failure = over_udp(server, &requests, deadline, &mut replies).err();
    replies
        .into_iter()
        .zip(&requests)
        .map(|(reply, (id, bytes))| match reply {
            Some(Udp::Reply(reply)) => reply,
            // Truncated over UDP: the whole answer over TCP.
            Some(Udp::Truncated) => {
                over_tcp(server, *id, bytes, deadline).unwrap_or_else(Reply::Failed)
            }
            None => Reply::Failed(match &failure {
                Some(err) => std::io::Error::new(err.kind(), err.to_string()),
                None => std::io::ErrorKind::TimedOut.into(),
            }),
        })
        .collect()
}

/// What one DNS server said about a name's addresses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Addresses {
    /// The A and AAAA records of the answer, sorted, without repeats.
    pub addresses: BTreeSet<IpAddr>,
    /// NXDOMAIN: the name does not exist.
    pub nxdomain: bool,
}

/// The A and AAAA records of `name` at `server`, both asked at once under one `timeout`: what
/// the questions answered (NOERROR/NXDOMAIN) gave, an A answer kept when only AAAA fails (an
/// authority that REFUSES AAAA); an error when neither question was answered.
pub fn addresses(
    name: &str,
    server: SocketAddr,
    timeout: Duration,
    recursion: bool,
) -> std::io::Result<Addresses> {
    let name = parse_name(name)?;
    let mut found = Addresses::default();
    let mut first_error = None;
    let mut answered_any = false;
    let kinds = [RecordType::A, RecordType::AAAA];
    for reply in ask(&name, &kinds, server, Instant::now() + timeout, recursion) {
        match answered(reply, server, timeout) {
            Ok((ResponseCode::NXDomain, _)) => found.nxdomain = true,
            Ok((_, records)) => found
                .addresses
                .extend(records.into_iter().map(|(ip, _)| ip)),
            Err(err) => {
                first_error.get_or_insert(err);
                continue;
            }
        }
        answered_any = true;
    }
    match first_error {
        Some(err) if !answered_any => Err(err),
        _ => Ok(found),
    }
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
        let reply = ask(
            &zone,
            &[RecordType::NS],
            resolver,
            Instant::now() + timeout,
            true,
        );
        let servers: Vec<String> = match reply.into_iter().next() {
            Some(Reply::Answered {
                code: ResponseCode::NoError,
                nameservers,
                ..
            }) => nameservers
                .into_iter()
                // Only the zone's own NS records: a name that is a CNAME brings its target's.
                .filter(|(owner, _)| *owner == zone)
                .map(|(_, server)| server)
                .collect(),
            // NXDOMAIN: no records here, the parent is asked; anything else is an error.
            Some(reply) => {
                answered(reply, resolver, timeout)?;
                Vec::new()
            }
            None => Vec::new(),
        };
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

/// A reply as an error unless `server` answered NOERROR or NXDOMAIN: the code and addresses.
fn answered(
    reply: Reply,
    server: SocketAddr,
    timeout: Duration,
) -> std::io::Result<(ResponseCode, Vec<(IpAddr, u32)>)> {
    match reply {
        Reply::Answered { code, records, .. }
            if matches!(code, ResponseCode::NoError | ResponseCode::NXDomain) =>
        {
            Ok((code, records))
        }
        Reply::Answered { code, .. } => Err(std::io::Error::other(format!(
            "the DNS server {server} answered {code}"
        ))),
        Reply::Failed(err)
            if matches!(
                err.kind(),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            ) =>
        {
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer from the DNS server {server} in {timeout:?}"),
            ))
        }
        Reply::Failed(err) => Err(err),
    }
}

/// `name` as a fully qualified DNS name.
pub fn parse_name(name: &str) -> std::io::Result<Name> {
    let mut parsed = Name::from_utf8(name).map_err(|err| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("bad name {name}: {err}"),
        )
    })?;
    parsed.set_fqdn(true);
    Ok(parsed)
}

/// How long is left before `deadline`, for the callers that wait on other things meanwhile.
pub fn left(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// What UDP brought for one question.
enum Udp {
    Reply(Reply),
    /// The answer did not fit (TC): to be asked again over TCP.
    Truncated,
}

fn encode(name: &Name, kind: RecordType, id: u16, recursion: bool) -> Vec<u8> {
    let mut request = Message::query();
    request.metadata.id = id;
    request.metadata.recursion_desired = recursion;
    request.add_query(Query::query(name.clone(), kind));
    request.to_vec().unwrap_or_default()
}

/// Sends every request on one UDP socket and fills `replies` as answers come, until all are in
/// or the deadline passes. A truncated answer is marked for TCP to complete.
fn over_udp(
    server: SocketAddr,
    requests: &[(u16, Vec<u8>)],
    deadline: Instant,
    replies: &mut [Option<Udp>],
) -> std::io::Result<()> {
    let socket = UdpSocket::bind(wildcard_for(server))?;
    socket.connect(server)?;
    for (_, bytes) in requests {
        socket.send(bytes)?;
    }
    let mut buffer = vec![0u8; MAX_MESSAGE];
    for _ in 0..MAX_DATAGRAMS {
        if replies.iter().all(Option::is_some) {
            return Ok(());
        }
        let left = left(deadline);
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        socket.set_read_timeout(Some(left))?;
        let size = match socket.recv(&mut buffer) {
            Ok(size) => size,
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {
                return Err(std::io::ErrorKind::TimedOut.into());
            }
            Err(err) => return Err(err),
        };
        let Ok(response) = Message::from_vec(&buffer[..size]) else {
            continue;
        };
        let Some(index) = requests
            .iter()
            .position(|(id, _)| *id == response.metadata.id)
        else {
            continue;
        };
        replies[index] = Some(if response.metadata.truncation {
            Udp::Truncated
        } else {
            Udp::Reply(read_reply(&response))
        });
    }
    Ok(())
}

/// One query over TCP (RFC 7766: a two-byte length before each message), within the deadline.
fn over_tcp(
    server: SocketAddr,
    id: u16,
    request: &[u8],
    deadline: Instant,
) -> std::io::Result<Reply> {
    let left = |deadline: Instant| {
        let left = left(deadline);
        if left.is_zero() {
            Err(std::io::Error::from(std::io::ErrorKind::TimedOut))
        } else {
            Ok(left)
        }
    };
    let mut stream = TcpStream::connect_timeout(&server, left(deadline)?)?;
    stream.set_write_timeout(Some(left(deadline)?))?;
    let length = u16::try_from(request.len()).map_err(std::io::Error::other)?;
    stream.write_all(&[&length.to_be_bytes()[..], request].concat())?;
    let mut prefix = [0u8; 2];
    stream.set_read_timeout(Some(left(deadline)?))?;
    stream.read_exact(&mut prefix)?;
    let mut message = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
    stream.set_read_timeout(Some(left(deadline)?))?;
    stream.read_exact(&mut message)?;
    let response = Message::from_vec(&message)
        .map_err(|err| std::io::Error::new(std::io::ErrorKind::InvalidData, err.to_string()))?;
    if response.metadata.id != id {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "an answer to another query",
        ));
    }
    Ok(read_reply(&response))
}

fn read_reply(response: &Message) -> Reply {
    let mut records = Vec::new();
    let mut chain = Vec::new();
    let mut nameservers = Vec::new();
    for record in &response.answers {
        match &record.data {
            RData::A(a) => records.push((IpAddr::V4(a.0), record.ttl)),
            RData::AAAA(aaaa) => records.push((IpAddr::V6(aaaa.0), record.ttl)),
            RData::CNAME(target) => chain.push(CnameStep {
                name: printable_name(&record.name),
                target: printable_name(&target.0),
                ttl: record.ttl,
            }),
            // A name from the network, shown in an error: made safe for a terminal.
            RData::NS(ns) => nameservers.push((
                record.name.clone(),
                neutralize(&ns.0.to_ascii()).into_owned(),
            )),
            _ => {}
        }
    }
    Reply::Answered {
        code: response.metadata.response_code,
        records,
        chain,
        nameservers,
    }
}

/// A name from the network, as text safe to print: neutralised and at most 253 characters.
fn printable_name(name: &Name) -> String {
    let text = name.to_ascii();
    let text = text.strip_suffix('.').unwrap_or(&text);
    neutralize(text).chars().take(253).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// A DNS server on 127.0.0.1 that answers the two questions of [`addresses`] with `answer`
    /// (given each request as a response to fill); joined by the caller.
    fn answering(answer: fn(&mut Message)) -> (SocketAddr, std::thread::JoinHandle<()>) {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let thread = std::thread::spawn(move || {
            let mut buffer = [0u8; 512];
            for _ in 0..2 {
                let (size, peer) = server.recv_from(&mut buffer).unwrap();
                let mut reply = Message::from_vec(&buffer[..size]).unwrap();
                reply.metadata.message_type = hickory_proto::op::MessageType::Response;
                answer(&mut reply);
                server.send_to(&reply.to_vec().unwrap(), peer).unwrap();
            }
        });
        (addr, thread)
    }

    #[test]
    fn an_a_answer_is_kept_when_only_aaaa_is_refused() {
        let (addr, thread) = answering(|reply| {
            let query = reply.queries[0].clone();
            if query.query_type() == RecordType::A {
                let a = hickory_proto::rr::rdata::A::new(198, 51, 100, 7);
                let record =
                    hickory_proto::rr::Record::from_rdata(query.name().clone(), 60, RData::A(a));
                reply.answers.push(record);
            } else {
                reply.metadata.response_code = ResponseCode::Refused;
            }
        });
        let found = addresses("ddns.test", addr, Duration::from_secs(2), false).unwrap();
        thread.join().unwrap();
        let a: IpAddr = "198.51.100.7".parse().unwrap();
        assert_eq!(found.addresses, BTreeSet::from([a]));
    }

    #[test]
    fn both_questions_refused_is_an_error() {
        let (addr, thread) =
            answering(|reply| reply.metadata.response_code = ResponseCode::Refused);
        let err = addresses("ddns.test", addr, Duration::from_secs(2), false).unwrap_err();
        thread.join().unwrap();
        assert!(err.to_string().contains("Refused"), "{err}");
    }
}
