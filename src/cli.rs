//! The command line: clap derive types only. Nothing here runs; `lib.rs` turns these into work.

use clap::{Args, Parser, Subcommand, ValueEnum};

mod sockets;

pub use sockets::SocketsArgs;

/// See, use and debug TCP/UDP sockets.
#[derive(Parser, Debug)]
#[command(
    name = "soquete",
    version,
    about = "See, use and debug TCP/UDP sockets",
    long_about = "See, use and debug TCP/UDP sockets.\n\n\
        soquete lists sockets like netstat -tunp (and explains them), runs the chat of the \
        socket labs, and probes whether a host and port are reachable.",
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// List TCP/UDP endpoints with PID/program, state, queues, port class and service (like netstat -tunp)
    Sockets(SocketsArgs),
    /// Run the chat server: group (thread per client), single-client or echo
    Serve(ServeArgs),
    /// Chat with a soquete server, or with any plain TCP server (like nc)
    Chat(ChatArgs),
    /// Check that a host and port are reachable, on every address it resolves to
    Probe(ProbeArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish) on stdout
    Completions {
        /// The shell to write completions for
        shell: clap_complete::Shell,
    },
}

/// `soquete probe`: reachability of (dynamic-DNS) hosts, address by address.
#[derive(Args, Debug, Clone)]
#[command(
    after_long_help = "Verdicts, per address: open (the handshake completed), closed (a reset \
    came back: nothing listens there, or only on 127.0.0.1), filtered (no answer before the \
    timeout: a firewall or security group drops it, or DNS points at an old IP), unreachable (an \
    ICMP error: no route, host down, administratively prohibited), error (a local failure).\n\n\
    Exit status: 0 every target reachable (and, with --chat, a soquete server on each); 1 some \
    targets reachable, not all; 2 none reachable; 3 a name did not resolve; 4 reachable, but \
    the --chat check failed; 2 also for bad arguments.\n\n\
    Examples:\n  soquete probe meuchat.ddns.net\n  \
    soquete probe meuchat.ddns.net:65432 --chat --expect-ip 203.0.113.7\n  \
    soquete probe localhost:22 --count 5 --interval 0.5\n  \
    soquete probe example.org:443 --server 8.8.8.8 --json"
)]
pub struct ProbeArgs {
    #[arg(
        value_name = "HOST[:PORT]",
        required = true,
        help = "Targets: HOST, HOST:PORT, IPv4, [IPv6]:PORT (port 65432 when not given)"
    )]
    pub targets: Vec<String>,

    /// Seconds to wait for each connection before calling it filtered
    #[arg(short = 'w', long = "timeout", value_name = "SECS", default_value = "3", value_parser = parse_timeout)]
    pub timeout: f64,

    /// IPv4 addresses only
    #[arg(short = '4', long = "ipv4", conflicts_with = "ipv6")]
    pub ipv4: bool,

    /// IPv6 addresses only
    #[arg(short = '6', long = "ipv6")]
    pub ipv6: bool,

    /// Rounds of attempts, ping-style (0: until Ctrl-C); each round resolves the name again
    #[arg(short = 'c', long = "count", value_name = "N")]
    pub count: Option<u32>,

    /// Seconds between rounds
    #[arg(short = 'i', long = "interval", value_name = "SECS", default_value = "1", value_parser = parse_interval)]
    pub interval: f64,

    /// After connecting, speak the soquete protocol and report what server is there
    #[arg(long = "chat")]
    pub chat: bool,

    /// Also ask this DNS server directly (IP or IP:PORT), show its answers and TTLs, flag disagreement
    #[arg(long = "server", value_name = "IP")]
    pub dns_server: Option<String>,

    /// The address the host really has (repeatable); DNS answers are compared with it
    #[arg(long = "expect-ip", value_name = "IP")]
    pub expect_ip: Vec<std::net::IpAddr>,

    /// One JSON document (NDJSON, one line per attempt, with --count)
    #[arg(long = "json")]
    pub json: bool,
}

fn parse_timeout(text: &str) -> Result<f64, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("'{text}' is not a number of seconds"))?;
    if !(0.001..=300.0).contains(&secs) {
        return Err(format!("{secs} s is out of range (0.001 to 300 seconds)"));
    }
    Ok(secs)
}

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
#[command(
    after_long_help = "Resilience (docs/PROTOCOL.md, section 8): the room keeps its last --history \
        messages, and a soquete chat client that reconnects gets what it missed, once, in order. \
        With --log the messages survive a restart, even kill -9, and numbering goes on. A client \
        that floods is read more slowly (--rate-limit), never dropped; a client that stops \
        reading for 2 s while something waits for it is disconnected (it may resume), and one \
        that falls 4 MiB behind holds the room up for at most 2 s; structured clients get a \
        ping after 5 s of silence. Ctrl-C or SIGTERM: bye to every client, log flushed, exit 0.\n\n\
        Examples:\n  \
        soquete serve                                 group chat on 127.0.0.1:65432\n  \
        soquete serve --bind 0.0.0.0 --log sala.log   serve the world, keep the conversation\n  \
        soquete serve --max-clients 200 --idle-timeout 600 --rate-limit 50/s,burst=100\n  \
        soquete serve --mode single --sync            lab 07-01: strict question and answer\n  \
        soquete serve --mode broker --port 9000       relay lines among nc clients, as ncat --broker"
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

    /// Per-client flood control: `off`, or RATE/s with an optional burst (`50/s,burst=100`);
    /// default 10/s,burst=20, and off in broker mode (a relay carries data, not typing)
    #[arg(long = "rate-limit", value_name = "LIMIT", value_parser = parse_rate_limit)]
    pub rate_limit: Option<RateLimit>,

    /// Most connections at once; the next one is told "server full" and closed
    #[arg(long = "max-clients", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_clients: Option<u32>,

    /// Close a client that sends nothing for SECS seconds (off by default)
    #[arg(long = "idle-timeout", value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub idle_timeout: Option<u64>,
}

