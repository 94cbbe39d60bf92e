//! Connections at a password room's prompt: each holds a thread while it waits for its line, so
//! one address may keep at most 8 there at once (more are told so in one line and closed at
//! once), and they do not take the seats of `--max-clients` until their password is right.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use serde_json::json;
use socket2::{Domain, Socket, Type};

use crate::password::{PASSWORD, locked};
use crate::support::LIMIT;
use crate::support::peer::Peer;

/// Another address on loopback, for the one that floods (all of 127/8 is loopback on Linux).
const FLOODER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));

/// A connection from `source` to `addr`, and the first line the server sent it.
fn from(source: IpAddr, addr: SocketAddr) -> (Peer, String) {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::new(source, 0).into()).unwrap();
    socket.connect_timeout(&addr.into(), LIMIT).unwrap();
    let mut peer = Peer::new(socket.into());
    let first = peer.line();
    (peer, first)
}

#[test]
fn one_address_keeps_at_most_eight_connections_at_the_prompt() {
    let (_server, addr) = locked("door-flood", &[]).start();
    let mut held = Vec::new();
    let (mut refused, mut closing) = (Vec::new(), Vec::new());
    for _ in 0..20 {
        let (peer, first) = from(FLOODER, addr);
        if first == "* password:" {
            held.push(peer);
        } else {
            refused.push(first);
            closing.push(peer);
        }
    }
    for peer in &mut closing {
        assert!(peer.closed(), "refused, then closed");
    }
    assert_eq!(held.len(), 8, "refused: {refused:?}");
    assert!(
        refused[0].starts_with("* too many connections from your address"),
        "{refused:?}"
    );
    // Someone from another address still gets in.
    let (mut ana, first) = from(IpAddr::V4(Ipv4Addr::LOCALHOST), addr);
    assert_eq!(first, "* password:");
    ana.send(PASSWORD);
    ana.line_where(|line| line.starts_with("* welcome to soquete"));
}

#[test]
fn silent_connections_at_the_prompt_take_no_seat_of_max_clients() {
    let (_server, addr) = locked("door-seats", &["--max-clients", "1"]).start();
    let silent: Vec<Peer> = (0..5)
        .map(|_| {
            let (peer, first) = from(FLOODER, addr);
            assert_eq!(first, "* password:");
            peer
        })
        .collect();
    let mut ana = Peer::connect(addr);
    assert_eq!(ana.line(), "* password:");
    let mut bia = Peer::connect(addr);
    assert_eq!(bia.line(), "* password:");
    ana.send_json(json!({"type": "hello", "version": 1, "name": "ana", "password": PASSWORD}));
    ana.frame_where(|f| f["type"] == "welcome");
    // The one seat is ana's now: bia, at the door meanwhile, is told the server is full.
    bia.send_json(json!({"type": "hello", "version": 1, "name": "bia", "password": PASSWORD}));
    let bye = bia.frame_where(|f| f["type"] != "ping");
    assert_eq!(bye["type"], "bye", "{bye}");
    assert_eq!(bye["code"], "full", "{bye}");
    // And a connection made now is refused at once, never prompted.
    let (_, first) = from(IpAddr::V4(Ipv4Addr::LOCALHOST), addr);
    assert!(first.starts_with("* server full"), "{first}");
    drop(silent);
}

#[test]
fn one_address_hammering_the_door_makes_a_line_a_second_on_the_console() {
    let (server, addr) = locked("door-console", &[]).start();
    let flooder = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 4));
    let mut held = Vec::new();
    for _ in 0..40 {
        let (peer, first) = from(flooder, addr);
        if first == "* password:" {
            held.push(peer);
        }
    }
    // A marker: someone else comes in.
    let mut ana = Peer::connect(addr);
    assert_eq!(ana.line(), "* password:");
    ana.send_json(json!({"type": "hello", "version": 1, "name": "ana", "password": PASSWORD}));
    ana.frame_where(|f| f["type"] == "welcome");
    let mut console = Vec::new();
    crate::support::serve::console_line(&server, |line| {
        console.push(line.to_string());
        line.starts_with("connected") && line.contains("ana")
    });
    let denied = console
        .iter()
        .filter(|line| line.starts_with("denied 127.0.0.4"))
        .count();
    assert!(
        (1..=4).contains(&denied),
        "32 refusals, at most a line a second: {console:#?}"
    );
    let summary = crate::support::serve::console_line(&server, |line| {
        line.contains("more connections from 127.0.0.4")
    });
    assert!(summary.starts_with("denied "), "{summary}");
    drop(held);
}
