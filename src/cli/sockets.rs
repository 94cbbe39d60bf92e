//! The flags of `soquete sockets` (clap derive types and the clap description of the feature's
//! `--class` and `--sort` values), and their conversion into the sockets feature's own `Query`,
//! which knows nothing of clap.

use clap::builder::PossibleValue;
use clap::{Args, ValueEnum};

use crate::sockets::filter::{PortRange, StateFilter};
use crate::sockets::model::PortClass;
use crate::sockets::{Query, SortKey};

/// `soquete sockets`: netstat's flags, plus filters, JSON and a watch mode.
#[derive(Args, Debug, Default, Clone)]
#[command(
    // netstat and ss accept a flag given twice (`-tuanp -p`); a repeated value flag (`--sort`)
    // takes its last value, and repeatable ones (`--port`) still add up.
    args_override_self = true,
    after_long_help = "Without -l or -a, listening sockets are left out, as netstat does. \
        Without -t or -u, both TCP and UDP are shown. A UDP socket connected to a peer is \
        ESTABLISHED (--state established takes it), one without a peer is UNCONN, as ss says \
        (--state unconnected); it counts as listening while it has no peer, and any other --state \
        leaves UDP out. Where the OS does not tell (macOS, Windows), UDP shows -.\n\n\
        Recv-Q and Send-Q are the kernel's figures (for a listener: the accept queue and its \
        limit); - where the OS does not give them (macOS, Windows).\n\n\
        Class is the IANA class of the service port: well-known 0-1023, registered 1024-49151, \
        dynamic 49152-65535. The service port is the local port of a listener; for a connection \
        it is the end with a known service name, else the end outside the OS's ephemeral range, \
        else the lower-numbered port.\n\n\
        Ephemeral ports: IANA's dynamic range is 49152-65535, but Linux hands client ports out of \
        net.ipv4.ip_local_port_range (32768-60999 by default). The JSON field `ephemeral` marks a \
        local port inside the OS's range, so a client port of 41000 is registered by class yet \
        ephemeral in fact.\n\n\
        Owners (-p, --pid, --process, --sort pid) are looked up only when asked for. When not \
        root, sockets of other users' processes show - and a note says so once on stderr (in \
        --watch on a terminal, under each frame's header); --pid or --process aimed at another \
        user's process says so too, and so does a --pid that is no process (exit 0).\n\n\
        -e adds User (uid) and Inode before PID/Program, as netstat -e. -o is accepted for \
        netstat/ss habit, with a note: timers are not shown.\n\n\
        -i/--info: RTT ms (round-trip time/deviation), Cwnd (segments), Retr (now/total), Sent \
        and Recv (bytes), Rate B/s (delivery rate, bytes per second; ss prints bits), Idle s \
        (since last send/receive); with --watch, In B/s and Out B/s since the previous frame and \
        `stuck` where data waits and nothing is acknowledged. K, M, G are powers of 1024. Linux \
        only (- elsewhere).\n\n\
        On a terminal each socket takes one line, as ss prints: when the table is too wide, \
        Service and Class are left out, then borders, then a long line overflows; --watch leaves \
        out whole the columns that still do not fit, from the right (with -i the counters first; \
        the `stuck` mark stays), and ends a frame taller \
        than the screen with `… N more (of M)`.\n\n\
        Exit status: 0 success (also when a pipe reader goes away), 1 an OS call failed, \
        64 bad usage.\n\n\
        Examples:\n  soquete sockets -tunp          connections with their programs\n  \
        soquete sockets -tulpn         who listens where\n  \
        soquete sockets -tulpen        the same with uid and inode\n  \
        soquete sockets -ta --port 65432 --json\n  \
        soquete sockets -tan --state established --watch\n  \
        soquete sockets -tni --port 65432 --watch   which connection is slow, and why"
)]
pub struct SocketsArgs {
    /// Show TCP sockets
    #[arg(short = 't', long = "tcp")]
    pub tcp: bool,

    /// Show UDP sockets
    #[arg(short = 'u', long = "udp")]
    pub udp: bool,

    /// Show only listening sockets (and unconnected UDP sockets)
    #[arg(short = 'l', long = "listening")]
    pub listening: bool,

    /// Show listening and non-listening sockets
    #[arg(short = 'a', long = "all")]
    pub all: bool,

    /// Numeric addresses and ports (accepted for netstat habit: soquete never resolves names)
    #[arg(short = 'n', long = "numeric")]
    pub numeric: bool,

    /// Show the PID and program that own each socket
    #[arg(short = 'p', long = "programs")]
    pub programs: bool,

