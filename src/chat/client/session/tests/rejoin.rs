//! A lost server: reconnecting with growing pauses, re-joining where we left off, and
//! delivering what was typed or never confirmed.

use std::time::Duration;

use super::*;

/// A session that reconnects, giving up after `attempts`, not connected yet.
fn reconnecting(attempts: Option<u32>) -> Session {
    Session::new(Settings {
        reconnect: Some(Reconnect {
            max_delay: Duration::from_secs(30),
            attempts,
            failover: false,
        }),
        ..Settings::ana()
    })
}

fn resuming() -> Session {
    let mut session = reconnecting(Some(3));
    session.handle(Event::Connected {
        local: "127.0.0.1:50322".parse().unwrap(),
        remote: "127.0.0.1:65432".parse().unwrap(),
    });
    session.handle(Event::Received(WELCOME.into()));
    session
}

fn reconnect(session: &mut Session) -> Vec<Action> {
    session.handle(Event::Connected {
        local: "127.0.0.1:50400".parse().unwrap(),
        remote: "127.0.0.1:65432".parse().unwrap(),
    })
}

fn msg(seq: u64, from: &str, text: &str) -> Event {
    Event::Received(format!(
        r#"{{"type":"msg","seq":{seq},"time":"2026-11-26T14:03:07-03:00","from":"{from}","text":"{text}"}}"#
    ))
}

