//! What the probe runs on: plain data, built from the command line at the face (`cli/`), so
//! nothing in the probe knows how the flags were spelt.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::resolve::Families;
use crate::net::target::Target;

/// What the probe runs on, once the command line has been understood.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The hosts and ports to probe, in the order given.
    pub targets: Vec<Target>,
    /// How long each connection attempt (and each direct DNS query) may take.
    pub timeout: Duration,
    /// Which address families to resolve and try.
    pub families: Families,
    /// How many rounds; None: until Ctrl-C.
    pub rounds: Option<u32>,
    /// Time from the start of one round to the start of the next.
    pub interval: Duration,
    /// After an open verdict, check for a soquete server behind the port.
    pub chat: bool,
    /// After an open verdict, a TLS handshake and the certificate's details.
    pub tls: bool,
    /// `--tls-ca`: verify against this PEM file's CAs instead of the system's roots.
    pub tls_ca: Option<std::path::PathBuf>,
    /// A DNS server to ask directly, besides the system resolver.
    pub dns_server: Option<SocketAddr>,
    /// The addresses the host really has, to compare DNS answers with.
    pub expect_ip: Vec<IpAddr>,
    /// Machine-readable output: one document, or NDJSON when the probe repeats.
    pub json: bool,
}

impl Config {
    /// More than one round: ping-style output.
    pub fn repeated(&self) -> bool {
        self.rounds != Some(1)
    }
}
