//! Clients too slow to read: while an outbox is over its bounds the hub takes no input (readers
//! wait, TCP slows the senders, nothing is dropped) until it drains to half; a client that does
//! not within [`STALL_TIMEOUT`], or reads nothing for as long, is let go.

use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::chat::server::outbox::STALL_TIMEOUT;

use super::{Hub, STALL_CHECK};

impl Hub {
    /// A client with something to read that has read nothing for [`STALL_TIMEOUT`] is let go.
    pub(super) fn drop_stalled(&mut self) {
        for (&id, client) in &self.clients {
            let stalled = client.stats.stalled_for();
            if client.outbox.is_some() && stalled >= STALL_TIMEOUT {
                let waiting = client.stats.queued_bytes.load(Ordering::Relaxed);
                let reason = format!(
                    "too slow: nothing read for {} s, {} KiB waiting",
                    stalled.as_secs(),
                    waiting.div_ceil(1024)
                );
                self.drops.push_back((id, reason));
            }
        }
        self.settle();
    }

    /// Waits until every congested outbox is down to half its bounds; one that is not within
    /// [`STALL_TIMEOUT`] of going over is let go.
    pub(super) fn wait_for_room(&mut self) {
        while !self.congested.is_empty() {
            let clients = &self.clients;
            self.congested.retain(|id, _| {
                clients.get(id).is_some_and(|c| {
                    c.outbox.is_some() && !c.stats.is_closed() && c.stats.above_low_water()
                })
            });
            let now = Instant::now();
            let mut deadline = now + STALL_CHECK;
            for (&id, &since) in &self.congested {
                if now.duration_since(since) >= STALL_TIMEOUT {
                    let waiting = self.clients[&id].stats.queued_bytes.load(Ordering::Relaxed);
                    let reason = format!(
                        "too slow: {} KiB waiting to be read after {} s",
                        waiting.div_ceil(1024),
                        STALL_TIMEOUT.as_secs()
                    );
                    self.drops.push_back((id, reason));
                } else {
                    deadline = deadline.min(since + STALL_TIMEOUT);
                }
            }
            if !self.drops.is_empty() {
                self.settle();
                continue;
            }
            if !self.congested.is_empty() {
                let _ = self.room.recv_deadline(deadline);
            }
        }
    }
}

#[cfg(test)]
mod tests;
