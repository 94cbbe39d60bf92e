//! `soquete serve`: the chat server (docs/PROTOCOL.md). Threads, no async: one accept thread; per
//! client a reader and a writer fed by a bounded outbox; one hub that owns the room and its
//! history; one console thread reading stdin; with `--ddns`, one thread that checks the server's
//! own name now and then and tells the console (the `ddns` folder). Ctrl-C or SIGTERM tells every client `bye`, flushes
//! the log and exits 0; a hub that fails ends the server with an error.
//!
//! This file checks the [`Config`], starts the threads and waits for the hub. Imports run one
//! way, from the threads down to plain data: `accept` → `refusal`, `connection` → `access` (a
//! room's password, and `attempts`, each address's tries) → `reader` (which `refusal` uses
//! too), `writer`, and all three → `link` (the socket, plain or TLS); `hub` → `console`,
//! `history`, `status`; `ddns` → `console` (and `hub` → `ddns` for `/status`'s line); the threads'
//! files → `event` → `outbox` (which `history` uses too) and → `config` → `throttle`. The hub and
//! the connection threads never import each other (they talk through `event` and `outbox`), and
//! nothing here imports the command line.

mod accept;
mod access;
mod attempts;
mod cluster;
mod config;
mod connection;
mod console;
mod ddns;
mod denials;
mod event;
mod history;
mod hub;
mod link;
mod lobby;
mod outbox;
mod reader;
mod refusal;
mod status;
mod throttle;
mod token;
mod writer;

pub use attempts::FIRST_DELAY as PASSWORD_FIRST_DELAY;
pub use cluster::{
    ClusterSetup, MIN_STREAM_LEN, PRESENCE_TTL, PRESENCE_TTL_ENV, REDIS_PASSWORD_ENV,
    STREAM_LEN_ENV,
};
pub use config::{Config, HEARTBEAT_INTERVAL_ENV, Mode, PASSWORD_DELAY_ENV};
pub use ddns::{Ddns, INTERVAL as DDNS_INTERVAL, INTERVAL_ENV as DDNS_INTERVAL_ENV};
pub use throttle::{DEFAULT_RATE_LIMIT, RateLimit};
pub use token::{NAME_RESERVE, NAME_RESERVE_ENV};

