//! soquete: see, use and debug TCP/UDP sockets. `run` is the one place that dispatches subcommands.

pub mod chat;
pub mod cli;
pub mod error;
pub mod manual;
pub mod output;
pub mod platform;
pub mod sockets;

use cli::{Cli, Command};
use error::{Error, Result};

/// Runs one parsed command line to completion.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Sockets(args) => sockets::run(&args),
        Command::Serve(args) => chat::server::run(&args),
        Command::Chat(args) => chat::client::run(&args),
        Command::Probe(_) => Err(not_built("probe")),
        Command::Completions { shell } => manual::write_completions(shell, &mut std::io::stdout()),
    }
}

fn not_built(name: &str) -> Error {
    Error::Unsupported(format!(
        "`soquete {name}` is not built yet in this version; see `soquete --help`"
    ))
}
