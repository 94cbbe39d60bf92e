//! soquete: see, use and debug TCP/UDP sockets. `run` is the one place that dispatches subcommands.

pub mod chat;
pub mod cli;
pub mod error;
pub mod manual;
pub mod net;
pub mod output;
pub mod platform;
pub mod probe;
pub mod sockets;

use cli::{Cli, Command};
use error::Result;

/// Runs one parsed command line to completion and returns its exit code. Failures that end the
/// command come back as `Err`, printed once by `main`.
pub fn run(cli: Cli) -> Result<i32> {
    let done = |result: Result<()>| result.map(|()| error::EXIT_OK);
    match cli.command {
        Command::Sockets(args) => done(sockets::run(&sockets::Query::from(&args))),
        Command::Serve(args) => done(chat::server::run(&args.into())),
        Command::Chat(args) => done(chat::client::run(&args.into())),
        Command::Probe(args) => probe::run(args.try_into()?),
        Command::Completions { shell } => {
            done(manual::write_completions(shell, &mut std::io::stdout()))
        }
    }
}
