//! One look at the server's own name, from the server's side: what the system resolver says
//! (the cache clients get), what the name's authoritative servers say, what address a STUN
//! server sees this machine at, and whether the server's port answers on each published address.
//! Gathers plain facts; [`super::verdict`] judges them.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::net::{dns, stun};

use super::Ddns;

/// How long one DNS question, the STUN exchange, and one connect may take.
const DNS_TIMEOUT: Duration = Duration::from_secs(2);
const STUN_DEADLINE: Duration = Duration::from_secs(3);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Most published addresses whose port is tried (a name has a handful; a hostile zone, more).
const MAX_PORT_CHECKS: usize = 8;

/// What one check found, before judging it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// The system resolver's addresses for the name, or why it failed.
    pub cached: Result<BTreeSet<IpAddr>, String>,
    /// The authoritative servers' addresses for the name, or why none answered.
    pub authoritative: Result<BTreeSet<IpAddr>, String>,
    /// The public addresses STUN saw (one per family that answered), or why none did.
    pub public: Result<BTreeSet<IpAddr>, String>,
    /// Each published address the port was tried on, and the error when it did not answer.
    pub port: Vec<(IpAddr, Option<String>)>,
    /// The loopback address the server listens on, when it listens on one only: no one
    /// outside this machine can reach it.
    pub loopback_bind: Option<IpAddr>,
}

impl Default for Facts {
    fn default() -> Facts {
        Facts {
            cached: Ok(BTreeSet::new()),
            authoritative: Ok(BTreeSet::new()),
            public: Ok(BTreeSet::new()),
            port: Vec::new(),
            loopback_bind: None,
        }
    }
}

impl Facts {
    /// The addresses the world is told: the authoritative answer when there is one, else the
    /// cache's.
    pub fn published(&self) -> BTreeSet<IpAddr> {
        match (&self.authoritative, &self.cached) {
            (Ok(addresses), _) if !addresses.is_empty() => addresses.clone(),
            (_, Ok(addresses)) => addresses.clone(),
            _ => BTreeSet::new(),
        }
    }
}

/// The local ends of the check's own connections to the port, until the hub sees them close
/// (at most one check's worth: each check starts afresh).
#[derive(Debug, Clone, Default)]
pub struct Own(Arc<Mutex<Vec<SocketAddr>>>);

impl Own {
    /// Forgets the last check's connections the hub never saw (a port forwarded elsewhere).
    fn clear(&self) {
        if let Ok(mut own) = self.0.lock() {
            own.clear();
        }
    }

    /// Notes a connection of the check's, before it is closed.
    fn note(&self, local: SocketAddr) {
        if let Ok(mut own) = self.0.lock()
            && own.len() < MAX_PORT_CHECKS
        {
            own.push(local);
        }
    }

    /// True, and forgotten, when `peer` is one of the check's connections.
    pub fn take(&self, peer: SocketAddr) -> bool {
        let Ok(mut own) = self.0.lock() else {
            return false;
        };
        match own.iter().position(|local| *local == peer) {
            Some(index) => {
                own.swap_remove(index);
                true
            }
            None => false,
        }
    }
}

/// Looks, once, at `ddns.name` for a server listening on `listening`; each connection made to
/// the port is noted in `own` before it closes.
pub fn gather(ddns: &Ddns, listening: SocketAddr, own: &Own) -> Facts {
    own.clear();
    let port = listening.port();
    let (cached, authoritative, public) = std::thread::scope(|scope| {
        let cached = scope.spawn(|| system(&ddns.name));
        let authoritative = scope.spawn(|| authoritative(ddns));
        let public = scope.spawn(|| public(&ddns.stun));
        (
            joined(cached.join()),
            joined(authoritative.join()),
            joined(public.join()),
        )
    });
    let mut facts = Facts {
        cached,
        authoritative,
        public,
        port: Vec::new(),
        loopback_bind: Some(listening.ip()).filter(IpAddr::is_loopback),
    };
    let mut targets: BTreeSet<IpAddr> = facts.published();
    if let Ok(cached) = &facts.cached {
        targets.extend(cached);
    }
    facts.port = std::thread::scope(|scope| {
        let tries: Vec<_> = targets
            .into_iter()
            .take(MAX_PORT_CHECKS)
            .map(|ip| {
                scope.spawn(move || {
                    let answered =
                        TcpStream::connect_timeout(&SocketAddr::new(ip, port), CONNECT_TIMEOUT);
                    // Noted before the stream closes: the server sees the close after this.
                    if let Some(local) = answered.as_ref().ok().and_then(|s| s.local_addr().ok()) {
                        own.note(local);
                    }
                    (ip, answered.err().map(|err| err.to_string()))
                })
            })
            .collect();
        tries
            .into_iter()
            .filter_map(|try_| try_.join().ok())
            .collect()
    });
    facts
}

/// A gathering thread's result (one that panicked says so rather than ending the check).
fn joined<T>(result: std::thread::Result<Result<T, String>>) -> Result<T, String> {
    result.unwrap_or_else(|_| Err("the check failed unexpectedly".into()))
}

/// The name's addresses through the system resolver (getaddrinfo: the cache, /etc/hosts).
fn system(name: &str) -> Result<BTreeSet<IpAddr>, String> {
    let found: BTreeSet<IpAddr> = (name, 0)
        .to_socket_addrs()
        .map_err(|err| err.to_string())?
        .map(|addr| addr.ip())
        .collect();
    Ok(found)
}

/// The name's addresses from its authoritative servers: the first that answers.
fn authoritative(ddns: &Ddns) -> Result<BTreeSet<IpAddr>, String> {
    let servers = match ddns.authority {
        Some(server) => vec![server],
        None => {
            let resolver = *crate::platform::nameservers()
                .first()
                .ok_or("no nameserver in /etc/resolv.conf to find the zone through")?;
            dns::authorities(&ddns.name, resolver, DNS_TIMEOUT).map_err(|err| err.to_string())?
        }
    };
    let mut errors = Vec::new();
    for server in servers {
        match dns::addresses(&ddns.name, server, DNS_TIMEOUT, false) {
            Ok(answer) if answer.nxdomain => {
                return Err(format!("{server} says the name does not exist (NXDOMAIN)"));
            }
            Ok(answer) => return Ok(answer.addresses),
            Err(err) => errors.push(format!("{server}: {err}")),
        }
    }
    Err(errors.join("; "))
}

/// This machine's public addresses as the STUN server at `server` (HOST:PORT) sees them: one
/// question per family the server has an address of.
fn public(server: &str) -> Result<BTreeSet<IpAddr>, String> {
    let addresses: Vec<SocketAddr> = server
        .to_socket_addrs()
        .map_err(|err| format!("the STUN server {server} does not resolve: {err}"))?
        .collect();
    let first_v4 = addresses.iter().find(|addr| addr.is_ipv4());
    let first_v6 = addresses.iter().find(|addr| addr.is_ipv6());
    let mut found = BTreeSet::new();
    let mut errors = Vec::new();
    for &addr in first_v4.into_iter().chain(first_v6) {
        match stun::public_address(addr, STUN_DEADLINE) {
            Ok(public) => {
                found.insert(public.ip());
            }
            Err(err) => errors.push(format!("{addr}: {err}")),
        }
    }
    if found.is_empty() {
        return Err(format!(
            "the STUN server {server} did not answer ({})",
            errors.join("; ")
        ));
    }
    Ok(found)
}
