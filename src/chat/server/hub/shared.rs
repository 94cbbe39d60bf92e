//! `--cluster`: the room shared through Redis. What this server's members say is not stamped
//! here: each round's lines go to the publisher, and come back, numbered by the room, from the
//! stream's reader with every other server's ([`Hub::shared`]), to be kept in the history and
//! fanned out by the same path as a single server's rounds. A raw author still does not get
//! its own line back (it saw it as it typed): an entry from this server names its client.

use chrono::{DateTime, FixedOffset};

use crate::chat::protocol::{MsgEncoder, ServerFrame};
use crate::net::clock::now;

use crate::chat::protocol::{Member, name_key, validate_name};
use crate::chat::server::cluster::{Entry, Line, News, Op, Round, Verdict};
use crate::chat::server::event::Kind;

use super::Hub;
use super::client::Client;
use super::round::Piece;

/// The client id of the console in the room's entries (clients are numbered from 1).
pub const CONSOLE: u64 = 0;

/// What the members hear when the room splits, and when it is whole again.
pub const SPLIT: &str = "the room is split: its servers cannot reach their store (Redis) \
                         (this server's members still hear each other; the others' lines come \
                         when it is back)";
pub const WHOLE: &str = "the room is whole again: what the other servers said meanwhile follows";

/// Consecutive messages of the stream from one author at one time, fanned out as one piece.
struct Run {
    /// The client of this server that said them (None: another server's, or the console's).
    author: Option<u64>,
    time: DateTime<FixedOffset>,
    from: String,
    encoder: MsgEncoder,
    /// `(seq, text, action)`, in order.
    lines: Vec<(u64, String, bool)>,
}

impl Hub {
    /// At start: guests are numbered from this server's block, and the console is a member.
    pub(super) fn shared_start(&mut self) {
        let Some(link) = &self.settings.cluster else {
            return;
        };
        self.guests = link.guests;
        self.waiting.remote = link.remote.clone();
    }

    /// True when the room is shared (`--cluster`).
    pub(super) fn is_shared(&self) -> bool {
        self.settings.cluster.is_some()
    }

    /// Lines of one author (client `id`, or [`CONSOLE`]) for this round's publication.
    pub(super) fn said_shared(&mut self, id: u64, from: &str, lines: Vec<(String, bool)>) {
        for (text, action) in lines {
            let line = Line::Msg {
                from: from.to_string(),
                text,
                action,
                client: id,
                held: self.waiting.split,
            };
            self.unpublished.1 += line.weight();
            self.unpublished.0.push(line);
        }
    }

    /// A join, leave or nick notice for the other servers' members (this server's heard it).
    pub(super) fn notice_shared(&mut self, line: Line) {
        if self.is_shared() {
            self.unpublished.1 += line.weight();
            self.unpublished.0.push(line);
        }
    }

    /// Hands this round's lines to the publisher, without waiting; when it cannot take them
    /// (Redis is not keeping up), their authors are told they were not delivered.
    pub(super) fn publish_round(&mut self) {
        let Some(link) = &self.settings.cluster else {
            return;
        };
        let (lines, _) = std::mem::take(&mut self.unpublished);
        if lines.is_empty() {
            return;
        }
        let round = Round { time: now(), lines };
        let held = self.waiting.split.then(|| round.clone());
        if let Err(round) = link.publisher.offer(round) {
            let why = "the room's store (Redis) is not keeping up".to_string();
            let clients = crate::chat::server::cluster::authors(&round.lines);
            self.not_delivered(&clients, &why);
        } else if let Some(held) = held {
            self.provisional(held);
        }
    }

    /// A round said while the room is split, held for the stream: its messages are delivered at
    /// once to this server's members, provisional (`"seq":0,"held":true`, kept in no history),
    /// a run of one author's lines as one piece.
    fn provisional(&mut self, round: Round) {
        let broker = self.settings.mode == crate::chat::server::config::Mode::Broker;
        let mut lines = round.lines.into_iter().peekable();
        while let Some(line) = lines.next() {
            let Line::Msg {
                from,
                text,
                action,
                client,
                ..
            } = line
            else {
                continue;
            };
            let encoder = MsgEncoder::new(&round.time, &from);
            let (mut json, mut shown, mut count) = (Vec::new(), String::new(), 0);
            let mut next = Some((text, action));
            while let Some((text, action)) = next.take() {
                encoder.json_held(&text, action, &mut json);
                if broker {
                    shown.push_str(&text);
                    shown.push('\n');
                } else {
                    encoder.text_line(&text, action, &mut shown);
                }
                count += 1;
                if let Some(Line::Msg {
                    from: same,
                    client: by,
                    ..
                }) = lines.peek()
                    && *by == client
                    && *same == from
                    && let Some(Line::Msg { text, action, .. }) = lines.next()
                {
                    next = Some((text, action));
                }
            }
            if !broker {
                self.console.push(shown.clone());
            }
            let author_saw_it = self
                .clients
                .get(&client)
                .is_some_and(|c| c.kind != Kind::Structured);
            self.round.add(Piece {
                author: if client == CONSOLE { u64::MAX } else { client },
                author_saw_it,
                json: json.into(),
                text: shown.into_bytes().into(),
                lines: count,
            });
        }
    }