use std::any::Any;
use std::io::{self, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use crossbeam_channel::{Receiver, RecvTimeoutError};

use crate::error::{Context, Error, Result};
use crate::net::tls::server::ServerTls;
use crate::platform::limits::raise_open_files_limit;
use crate::platform::terminal::SavedTerminal;

use event::Event;
use history::History;
use hub::{Hub, Settings};

/// Events waiting for the hub. A reader that finds it full waits (and TCP slows its sender
/// down): so it goes while the hub waits for a congested outbox to drain.
const EVENT_CAPACITY: usize = 1024;

/// Runs the server until Ctrl-C or SIGTERM.
pub fn run(config: &Config) -> Result<()> {
    let name = config.console_name()?;
    let access = config
        .password
        .load()?
        .map(|password| Arc::new(access::Access::new(password, config.password_delay)));
    let mut history = History::new(config.history);
    let mut last_seq = match &config.log {
        Some(path) => reload(&mut history, path)?,
        None => 0,
    };
    // `--cluster`: the room is Redis's (its epoch, numbering and last messages), reached before
    // anything listens, so that an unreachable Redis is one line and no half-started server.
    let joined = match &config.cluster {
        Some(setup) => {
            let joined = cluster::join(setup, history.epoch(), config.history)?;
            history.set_epoch(&joined.epoch);
            for entry in &joined.entries {
                if let Some((seq, json)) = entry.json_line() {
                    history.record(seq, json.into());
                }
            }
            last_seq = joined.seq;
            Some(joined)
        }
        None => None,
    };
    // One file per client: let the server hold as many as the system allows it.
    if let Err(err) = raise_open_files_limit() {
        eprintln!("soquete: could not raise the limit on open files: {err}");
    }
    // std sets SO_REUSEADDR on Unix, so a restarted server takes its port back at once, even
    // with connections of the old one still in TIME_WAIT.
    let wanted = config.listen;
    let listener =
        TcpListener::bind(wanted).with_context(|| format!("cannot listen on {wanted}"))?;
    let listening = listener
        .local_addr()
        .with_context(|| format!("cannot listen on {wanted}"))?;

    let (events, inbox) = crossbeam_channel::bounded(EVENT_CAPACITY);
    let on_interrupt = events.clone();
    // Set before the address is printed: whoever reads it may send SIGINT at once. The
    // "termination" feature makes this SIGTERM (and SIGHUP) too.
    ctrlc::set_handler(move || {
        let _ = on_interrupt.send(Event::Shutdown);
    })
    .map_err(|err| Error::Unsupported(format!("cannot catch Ctrl-C and SIGTERM: {err}")))?;

    // The room's threads start before the address is printed: whoever reads it finds this
    // server, and its console, in the room.
    let cluster = match joined {
        Some(joined) => {
            let ttl = joined.ttl();
            let timing = cluster::Timing {
                ttl,
                session: config.name_reserve.max(ttl),
            };
            Some(joined.start(&events, config.history, timing, (&name, listening))?)
        }
        None => None,
    };
    let tls = match &config.tls {
        Some(setup) => Some(Arc::new(ServerTls::open(setup, listening.ip())?)),
        None => None,
    };
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "listening on {listening}")
        .and_then(|()| match &tls {
            Some(tls) => writeln!(stdout, "{}", tls_line(tls)),
            None => Ok(()),
        })
        .and_then(|()| stdout.flush())
        .context("writing output")?;
    drop(stdout);
    let key_warning = tls.as_deref().and_then(ServerTls::key_warning);
    let pair_warnings = tls.iter().flat_map(|tls| tls.warnings());
    for warning in pair_warnings.chain(key_warning) {
        eprintln!("soquete: warning: {warning}");
    }
    if access.is_some() && !config.tls_enabled() {
        let warning = if config.tls.is_some() {
            "this room has a password, but plain clients are served too (--tls-optional): a \
             plain client's password and messages cross the network readable by anyone on the \
             path"
        } else {
            "this room has a password, but connections are not encrypted (no --tls): the \
             password and every message cross the network readable by anyone on the path"
        };
        eprintln!("soquete: warning: {warning}");
    }

    let policy = config.policy();
    let editor = console::ConsoleEditor::open(&config.name);
    // The editor puts the terminal in raw mode: whatever ends the server puts it back.
    let saved_terminal = editor.as_ref().and_then(|_| SavedTerminal::save());
    let (editor, editor_printer) = match editor {
        Some((editor, printer)) => (Some(editor), Some(printer)),
        None => (None, None),
    };
    let (console, printer) = console::Console::new(editor_printer);
    // `--ddns`: the server's own name is checked on a thread of its own; dropping `ddns_stop`
    // ends it. Without the flag, nothing is started and nothing is sent.
    let (ddns_report, ddns_stop) = match config.ddns.clone() {
        Some(wanted) => {
            if listening.ip().is_loopback() {
                eprintln!(
                    "soquete: warning: --ddns checks a name others reach this server by, but it \
                     is listening on {} only: serve --bind 0.0.0.0",
                    listening.ip()
                );
            }
            let (report, stop, work) = ddns::watcher(wanted, listening, console.clone());
            spawn("ddns", work)?;
            (Some(report), Some(stop))
        }
        None => (None, None),
    };
    let (printed, printer_done) = crossbeam_channel::bounded::<()>(1);
    spawn("console-out", move || {
        printer();
        let _ = printed.send(());
    })?;
    // Writers wake the hub here when an outbox it waits for has drained.
    let (room, room_wakes) = crossbeam_channel::bounded(1);
    // Renewed certificate files are served without a restart.
    let (watching, stop_watching) = crossbeam_channel::bounded::<()>(0);
    if let Some(tls) = tls.clone().filter(|tls| tls.has_files()) {
        let console = console.clone();
        spawn("tls-watch", move || {
            watch_certificate(&tls, &console, &stop_watching)
        })?;
    }
    let settings = Settings {
        mode: config.mode,
        sync: config.sync,
        name,
        listening,
        rate_limit: policy.rate_limit,
        idle_timeout: config.idle_timeout,
        name_reserve: config.name_reserve,
        tls: tls.clone(),
        ddns: ddns_report,
        cluster,
    };
    let hub = Hub::new(settings, console, room_wakes, history, last_seq);
    let connected = hub.connected();
    let hub = spawn("hub", move || hub.run(&inbox))?;
    let console_events = events.clone();
    spawn("console", move || {
        console::read_stdin(&console_events, editor)
    })?;
    let stop = Arc::new(AtomicBool::new(false));
    let accept_stop = Arc::clone(&stop);
    let max_clients = config.max_clients;
    // A broker's raw clients hear nothing of the server's own, "server full" included.
    let tell_refused = config.mode != Mode::Broker;
    let accept = spawn("accept", move || {
        let limits = (max_clients, &connected, tell_refused);
        let admission = (policy, tls.as_deref(), access);
        accept::accept_loop(&listener, (&events, &room), &accept_stop, limits, admission);
    })?;

    let outcome = hub_outcome(hub.join());
    drop(watching);
    drop(ddns_stop);
    // The hub owned the console: its last reports are printed, unless stdout is stuck.
    let _ = printer_done.recv_timeout(hub::SHUTDOWN_GRACE);
    stop.store(true, Ordering::SeqCst);
    if accept::wake(listening) {
        let _ = accept.join();
    }
    if let Some(saved) = saved_terminal {
        saved.restore();
    }
    outcome
}

