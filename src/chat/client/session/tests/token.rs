//! The resume token: kept from the welcome, sent with every re-join, never shown; a re-join the
//! server did not resume (a new token) is told, and replays nothing.

use std::time::Duration;

use super::*;

const TOKEN: &str = "0123456789abcdef0123456789abcdef";

/// A welcome to room `one` at `last_seq`, giving `token`.
fn welcome(last_seq: u64, token: &str) -> Event {
    Event::Received(format!(
        r#"{{"type":"welcome","version":1,"server":"soquete","mode":"group","name":"ana","room_size":2,"last_seq":{last_seq},"epoch":"one","token":"{token}"}}"#
    ))
}

fn connect(session: &mut Session) -> Vec<Action> {
    session.handle(Event::Connected {
        local: "127.0.0.1:50322".parse().unwrap(),
        remote: "127.0.0.1:65432".parse().unwrap(),
    })
}

/// Joined (welcomed with [`TOKEN`]), saw messages 1 and 2, then lost the server.
fn lost_after_two() -> (Session, Vec<Action>) {
    let mut session = Session::new(Settings {
        reconnect: Some(Reconnect {
            max_delay: Duration::from_secs(1),
            attempts: None,
            failover: false,
        }),
        ..Settings::ana()
    });
    let mut actions = connect(&mut session);
    actions.extend(session.handle(welcome(0, TOKEN)));
    for seq in 1..=2 {
        actions.extend(session.handle(Event::Received(format!(
            r#"{{"type":"msg","seq":{seq},"time":"2026-11-26T14:03:07-03:00","from":"bia","text":"m{seq}"}}"#
        ))));
    }
    actions.extend(session.handle(Event::Lost("reset".into())));
    (session, actions)
}

/// Everything an action list would show, for people or as `--json`.
fn everything_shown(actions: &[Action]) -> String {
    actions
        .iter()
        .filter_map(|action| match action {
            Action::Show(output) => Some(format!("{output:?}")),
            _ => None,
        })
        .collect()
}

#[test]
fn the_token_goes_with_every_rejoin_and_is_never_shown() {
    let (mut session, mut actions) = lost_after_two();
    let first = sent(&actions);
    assert!(
        !first[0].contains("token"),
        "a first hello has none: {first:?}"
    );
    let rejoin = connect(&mut session);
    let hello: serde_json::Value = serde_json::from_str(&sent(&rejoin)[0]).unwrap();
    assert_eq!(
        (&hello["token"], &hello["last_seq"]),
        (&serde_json::json!(TOKEN), &serde_json::json!(2))
    );
    actions.extend(rejoin);
    let back = session.handle(welcome(3, TOKEN));
    assert!(back.contains(&Action::AwaitReplay), "resumed: {back:?}");
    actions.extend(back);
    let shown = everything_shown(&actions);
    assert!(shown.contains("welcome"), "{shown}");
    assert!(!shown.contains(TOKEN), "{shown}");
    assert!(!format!("{session:?}").contains(TOKEN));
}

#[test]
fn a_rejoin_the_server_did_not_resume_is_told_and_what_was_typed_goes_at_once() {
    let (mut session, _) = lost_after_two();
    session.handle(typed("typed while away"));
    connect(&mut session);
    let other = "fedcba9876543210fedcba9876543210";
    let actions = session.handle(welcome(5, other));
    assert!(!actions.contains(&Action::AwaitReplay), "{actions:?}");
    let notes = shown(&actions);
    assert!(
        notes.iter().any(
            |n| n.starts_with("* the server did not resume this session")
                && n.contains("3 messages")
        ),
        "{notes:?}"
    );
    let said = sent(&actions);
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(said[0].contains("typed while away"), "{said:?}");
    // The next re-join carries the new session's token.
    session.handle(Event::Lost("reset".into()));
    let hello = sent(&connect(&mut session))[0].clone();
    assert!(
        hello.contains(other) && hello.contains(r#""last_seq":5"#),
        "{hello}"
    );
}
