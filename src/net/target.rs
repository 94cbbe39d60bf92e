//! The server a client talks to: `[HOST][:PORT]` read into a host and a port, and resolved (the
//! chat client connects to each address in turn, within [`CONNECT_TIMEOUT`]).

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use super::DEFAULT_PORT;
use crate::error::{Error, Result};

/// The host used when the target names none (`soquete chat`, `soquete chat :6000`).
pub const DEFAULT_HOST: &str = "127.0.0.1";
/// How long one connection attempt may take before the next address is tried.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A server to connect to, as the user named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// An IP address or a host name (a dynamic-DNS name included), without brackets.
    pub host: String,
    pub port: u16,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl Target {
    /// Reads `[HOST][:PORT]`: `host`, `host:port`, `:port`, `1.2.3.4`, `[v6]`, `[v6]:port`, or a
    /// bare IPv6 address such as `::1` (a bare IPv6 address takes the default port; one whose
    /// last group could be read as a port, `::1:80`, is refused: see [`unbracketed_port`]).
    /// Empty: 127.0.0.1:65432.
    pub fn parse(text: &str) -> Result<Target> {
        let text = text.trim();
        let bad = |why: &str| Error::Usage(format!("bad target '{text}': {why}"));
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (inside, after) = rest
                .split_once(']')
                .ok_or_else(|| bad("a '[' needs its ']'"))?;
            if inside.parse::<Ipv6Addr>().is_err() {
                return Err(bad("brackets hold an IPv6 address"));
            }
            let port = match after {
                "" => None,
                _ => Some(
                    after
                        .strip_prefix(':')
                        .ok_or_else(|| bad("expected ':PORT' after ']'"))?,
                ),
            };
            (inside, port)
        } else if text.matches(':').count() > 1 {
            if let Some(fix) = unbracketed_port(text) {
                return Err(bad(&fix));
            }
            if text.parse::<Ipv6Addr>().is_err() {
                return Err(bad("write an IPv6 address as [ADDR]:PORT"));
            }
            (text, None)
        } else {
            match text.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (text, None),
            }
        };
        let port = match port {
            None => DEFAULT_PORT,
            Some(port) => parse_port(port).map_err(|why| bad(&why))?,
        };
        let host = if host.is_empty() { DEFAULT_HOST } else { host };
        if host.parse::<IpAddr>().is_err() {
            host_name(host).map_err(|why| bad(&why))?;
        }
        Ok(Target {
            host: host.to_string(),
            port,
        })
    }

    /// Every address the target resolves to, in the resolver's order.
    pub fn resolve(&self) -> Result<Vec<SocketAddr>> {
        let addrs: Vec<SocketAddr> = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|err| Error::io(format!("cannot resolve {}", self.host), err))?
            .collect();
        if addrs.is_empty() {
            return Err(Error::io(
                format!("cannot resolve {}", self.host),
                std::io::Error::new(std::io::ErrorKind::NotFound, "no addresses"),
            ));
        }
        Ok(addrs)
    }
}

fn parse_port(text: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(0) => Err("port 0 cannot be connected to".into()),
        Ok(port) => Ok(port),
        Err(_) => Err(format!("'{text}' is not a port (1-65535)")),
    }
}

/// Checks a host name: its characters, then its length and its labels' (RFC 1035), each with
/// its own reason (`probe`'s targets, `serve --ddns NAME`).
pub fn host_name(host: &str) -> Result<(), String> {
    if host.is_empty()
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err("a host name has only letters, digits, '-', '_' and '.'".into());
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    if name.len() > 253 {
        return Err(format!(
            "a host name has at most 253 characters, this one has {}",
            name.len()
        ));
    }
    if let Some(label) = name.split('.').find(|l| l.is_empty() || l.len() > 63) {
        return Err(match label.len() {
            0 => "a host name has no empty label ('..', or a leading '.')".into(),
            n => format!("each label of a host name has at most 63 characters, one has {n}"),
        });
    }
    Ok(())
}

/// When `text` is a bare IPv6 address whose last group reads as a port (`::1:80`: the address
/// ::1:80, or port 80 of ::1?), the fix in words; `None` for anything else.
pub fn unbracketed_port(text: &str) -> Option<String> {
    let (head, tail) = text.rsplit_once(':')?;
    (!text.starts_with('[')
        && !tail.is_empty()
        && tail.bytes().all(|b| b.is_ascii_digit())
        && head.parse::<Ipv6Addr>().is_ok())
    .then(|| {
        format!(
            "an IPv6 address with a port needs brackets: [{head}]:{tail} (or [{text}] for the \
             address alone)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(text: &str) -> (String, u16) {
        let t = Target::parse(text).unwrap_or_else(|err| panic!("{text}: {err}"));
        (t.host, t.port)
    }

    #[test]
    fn empty_target_is_the_course_server() {
        assert_eq!(target(""), ("127.0.0.1".into(), 65432));
    }

    #[test]
    fn host_port_and_each_half_alone() {
        assert_eq!(target("10.0.0.5:8080"), ("10.0.0.5".into(), 8080));
        assert_eq!(target("10.0.0.5"), ("10.0.0.5".into(), 65432));
        assert_eq!(target(":6000"), ("127.0.0.1".into(), 6000));
        assert_eq!(
            target("chat.ddns.example.net:65432"),
            ("chat.ddns.example.net".into(), 65432)
        );
        assert_eq!(target("localhost"), ("localhost".into(), 65432));
    }

    #[test]
    fn ipv6_in_brackets_or_bare_without_port() {
        assert_eq!(target("[::1]:7000"), ("::1".into(), 7000));
        assert_eq!(target("[::1]"), ("::1".into(), 65432));
        assert_eq!(target("::1"), ("::1".into(), 65432));
        assert_eq!(target("2001:db8::1"), ("2001:db8::1".into(), 65432));
        assert_eq!(
            Target::parse("[::1]:7000").unwrap().to_string(),
            "[::1]:7000"
        );
    }

    #[test]
    fn bad_targets_are_usage_errors() {
        for bad in [
            "host:port",
            "host:0",
            "host:70000",
            "[::1",
            "[nothost]:1",
            "[::1]7000",
            "a:b:c",
            "::1:80",
            "fe80::1:2",
            "bad host",
            "ana@host",
        ] {
            match Target::parse(bad) {
                Err(Error::Usage(message)) => assert!(message.contains(bad.trim()), "{message}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_long_name_is_refused_for_its_length() {
        let long = vec!["a".repeat(60); 5].join(".");
        let message = Target::parse(&long).unwrap_err().to_string();
        assert!(
            message.contains("at most 253 characters, this one has 304"),
            "{message}"
        );
        let label = format!("{}.test", "b".repeat(64));
        let message = Target::parse(&label).unwrap_err().to_string();
        assert!(
            message.contains("at most 63 characters, one has 64"),
            "{message}"
        );
        assert!(Target::parse(&format!("{}.test.", "c".repeat(63))).is_ok());
    }
}
