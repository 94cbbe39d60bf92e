//! `soquete probe`: is that (dynamic-DNS) host and port reachable, on every address it resolves
//! to, and is a soquete server there. `rounds` gathers (a thread per target resolves, a thread per
//! address connects), `report` folds what it finds into one data type, and a renderer per format
//! turns that into bytes; `run` only wires them and writes each verdict as soon as it arrives.

pub mod config;
pub mod connect;
pub mod render;
pub mod report;
pub mod resolve;
pub mod rounds;
pub mod tls;

use std::io::Write;

pub use config::Config;
pub use report::{
    EXIT_ALL_REACHABLE, EXIT_CHECK_FAILED, EXIT_NONE_REACHABLE, EXIT_RESOLUTION_FAILED,
    EXIT_SOME_REACHABLE,
};

use crate::error::{Context, Result};
use report::Report;
use rounds::Rounds;

/// Runs the probe and returns its exit code.
pub fn run(config: Config) -> Result<i32> {
    let renderer = render::for_config(&config);
    let checks = report::Checks {
        chat: config.chat,
        tls: config.tls,
        any: config.any,
    };
    if let Some(server) = config.dns_server {
        // --server is asked about names only: said rather than ignored in silence.
        for target in config.targets.iter() {
            if target.host.parse::<std::net::IpAddr>().is_ok() {
                eprintln!(
                    "soquete: note: --server {server} is not asked about {}: it is an address, \
                     not a name",
                    target.host
                );
            }
        }
    }
    let mut report = Report::new(&config.targets);
    let rounds = Rounds::start(config)?;
    let stdout = std::io::stdout();
    loop {
        crossbeam_channel::select! {
            recv(rounds.events) -> message => match message {
                Ok((index, event)) => {
                    report.record(index, &event);
                    print(&stdout, &renderer.event(&event)?)?;
                }
                Err(_) => break,
            },
            // Ctrl-C: the summary of what is known, now; attempts under way are left behind.
            recv(rounds.interrupted) -> _ => {
                report.interrupted = true;
                break;
            }
        }
    }
    if report.interrupted {
        for (index, event) in rounds.events.try_iter() {
            report.record(index, &event);
            print(&stdout, &renderer.event(&event)?)?;
        }
    } else {
        rounds.join();
    }
    let code = report.close(checks);
    print(&stdout, &renderer.finish(&report)?)?;
    Ok(code)
}

/// Writes `bytes` to stdout at once, so a pipe sees each verdict as it comes.
fn print(stdout: &std::io::Stdout, bytes: &[u8]) -> Result<()> {
    let mut out = stdout.lock();
    out.write_all(bytes).context("writing output")?;
    out.flush().context("writing output")
}
