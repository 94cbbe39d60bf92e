//! `--idle-timeout` at its edges: a timeout too large to ever come is no timeout, and a client
//! held back by the rate limit is busy, not idle, however long its turn takes.

use crate::support::peer::Peer;
use crate::support::serve::start_server;

#[test]
fn an_idle_timeout_too_large_to_come_is_never_reached() {
    let (_server, addr) = start_server(&["--idle-timeout", &u64::MAX.to_string()]);
    let mut ana = Peer::structured(addr, "ana");
    let (mut bia, _greeting) = Peer::raw(addr);
    bia.send("oi");
    let msg = ana.frame_where(|f| f["type"] == "msg");
    assert_eq!(msg["text"], "oi", "{msg}");
}
