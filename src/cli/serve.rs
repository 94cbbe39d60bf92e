//! `soquete serve`'s flags and their conversion into the server's `Config`.

use std::path::PathBuf;

use clap::{ArgGroup, Args, ValueEnum};

use crate::chat::protocol::{HEARTBEAT_INTERVAL, PasswordSource, Secret};
use crate::chat::server::{
    self as serve, DDNS_INTERVAL, DDNS_INTERVAL_ENV, Ddns, HEARTBEAT_INTERVAL_ENV, MIN_STREAM_LEN,
    Mode, NAME_RESERVE, NAME_RESERVE_ENV, PASSWORD_DELAY_ENV, PASSWORD_FIRST_DELAY, PRESENCE_TTL,
    PRESENCE_TTL_ENV, REDIS_PASSWORD_ENV, RateLimit, STREAM_LEN_ENV,
};
use crate::net::clock::millis_from_env;
use crate::net::sanitize::neutralize;
use crate::net::stun;
use crate::net::tls::self_signed::check_name;
use crate::net::tls::server::{Source, TLS_RELOAD_ENV, TlsSetup, WATCH_EVERY};

/// How `soquete serve` serves.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ServeMode {
    /// Group chat among N clients, a thread per client (lab 07-03)
    #[default]
    Group,
    /// One client at a time talks with the server console; others queue (labs 07-01, 07-02)
    Single,
    /// Send every line back to its sender
    Echo,
    /// Relay each raw client's lines to all others as they came, without time, author or
    /// notices, like ncat --broker, but never glued or cut (structured clients get full frames)
    Broker,
}

