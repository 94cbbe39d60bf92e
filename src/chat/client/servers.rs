//! Which server to talk to: every address of every target (`chat A:PORT B:PORT`, or a name with
//! several addresses, in the resolver's order), taken as servers of one room. The first
//! connection goes to the first that answers, saying so of each one skipped; each attempt after
//! a loss is a round over them all, from the one after the server lost
//! ([`reconnect::rotation`]), names resolved anew each time (a dynamic-DNS name moves).

use std::io;
use std::net::{IpAddr, SocketAddr};

use super::connection::{Connection, Dialer, Failure, refused};
use super::reconnect;
use super::session::{LocalEvent, Output};
use crate::error::{Error, Result};
use crate::net::target::Target;

/// One address of one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// The target as the user named it: TLS verifies its host, known_hosts keys its `HOST:PORT`.
    pub target: Target,
    pub addr: SocketAddr,
}

impl Server {
    /// As the user reads it: `127.0.0.1:5000`, or `lab.example.net:5000 (10.0.0.2:5000)` for a
    /// name (host names are checked when parsed: nothing here needs neutralising).
    pub fn label(&self) -> String {
        if self.target.host.parse::<IpAddr>().is_ok() {
            self.addr.to_string()
        } else {
            format!("{} ({})", self.target, self.addr)
        }
    }
}

/// Every address of every target, in order, each once (under the first target that gave it);
/// and the targets that did not resolve, with why.
pub fn resolve(targets: &[Target]) -> (Vec<Server>, Vec<(String, Error)>) {
    let mut servers: Vec<Server> = Vec::new();
    let mut unresolved = Vec::new();
    for target in targets {
        match target.resolve() {
            Ok(addrs) => {
                for addr in addrs {
                    if !servers.iter().any(|server| server.addr == addr) {
                        servers.push(Server {
                            target: target.clone(),
                            addr,
                        });
                    }
                }
            }
            Err(err) => unresolved.push((target.to_string(), err)),
        }
    }
    (servers, unresolved)
}

impl Dialer {
    /// The first connection: to the first server that answers, in order; each one that does not
    /// (refused, unreachable, no answer within the connect timeout) is skipped with one line on
    /// stderr. A refused certificate is never talked to: with one server it ends there; with
    /// several, it is skipped with a loud line, and the session ends only if none is acceptable.
    /// With the connection and its server, how many servers there are, and each skipped (for
    /// `--json`'s `skipped` events).
    pub fn start(&self) -> Result<Started> {
        let (servers, unresolved) = resolve(&self.targets);
        if servers.is_empty() {
            return Err(none_answered(
                unresolved.into_iter().map(|(_, err)| err).collect(),
            ));
        }
        let mut skipped = Vec::new();
        for (target, err) in unresolved {
            eprintln!("* {err}: skipped");
            skipped.push(Skipped::new(target, &err));
        }
        let several = servers.len() > 1;
        let mut failures = Vec::new();
        for (index, server) in servers.iter().enumerate() {
            let err = match self.first(server) {
                Ok(Ok(connection)) => {
                    return Ok(Started {
                        connection,
                        server: server.clone(),
                        servers: servers.len(),
                        skipped,
                    });
                }
                Ok(Err(err)) => err,
                Err(refusal) if several => {
                    eprintln!("* {refusal} — {NEVER_TALKED_TO}");
                    skipped.push(Skipped::new(server.addr.to_string(), &refusal));
                    failures.push(refusal);
                    continue;
                }
                Err(refusal) => return Err(refusal),
            };
            if let Some(next) = servers.get(index + 1) {
                eprintln!("* {err} — trying {}", next.label());
            }
            skipped.push(Skipped::new(server.addr.to_string(), &err));
            failures.push(err);
        }
        Err(none_answered(failures))
    }