/// `--rate-limit` unless given: a person typing never reaches it.
pub const DEFAULT_RATE_LIMIT: RateLimit = RateLimit::Bucket {
    per_second: 10.0,
    burst: 20,
};

/// `--rate-limit`: how fast one client's lines are read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RateLimit {
    /// Read as fast as the client sends (benchmarks).
    Off,
    /// A token bucket: `burst` lines at once, then `per_second` lines a second.
    Bucket { per_second: f64, burst: u32 },
}

/// Reads `off`, `RATE/s` or `RATE/s,burst=N` (the burst defaults to twice the rate, at least 1).
fn parse_rate_limit(text: &str) -> Result<RateLimit, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("off") {
        return Ok(RateLimit::Off);
    }
    let usage = || format!("'{text}' is not a rate limit: write off, 10/s or 50/s,burst=100");
    let (rate, burst) = match text.split_once(',') {
        Some((rate, burst)) => (rate.trim(), Some(burst.trim())),
        None => (text, None),
    };
    let per_second: f64 = rate
        .strip_suffix("/s")
        .and_then(|n| n.trim().parse().ok())
        .filter(|n: &f64| n.is_finite() && *n > 0.0 && *n <= 1e9)
        .ok_or_else(usage)?;
    let burst = match burst {
        Some(burst) => burst
            .strip_prefix("burst=")
            .and_then(|n| n.trim().parse::<u32>().ok())
            .filter(|&n| n >= 1)
            .ok_or_else(usage)?,
        None => (per_second * 2.0).ceil().clamp(1.0, f64::from(u32::MAX)) as u32,
    };
    Ok(RateLimit::Bucket { per_second, burst })
}

/// `soquete chat`: the client.
#[derive(Args, Debug, Clone)]
#[command(
    after_long_help = "A host name (a dynamic-DNS name too) is resolved and each address tried in \
        turn, 5 seconds each. A bare IPv6 address (::1) takes the default port; give a port with \
        brackets: [::1]:65432.\n\n\
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
        asking for the messages it missed; none is shown twice. Lines typed meanwhile are sent \
        after the re-join, in order, and messages the server never confirmed are sent again. \
        --no-reconnect exits 1 instead.\n\n\
        Exit status: 0 when the session ends normally (you left, the server said bye, a raw \
        server closed), 1 when the connection fails, or is lost and not reconnected, 2 bad \
        usage.\n\n\
        Examples:\n  soquete chat                          the course's server, 127.0.0.1:65432\n  \
        soquete chat --sync lab.ddns.net      question/answer with a server in the cloud\n  \
        echo 'Hello Server' | soquete chat --raw :65432\n  \
        soquete chat --json :65432 | jq .     every event as JSON"
)]
pub struct ChatArgs {
    /// The server to talk to (help text in the attribute: rustdoc would read its brackets as links).
    #[arg(
        value_name = "[HOST][:PORT]",
        help = "Server to talk to: HOST, HOST:PORT, :PORT, IPv4, [IPv6]:PORT or a bare IPv6 address \
            (default 127.0.0.1:65432)"
    )]
    pub target: Option<String>,

    /// Name to chat under (default: your login name)
    #[arg(short = 'n', long = "name", value_name = "NAME")]
    pub name: Option<String>,

    /// Plain text lines to any TCP server (nc -l, ncat -l, a Python server), no soquete protocol
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

    /// Give up after N failed reconnection attempts in a row (0: never; default: never on a
    /// terminal, 10 when input is a pipe or file)
    #[arg(long = "reconnect-attempts", value_name = "N")]
    pub reconnect_attempts: Option<u32>,
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

/// Reads an interval in seconds for `--watch` (sockets) and `--interval` (probe).
fn parse_interval(text: &str) -> Result<f64, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("'{text}' is not a number of seconds"))?;
    if !(0.05..=86_400.0).contains(&secs) {
        return Err(format!("{secs} s is out of range (0.05 to 86400 seconds)"));
    }
    Ok(secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn rate_limits_parse() {
        assert_eq!(parse_rate_limit("off"), Ok(RateLimit::Off));
        assert_eq!(
            parse_rate_limit("50/s,burst=100"),
            Ok(RateLimit::Bucket {
                per_second: 50.0,
                burst: 100
            })
        );
        assert_eq!(
            parse_rate_limit("10/s"),
            Ok(RateLimit::Bucket {
                per_second: 10.0,
                burst: 20
            })
        );
        for bad in [
            "",
            "10",
            "0/s",
            "-1/s",
            "10/s,burst=0",
            "10/s,size=3",
            "x/s",
        ] {
            assert!(parse_rate_limit(bad).is_err(), "{bad:?}");
        }
    }
}
