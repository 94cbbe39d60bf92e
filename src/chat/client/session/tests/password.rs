//! A room with a password: every hello carries it (reconnections too), the raw clients' prompt
//! is not shown, and a wrong or missing password ends the session with the server's reason.

use std::time::Duration;

use super::*;
use crate::chat::protocol::Password;

fn with_password(password: Option<&str>) -> Session {
    Session::new(Settings {
        raw: false,
        sync: false,
        name: "ana".into(),
        password: password.map(|p| Password::new(p.into(), "test").unwrap()),
        reconnect: Some(Reconnect {
            max_delay: Duration::from_secs(30),
            attempts: Some(3),
        }),
    })
}

fn connect(session: &mut Session) -> Vec<Action> {
    session.handle(Event::Connected {
        local: "127.0.0.1:50322".parse().unwrap(),
        remote: "127.0.0.1:65432".parse().unwrap(),
    })
}

#[test]
fn every_hello_carries_the_password_reconnections_too() {
    let mut session = with_password(Some("s3cret"));
    let hello = sent(&connect(&mut session));
    assert!(hello[0].contains(r#""password":"s3cret""#), "{hello:?}");
    session.handle(Event::Received("* password:".into()));
    session.handle(Event::Received(WELCOME.into()));
    session.handle(Event::Lost("reset".into()));
    let again = sent(&connect(&mut session));
    assert!(again[0].contains(r#""password":"s3cret""#), "{again:?}");
    assert!(again[0].contains(r#""last_seq""#), "a re-join: {again:?}");
}

#[test]
fn the_prompt_for_raw_clients_is_not_shown() {
    let mut session = with_password(Some("s3cret"));
    connect(&mut session);
    let actions = session.handle(Event::Received("* password:".into()));
    assert!(shown(&actions).is_empty(), "{actions:?}");
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
