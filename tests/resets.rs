//! A client that resets its connection instead of closing it: what it said before the reset is
//! delivered, its last line even without a terminator, whichever of the server's reader and
//! writer meets the reset first. A client that closes while data it has not read is waiting (the
//! greeting, the room's traffic) resets without meaning to, so the same words must arrive as
//! when it closes cleanly.

use std::io::Write;

use serde_json::json;

use crate::support::peer::Peer;
use crate::support::serve::{Serve, start_server};

/// Reads `ana`'s frames until `leaver` leaves; returns the texts `leaver` said before, and the
/// reason of its leave.
fn said_until_leave(ana: &mut Peer, leaver: &str) -> (Vec<String>, String) {
    let mut heard = Vec::new();
    let leave = ana.frames_until(&mut heard, |f| f["type"] == "leave" && f["name"] == leaver);
    let said = heard
        .iter()
        .filter(|msg| msg["from"] == leaver)
        .map(|msg| msg["text"].as_str().unwrap().to_string())
        .collect();
    (said, leave["reason"].as_str().unwrap().to_string())
}

#[test]
fn a_last_line_without_newline_before_a_reset_is_delivered() {
    let (_server, addr) = start_server(&[]);
    let mut ana = Peer::structured(addr, "ana");

    // The course's client as it is when it leaves the greeting unread: "Hello Server", no
    // newline, then a close that the unread greeting turns into a reset.
    let (mut course, _greeting) = Peer::raw(addr);
    course.writer.write_all(b"Hello Server").unwrap();
    course.reset();
    let msg = ana.frame_where(|f| f["type"] == "msg");
    assert_eq!(msg["text"], "Hello Server", "{msg}");
    let guest = msg["from"].as_str().unwrap().to_string();
    let (_, reason) = said_until_leave(&mut ana, &guest);
    assert!(reason.starts_with("connection lost"), "{reason}");

    // A member that has talked: its complete line and its unfinished one, then the reset. Nothing
    // is being written to it, so the reader meets the reset.
    let (mut bia, _greeting) = Peer::raw(addr);
    bia.send("/nick bia");
    ana.frame_where(|f| f["type"] == "nick" && f["new"] == "bia");
    bia.writer.write_all(b"inteira\nmetade").unwrap();
    bia.reset();
    let (said, reason) = said_until_leave(&mut ana, "bia");
    assert_eq!(said, ["inteira", "metade"]);
    assert!(reason.starts_with("connection lost"), "{reason}");
}

#[test]
fn lines_before_a_reset_the_writer_meets_first_are_all_delivered() {
    // Pings every 20 ms: the writer meets the reset while the reader, held to 5 lines a second,
    // still has lines to read before it.
    let (_server, addr) = Serve::new(&["--rate-limit", "5/s,burst=1"])
        .env("SOQUETE_HEARTBEAT_INTERVAL_MS", "20")
        .start();
    let mut ana = Peer::structured(addr, "ana");
    let mut cai = Peer::structured(addr, "cai");
    ana.frame_where(|f| f["type"] == "join" && f["name"] == "cai");
    let texts = ["um", "dois", "tres"];
    let mut burst: String = texts
        .iter()
        .map(|text| format!("{}\n", json!({"type": "msg", "text": text})))
        .collect();
    burst.push_str(&json!({"type": "msg", "text": "sem fim"}).to_string());
    cai.writer.write_all(burst.as_bytes()).unwrap();
    // Pings arrive unread; a reset, so the writer's next ping fails.
    cai.reset();
    let (said, reason) = said_until_leave(&mut ana, "cai");
    assert_eq!(said, ["um", "dois", "tres", "sem fim"]);
    assert!(reason.starts_with("connection lost"), "{reason}");
}

#[test]
fn a_throttled_client_that_resets_leaves_at_once_after_what_it_sent_first() {
    // 2 lines a second: the lines it sends, as many as the kernel takes, would take hours.
    let (_server, addr) = start_server(&["--rate-limit", "2/s,burst=2"]);
    let mut ana = Peer::structured(addr, "ana");
    let (mut rui, _greeting) = Peer::raw(addr);
    let pad = "x".repeat(53);
    let line = |n: usize| format!("{n:06} {pad}");
    let lines: String = (1..=20_000).map(|n| line(n) + "\n").collect();
    rui.writer.set_nonblocking(true).unwrap();
    let mut written = 0;
    while written < lines.len() {
        match rui.writer.write(&lines.as_bytes()[written..]) {
            Ok(n) => written += n,
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(err) => panic!("{err}"),
        }
    }
    let sent = lines[..written].matches('\n').count();
    let first = ana.frame_where(|f| f["type"] == "msg");
    assert_eq!(first["text"], line(1), "{first}");
    let guest = first["from"].as_str().unwrap().to_string();
    let started = std::time::Instant::now();
    rui.reset();
    let (said, reason) = said_until_leave(&mut ana, &guest);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(reason.starts_with("connection lost"), "{reason}");
    // What it sent first still arrives, in order, and only a bounded batch of the rest.
    let expected: Vec<String> = (2..).take(said.len()).map(line).collect();
    assert!(said == expected, "{:?} .. {:?}", said.first(), said.last());
    assert!(
        !said.is_empty() && said.len() < sent / 2,
        "{} of {sent}",
        said.len()
    );
}
