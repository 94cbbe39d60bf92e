//! Membership: announcements in small rooms only, a resume's replay, unique names.

use crate::chat::server::event::{Ending, Kind};

use super::super::fixture::{add, hub};
use super::ANNOUNCE_LIMIT;

#[test]
fn joins_and_leaves_are_announced_only_in_a_room_of_at_most_the_limit() {
    let mut hub = hub();
    let watcher = add(&mut hub, 1, "watcher", Kind::Raw);
    let last = ANNOUNCE_LIMIT as u64 + 5;
    let mut queues = Vec::new();
    for id in 2..=last {
        queues.push(add(&mut hub, id, "", Kind::Raw));
        hub.join(id, None);
    }
    let joins = watcher.try_iter().count();
    assert_eq!(
        joins,
        ANNOUNCE_LIMIT - 1,
        "joins up to the limit, then none"
    );
    hub.remove(last, "quit", Ending::Graceful);
    assert_eq!(watcher.try_iter().count(), 0, "no leave in a big room");
    for id in 6..last {
        hub.remove(id, "quit", Ending::Graceful);
    }
    // Announced from a room of 100 down to one of 6 (members 1 to 5 stay).
    assert_eq!(watcher.try_iter().count(), ANNOUNCE_LIMIT - 5);
}

#[test]
fn a_resume_replays_what_was_missed_after_the_welcome() {
    let mut hub = hub();
    let _ana = add(&mut hub, 1, "ana", Kind::Structured);
    for n in 1..=5 {
        let frame = hub.msg("server".into(), format!("m{n}"), false);
        let json = hub.record(&frame);
        hub.fan_out(&frame, Some(json), None);
    }
    let bia = add(&mut hub, 2, "bia", Kind::Structured);
    hub.clients.get_mut(&2).unwrap().resume = Some(3);
    hub.welcome(2);
    let frames: Vec<serde_json::Value> = bia
        .try_iter()
        .map(|out| serde_json::from_slice(&out.concat()).unwrap())
        .collect();
    assert_eq!(frames[0]["type"], "welcome");
    assert_eq!(frames[0]["last_seq"], 5);
    let seqs: Vec<u64> = frames[1..]
        .iter()
        .map(|f| f["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [4, 5]);
}

#[test]
fn names_clash_whatever_their_case_and_the_console_name_is_taken() {
    let mut hub = hub();
    let _ana = add(&mut hub, 1, "ana", Kind::Structured);
    let bia = add(&mut hub, 2, "bia", Kind::Structured);
    hub.nick(2, "ANA");
    hub.nick(2, "Server");
    let codes: Vec<String> = bia
        .try_iter()
        .map(|out| serde_json::from_slice::<serde_json::Value>(&out.concat()).unwrap())
        .map(|f| f["code"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(codes, ["name_taken", "name_taken"]);
    assert_eq!(hub.clients[&2].name, "bia");
}

/// The `error` frames a client's queue holds: (code, message).
fn errors(
    queue: &crossbeam_channel::Receiver<crate::chat::server::outbox::Outgoing>,
) -> Vec<(String, String)> {
    queue
        .try_iter()
        .map(|out| serde_json::from_slice::<serde_json::Value>(&out.concat()).unwrap())
        .filter(|f| f["type"] == "error")
        .map(|f| {
            (
                f["code"].as_str().unwrap().into(),
                f["message"].as_str().unwrap().into(),
            )
        })
        .collect()
}

#[test]
fn a_name_that_looks_like_one_in_use_or_reserved_is_taken_and_says_which() {
    let mut hub = hub();
    hub.settings.name = "mesa".into();
    let _ana = add(&mut hub, 1, "ana", Kind::Structured);
    let bia = add(&mut hub, 2, "bia", Kind::Structured);
    let cases = [
        ("ＡＮＡ", "ana"),
        ("аnа", "ana"),
        ("sеrver", "server"),
        ("SERVER", "server"),
        ("MESA", "mesa"),
        ("mеsa", "mesa"),
    ];
    for (wish, like) in cases {
        hub.nick(2, wish);
        let errors = errors(&bia);
        assert_eq!(errors.len(), 1, "{wish}: {errors:?}");
        let (code, message) = &errors[0];
        assert_eq!(code, "name_taken", "{wish}: {message}");
        assert!(
            message.contains(&format!("looks like {like}")),
            "{wish}: {message}"
        );
    }
    hub.nick(2, "server");
    let (code, message) = &errors(&bia)[0];
    assert_eq!(code, "name_taken", "{message}");
    assert_eq!(hub.clients[&2].name, "bia");
}

#[test]
fn a_lookalike_hello_is_taken_and_an_invisible_one_is_refused_without_showing_it() {
    let mut hub = hub();
    let _ana = add(&mut hub, 1, "ana", Kind::Structured);
    let bia = add(&mut hub, 2, "", Kind::Structured);
    hub.join(2, Some("sеrver"));
    let cyr = add(&mut hub, 3, "", Kind::Structured);
    hub.join(3, Some("ana\u{200b}"));
    let (code, message) = &errors(&bia)[0];
    assert_eq!(code, "name_taken", "{message}");
    assert!(message.contains("looks like server"), "{message}");
    assert!(hub.clients[&2].name.starts_with("guest-"));
    let (code, message) = &errors(&cyr)[0];
    assert_eq!(code, "bad_name", "{message}");
    assert!(
        message.contains("U+200B") && message.is_ascii(),
        "{message}"
    );
}
