//! How `soquete chat` was asked to run, in the client's own terms: built from the command line at
//! the face (`cli/`), so nothing in the client knows clap.

use std::path::PathBuf;
use std::time::Duration;

use super::reconnect::{self, Reconnect};
use crate::chat::protocol::PasswordSource;
use crate::error::{Error, Result};
use crate::net::clock::millis_from_env;
use crate::net::state::default_state_dir;
use crate::net::tls::Fingerprint;
use crate::net::tls::client::{ClientTls, HANDSHAKE_TIMEOUT, HANDSHAKE_TIMEOUT_ENV};
use crate::net::tls::known_hosts::KnownHosts;
use crate::net::tls::roots::Roots;

/// The client's configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The servers of one room, each `[HOST][:PORT]` as given, tried in this order (and every
    /// address a name resolves to, in the resolver's order); none: the course's server,
    /// 127.0.0.1:65432.
    pub targets: Vec<String>,
    /// The name to chat under; None: the login name.
    pub name: Option<String>,
    /// Plain text lines to any TCP server, no soquete protocol (and no reconnection).
    pub raw: bool,
    /// Question/answer turn-taking: after sending, wait for the answer before sending again.
    pub sync: bool,
    /// Every received event as one JSON line on stdout.
    pub json: bool,
    /// Reconnect when the server is lost (false: the session ends with the connection).
    pub reconnect: bool,
    /// The longest pause between two reconnection attempts.
    pub reconnect_max: Duration,
    /// When to stop trying to reconnect.
    pub give_up: GiveUp,
    /// `--tls`: talk TLS and verify the server; None: plain TCP.
    pub tls: Option<TlsOptions>,
    /// The room's password (`--password-file`, `SOQUETE_PASSWORD`); none: asked on a terminal
    /// when the server says it needs one.
    pub password: PasswordSource,
}

/// How `--tls` verifies the server.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TlsOptions {
    /// `--tls-ca`: trust this PEM file's CAs instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// `--tls-fingerprint`: accept a self-signed certificate with this fingerprint on first use.
    pub fingerprint: Option<Fingerprint>,
    /// `--state-dir`: where `known_hosts` is; None: soquete's data directory.
    pub state_dir: Option<PathBuf>,
}

impl TryFrom<&TlsOptions> for ClientTls {
    type Error = Error;

    /// Loads the roots; the known-hosts file is read at each connection.
    fn try_from(options: &TlsOptions) -> Result<ClientTls> {
        let state_dir = options.state_dir.clone().or_else(default_state_dir);
        if state_dir.is_none() && options.fingerprint.is_some() {
            return Err(Error::Usage(
                "no data directory to remember the server in: give --state-dir DIR".into(),
            ));
        }
        Ok(ClientTls {
            roots: Roots::load(options.ca_file.as_deref())?,
            fingerprint: options.fingerprint,
            known_hosts: state_dir.as_deref().map(KnownHosts::in_dir),
            handshake_timeout: millis_from_env(HANDSHAKE_TIMEOUT_ENV).unwrap_or(HANDSHAKE_TIMEOUT),
        })
    }
}

/// After how many failed reconnection attempts in a row the client gives up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUp {
    /// As suits the input: never on a terminal (Ctrl-C stops it), after
    /// [`reconnect::DEFAULT_PIPED_ATTEMPTS`] from a pipe or file (nobody may be there to stop it).
    ByInput,
    /// Never.
    Never,
    /// After this many.
    After(u32),
}

impl Config {
    /// How this client reconnects, `interactive` telling whether input is a terminal, to
    /// `servers` servers (addresses): never with `raw` or without `reconnect`.
    pub fn reconnect_policy(&self, interactive: bool, servers: usize) -> Option<Reconnect> {
        if self.raw || !self.reconnect {
            return None;
        }
        let attempts = match self.give_up {
            GiveUp::Never => None,
            GiveUp::After(limit) => Some(limit),
            GiveUp::ByInput if interactive => None,
            GiveUp::ByInput => Some(reconnect::DEFAULT_PIPED_ATTEMPTS),
        };
        Some(Reconnect {
            max_delay: self.reconnect_max,
            attempts,
            failover: servers > 1,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(give_up: GiveUp) -> Config {
        Config {
            targets: Vec::new(),
            name: None,
            raw: false,
            sync: false,
            json: false,
            reconnect: true,
            reconnect_max: Duration::from_secs(30),
            give_up,
            tls: None,
            password: PasswordSource::None,
        }
    }

    fn attempts(config: &Config, interactive: bool) -> Option<Option<u32>> {
        config
            .reconnect_policy(interactive, 1)
            .map(|policy| policy.attempts)
    }

    #[test]
    fn a_terminal_reconnects_forever_and_a_pipe_a_bounded_number_of_times() {
        let by_input = config(GiveUp::ByInput);
        assert_eq!(attempts(&by_input, true), Some(None));
        assert_eq!(
            attempts(&by_input, false),
            Some(Some(reconnect::DEFAULT_PIPED_ATTEMPTS))
        );
        for interactive in [true, false] {
            assert_eq!(attempts(&config(GiveUp::Never), interactive), Some(None));
            assert_eq!(
                attempts(&config(GiveUp::After(3)), interactive),
                Some(Some(3))
            );
        }
        assert_eq!(
            by_input.reconnect_policy(true, 1).unwrap().max_delay,
            Duration::from_secs(30)
        );
        assert!(!by_input.reconnect_policy(true, 1).unwrap().failover);
        assert!(by_input.reconnect_policy(true, 2).unwrap().failover);
    }

    #[test]
    fn raw_and_no_reconnect_never_reconnect() {
        let raw = Config {
            raw: true,
            ..config(GiveUp::After(3))
        };
        let no_reconnect = Config {
            reconnect: false,
            ..config(GiveUp::Never)
        };
        assert_eq!(raw.reconnect_policy(true, 2), None);
        assert_eq!(no_reconnect.reconnect_policy(false, 2), None);
    }
}
