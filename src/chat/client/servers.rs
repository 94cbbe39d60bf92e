//! Which server to talk to: every address of every target (`chat A:PORT B:PORT`, or a name with
//! several addresses, in the resolver's order), taken as servers of one room. The first
//! connection goes to the first that answers, saying so of each one skipped; each attempt after
//! a loss is a round over them all, from the one after the server lost
//! ([`reconnect::rotation`]), names resolved anew each time (a dynamic-DNS name moves).

use std::io;
use std::net::{IpAddr, SocketAddr};

use super::connection::{Connection, Dialer, Failure, refused};
use super::reconnect;
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
/// and why the targets that did not resolve did not.
pub fn resolve(targets: &[Target]) -> (Vec<Server>, Vec<Error>) {
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
            Err(err) => unresolved.push(err),
        }
    }
    (servers, unresolved)
}

impl Dialer {
    /// The first connection: to the first server that answers, in order; each one that does not
    /// (refused, unreachable, no answer within the connect timeout) is skipped with one line on
    /// stderr. A refused certificate is never talked to: with one server it ends there; with
    /// several, it is skipped with a loud line, and the session ends only if none is acceptable.
    /// With the connection and its server, how many servers there are.
    pub fn start(&self) -> Result<(Connection, Server, usize)> {
        let (servers, unresolved) = resolve(&self.targets);
        if servers.is_empty() {
            return Err(none_answered(unresolved));
        }
        for err in &unresolved {
            eprintln!("* {err}: skipped");
        }
        let several = servers.len() > 1;
        let mut failures = Vec::new();
        for (index, server) in servers.iter().enumerate() {
            let err = match self.first(server) {
                Ok(Ok(connection)) => return Ok((connection, server.clone(), servers.len())),
                Ok(Err(err)) => err,
                Err(refusal) if several => {
                    eprintln!("* {refusal} — {NEVER_TALKED_TO}");
                    failures.push(refusal);
                    continue;
                }
                Err(refusal) => return Err(refusal),
            };
            if let Some(next) = servers.get(index + 1) {
                eprintln!("* {err} — trying {}", next.label());
            }
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
        let (servers, mut failures) = resolve(&self.targets);
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

/// What follows a server's refused certificate, with several servers.
const NEVER_TALKED_TO: &str = "skipped, never talked to";

/// Why no server answered: the one failure as it was (one server: as it always read), or each
/// in one line.
fn none_answered(mut failures: Vec<Error>) -> Error {
    if failures.len() <= 1 {
        return failures
            .pop()
            .unwrap_or_else(|| Error::Internal("no server to connect to".into()));
    }
    let each: Vec<String> = failures.iter().map(ToString::to_string).collect();
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
    }
}
