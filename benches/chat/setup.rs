//! The start of every timed phase: every client connects (soquete: and reads its greeting,
//! which says it was accepted); then, in the synchronised start, the talkers send `h0017`
//! lines, resent every 300 ms, until every talker has seen the hello of every other client
//! that speaks, 200 ms of draining, and the tally starts from zero. In the start at once there
//! is no hello: the first line a client sends is a test line.

use std::time::{Duration, Instant};

use crate::bench::{Bench, Client, Kind, Role};
use crate::tally::Tally;

/// How often a hello someone has not seen yet is sent again.
const HELLO_RESEND: Duration = Duration::from_millis(300);
/// How long the whole setup may take.
const SETUP_LIMIT: Duration = Duration::from_secs(60);
/// How long the generator drains the setup's traffic before the phase starts.
const SETTLE: Duration = Duration::from_millis(200);
/// ncat and broker mode say nothing when they accept a connection: how long the generator
/// gives them to accept the last one before a start at once.
const UNSEEN_ACCEPT: Duration = Duration::from_millis(500);

/// Who takes part in a run, in the order they connect: talkers, stalled clients, listeners.
#[derive(Clone, Copy, Debug, Default)]
pub struct Crowd {
    pub talkers: usize,
    /// Clients that say hello and then never read.
    pub stalled: usize,
    /// SO_RCVBUF of the stalled clients in bytes (0: the system's).
    pub stall_rcvbuf: usize,
    /// Clients that read and never write.
    pub listeners: usize,
}

impl Crowd {
    /// `n` talkers and nobody else.
    pub fn talkers(n: usize) -> Crowd {
        Crowd {
            talkers: n,
            ..Crowd::default()
        }
    }
}

impl Bench {
    /// Connects `crowd` after the clients already there, one connection per millisecond or so
    /// (a burst of 50 overflows a small listen backlog, ncat's, and the kernel then resets some
    /// of the connections); every client takes part in the sequence checks (before any test
    /// line is sent).
    pub fn connect_crowd(&mut self, crowd: Crowd) -> Result<(), String> {
        let roles = [
            (Role::Talker, crowd.talkers, 0),
            (Role::Stalled, crowd.stalled, crowd.stall_rcvbuf),
            (Role::Listener, crowd.listeners, 0),
        ];
        for (role, count, rcvbuf) in roles {
            for _ in 0..count {
                self.connect(role, rcvbuf)
                    .map_err(|e| format!("connect: {e}"))?;
                self.pump(Duration::from_millis(1))
                    .map_err(|e| e.to_string())?;
            }
        }
        self.n = self.clients.len();
        self.expected = vec![0; self.n * self.n];
        self.hello_seen = vec![false; self.n * self.n];
        Ok(())
    }

    /// Fails when a client has been closed (by the server, or on an error).
    fn all_open(&self) -> Result<(), String> {
        match self.clients.iter().enumerate().find(|(_, c)| !c.open) {
            Some((i, c)) => Err(format!(
                "client {i} closed during setup: {}",
                c.close_reason.clone().unwrap_or_default()
            )),
            None => Ok(()),
        }
    }

    /// Waits until every client is connected and, from soquete, every reading one has its
    /// greeting; at most until `started` + [`SETUP_LIMIT`].
    pub fn await_arrival(&mut self, started: Instant) -> Result<(), String> {
        loop {
            self.all_open()?;
            let soquete = self.kind == Kind::Soquete;
            let arrived = |c: &Client| c.connected && (!soquete || c.greeted || !c.reading);
            if self.clients.iter().all(arrived) {
                return Ok(());
            }
            if started.elapsed() > SETUP_LIMIT {
                let connected = self.clients.iter().filter(|c| c.connected).count();
                let greeted = self.clients.iter().filter(|c| c.greeted).count();
                return Err(format!(
                    "setup did not complete in {SETUP_LIMIT:?}: {connected} connected, {greeted} \
                     greeted of {}",
                    self.clients.len()
                ));
            }
            self.pump(Duration::from_millis(10))
                .map_err(|e| e.to_string())?;
        }
    }

    /// Reads whatever comes for `time`.
    pub fn drain_for(&mut self, time: Duration) -> Result<(), String> {
        let until = Instant::now() + time;
        while Instant::now() < until {
            self.pump(Duration::from_millis(10))
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Reads until no byte has come for `quiet` and every open client is connected, or `limit`
    /// has passed; returns the seconds it took.
    pub fn settle(&mut self, quiet: Duration, limit: Duration) -> Result<f64, String> {
        let started = Instant::now();
        let mut last_bytes = (Instant::now(), u64::MAX);
        while started.elapsed() < limit {
            self.pump(Duration::from_millis(50))
                .map_err(|e| e.to_string())?;
            let bytes: u64 = self.clients.iter().map(|c| c.bytes_in).sum();
            if bytes != last_bytes.1 {
                last_bytes = (Instant::now(), bytes);
            } else if last_bytes.0.elapsed() > quiet
                && self.clients.iter().all(|c| c.connected || !c.open)
            {
                break;
            }
        }
        Ok(started.elapsed().as_secs_f64())
    }

    /// The synchronised start: connects `crowd`, waits for the greetings (soquete) and the hello
    /// exchange. Returns the setup time in seconds.
    pub fn setup(&mut self, crowd: Crowd) -> Result<f64, String> {
        let started = Instant::now();
        self.connect_crowd(crowd)?;
        self.await_arrival(started)?;
        let total = self.n;
        let talkers = crowd.talkers;
        let speakers = crowd.talkers + crowd.stalled;
        self.hellos_missing = talkers * speakers.saturating_sub(1);
        for i in 0..speakers {
            self.send_hello(i);
        }
        while self.hellos_missing > 0 {
            if started.elapsed() > SETUP_LIMIT {
                return Err(format!(
                    "setup did not complete in {SETUP_LIMIT:?}: {} hellos missing",
                    self.hellos_missing
                ));
            }
            self.all_open()?;
            self.pump(Duration::from_millis(10))
                .map_err(|e| e.to_string())?;
            // Resend the hellos someone has not seen yet.
            for i in 0..speakers {
                let missing = (0..talkers).any(|r| r != i && !self.hello_seen[r * total + i]);
                let due = self.clients[i]
                    .last_hello
                    .is_none_or(|t| t.elapsed() >= HELLO_RESEND);
                if missing && due {
                    self.send_hello(i);
                }
            }
        }
        self.drain_for(SETTLE)?;
        self.tally = Tally::default();
        Ok(started.elapsed().as_secs_f64())
    }

    /// The start at once: connects `talkers` and waits until the server has accepted them all
    /// (soquete: each has its greeting; ncat and broker mode: each is connected, and
    /// [`UNSEEN_ACCEPT`] more), nothing said yet. Returns the setup time in seconds.
    pub fn setup_at_once(&mut self, talkers: usize) -> Result<f64, String> {
        let started = Instant::now();
        self.connect_crowd(Crowd::talkers(talkers))?;
        self.await_arrival(started)?;
        if self.kind != Kind::Soquete {
            self.drain_for(UNSEEN_ACCEPT)?;
        }
        self.all_open()?;
        self.tally = Tally::default();
        Ok(started.elapsed().as_secs_f64())
    }
}
