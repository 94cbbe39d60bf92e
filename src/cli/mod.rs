//! The command line: clap derive types, one file per subcommand, and each subcommand's
//! conversion into the plain configuration its feature runs on. Nothing here runs; `lib.rs`
//! hands the converted configuration to the feature. Nothing below this face imports clap.

use clap::{Parser, Subcommand};

mod chat;
mod probe;
mod serve;
mod sockets;

pub use chat::ChatArgs;
pub use probe::ProbeArgs;
pub use serve::{ServeArgs, ServeMode};
pub use sockets::SocketsArgs;

/// See, use and debug TCP/UDP sockets.
#[derive(Parser, Debug)]
#[command(
    name = "soquete",
    version,
    about = "See, use and debug TCP/UDP sockets",
    long_about = "See, use and debug TCP/UDP sockets.\n\n\
        soquete lists sockets like netstat -tunp (and explains them), runs the chat of the \
        socket labs, and probes whether a host and port are reachable.\n\n\
        Exit status 64 (EX_USAGE) means bad usage in every subcommand: an unknown flag, a bad \
        value, a bad target; the other codes are each subcommand's own.",
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
}
