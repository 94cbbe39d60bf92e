//! The `soquete` binary: parse the command line, run it, map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;

fn main() -> ExitCode {
    let cli = match soquete::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage_error(err),
    };
    match soquete::run(cli) {
        Ok(code) => ExitCode::from(code as u8),
        Err(err) if err.is_broken_pipe() => ExitCode::SUCCESS,
        Err(err) => {
            // An error can carry text from the network (a server's bye reason): neutralised, as
            // everything from the network is before it reaches a terminal.
            let message = err.to_string();
            eprintln!("soquete: {}", soquete::net::sanitize::neutralize(&message));
            ExitCode::from(err.exit_code() as u8)
        }
    }
}

/// Help and version go out as clap writes them; a real usage error is said in one line.
fn usage_error(err: clap::Error) -> ExitCode {
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = err.print();
            ExitCode::from(err.exit_code() as u8)
        }
        // No subcommand: the help, on stderr, and the usage-error code the man page promises.
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = err.print();
            ExitCode::from(soquete::error::EXIT_USAGE as u8)
        }
        _ => {
            // clap's message, its "possible values" and "tip" lines, folded into one line.
            let rendered = err.render().to_string();
            let message: Vec<&str> = rendered
                .lines()
                .map(str::trim)
                .filter(|line| !line.is_empty() && !line.starts_with("Usage:"))
                .filter(|line| !line.starts_with("For more information"))
                .map(|line| line.strip_prefix("error: ").unwrap_or(line))
                .collect();
            let mut text = String::new();
            for part in message {
                if !text.is_empty() {
                    text.push_str(if text.ends_with(':') { " " } else { "; " });
                }
                text.push_str(part);
            }
            // clap quotes the value it refused, which may hold a terminal escape.
            let text = soquete::net::sanitize::neutralize(&text);
            eprintln!("soquete: {text} (see --help)");
            ExitCode::from(soquete::error::EXIT_USAGE as u8)
        }
    }
}
