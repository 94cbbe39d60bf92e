//! `--cluster`: a structured hello is admitted in two steps. First Redis is asked (by the
//! presence thread, batched with every other waiting hello: a reconnect storm costs one
//! pipeline) whether the hello's token resumes the session holding its name on any server, or
//! whether the name is free in the whole room; then, if the client saw more of the room than
//! this server's reader has read, it waits (a bounded time) for the reader. Only then is the
//! hello handled as a single server would, with Redis's verdict, and what the client missed is
//! replayed from this server's own history: no Redis read per client.

use std::time::{Duration, Instant};

use crate::chat::protocol::{Greeting, Secret, name_key, validate_name};
use crate::chat::server::cluster::{Op, Verdict};
use crate::chat::server::event::{Input, Kind};
use crate::chat::server::token::{Digest, new_token};

use super::Hub;
use super::waiting::{Admission, MAX_KEPT_INPUTS, Orphan};

/// How long a resuming client waits for the reader to reach the `seq` it saw.
pub const BEHIND_WAIT: Duration = Duration::from_secs(2);

impl Hub {
    /// The hello to handle now, or None when it waits (for Redis, or for the reader); a
    /// hello that is not a structured member's, or a room that is not shared, goes on at once.
    pub(super) fn admit(&mut self, id: u64, greeting: Greeting) -> Option<Greeting> {
        let Greeting::Structured {
            name,
            last_seq,
            epoch,
            token,
            probe: false,
        } = &greeting
        else {
            return Some(greeting);
        };
        let Some(link) = self
            .settings
            .cluster
            .as_ref()
            .filter(|_| self.settings.mode.is_room())
        else {
            return Some(greeting);
        };
        let client = self.clients.get_mut(&id)?;
        client.kind = Kind::Structured;
        if let Some(mut admission) = self.waiting.admitting.remove(&id) {
            // Asked already: the verdict is in. Is the reader where the client was?
            let here = epoch.as_ref().is_none_or(|e| e == self.history.epoch());
            let ahead = here && last_seq.is_some_and(|seq| seq > self.seq);
            let since = *admission.behind_since.get_or_insert_with(Instant::now);
            if ahead && since.elapsed() < BEHIND_WAIT && admission.verdict.is_some() {
                self.waiting.admitting.insert(id, admission);
                return None;
            }
            self.waiting.admitted.insert(id, admission);
            return Some(greeting);
        }
        let key = validate_name(name).ok().map(|name| name_key(&name));
        let fresh = new_token().map(|(token, digest)| (Secret::new(token), digest));
        let asked = key.as_ref().and_then(|key| {
            let op = Op::Admit {
                id,
                key: key.clone(),
                token: token.as_ref().map(|t| Digest::of(t.expose()).hex()),
                fresh: fresh.as_ref().map(|(_, d)| d.hex()).unwrap_or_default(),
            };
            link.presence.try_send(op).ok()
        });
        let admission = Admission {
            greeting,
            key,
            fresh,
            verdict: asked.is_none().then_some(Verdict::Unknown),
            behind_since: None,
            inputs: Vec::new(),
        };
        if asked.is_none() {
            self.waiting.admitted.insert(id, admission);
            let admission = self.waiting.admitted.get(&id)?;
            return Some(admission.greeting.clone());
        }
        self.waiting.admitting.insert(id, admission);
        None
    }

    /// Redis's answers: each hello waiting for one goes on (or waits for the reader), each
    /// `/nick` is done or refused.
    pub(super) fn verdicts(&mut self, verdicts: Vec<(u64, Verdict)>) {
        for (id, verdict) in verdicts {
            if let Some(orphan) = self.waiting.orphans.remove(&id) {
                self.give_back(orphan, &verdict);
                continue;
            }
            if let Some(wish) = self.waiting.nicks.remove(&id) {
                self.nick_decided(id, &wish, verdict);
                continue;
            }
            let Some(admission) = self.waiting.admitting.get_mut(&id) else {
                continue;
            };
            admission.verdict = Some(verdict);
            let greeting = admission.greeting.clone();
            self.first_line(id, greeting);
        }
    }

