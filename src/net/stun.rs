//! A STUN client that asks one thing: "what address do you see me at?" (a Binding request, RFC
//! 5389 / RFC 8489, no authentication). The message codec is pure and tested against the RFC
//! 5769 vectors; [`public_address`] sends the request over UDP with bounded retries under one
//! deadline. Whatever comes back is hostile: every length is checked before it is read.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use super::wildcard_for;

/// A public STUN server, used when `--stun` is not given (documented in the man page).
pub const DEFAULT_SERVER: &str = "stun.l.google.com:19302";

/// The constant every STUN message carries after its length (RFC 5389 section 6).
const MAGIC_COOKIE: u32 = 0x2112_A442;
/// A Binding request, and its success response.
const BINDING_REQUEST: u16 = 0x0001;
const BINDING_SUCCESS: u16 = 0x0101;
/// The attributes read: the reflexive address, obfuscated (RFC 5389) or plain (RFC 3489 servers).
const XOR_MAPPED_ADDRESS: u16 = 0x0020;
const MAPPED_ADDRESS: u16 = 0x0001;
const HEADER_BYTES: usize = 20;
/// The largest answer read: a binding response is under 100 bytes; more is not STUN.
const MAX_MESSAGE_BYTES: usize = 576;

/// A request's 96-bit transaction ID, which its response must carry back.
pub type TransactionId = [u8; 12];

/// The 20 bytes of a Binding request with no attributes.
pub fn encode_request(id: &TransactionId) -> [u8; HEADER_BYTES] {
    let mut message = [0u8; HEADER_BYTES];
    message[0..2].copy_from_slice(&BINDING_REQUEST.to_be_bytes());
    // Length (bytes 2..4) stays 0: no attributes.
    message[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    message[8..].copy_from_slice(id);
    message
}

/// Why a datagram is not the answer to our request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Not a STUN message (too short, wrong cookie, lengths that do not add up).
    NotStun,
    /// A STUN message, but not the success response to this transaction.
    NotOurs,
    /// Our success response, without an address in it.
    NoAddress,
}

/// The reflexive address in the Binding success response `message` to transaction `id`.
pub fn decode_response(message: &[u8], id: &TransactionId) -> Result<SocketAddr, DecodeError> {
    let (kind, attributes) = split(message)?;
    if kind != BINDING_SUCCESS || message[8..HEADER_BYTES] != id[..] {
        return Err(DecodeError::NotOurs);
    }
    let mut plain = None;
    for (kind, value) in Attributes(attributes) {
        match kind {
            XOR_MAPPED_ADDRESS => {
                if let Some(address) = read_address(value, Some(id)) {
                    return Ok(address);
                }
            }
            MAPPED_ADDRESS => plain = plain.or_else(|| read_address(value, None)),
            _ => {}
        }
    }
    plain.ok_or(DecodeError::NoAddress)
}

/// The message type and the attribute bytes of a well-formed STUN message.
fn split(message: &[u8]) -> Result<(u16, &[u8]), DecodeError> {
    if message.len() < HEADER_BYTES {
        return Err(DecodeError::NotStun);
    }
    let kind = u16::from_be_bytes([message[0], message[1]]);
    let length = usize::from(u16::from_be_bytes([message[2], message[3]]));
    let cookie = u32::from_be_bytes([message[4], message[5], message[6], message[7]]);
    // The two top bits of every STUN message are zero, and attributes fill whole 32-bit words.
    if kind & 0xC000 != 0
        || cookie != MAGIC_COOKIE
        || length % 4 != 0
        || HEADER_BYTES + length != message.len()
    {
        return Err(DecodeError::NotStun);
    }
    Ok((kind, &message[HEADER_BYTES..]))
}

/// The (type, value) pairs of an attribute list; stops at the first one that runs past the end.
struct Attributes<'a>(&'a [u8]);

impl<'a> Iterator for Attributes<'a> {
    type Item = (u16, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.0;
        let header = rest.get(..4)?;
        let kind = u16::from_be_bytes([header[0], header[1]]);
        let length = usize::from(u16::from_be_bytes([header[2], header[3]]));
        let value = rest.get(4..4 + length)?;
        // Values are padded to a multiple of 4 bytes.
        let padded = 4 + length.div_ceil(4) * 4;
        self.0 = rest.get(padded..).unwrap_or_default();
        Some((kind, value))
    }
}

/// A (XOR-)MAPPED-ADDRESS value; `id` given, the value is XOR'ed with the cookie and `id`.
fn read_address(value: &[u8], id: Option<&TransactionId>) -> Option<SocketAddr> {
    let mut mask = [0u8; 16];
    if let Some(id) = id {
        mask[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
        mask[4..].copy_from_slice(id);
    }
    let port = u16::from_be_bytes([*value.get(2)? ^ mask[0], *value.get(3)? ^ mask[1]]);
    let ip = match *value.get(1)? {
        0x01 => {
            let raw: [u8; 4] = value.get(4..8)?.try_into().ok()?;
            IpAddr::V4(Ipv4Addr::from(std::array::from_fn::<u8, 4, _>(|i| {
                raw[i] ^ mask[i]
            })))
        }
        0x02 => {
            let raw: [u8; 16] = value.get(4..20)?.try_into().ok()?;
            IpAddr::V6(Ipv6Addr::from(std::array::from_fn::<u8, 16, _>(|i| {
                raw[i] ^ mask[i]
            })))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// How many times the request is sent (RFC 8489 suggests 7 over 39.5 s; a check every few
/// minutes needs fewer) and how long the first wait is (doubled each time).
const ATTEMPTS: u32 = 4;
const FIRST_WAIT: Duration = Duration::from_millis(250);

/// The address `server` sees this machine's UDP socket at, asking at most until `deadline`.
pub fn public_address(server: SocketAddr, deadline: Duration) -> std::io::Result<SocketAddr> {
    let give_up = Instant::now() + deadline;
    let mut id = TransactionId::default();
    getrandom::fill(&mut id).map_err(|err| std::io::Error::other(err.to_string()))?;
    let socket = UdpSocket::bind(wildcard_for(server))?;
    socket.connect(server)?;
    let request = encode_request(&id);
    let mut buffer = [0u8; MAX_MESSAGE_BYTES];
    let mut wait = FIRST_WAIT;
    for _ in 0..ATTEMPTS {
        socket.send(&request)?;
        let this_round = Instant::now() + wait;
        // Stray datagrams are skipped, but never past this round's wait.
        loop {
            let left = this_round
                .min(give_up)
                .saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            socket.set_read_timeout(Some(left))?;
            match socket.recv(&mut buffer) {
                Ok(size) => {
                    if let Ok(address) = decode_response(&buffer[..size], &id) {
                        return Ok(address);
                    }
                }
                Err(err) if is_timeout(&err) => break,
                Err(err) => return Err(err),
            }
        }
        if Instant::now() >= give_up {
            break;
        }
        wait *= 2;
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("no answer from the STUN server {server} in {deadline:?}"),
    ))
}

fn is_timeout(err: &std::io::Error) -> bool {
    matches!(
        err.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

#[cfg(test)]
mod tests;
