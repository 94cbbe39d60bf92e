//! Several servers of one room: a lost server is followed at once by an attempt on the next,
//! the backoff only after that; the move to another server is said, with both; the re-join there
//! carries the token, `last_seq` and epoch as any re-join does, and a server of another room
//! (another epoch) is told as such, not as a restart.

use std::time::Duration;

use super::*;

const TOKEN: &str = "0123456789abcdef0123456789abcdef";
const A: &str = "127.0.0.1:5000";
const B: &str = "[::1]:5001";

/// A welcome to room `epoch` at `last_seq`, giving `token`.
fn welcome(epoch: &str, last_seq: u64, token: &str) -> Event {
    Event::Received(format!(
        r#"{{"type":"welcome","version":1,"server":"soquete","mode":"group","name":"ana","room_size":2,"last_seq":{last_seq},"epoch":"{epoch}","token":"{token}"}}"#
    ))
}

fn connect_to(session: &mut Session, remote: &str) -> Vec<Action> {
    session.handle(Event::Connected {
        local: "127.0.0.1:50322".parse().unwrap(),
        remote: remote.parse().unwrap(),
    })
}

fn pause(actions: &[Action]) -> Option<Duration> {
    actions.iter().find_map(|action| match action {
        Action::Reconnect(delay) => Some(*delay),
        _ => None,
    })
}

fn json(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|action| match action {
            Action::Show(Output::State { json, .. }) => Some(json.clone()),
            _ => None,
        })
        .collect()
}

/// A session with several servers to go round, giving up after `attempts`.
fn several(attempts: Option<u32>) -> Session {
    Session::new(Settings {
        reconnect: Some(Reconnect {
            max_delay: Duration::from_secs(30),
            attempts,
            failover: true,
        }),
        ..Settings::ana()
    })
}

/// On server A of room `one`, welcomed with [`TOKEN`], having seen messages 1 to 3; then A
/// went away.
fn lost_a(failover: bool) -> (Session, Vec<Action>) {
    let mut session = Session::new(Settings {
        reconnect: Some(Reconnect {
            max_delay: Duration::from_secs(30),
            attempts: None,
            failover,
        }),
        ..Settings::ana()
    });
    connect_to(&mut session, A);
    session.handle(welcome("one", 0, TOKEN));
    for seq in 1..=3 {
        session.handle(Event::Received(format!(
            r#"{{"type":"msg","seq":{seq},"time":"2026-11-26T14:03:07-03:00","from":"bia","text":"m{seq}"}}"#
        )));
    }
    let actions = session.handle(Event::ServerClosed);
    (session, actions)
}

#[test]
fn the_next_server_is_tried_at_once_and_the_backoff_follows_a_failed_round() {
    let (mut session, actions) = lost_a(true);
    assert_eq!(pause(&actions), Some(Duration::ZERO));
    assert!(
        shown(&actions)[0].ends_with("— reconnecting now, to the next server (attempt 1)"),
        "{actions:?}"
    );
    let actions = session.handle(Event::ReconnectFailed("no server answered".into()));
    let second = pause(&actions).expect("another round");
    assert!(second >= Duration::from_millis(250) && second <= Duration::from_millis(500));
    assert!(
        shown(&actions)[0].ends_with(" s (attempt 2)"),
        "{actions:?}"
    );

    // One server: as ever, a pause first.
    let (_, actions) = lost_a(false);
    assert!(pause(&actions).unwrap() >= Duration::from_millis(250));
}

