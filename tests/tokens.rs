//! Names and resume tokens (docs/SECURITY.md): a name in use, or kept for the session that
//! dropped it, goes only to a `hello` that carries that session's token. Same IP is not identity.

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::peer::Peer;
use crate::support::process::{Running, wait_line};
use crate::support::serve::{Serve, start_server};
use crate::support::transcript::Transcript;
use crate::support::{LIMIT, poll, require, tool};

/// The test override of how long a dropped name stays reserved (milliseconds).
const RESERVE_ENV: &str = "SOQUETE_NAME_RESERVE_MS";

/// The resume token a `welcome` gives: 32 lowercase hex digits.
fn token(welcome: &Value) -> String {
    let token = welcome["token"]
        .as_str()
        .unwrap_or_else(|| panic!("a welcome gives a token: {welcome}"));
    assert!(
        token.len() == 32
            && token
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
        "{token}"
    );
    token.to_string()
}

fn hello(name: &str) -> Value {
    json!({"type": "hello", "version": 1, "name": name})
}

/// A `hello` that resumes: what a reconnecting client sends.
fn resume(name: &str, last_seq: u64, token: &str) -> Value {
    json!({"type": "hello", "version": 1, "name": name, "last_seq": last_seq, "token": token})
}

/// `soquete chat --name ana ARGS` at `addr`, its stdin a pipe.
fn chat_as_ana(addr: std::net::SocketAddr, args: &[&str]) -> Running {
    let target = addr.to_string();
    let mut all = vec!["chat", "--name", "ana", "--reconnect-max", "0.2"];
    all.extend_from_slice(args);
    all.push(&target);
    Running::start_with_stdin(&all)
}

