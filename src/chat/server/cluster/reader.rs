//! The reader: one thread per server that follows the room's stream (`XREAD BLOCK` from the
//! last entry it saw) and hands the hub each batch of entries as one event, every server's
//! alike, so that a message said here reaches this server's clients by the same path as one
//! said on another server: one order everywhere, the stream's.

use std::time::Duration;

use chrono::DateTime;
use crossbeam_channel::Sender;
use redis::streams::StreamId;

use crate::chat::protocol::ServerFrame;

use crate::chat::server::event::Event;

use super::Known;
use super::entry::{Entry, News, Origin, clean};
use super::setup::ClusterSetup;
use super::store::{Store, field, why};

/// The pause before trying Redis again, doubling up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);

/// Follows the stream from `last_id` until the hub is gone; when Redis goes away, says so once
/// and connects again (with pauses), going on from the same entry: nothing is skipped.
pub fn follow(
    setup: &ClusterSetup,
    (store, room, server): (Store, &Known, &str),
    mut last_id: String,
    events: &Sender<Event>,
) {
    // Where this reader is, told to Redis with every read (the publishers wait for it).
    let mut store = Some(store);
    let mut pause = RETRY_FIRST;
    let mut lost = false;
    loop {
        let Some(reading) = store.as_mut() else {
            std::thread::sleep(pause);
            pause = (pause * 2).min(RETRY_MAX);
            match Store::open(setup).and_then(|s| s.for_reading().map_err(|e| lost_error(&e))) {
                Ok(opened) => store = Some(opened),
                Err(_) => continue,
            }
            continue;
        };
        let mark = (server, room.read_so_far());
        match reading.read_after(&last_id, mark) {
            Ok(ids) => {
                pause = RETRY_FIRST;
                if std::mem::take(&mut lost)
                    && events.send(Event::Cluster(News::ReaderBack)).is_err()
                {
                    return;
                }
                let Some(last) = ids.last() else { continue };
                last_id = last.id.clone();
                let entries: Vec<Entry> = ids.iter().flat_map(parse).collect();
                for entry in &entries {
                    if let Entry::Msg { seq, .. } = entry {
                        room.read(*seq);
                    }
                }
                if !entries.is_empty() && events.send(Event::Shared(entries)).is_err() {
                    return;
                }
            }
            Err(err) => {
                store = None;
                if !std::mem::replace(&mut lost, true)
                    && events
                        .send(Event::Cluster(News::ReaderLost(why(&err))))
                        .is_err()
                {
                    return;
                }
            }
        }
    }
}

fn lost_error(err: &redis::RedisError) -> crate::error::Error {
    crate::error::Error::io("reading the room", std::io::Error::other(why(err)))
}

/// An entry as the hub takes it; None for one that is not ours (left out).
pub fn parse(entry: &StreamId) -> Vec<Entry> {
    match field(entry, "msgs") {
        Some(msgs) => messages(entry, &msgs).unwrap_or_default(),
        None => notice(entry).into_iter().collect(),
    }
}

/// An entry of messages: `seq` the first one's number, `n` how many, `msgs` a JSON array of
/// `[from, text, action, client, held]` (`held` may be missing: false); nothing when it is not
/// one as the servers write them.
fn messages(entry: &StreamId, msgs: &str) -> Option<Vec<Entry>> {
    let time = DateTime::parse_from_rfc3339(&field(entry, "time")?).ok()?;
    let server = field(entry, "server")?;
    let first: u64 = field(entry, "seq")?.parse().ok()?;
    let n: usize = field(entry, "n")?.parse().ok()?;
    let msgs: Vec<Packed> = serde_json::from_str(msgs).ok()?;
    if msgs.len() != n || n == 0 {
        return None;
    }
    let entries = msgs
        .into_iter()
        .zip(first..)
        .map(
            |(Packed(from, text, action, client, held), seq)| Entry::Msg {
                seq,
                held,
                time,
                from: clean(&from),
                text: clean(&text),
                action,
                origin: Origin {
                    server: server.clone(),
                    client,
                },
            },
        )
        .collect();
    Some(entries)
}

