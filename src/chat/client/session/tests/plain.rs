//! A `--raw` session, and a server found not to speak soquete.

use super::*;

#[test]
fn sync_end_of_input_waits_for_the_pending_answer() {
    let mut session = connected(true, true);
    session.handle(typed("Hello Server"));
    assert!(session.handle(Event::InputEnded).is_empty());
    let actions = session.handle(Event::Received("Hello Client".into()));
    assert!(actions.contains(&Action::HalfClose));
}

#[test]
fn raw_sends_lines_as_typed_and_half_closes_at_end_of_input() {
    let mut session = connected(true, false);
    assert!(sent(&session.handle(raw(b"hi\n"))).is_empty());
    assert_eq!(sent(&session.handle(typed("olá"))), ["olá\n"]);
    assert_eq!(sent(&session.handle(typed(""))), ["\n"]);
    let last = Event::Typed {
        text: "no newline".into(),
        terminated: false,
    };
    assert_eq!(sent(&session.handle(last)), ["no newline"]);
    let actions = session.handle(Event::InputEnded);
    assert_eq!(actions[0], Action::HalfClose);
    assert_eq!(
        session.handle(raw(b"bye")),
        [Action::Show(Output::Raw(b"bye".to_vec()))]
    );
    let actions = session.handle(Event::ServerClosed);
    assert_eq!(shown(&actions), ["* closed by the server"]);
    assert_eq!(end(&actions), Some(End::Done));
}

fn raw(bytes: &[u8]) -> Event {
    Event::ReceivedRaw(bytes.to_vec())
}

#[test]
fn raw_bytes_are_shown_as_they_arrive_unchanged() {
    let mut session = connected(true, false);
    // A prompt without a newline is shown at once; bytes that are no UTF-8 stay as they are.
    for bytes in [&b"Name: "[..], b"\xff\xfe\r\n", b"two\nlines\n"] {
        assert_eq!(
            session.handle(raw(bytes)),
            [Action::Show(Output::Raw(bytes.to_vec()))]
        );
    }
    // `exit` ends the session only as a whole line, however the bytes are cut.
    assert_eq!(end(&session.handle(raw(b"exiting\nnot exit\nex"))), None);
    let actions = session.handle(raw(b"it\r\nafter"));
    assert_eq!(
        actions[0],
        Action::Show(Output::Raw(b"it\r\nafter".to_vec()))
    );
    assert_eq!(end(&actions), Some(End::Done));
}

#[test]
fn raw_exit_is_sent_and_ends_and_a_peer_exit_ends_too() {
    let mut session = connected(true, false);
    let actions = session.handle(typed("exit"));
    assert_eq!(sent(&actions), ["exit\n"]);
    assert_eq!(end(&actions), Some(End::Done));

    let mut session = connected(true, false);
    let actions = session.handle(typed("/quit"));
    assert!(sent(&actions).is_empty());
    assert_eq!(end(&actions), Some(End::Done));

    // The server's `exit` ends the session, and the client is the one that closes.
    let mut session = connected(true, false);
    let actions = session.handle(raw(b"exit\n"));
    assert_eq!(
        actions[1],
        Action::Show(Output::State {
            human: Some("* the server said exit: connection closed".into()),
            json: r#"{"type":"closed","by":"client"}"#.into()
        })
    );
    assert_eq!(end(&actions), Some(End::Done));
}

const FOREIGN: &str = "* this server does not speak the soquete protocol; use --raw to talk \
                       to it (talking plain lines to it meanwhile)";

#[test]
fn a_server_without_welcome_that_sends_plain_lines_is_talked_to_plainly() {
    let mut session = connected(false, false);
    // Before the welcome is due, a plain line may be a greeting: shown as it is.
    let actions = session.handle(Event::Received("hello from nc".into()));
    assert_eq!(shown(&actions), ["hello from nc"]);
    let actions = session.handle(Event::WelcomeTimeout);
    assert_eq!(shown(&actions), [FOREIGN]);
    assert!(actions.contains(&Action::Heartbeat(false)));
    // From then on, as --raw: plain lines both ways, end of input half-closes.
    assert_eq!(
        shown(&session.handle(Event::Received("{\"a\":1}".into()))),
        ["{\"a\":1}"]
    );
    assert_eq!(sent(&session.handle(typed("oi nc"))), ["oi nc\n"]);
    assert_eq!(session.handle(Event::InputEnded)[0], Action::HalfClose);
    assert!(session.handle(Event::QuitTimeout).is_empty());
    let actions = session.handle(Event::ServerClosed);
    assert_eq!(shown(&actions), ["* closed by the server"]);
    assert_eq!(end(&actions), Some(End::Done));
}

#[test]
fn a_silent_server_gets_a_hint_then_its_first_plain_line_tells() {
    let mut session = connected(false, false);
    let actions = session.handle(Event::WelcomeTimeout);
    assert!(shown(&actions)[0].starts_with("* no welcome from the server yet"));
    assert!(actions.contains(&Action::Heartbeat(false)));
    // Input ended meanwhile: we asked to leave, and a plain server will never confirm.
    assert_eq!(sent(&session.handle(typed("hi"))).len(), 1);
    session.handle(Event::InputEnded);
    let actions = session.handle(Event::Received("who are you?".into()));
    assert_eq!(shown(&actions)[..2], ["who are you?", FOREIGN]);
    assert!(actions.contains(&Action::HalfClose), "{actions:?}");
    assert!(session.handle(Event::QuitTimeout).is_empty());
    assert_eq!(end(&session.handle(Event::ServerClosed)), Some(End::Done));
}

#[test]
fn a_late_welcome_restarts_the_heartbeat() {
    let mut session = connected(false, false);
    session.handle(Event::WelcomeTimeout);
    let actions = session.handle(Event::Received(WELCOME.into()));
    assert!(actions.contains(&Action::Heartbeat(true)), "{actions:?}");
    assert_eq!(sent(&session.handle(typed("oi"))).len(), 1);
}

#[test]
fn a_soquete_server_is_never_taken_for_a_plain_one() {
    let mut session = connected(false, false);
    session.handle(Event::Received("* soquete chat server (group mode)".into()));
    session.handle(Event::Received(WELCOME.into()));
    assert!(session.handle(Event::WelcomeTimeout).is_empty());
    assert!(shown(&session.handle(Event::Received("plain".into()))) == ["plain"]);
    assert_eq!(
        sent(&session.handle(typed("oi"))),
        ["{\"type\":\"msg\",\"text\":\"oi\"}\n"]
    );
}