/// `soquete serve`: the chat server.
#[derive(Args, Debug, Clone)]
#[command(group(ArgGroup::new("tls_on").args(["tls", "tls_cert"]).multiple(false)))]
#[command(
    after_long_help = "Resilience (docs/PROTOCOL.md, section 8): the room keeps its last --history \
        messages, and a soquete chat client that reconnects gets what it missed, once, in order. \
        With --log the messages survive a restart, even kill -9, and numbering goes on; without \
        it a restart is a new room (a new epoch), and a client coming back is told so. A client \
        that floods is read more slowly (--rate-limit), never dropped; a client that stops \
        reading for 2 s while something waits for it is disconnected (it may resume), and one \
        that falls 4 MiB behind holds the room up for at most 2 s; structured clients get a \
        ping after 5 s of silence. Ctrl-C or SIGTERM: bye to every client, log flushed, exit 0.\n\n\
        Single mode keeps what a waiting client types for its turn, even if it leaves first (its \
        lines then reach the console marked so): up to 1000 lines and 64 KiB a client, 4 MiB for \
        all; a client is told once when its lines stop being kept. Waiting in line is not being \
        idle (--idle-timeout counts from a client's turn).\n\n\
        Dynamic DNS (--ddns NAME): at start and every 5 minutes the server resolves NAME through \
        the system resolver and through NAME's authoritative servers, asks the --stun server \
        which public address it sees, and connects to its own port on every address NAME has. \
        Stale DNS, a private or CGNAT address published, or a port that does not answer: one \
        warning on the console and in /status, with the fix, again only when it changes. \
        Authoritative servers that cannot be asked are a warning too (the stale-cache check \
        needs them). With the default --bind 127.0.0.1 nothing outside can reach the server: \
        --ddns warns at start and says so instead of blaming the router. \
        The check's own connection to the port is logged as a probe marked (the --ddns check). \
        SOQUETE_DDNS_INTERVAL_MS shortens the interval (tests). Without --ddns nothing of this \
        is sent (docs/SECURITY.md).\n\n\
        Examples:\n  \
        soquete serve                                 group chat on 127.0.0.1:65432\n  \
        soquete serve --bind 0.0.0.0 --log sala.log   serve the world, keep the conversation\n  \
        soquete serve --max-clients 200 --idle-timeout 600 --rate-limit 50/s,burst=100\n  \
        soquete serve --mode single --sync            lab 07-01: strict question and answer\n  \
        soquete serve --mode broker --port 9000       relay lines among nc clients, as ncat --broker\n  \
        soquete serve --bind 0.0.0.0 --ddns lab07.ddns.example   warn when the name goes stale\n  \
        soquete serve --bind 0.0.0.0 --cluster redis://10.0.0.5:6379 --room sala\n                                                one room across every server on that Redis\n  \
        soquete serve --bind 0.0.0.0 --tls --tls-name chat.example.org\n                                                TLS with a self-signed certificate; read\n                                                its fingerprint out to the students\n  \
        soquete serve --bind 0.0.0.0 --tls-cert /etc/letsencrypt/live/chat.example.org/fullchain.pem \\\n                --tls-key /etc/letsencrypt/live/chat.example.org/privkey.pem\n\n\
        Rooms across servers (--cluster, docs/CLUSTER.md): every server started with the same \
        Redis and --room serves one room, its messages in a Redis stream: one order and one seq \
        for all, names unique across the servers, /who lists them all, and a client resumes on \
        any of them with its token and what it missed. A crashed server's members leave /who after \
        30 s (SOQUETE_CLUSTER_TTL_MS, tests). While Redis is away the room is paused (members are \
        told): what they say is delivered, in order, when it is back. Redis is trusted (docs/SECURITY.md): give it a password \
        (SOQUETE_REDIS_PASSWORD, never printed) and rediss:// off your own network.\n\n\
        TLS (docs/SECURITY.md): a plain client (nc, telnet) on a TLS port reads one line saying \
        how to connect with TLS (soquete chat --tls, ncat --ssl, openssl s_client), then the \
        connection closes; --tls-optional serves both on one port, told apart by the first byte. \
        The certificate files are read again when they change (looked at every 5 s) and on the \
        console's /reload: new connections get the new certificate, connected clients keep \
        their session, and a pair that cannot be used keeps the old one (the console says why)."
)]
pub struct ServeArgs {
    /// Address to listen on (0.0.0.0 or :: serves every interface)
    #[arg(
        short = 'b',
        long = "bind",
        value_name = "ADDR",
        default_value = "127.0.0.1"
    )]
    pub bind: std::net::IpAddr,

    /// Port to listen on (0 picks a free one; the chosen port is printed)
    #[arg(short = 'p', long = "port", value_name = "PORT", default_value_t = crate::chat::protocol::DEFAULT_PORT)]
    pub port: u16,

    /// What the server does with its clients
    #[arg(short = 'm', long = "mode", value_enum, default_value_t = ServeMode::Group)]
    pub mode: ServeMode,

    /// Strict question/answer turn-taking (single mode): a side that has sent waits for the answer
    #[arg(long = "sync")]
    pub sync: bool,

    /// The name the server console speaks under
    #[arg(long = "name", value_name = "NAME", default_value = "server")]
    pub name: String,

    /// Messages the room keeps for clients that reconnect and resume (group, broker)
    #[arg(long = "history", value_name = "N", default_value_t = 1000)]
    pub history: usize,

    /// Append every message to FILE as a JSON line, and reload the history from it at start (group, broker)
    #[arg(long = "log", value_name = "FILE")]
    pub log: Option<std::path::PathBuf>,

    /// Per-client flood control: `off`, or RATE/s with an optional burst (`50/s,burst=100`), RATE
    /// from 0.01 to 1000000000; default 10/s,burst=20, and off in broker mode (a relay carries
    /// data, not typing)
    #[arg(long = "rate-limit", value_name = "LIMIT", value_parser = RateLimit::parse)]
    pub rate_limit: Option<RateLimit>,

    /// Most connections at once; the next one is told "server full" and closed
    #[arg(long = "max-clients", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_clients: Option<u32>,

    /// Close a client that sends no complete line for SECS seconds (off by default)
    #[arg(long = "idle-timeout", value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub idle_timeout: Option<u64>,

    /// Serve TLS with a self-signed certificate, made once for --tls-name and the --bind
    /// address, kept in the state directory and reused; its SHA-256 fingerprint is printed
    ///
    /// Kept in the state directory's tls folder (mode 0700, the key 0600): as ssh does, the
    /// server refuses to start when that folder or the key belongs to another user or may be
    /// written by others, or the key read by others, and says the fix (chmod 700 …).
    ///
    /// On a wildcard --bind (0.0.0.0, ::) it names the machine's interface addresses as they are
    /// when it is made. A later start on an address it does not name serves it all the same and
    /// warns (--tls-renew would add the address).
    #[arg(long = "tls")]
    pub tls: bool,

    /// Serve TLS with this certificate chain (PEM, leaf first: a CA's fullchain.pem)
    #[arg(long = "tls-cert", value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert (PEM: PKCS#8, RSA or EC; a CA's privkey.pem)
    ///
    /// Both files must be regular files (or links to them) of at most 1 MiB. A key that others
    /// than its owner and group may read or write is served with a warning, at start and on
    /// every reload.
    #[arg(long = "tls-key", value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// A DNS name or IP address the self-signed certificate is for (repeatable: the DDNS name,
    /// say)
    #[arg(long = "tls-name", value_name = "NAME", requires = "tls", value_parser = TlsName)]
    pub tls_names: Vec<String>,

    /// Make a new self-signed certificate, even if the kept one would do, and say the old and new
    /// fingerprints: clients that remembered the old one refuse until they trust the new one
    ///
    /// Needed when --tls-name asks for a name the kept certificate lacks (names compare whatever
    /// their case): without it the server refuses to start, rather than change its fingerprint
    /// quietly. It also adds the addresses listened on that the kept certificate lacks.
    #[arg(long = "tls-renew", requires = "tls")]
    pub tls_renew: bool,

    /// Serve plain TCP clients too, on the same port (told apart by their first byte)
    #[arg(long = "tls-optional", requires = "tls_on")]
    pub tls_optional: bool,

    /// Where soquete keeps its state (the self-signed certificate), instead of the user's data
    /// directory (~/.local/share/soquete on Linux)
    #[arg(long = "state-dir", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Let in only clients that give the password in FILE's first line (SOQUETE_PASSWORD in the
    /// environment does the same; never a value on the command line, which ps shows)
    ///
    /// Every connection is sent `* password:` first; a soquete client gives the password in its
    /// hello, a raw client (nc, telnet, a Python socket) as its first line. A wrong or missing
    /// one gets one error and the connection closes; each source address's tries wait in line,
    /// 0.5 s after its first failure, doubling up to 10 s (at most 10 tries a minute).
    /// With --tls it is asked for, and given, inside TLS, after the handshake; without TLS (or
    /// a plain client with --tls-optional) it crosses the network readable: the server warns at
    /// start.
    #[arg(long = "password-file", value_name = "FILE")]
    pub password_file: Option<std::path::PathBuf>,

    /// Check this public name of the server at start and every 5 minutes: the resolver's cache
    /// against the name's authoritative servers, against the public address a STUN server
    /// sees, and the port on every address the name has; a warning on the console (and in
    /// /status) says what is wrong and how to fix it. Without it, none of this traffic is sent
    #[arg(long = "ddns", value_name = "NAME", value_parser = parse_ddns_name)]
    pub ddns: Option<String>,

    /// The STUN server that tells --ddns the server's public address (UDP, RFC 8489)
    #[arg(long = "stun", value_name = "HOST:PORT", requires = "ddns", default_value = stun::DEFAULT_SERVER, value_parser = parse_host_port)]
    pub stun: String,

    /// Ask this DNS server as the --ddns name's authority, instead of finding the zone's
    /// nameservers through /etc/resolv.conf (a hidden primary; tests use their own server)
    #[arg(long = "ddns-authority", value_name = "IP[:PORT]", requires = "ddns", value_parser = parse_dns_server)]
    pub ddns_authority: Option<std::net::SocketAddr>,

    /// Share the room with every server started with the same Redis and --room: one order, one
    /// numbering, one history, and resume on any of them (group and broker mode; docs/CLUSTER.md)
    ///
    /// URL: redis://HOST:PORT[/DB], or rediss:// for TLS to Redis. A password goes in the URL
    /// (redis://:PASSWORD@HOST:PORT) or, better, in SOQUETE_REDIS_PASSWORD (ps shows a command
    /// line); it is never printed. Redis keeps the room's messages: not with --log.
    #[arg(long = "cluster", value_name = "URL", requires = "room")]
    pub cluster: Option<String>,

    /// The room's name in --cluster's Redis: 1 to 64 letters, digits, '-', '_' or '.'
    #[arg(long = "room", value_name = "NAME", requires = "cluster")]
    pub room: Option<String>,
}