/// One message of an entry as the reader takes it (a fifth element, `held`, may be missing).
#[derive(serde::Deserialize)]
struct Packed(String, String, bool, u64, #[serde(default)] bool);

/// A join, leave or nick entry.
fn notice(entry: &StreamId) -> Option<Entry> {
    let text = |name: &str| field(entry, name).map(|value| clean(&value));
    let time = DateTime::parse_from_rfc3339(&field(entry, "time")?).ok()?;
    let origin = Origin {
        server: field(entry, "server")?,
        client: field(entry, "client")?.parse().ok()?,
    };
    let kind = field(entry, "kind")?;
    let (a, b) = (text("a")?, text("b")?);
    let frame = match kind.as_str() {
        "join" => ServerFrame::Join {
            time,
            name: a,
            addr: b,
        },
        "leave" => ServerFrame::Leave {
            time,
            name: a,
            reason: b,
        },
        "nick" => ServerFrame::Nick {
            time,
            old: a,
            new: b,
        },
        _ => return None,
    };
    Some(Entry::Notice { frame, origin })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::protocol::MAX_LINE_BYTES;

    fn entry(fields: &[(&str, &str)]) -> StreamId {
        StreamId {
            id: "1-0".into(),
            map: fields
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        redis::Value::BulkString(v.as_bytes().to_vec()),
                    )
                })
                .collect(),
            ..StreamId::default()
        }
    }

    const TIME: (&str, &str) = ("time", "2026-11-30T16:00:00+00:00");

    #[test]
    fn an_entry_of_messages_is_read_with_their_numbers_and_cleaned_for_a_terminal() {
        let long = "x".repeat(MAX_LINE_BYTES * 2);
        let msgs = serde_json::json!([
            ["ana", "oi\u{1b}]0;pwned\u{7}\ntchau", true, 3],
            ["bia", long, false, 4]
        ])
        .to_string();
        let read = parse(&entry(&[
            ("seq", "7"),
            ("n", "2"),
            TIME,
            ("server", "ab12"),
            ("msgs", &msgs),
        ]));
        let [
            Entry::Msg {
                seq,
                text,
                action,
                origin,
                ..
            },
            Entry::Msg {
                seq: second,
                text: cut,
                ..
            },
        ] = &read[..]
        else {
            panic!("{read:?}");
        };
        assert_eq!((*seq, *action, *second), (7, true, 8));
        assert_eq!(
            origin,
            &Origin {
                server: "ab12".into(),
                client: 3
            }
        );
        assert!(!text.contains('\u{1b}') && !text.contains('\n'), "{text:?}");
        assert_eq!(cut.len(), MAX_LINE_BYTES);
        let short = [
            ("seq", "7"),
            ("n", "3"),
            TIME,
            ("server", "s"),
            ("msgs", &msgs),
        ];
        assert!(
            parse(&entry(&short)).is_empty(),
            "n says 3, the array has 2"
        );
        assert!(
            read.iter()
                .all(|e| matches!(e, Entry::Msg { held: false, .. })),
            "four elements: not held"
        );
        let held = serde_json::json!([["ana", "oi", false, 3, true]]).to_string();
        let read = parse(&entry(&[
            ("seq", "9"),
            ("n", "1"),
            TIME,
            ("server", "ab12"),
            ("msgs", &held),
        ]));
        assert!(
            matches!(
                &read[..],
                [Entry::Msg {
                    seq: 9,
                    held: true,
                    ..
                }]
            ),
            "{read:?}"
        );
    }

    #[test]
    fn notices_are_read_and_entries_not_ours_are_left_out() {
        let join = parse(&entry(&[
            ("kind", "join"),
            TIME,
            ("server", "ab12"),
            ("client", "3"),
            ("a", "ana"),
            ("b", "127.0.0.1:5"),
            ("c", "raw"),
        ]));
        assert!(matches!(
            &join[..],
            [Entry::Notice { frame: ServerFrame::Join { name, .. }, .. }] if name == "ana"
        ));
        for fields in [
            &[
                ("kind", "ban"),
                TIME,
                ("server", "s"),
                ("client", "1"),
                ("a", "x"),
                ("b", "y"),
            ][..],
            &[
                ("seq", "x"),
                TIME,
                ("server", "s"),
                ("client", "1"),
                ("from", "a"),
                ("text", "t"),
            ],
            &[
                ("seq", "1"),
                ("time", "yesterday"),
                ("server", "s"),
                ("client", "1"),
            ],
            &[
                ("seq", "1"),
                TIME,
                ("client", "1"),
                ("from", "a"),
                ("text", "t"),
            ],
        ] {
            assert!(parse(&entry(fields)).is_empty(), "{fields:?}");
        }
    }
}
