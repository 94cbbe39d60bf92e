//! The session event by event, as a user would check it: connecting, typing, receiving frames,
//! turn-taking and leaving; `plain` and `rejoin` hold the tests of those parts, on the helpers
//! here.

use super::*;

mod failover;
mod password;
mod plain;
mod rejoin;
mod token;

impl Settings {
    /// A structured client named ana, no password, plain TCP, no reconnection: what most tests
    /// start from, changing a field or two.
    pub(crate) fn ana() -> Settings {
        Settings {
            raw: false,
            sync: false,
            name: "ana".into(),
            password: None,
            encrypted: false,
            reconnect: None,
        }
    }
}

fn connected(raw: bool, sync: bool) -> Session {
    let mut session = Session::new(Settings {
        raw,
        sync,
        ..Settings::ana()
    });
    session.handle(Event::Connected {
        local: "127.0.0.1:50322".parse().unwrap(),
        remote: "127.0.0.1:65432".parse().unwrap(),
    });
    session
}

fn typed(text: &str) -> Event {
    Event::Typed {
        text: text.into(),
        terminated: true,
    }
}

fn sent(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|action| match action {
            Action::Send(bytes) => Some(String::from_utf8(bytes.clone()).unwrap()),
            _ => None,
        })
        .collect()
}

fn shown(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|action| match action {
            Action::Show(Output::Data { human, .. }) => Some(human.clone()),
            Action::Show(Output::Note(note)) => Some(note.clone()),
            Action::Show(Output::State { human, .. }) => human.clone(),
            _ => None,
        })
        .collect()
}

fn end(actions: &[Action]) -> Option<End> {
    actions.iter().find_map(|action| match action {
        Action::Finish(end) => Some(end.clone()),
        _ => None,
    })
}

const WELCOME: &str = r#"{"type":"welcome","version":1,"server":"soquete","mode":"group","name":"ana","room_size":2}"#;
const FROM_BIA: &str =
    r#"{"type":"msg","seq":1,"time":"2026-11-26T14:03:07-03:00","from":"bia","text":"oi"}"#;
const FROM_ANA: &str =
    r#"{"type":"msg","seq":2,"time":"2026-11-26T14:03:08-03:00","from":"ana","text":"olá"}"#;

#[test]
fn connecting_shows_both_ends_and_says_hello() {
    let mut session = Session::new(Settings::ana());
    let actions = session.handle(Event::Connected {
        local: "127.0.0.1:50322".parse().unwrap(),
        remote: "127.0.0.1:65432".parse().unwrap(),
    });
    assert_eq!(
        shown(&actions),
        ["* connected: local 127.0.0.1:50322 → remote 127.0.0.1:65432"]
    );
    assert_eq!(
        sent(&actions),
        ["{\"type\":\"hello\",\"version\":1,\"name\":\"ana\"}\n"]
    );
}

#[test]
fn greeting_is_a_notice_and_frames_render_as_text() {
    let mut session = connected(false, false);
    // Shown as it comes: soquete's greeting starts with `* ` itself.
    assert_eq!(
        shown(&session.handle(Event::Received("* soquete chat server".into()))),
        ["* soquete chat server"]
    );
    let actions = session.handle(Event::Received(WELCOME.into()));
    assert!(shown(&actions)[0].starts_with("* welcome to soquete (group mode)"));
    assert!(actions.contains(&Action::Rename("ana".into())));
    assert_eq!(
        shown(&session.handle(Event::Received(FROM_BIA.into()))),
        ["[14:03:07] <bia> oi"]
    );
}