/// `HOST:PORT` (`[IPv6]:PORT` for an IPv6 literal), checked before anything is sent.
fn parse_host_port(text: &str) -> Result<String, String> {
    if let Some(fix) = crate::net::target::unbracketed_port(text) {
        return Err(fix);
    }
    let usage =
        || format!("{text:?} is not HOST:PORT (an IPv6 address goes in brackets: [::1]:3478)");
    let (host, port) = text.rsplit_once(':').ok_or_else(usage)?;
    let inner = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
    let fine = match inner {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => !host.is_empty() && !host.contains(':'),
    };
    if !fine {
        return Err(usage());
    }
    port.parse::<u16>()
        .ok()
        .filter(|&p| p > 0)
        .ok_or_else(usage)?;
    Ok(text.to_string())
}

/// `--ddns NAME`: a host name, checked as `probe` checks its targets' (the reason names no
/// character: a usage error is printed, and the name may hold a terminal escape).
fn parse_ddns_name(text: &str) -> Result<String, String> {
    crate::net::target::host_name(text)?;
    Ok(text.to_string())
}

/// `--tls-name NAME`: a DNS name or an IP address, as a certificate names them. Refused in words
/// of its own rather than clap's, which quote the value as given: a newline or a terminal
/// escape in it would reach the terminal; here it is shown escaped.
#[derive(Clone)]
struct TlsName;

