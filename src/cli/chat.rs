//! `soquete chat`'s flags and their conversion into the client's `Config`.

use clap::Args;

use crate::chat::protocol::PasswordSource;

/// `soquete chat`: the client.
#[derive(Args, Debug, Clone)]
#[command(
    after_long_help = "A host name (a dynamic-DNS name too) is resolved anew at each connection, \
        and each address tried in turn, 5 seconds each. A bare IPv6 address (::1) takes the default port; give a port with \
        brackets: [::1]:80 (::1:80 is refused: the address ::1:80, or port 80 of ::1?).\n\n\
        Output: what the server sends goes to stdout; connection state (connected, with both \
        IP:PORT ends; half-closed; closed; lost) and the client's own notes go to stderr. With a \
        terminal, a line editor keeps the line being typed intact while messages print above it.\n\n\
        End of input (a pipe or file, or Ctrl-D): everything typed is sent, then the client \
        leaves as with /quit and exits once the server confirms. With --raw it half-closes \
        instead (FIN) and prints what arrives until the server closes. `exit` or /quit ends the \
        session at any time.\n\n\
        Lost server (not with --raw): end of stream or a reset without the server's bye, a bye \
        saying the server is shutting down, or nothing heard for 15 s (the server pings every 5 \
        s when idle; TCP keepalive probes after 5 s idle as well). The client then says so on \
        stderr (connection lost — reconnecting in 2.0 s (attempt 3)), tries again with pauses \
        from 0.5 s doubling up to --reconnect-max, with jitter, and re-joins under the same name, \
        asking for the messages it missed; none is shown twice.\n\n\
        Several servers of one room (serve --cluster): give each (soquete chat A:PORT B:PORT), or \
        a name with several addresses (IPv6 and IPv4, in the resolver's order). The client starts \
        on the first that answers; each that refuses or does not answer in 5 s is skipped, with a \
        line saying so. When its server goes away it tries the next one at once, round the list \
        (the one lost last), then all again after each pause as above, and re-joins there as on \
        any reconnection, with its session's token, last message number and room epoch (connected \
        to another server: … (after A went away)). A server of another room takes it as a \
        newcomer, and says so. List only servers of one room: the one moved to receives the \
        session's resume token (and the room's password if it asks), and every address of a name \
        counts as listed. With --tls, each is verified for its own HOST:PORT first (known_hosts, \
        --tls-fingerprint: servers sharing one pin share one certificate); one whose certificate \
        is refused is skipped with a loud line and never talked to, and the session ends only \
        when none is acceptable (a self-signed one is asked about only at start, never \
        mid-session: connect to each once before). A server that sends no welcome within 2 s \
        (nc -l) is skipped as one that refused. A server that welcomes and drops the client \
        within 10 s counts as a failed attempt: the pauses go on growing. \
        With --raw: the first that answers, and only it, as nc. Lines typed meanwhile are sent \
        after the re-join, in order, and messages the server never confirmed are sent again. \
        --no-reconnect exits 1 instead.\n\n\
        TLS (--tls): every connection, reconnections too, is verified; never a fallback to \
        plain text. A certificate from a CA must chain to the system's roots (or --tls-ca's) and \
        name the host typed. A self-signed one is trusted on first use, as ssh does: its \
        SHA-256 fingerprint is shown and, on a terminal, accepted with y (otherwise give \
        --tls-fingerprint SHA256:…, as `serve --tls` prints it); it is then remembered in \
        known_hosts (HOST:PORT and fingerprint, a line each) in the state directory \
        (~/.local/share/soquete on Linux, or --state-dir), and a later certificate with another \
        fingerprint is refused with both prints: remove its line once the server's operator \
        confirms the change.\n\n\
        Exit status: 0 when the session ends normally (you left, the server said bye, a raw \
        server closed), 1 when the connection fails, or is lost and not reconnected, or the \
        server's certificate (every server's, with several) is refused (expired, another name, \
        unknown, changed), 64 bad \
        usage.\n\n\
        Examples:\n  soquete chat                          the course's server, 127.0.0.1:65432\n  \
        soquete chat --sync lab.ddns.net      question/answer with a server in the cloud\n  \
        echo 'Hello Server' | soquete chat --raw :65432\n  \
        soquete chat --json :65432 | jq .     every event as JSON\n  \
        soquete chat --tls lab.ddns.net:443   TLS, the server verified\n  \
        soquete chat a.lab.net b.lab.net      two servers of one room: the next when one goes"
)]
pub struct ChatArgs {
    /// The servers to talk to (help text in the attribute: rustdoc would read its brackets as
    /// links).
    #[arg(
        value_name = "[HOST][:PORT]",
        help = "Server to talk to: HOST, HOST:PORT, :PORT, IPv4, [IPv6]:PORT or a bare IPv6 address \
            (default 127.0.0.1:65432); several: servers of one room, the next tried when one goes \
            away",
        long_help = "Server to talk to: HOST, HOST:PORT, :PORT, IPv4, [IPv6]:PORT or a bare IPv6 \
            address (default 127.0.0.1:65432). Several, or a name with several addresses: servers \
            of one room, the next tried at once when one goes away (see below); with --raw, the \
            first that answers."
    )]
    pub targets: Vec<String>,

    /// Name to chat under (default: your login name)
    #[arg(short = 'n', long = "name", value_name = "NAME")]
    pub name: Option<String>,

    /// Plain text lines to any TCP server (nc -l, ncat -l, a Python server), no soquete protocol
    ///
    /// What the server sends is shown with its terminal escapes removed on a terminal, and
    /// written byte for byte to a pipe or file, as nc does.
    #[arg(short = 'r', long = "raw")]
    pub raw: bool,

    /// Strict question/answer turn-taking: after sending, wait for the answer before sending again
    #[arg(long = "sync")]
    pub sync: bool,

    /// Print every received event as one JSON line on stdout (for scripts and tests)
    #[arg(long = "json")]
    pub json: bool,

    /// When the server is lost, exit 1 instead of reconnecting
    #[arg(long = "no-reconnect", conflicts_with_all = ["reconnect_max", "reconnect_attempts"])]
    pub no_reconnect: bool,

    /// Longest pause between reconnection attempts (the first is 0.5 s, then doubling, with jitter)
    #[arg(long = "reconnect-max", value_name = "SECS", default_value = "30", value_parser = parse_reconnect_max)]
    pub reconnect_max: f64,

    /// Talk TLS and verify the server: a CA-signed certificate against the system's roots, a
    /// self-signed one by trust on first use (as ssh does)
    ///
    /// Never falls back to plain text. A self-signed certificate seen for the first time is
    /// shown (its SHA-256 fingerprint) and, on a terminal, accepted with y; without a terminal
    /// give --tls-fingerprint. It is then remembered in known_hosts (see --state-dir), and a
    /// later connection (reconnections too) with another certificate is refused, with both
    /// fingerprints. An expired certificate, one for another name, one --tls-ca did not
    /// sign, or one sent without its intermediate (the server should serve fullchain.pem) is
    /// refused: exit 1. A soquete server on a TLS port reached without --tls: exit 1 at once.
    #[arg(long = "tls")]
    pub tls: bool,

    /// With --tls: trust the CA certificates of this PEM file (a private CA) instead of the
    /// system's. A file that cannot be read or holds no certificate: exit 64
    #[arg(long = "tls-ca", value_name = "FILE", requires = "tls")]
    pub tls_ca: Option<std::path::PathBuf>,

    /// With --tls: the self-signed certificate to accept on first use, as `serve --tls` prints it
    /// (SHA256:AB:CD:…)
    ///
    /// A pin: a certificate with another fingerprint is refused, with both, even one a CA
    /// vouches for (leave the flag out to trust the CA's word).
    #[arg(long = "tls-fingerprint", value_name = "SHA256:…", requires = "tls")]
    pub tls_fingerprint: Option<crate::net::tls::Fingerprint>,

    /// Where soquete keeps its state: the client's known_hosts (default: the data directory,
    /// ~/.local/share/soquete on Linux)
    #[arg(long = "state-dir", value_name = "DIR")]
    pub state_dir: Option<std::path::PathBuf>,

    /// Give up after N failed reconnection attempts in a row (0: never; default: never on a
    /// terminal, 10 when input is a pipe or file)
    #[arg(long = "reconnect-attempts", value_name = "N")]
    pub reconnect_attempts: Option<u32>,

    /// The room's password, from FILE's first line (or SOQUETE_PASSWORD in the environment;
    /// never a value on the command line, which ps shows)
    ///
    /// Sent only to a server whose first line, `* password:`, asks for it (on every connection,
    /// reconnections too), never to one that does not ask; without --tls, with a warning that
    /// it crosses the network readable. Never printed. Without either, on a
    /// terminal, a server that asks for one gets a prompt without echo (once per run); elsewhere
    /// the client exits 1 with the server's reason. With --raw, type the password as your first
    /// line, after the server's `* password:`.
    #[arg(long = "password-file", value_name = "FILE", conflicts_with = "raw")]
    pub password_file: Option<std::path::PathBuf>,
}