    /// Hellos waiting for the reader that it has reached (or that waited long enough).
    pub(super) fn caught_up(&mut self) {
        let ready: Vec<u64> = self
            .waiting
            .admitting
            .iter()
            .filter(|(_, a)| a.verdict.is_some() && a.behind_since.is_some())
            .map(|(&id, _)| id)
            .collect();
        for id in ready {
            let greeting = self.waiting.admitting[&id].greeting.clone();
            self.first_line(id, greeting);
        }
    }

    /// Keeps a waiting client's inputs for when it is in; false when it is not waiting.
    pub(super) fn keep_while_admitted(&mut self, id: u64, inputs: &mut Vec<Input>) -> bool {
        let Some(admission) = self.waiting.admitting.get_mut(&id) else {
            return false;
        };
        let room = MAX_KEPT_INPUTS.saturating_sub(admission.inputs.len());
        admission.inputs.extend(inputs.drain(..).take(room));
        true
    }

    /// After its hello was handled: its claim given back if it did not get the name, and the
    /// inputs it sent meanwhile handled.
    pub(super) fn admission_done(&mut self, id: u64) {
        let Some(admission) = self.waiting.admitted.remove(&id) else {
            return;
        };
        let got = self.clients.get(&id).map(|c| name_key(&c.name));
        if admission.verdict == Some(Verdict::Claimed) && got != admission.key {
            self.presence(Op::Release {
                key: admission.key.unwrap_or_default(),
                digest: admission.fresh.as_ref().map(|(_, d)| d.hex()),
            });
            if let Some((_, digest)) = &admission.fresh {
                self.presence(Op::EndSession {
                    digest: digest.hex(),
                });
            }
        }
        if !admission.inputs.is_empty() {
            self.inputs(id, admission.inputs);
        }
    }

    /// A client gone while it waited: what Redis gave it is given back (now, or when Redis
    /// answers).
    pub(super) fn admission_gone(&mut self, id: u64) {
        if let Some(wish) = self.waiting.nicks.remove(&id) {
            let key = validate_name(&wish)
                .map(|name| name_key(&name))
                .unwrap_or_default();
            let orphan = Orphan {
                key,
                fresh: None,
                token: None,
            };
            self.waiting.orphans.insert(id, orphan);
        }
        let Some(admission) = self.waiting.admitting.remove(&id) else {
            return;
        };
        if admission.verdict.is_some() {
            self.waiting.admitted.insert(id, admission);
            return self.admission_done(id);
        }
        let token = match &admission.greeting {
            Greeting::Structured { token, .. } => {
                token.as_ref().map(|t| Digest::of(t.expose()).hex())
            }
            _ => None,
        };
        let orphan = Orphan {
            key: admission.key.unwrap_or_default(),
            fresh: admission.fresh.map(|(_, digest)| digest.hex()),
            token,
        };
        self.waiting.orphans.insert(id, orphan);
    }

    /// What Redis gave a client already gone: a claimed name freed, a resumed session's name
    /// left reserved for it (as a drop leaves it).
    fn give_back(&mut self, orphan: Orphan, verdict: &Verdict) {
        match verdict {
            Verdict::Claimed => {
                if let Some(digest) = &orphan.fresh {
                    self.presence(Op::EndSession {
                        digest: digest.clone(),
                    });
                }
                self.presence(Op::Release {
                    key: orphan.key,
                    digest: orphan.fresh,
                });
            }
            Verdict::Resumed => {
                if let Some(digest) = orphan.token {
                    self.presence(Op::Dropped {
                        key: orphan.key,
                        digest,
                    });
                }
            }
            _ => {}
        }
    }

    /// Sends a request to the presence thread, without waiting (a full queue drops it: Redis is
    /// that far behind, and what it would refresh expires by itself).
    pub(super) fn presence(&self, op: Op) {
        if let Some(link) = &self.settings.cluster {
            let _ = link.presence.try_send(op);
        }
    }
}
