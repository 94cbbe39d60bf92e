//! Load generator for `soquete serve` and `ncat --broker`: one mio (epoll) event loop for every
//! client on one thread (the fan-out can deal its clients out to `--threads N` loops), raw text
//! lines over TCP, never a thread per client. `benches/chat.sh` starts the servers and drives it;
//! each run prints one JSON object on stdout (`report_chat.py` reads it).
//!
//! ```text
//! chat fanout  --addr 127.0.0.1:P --kind soquete|broker|ncat [--clients 50] [--lines 1000]
//!              [--size 64] [--threads 1]
//! chat paced   --addr A --kind K [--clients 50] [--rate 10000] [--duration 10] [--stalled 0]
//!              [--stall-rcvbuf 0] [--warmup 0] [--latency] [--size 64]
//!              [--listeners 0] [--resources]
//! chat idle    --addr A --kind K [--clients 50] [--connect-rate 1000] [--hold 5]
//! chat burst   --addr A --kind K [--holders 4] [--clients 5000] [--hold 3]
//! chat queue   --addr A [--clients 50] [--size 8000] [--duration 60]
//! all of them: [--server-pid PID] (server CPU, RSS and threads from /proc)
//! ```
//!
//! Every test line names its sender and is checked by every receiver (`chat/line.rs`).
//! soquete's `[HH:MM:SS] <guest-N> ` prefix is stripped and its `* ` notices are counted, not
//! checked. A line that does not parse exactly is corrupted (two lines glued, a cut line); a
//! sequence gap is lost lines; a sequence going back is a duplicate or reordering
//! (`chat/tally.rs`). Every timed phase starts synchronised (`chat/setup.rs`), or, for the
//! fan-out `--at-once`, with every client accepted and nothing said yet. `burst`, `queue` and
//! `paced --resources` sample the server's memory, threads and descriptors all along
//! (`chat/sampler.rs`; `benches/limits.sh` drives them).
//!
//! The files under `chat/`: `cli` (flags) → one file per scenario (`fanout`, `paced` with
//! `latency` and `timeline`, `idle`, `burst`, `queue`), each building its report (`report`,
//! `usage`, `sampler`) on the engine (`bench`, with `setup` and `tally`), which sends and reads
//! `line`s.

// pub(crate): the unit tests (chat/tests.rs) include this file as a module and reach these.
#[path = "chat/bench.rs"]
pub(crate) mod bench;
#[path = "chat/burst.rs"]
pub(crate) mod burst;
#[path = "chat/cli.rs"]
pub(crate) mod cli;
#[path = "chat/fanout.rs"]
pub(crate) mod fanout;
#[path = "chat/idle.rs"]
pub(crate) mod idle;
#[path = "chat/latency.rs"]
pub(crate) mod latency;
#[path = "chat/line.rs"]
pub(crate) mod line;
#[path = "chat/paced.rs"]
pub(crate) mod paced;
#[path = "chat/queue.rs"]
pub(crate) mod queue;
#[path = "chat/report.rs"]
pub(crate) mod report;
#[path = "chat/sampler.rs"]
pub(crate) mod sampler;
#[path = "chat/setup.rs"]
pub(crate) mod setup;
#[path = "chat/tally.rs"]
pub(crate) mod tally;
#[path = "chat/timeline.rs"]
pub(crate) mod timeline;
#[path = "chat/tls.rs"]
pub(crate) mod tls;
#[path = "chat/usage.rs"]
pub(crate) mod usage;

use serde::Serialize;

use crate::cli::{Cli, Scenario};

/// One run's report, the scenario named in its `mode` key.
#[derive(Debug, Serialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
#[allow(clippy::large_enum_variant)] // one report per run, made once and printed
enum Report {
    Fanout(fanout::FanoutReport),
    Paced(paced::PacedReport),
    Idle(idle::IdleReport),
    Burst(burst::BurstReport),
    Queue(queue::QueueReport),
}

/// Runs the scenario the command line names.
fn run(cli: &Cli) -> Result<Report, String> {
    match &cli.scenario {
        Scenario::Fanout(args) => fanout::run(args).map(Report::Fanout),
        Scenario::Paced(args) => paced::run(args).map(Report::Paced),
        Scenario::Idle(args) => idle::run(args).map(Report::Idle),
        Scenario::Burst(args) => burst::run(args).map(Report::Burst),
        Scenario::Queue(args) => queue::run(args).map(Report::Queue),
    }
}

fn main() {
    let cli = Cli::from_args();
    if let Err(e) = cli.validate() {
        eprintln!("chat bench: {e}");
        std::process::exit(2);
    }
    usage::raise_nofile();
    let json =
        run(&cli).and_then(|report| serde_json::to_string(&report).map_err(|e| e.to_string()));
    match json {
        Ok(json) => println!("{json}"),
        Err(e) => {
            eprintln!("chat bench: {e}");
            std::process::exit(1);
        }
    }
}
