use super::*;

#[test]
fn raw_bytes_become_whole_lines_at_once_and_a_prompt_after_a_wait() {
    let now = Instant::now();
    let mut raw = RawLines::default();
    assert!(raw.push(b"Name: ", now).is_empty());
    assert_eq!(raw.due, Some(now + PARTIAL_LINE_WAIT));
    assert_eq!(raw.take_partial(false, now).as_deref(), Some("Name: "));
    assert_eq!(raw.due, None);
    assert_eq!(raw.push(b"ana\r\nol", now), ["ana"]);
    assert_eq!(raw.push(b"\xc3\xa1\nx\n\n", now), ["ol\u{e1}", "x", ""]);
    assert_eq!(raw.due, None);
    assert_eq!(raw.take_partial(true, now), None);
}

#[test]
fn a_character_cut_in_two_waits_once_for_its_end() {
    let now = Instant::now();
    let mut raw = RawLines::default();
    raw.push("olá".as_bytes().split_last().unwrap().1, now);
    assert_eq!(raw.take_partial(false, now).as_deref(), Some("ol"));
    assert!(raw.due.is_some(), "the cut character waits");
    assert_eq!(raw.push(b"\xa1!", now), Vec::<String>::new());
    assert_eq!(raw.take_partial(false, now).as_deref(), Some("\u{e1}!"));
    // A cut character that never ends is shown as it is after its wait.
    raw.push(b"\xc3", now);
    assert_eq!(raw.take_partial(false, now).as_deref(), Some("\u{fffd}"));
    assert_eq!(raw.due, None);
}

/// Every human-readable line built from a hostile server's frames, as the session makes it.
fn human_lines(frames: &[String]) -> Vec<String> {
    use super::super::session::{Action, Session, Settings};
    let mut session = Session::new(Settings::ana());
    let mut actions = session.handle(Event::Connected {
        local: "127.0.0.1:50322".parse().unwrap(),
        remote: "127.0.0.1:65432".parse().unwrap(),
    });
    for frame in frames {
        actions.extend(session.handle(Event::Received(frame.clone())));
    }
    actions.extend(session.handle(Event::ReceivedRaw(b"\x1b[2Jraw\n".to_vec())));
    let lines: Vec<String> = actions
        .iter()
        .filter_map(|action| match action {
            Action::Show(output) => match neutralized(output) {
                Output::Data { human, .. } => Some(human),
                Output::State { human, .. } => human,
                Output::Note(note) => Some(note),
                Output::Raw(_) => None,
            },
            _ => None,
        })
        .collect();
    assert!(lines.len() > frames.len(), "{lines:#?}");
    lines
}

#[test]
fn escapes_in_frames_never_reach_the_terminal() {
    const BAD: &str = "\u{1b}]2;PWNED-TITLE\u{7}\u{1b}[2J\u{9b}31m\u{8}";
    let frames = [
        serde_json::json!({"type":"welcome","version":1,"server":"soquete","mode":"group",
            "name":format!("ana{BAD}"),"room_size":2}),
        serde_json::json!({"type":"msg","seq":1,"time":"2026-11-26T14:03:07-03:00",
            "from":format!("bia{BAD}"),"text":format!("oi{BAD}!")}),
        serde_json::json!({"type":"msg","seq":2,"time":"2026-11-26T14:03:07-03:00",
            "from":"bia","text":BAD,"action":true}),
        serde_json::json!({"type":"join","time":"2026-11-26T14:03:07-03:00",
            "name":BAD,"addr":BAD}),
        serde_json::json!({"type":"leave","time":"2026-11-26T14:03:07-03:00",
            "name":BAD,"reason":BAD}),
        serde_json::json!({"type":"nick","time":"2026-11-26T14:03:07-03:00",
            "old":BAD,"new":BAD}),
        serde_json::json!({"type":"who","members":[{"name":BAD,"addr":BAD,"kind":BAD}]}),
        serde_json::json!({"type":"notice","text":format!("aviso{BAD}")}),
        serde_json::json!({"type":"error","code":BAD,"message":BAD}),
        serde_json::json!({"type":"bye","reason":format!("tchau{BAD}")}),
    ];
    let mut frames: Vec<String> = frames.iter().map(|f| f.to_string()).collect();
    frames.insert(0, format!("* plain greeting{BAD}"));
    let lines = human_lines(&frames);
    for line in &lines {
        assert!(
            !line.chars().any(|c| c.is_control()),
            "a control character on the terminal: {line:?}"
        );
    }
    let all = lines.join("\n");
    for text in ["oi", "aviso", "tchau", "plain greeting"] {
        assert!(all.contains(text), "{text} is still shown: {lines:#?}");
    }
    assert!(all.contains("<bia\u{fffd}>"), "{lines:#?}");
}

#[test]
fn raw_bytes_for_a_terminal_keep_their_lines_and_lose_their_escapes() {
    let bytes = b"\x1b]2;PWNED-TITLE\x07\x1b[2Jafter\r\nName: \x1b[";
    assert_eq!(neutralized_raw(bytes), "after\nName: ");
}

#[test]
fn an_endless_line_is_cut_at_the_protocol_limit() {
    let mut raw = RawLines::default();
    let lines = raw.push(&vec![b'x'; MAX_FRAME_BYTES + 1], Instant::now());
    assert_eq!(lines.len(), 1);
    assert_eq!(raw.due, None);
}