    /// IPv4 only (with -6: both, as ss and netstat do)
    #[arg(short = '4', long = "ipv4")]
    pub ipv4: bool,

    /// IPv6 only (with -4: both)
    #[arg(short = '6', long = "ipv6")]
    pub ipv6: bool,

    /// Add the User (uid) and Inode columns, as netstat -e and ss -e
    #[arg(short = 'e', long = "extended", visible_alias = "extend")]
    pub extended: bool,

    /// Timers (netstat -o, ss -o): accepted, not shown (soquete does not read socket timers;
    /// a note on stderr says so)
    #[arg(short = 'o', long = "timers", visible_alias = "options")]
    pub timers: bool,

    /// No header line, as ss -H (--watch keeps its header)
    #[arg(short = 'H', long = "no-header")]
    pub no_header: bool,

    /// Accepted for ss habit: soquete never cuts an address
    #[arg(short = 'W', long = "wide")]
    pub wide: bool,

    /// Only sockets in this state (established, listen, time-wait, close-wait, syn-sent,
    /// syn-recv, fin-wait-1, fin-wait-2, last-ack, closing, close; unconnected for UDP);
    /// repeatable
    #[arg(long = "state", value_name = "STATE")]
    pub states: Vec<StateFilter>,

    /// Only sockets whose local or remote port is N, or within N-M; repeatable
    #[arg(long = "port", value_name = "N|N-M")]
    pub ports: Vec<PortRange>,

    /// Only sockets owned by this PID; repeatable (implies looking up owners)
    #[arg(long = "pid", value_name = "PID")]
    pub pids: Vec<u32>,

    /// Only sockets whose program name contains NAME (case-insensitive; implies looking up owners)
    #[arg(long = "process", value_name = "NAME")]
    pub process: Option<String>,

    /// Only sockets whose port is of this IANA class
    #[arg(long = "class", value_name = "CLASS")]
    pub classes: Vec<PortClass>,

    /// TCP internals per socket, as ss -i: round-trip time, congestion window, retransmits,
    /// bytes and delivery rate (JSON: tcp_info); with --watch, each connection's throughput and
    /// `stuck` where data waits and nothing is acknowledged
    #[arg(short = 'i', long = "info")]
    pub info: bool,

    /// Print one JSON array instead of a table
    #[arg(long = "json", conflicts_with = "watch")]
    pub json: bool,

    /// Sort rows by this key
    #[arg(long = "sort", value_enum, value_name = "KEY")]
    pub sort: Option<SortKey>,

    /// Redraw every SECS seconds (default 1), marking sockets that appeared (+) and closed (-)
    #[arg(
        long = "watch",
        value_name = "SECS",
        num_args = 0..=1,
        default_missing_value = "1",
        value_parser = super::parse_interval
    )]
    pub watch: Option<f64>,
}

/// What `--class` accepts, with each value's help: the sockets feature's own type, described for
/// clap here so that the feature knows nothing of clap.
impl ValueEnum for PortClass {
    fn value_variants<'a>() -> &'a [Self] {
        &[
            PortClass::WellKnown,
            PortClass::Registered,
            PortClass::Dynamic,
        ]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        let help = match self {
            PortClass::WellKnown => "0-1023, assigned by IANA to well-known services",
            PortClass::Registered => "1024-49151, registered with IANA by applications",
            PortClass::Dynamic => "49152-65535, free for private and temporary use",
        };
        Some(PossibleValue::new(self.name()).help(help))
    }
}

/// What `--sort` accepts, with each value's help (as for [`PortClass`] above).
impl ValueEnum for SortKey {
    fn value_variants<'a>() -> &'a [Self] {
        &[
            SortKey::Port,
            SortKey::Pid,
            SortKey::State,
            SortKey::Proto,
            SortKey::RecvQ,
            SortKey::SendQ,
        ]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        let (name, help) = match self {
            SortKey::Port => ("port", "Local port, then remote port"),
            SortKey::Pid => ("pid", "First owning PID"),
            SortKey::State => ("state", "TCP state"),
            SortKey::Proto => ("proto", "Protocol (tcp before udp), then IPv4 before IPv6"),
            SortKey::RecvQ => ("recv-q", "Receive queue, largest first"),
            SortKey::SendQ => ("send-q", "Send queue, largest first"),
        };
        Some(PossibleValue::new(name).help(help))
    }
}

