//! A nameserver asked directly: the A and AAAA queries of a name sent together over UDP and
//! answered under one deadline, a truncated answer asked again over TCP, and what came back
//! (addresses with their TTLs, the CNAME steps on the way, the response codes) kept as it was.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use serde::Serialize;

use crate::net::wildcard_for;

/// The largest DNS message read, over UDP or TCP (a TCP length prefix allows 65,535).
const MAX_MESSAGE: usize = 65_535;

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

/// What one nameserver answered for one query type.
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
    },
    /// Nothing (or only errors) by the deadline: the OS error or "timed out".
    Failed(std::io::Error),
}

/// Asks `server` for each of `kinds` of `host` at once, waiting until `deadline` at most; a
/// truncated UDP answer is asked again over TCP within the same deadline.
pub fn ask(host: &str, server: SocketAddr, kinds: &[RecordType], deadline: Instant) -> Vec<Reply> {
    let name = match Name::from_utf8(host) {
        Ok(name) => name,
        Err(err) => {
            let invalid = || std::io::Error::new(std::io::ErrorKind::InvalidInput, err.to_string());
            return kinds.iter().map(|_| Reply::Failed(invalid())).collect();
        }
    };
    let salt = (std::process::id() as u16).wrapping_mul(31) ^ (nanos() as u16);
    let requests: Vec<(u16, Vec<u8>)> = kinds
        .iter()
        .enumerate()
        .map(|(index, kind)| {
            let id = salt.wrapping_add(index as u16 * 7919);
            (id, encode(&name, *kind, id))
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

/// What UDP brought for one query.
enum Udp {
    Reply(Reply),
    /// The answer did not fit (TC): to be asked again over TCP.
    Truncated,
}

fn nanos() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
}

fn encode(name: &Name, kind: RecordType, id: u16) -> Vec<u8> {
    let mut request = Message::query();
    request.metadata.id = id;
    request.metadata.recursion_desired = true;
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
    // Bounded by the deadline, and by a count against a flood of stray datagrams.
    for _ in 0..64 {
        if replies.iter().all(Option::is_some) {
            return Ok(());
        }
        let left = deadline.saturating_duration_since(Instant::now());
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
        let left = deadline.saturating_duration_since(Instant::now());
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
    for record in &response.answers {
        match &record.data {
            RData::A(a) => records.push((IpAddr::V4(a.0), record.ttl)),
            RData::AAAA(aaaa) => records.push((IpAddr::V6(aaaa.0), record.ttl)),
            RData::CNAME(target) => chain.push(CnameStep {
                name: printable_name(&record.name),
                target: printable_name(&target.0),
                ttl: record.ttl,
            }),
            _ => {}
        }
    }
    Reply::Answered {
        code: response.metadata.response_code,
        records,
        chain,
    }
}

/// A name from the network, as text safe to print: neutralised and at most 253 characters.
fn printable_name(name: &Name) -> String {
    let text = name.to_ascii();
    let text = text.strip_suffix('.').unwrap_or(&text);
    crate::net::sanitize::neutralize(text)
        .chars()
        .take(253)
        .collect()
}

/// How long is left before `deadline`, for the callers that wait on other things meanwhile.
pub fn left(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}