impl clap::builder::TypedValueParser for TlsName {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<String, clap::Error> {
        let name = value.to_string_lossy();
        check_name(&name).map(|()| name.to_string()).map_err(|why| {
            let shown = neutralize(&format!("{name:?}")).into_owned();
            cmd.clone().error(
                clap::error::ErrorKind::ValueValidation,
                format!("--tls-name {shown} is no DNS name: {why}"),
            )
        })
    }
}

/// A DNS server's address: `IP`, `IP:PORT` or `[IPv6]:PORT` (port 53 by default).
fn parse_dns_server(text: &str) -> Result<std::net::SocketAddr, String> {
    if let Some(fix) = crate::net::target::unbracketed_port(text) {
        return Err(fix);
    }
    text.parse::<std::net::SocketAddr>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(|ip| (ip, 53).into()))
        .map_err(|_| format!("{text:?} is not IP, IP:PORT or [IPv6]:PORT"))
}

impl ServeArgs {
    /// What was asked of TLS (None: plain TCP).
    fn tls_setup(&self) -> Option<TlsSetup> {
        let source = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Source::Files {
                cert: cert.clone(),
                key: key.clone(),
            },
            _ if self.tls => Source::SelfSigned {
                names: self.tls_names.clone(),
                state: self.state_dir.clone(),
                renew: self.tls_renew,
            },
            _ => return None,
        };
        Some(TlsSetup {
            source,
            optional: self.tls_optional,
            watch_every: millis_from_env(TLS_RELOAD_ENV).unwrap_or(WATCH_EVERY),
        })
    }
}

impl From<ServeMode> for Mode {
    fn from(mode: ServeMode) -> Mode {
        match mode {
            ServeMode::Group => Mode::Group,
            ServeMode::Single => Mode::Single,
            ServeMode::Echo => Mode::Echo,
            ServeMode::Broker => Mode::Broker,
        }
    }
}