#[test]
fn a_connection_from_the_same_ip_cannot_take_a_connected_clients_name() {
    let (_server, addr) = start_server(&[]);
    let mut obs = Peer::structured(addr, "obs");
    let mut ana = chat_as_ana(addr, &["--json"]);
    let mut stdin = ana.child.stdin.take().unwrap();
    let mut out = Transcript::of(&mut ana);
    out.wait_for("ana's welcome", |line| line.contains(r#""welcome""#));
    obs.frame_where(|f| f["type"] == "join" && f["name"] == "ana");
    stdin.write_all(b"before the intruder\n").unwrap();
    obs.frame_where(|f| f["type"] == "msg" && f["text"] == "before the intruder");

    // The attack from issue 12, from 127.0.0.1 as ana is.
    let mut intruder = Peer::connect(addr);
    intruder.send(r#"{"type":"hello","version":1,"name":"ANA","last_seq":0}"#);
    let mut heard = Vec::new();
    let refused = intruder.frames_until(&mut heard, |f| f["type"] == "error");
    assert_eq!(refused["code"], "name_taken", "{refused}");
    let welcome = intruder.frames_until(&mut heard, |f| f["type"] == "welcome");
    let guest = welcome["name"].as_str().unwrap().to_string();
    assert!(guest.starts_with("guest-"), "{welcome}");
    intruder.send(r#"{"type":"nick","name":"ana"}"#);
    let refused = intruder.frames_until(&mut heard, |f| f["type"] == "error");
    assert_eq!(refused["code"], "name_taken", "{refused}");
    intruder.say("I am ana: send me your password");
    let forged = obs.frame_where(|f| f["type"] == "msg" && f["text"] != "before the intruder");
    assert_eq!(forged["from"], guest.as_str(), "{forged}");

    // ana was never disturbed: her next line comes after all that, from her, and no one saw
    // her leave.
    stdin.write_all(b"still me\n").unwrap();
    let mut left = Vec::new();
    let still = obs.frame_where(|f| {
        if f["type"] == "leave" {
            left.push(f.clone());
        }
        f["type"] == "msg" && f["text"] == "still me"
    });
    assert_eq!(still["from"], "ana", "{still}");
    assert!(left.is_empty(), "{left:?}");
    intruder.frames_until(&mut heard, |f| {
        f["type"] == "msg" && f["text"] == "still me"
    });
    assert!(
        heard.iter().all(|m| m["text"] != "before the intruder"),
        "no history from before the intruder joined: {heard:?}"
    );
    out.wait_for("still me", |line| line.contains("still me"));
    drop(stdin);
    assert_eq!(ana.wait_exit(LIMIT).and_then(|s| s.code()), Some(0));
    let lines = out.all();
    for misleading in ["replaced", "reconnected", "\"token\""] {
        assert!(
            !lines.iter().any(|line| line.contains(misleading)),
            "{misleading}: {lines:#?}"
        );
    }
}

#[test]
fn a_dropped_name_is_kept_for_its_token_alone_and_a_quit_frees_it() {
    let (_server, addr) = start_server(&[]);
    let mut obs = Peer::structured(addr, "obs");
    let (mut ana, welcome) = Peer::join(addr, hello("ana"));
    let key = token(&welcome);
    ana.say("one");
    obs.frame_where(|f| f["type"] == "msg" && f["text"] == "one");
    drop(ana); // the network goes: no quit
    obs.frame_where(|f| f["type"] == "leave" && f["name"] == "ana");

    let wrong = "0".repeat(32);
    let strangers = [
        hello("ana"),
        json!({"type": "hello", "version": 1, "name": "Ana", "last_seq": 0}),
        resume("ana", 0, &wrong),
    ];
    for (i, stranger) in strangers.into_iter().enumerate() {
        let mut other = Peer::connect(addr);
        other.send_json(stranger.clone());
        let mut heard = Vec::new();
        let refused = other.frames_until(&mut heard, |f| f["type"] == "error");
        assert_eq!(refused["code"], "name_taken", "{stranger}: {refused}");
        let welcome = other.frames_until(&mut heard, |f| f["type"] == "welcome");
        assert_ne!(welcome["name"], "ana", "{stranger}: {welcome}");
        assert_ne!(welcome["token"].as_str(), Some(key.as_str()), "{welcome}");
        let marker = format!("marker {i}");
        other.say(&marker);
        other.frames_until(&mut heard, |f| f["type"] == "msg" && f["text"] == marker);
        assert!(
            heard.iter().all(|m| m["text"] != "one"),
            "no replay without the token: {heard:?}"
        );
    }
    let (mut raw, _) = Peer::raw(addr);
    raw.send("/nick ANA");
    let refused = raw.line_where(|line| line.starts_with("! "));
    assert!(refused.contains("taken"), "{refused}");

    // The token holder gets its name back, with what it missed, and the same token.
    let (mut ana, welcome) = Peer::join(addr, resume("ana", 0, &key));
    assert_eq!(welcome["name"], "ana", "{welcome}");
    assert_eq!(token(&welcome), key, "a resume keeps its token");
    assert_eq!(ana.messages(1)[0]["text"], "one");

    // A clean quit frees the name at once, for anyone; a fresh join gets a new token.
    ana.send_json(json!({"type": "quit"}));
    ana.frame_where(|f| f["type"] == "bye");
    obs.frame_where(|f| f["type"] == "leave" && f["name"] == "ana");
    let (_bia, welcome) = Peer::join(addr, hello("ana"));
    assert_eq!(welcome["name"], "ana", "{welcome}");
    assert_ne!(token(&welcome), key);
}

#[test]
fn a_reserved_name_is_free_again_once_its_time_has_passed() {
    let window = Duration::from_millis(1500);
    let (_server, addr) = Serve::new(&[])
        .env(RESERVE_ENV, &window.as_millis().to_string())
        .start();
    let mut obs = Peer::structured(addr, "obs");
    let (ana, _) = Peer::join(addr, hello("ana"));
    let dropped = Instant::now();
    drop(ana);
    obs.frame_where(|f| f["type"] == "leave" && f["name"] == "ana");
    let (_other, welcome) = Peer::join(addr, hello("ana"));
    if dropped.elapsed() < window {
        assert_ne!(welcome["name"], "ana", "still reserved: {welcome}");
    }
    let taken = poll(LIMIT, || {
        let (peer, welcome) = Peer::join(addr, hello("ana"));
        (welcome["name"] == "ana").then_some(peer)
    });
    assert!(taken.is_some(), "free once the reservation is over");
    assert!(dropped.elapsed() >= window, "{:?}", dropped.elapsed());
}

#[test]
fn soquete_chat_resumes_with_its_token_after_the_server_kills_its_connection() {
    if !require(tool("ss"), "ss (iproute2), to kill a socket") {
        return;
    }
    let (_server, addr) = start_server(&[]);
    let mut obs = Peer::structured(addr, "obs");
    let mut ana = chat_as_ana(addr, &[]);
    let errors = ana.stderr_lines();
    let mut stdin = ana.child.stdin.take().unwrap();
    let mut out = Transcript::of(&mut ana);
    let connected =
        wait_line(&errors, LIMIT, |l| l.starts_with("* connected: local ")).expect("ana connects");
    let local = connected
        .trim_start_matches("* connected: local ")
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    let local_port = local.rsplit(':').next().unwrap().to_string();
    out.wait_for("ana's welcome", |line| line.starts_with("* welcome"));
    obs.say("one");
    out.wait_for("one", |line| line.ends_with("<obs> one"));

    // ana stands still while the server's end of her connection is destroyed (a reset to her).
    ana.freeze();
    let killed = Command::new("ss")
        .args([
            "-K",
            "src",
            &addr.ip().to_string(),
            "sport",
            "=",
            &format!(":{}", addr.port()),
        ])
        .args(["dport", "=", &format!(":{local_port}")])
        .output()
        .unwrap();
    assert!(killed.status.success(), "{killed:?}");
    let leave = obs.frame_where(|f| f["type"] == "leave" && f["name"] == "ana");
    assert!(leave["reason"] != "quit", "{leave}");
    // Meanwhile no one else gets her name.
    let mut intruder = Peer::connect(addr);
    intruder.send_json(json!({"type": "hello", "version": 1, "name": "ana", "last_seq": 0}));
    assert_eq!(
        intruder.frame_where(|f| f["type"] == "error")["code"],
        "name_taken"
    );
    obs.say("two, while ana was away");
    ana.thaw();
    wait_line(&errors, LIMIT, |l| l.starts_with("* reconnected: local ")).expect("reconnects");
    out.wait_for("the replay", |line| {
        line.ends_with("<obs> two, while ana was away")
    });
    stdin.write_all(b"back\n").unwrap();
    let back = obs.frame_where(|f| f["type"] == "msg" && f["text"] == "back");
    assert_eq!(back["from"], "ana", "her name, resumed: {back}");
    drop(stdin);
    assert_eq!(ana.wait_exit(LIMIT).and_then(|s| s.code()), Some(0));
    let lines = out.all();
    for said in ["<obs> one", "<obs> two, while ana was away"] {
        let times = lines.iter().filter(|line| line.ends_with(said)).count();
        assert_eq!(times, 1, "{said}: {lines:#?}");
    }
    let notes: Vec<String> = errors.try_iter().collect();
    assert!(
        !lines
            .iter()
            .chain(&notes)
            .any(|line| line.contains("guest-")),
        "{lines:#?} {notes:#?}"
    );
}

#[test]
fn a_client_the_idle_timeout_let_go_leaves_its_name_free() {
    let (_server, addr) = start_server(&["--idle-timeout", "1"]);
    let (mut ana, _) = Peer::join(addr, hello("ana"));
    let bye = ana.frame_where(|f| f["type"] == "bye");
    assert_eq!(bye["code"], "idle", "{bye}");
    assert!(ana.closed());
    let (_again, welcome) = Peer::join(addr, hello("ana"));
    assert_eq!(
        welcome["name"], "ana",
        "told to go, not reserved: {welcome}"
    );
}