    /// Entries of the room's stream: messages kept and queued for the members in this round
    /// (a run of one author's lines of one time as one piece, as a single server's), notices of
    /// other servers' members announced.
    pub(super) fn shared(&mut self, entries: Vec<Entry>) {
        let ours = self.settings.cluster.as_ref().map(|l| l.server.clone());
        let mut run: Option<Run> = None;
        for entry in entries {
            match entry {
                Entry::Msg {
                    seq,
                    time,
                    from,
                    text,
                    action,
                    origin,
                    held,
                } => {
                    if seq <= self.seq {
                        continue;
                    }
                    if seq > self.seq + 1 {
                        let gone = seq - self.seq - 1;
                        self.console.event(&format!(
                            "! {gone} message(s) of the room were trimmed from Redis before this server read them"
                        ));
                    }
                    self.seq = seq;
                    let author = (Some(&origin.server) == ours.as_ref()).then_some(origin.client);
                    if held && author.is_some() {
                        // Said here while the room was split: this server's members heard it
                        // then. Kept with its number (a resume replays it), not sent again.
                        self.heard(run.take());
                        let mut json = Vec::new();
                        MsgEncoder::new(&time, &from).json_line(seq, &text, action, &mut json);
                        self.keep(seq, json.into());
                        continue;
                    }
                    let same = run
                        .as_ref()
                        .is_some_and(|r| r.author == author && r.time == time && r.from == from);
                    if !same {
                        self.heard(run.take());
                        run = Some(Run {
                            author,
                            encoder: MsgEncoder::new(&time, &from),
                            time,
                            from,
                            lines: Vec::new(),
                        });
                    }
                    if let Some(run) = run.as_mut() {
                        run.lines.push((seq, text, action));
                    }
                }
                Entry::Notice { frame, origin } => {
                    self.heard(run.take());
                    if Some(&origin.server) != ours.as_ref() {
                        self.remote_notice(&frame);
                        self.console.message(&frame);
                        if self.names.len() <= super::members::ANNOUNCE_LIMIT {
                            self.broadcast(&frame, None);
                        }
                    }
                }
            }
        }
        self.heard(run.take());
        self.caught_up();
    }

    /// The other servers' members as a notice changes them (until the next beat says).
    fn remote_notice(&mut self, frame: &ServerFrame) {
        let remote = &mut self.waiting.remote;
        match frame {
            ServerFrame::Join { name, addr, .. } => remote.push(Member {
                name: name.clone(),
                addr: addr.clone(),
                kind: "-".into(),
            }),
            ServerFrame::Leave { name, .. } => remote.retain(|m| &m.name != name),
            ServerFrame::Nick { old, new, .. } => {
                for member in remote.iter_mut().filter(|m| &m.name == old) {
                    member.name = new.clone();
                }
            }
            _ => {}
        }
    }

    /// A run of one author's messages of the room, numbered: kept, shown on the console, and
    /// queued for the members as one piece (but for a raw `author` of this server, who saw them
    /// as it typed them).
    fn heard(&mut self, run: Option<Run>) {
        let Some(Run {
            author,
            encoder,
            lines,
            ..
        }) = run
        else {
            return;
        };
        let (json, text, count) = self.encode_run(&encoder, lines);
        let author_saw_it = author
            .and_then(|id| self.clients.get(&id))
            .is_some_and(|client| client.kind != Kind::Structured);
        self.round.add(Piece {
            author: author.unwrap_or(u64::MAX),
            author_saw_it,
            json,
            text,
            lines: count,
        });
    }