#[test]
fn moving_to_another_server_is_said_and_resumes_with_token_last_seq_and_epoch() {
    let (mut session, _) = lost_a(true);
    let actions = connect_to(&mut session, B);
    assert_eq!(
        shown(&actions),
        [format!(
            "* connected to another server: local 127.0.0.1:50322 → remote {B} (after {A} went \
             away)"
        )]
    );
    assert_eq!(
        json(&actions),
        [format!(
            r#"{{"type":"reconnected","local":"127.0.0.1:50322","remote":"{B}","previous":"{A}"}}"#
        )]
    );
    let hello = &sent(&actions)[0];
    for field in [
        r#""last_seq":3"#.to_string(),
        r#""epoch":"one""#.to_string(),
        format!(r#""token":"{TOKEN}""#),
    ] {
        assert!(hello.contains(&field), "{field} in {hello}");
    }
    // The same room on B: what A's clients said meanwhile, once; nothing about another room.
    let actions = session.handle(welcome("one", 4, TOKEN));
    assert!(
        shown(&actions).iter().all(|line| !line.contains("room")),
        "{actions:?}"
    );
    assert!(actions.contains(&Action::AwaitReplay));

    // Back to A after B went away: the move is said again; the same server is a reconnection.
    session.handle(Event::ServerClosed);
    assert!(shown(&connect_to(&mut session, A))[0].contains(&format!("(after {B} went away)")));
    session.handle(welcome("one", 4, TOKEN));
    session.handle(Event::ServerClosed);
    let actions = connect_to(&mut session, A);
    assert!(
        shown(&actions)[0].starts_with("* reconnected: local "),
        "{actions:?}"
    );
    assert!(!json(&actions)[0].contains("previous"), "{actions:?}");
}

#[test]
fn a_server_of_another_room_is_joined_fresh_and_told_as_another_room() {
    let (mut session, _) = lost_a(true);
    connect_to(&mut session, B);
    let actions = session.handle(welcome("two", 7, "fedcba9876543210fedcba9876543210"));
    let notes = shown(&actions);
    assert!(
        notes.iter().any(
            |note| note.starts_with("* this server holds another room than the one we were in")
        ),
        "{notes:?}"
    );
    assert!(
        notes.iter().all(|note| !note.contains("restarted")),
        "{notes:?}"
    );
    assert!(!actions.contains(&Action::AwaitReplay), "nothing replayed");
}

#[test]
fn servers_that_welcome_and_drop_at_once_meet_a_growing_backoff_and_the_limit() {
    let mut session = several(Some(3));
    let mut pauses = Vec::new();
    let mut last = Vec::new();
    for (n, server) in [A, B, A, B].into_iter().enumerate() {
        connect_to(&mut session, server);
        session.handle(welcome("one", 0, TOKEN));
        last = session.handle(Event::ServerClosed);
        if n < 3 {
            pauses.push(pause(&last).expect("another attempt"));
        }
    }
    assert_eq!(
        pauses[0],
        Duration::ZERO,
        "the first loss: the next server at once"
    );
    assert!(pauses[1] >= Duration::from_millis(250), "{pauses:?}");
    assert!(pauses[2] >= Duration::from_millis(500), "{pauses:?}");
    assert!(
        matches!(last.last(), Some(Action::Finish(End::Lost(error))) if error.starts_with("gave up after 3 attempts")),
        "{last:?}"
    );

    // A connection that stayed up a while: the next loss moves at once again.
    let (mut session, _) = lost_a(true);
    session.handle(Event::ReconnectFailed("no server answered".into()));
    let actions = connect_to(&mut session, B);
    let welcomed = session.handle(welcome("one", 3, TOKEN));
    assert!(welcomed.contains(&Action::AwaitSteady), "{welcomed:?}");
    let _ = actions;
    session.handle(Event::Steady);
    assert_eq!(
        pause(&session.handle(Event::ServerClosed)),
        Some(Duration::ZERO)
    );
}

#[test]
fn a_server_that_gives_no_welcome_in_time_is_skipped_and_lines_typed_go_to_the_next() {
    let mut session = several(None);
    connect_to(&mut session, A);
    session.handle(Event::Typed {
        text: "early".into(),
        terminated: true,
    });
    let actions = session.handle(Event::WelcomeTimeout);
    assert_eq!(pause(&actions), Some(Duration::ZERO), "{actions:?}");
    assert!(
        shown(&actions)[0].starts_with(&format!(
            "* {A}: no welcome in time (not a soquete server?) — skipped"
        )),
        "{actions:?}"
    );
    // The next one is silent too: skipped in its turn, after a pause.
    let actions = connect_to(&mut session, B);
    assert!(actions.contains(&Action::AwaitWelcome), "{actions:?}");
    session.handle(Event::Typed {
        text: "held".into(),
        terminated: true,
    });
    let actions = session.handle(Event::WelcomeTimeout);
    assert!(pause(&actions).unwrap() > Duration::ZERO, "{actions:?}");
    connect_to(&mut session, A);
    let actions = session.handle(welcome("one", 0, TOKEN));
    let said: Vec<String> = sent(&actions)
        .into_iter()
        .filter(|line| line.contains(r#""type":"msg""#))
        .collect();
    assert_eq!(said.len(), 2, "{actions:?}");
    assert!(
        said[0].contains("early") && said[1].contains("held"),
        "{said:?}"
    );
}

#[test]
fn with_one_server_a_missing_welcome_is_waited_for_as_before() {
    let (mut session, _) = lost_a(false);
    connect_to(&mut session, A);
    let actions = session.handle(Event::WelcomeTimeout);
    assert_eq!(pause(&actions), None, "{actions:?}");
}

#[test]
fn giving_up_with_typed_lines_waiting_says_how_many_were_not_sent() {
    let mut session = several(Some(1));
    connect_to(&mut session, A);
    session.handle(welcome("one", 0, TOKEN));
    session.handle(Event::ServerClosed);
    for text in ["one", "two"] {
        session.handle(Event::Typed {
            text: text.into(),
            terminated: true,
        });
    }
    let actions = session.handle(Event::ReconnectFailed("no server answered".into()));
    assert!(
        matches!(actions.last(), Some(Action::Finish(End::Lost(error)))
            if error.ends_with("(no server answered): 2 typed lines not sent")),
        "{actions:?}"
    );
}

#[test]
fn with_several_servers_lines_typed_before_the_first_welcome_wait_for_it() {
    let mut session = several(None);
    connect_to(&mut session, A);
    let actions = session.handle(Event::Typed {
        text: "early".into(),
        terminated: true,
    });
    assert!(
        sent(&actions).is_empty(),
        "not to a server that may be nc -l: {actions:?}"
    );
    let actions = session.handle(welcome("one", 0, TOKEN));
    assert!(
        sent(&actions).iter().any(|line| line.contains("early")),
        "{actions:?}"
    );
}
