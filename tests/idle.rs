//! `--idle-timeout` at its edges: a timeout too large to ever come is no timeout, and a client
//! held back by the rate limit is busy, not idle, however long its turn takes.

use std::io::Write;

use crate::support::peer::Peer;
use crate::support::serve::{console_line, start_server};

#[test]
fn an_idle_timeout_too_large_to_come_is_never_reached() {
    let (_server, addr) = start_server(&["--idle-timeout", &u64::MAX.to_string()]);
    let mut ana = Peer::structured(addr, "ana");
    let (mut bia, _greeting) = Peer::raw(addr);
    bia.send("oi");
    let msg = ana.frame_where(|f| f["type"] == "msg");
    assert_eq!(msg["text"], "oi", "{msg}");
}

#[test]
fn a_client_waiting_for_its_rate_limit_is_not_idle() {
    // One line every 2 s, idle after 1 s: each wait for a token is longer than the timeout. The
    // console is the witness (a member listening would be idle itself).
    let (server, addr) = start_server(&["--rate-limit", "0.5/s,burst=1", "--idle-timeout", "1"]);
    let (mut bia, _greeting) = Peer::raw(addr);
    bia.writer.write_all(b"um\ndois\n").unwrap();
    console_line(&server, |l| l.ends_with("> dois"));
    // Its last line was just let through: it is not idle, and its next line is heard.
    bia.send("tres");
    let next = console_line(&server, |l| {
        l.ends_with("> tres") || l.starts_with("disconnected ")
    });
    assert!(next.ends_with("> tres"), "{next}");
}
