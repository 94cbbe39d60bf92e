//! What the received lines count for: soquete's labels stripped and its notices counted, each
//! test line checked against its sender's sequence (lost, backwards, corrupted, wrong sender),
//! deliveries timed (window, 100 ms buckets, latency samples), hellos ticked off during setup.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use crate::bench::{Bench, Kind, Stamp};
use crate::line::{Body, parse_body};

/// How many offending lines are kept as samples for the report.
const SAMPLES: usize = 8;
/// How many distinct "too slow" notices are kept.
const SLOW_NOTICES: usize = 20;
/// How many distinct notices (and error lines) are counted, their digits made `N`.
const NOTICE_KINDS: usize = 20;
/// Deliveries later than this many buckets into the phase are not put on the timeline.
const MAX_BUCKETS: usize = 100_000;

/// The counts of one phase (the setup's are thrown away).
#[derive(Default)]
pub struct Tally {
    pub delivered: u64,
    pub delivered_in_window: u64,
    pub lost: u64,
    pub backwards: u64,
    pub corrupted: u64,
    pub wrong_sender: u64,
    pub notices: u64,
    pub errors: u64,
    /// Test lines the listeners received, and the gaps in what they received.
    pub listener_delivered: u64,
    pub listener_lost: u64,
    /// How many of each kind of notice and error line came (its numbers made `N`).
    pub notice_kinds: BTreeMap<String, u64>,
    pub samples: Vec<String>,
    /// When (seconds into the phase) each distinct "too slow" notice first came, and its text.
    pub slow_notices: Vec<(f64, String)>,
    pub first_delivery: Option<Duration>,
    pub last_delivery: Option<Duration>,
    /// Deliveries per 100 ms of the phase.
    pub buckets: Vec<u64>,
    /// Send-to-receive times in ns, one per delivery after the warm-up.
    pub latencies: Vec<u64>,
}

impl Tally {
    fn sample(&mut self, what: &str, line: &[u8]) {
        if self.samples.len() < SAMPLES {
            let text = String::from_utf8_lossy(&line[..line.len().min(120)]);
            self.samples.push(format!("{what}: {text}"));
        }
    }

    /// Counts a notice or error line by its kind: the line with every run of digits made `N`
    /// (the first [`NOTICE_KINDS`] kinds; the others under `other`).
    pub fn count_kind(&mut self, line: &[u8]) {
        let text = String::from_utf8_lossy(&line[..line.len().min(200)]);
        let mut kind = String::with_capacity(text.len());
        for ch in text.chars() {
            if !ch.is_ascii_digit() {
                kind.push(ch);
            } else if !kind.ends_with('N') {
                kind.push('N');
            }
        }
        if self.notice_kinds.len() >= NOTICE_KINDS && !self.notice_kinds.contains_key(&kind) {
            kind = "other".into();
        }
        *self.notice_kinds.entry(kind).or_default() += 1;
    }

    /// Adds another thread's tally of the same phase to this one.
    pub fn absorb(&mut self, u: Tally) {
        self.delivered += u.delivered;
        self.delivered_in_window += u.delivered_in_window;
        self.lost += u.lost;
        self.backwards += u.backwards;
        self.corrupted += u.corrupted;
        self.wrong_sender += u.wrong_sender;
        self.notices += u.notices;
        self.errors += u.errors;
        self.listener_delivered += u.listener_delivered;
        self.listener_lost += u.listener_lost;
        for (kind, n) in u.notice_kinds {
            *self.notice_kinds.entry(kind).or_default() += n;
        }
        self.samples.extend(u.samples);
        self.samples.truncate(SAMPLES);
        self.slow_notices.extend(u.slow_notices);
        self.first_delivery = match (self.first_delivery, u.first_delivery) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last_delivery = self.last_delivery.max(u.last_delivery);
        if self.buckets.len() < u.buckets.len() {
            self.buckets.resize(u.buckets.len(), 0);
        }
        for (sum, add) in self.buckets.iter_mut().zip(u.buckets) {
            *sum += add;
        }
        self.latencies.extend(u.latencies);
    }
}

