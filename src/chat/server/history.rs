//! The room's memory: the last `--history` messages, replayed to a client that reconnects and
//! says which `seq` it saw last; the room's epoch, which says whose `seq` that is; and the
//! `--log` file that keeps every message, the epoch, and the sessions that may resume (by their
//! token's SHA-256 only), across restarts. Owned by the hub thread, like the rest of the room.

use std::collections::VecDeque;
use std::collections::hash_map::RandomState;
use std::fs::{File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::chat::protocol::{MAX_FRAME_BYTES, ServerFrame};

use super::outbox::Bytes;
use super::token::{OpenSession, OpenSessions};

/// Longest epoch read back from a log: longer is not one of ours.
const MAX_EPOCH_CHARS: usize = 64;

/// The log's line that names the room, `{"type":"epoch","epoch":"…"}`: written when the log
/// starts, read back at each start so that the room keeps its epoch.
#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename = "epoch")]
struct EpochLine {
    epoch: String,
}

/// What reloading a log found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reloaded {
    /// Messages read back (all of them, not only the ones kept).
    pub messages: u64,
    /// The highest `seq` in the log: numbering goes on from it.
    pub last_seq: u64,
    /// Lines that are not a message frame, or out of order; they are skipped.
    pub skipped: u64,
    /// Bytes of a last line without its newline (the server was killed mid-write), cut off so
    /// the next message starts on a line of its own.
    pub torn: u64,
}

/// The kept messages, the room's epoch and the log file.
pub struct History {
    /// `(seq, the msg frame as a JSON line)`, oldest first, seqs increasing.
    kept: VecDeque<(u64, Bytes)>,
    limit: usize,
    /// The room's identity: new at each start, unless the log carries it over.
    epoch: String,
    log: Option<Log>,
    /// Sessions the log left open, until the hub takes them.
    sessions: Vec<OpenSession>,
}

struct Log {
    path: PathBuf,
    file: File,
    /// A write already failed and was reported; later failures are counted silently.
    failed: bool,
}

impl History {
    /// An empty history keeping at most `limit` messages, in a new room (a new epoch).
    pub fn new(limit: usize) -> History {
        History {
            kept: VecDeque::with_capacity(limit.min(4096)),
            limit,
            epoch: new_epoch(),
            log: None,
            sessions: Vec::new(),
        }
    }

    /// The room's epoch, which a `welcome` carries.
    pub fn epoch(&self) -> &str {
        &self.epoch
    }

    /// Takes the epoch of a room kept elsewhere (`--cluster`: Redis's), if it is one as we
    /// write them; says whether it was.
    pub fn set_epoch(&mut self, epoch: &str) -> bool {
        let fine = is_epoch(epoch);
        if fine {
            self.epoch = epoch.to_string();
        }
        fine
    }