    /// What the cluster's threads say of Redis.
    pub(super) fn cluster_news(&mut self, news: News) {
        let shown = self
            .settings
            .cluster
            .as_ref()
            .map(|l| l.shown.clone())
            .unwrap_or_default();
        match news {
            News::ReaderLost(why) => {
                self.waiting.split = true;
                self.console.event(&format!(
                    "! lost Redis at {shown} ({why}): the room is split until it is back"
                ));
                let text = SPLIT.to_string();
                self.broadcast(&ServerFrame::Notice { text }, None);
            }
            News::ReaderBack => {
                self.waiting.split = false;
                self.console.event(&format!(
                    "Redis at {shown} is back: the room is whole again"
                ));
                let text = WHOLE.to_string();
                self.broadcast(&ServerFrame::Notice { text }, None);
            }
            News::Unpublished { clients, why } => self.not_delivered(&clients, &why),
            News::Verdicts(verdicts) => self.verdicts(verdicts),
            News::Remote(members) => self.waiting.remote = members,
        }
    }

    /// Tells these clients (and the console) that their last lines reached no one.
    fn not_delivered(&mut self, clients: &[u64], why: &str) {
        self.console.event(&format!(
            "! lines of {} member(s) not delivered: {why}",
            clients.len()
        ));
        let frame = ServerFrame::Error {
            code: "not_delivered".into(),
            message: format!("your last line(s) were not delivered: {why}; say them again"),
        };
        for &id in clients {
            self.send(id, &frame);
        }
    }

    /// A member of this server joined: the others' `/who` lists it; a raw member's name (a
    /// session's is held with its session) is claimed in the room.
    pub(super) fn joined_shared(&mut self, id: u64) {
        let Some(client) = self.clients.get(&id).filter(|_| self.is_shared()) else {
            return;
        };
        let (name, about) = (
            client.name.clone(),
            format!("{} {}", client.peer, client.kind.label()),
        );
        let tokenless = client.token.is_none();
        if tokenless {
            self.presence(Op::Claim {
                id: None,
                key: name_key(&name),
            });
        }
        self.presence(Op::Member { name, about });
    }

    /// A member of this server was renamed from `old`: the old name is free in the room, the
    /// new one listed (and claimed, for a raw member).
    pub(super) fn renamed_shared(&mut self, id: u64, old: &str) {
        if !self.is_shared() {
            return;
        }
        self.presence(Op::Gone { name: old.into() });
        self.presence(Op::Release {
            key: name_key(old),
            digest: None,
        });
        self.joined_shared(id);
    }

    /// A member of this server left: a raw member's name is free in the room (a session's is
    /// reserved, or freed, with its session).
    pub(super) fn left_shared(&mut self, client: &Client) {
        if !self.is_shared() {
            return;
        }
        self.presence(Op::Gone {
            name: client.name.clone(),
        });
        if client.token.is_none() {
            self.presence(Op::Release {
                key: name_key(&client.name),
                digest: None,
            });
        }
    }

    /// A `/nick` in a shared room: Redis is asked whether the name is free in the whole room
    /// (the answer comes to [`Hub::nick_decided`]); false when there is nothing to ask (the
    /// name is not valid, taken here, or the client's own: the hub decides as it would alone).
    pub(super) fn ask_nick(&mut self, id: u64, wish: &str) -> bool {
        let Some(link) = &self.settings.cluster else {
            return false;
        };
        let Ok(name) = validate_name(wish) else {
            return false;
        };
        let key = name_key(&name);
        let own = self
            .clients
            .get(&id)
            .is_some_and(|c| name_key(&c.name) == key);
        if own || self.waiting.nicks.contains_key(&id) || self.name_taken_here(&name, id) {
            return false;
        }
        let asked = link.presence.try_send(Op::Claim { id: Some(id), key });
        if asked.is_ok() {
            self.waiting.nicks.insert(id, wish.to_string());
        }
        asked.is_ok()
    }

    /// Redis's answer to a `/nick`.
    pub(super) fn nick_decided(&mut self, id: u64, wish: &str, verdict: Verdict) {
        if let Verdict::Taken = verdict {
            return self.send(id, &super::members::name_taken(wish, wish));
        }
        self.nick_now(id, wish);
        let key = validate_name(wish)
            .map(|name| name_key(&name))
            .unwrap_or_default();
        let got = self
            .clients
            .get(&id)
            .is_some_and(|c| name_key(&c.name) == key);
        if verdict == Verdict::Claimed && !got {
            self.presence(Op::Release { key, digest: None });
        }
    }
}

#[cfg(test)]
mod tests;