fn parse_reconnect_max(text: &str) -> Result<f64, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("'{text}' is not a number of seconds"))?;
    if !(0.01..=3600.0).contains(&secs) {
        return Err(format!("{secs} s is out of range (0.01 to 3600 seconds)"));
    }
    Ok(secs)
}

/// The chat client's own configuration, from its command line.
impl From<ChatArgs> for crate::chat::client::Config {
    fn from(args: ChatArgs) -> Self {
        use crate::chat::client::GiveUp;
        Self {
            targets: args.targets,
            name: args.name,
            raw: args.raw,
            sync: args.sync,
            json: args.json,
            reconnect: !args.no_reconnect,
            reconnect_max: std::time::Duration::from_secs_f64(args.reconnect_max),
            give_up: match args.reconnect_attempts {
                None => GiveUp::ByInput,
                Some(0) => GiveUp::Never,
                Some(limit) => GiveUp::After(limit),
            },
            tls: args.tls.then_some(crate::chat::client::TlsOptions {
                ca_file: args.tls_ca,
                fingerprint: args.tls_fingerprint,
                state_dir: args.state_dir,
            }),
            // A raw client types the password itself: nothing is sent for it.
            password: if args.raw {
                PasswordSource::None
            } else {
                PasswordSource::from_face(args.password_file)
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::cli::{Cli, Command};
    use clap::Parser;

    #[test]
    fn chat_arguments_become_the_clients_config() {
        use crate::chat::client::{Config, GiveUp};
        let config = |args: &[&str]| -> Config {
            let mut argv = vec!["soquete", "chat"];
            argv.extend_from_slice(args);
            match Cli::try_parse_from(argv).expect("parses").command {
                Command::Chat(args) => args.into(),
                other => panic!("not chat: {other:?}"),
            }
        };
        let default = config(&[]);
        assert!(default.targets.is_empty());
        assert!(default.reconnect && !default.raw && !default.sync && !default.json);
        assert_eq!(default.reconnect_max, std::time::Duration::from_secs(30));
        assert_eq!(default.give_up, GiveUp::ByInput);
        let given = config(&["-n", "ana", "--reconnect-max", "2.5", ":9000"]);
        assert_eq!(given.targets, [":9000"]);
        assert_eq!(
            config(&["-n", "ana", "a.test:5000", "[::1]:5001", ":5002"]).targets,
            ["a.test:5000", "[::1]:5001", ":5002"]
        );
        assert_eq!(given.name.as_deref(), Some("ana"));
        assert_eq!(given.reconnect_max, std::time::Duration::from_millis(2500));
        assert_eq!(
            config(&["--reconnect-attempts", "0"]).give_up,
            GiveUp::Never
        );
        assert_eq!(
            config(&["--reconnect-attempts", "4"]).give_up,
            GiveUp::After(4)
        );
        assert!(!config(&["--no-reconnect"]).reconnect);
    }
}