impl Bench {
    /// Counts one line client `local` received (without its newline).
    pub fn on_line(&mut self, local: usize, line: &[u8], now: Stamp) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let r = local;
        let me = self.clients[local].id;
        self.clients[r].lines_in += 1;
        let body = match self.kind {
            Kind::Ncat | Kind::Broker => line,
            Kind::Soquete => {
                if line.starts_with(b"* ") || line == b"*" {
                    self.clients[r].greeted = true;
                    self.tally.notices += 1;
                    self.tally.count_kind(line);
                    if line.starts_with(b"* bye") {
                        self.clients[r].bye = Some(String::from_utf8_lossy(line).into_owned());
                    }
                    if line.windows(8).any(|w| w == b"too slow") {
                        let at = now.at.as_secs_f64();
                        let text = String::from_utf8_lossy(line).into_owned();
                        let slow = &mut self.tally.slow_notices;
                        if slow.len() < SLOW_NOTICES && !slow.iter().any(|(_, t)| *t == text) {
                            slow.push((at, text));
                        }
                    }
                    return;
                }
                if line.starts_with(b"! ") {
                    self.tally.errors += 1;
                    self.tally.count_kind(line);
                    self.tally.sample("error line", line);
                    return;
                }
                if line.len() > 12 && line[0] == b'[' && line[9] == b']' && &line[10..12] == b" <" {
                    // The generator's clients are all guest-N: the first '>' ends the name.
                    match memchr::memchr(b'>', &line[12..]) {
                        Some(p) if line.get(12 + p + 1) == Some(&b' ') => &line[12 + p + 2..],
                        _ => {
                            self.tally.corrupted += 1;
                            self.tally.sample("corrupted", line);
                            return;
                        }
                    }
                } else {
                    if line.is_empty() {
                        return;
                    }
                    self.tally.corrupted += 1;
                    self.tally.sample("corrupted", line);
                    return;
                }
            }
        };
        match parse_body(body, self.size) {
            Some(Body::Hello(from)) => {
                if self.clients[r].talker
                    && from < self.n
                    && from != me
                    && !self.hello_seen[me * self.n + from]
                {
                    self.hello_seen[me * self.n + from] = true;
                    self.hellos_missing -= 1;
                }
            }
            Some(Body::Test { from, seq, sent_ns }) => {
                let listener = self.clients[r].listener;
                if !self.clients[r].talker && !listener {
                    return;
                }
                if from >= self.n || from == me {
                    self.tally.wrong_sender += 1;
                    self.tally.sample("wrong sender", line);
                    return;
                }
                let slot = &mut self.expected[me * self.n + from];
                if seq < *slot {
                    self.tally.backwards += 1;
                    return;
                }
                let gap = u64::from(seq - *slot);
                *slot = seq + 1;
                if listener {
                    self.tally.listener_lost += gap;
                    self.tally.listener_delivered += 1;
                    return;
                }
                self.tally.lost += gap;
                self.tally.delivered += 1;
                let at = now.at;
                if at <= self.window {
                    self.tally.delivered_in_window += 1;
                }
                self.tally.first_delivery.get_or_insert(at);
                self.tally.last_delivery = Some(at);
                let bucket = now.bucket;
                if bucket < MAX_BUCKETS {
                    if self.tally.buckets.len() <= bucket {
                        self.tally.buckets.resize(bucket + 1, 0);
                    }
                    self.tally.buckets[bucket] += 1;
                }
                if self.record_latency && sent_ns >= self.warmup_ns {
                    self.tally
                        .latencies
                        .push(now.received_ns.saturating_sub(sent_ns));
                }
            }
            None => {
                self.tally.corrupted += 1;
                self.tally.sample("corrupted", line);
            }
        }
    }

    /// Counts as lost whatever a reading talker never got from another talker; returns how many
    /// lines the talkers were due in all.
    pub fn finish_tally(&mut self, talkers: usize) -> u64 {
        let mut expected_total = 0u64;
        for r in 0..talkers {
            for s in 0..talkers {
                if r == s || !self.clients[s].talker {
                    continue;
                }
                let sent = self.clients[s].next_seq;
                expected_total += u64::from(sent);
                let got = self.expected[r * self.n + s];
                self.tally.lost += u64::from(sent.saturating_sub(got));
            }
        }
        expected_total
    }

    /// Counts as lost whatever the `listeners` never got from the first `talkers` clients;
    /// returns how many lines they were due in all.
    pub fn finish_listeners(&mut self, listeners: Range<usize>, talkers: usize) -> u64 {
        let mut expected_total = 0u64;
        for r in listeners {
            for s in 0..talkers {
                let sent = self.clients[s].next_seq;
                expected_total += u64::from(sent);
                let got = self.expected[r * self.n + s];
                self.tally.listener_lost += u64::from(sent.saturating_sub(got));
            }
        }
        expected_total
    }
}
