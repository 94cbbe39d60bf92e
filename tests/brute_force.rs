//! Guessing a room's password: each source address's tries wait in line, the pause doubling
//! with each failure, and the waiting is done on the guesser's connections, so the room and
//! every other address go on as if nothing happened. Pauses are shortened here with
//! `SOQUETE_PASSWORD_DELAY_MS` (the first pause; it doubles up to 20 times it).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use serde_json::json;
use socket2::{Domain, Socket, Type};

use crate::password::{PASSWORD, locked};
use crate::support::LIMIT;
use crate::support::peer::Peer;
use crate::support::serve::console_line;

/// Another address on loopback, for the one that guesses (all of 127/8 is loopback on Linux).
const GUESSER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// A raw connection from `source` to `addr`, past its password prompt.
fn raw_from(source: IpAddr, addr: SocketAddr) -> Peer {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::new(source, 0).into()).unwrap();
    socket.connect_timeout(&addr.into(), LIMIT).unwrap();
    let mut peer = Peer::new(socket.into());
    assert_eq!(peer.line(), "* password:");
    peer
}

#[test]
fn each_wrong_password_from_an_address_waits_twice_as_long_as_the_one_before() {
    let (server, addr) = locked("doubling", &[])
        .env("SOQUETE_PASSWORD_DELAY_MS", "150")
        .start();
    let mut since_first = Vec::new();
    let mut first_sent = None;
    for n in 1..=4 {
        // Counted from before the first connection: the server may start its clock when it
        // accepts, which on a busy machine can be well before the guess is sent.
        let first = *first_sent.get_or_insert_with(Instant::now);
        let mut guess = raw_from(GUESSER, addr);
        guess.send(&format!("guess {n}"));
        assert_eq!(guess.line(), "! wrong password");
        since_first.push(first.elapsed().as_millis());
        assert!(guess.closed(), "closed after the error");
        let tally = console_line(&server, |line| line.contains("denied"));
        let tries = if n == 1 { "try" } else { "tries" };
        assert!(
            tally.ends_with(&format!("({n} failed {tries} from 127.0.0.2)")),
            "{tally}"
        );
        assert!(!tally.contains("guess"), "never the password: {tally}");
    }
    // Each try is checked no sooner than the pauses before it allow (150, then 300, then
    // 600 ms), counted from the first one's connecting, whatever else slows the machine down.
    for (took, least) in since_first.iter().zip([0, 150, 450, 1050]) {
        assert!(
            *took >= least,
            "pauses of 150, 300, 600 ms: {since_first:?}"
        );
    }
    // Another address is not held up: while the guesser's fifth try waits its 1.2 s, a right
    // password from elsewhere goes in.
    let mut fifth = raw_from(GUESSER, addr);
    fifth.send("guess 5");
    let mut ana = raw_from(IpAddr::V4(Ipv4Addr::LOCALHOST), addr);
    ana.send(PASSWORD);
    ana.line_where(|line| line.starts_with("* welcome to soquete"));
    let next = console_line(&server, |line| {
        line.contains("127.0.0.2") || line.contains("guest-")
    });
    assert!(
        next.starts_with("connected"),
        "in before the guesser's next try: {next}"
    );
    assert_eq!(fifth.line(), "! wrong password");
}

#[test]
fn the_room_goes_on_while_one_address_hammers_and_a_try_beyond_eight_waiting_is_refused() {
    // Tries 2 s apart at least: the room's exchange below happens between the first two.
    let (server, addr) = locked("hammer", &[])
        .env("SOQUETE_PASSWORD_DELAY_MS", "2000")
        .start();
    let mut ana = Peer::connect(addr);
    ana.send_json(json!({"type": "hello", "version": 1, "name": "ana", "password": PASSWORD}));
    ana.frame_where(|f| f["type"] == "welcome");

    // The first is checked at once, the next eight wait in line (2 s, 6 s, 14 s …). Each
    // guesses as it connects: at most 8 from one address wait at the prompt itself.
    let _guesses: Vec<Peer> = (0..9)
        .map(|n| {
            let mut guess = raw_from(GUESSER, addr);
            guess.send(&format!("guess {n}"));
            guess
        })
        .collect();
    console_line(&server, |line| {
        line.contains("(1 failed try from 127.0.0.2)")
    });
    // One more at once is refused unchecked (whichever the server read last).
    let mut tenth = raw_from(GUESSER, addr);
    tenth.send("guess 10");
    console_line(&server, |line| {
        line.contains("too many tries waiting from its address")
    });

    // Meanwhile the room is as fast as ever: bia comes in and they talk, both ways.
    let mut bia = raw_from(IpAddr::V4(Ipv4Addr::LOCALHOST), addr);
    bia.send(PASSWORD);
    bia.line_where(|line| line.starts_with("* welcome to soquete"));
    bia.send("oi ana");
    assert_eq!(ana.frame_where(|f| f["type"] == "msg")["text"], "oi ana");
    ana.say("oi bia");
    bia.line_where(|line| line.ends_with("<ana> oi bia"));
    let console: Vec<String> = server.lines.try_iter().collect();
    assert!(
        console.iter().all(|line| !line.contains("(2 failed tries")),
        "the room's exchange came before the guesser's second try: {console:#?}"
    );
}
