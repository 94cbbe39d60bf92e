//! `serve --ddns NAME`: the server checks its own dynamic-DNS name, at start and then every
//! [`INTERVAL`], on a thread of its own that never holds up the hub or the accept loop. Each
//! check ([`check`]) compares the cache, the authoritative servers, the public address a STUN
//! server sees and the port from outside; its [`verdict`] goes on the console once per change
//! (a quiet ok line when all is well) and is kept for `/status`. Without `--ddns` nothing here
//! runs and nothing is sent.

mod check;
mod verdict;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{RecvTimeoutError, Sender};

use crate::net::clock::now;

use super::console::Console;

use verdict::Verdict;

/// How often the name is checked after the first time.
pub const INTERVAL: Duration = Duration::from_secs(5 * 60);
/// Tests shorten [`INTERVAL`] with this variable (milliseconds); the face reads it.
pub const INTERVAL_ENV: &str = "SOQUETE_DDNS_INTERVAL_MS";

/// What `--ddns` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ddns {
    /// The server's public name.
    pub name: String,
    /// The STUN server (`HOST:PORT`) that tells the server its public address.
    pub stun: String,
    /// The server to ask as the name's authority, instead of finding the zone's NS records
    /// through `/etc/resolv.conf` (`--ddns-authority`: a hidden primary, or a test's server).
    pub authority: Option<SocketAddr>,
    /// Between two checks.
    pub interval: Duration,
}

/// The last check's verdict, shared with the hub for `/status`, and the check's own connections
/// to the port, so that the console does not show them as visitors.
#[derive(Debug, Clone)]
pub struct Report {
    name: String,
    last: Arc<Mutex<Option<String>>>,
    own: check::Own,
}

impl Report {
    /// True (once) when `peer` is the local end of one of the check's own connections.
    pub fn is_own_check(&self, peer: SocketAddr) -> bool {
        self.own.take(peer)
    }

    /// `/status`'s `ddns` line.
    pub fn line(&self) -> String {
        let last = self
            .last
            .lock()
            .map(|last| last.clone())
            .unwrap_or_default();
        match last {
            Some(last) => format!("ddns {}: {last}", self.name),
            None => format!("ddns {}: first check under way", self.name),
        }
    }
}

/// Ends the checks when dropped, and lets go of the console at once: a check still under way
/// (waiting for a silent STUN server) never holds up the server's last lines.
pub struct Stop {
    _wake: Sender<()>,
    console: Arc<Mutex<Option<Console>>>,
}

impl Drop for Stop {
    fn drop(&mut self) {
        if let Ok(mut console) = self.console.lock() {
            console.take();
        }
    }
}

/// Starts the checks of `ddns` for a server listening on `listening`: the report for `/status`,
/// the handle that stops them, and the work to run on a thread of its own. Findings go on
/// `console`.
pub fn watcher(
    ddns: Ddns,
    listening: SocketAddr,
    console: Console,
) -> (Report, Stop, impl FnOnce() + Send + 'static) {
    let report = Report {
        name: ddns.name.clone(),
        last: Arc::new(Mutex::new(None)),
        own: check::Own::default(),
    };
    let shared = report.clone();
    let (wake, stop) = crossbeam_channel::bounded::<()>(0);
    let console = Arc::new(Mutex::new(Some(console)));
    let stopper = Stop {
        _wake: wake,
        console: Arc::clone(&console),
    };
    let work = move || {
        let mut told = None;
        loop {
            let facts = check::gather(&ddns, listening, &shared.own);
            let verdict = Verdict::of(&ddns.name, listening.port(), &facts);
            let at = now().format("%H:%M:%S");
            if let Ok(mut last) = shared.last.lock() {
                *last = Some(format!("{} (checked at {at})", verdict.line()));
            }
            let key = verdict::key(&verdict);
            if told.as_ref() != Some(&key) {
                let said = announce(&ddns.name, &verdict, told.is_some());
                match console.lock().as_deref() {
                    Ok(Some(console)) => console.event(&said),
                    _ => return,
                }
                told = Some(key);
            }
            match stop.recv_timeout(ddns.interval) {
                Err(RecvTimeoutError::Timeout) => {}
                _ => return,
            }
        }
    };
    (report, stopper, work)
}

/// The console's line for a new verdict: warnings stand out, ok is quiet.
fn announce(name: &str, verdict: &Verdict, again: bool) -> String {
    let line = verdict.line();
    match (verdict.is_ok(), again) {
        (true, false) => format!("ddns {name}: {line}"),
        (true, true) => format!("ddns {name}: {line} (the earlier warning is gone)"),
        (false, _) => format!("! ddns {name}: {line}"),
    }
}