/// The flags as the sockets feature takes them: plain data, no clap.
impl From<&SocketsArgs> for Query {
    fn from(args: &SocketsArgs) -> Query {
        Query {
            tcp: args.tcp,
            udp: args.udp,
            listening: args.listening,
            all: args.all,
            ipv4_only: args.ipv4,
            ipv6_only: args.ipv6,
            programs: args.programs,
            states: args.states.iter().map(|state| state.0).collect(),
            ports: args.ports.clone(),
            classes: args.classes.clone(),
            pids: args.pids.clone(),
            process: args.process.clone(),
            sort: args.sort,
            json: args.json,
            watch: args.watch.map(std::time::Duration::from_secs_f64),
            info: args.info,
            extended: args.extended,
            timers: args.timers,
            no_header: args.no_header,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn sockets(args: &[&str]) -> SocketsArgs {
        let mut argv = vec!["soquete", "sockets"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv).expect("parses").command {
            Command::Sockets(args) => args,
            other => panic!("not sockets: {other:?}"),
        }
    }

    #[test]
    fn combined_netstat_flags_parse() {
        let a = sockets(&["-tunp"]);
        assert!(a.tcp && a.udp && a.numeric && a.programs && !a.listening);
        let a = sockets(&["-tulpn"]);
        assert!(a.tcp && a.udp && a.listening && a.programs && a.numeric);
        let a = sockets(&["-tuna"]);
        assert!(a.tcp && a.udp && a.numeric && a.all);
        let a = sockets(&["-ltn"]);
        assert!(a.tcp && !a.udp && a.listening && a.numeric);
        let a = sockets(&["-ta6"]);
        assert!(a.tcp && a.all && a.ipv6);
    }

    #[test]
    fn repeated_flags_are_accepted_as_netstat_and_ss_do() {
        let a = sockets(&["-tuanp", "-p", "-t"]);
        assert!(a.tcp && a.udp && a.all && a.numeric && a.programs);
        assert!(sockets(&["-tan", "-a"]).all);
        let a = sockets(&[
            "--port", "1", "--port", "2", "--sort", "pid", "--sort", "port",
        ]);
        assert_eq!(a.ports.len(), 2, "repeatable values still add up");
        assert_eq!(
            a.sort,
            Some(SortKey::Port),
            "a repeated value flag takes the last"
        );
    }

    #[test]
    fn watch_takes_an_optional_interval() {
        assert_eq!(sockets(&["--watch"]).watch, Some(1.0));
        assert_eq!(sockets(&["--watch", "2.5"]).watch, Some(2.5));
        assert_eq!(sockets(&["-t"]).watch, None);
        assert!(Cli::try_parse_from(["soquete", "sockets", "--watch", "0"]).is_err());
        assert!(Cli::try_parse_from(["soquete", "sockets", "--watch", "x"]).is_err());
    }

    #[test]
    fn sockets_flags_become_the_features_query() {
        let query = Query::from(&sockets(&[
            "-tlp6",
            "--state",
            "time-wait",
            "--port",
            "80-90",
            "--class",
            "well-known",
            "--pid",
            "7",
            "--process",
            "Nginx",
            "--sort",
            "recv-q",
            "--watch",
            "0.5",
        ]));
        assert_eq!(
            query,
            Query {
                tcp: true,
                listening: true,
                programs: true,
                ipv6_only: true,
                states: vec![crate::net::socket::TcpState::TimeWait],
                ports: vec![PortRange {
                    first: 80,
                    last: 90
                }],
                classes: vec![PortClass::WellKnown],
                pids: vec![7],
                process: Some("Nginx".into()),
                sort: Some(SortKey::RecvQ),
                watch: Some(std::time::Duration::from_millis(500)),
                ..Query::default()
            }
        );
        assert!(Query::from(&sockets(&["--json"])).json);
    }

    #[test]
    fn ss_and_netstat_habits_parse() {
        let a = sockets(&["-tulpen"]);
        assert!(a.tcp && a.udp && a.listening && a.programs && a.extended && a.numeric);
        let a = sockets(&["-tano", "-H", "-W"]);
        assert!(a.timers && a.no_header && a.all);
        let a = sockets(&["--no-header", "--wide", "--extended", "--timers"]);
        assert!(a.no_header && a.extended && a.timers);
        let query = Query::from(&sockets(&["-e", "-H", "-o"]));
        assert!(query.extended && query.no_header && query.timers);
    }

    #[test]
    fn both_families_together_are_both_as_in_ss() {
        let query = Query::from(&sockets(&["-4", "-6"]));
        let selection = query.request().selection;
        assert!(selection.ipv4 && selection.ipv6);
    }
}