    /// Opens (or creates) the log at `path`, keeps its last messages and its epoch (or writes
    /// ours into a log that has none), and appends to it from now on. A torn last line is cut
    /// off; other unreadable lines are skipped and counted.
    pub fn open_log(&mut self, path: &Path) -> io::Result<Reloaded> {
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)?;
        let mut found = Reloaded::default();
        let mut reader = BufReader::new(&mut file);
        let mut line = Vec::new();
        let mut complete_len = 0u64;
        let mut epoch = None;
        let mut sessions = OpenSessions::default();
        loop {
            line.clear();
            let n = reader.read_until(b'\n', &mut line)?;
            if n == 0 {
                break;
            }
            if line.last() != Some(&b'\n') {
                found.torn = n as u64;
                break;
            }
            complete_len += n as u64;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<ServerFrame>(&line) {
                Ok(frame @ ServerFrame::Msg { seq, .. }) if seq > found.last_seq => {
                    // Its number is taken, kept or not: a restarted room never gives it again.
                    found.last_seq = seq;
                    let json = frame.to_json_line();
                    // Nothing longer than a client reads (a hand-edited log) is ever replayed.
                    if json.len() <= MAX_FRAME_BYTES {
                        found.messages += 1;
                        self.keep(seq, json.into());
                    } else {
                        found.skipped += 1;
                    }
                }
                _ => match serde_json::from_slice::<EpochLine>(&line) {
                    Ok(line) if is_epoch(&line.epoch) => epoch = Some(line.epoch),
                    _ if sessions.read(&line) => {}
                    _ => found.skipped += 1,
                },
            }
        }
        drop(reader);
        self.sessions = sessions.into_list();
        if found.torn > 0 {
            file.set_len(complete_len)?;
        }
        file.seek(SeekFrom::End(0))?;
        match epoch {
            Some(epoch) => self.epoch = epoch,
            None => {
                let line = EpochLine {
                    epoch: self.epoch.clone(),
                };
                let mut bytes = serde_json::to_vec(&line).expect("strings always serialize");
                bytes.push(b'\n');
                file.write_all(&bytes)?;
            }
        }
        self.log = Some(Log {
            path: path.to_path_buf(),
            file,
            failed: false,
        });
        Ok(found)
    }

    /// Keeps a message and appends it to the log, in one write (so it reaches the OS at once).
    /// Returns the error of the first failed write only; the room goes on without its log.
    pub fn record(&mut self, seq: u64, json: Bytes) -> Option<(PathBuf, io::Error)> {
        let mut failure = None;
        if let Some(log) = &mut self.log
            && let Err(err) = log.file.write_all(&json)
            && !std::mem::replace(&mut log.failed, true)
        {
            failure = Some((log.path.clone(), err));
        }
        self.keep(seq, json);
        failure
    }

    /// Appends a line that is not a message (a session's) to the log, if there is one; as
    /// [`History::record`], returns the error of the first failed write only.
    pub fn append(&mut self, line: &[u8]) -> Option<(PathBuf, io::Error)> {
        let log = self.log.as_mut()?;
        match log.file.write_all(line) {
            Err(err) if !std::mem::replace(&mut log.failed, true) => Some((log.path.clone(), err)),
            _ => None,
        }
    }

    /// The sessions the log left open (begun, never ended), oldest first: once.
    pub fn take_sessions(&mut self) -> Vec<OpenSession> {
        std::mem::take(&mut self.sessions)
    }

    fn keep(&mut self, seq: u64, json: Bytes) {
        if self.limit == 0 {
            return;
        }
        if self.kept.len() == self.limit {
            self.kept.pop_front();
        }
        self.kept.push_back((seq, json));
    }

    /// What a client that last saw `last_seq` missed, when the room is at `current`: the kept
    /// messages after it, in order, and how many before those are no longer kept.
    pub fn since(&self, last_seq: u64, current: u64) -> (Vec<Bytes>, u64) {
        if last_seq >= current {
            return (Vec::new(), 0);
        }
        let first = self.kept.partition_point(|(seq, _)| *seq <= last_seq);
        let replay: Vec<Bytes> = self
            .kept
            .range(first..)
            .map(|(_, json)| json.clone())
            .collect();
        let oldest_replayed = self.kept.get(first).map_or(current + 1, |(seq, _)| *seq);
        (replay, oldest_replayed - last_seq - 1)
    }

    /// Pushes the log to the disk (at shutdown).
    pub fn flush(&mut self) -> io::Result<()> {
        match &mut self.log {
            Some(log) => log.file.sync_data(),
            None => Ok(()),
        }
    }
}

/// A new room's epoch: 16 hex digits from the standard library's per-process random keys and
/// the clock, so that two starts of a server never share one.
fn new_epoch() -> String {
    let mut hasher = RandomState::new().build_hasher();
    let since = SystemTime::now().duration_since(UNIX_EPOCH);
    hasher.write_u128(since.map_or(0, |time| time.as_nanos()));
    hasher.write_u32(std::process::id());
    format!("{:016x}", hasher.finish())
}

