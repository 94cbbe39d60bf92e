//! What `soquete serve` is asked to do, as plain values: the face (`cli/`) builds a [`Config`]
//! from the command line, and the server checks it once before it binds anything.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::chat::protocol::{PasswordSource, quoted_name, validate_name};
use crate::error::{Error, Result};
use crate::net::tls::server::TlsSetup;

use super::cluster::ClusterSetup;
use super::ddns::Ddns;
use super::throttle::{DEFAULT_RATE_LIMIT, RateLimit};

/// Tests shorten the server's heartbeat with this variable (milliseconds); the face reads it
/// into [`Config::heartbeat`].
pub const HEARTBEAT_INTERVAL_ENV: &str = "SOQUETE_HEARTBEAT_INTERVAL_MS";
/// Tests and benchmarks shorten the pause after a first wrong password with this variable
/// (milliseconds); the face reads it into [`Config::password_delay`].
pub const PASSWORD_DELAY_ENV: &str = "SOQUETE_PASSWORD_DELAY_MS";

/// How the server serves its clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Group chat among N clients, a thread per client.
    #[default]
    Group,
    /// One client at a time talks with the server console; others queue.
    Single,
    /// Every line goes back to its sender.
    Echo,
    /// Each raw client's lines go to all others as they came, like ncat --broker.
    Broker,
}

impl Mode {
    /// The mode's name, as `welcome` and `/status` carry it.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Group => "group",
            Mode::Single => "single",
            Mode::Echo => "echo",
            Mode::Broker => "broker",
        }
    }

    /// Group and broker mode: a room of N members, with a history.
    pub fn is_room(self) -> bool {
        matches!(self, Mode::Group | Mode::Broker)
    }
}

/// Everything `soquete serve` was asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The address and port to listen on (port 0 picks a free one).
    pub listen: SocketAddr,
    pub mode: Mode,
    /// Strict question/answer turns (single mode).
    pub sync: bool,
    /// The name the console speaks under, as given (checked by [`Config::console_name`]).
    pub name: String,
    /// Messages the room keeps for clients that resume.
    pub history: usize,
    /// The file every message is appended to, and the history reloaded from.
    pub log: Option<PathBuf>,
    /// Per-client flood control; None takes the mode's default ([`Config::rate_limit`]).
    pub rate_limit: Option<RateLimit>,
    /// Most connections at once.
    pub max_clients: Option<usize>,
    /// Close a client that sends nothing for this long.
    pub idle_timeout: Option<Duration>,
    /// A structured client sent nothing for this long gets a `ping`.
    pub heartbeat: Duration,
    /// TLS (`--tls`, `--tls-cert`): where the certificate comes from; None serves plain TCP.
    pub tls: Option<TlsSetup>,
    /// How long a dropped client's name stays reserved for its resume token.
    pub name_reserve: Duration,
    /// The room's password, if any (`--password-file` or `SOQUETE_PASSWORD`), read at start.
    pub password: PasswordSource,
    /// The pause after an address's first wrong password (it doubles with each further one).
    pub password_delay: Duration,
    /// `--ddns`: check the server's own public name (off: no such traffic at all).
    pub ddns: Option<Ddns>,
    /// `--cluster URL --room NAME`: one room shared with every server on that Redis.
    pub cluster: Option<ClusterSetup>,
}

impl Config {
    /// Refuses combinations that cannot be served as asked; returns the console's name, checked
    /// as a client's would be.
    pub fn console_name(&self) -> Result<String> {
        let name = validate_name(&self.name).map_err(|message| {
            Error::Usage(format!("--name {}: {message}", quoted_name(&self.name)))
        })?;
        if self.sync && self.mode != Mode::Single {
            return Err(Error::Usage(
                "--sync is turn-taking between one client and the console: use it with --mode single"
                    .into(),
            ));
        }
        if self.log.is_some() && !self.mode.is_room() {
            return Err(Error::Usage(
                "--log keeps the room's messages: use it in group or broker mode".into(),
            ));
        }
        if let Some(cluster) = &self.cluster {
            if !self.mode.is_room() {
                return Err(Error::Usage(format!(
                    "--cluster shares a room among servers: use it in group or broker mode, not {}",
                    self.mode.name()
                )));
            }
            if self.log.is_some() {
                return Err(Error::Usage(
                    "--log and --cluster: with --cluster the room's messages are kept in Redis \
                     (its own persistence, AOF or RDB, keeps them); leave --log out"
                        .into(),
                ));
            }
            cluster.check().map_err(Error::Usage)?;
        }
        Ok(name)
    }

    /// Whether every connection is encrypted (`--tls` without `--tls-optional`): otherwise a
    /// password crosses the network readable (a plain client's, with `--tls-optional`), and
    /// the server says so at start.
    pub fn tls_enabled(&self) -> bool {
        self.tls.as_ref().is_some_and(|tls| !tls.optional)
    }