    /// One attempt after a loss: every server in turn, from the one after `last` (the address
    /// the client was on) and ending with it, until one answers. A server whose certificate is
    /// refused is skipped, never talked to (a loud line for each, to show, comes first with the
    /// outcome); only when every server's certificate is refused does the attempt end in a
    /// refusal.
    pub fn round(&self, last: Option<SocketAddr>) -> (Vec<String>, Dialed) {
        let (servers, unresolved) = resolve(&self.targets);
        let mut failures: Vec<Error> = unresolved.into_iter().map(|(_, err)| err).collect();
        let last = last.and_then(|addr| servers.iter().position(|server| server.addr == addr));
        let mut skipped = Vec::new();
        let mut refusals = Vec::new();
        for index in reconnect::rotation(servers.len(), last) {
            match self.dial(&servers[index]) {
                Ok((connection, _)) => return (skipped, Ok((connection, servers[index].clone()))),
                Err(Failure::Unreachable(err)) => failures.push(err),
                Err(Failure::Refused(refusal)) => {
                    skipped.push(format!("* {refusal} — {NEVER_TALKED_TO}"));
                    failures.push(refused(refusal.to_string()));
                    refusals.push(refusal);
                }
            }
        }
        if !servers.is_empty() && refusals.len() == servers.len() {
            // Said once, as the session's end.
            skipped.clear();
            return (skipped, Err(Failure::Refused(refusals.swap_remove(0))));
        }
        (skipped, Err(Failure::Unreachable(none_answered(failures))))
    }
}

/// The outcome of a round: a connection and its server, or why none.
pub type Dialed = std::result::Result<(Connection, Server), Failure>;

/// The first connection, made.
pub struct Started {
    pub connection: Connection,
    pub server: Server,
    /// How many servers there are.
    pub servers: usize,
    /// The servers skipped before it, in order.
    pub skipped: Vec<Skipped>,
}

/// A server skipped at start: `IP:PORT` (the target, for a name that did not resolve), and why.
pub struct Skipped {
    pub server: String,
    pub error: String,
}

impl Skipped {
    fn new(server: String, error: &Error) -> Skipped {
        Skipped {
            server,
            error: error.to_string(),
        }
    }

    /// `--json`'s `skipped` event (stderr said it as it happened).
    pub fn event(&self) -> Output {
        let json = LocalEvent::Skipped {
            server: &self.server,
            error: &self.error,
        }
        .to_json();
        Output::State { human: None, json }
    }
}

/// What follows a server's refused certificate, with several servers.
const NEVER_TALKED_TO: &str = "skipped, never talked to";

/// How many servers' failures [`none_answered`] spells out; the rest are counted.
const NAMED_FAILURES: usize = 3;

/// Why no server answered: the one failure as it was (one server: as it always read), or the
/// first few in one line and how many more (a hundred servers make no 7 KB line).
fn none_answered(mut failures: Vec<Error>) -> Error {
    if failures.len() <= 1 {
        return failures
            .pop()
            .unwrap_or_else(|| Error::Internal("no server to connect to".into()));
    }
    let mut each: Vec<String> = failures
        .iter()
        .take(NAMED_FAILURES)
        .map(ToString::to_string)
        .collect();
    if failures.len() > NAMED_FAILURES {
        each.push(format!("and {} more", failures.len() - NAMED_FAILURES));
    }
    Error::io("no server answered", io::Error::other(each.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(text: &str) -> Target {
        Target::parse(text).unwrap()
    }

    #[test]
    fn every_address_of_every_target_once_in_order() {
        let targets = [
            target("127.0.0.1:5000"),
            target("[::1]:5001"),
            target("127.0.0.1:5000"),
        ];
        let (servers, unresolved) = resolve(&targets);
        assert!(unresolved.is_empty());
        let labels: Vec<String> = servers.iter().map(Server::label).collect();
        assert_eq!(labels, ["127.0.0.1:5000", "[::1]:5001"]);
    }

    #[test]
    fn a_name_is_labelled_with_its_address() {
        let server = Server {
            target: target("lab.example.net:5000"),
            addr: "10.0.0.2:5000".parse().unwrap(),
        };
        assert_eq!(server.label(), "lab.example.net:5000 (10.0.0.2:5000)");
    }

    #[test]
    fn one_failure_reads_as_it_always_did_several_in_one_line() {
        let refused = |label: &str| {
            Error::io(
                format!("cannot connect to {label}"),
                io::Error::from(io::ErrorKind::ConnectionRefused),
            )
        };
        let one = none_answered(vec![refused("127.0.0.1:5000")]).to_string();
        assert!(
            one.starts_with("cannot connect to 127.0.0.1:5000: "),
            "{one}"
        );
        let two = none_answered(vec![refused("A"), refused("B")]).to_string();
        assert!(
            two.starts_with("no server answered: cannot connect to A: ")
                && two.contains("; cannot connect to B: "),
            "{two}"
        );
        assert!(!two.contains('\n'));
        let many: Vec<Error> = (0..100).map(|n| refused(&format!("S{n}"))).collect();
        let many = none_answered(many).to_string();
        assert!(
            many.contains("cannot connect to S2: ")
                && !many.contains("S3")
                && many.ends_with("; and 97 more"),
            "{many}"
        );
    }
}