/// True for an epoch as we write them (an edited log may hold anything).
fn is_epoch(epoch: &str) -> bool {
    (1..=MAX_EPOCH_CHARS).contains(&epoch.len())
        && epoch
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::clock::now;

    fn msg(seq: u64) -> Bytes {
        ServerFrame::Msg {
            seq,
            time: now(),
            from: "ana".into(),
            text: format!("m{seq}"),
            action: false,
            held: false,
        }
        .to_json_line()
        .into()
    }

    fn seqs(replay: &[Bytes]) -> Vec<u64> {
        replay
            .iter()
            .map(|json| {
                serde_json::from_slice::<serde_json::Value>(json).unwrap()["seq"]
                    .as_u64()
                    .unwrap()
            })
            .collect()
    }

    #[test]
    fn a_resume_gets_what_it_missed_and_a_count_of_what_is_gone() {
        let mut history = History::new(3);
        for seq in 1..=5 {
            history.record(seq, msg(seq));
        }
        let (replay, missed) = history.since(3, 5);
        assert_eq!((seqs(&replay), missed), (vec![4, 5], 0));
        let (replay, missed) = history.since(0, 5);
        assert_eq!((seqs(&replay), missed), (vec![3, 4, 5], 2));
        assert_eq!(history.since(5, 5).0.len(), 0);
        assert_eq!(
            history.since(9, 5),
            (Vec::new(), 0),
            "from another server's numbering"
        );
        let none = History::new(0);
        assert_eq!(none.since(2, 5), (Vec::new(), 3));
    }

    #[test]
    fn a_log_is_reloaded_past_a_bad_line_and_a_torn_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("room.log");
        let mut text = Vec::new();
        for seq in 1..=4 {
            text.extend_from_slice(&msg(seq));
        }
        text.extend_from_slice(b"not json\n");
        text.extend_from_slice(&msg(5));
        text.extend_from_slice(br#"{"type":"msg","seq":6,"ti"#);
        std::fs::write(&path, &text).unwrap();

        let mut history = History::new(2);
        let found = history.open_log(&path).unwrap();
        assert_eq!(
            found,
            Reloaded {
                messages: 5,
                last_seq: 5,
                skipped: 1,
                torn: 25
            }
        );
        assert_eq!(seqs(&history.since(0, 5).0), [4, 5]);
        history.record(6, msg(6));
        history.flush().unwrap();

        let mut again = History::new(10);
        let found = again.open_log(&path).unwrap();
        assert_eq!((found.last_seq, found.skipped, found.torn), (6, 1, 0));
        assert_eq!(seqs(&again.since(3, 6).0), [4, 5, 6]);
    }

    #[test]
    fn a_message_too_long_to_replay_still_takes_its_number() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("room.log");
        let long = ServerFrame::Msg {
            seq: 2,
            time: now(),
            from: "server".into(),
            text: "x".repeat(MAX_FRAME_BYTES),
            action: false,
            held: false,
        }
        .to_json_line();
        std::fs::write(&path, [&msg(1)[..], &long].concat()).unwrap();
        let found = History::new(10).open_log(&path).unwrap();
        assert_eq!((found.messages, found.last_seq, found.skipped), (1, 2, 1));
    }

    #[test]
    fn a_room_keeps_its_epoch_in_its_log_and_a_new_start_without_it_is_a_new_room() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("room.log");
        let (first, second) = (History::new(5), History::new(5));
        assert_ne!(first.epoch(), second.epoch(), "each start is a new room");
        assert!(is_epoch(first.epoch()), "{}", first.epoch());

        let mut logged = History::new(5);
        let epoch = logged.epoch().to_string();
        logged.open_log(&path).unwrap();
        logged.record(1, msg(1));
        let mut reloaded = History::new(5);
        let found = reloaded.open_log(&path).unwrap();
        assert_eq!((found.messages, found.skipped), (1, 0));
        assert_eq!(reloaded.epoch(), epoch, "the log carries the room over");
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2, "the epoch is written once: {text}");
        assert!(text.starts_with(&format!(r#"{{"type":"epoch","epoch":"{epoch}"}}"#)));

        std::fs::write(
            &path,
            r#"{"type":"epoch","epoch":"\u001b[31m"}"#.to_owned() + "\n",
        )
        .unwrap();
        let mut edited = History::new(5);
        assert_eq!(edited.open_log(&path).unwrap().skipped, 1);
        assert!(is_epoch(edited.epoch()));
    }
}