/// The start-up line of a TLS server: the fingerprint to read out, and where the certificate is.
fn tls_line(tls: &ServerTls) -> String {
    let plain = if tls.optional {
        "plain clients served too (--tls-optional)"
    } else {
        "plain clients are told to use TLS"
    };
    format!(
        "tls: certificate {} ({}); {plain}",
        tls.fingerprint(),
        tls.origin
    )
}

/// Looks at the certificate files every `tls.watch_every`, and serves them to new connections
/// when they change (a bad pair keeps the old one); ends when `stop` is dropped.
fn watch_certificate(tls: &ServerTls, console: &console::Console, stop: &Receiver<()>) {
    while let Err(RecvTimeoutError::Timeout) = stop.recv_timeout(tls.watch_every) {
        if let Some(reloaded) = tls.reload_if_changed() {
            for line in tls.reload_lines(&reloaded) {
                console.event(&line);
            }
        }
    }
}

/// Opens the log at `path`, reloading its messages into `history`; returns the last `seq` in it.
/// Unreadable lines are reported and skipped.
fn reload(history: &mut History, path: &Path) -> Result<u64> {
    let found = history
        .open_log(path)
        .with_context(|| format!("opening the log {}", path.display()))?;
    if found.skipped > 0 || found.torn > 0 {
        eprintln!(
            "soquete: the log {} had {} unreadable line(s){}; they were skipped, and {} messages reloaded",
            path.display(),
            found.skipped,
            if found.torn > 0 {
                format!(
                    " and a last line cut short ({} bytes, removed: the server stopped mid-write)",
                    found.torn
                )
            } else {
                String::new()
            },
            found.messages,
        );
    }
    Ok(found.last_seq)
}

/// Starts a named thread of the server.
fn spawn<F: FnOnce() + Send + 'static>(name: &str, work: F) -> Result<thread::JoinHandle<()>> {
    thread::Builder::new()
        .name(name.into())
        .spawn(work)
        .with_context(|| format!("starting the {name} thread"))
}

/// How the server ends once the hub thread has: a hub that panicked is an error (the room is
/// gone, whatever the other threads do), said in one line.
fn hub_outcome(joined: thread::Result<()>) -> Result<()> {
    joined.map_err(|panic| {
        let what = panic_message(panic.as_ref());
        let what = what.lines().next().unwrap_or_default();
        Error::Internal(format!("serving the chat: the hub thread panicked: {what}"))
    })
}

/// The text a panic was raised with (`panic!("…")` gives a `&str` or a `String`).
fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(text) = payload.downcast_ref::<&str>() {
        text
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text
    } else {
        "no message"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hub_that_ends_normally_ends_the_server_normally() {
        assert!(hub_outcome(Ok(())).is_ok());
    }

    #[test]
    fn a_panicked_hub_is_a_one_line_failure() {
        let joined = thread::Builder::new()
            .name("hub".into())
            .spawn(|| panic!("index out of bounds\nsecond line"))
            .unwrap()
            .join();
        let err = hub_outcome(joined).unwrap_err();
        assert_eq!(err.exit_code(), crate::error::EXIT_FAILURE);
        assert_eq!(
            err.to_string(),
            "serving the chat: the hub thread panicked: index out of bounds"
        );
        let formatted = thread::spawn(|| panic!("{} clients", 3)).join();
        assert!(
            hub_outcome(formatted)
                .unwrap_err()
                .to_string()
                .ends_with("panicked: 3 clients")
        );
        let odd = thread::spawn(|| std::panic::panic_any(7u8)).join();
        assert!(
            hub_outcome(odd)
                .unwrap_err()
                .to_string()
                .ends_with("no message")
        );
    }
}
