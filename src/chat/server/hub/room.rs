//! The room's messages: stamped in order, kept in the history and the log, gathered into rounds
//! and fanned out to the members' outboxes, each encoding made once and shared. What the room
//! says is kept for a connection until it says what it is (group and broker mode).

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use crate::chat::protocol::{MsgEncoder, ServerFrame};
use crate::net::clock::now;

use crate::chat::server::config::Mode;
use crate::chat::server::event::Kind;
use crate::chat::server::outbox::{Bytes, Outgoing, Parts};

use super::Hub;
use super::round::{Piece, bare_line};

impl Hub {
    /// Chat lines of one member, stamped one by one (one `seq` each, one time), join the round's
    /// messages as one piece per flavour.
    pub(super) fn said_together(&mut self, id: u64, lines: Vec<(String, bool)>) {
        let Some(client) = self.clients.get(&id).filter(|c| c.named()) else {
            return;
        };
        if lines.is_empty() {
            return;
        }
        let (from, structured) = (client.name.clone(), client.kind == Kind::Structured);
        if self.is_shared() {
            return self.said_shared(id, &from, lines);
        }
        let encoder = MsgEncoder::new(&now(), &from);
        let numbered = lines
            .into_iter()
            .map(|(line, action)| {
                self.seq += 1;
                (self.seq, line, action)
            })
            .collect();
        let (json, text, count) = self.encode_run(&encoder, numbered);
        self.round.add(Piece {
            author: id,
            // Raw clients (nc, telnet) already see what they typed; structured clients get
            // their own messages back, stamped, as the confirmation of their order.
            author_saw_it: !structured,
            json,
            text,
            lines: count,
        });
    }

    /// One author's numbered messages `(seq, text, action)`: kept, shown on the console, and
    /// encoded once per flavour (a broker's raw clients get them bare); with their count.
    pub(super) fn encode_run(
        &mut self,
        encoder: &MsgEncoder,
        lines: Vec<(u64, String, bool)>,
    ) -> (Bytes, Bytes, u32) {
        // A broker relays the lines bare and logs connections, not the traffic.
        let broker = self.settings.mode == Mode::Broker;
        let (mut json, mut text) = (Vec::new(), String::new());
        let count = lines.len() as u32;
        for (seq, line, action) in lines {
            let start = json.len();
            encoder.json_line(seq, &line, action, &mut json);
            self.keep(seq, json[start..].into());
            if broker {
                text.push_str(&line);
                text.push('\n');
            } else {
                encoder.text_line(&line, action, &mut text);
            }
        }
        if !broker {
            self.console.push(text.clone());
        }
        (json.into(), text.into_bytes().into(), count)
    }

    /// A stamped message with the room's next sequence number.
    pub(super) fn msg(&mut self, from: String, text: String, action: bool) -> ServerFrame {
        self.seq += 1;
        ServerFrame::Msg {
            seq: self.seq,
            time: now(),
            from,
            text,
            action,
            held: false,
        }
    }

    /// Keeps a room message in the history and the log; returns its JSON line for the fan-out.
    pub(super) fn record(&mut self, frame: &ServerFrame) -> Bytes {
        let json: Bytes = frame.to_json_line().into();
        if let ServerFrame::Msg { seq, .. } = frame {
            self.keep(*seq, Arc::clone(&json));
        }
        json
    }

    /// Keeps message `seq` (its JSON line) in the history and the log.
    pub(super) fn keep(&mut self, seq: u64, json: Bytes) {
        log_failed(self.history.record(seq, json));
    }

    /// Encodes `frame` for this client's flavour and queues it.
    pub(super) fn send(&mut self, id: u64, frame: &ServerFrame) {
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        let bytes: Bytes = match client.kind {
            Kind::Structured => frame.to_json_line().into(),
            // A broker's raw clients hear nothing but the others' lines.
            Kind::Raw | Kind::Pending if self.settings.mode == Mode::Broker => return,
            Kind::Raw | Kind::Pending => frame.to_text_line().into(),
        };
        self.deliver(id, bytes);
    }

    /// Queues bytes for one client without ever blocking. An outbox over its bounds makes the
    /// hub wait for it before it takes more input.
    pub(super) fn deliver(&mut self, id: u64, bytes: Bytes) {
        self.flush_round();
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        if client.offer(Outgoing::one(bytes, 1, true)) {
            self.congested.entry(id).or_insert_with(Instant::now);
        }
    }

    /// Sends `frame` to every named client but `except`, encoded once per flavour.
    pub(super) fn broadcast(&mut self, frame: &ServerFrame, except: Option<u64>) {
        self.fan_out(frame, None, except);
    }

