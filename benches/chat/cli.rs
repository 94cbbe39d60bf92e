//! The generator's command line (clap derive): one subcommand per scenario, the flags
//! `benches/chat.sh` passes, and the checks clap cannot express.

use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand};

use crate::bench::Kind;
use crate::line::{self, HEADER};

/// Load generator for `soquete serve` and `ncat --broker`; prints one JSON object per run.
#[derive(Parser, Debug)]
#[command(name = "chat")]
pub struct Cli {
    #[command(subcommand)]
    pub scenario: Scenario,
}

/// The scenarios, each with the flags it reads.
#[derive(Subcommand, Debug)]
pub enum Scenario {
    /// Every client sends `--lines` lines as fast as it can, everyone reads.
    Fanout(FanoutArgs),
    /// Talkers at a steady total rate, optionally with stalled readers and latency samples.
    Paced(PacedArgs),
    /// Idle connections opened at a bounded rate and held; the server's memory and threads.
    Idle(IdleArgs),
    /// A burst of connections against a full server (`--max-clients`); its memory and threads.
    Burst(BurstArgs),
    /// Single mode's queued clients sending long lines as fast as allowed; its memory, threads.
    Queue(QueueArgs),
}

/// The server under test.
#[derive(Args, Debug)]
pub struct ServerArgs {
    /// Where the server listens.
    #[arg(long, default_value = "127.0.0.1:65432")]
    pub addr: SocketAddr,
    /// Another server of the same room (repeatable): the clients are dealt out in turn to
    /// `--addr` and these (a cluster of soquete servers).
    #[arg(long)]
    pub also: Vec<SocketAddr>,
    /// What the server is, hence what its lines look like.
    #[arg(long, value_enum, default_value = "soquete")]
    pub kind: Kind,
    /// The server's process: its CPU, memory and threads are read from /proc.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Speak TLS to the server (any certificate is accepted; fan-out, paced and idle).
    #[arg(long)]
    pub tls: bool,
}

/// Scenario 1: fan-out.
#[derive(Args, Debug)]
pub struct FanoutArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Clients, every one talking and reading.
    #[arg(long, default_value_t = 50)]
    pub clients: usize,
    /// Lines each client sends.
    #[arg(long, default_value_t = 1000)]
    pub lines: u32,
    /// Bytes of a test line, newline included.
    #[arg(long, default_value_t = line::DEFAULT_SIZE)]
    pub size: usize,
    /// Threads reading the clients (each its own epoll loop over a share of them).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Every client talks from its first moment: no hello exchange before the clock starts
    /// (soquete: once every client has its greeting; ncat and broker mode: once every client
    /// is connected, and 0.5 s more).
    #[arg(long)]
    pub at_once: bool,
}

/// Scenarios 2 and 3: paced talkers, stalled readers, latency.
#[derive(Args, Debug)]
pub struct PacedArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Talking (and reading) clients.
    #[arg(long, default_value_t = 50)]
    pub clients: usize,
    /// Lines per second, all talkers together, evenly spaced.
    #[arg(long, default_value_t = 10_000.0)]
    pub rate: f64,
    /// Seconds of the timed window.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds at the start of the window whose lines are not sampled for latency.
    #[arg(long, default_value_t = 0.0)]
    pub warmup: f64,
    /// Clients that say hello and then never read.
    #[arg(long, default_value_t = 0)]
    pub stalled: usize,
    /// SO_RCVBUF of the stalled clients in bytes (0: the system's).
    #[arg(long, default_value_t = 0)]
    pub stall_rcvbuf: usize,
    /// Samples the time from send to delivery of every line.
    #[arg(long)]
    pub latency: bool,
    /// Bytes of a test line, newline included.
    #[arg(long, default_value_t = line::DEFAULT_SIZE)]
    pub size: usize,
    /// Clients that read everything and never write.
    #[arg(long, default_value_t = 0)]
    pub listeners: usize,
    /// Samples the server's memory, threads and descriptors all along (with --server-pid).
    #[arg(long)]
    pub resources: bool,
}

/// Scenario 4: idle clients.
#[derive(Args, Debug)]
pub struct IdleArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Idle connections to open.
    #[arg(long, default_value_t = 50)]
    pub clients: usize,
    /// Connections opened per second.
    #[arg(long, default_value_t = 1000.0)]
    pub connect_rate: f64,
    /// Seconds the connections are held, idle, before the server is measured.
    #[arg(long, default_value_t = 5.0)]
    pub hold: f64,
}

/// Limits (a): a burst of connections against a full server.
#[derive(Args, Debug)]
pub struct BurstArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Clients that connect first, take the server's places, read and stay.
    #[arg(long, default_value_t = 4)]
    pub holders: usize,
    /// Connections opened at once after them, each kept open until the end.
    #[arg(long, default_value_t = 5000)]
    pub clients: usize,
    /// Seconds the burst's connections are held after the last one was opened.
    #[arg(long, default_value_t = 3.0)]
    pub hold: f64,
}

/// Limits (b): single mode's queue.
#[derive(Args, Debug)]
pub struct QueueArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Queued clients, each sending lines as fast as its socket takes them (after a first
    /// client, served, that only reads).
    #[arg(long, default_value_t = 50)]
    pub clients: usize,
    /// Bytes of a line, newline included.
    #[arg(long, default_value_t = 8000)]
    pub size: usize,
    /// Seconds the queued clients send.
    #[arg(long, default_value_t = 60.0)]
    pub duration: f64,
}

/// Most clients that send test lines: a line names its sender in four digits.
const MAX_TALKING: usize = 9999;

impl Cli {
    /// Parses the command line; `cargo bench` adds `--bench`, which means nothing here.
    pub fn from_args() -> Cli {
        Cli::parse_from(std::env::args().filter(|a| a != "--bench"))
    }

    /// What clap cannot check: the line size fits a header, the talkers fit four digits.
    pub fn validate(&self) -> Result<(), String> {
        let (talking, all, size, threads) = match &self.scenario {
            Scenario::Fanout(a) => (a.clients, a.clients, a.size, a.threads),
            Scenario::Paced(a) => {
                let talking = a.clients + a.stalled;
                (talking, talking + a.listeners, a.size, 1)
            }
            Scenario::Queue(a) => (a.clients + 1, a.clients + 1, a.size, 1),
            Scenario::Idle(_) | Scenario::Burst(_) => return Ok(()),
        };
        if threads == 0 {
            return Err("--threads must be at least 1".into());
        }
        if size < HEADER + 2 {
            return Err(format!("--size must be at least {}", HEADER + 2));
        }
        if talking > MAX_TALKING {
            return Err(format!("at most {MAX_TALKING} talking clients"));
        }
        // Every client has a row and a column in the table of expected sequence numbers.
        if all > MAX_TALKING {
            return Err(format!("at most {MAX_TALKING} clients in all"));
        }
        Ok(())
    }
}
