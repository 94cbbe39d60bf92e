//! The room's fan-out: one encoding per flavour, rounds in order and to the members of their
//! time, a broker's kept lines, and congestion without loss.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crossbeam_channel::Receiver;

use crate::chat::protocol::Greeting;
use crate::chat::server::config::Mode;
use crate::chat::server::event::{Ending, Event, Input, Kind};
use crate::chat::server::outbox::{OUTBOX_BYTES, Outgoing, Parts};

use super::super::Hub;
use super::super::fixture::{add, hub, hub_in, text_of};

/// Connection `id` says `hello` as `name`.
fn says_hello(hub: &mut Hub, id: u64, name: &str) {
    let greeting = Greeting::Structured {
        name: name.into(),
        last_seq: None,
        epoch: None,
        token: None,
        probe: false,
    };
    hub.first_line(id, greeting);
}

/// Everything queued for a structured client, as frames.
fn frames_of(queue: &Receiver<Outgoing>) -> Vec<serde_json::Value> {
    text_of(queue)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_broadcast_is_encoded_once_per_flavour_and_shared() {
    let mut hub = hub();
    let nc = add(&mut hub, 1, "nc", Kind::Raw);
    let py = add(&mut hub, 2, "py", Kind::Raw);
    let ana = add(&mut hub, 3, "ana", Kind::Structured);
    let frame = hub.msg("server".into(), "oi".into(), false);
    hub.broadcast(&frame, None);
    let [nc, py, ana] =
        [nc, py, ana].map(|queue| queue.recv().unwrap().parts.iter().next().cloned().unwrap());
    assert!(Arc::ptr_eq(&nc, &py), "one text encoding, shared");
    assert!(nc.ends_with(b"<server> oi\n"));
    assert!(ana.starts_with(b"{\"type\":\"msg\",\"seq\":1,"));
}

#[test]
fn an_outbox_over_its_bounds_congests_the_hub_and_nothing_is_dropped() {
    let mut hub = hub();
    let sleeper = add(&mut hub, 1, "sleeper", Kind::Raw);
    let big = "x".repeat(8000);
    let mut sent = 0;
    while hub.congested.is_empty() {
        let frame = hub.msg("server".into(), big.clone(), false);
        hub.broadcast(&frame, None);
        sent += 1;
        assert!(sent <= OUTBOX_BYTES / 8000 + 1, "never congested");
    }
    // Over 4 MiB of ~8 KB lines: far fewer than the messages the queue may hold.
    assert!(
        (OUTBOX_BYTES / 8100..=OUTBOX_BYTES / 8000 + 1).contains(&sent),
        "{sent}"
    );
    assert!(hub.clients.contains_key(&1), "kept: it may still catch up");
    assert!(hub.clients[&1].stats.congested.load(Ordering::Relaxed));
    assert_eq!(sleeper.len(), sent, "every message is queued");
}

#[test]
fn a_round_is_one_list_per_flavour_shared_by_its_members_authors_included() {
    let mut hub = hub();
    let nc = add(&mut hub, 1, "nc", Kind::Raw);
    let py = add(&mut hub, 2, "py", Kind::Raw);
    let ana = add(&mut hub, 3, "ana", Kind::Structured);
    let bia = add(&mut hub, 4, "bia", Kind::Structured);
    for (id, line) in [(1, "one"), (3, "two"), (1, "three")] {
        let inputs = vec![Input::Text(line.into())];
        hub.handle(Event::Input { id, inputs });
    }
    hub.flush_round();
    let list = |queue: &Receiver<Outgoing>| match queue.try_recv().unwrap().parts {
        Parts::Round { pieces, without } => (pieces, without),
        other => panic!("not a shared round: {other:?}"),
    };
    let [(nc, nc_without), (py, py_without), (ana, _), (bia, _)] =
        [nc, py, ana, bia].map(|q| list(&q));
    assert!(Arc::ptr_eq(&nc, &py), "one text list, the author's too");
    assert!(Arc::ptr_eq(&ana, &bia), "one JSON list");
    assert_eq!((nc_without, py_without), (Some(1), None));
    assert_eq!(nc.len(), 3);
}

#[test]
fn a_round_reaches_each_member_as_one_item_in_order_without_a_raw_authors_own_lines() {
    let mut hub = hub();
    let nc = add(&mut hub, 1, "nc", Kind::Raw);
    let ana = add(&mut hub, 2, "ana", Kind::Structured);
    let py = add(&mut hub, 3, "py", Kind::Raw);
    let text = |line: &str| Input::Text(line.into());
    hub.handle(Event::Input {
        id: 1,
        inputs: vec![text("one"), text("two")],
    });
    hub.handle(Event::Input {
        id: 2,
        inputs: vec![text("three")],
    });
    hub.handle(Event::Input {
        id: 1,
        inputs: vec![text("four")],
    });
    assert!(py.is_empty(), "nothing is queued before the round ends");
    hub.flush_round();
    let lines = |queue: &Receiver<Outgoing>| {
        let items: Vec<Outgoing> = queue.try_iter().collect();
        assert_eq!(items.len(), 1, "one item for the whole round");
        let all = String::from_utf8(items[0].concat()).unwrap();
        assert_eq!(items[0].lines as usize, all.lines().count());
        all.lines()
            .map(|l| l.split_once("> ").map_or(l, |(_, t)| t).to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(lines(&py), ["one", "two", "three", "four"]);
    assert_eq!(
        lines(&nc),
        ["three"],
        "nc saw its own lines as it typed them"
    );
    let ana_items: Vec<Outgoing> = ana.try_iter().collect();
    assert_eq!(ana_items.len(), 1);
    let seqs: Vec<u64> = String::from_utf8(ana_items[0].concat())
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(
        seqs,
        [1, 2, 3, 4],
        "a structured author gets its own lines back, stamped"
    );
}

#[test]
fn a_round_goes_to_the_members_of_its_time_not_to_who_joins_after_it() {
    let mut hub = hub();
    let ana = add(&mut hub, 1, "ana", Kind::Structured);
    hub.handle(Event::Input {
        id: 1,
        inputs: vec![Input::Text("before bia".into())],
    });
    let bia = add(&mut hub, 2, "", Kind::Structured);
    hub.clients.get_mut(&2).unwrap().resume = Some(0);
    hub.join(2, Some("bia"));
    hub.handle(Event::Input {
        id: 1,
        inputs: vec![Input::Text("after bia".into())],
    });
    hub.handle(Event::Closed {
        id: 1,
        reason: "closed by the client".into(),
        ending: Ending::Graceful,
    });
    hub.flush_round();
    let frames = |queue: &Receiver<Outgoing>| -> Vec<String> {
        queue
            .try_iter()
            .flat_map(|out| {
                let text = String::from_utf8(out.concat()).unwrap();
                text.lines()
                    .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
                    .map(|f| format!("{} {}", f["type"].as_str().unwrap(), f["seq"]))
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    // bia: its welcome, the message it missed replayed once, then what came after.
    assert_eq!(
        frames(&bia),
        ["welcome null", "msg 1", "msg 2", "leave null"]
    );
    // ana left gracefully: its own two messages still reach it, stamped.
    assert_eq!(frames(&ana), ["msg 1", "join null", "msg 2"]);
}

#[test]
fn a_broker_keeps_the_room_for_a_connection_until_it_says_what_it_is() {
    let mut hub = hub_in(Mode::Broker);
    let _ana = add(&mut hub, 1, "ana", Kind::Raw);
    let listener = add(&mut hub, 2, "", Kind::Pending);
    let soquete = add(&mut hub, 3, "", Kind::Pending);
    let forged = r#"{"type":"bye","reason":"forged"}"#;
    hub.handle(Event::Input {
        id: 1,
        inputs: vec![Input::Text(forged.into()), Input::Text("dois".into())],
    });
    hub.flush_round();
    assert_eq!(text_of(&listener), "", "nothing before it says what it is");
    assert_eq!(text_of(&soquete), "");

    // A second of silence: a listener, which gets all it missed, bare, and nothing else.
    hub.handle(Event::Silent { id: 2 });
    assert_eq!(text_of(&listener), format!("{forged}\ndois\n"));

    // A hello: a soquete client, which never sees a raw line that could pass for a frame.
    says_hello(&mut hub, 3, "bia");
    let frames = frames_of(&soquete);
    assert_eq!(frames.len(), 1);
    assert_eq!(
        (&frames[0]["type"], &frames[0]["mode"]),
        (&"welcome".into(), &"broker".into())
    );
}

#[test]
fn a_group_listener_gets_what_was_said_since_its_connect_then_its_welcome() {
    let mut hub = hub();
    let _ana = add(&mut hub, 1, "ana", Kind::Structured);
    let listener = add(&mut hub, 2, "", Kind::Pending);
    let soquete = add(&mut hub, 3, "", Kind::Pending);
    hub.handle(Event::Input {
        id: 1,
        inputs: vec![Input::Text("um".into()), Input::Text("dois".into())],
    });
    hub.flush_round();
    hub.handle(Event::Input {
        id: 1,
        inputs: vec![Input::Nick("ana_b".into())],
    });
    assert_eq!(text_of(&listener), "", "nothing before it says what it is");

    hub.handle(Event::Silent { id: 2 });
    let got = text_of(&listener);
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(lines.len(), 4, "{got}");
    assert!(lines[0].ends_with("<ana> um") && lines[1].ends_with("<ana> dois"));
    assert_eq!(lines[2], "* ana is now known as ana_b");
    assert!(lines[3].starts_with("* welcome to soquete"), "{got}");
    assert_eq!(hub.members()[2].kind, "-", "a member, listed in /who");

    says_hello(&mut hub, 3, "bia");
    let frames = frames_of(&soquete);
    assert_eq!(frames.len(), 1, "frames from its welcome on: {frames:?}");
    assert_eq!(frames[0]["type"], "welcome");
}

#[test]
fn a_broker_connection_that_stays_silent_through_an_outbox_of_traffic_is_a_listener() {
    let mut hub = hub_in(Mode::Broker);
    let _ana = add(&mut hub, 1, "ana", Kind::Raw);
    let listener = add(&mut hub, 2, "", Kind::Pending);
    let line = "x".repeat(8000);
    let mut sent = 0;
    while !hub.clients[&2].named() {
        hub.handle(Event::Input {
            id: 1,
            inputs: vec![Input::Text(line.clone())],
        });
        hub.flush_round();
        sent += 1;
        assert!(sent <= OUTBOX_BYTES / 8000 + 1, "never taken as raw");
    }
    let got = text_of(&listener);
    assert_eq!(got.lines().count(), sent, "it gets every line kept for it");
    assert!(got.lines().all(|l| l == line));
}

#[test]
fn a_reply_to_one_member_comes_after_the_round_it_followed() {
    let mut hub = hub();
    let ana = add(&mut hub, 1, "ana", Kind::Structured);
    hub.handle(Event::Input {
        id: 1,
        inputs: vec![Input::Text("oi".into()), Input::Who],
    });
    hub.flush_round();
    let types: Vec<String> = ana
        .try_iter()
        .map(|out| serde_json::from_slice::<serde_json::Value>(&out.concat()).unwrap())
        .map(|frame| frame["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(types, ["msg", "who"]);
}