    /// As [`Hub::broadcast`], with the JSON encoding already made (a recorded message). In
    /// broker mode raw clients get only the text of chat messages, bare.
    pub(super) fn fan_out(
        &mut self,
        frame: &ServerFrame,
        json: Option<Bytes>,
        except: Option<u64>,
    ) {
        self.flush_round();
        let broker = self.settings.mode == Mode::Broker;
        let keeps = self.settings.mode.is_room();
        let (mut json, mut text): (Option<Bytes>, Option<Option<Bytes>>) = (json, None);
        let mut overflowing = Vec::new();
        for (&id, client) in &mut self.clients {
            let waiting = keeps && !client.named() && client.kind == Kind::Pending;
            if !(client.named() || waiting) || Some(id) == except {
                continue;
            }
            let bytes = match client.kind {
                Kind::Structured => json.get_or_insert_with(|| frame.to_json_line().into()),
                Kind::Raw | Kind::Pending => {
                    let text = text.get_or_insert_with(|| match frame {
                        ServerFrame::Msg { text, .. } if broker => Some(bare_line(text)),
                        _ if broker => None,
                        _ => Some(frame.to_text_line().into()),
                    });
                    match text {
                        Some(bytes) => bytes,
                        None => continue,
                    }
                }
            };
            if waiting {
                if client.unheard.keep(bytes, 1) {
                    overflowing.push(id);
                }
            } else if client.offer(Outgoing::one(Arc::clone(bytes), 1, true)) {
                self.congested.entry(id).or_insert_with(Instant::now);
            }
        }
        for id in overflowing {
            self.taken_as_raw(id);
        }
    }

    /// Queues the round's messages for every named member as one item, without the member's
    /// own lines when it saw them as it typed them.
    pub(super) fn flush_round(&mut self) {
        if self.round.pieces.is_empty() {
            return;
        }
        let round = std::mem::take(&mut self.round);
        let keeps = self.settings.mode.is_room();
        let mut overflowing = Vec::new();
        // One list per flavour, made once the first member of that flavour needs it.
        let (mut json, mut text) = (None, None);
        for (&id, client) in &mut self.clients {
            if keeps && !client.named() && client.kind == Kind::Pending {
                for piece in &round.pieces {
                    if client.unheard.keep(&piece.text, piece.lines) {
                        overflowing.push(id);
                    }
                }
                continue;
            }
            if !client.named() {
                continue;
            }
            let structured = client.kind == Kind::Structured;
            let list = if structured { &mut json } else { &mut text };
            let pieces = Arc::clone(list.get_or_insert_with(|| round.parts(structured)));
            let own: u32 = round
                .pieces
                .iter()
                .filter(|piece| piece.author_saw_it && piece.author == id)
                .map(|piece| piece.lines)
                .sum();
            if own == round.lines {
                continue;
            }
            let without = (own > 0).then_some(id);
            let outgoing = Outgoing {
                parts: Parts::Round { pieces, without },
                lines: round.lines - own,
                counted: true,
            };
            if client.offer(outgoing) {
                self.congested.entry(id).or_insert_with(Instant::now);
            }
        }
        overflowing.dedup();
        for id in overflowing {
            self.taken_as_raw(id);
        }
    }

    /// A connection that says nothing while more than an outbox's worth was kept for it is a
    /// listener: it joins, as after the join grace, and gets what was kept.
    fn taken_as_raw(&mut self, id: u64) {
        if self.clients.get(&id).is_some_and(|c| !c.named()) {
            self.join(id, None);
        }
    }

    /// What the room kept for a connection, queued for it now that it joins as raw (a
    /// structured client's was dropped at its hello).
    pub(super) fn release_unheard(&mut self, id: u64) {
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        let unheard = std::mem::take(&mut client.unheard);
        if unheard.parts.is_empty() {
            return;
        }
        let outgoing = Outgoing {
            parts: Parts::List(unheard.parts),
            lines: unheard.lines,
            counted: true,
        };
        if client.offer(outgoing) {
            self.congested.entry(id).or_insert_with(Instant::now);
        }
    }
}

/// Says on stderr that writing to the log failed (the first time: later failures are silent).
pub(super) fn log_failed(failure: Option<(PathBuf, io::Error)>) {
    if let Some((path, err)) = failure {
        eprintln!(
            "soquete: writing to the log {}: {err} (the room goes on; later failures are not reported)",
            path.display()
        );
    }
}

#[cfg(test)]
mod tests;
