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
