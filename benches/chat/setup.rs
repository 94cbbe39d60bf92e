//! The synchronised start of every timed phase: every client connects (soquete: and reads its
//! greeting), then sends `h0017` lines, resent every 300 ms, until every reading client has seen
//! the hello of every other client; then 200 ms of draining, and the tally starts from zero.

use std::time::{Duration, Instant};

use crate::bench::{Bench, Kind};
use crate::tally::Tally;

/// How often a hello someone has not seen yet is sent again.
const HELLO_RESEND: Duration = Duration::from_millis(300);
/// How long the whole setup may take.
const SETUP_LIMIT: Duration = Duration::from_secs(60);
/// How long the generator drains the setup's traffic before the phase starts.
const SETTLE: Duration = Duration::from_millis(200);

impl Bench {
    /// Connects `talkers` reading clients and `stalled` non-reading ones (with a receive buffer
    /// of `stall_rcvbuf` bytes, 0 for the system's), waits for the greetings (soquete) and the
    /// hello exchange. Returns the setup time in seconds.
    #[allow(clippy::needless_range_loop)] // indexes several arrays by client
    pub fn setup(
        &mut self,
        talkers: usize,
        stalled: usize,
        stall_rcvbuf: usize,
    ) -> Result<f64, String> {
        let started = Instant::now();
        let total = talkers + stalled;
        self.n = total;
        self.expected = vec![0; total * total];
        self.hello_seen = vec![false; total * total];
        self.hellos_missing = talkers * (total - 1);
        for i in 0..total {
            let is_talker = i < talkers;
            let rcvbuf = if is_talker { 0 } else { stall_rcvbuf };
            self.connect(is_talker, is_talker, rcvbuf)
                .map_err(|e| format!("connect: {e}"))?;
            // One connection per millisecond or so: a burst of 50 overflows a small listen
            // backlog (ncat's), and the kernel then resets some of the connections.
            self.pump(Duration::from_millis(1))
                .map_err(|e| e.to_string())?;
        }
        let mut sent_hello = vec![false; total];
        loop {
            if started.elapsed() > SETUP_LIMIT {
                let connected = self.clients.iter().filter(|c| c.connected).count();
                let greeted = self.clients.iter().filter(|c| c.greeted).count();
                return Err(format!(
                    "setup did not complete in {SETUP_LIMIT:?}: {connected} connected, {greeted} \
                     greeted, {} hellos missing",
                    self.hellos_missing
                ));
            }
            if let Some((i, c)) = self.clients.iter().enumerate().find(|(_, c)| !c.open) {
                return Err(format!(
                    "client {i} closed during setup: {}",
                    c.close_reason.clone().unwrap_or_default()
                ));
            }
            self.pump(Duration::from_millis(10))
                .map_err(|e| e.to_string())?;
            // Whoever is ready says hello: soquete clients once greeted (stalled ones at once).
            for i in 0..total {
                let c = &self.clients[i];
                let ready = c.connected && (self.kind != Kind::Soquete || c.greeted || !c.reading);
                if ready && !sent_hello[i] && self.clients.iter().all(|c| c.connected) {
                    sent_hello[i] = true;
                    self.send_hello(i);
                }
            }
            if self.hellos_missing == 0 {
                break;
            }
            // Resend the hellos someone has not seen yet.
            for i in 0..total {
                if !sent_hello[i] {
                    continue;
                }
                let missing = (0..talkers).any(|r| r != i && !self.hello_seen[r * total + i]);
                let due = self.clients[i]
                    .last_hello
                    .is_none_or(|t| t.elapsed() >= HELLO_RESEND);
                if missing && due {
                    self.send_hello(i);
                }
            }
        }
        let settle_until = Instant::now() + SETTLE;
        while Instant::now() < settle_until {
            self.pump(Duration::from_millis(10))
                .map_err(|e| e.to_string())?;
        }
        self.tally = Tally::default();
        Ok(started.elapsed().as_secs_f64())
    }
}