fn welcome_back(last_seq: u64, missed: Option<u64>) -> Event {
    let missed = missed.map_or(String::new(), |n| format!(r#","missed":{n}"#));
    Event::Received(format!(
        r#"{{"type":"welcome","version":1,"server":"soquete","mode":"group","name":"ana","room_size":2,"last_seq":{last_seq}{missed}}}"#
    ))
}

fn delay(actions: &[Action]) -> Option<Duration> {
    actions.iter().find_map(|action| match action {
        Action::Reconnect(delay) => Some(*delay),
        _ => None,
    })
}

#[test]
fn a_lost_server_is_reconnected_to_with_growing_pauses_then_given_up() {
    let mut session = resuming();
    let actions = session.handle(Event::ServerClosed);
    let lines = shown(&actions);
    assert!(
        lines[0].starts_with(
            "* connection lost (the server closed the connection without a bye) — \
             reconnecting in "
        ) && lines[0].ends_with(" s (attempt 1)"),
        "{lines:?}"
    );
    let first = delay(&actions).expect("a reconnection is scheduled");
    assert!(first >= Duration::from_millis(250) && first <= Duration::from_millis(500));
    assert_eq!(end(&actions), None);

    let actions = session.handle(Event::ReconnectFailed("Connection refused".into()));
    assert!(shown(&actions)[0].contains("(attempt 2)"), "{actions:?}");
    assert!(delay(&actions).unwrap() >= Duration::from_millis(500));
    session.handle(Event::ReconnectFailed("Connection refused".into()));
    let actions = session.handle(Event::ReconnectFailed("Connection refused".into()));
    assert_eq!(
        end(&actions),
        Some(End::Lost(
            "gave up after 3 attempts to reconnect (Connection refused)".into()
        ))
    );
}

#[test]
fn rejoin_asks_for_what_follows_the_last_message_seen_and_shows_each_once() {
    let mut session = resuming();
    for seq in 1..=3 {
        session.handle(msg(seq, "bia", &format!("m{seq}")));
    }
    session.handle(Event::Lost("Connection reset by peer".into()));
    let actions = reconnect(&mut session);
    assert_eq!(
        shown(&actions),
        ["* reconnected: local 127.0.0.1:50400 → remote 127.0.0.1:65432"]
    );
    assert_eq!(
        sent(&actions),
        ["{\"type\":\"hello\",\"version\":1,\"name\":\"ana\",\"last_seq\":3}\n"]
    );
    let actions = session.handle(welcome_back(5, None));
    assert!(actions.contains(&Action::AwaitReplay));
    let mut seen = Vec::new();
    for seq in 3..=5 {
        seen.extend(shown(&session.handle(msg(seq, "bia", &format!("m{seq}")))));
    }
    assert_eq!(
        seen,
        ["[14:03:07] <bia> m4", "[14:03:07] <bia> m5"],
        "the overlap is not shown again"
    );
}

#[test]
fn lines_typed_while_disconnected_go_after_the_replay_in_order() {
    let mut session = resuming();
    session.handle(Event::ServerClosed);
    assert!(sent(&session.handle(typed("one"))).is_empty());
    assert!(sent(&session.handle(typed("/me two"))).is_empty());
    reconnect(&mut session);
    assert!(sent(&session.handle(typed("three"))).is_empty(), "not yet");
    assert!(sent(&session.handle(welcome_back(2, None))).is_empty());
    session.handle(msg(1, "bia", "replayed"));
    let actions = session.handle(msg(2, "bia", "replayed"));
    assert_eq!(
        sent(&actions),
        [
            "{\"type\":\"msg\",\"text\":\"one\"}\n",
            "{\"type\":\"msg\",\"text\":\"/me two\"}\n",
            "{\"type\":\"msg\",\"text\":\"three\"}\n",
        ]
    );
    assert_eq!(sent(&session.handle(typed("four"))).len(), 1, "live again");
}

#[test]
fn messages_the_server_never_echoed_are_sent_again_but_not_those_it_replays() {
    let mut session = resuming();
    session.handle(typed("a"));
    session.handle(typed("b"));
    session.handle(typed("c"));
    session.handle(msg(1, "ana", "a"));
    session.handle(Event::Lost("timed out".into()));
    reconnect(&mut session);
    session.handle(welcome_back(2, None));
    // The server stamped b before it went down: the replay confirms it; c never arrived.
    let actions = session.handle(msg(2, "ana", "b"));
    assert_eq!(sent(&actions), ["{\"type\":\"msg\",\"text\":\"c\"}\n"]);
}

#[test]
fn an_empty_gap_resumes_at_the_welcome_and_missed_messages_are_counted() {
    let mut session = resuming();
    session.handle(msg(1, "bia", "x"));
    session.handle(Event::ServerClosed);
    session.handle(typed("queued"));
    reconnect(&mut session);
    let actions = session.handle(welcome_back(1, Some(7)));
    assert_eq!(sent(&actions), ["{\"type\":\"msg\",\"text\":\"queued\"}\n"]);
    assert!(
        shown(&actions).contains(&"* 7 messages were missed while disconnected".into()),
        "{actions:?}"
    );
}

#[test]
fn pings_are_never_shown_and_end_a_replay_that_does_not_come() {
    let mut session = resuming();
    assert!(
        session
            .handle(Event::Received(r#"{"type":"ping"}"#.into()))
            .is_empty()
    );
    session.handle(msg(1, "bia", "x"));
    session.handle(Event::ServerClosed);
    session.handle(typed("queued"));
    reconnect(&mut session);
    session.handle(welcome_back(9, None));
    let actions = session.handle(Event::Received(r#"{"type":"ping"}"#.into()));
    assert!(shown(&actions).is_empty());
    assert_eq!(sent(&actions).len(), 1);
    // A server that does not replay at all: the replay timer ends the wait too.
    session.handle(Event::ServerClosed);
    session.handle(typed("later"));
    reconnect(&mut session);
    session.handle(welcome_back(20, None));
    // `queued` was never echoed back either: it goes again, before `later`.
    assert_eq!(
        sent(&session.handle(Event::ReplayTimeout)),
        [
            "{\"type\":\"msg\",\"text\":\"queued\"}\n",
            "{\"type\":\"msg\",\"text\":\"later\"}\n"
        ]
    );
}

#[test]
fn a_server_that_lost_its_history_starts_the_numbers_again() {
    let mut session = resuming();
    session.handle(msg(8, "bia", "x"));
    session.handle(Event::ServerClosed);
    reconnect(&mut session);
    let actions = session.handle(welcome_back(0, None));
    assert!(
        shown(&actions)
            .iter()
            .any(|l| l.contains("lost its history"))
    );
    assert_eq!(
        shown(&session.handle(msg(1, "bia", "new"))),
        ["[14:03:07] <bia> new"]
    );
}

#[test]
fn a_shutdown_bye_reconnects_but_a_bye_after_our_quit_ends() {
    let mut session = resuming();
    let actions = session.handle(Event::Received(
        r#"{"type":"bye","reason":"the server is shutting down","code":"shutdown"}"#.into(),
    ));
    assert_eq!(shown(&actions)[0], "* bye: the server is shutting down");
    assert!(delay(&actions).is_some());
    assert_eq!(end(&actions), None);

    let mut session = resuming();
    session.handle(typed("/quit"));
    let actions = session.handle(Event::Received(
        r#"{"type":"bye","reason":"the server is shutting down","code":"shutdown"}"#.into(),
    ));
    assert_eq!(end(&actions), Some(End::Done));
}

#[test]
fn leaving_with_unconfirmed_messages_delivers_them_first() {
    let mut session = resuming();
    session.handle(typed("important"));
    session.handle(Event::InputEnded);
    let actions = session.handle(Event::ServerClosed);
    assert!(delay(&actions).is_some(), "{actions:?}");
    reconnect(&mut session);
    let actions = session.handle(welcome_back(0, None));
    assert_eq!(
        sent(&actions),
        [
            "{\"type\":\"msg\",\"text\":\"important\"}\n",
            "{\"type\":\"quit\"}\n"
        ]
    );
}

#[test]
fn end_of_input_while_disconnected_waits_only_for_something_to_deliver() {
    let mut session = resuming();
    session.handle(Event::ServerClosed);
    assert_eq!(end(&session.handle(Event::InputEnded)), Some(End::Done));

    let mut session = resuming();
    session.handle(Event::ServerClosed);
    session.handle(typed("keep me"));
    let actions = session.handle(Event::InputEnded);
    assert_eq!(end(&actions), None);
    assert_eq!(
        shown(&actions),
        ["* leaving once reconnected and 1 typed line delivered (Ctrl-C leaves now)"]
    );
    let actions = session.handle(Event::Interrupted);
    assert_eq!(
        end(&actions),
        Some(End::Lost(
            "interrupted while reconnecting: 1 typed line not sent".into()
        ))
    );
}

#[test]
fn without_reconnect_a_shutdown_bye_ends_normally_and_a_loss_is_final() {
    let mut session = connected(false, false);
    session.handle(Event::Received(WELCOME.into()));
    let actions = session.handle(Event::Received(
        r#"{"type":"bye","reason":"the server is shutting down","code":"shutdown"}"#.into(),
    ));
    assert_eq!(end(&actions), Some(End::Done));
    let mut session = connected(false, false);
    let actions = session.handle(Event::Lost("no word from the server".into()));
    assert!(delay(&actions).is_none());
    assert!(matches!(end(&actions), Some(End::Lost(_))));
}

/// A welcome to room `epoch`, whose last message is `last_seq`.
fn welcome_to(epoch: &str, last_seq: u64) -> Event {
    Event::Received(format!(
        r#"{{"type":"welcome","version":1,"server":"soquete","mode":"group","name":"ana","room_size":2,"last_seq":{last_seq},"epoch":"{epoch}"}}"#
    ))
}

#[test]
fn a_new_epoch_is_a_server_restarted_without_its_history_shown_from_its_start() {
    let mut session = resuming();
    // The first welcome came from a server that names no room: nothing to compare yet.
    session.handle(Event::ServerClosed);
    reconnect(&mut session);
    session.handle(welcome_to("one", 0));
    for seq in 1..=3 {
        session.handle(msg(seq, "bia", &format!("old {seq}")));
    }
    session.handle(Event::Lost("Connection reset by peer".into()));

    let actions = reconnect(&mut session);
    assert!(
        sent(&actions)[0].ends_with("\"last_seq\":3,\"epoch\":\"one\"}\n"),
        "the hello says whose last_seq it is: {actions:?}"
    );
    // The new server has 5 messages: numbers 1 to 3 again, which are new all the same.
    let actions = session.handle(welcome_to("two", 5));
    let notes = shown(&actions);
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("* the server restarted without its history")),
        "{notes:?}"
    );
    assert!(actions.contains(&Action::AwaitReplay));
    let mut seen = Vec::new();
    for seq in 1..=5 {
        seen.extend(shown(&session.handle(msg(
            seq,
            "cid",
            &format!("new {seq}"),
        ))));
    }
    assert_eq!(seen.len(), 5, "{seen:?}");

    // The same room again: nothing to say, and only what follows is shown.
    session.handle(Event::ServerClosed);
    let actions = reconnect(&mut session);
    assert!(sent(&actions)[0].contains(r#""last_seq":5,"epoch":"two""#));
    let actions = session.handle(welcome_to("two", 6));
    assert!(shown(&actions).iter().all(|n| !n.contains("restarted")));
    assert!(shown(&session.handle(msg(5, "cid", "new 5"))).is_empty());
    assert_eq!(shown(&session.handle(msg(6, "cid", "six"))).len(), 1);
}

#[test]
fn a_full_server_is_said_to_be_full_retried_and_joined_fresh() {
    let mut session = reconnecting(None);
    for attempt in 1..=2 {
        let actions = reconnect(&mut session);
        assert!(
            shown(&actions)[0].starts_with("* connected: "),
            "never in, so never reconnected: {actions:?}"
        );
        assert_eq!(
            sent(&actions),
            ["{\"type\":\"hello\",\"version\":1,\"name\":\"ana\"}\n"],
            "nothing to resume"
        );
        session.handle(Event::Received(
            "* server full: 1 clients are connected (--max-clients); try again later".into(),
        ));
        let actions = session.handle(Event::Received(
            r#"{"type":"bye","reason":"server full","code":"full"}"#.into(),
        ));
        let lines = shown(&actions);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].starts_with("* the server is full — trying again in ")
                && lines[0].ends_with(&format!("(attempt {attempt})")),
            "{lines:?}"
        );
        assert!(delay(&actions).is_some());
        assert_eq!(end(&actions), None);
        assert!(sent(&session.handle(typed(&format!("typed {attempt}")))).is_empty());
    }
    reconnect(&mut session);
    let actions = session.handle(welcome_back(7, None));
    assert_eq!(
        sent(&actions)
            .iter()
            .map(|frame| frame.contains("typed"))
            .collect::<Vec<_>>(),
        [true, true],
        "what was typed while refused goes once in: {actions:?}"
    );
    assert!(
        !actions.contains(&Action::AwaitReplay),
        "no history to wait for"
    );
    session.handle(Event::ServerClosed);
    let actions = reconnect(&mut session);
    assert!(shown(&actions)[0].starts_with("* reconnected: "));
    assert!(sent(&actions)[0].contains(r#""last_seq":7"#), "{actions:?}");
}

#[test]
fn a_welcome_overdue_on_a_later_attempt_after_a_full_server_is_no_proof_of_a_plain_one() {
    let mut session = reconnecting(None);
    reconnect(&mut session);
    session.handle(Event::Received(
        "* server full: 1 clients are connected (--max-clients); try again later".into(),
    ));
    session.handle(Event::Received(
        r#"{"type":"bye","reason":"server full","code":"full"}"#.into(),
    ));
    reconnect(&mut session);
    // The welcome timer, started with the first attempt, fires while the second waits.
    let actions = session.handle(Event::WelcomeTimeout);
    let lines = shown(&actions);
    assert!(
        lines.iter().all(|line| !line.contains("does not speak")),
        "{lines:?}"
    );
    let actions = session.handle(welcome_back(7, None));
    assert!(actions.contains(&Action::Heartbeat(true)), "{actions:?}");
    assert_eq!(
        sent(&session.handle(typed("oi"))),
        ["{\"type\":\"msg\",\"text\":\"oi\"}\n"]
    );
}

#[test]
fn a_full_server_ends_a_session_that_does_not_reconnect_exit_1() {
    let mut session = connected(false, false);
    let actions = session.handle(Event::Received(
        r#"{"type":"bye","reason":"server full","code":"full"}"#.into(),
    ));
    assert_eq!(
        end(&actions),
        Some(End::Lost("the server is full (--max-clients)".into()))
    );
}

#[test]
fn a_held_message_of_a_split_room_is_shown_but_moves_no_number() {
    let mut session = resuming();
    for seq in 1..=3 {
        session.handle(msg(seq, "bia", &format!("m{seq}")));
    }
    let held = r#"{"type":"msg","seq":0,"time":"2026-11-26T14:03:08-03:00","from":"caio","text":"still here","held":true}"#;
    for _ in 0..2 {
        let actions = session.handle(Event::Received(held.into()));
        assert_eq!(
            actions[0],
            Action::Show(Output::Data {
                human: "[14:03:08] <caio> still here".into(),
                json: held.into()
            }),
            "shown each time, never dropped for its seq; --json carries held"
        );
    }
    // The re-join still asks for what follows the last numbered message.
    session.handle(Event::Lost("Connection reset by peer".into()));
    let actions = reconnect(&mut session);
    assert!(sent(&actions)[0].contains(r#""last_seq":3"#), "{actions:?}");
}