    /// The rate limit in force: the one given, else [`DEFAULT_RATE_LIMIT`], off in broker mode
    /// (a relay carries data, not typing).
    pub fn rate_limit(&self) -> RateLimit {
        self.rate_limit.unwrap_or(if self.mode == Mode::Broker {
            RateLimit::Off
        } else {
            DEFAULT_RATE_LIMIT
        })
    }

    /// What every connection is held to.
    pub fn policy(&self) -> Policy {
        Policy {
            rate_limit: self.rate_limit(),
            // Single mode times idleness in the hub, from a client's turn: waiting in line is
            // not being idle, so its readers keep no clock of their own.
            idle_timeout: self.idle_timeout.filter(|_| self.mode != Mode::Single),
            heartbeat: self.heartbeat,
            telnet: self.mode != Mode::Broker,
        }
    }
}

/// How a client's reader and writer treat it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    pub rate_limit: RateLimit,
    /// Close a client that sends nothing for this long.
    pub idle_timeout: Option<Duration>,
    /// Ping a structured client that was sent nothing for this long.
    pub heartbeat: Duration,
    /// Take telnet's commands out of a raw client's bytes; off in broker mode (a relay carries
    /// the bytes as they came, as ncat --broker does).
    pub telnet: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::protocol::HEARTBEAT_INTERVAL;

    fn config(mode: Mode) -> Config {
        Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            mode,
            sync: false,
            name: " server ".into(),
            history: 1000,
            log: None,
            rate_limit: None,
            max_clients: None,
            idle_timeout: None,
            heartbeat: HEARTBEAT_INTERVAL,
            tls: None,
            name_reserve: crate::chat::server::token::NAME_RESERVE,
            password: PasswordSource::None,
            password_delay: Duration::from_millis(500),
            ddns: None,
            cluster: None,
        }
    }

    #[test]
    fn the_console_name_is_checked_and_trimmed() {
        assert_eq!(config(Mode::Group).console_name().unwrap(), "server");
        let bad = Config {
            name: "/me".into(),
            ..config(Mode::Group)
        };
        let err = bad.console_name().unwrap_err().to_string();
        assert!(err.starts_with("--name \"/me\": "), "{err}");
    }

    #[test]
    fn sync_is_for_single_mode_and_a_log_for_a_room() {
        let sync = |mode| Config {
            sync: true,
            ..config(mode)
        };
        assert!(sync(Mode::Single).console_name().is_ok());
        assert!(sync(Mode::Group).console_name().is_err());
        let log = |mode| Config {
            log: Some("room.log".into()),
            ..config(mode)
        };
        assert!(log(Mode::Broker).console_name().is_ok());
        assert!(log(Mode::Echo).console_name().is_err());
    }

    #[test]
    fn a_cluster_is_a_room_of_group_or_broker_mode_without_a_log_of_its_own() {
        let cluster = |mode, url: &str, log: Option<&str>| Config {
            cluster: Some(ClusterSetup {
                url: crate::chat::protocol::Secret::new(url.into()),
                room: "sala".into(),
                password: None,
                ttl: std::time::Duration::from_secs(30),
                stream_len: 100_000,
            }),
            log: log.map(Into::into),
            ..config(mode)
        };
        let ok = "redis://:pw@127.0.0.1:6379";
        assert!(cluster(Mode::Group, ok, None).console_name().is_ok());
        assert!(cluster(Mode::Broker, ok, None).console_name().is_ok());
        for mode in [Mode::Single, Mode::Echo] {
            let err = cluster(mode, ok, None).console_name().unwrap_err();
            assert_eq!(err.exit_code(), crate::error::EXIT_USAGE);
            assert!(err.to_string().contains("group or broker"), "{err}");
        }
        let err = cluster(Mode::Group, ok, Some("room.log")).console_name();
        assert!(
            err.unwrap_err()
                .to_string()
                .starts_with("--log and --cluster")
        );
        let err = cluster(Mode::Group, "http://:pw@h", None)
            .console_name()
            .unwrap_err();
        assert!(!err.to_string().contains("pw@"), "{err}");
    }

    #[test]
    fn the_rate_limit_defaults_to_a_person_typing_and_to_off_for_a_broker() {
        assert_eq!(config(Mode::Group).rate_limit(), DEFAULT_RATE_LIMIT);
        assert_eq!(config(Mode::Broker).rate_limit(), RateLimit::Off);
        let given = Config {
            rate_limit: Some(RateLimit::Off),
            ..config(Mode::Single)
        };
        assert_eq!(given.policy().rate_limit, RateLimit::Off);
    }
}