/// The server's configuration: the flags as plain values, the heartbeat and how long a dropped
/// name is reserved (shortened by tests through [`HEARTBEAT_INTERVAL_ENV`] and
/// [`NAME_RESERVE_ENV`]).
impl From<ServeArgs> for serve::Config {
    fn from(args: ServeArgs) -> serve::Config {
        let tls = args.tls_setup();
        let cluster = args.cluster.map(|url| serve::ClusterSetup {
            url: Secret::new(url),
            room: args.room.unwrap_or_default(),
            password: std::env::var(REDIS_PASSWORD_ENV)
                .ok()
                .filter(|p| !p.is_empty())
                .map(Secret::new),
            ttl: millis_from_env(PRESENCE_TTL_ENV).unwrap_or(PRESENCE_TTL),
            stream_len: std::env::var(STREAM_LEN_ENV)
                .ok()
                .and_then(|n| n.trim().parse().ok())
                .filter(|&n: &usize| n > 0)
                .unwrap_or(MIN_STREAM_LEN),
        });
        serve::Config {
            listen: std::net::SocketAddr::new(args.bind, args.port),
            mode: args.mode.into(),
            sync: args.sync,
            name: args.name,
            history: args.history,
            log: args.log,
            rate_limit: args.rate_limit,
            max_clients: args.max_clients.map(|n| n as usize),
            idle_timeout: args.idle_timeout.map(std::time::Duration::from_secs),
            heartbeat: millis_from_env(HEARTBEAT_INTERVAL_ENV).unwrap_or(HEARTBEAT_INTERVAL),
            tls,
            name_reserve: millis_from_env(NAME_RESERVE_ENV).unwrap_or(NAME_RESERVE),
            password: PasswordSource::from_face(args.password_file),
            password_delay: millis_from_env(PASSWORD_DELAY_ENV).unwrap_or(PASSWORD_FIRST_DELAY),
            ddns: args.ddns.map(|name| Ddns {
                name,
                stun: args.stun,
                authority: args.ddns_authority,
                interval: millis_from_env(DDNS_INTERVAL_ENV).unwrap_or(DDNS_INTERVAL),
            }),
            cluster,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    #[test]
    fn serve_flags_become_the_servers_config() {
        let argv = [
            "soquete",
            "serve",
            "--bind",
            "::1",
            "--port",
            "0",
            "--mode",
            "broker",
            "--max-clients",
            "5",
            "--idle-timeout",
            "600",
            "--rate-limit",
            "50/s",
        ];
        let Command::Serve(args) = Cli::try_parse_from(argv).expect("parses").command else {
            panic!("not serve");
        };
        let config = serve::Config::from(args);
        assert_eq!(config.listen, "[::1]:0".parse().unwrap());
        assert_eq!(config.mode, Mode::Broker);
        assert_eq!(config.name, "server");
        assert_eq!(config.max_clients, Some(5));
        assert_eq!(
            config.idle_timeout,
            Some(std::time::Duration::from_secs(600))
        );
        assert_eq!(
            config.rate_limit,
            Some(RateLimit::Bucket {
                per_second: 50.0,
                burst: 100
            })
        );
        assert!(Cli::try_parse_from(["soquete", "serve", "--rate-limit", "fast"]).is_err());
        assert_eq!(config.tls, None);
    }

    fn tls_of(argv: &[&str]) -> Option<TlsSetup> {
        let argv = ["soquete", "serve"].iter().chain(argv);
        let Command::Serve(args) = Cli::try_parse_from(argv).expect("parses").command else {
            panic!("not serve");
        };
        serve::Config::from(args).tls
    }

    #[test]
    fn tls_flags_say_where_the_certificate_comes_from() {
        let files = tls_of(&[
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem",
            "--tls-optional",
        ]);
        let files = files.expect("TLS");
        assert!(files.optional);
        assert_eq!(
            files.source,
            Source::Files {
                cert: "c.pem".into(),
                key: "k.pem".into()
            }
        );
        let made = tls_of(&[
            "--tls",
            "--tls-name",
            "a.example",
            "--tls-name",
            "b.example",
        ]);
        assert_eq!(
            made.expect("TLS").source,
            Source::SelfSigned {
                names: vec!["a.example".into(), "b.example".into()],
                state: None,
                renew: false,
            }
        );
        for wrong in [
            &["--tls-cert", "c.pem"][..],
            &["--tls-key", "k.pem"],
            &["--tls-optional"],
            &["--tls-name", "a.example"],
            &["--tls", "--tls-cert", "c.pem", "--tls-key", "k.pem"],
        ] {
            let argv = ["soquete", "serve"].iter().chain(wrong);
            assert!(Cli::try_parse_from(argv).is_err(), "{wrong:?}");
        }
    }

    #[test]
    fn ddns_flags_are_checked_before_anything_is_sent() {
        let parse = |extra: &[&str]| {
            let argv = [&["soquete", "serve", "--ddns", "sala.example"][..], extra].concat();
            Cli::try_parse_from(argv).map(|cli| match cli.command {
                Command::Serve(args) => serve::Config::from(args).ddns.expect("--ddns"),
                _ => panic!("not serve"),
            })
        };
        let ddns = parse(&[]).unwrap();
        assert_eq!(ddns.stun, "stun.l.google.com:19302");
        assert_eq!(ddns.authority, None);
        assert_eq!(ddns.interval, std::time::Duration::from_secs(300));
        let ddns = parse(&["--stun", "[::1]:3478", "--ddns-authority", "192.0.2.53"]).unwrap();
        assert_eq!(ddns.stun, "[::1]:3478");
        assert_eq!(ddns.authority, Some("192.0.2.53:53".parse().unwrap()));
        for bad in [
            "127.0.0.1:",
            "stun.example",
            "::1:3478",
            ":3478",
            "h:0",
            "h:70000",
        ] {
            assert!(parse(&["--stun", bad]).is_err(), "{bad}");
        }
        assert!(parse(&["--ddns-authority", "ns.example"]).is_err());
        assert!(
            Cli::try_parse_from(["soquete", "serve"]).is_ok_and(|cli| match cli.command {
                Command::Serve(args) => serve::Config::from(args).ddns.is_none(),
                _ => false,
            })
        );
    }
}
