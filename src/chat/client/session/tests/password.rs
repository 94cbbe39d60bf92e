//! A room with a password: a hello carries it only after the server's prompt (reconnections
//! too), never to a server that did not ask; the prompt is not shown; a wrong or missing
//! password ends the session with the server's reason.

use std::time::Duration;

use super::*;
use crate::chat::protocol::Password;

fn with_password(password: Option<&str>) -> Session {
    Session::new(Settings {
        password: password.map(|p| Password::new(p.into(), "test").unwrap()),
        reconnect: Some(Reconnect {
            max_delay: Duration::from_secs(30),
            attempts: Some(3),
            failover: false,
        }),
        ..Settings::ana()
    })
}

fn connect(session: &mut Session) -> Vec<Action> {
    session.handle(Event::Connected {
        local: "127.0.0.1:50322".parse().unwrap(),
        remote: "127.0.0.1:65432".parse().unwrap(),
    })
}

#[test]
fn the_password_goes_only_after_the_prompt_reconnections_too() {
    let mut session = with_password(Some("s3cret"));
    let actions = connect(&mut session);
    assert!(sent(&actions).is_empty(), "the hello waits: {actions:?}");
    assert!(actions.contains(&Action::AwaitPrompt), "{actions:?}");
    let typed = session.handle(Event::Typed {
        text: "early".into(),
        terminated: true,
    });
    assert!(
        sent(&typed).is_empty(),
        "a line typed waits for the hello: {typed:?}"
    );
    let hello = sent(&session.handle(Event::Received("* password:".into())));
    assert!(hello[0].contains(r#""password":"s3cret""#), "{hello:?}");
    assert!(hello[1].contains("early"), "then what was typed: {hello:?}");
    session.handle(Event::Received(WELCOME.into()));
    session.handle(Event::Lost("reset".into()));
    connect(&mut session);
    let again = sent(&session.handle(Event::Received("* password:".into())));
    assert!(again[0].contains(r#""password":"s3cret""#), "{again:?}");
    assert!(again[0].contains(r#""last_seq""#), "a re-join: {again:?}");
}

#[test]
fn a_server_that_never_asks_never_gets_the_password() {
    // Silent (nc -l): the hello goes when the wait runs out, without it.
    let mut session = with_password(Some("s3cret"));
    connect(&mut session);
    let hello = sent(&session.handle(Event::PromptTimeout));
    assert_eq!(hello.len(), 1, "{hello:?}");
    assert!(!hello[0].contains("s3cret"), "{hello:?}");
    // A prompt that comes after the hello gets nothing more.
    let late = session.handle(Event::Received("* password:".into()));
    assert!(sent(&late).is_empty(), "{late:?}");
    let error =
        r#"{"type":"error","code":"password_required","message":"this room needs a password"}"#;
    let Some(End::Denied(reason)) = end(&session.handle(Event::Received(error.into()))) else {
        panic!("denied");
    };
    assert!(reason.contains("came too late"), "{reason}");

    // A greeting first: the hello goes at once, without it, and the greeting is shown.
    let mut session = with_password(Some("s3cret"));
    connect(&mut session);
    let actions = session.handle(Event::Received("* hello from a plain server".into()));
    let hello = sent(&actions);
    assert!(!hello[0].contains("s3cret"), "{hello:?}");
    assert!(!shown(&actions).is_empty(), "{actions:?}");
    assert!(sent(&session.handle(Event::PromptTimeout)).is_empty());
}

#[test]
fn over_plain_tcp_sending_the_password_warns_once() {
    let mut session = with_password(Some("s3cret"));
    connect(&mut session);
    let actions = session.handle(Event::Received("* password:".into()));
    let warned = |actions: &[Action]| {
        actions.iter().any(
            |a| matches!(a, Action::Show(Output::Note(note)) if note.contains("network readable")),
        )
    };
    assert!(warned(&actions), "{actions:?}");
    session.handle(Event::Received(WELCOME.into()));
    session.handle(Event::Lost("reset".into()));
    connect(&mut session);
    let again = session.handle(Event::Received("* password:".into()));
    assert!(!warned(&again), "once: {again:?}");
}

#[test]
fn the_prompt_for_raw_clients_is_not_shown() {
    let mut session = with_password(Some("s3cret"));
    connect(&mut session);
    let actions = session.handle(Event::Received("* password:".into()));
    let prompt = shown(&actions)
        .into_iter()
        .find(|l| l.contains("* password:"));
    assert!(prompt.is_none(), "{actions:?}");
}

#[test]
fn a_wrong_or_missing_password_ends_the_session_with_the_servers_reason() {
    let mut session = with_password(Some("guess"));
    connect(&mut session);
    let error = r#"{"type":"error","code":"bad_password","message":"wrong \u001b[2Jpassword"}"#;
    let actions = session.handle(Event::Received(error.into()));
    let Some(End::Denied(reason)) = end(&actions) else {
        panic!("denied: {actions:?}");
    };
    assert!(!reason.contains('\u{1b}'), "neutralised: {reason:?}");
    assert!(
        reason.starts_with("wrong ") && reason.ends_with("password"),
        "{reason:?}"
    );
    assert!(session.is_finished());

    let mut session = with_password(None);
    connect(&mut session);
    let error =
        r#"{"type":"error","code":"password_required","message":"this room needs a password"}"#;
    let actions = session.handle(Event::Received(error.into()));
    assert_eq!(
        end(&actions),
        Some(End::Denied(
            "this room needs a password; give it with --password-file FILE or SOQUETE_PASSWORD"
                .into()
        ))
    );
}