#[test]
fn json_output_is_the_frame_as_received() {
    let mut session = connected(false, false);
    let actions = session.handle(Event::Received(FROM_BIA.into()));
    assert_eq!(
        actions,
        [Action::Show(Output::Data {
            human: "[14:03:07] <bia> oi".into(),
            json: FROM_BIA.into()
        })]
    );
    let actions = session.handle(Event::Received("plain".into()));
    let Action::Show(Output::Data { json, .. }) = &actions[0] else {
        panic!("{actions:?}")
    };
    assert_eq!(json, r#"{"type":"line","text":"plain"}"#);
}

#[test]
fn lines_and_commands_are_sent_as_msg_frames_and_quit_as_quit() {
    let mut session = connected(false, false);
    assert_eq!(
        sent(&session.handle(typed("olá, mundo"))),
        ["{\"type\":\"msg\",\"text\":\"olá, mundo\"}\n"]
    );
    assert_eq!(
        sent(&session.handle(typed("/nick bia"))),
        ["{\"type\":\"msg\",\"text\":\"/nick bia\"}\n"]
    );
    assert!(sent(&session.handle(typed("   "))).is_empty());
    let actions = session.handle(typed("exit"));
    assert_eq!(sent(&actions), ["{\"type\":\"quit\"}\n"]);
    assert!(actions.contains(&Action::AwaitConfirmation));
    assert_eq!(
        shown(&session.handle(typed("late"))),
        ["* leaving: line not sent"]
    );
}

#[test]
fn end_of_input_leaves_and_bye_ends_normally() {
    let mut session = connected(false, false);
    session.handle(Event::Received(WELCOME.into()));
    let actions = session.handle(Event::InputEnded);
    assert_eq!(sent(&actions), ["{\"type\":\"quit\"}\n"]);
    let actions = session.handle(Event::Received(
        r#"{"type":"bye","reason":"you left"}"#.into(),
    ));
    assert_eq!(
        shown(&actions),
        ["* bye: you left", "* closed by the server"]
    );
    assert_eq!(end(&actions), Some(End::Done));
    assert!(session.is_finished());
    assert!(session.handle(Event::ServerClosed).is_empty());
}

#[test]
fn close_without_bye_is_a_lost_connection_but_after_quit_it_is_not() {
    let mut session = connected(false, false);
    let actions = session.handle(Event::ServerClosed);
    assert!(matches!(end(&actions), Some(End::Lost(_))));

    let mut session = connected(false, false);
    session.handle(typed("/quit"));
    assert_eq!(end(&session.handle(Event::ServerClosed)), Some(End::Done));
}

#[test]
fn sync_refuses_a_second_line_until_an_answer_comes() {
    let mut session = connected(false, true);
    session.handle(Event::Received(WELCOME.into()));
    assert_eq!(sent(&session.handle(typed("q1"))).len(), 1);
    let actions = session.handle(typed("q2"));
    assert!(sent(&actions).is_empty());
    assert_eq!(
        shown(&actions),
        ["* wait for the answer before sending again (--sync): line not sent"]
    );
    // Our own message echoed back is no answer.
    session.handle(Event::Received(FROM_ANA.into()));
    assert!(sent(&session.handle(typed("q2"))).is_empty());
    // The answer comes after our message in the room's order.
    session.handle(Event::Received(FROM_BIA.replace("\"seq\":1", "\"seq\":3")));
    assert_eq!(sent(&session.handle(typed("q3"))).len(), 1);
    // Leaving is never out of turn.
    assert_eq!(
        sent(&session.handle(typed("/quit"))),
        ["{\"type\":\"quit\"}\n"]
    );
}

#[test]
fn sync_leaving_goes_out_even_out_of_turn_with_no_refusal() {
    for quit in ["exit", "/quit", " exit "] {
        let mut session = connected(false, true);
        session.handle(Event::Received(WELCOME.into()));
        session.handle(typed("x1"));
        // Out of turn: refused, not sent, not kept for later.
        let actions = session.handle(typed("x2"));
        assert!(sent(&actions).is_empty());
        assert_eq!(shown(&actions).len(), 1, "{quit}: one refusal");
        let actions = session.handle(typed(quit));
        assert_eq!(sent(&actions), ["{\"type\":\"quit\"}\n"], "{quit}");
        assert!(shown(&actions).is_empty(), "{quit}: no refusal notice");
        assert!(actions.contains(&Action::AwaitConfirmation));
    }
    // --raw: `exit` goes out as a line, `/quit` leaves without a word; neither refused.
    for (quit, wire) in [("exit", vec!["x1\n", "exit\n"]), ("/quit", vec!["x1\n"])] {
        let mut session = connected(true, true);
        let mut all = sent(&session.handle(typed("x1")));
        assert!(sent(&session.handle(typed("x2"))).is_empty());
        let actions = session.handle(typed(quit));
        all.extend(sent(&actions));
        assert_eq!(all, wire, "{quit}");
        assert!(
            shown(&actions).iter().all(|l| !l.contains("--sync")),
            "{quit}"
        );
        assert_eq!(end(&actions), Some(End::Done), "{quit}");
    }
}

#[test]
fn leaving_waits_again_while_the_server_works_through_our_lines() {
    let mut session = connected(false, false);
    session.handle(Event::Received(WELCOME.into()));
    session.handle(typed("olá"));
    let actions = session.handle(Event::InputEnded);
    assert_eq!(sent(&actions), ["{\"type\":\"quit\"}\n"]);
    assert!(actions.contains(&Action::AwaitConfirmation));
    // Each echo (or any other frame) is progress: the wait for the bye starts over.
    let actions = session.handle(Event::Received(FROM_ANA.into()));
    assert!(actions.contains(&Action::AwaitConfirmation));
    let actions = session.handle(Event::Received(FROM_BIA.replace("\"seq\":1", "\"seq\":3")));
    assert!(actions.contains(&Action::AwaitConfirmation));
    // A ping only shows the server alive, not progressing.
    assert!(
        session
            .handle(Event::Received(r#"{"type":"ping"}"#.into()))
            .is_empty()
    );
    // After a stretch of no progress at all, the wait ends.
    let actions = session.handle(Event::QuitTimeout);
    assert!(matches!(end(&actions), Some(End::Lost(_))));

    // The bye ends it, with no new wait.
    let mut session = connected(false, false);
    session.handle(Event::Received(WELCOME.into()));
    session.handle(Event::InputEnded);
    let actions = session.handle(Event::Received(
        r#"{"type":"bye","reason":"you left"}"#.into(),
    ));
    assert!(!actions.contains(&Action::AwaitConfirmation));
    assert_eq!(end(&actions), Some(End::Done));
}

#[test]
fn connection_errors_end_as_lost_with_a_json_event() {
    let mut session = connected(false, false);
    let actions = session.handle(Event::Lost("Connection reset by peer".into()));
    assert_eq!(
        actions[0],
        Action::Show(Output::State {
            human: None,
            json: r#"{"type":"lost","error":"Connection reset by peer"}"#.into()
        })
    );
    assert_eq!(
        end(&actions),
        Some(End::Lost("Connection reset by peer".into()))
    );
}

#[test]
fn renames_follow_the_server() {
    let mut session = connected(false, true);
    session.handle(Event::Received(WELCOME.replace("\"ana\"", "\"ana2\"")));
    let nick = r#"{"type":"nick","time":"2026-11-26T14:03:07-03:00","old":"ana2","new":"bea"}"#;
    assert!(
        session
            .handle(Event::Received(nick.into()))
            .contains(&Action::Rename("bea".into()))
    );
    let own = FROM_ANA.replace("\"ana\"", "\"bea\"");
    session.handle(typed("q"));
    session.handle(Event::Received(own));
    assert!(
        sent(&session.handle(typed("q2"))).is_empty(),
        "own echo is no answer"
    );
}
