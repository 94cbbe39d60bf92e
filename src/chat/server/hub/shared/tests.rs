//! A shared room's hub: what it says goes to the publisher, not to its members; what the stream
//! says comes to them by the round path (a raw author not echoed); a hello waits for Redis.

use chrono::DateTime;
use crossbeam_channel::Receiver;

use crate::chat::protocol::{Greeting, Secret};
use crate::chat::server::cluster::entry::Origin;
use crate::chat::server::cluster::{Entry, Line, News, Op, Verdict};
use crate::chat::server::event::{Event, Input, Kind};
use crate::chat::server::outbox::Outgoing;

use super::super::fixture::{add, shared_hub, text_of};

fn msg(seq: u64, server: &str, client: u64, text: &str) -> Entry {
    Entry::Msg {
        held: false,
        seq,
        time: DateTime::parse_from_rfc3339("2026-11-30T16:00:00+00:00").unwrap(),
        from: "ana".into(),
        text: text.into(),
        action: false,
        origin: Origin {
            server: server.into(),
            client,
        },
    }
}

fn nothing_for(queue: &Receiver<Outgoing>) -> bool {
    queue.try_recv().is_err()
}

#[test]
fn a_shared_rooms_lines_go_to_the_publisher_and_come_back_from_the_stream() {
    let (mut hub, published, _) = shared_hub("me");
    let nc = add(&mut hub, 1, "ana", Kind::Raw);
    let py = add(&mut hub, 2, "bia", Kind::Structured);
    hub.inputs(1, vec![Input::Text("oi".into())]);
    hub.publish_round();
    hub.flush_round();
    let round = published.try_recv().expect("a round for the publisher");
    assert!(matches!(&round.lines[..], [Line::Msg { text, client: 1, .. }] if text == "oi"));
    assert!(nothing_for(&nc) && nothing_for(&py), "not stamped here");
    assert_eq!(hub.seq, 0);

    // The stream gives it back, numbered by the room, with a line from another server.
    hub.shared(vec![msg(5, "me", 1, "oi"), msg(6, "other", 9, "hey")]);
    hub.flush_round();
    let raw = text_of(&nc);
    assert!(!raw.contains("oi") && raw.contains("<ana> hey"), "{raw}");
    let json = text_of(&py);
    assert!(
        json.contains(r#""seq":5"#) && json.contains(r#""seq":6"#),
        "{json}"
    );
    assert_eq!(hub.seq, 6);
    assert_eq!(hub.history.since(4, 6).0.len(), 2, "kept for resumes");
}

#[test]
fn a_hello_waits_for_redis_and_a_name_held_elsewhere_is_taken() {
    let (mut hub, _, asked) = shared_hub("me");
    let queue = add(&mut hub, 1, "", Kind::Pending);
    let hello = Greeting::Structured {
        name: "zeca".into(),
        last_seq: None,
        epoch: None,
        token: Some(Secret::new("t".into())),
        probe: false,
    };
    hub.first_line(1, hello);
    hub.handle(Event::Input {
        id: 1,
        inputs: vec![Input::Text("said early".into())],
    });
    assert!(nothing_for(&queue), "no welcome before Redis answers");
    let Ok(Op::Admit { key, token, .. }) = asked.try_recv() else {
        panic!("Redis is asked");
    };
    assert_eq!(key, "zeca");
    assert_eq!(token.unwrap().len(), 64, "a digest, never the token");
    hub.cluster_news(News::Verdicts(vec![(1, Verdict::Taken)]));
    let text = text_of(&queue);
    assert!(
        text.contains("name_taken") && text.contains(r#""name":"guest-1""#),
        "{text}"
    );
    assert_eq!(
        hub.unpublished.0.len(),
        2,
        "its join notice, then its early line"
    );
}

#[test]
fn a_resume_ahead_of_the_reader_waits_for_it() {
    let (mut hub, _, asked) = shared_hub("me");
    let queue = add(&mut hub, 1, "", Kind::Pending);
    let hello = Greeting::Structured {
        name: "ana".into(),
        last_seq: Some(2),
        epoch: None,
        token: Some(Secret::new("t".into())),
        probe: false,
    };
    hub.first_line(1, hello);
    assert!(matches!(asked.try_recv(), Ok(Op::Admit { .. })));
    hub.cluster_news(News::Verdicts(vec![(1, Verdict::Resumed)]));
    assert!(
        nothing_for(&queue),
        "seq 2 is not read here yet: no welcome"
    );
    hub.shared(vec![
        msg(1, "other", 4, "one"),
        msg(2, "other", 4, "two"),
        msg(3, "other", 4, "three"),
    ]);
    let text = text_of(&queue);
    let welcome = text.lines().next().unwrap_or_default();
    assert!(welcome.contains(r#""type":"welcome""#), "{text}");
    assert!(
        welcome.contains(r#""name":"ana""#) && welcome.contains(r#""last_seq":3"#),
        "{welcome}"
    );
    hub.flush_round();
    let after = text + &text_of(&queue);
    assert!(
        after.contains("three") && !after.contains(r#""text":"two""#),
        "{after}"
    );
}

#[test]
fn a_split_room_delivers_its_own_lines_at_once_and_not_again_when_whole() {
    let (mut hub, published, _) = shared_hub("me");
    let nc = add(&mut hub, 1, "ana", Kind::Raw);
    let py = add(&mut hub, 2, "bia", Kind::Structured);
    let other = add(&mut hub, 3, "caio", Kind::Raw);
    hub.cluster_news(News::ReaderLost("connection refused".into()));
    hub.flush_round();
    assert!(text_of(&nc).contains("the room is split"));
    let _ = (text_of(&py), text_of(&other));

    hub.inputs(1, vec![Input::Text("oi".into())]);
    hub.inputs(1, vec![Input::Text("tudo bem".into())]);
    hub.publish_round();
    hub.flush_round();
    // Held for the stream, in order, marked as heard here.
    let round = published.try_recv().expect("a round for the publisher");
    assert!(
        round
            .lines
            .iter()
            .all(|l| matches!(l, Line::Msg { held: true, .. })),
        "{round:?}"
    );
    // Delivered at once, provisional: no number, no history; the raw author not echoed.
    assert!(nothing_for(&nc), "the raw author saw it as it typed");
    let raw = text_of(&other);
    assert!(
        raw.contains("<ana> oi") && raw.contains("<ana> tudo bem"),
        "{raw}"
    );
    let json = text_of(&py);
    assert_eq!(json.matches(r#""seq":0"#).count(), 2, "{json}");
    assert_eq!(json.matches(r#""held":true"#).count(), 2, "{json}");
    assert_eq!(hub.seq, 0);

    hub.cluster_news(News::ReaderBack);
    hub.flush_round();
    assert!(text_of(&other).contains("the room is whole again"));
    let _ = (text_of(&py), text_of(&nc));
    // The stream gives them back numbered, with the other side's line of the split: this
    // server's held lines are kept (a resume replays them) but not sent again; the other
    // server's, held there, come once.
    let held = |seq, server: &str, client, text: &str| {
        let mut entry = msg(seq, server, client, text);
        if let Entry::Msg { held, .. } = &mut entry {
            *held = true;
        }
        entry
    };
    hub.shared(vec![
        held(5, "me", 1, "oi"),
        held(6, "other", 9, "hey"),
        held(7, "me", 1, "tudo bem"),
    ]);
    hub.flush_round();
    let raw = text_of(&other);
    assert!(!raw.contains("oi") && !raw.contains("tudo bem"), "{raw}");
    assert!(raw.contains("<ana> hey"), "{raw}");
    let json = text_of(&py);
    assert!(
        !json.contains(r#""seq":5"#) && json.contains(r#""seq":6"#) && !json.contains(r#""seq":7"#),
        "{json}"
    );
    assert_eq!(hub.seq, 7);
    assert_eq!(
        hub.history.since(4, 7).0.len(),
        3,
        "all kept for resumes, numbered"
    );
}
