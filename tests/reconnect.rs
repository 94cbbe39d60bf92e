//! Losing the server and coming back: the chat client reconnects (to a server the test plays,
//! and to a `soquete serve` killed and restarted), and the server resumes clients from its
//! history and its `--log`.

use std::io::Write;

use serde_json::{Value, json};

use crate::support::LIMIT;
use crate::support::fake_server::{FakeServer, Scripted};
use crate::support::peer::Peer;
use crate::support::process::{Running, collect_until, wait_line};
use crate::support::serve::{Serve, start_server};
use crate::support::transcript::Transcript;

/// How many of `lines` contain `wanted`.
fn count(lines: &[String], wanted: &str) -> usize {
    lines.iter().filter(|line| line.contains(wanted)).count()
}

/// `soquete chat --name ana FLAGS` connected to `target`, pausing at most 0.2 s before each
/// attempt to reconnect, with `env` added to its environment.
fn ana_reconnecting_to(target: &str, flags: &[&str], env: &[(&str, &str)]) -> Running {
    let mut args = vec!["chat", "--name", "ana", "--reconnect-max", "0.2"];
    args.extend_from_slice(flags);
    args.push(target);
    Running::start_with_stdin_env(&args, env)
}

/// A plain `hello` as `name`.
fn hello(name: &str) -> Value {
    json!({"type": "hello", "version": 1, "name": name})
}

/// What a log keeps of a resume token: its SHA-256, in hex.
fn sha256_hex(token: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(token.as_bytes());
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The `seq` of every message frame in `frames`.
fn seqs(frames: &[Value]) -> Vec<u64> {
    frames.iter().map(|m| m["seq"].as_u64().unwrap()).collect()
}

#[test]
fn client_reconnects_after_a_reset_resumes_once_and_delivers_what_was_typed_meanwhile() {
    let server = FakeServer::start();
    let mut client = ana_reconnecting_to(&server.target(), &[], &[]);
    let errors = client.stderr_lines();
    let mut stdin = client.child.stdin.take().unwrap();
    let mut out = Transcript::of(&mut client);

    let mut first = server.next_peer();
    let hello = first.hello();
    assert_eq!(hello["name"], "ana");
    assert!(hello.get("last_seq").is_none(), "{hello}");
    first.welcome("ana", 0, None);
    for seq in 1..=3 {
        first.msg(seq, "bia", &format!("m{seq}"));
    }
    out.wait_for("m3", |line| line.ends_with("<bia> m3"));
    first.reset();

    let lost = wait_line(&errors, LIMIT, |line| line.starts_with("* connection lost"))
        .expect("the loss is shown");
    assert!(lost.ends_with("(attempt 1)"), "{lost}");
    assert!(lost.contains("— reconnecting in "), "{lost}");
    stdin
        .write_all("typed while away\n/me still here\n".as_bytes())
        .unwrap();

    let mut second = server.next_peer();
    let hello = second.hello();
    assert_eq!(hello["name"], "ana", "the same name");
    assert_eq!(hello["last_seq"], 3, "{hello}");
    second.welcome("ana", 5, None);
    for seq in 3..=5 {
        second.msg(seq, "bia", &format!("m{seq}"));
    }
    wait_line(&errors, LIMIT, |line| {
        line.starts_with("* reconnected: local 127.0.0.1:")
    })
    .expect("the re-join is shown");
    let typed = second.frame();
    assert_eq!(typed["text"], "typed while away", "{typed}");
    let typed = second.frame();
    assert_eq!(typed["text"], "/me still here", "{typed}");
    drop(stdin);
    assert!(second.said_until_quit().is_empty());
    assert_eq!(client.wait_exit(LIMIT).and_then(|s| s.code()), Some(0));

    let lines = out.all();
    for seq in 1..=5 {
        assert_eq!(count(&lines, &format!("<bia> m{seq}")), 1, "{lines:#?}");
    }
    assert_eq!(count(&lines, "* welcome to soquete-test"), 2, "{lines:#?}");
}

#[test]
fn a_silent_server_is_lost_after_the_heartbeat_timeout_and_pings_are_never_shown() {
    let server = FakeServer::start();
    let mut client = ana_reconnecting_to(
        &server.target(),
        &["--json"],
        &[("SOQUETE_HEARTBEAT_TIMEOUT_MS", "1000")],
    );
    let errors = client.stderr_lines();
    let stdin = client.child.stdin.take().unwrap();
    let mut out = Transcript::of(&mut client);

    // Half-open: the connection stays up, but after a ping and one message nothing more comes.
    let mut first = server.next_peer();
    first.hello();
    first.welcome("ana", 0, None);
    first.send(r#"{"type":"ping"}"#);
    first.msg(1, "bia", "then silence");
    out.wait_for("the message", |line| line.contains("then silence"));
    let reconnecting = out.wait_for("the loss", |line| line.contains(r#""reconnecting""#));
    let event: serde_json::Value = serde_json::from_str(&reconnecting).unwrap();
    assert_eq!(event["attempt"], 1, "{event}");
    assert!(
        event["error"].as_str().unwrap().contains("heartbeat"),
        "{event}"
    );
    let lost = wait_line(&errors, LIMIT, |line| line.starts_with("* connection lost"))
        .expect("the loss is on stderr too");
    assert!(lost.contains("no word from the server in 1.0 s"), "{lost}");

    let mut second = server.next_peer();
    assert_eq!(second.hello()["last_seq"], 1);
    second.welcome("ana", 1, None);
    out.wait_for("the reconnection", |line| line.contains(r#""reconnected""#));
    drop(stdin);
    assert!(second.said_until_quit().is_empty());
    assert_eq!(client.wait_exit(LIMIT).and_then(|s| s.code()), Some(0));
    drop(first);

    let lines = out.all();
    assert_eq!(count(&lines, "ping"), 0, "{lines:#?}");
    for line in &lines {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|err| panic!("not JSON: {line}: {err}"));
    }
}

#[test]
fn a_server_shutting_down_is_waited_for_and_missed_messages_are_counted() {
    let server = FakeServer::start();
    let mut client = ana_reconnecting_to(&server.target(), &[], &[]);
    let errors = client.stderr_lines();
    let stdin = client.child.stdin.take().unwrap();

    let mut first = server.next_peer();
    first.hello();
    first.welcome("ana", 10, None);
    first.send(r#"{"type":"bye","reason":"the server is shutting down","code":"shutdown"}"#);
    drop(first);
    let lost = wait_line(&errors, LIMIT, |line| line.starts_with("* connection lost"))
        .expect("a shutdown is a loss, not the end");
    assert!(lost.contains("the server is shutting down"), "{lost}");

    let mut second = server.next_peer();
    assert_eq!(second.hello()["last_seq"], 10);
    // 11 and 12 are older than the server's history; 13 and 14 are replayed.
    second.welcome("ana", 14, Some(2));
    second.msg(13, "bia", "m13");
    second.msg(14, "bia", "m14");
    wait_line(&errors, LIMIT, |line| {
        line == "* 2 messages were missed while disconnected"
    })
    .expect("the gap the server could not replay is told");
    drop(stdin);
    assert!(second.said_until_quit().is_empty());
    assert_eq!(client.wait_exit(LIMIT).and_then(|s| s.code()), Some(0));
}

#[test]
fn a_client_that_cannot_reconnect_gives_up_after_its_attempts_exit_1() {
    let server = Scripted::start(|peer| {
        peer.handshake();
    });
    let mut client = Running::start_with_stdin(&[
        "chat",
        "--name",
        "ana",
        "--reconnect-max",
        "0.05",
        "--reconnect-attempts",
        "2",
        &server.target(),
    ]);
    let errors = client.stderr_lines();
    server.result();
    assert_eq!(client.wait_exit(LIMIT).and_then(|s| s.code()), Some(1));
    let error =
        wait_line(&errors, LIMIT, |line| line.starts_with("soquete: ")).expect("one error line");
    assert!(
        error.starts_with(&format!(
            "soquete: connection to {} lost: gave up after 2 attempts to reconnect (cannot connect",
            server.addr
        )),
        "{error}"
    );
}

#[test]
fn clients_survive_a_killed_and_restarted_server_seeing_every_message_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("room.jsonl");
    let log = log.to_str().unwrap();
    let (mut server, addr) = Serve::new(&["--log", log]).start();
    let target = addr.to_string();
    let chat = |name: &'static str| {
        let mut client = Running::start_with_stdin(&[
            "chat",
            "--json",
            "--name",
            name,
            "--reconnect-max",
            "0.2",
            "--reconnect-attempts",
            "0",
            &target,
        ]);
        let stdin = client.child.stdin.take().unwrap();
        (client, stdin)
    };
    let (mut bia, bia_stdin) = chat("bia");
    let mut bia_out = Transcript::of(&mut bia);
    bia_out.wait_for("bia's welcome", |line| line.contains(r#""welcome""#));
    let (mut ana, mut ana_stdin) = chat("ana");
    let mut ana_out = Transcript::of(&mut ana);
    ana_out.wait_for("ana's welcome", |line| line.contains(r#""welcome""#));
    ana_stdin.write_all(b"one\ntwo\n").unwrap();
    bia_out.wait_for("two", |line| line.contains(r#""text":"two""#));

    server.child.kill().unwrap(); // SIGKILL: no bye, nothing flushed at exit
    server.child.wait().unwrap();
    ana_out.wait_for("ana's loss", |line| line.contains(r#""reconnecting""#));
    bia_out.wait_for("bia's loss", |line| line.contains(r#""reconnecting""#));
    ana_stdin
        .write_all(b"three, typed while the server was down\n")
        .unwrap();

    let (restarted, again) = Serve::new(&["--log", log]).port(addr.port()).start();
    assert_eq!(again, addr, "the server listens again on the same port");
    bia_out.wait_for("three", |line| line.contains("three, typed"));
    drop(ana_stdin);
    assert_eq!(ana.wait_exit(LIMIT).and_then(|s| s.code()), Some(0));
    drop(bia_stdin);
    assert_eq!(bia.wait_exit(LIMIT).and_then(|s| s.code()), Some(0));

    let seen: Vec<(u64, String)> = bia_out
        .all()
        .iter()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|frame| frame["type"] == "msg" && frame["from"] == "ana")
        .map(|frame| {
            (
                frame["seq"].as_u64().unwrap(),
                frame["text"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let texts: Vec<&str> = seen.iter().map(|(_, text)| text.as_str()).collect();
    assert_eq!(
        texts,
        ["one", "two", "three, typed while the server was down"],
        "{seen:?}"
    );
    assert!(
        seen.windows(2).all(|pair| pair[0].0 < pair[1].0),
        "{seen:?}"
    );
    drop(restarted);
}

#[test]
fn a_killed_server_restarts_from_its_log_and_a_client_resumes_with_its_token_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("room.log");
    let log = log.to_str().unwrap();
    let (mut server, addr) = start_server(&["--log", log]);
    let (mut ana, ana_token) = Peer::session(addr, "ana");
    let (mut bia, bia_token) = Peer::session(addr, "bia");
    ana.frame_where(|f| f["type"] == "join" && f["name"] == "bia");
    for i in 1..=3 {
        ana.say(&format!("antes {i}"));
    }
    let seen = bia.messages(3);
    assert_eq!(seqs(&seen), [1, 2, 3]);
    // bia's network goes; ana talks on, and her echoes say each line was stamped (and logged).
    drop(bia);
    let mut heard = Vec::new();
    ana.frames_until(&mut heard, |f| f["type"] == "leave" && f["name"] == "bia");
    for i in 4..=6 {
        ana.say(&format!("enquanto {i}"));
    }
    heard.extend(ana.messages(6 - heard.len()));
    assert_eq!(seqs(&heard), [1, 2, 3, 4, 5, 6]);

    // kill -9: no bye, no flush, no clean anything. Then the same --log and the same port
    // (std's listener sets SO_REUSEADDR, so the old connections do not hold the port).
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let (_server, again) = Serve::new(&["--log", log]).port(addr.port()).start();
    assert_eq!(again, addr);
    // The log keeps each token's SHA-256, never the token.
    let text = std::fs::read_to_string(log).unwrap();
    for token in [&ana_token, &bia_token] {
        assert!(!text.contains(token.as_str()), "{text}");
        assert!(text.contains(&sha256_hex(token)), "{text}");
    }

    // Without her token, no one gets bia's name back, nor what she missed.
    let (mut other, welcome) = Peer::join(
        addr,
        json!({"type": "hello", "version": 1, "name": "bia", "last_seq": 3}),
    );
    assert_ne!(welcome["name"], "bia", "{welcome}");
    let (mut ana, welcome) = Peer::resume(addr, "ana", 6, &ana_token);
    assert_eq!(
        (welcome["name"].as_str(), welcome["last_seq"].as_u64()),
        (Some("ana"), Some(6))
    );
    assert_eq!(welcome["token"].as_str(), Some(ana_token.as_str()));
    assert!(welcome.get("missed").is_none(), "{welcome}");
    ana.say("depois");
    assert_eq!(
        ana.messages(1)[0]["seq"],
        7,
        "numbering goes on from the log"
    );
    assert_eq!(
        seqs(&other.messages(1)),
        [7],
        "nothing from before it joined"
    );

    let (mut bia, welcome) = Peer::resume(addr, "bia", 3, &bia_token);
    assert_eq!(welcome["name"], "bia", "{welcome}");
    assert!(
        welcome.get("missed").is_none(),
        "everything is still kept: {welcome}"
    );
    ana.say("fim");
    let caught_up = bia.messages(5);
    assert_eq!(
        seqs(&caught_up),
        [4, 5, 6, 7, 8],
        "each missed message once, in order"
    );
    let texts: Vec<&str> = caught_up
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        ["enquanto 4", "enquanto 5", "enquanto 6", "depois", "fim"]
    );
}

#[test]
fn a_log_cut_short_mid_line_still_starts_and_gaps_older_than_the_history_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("room.log");
    let mut text = String::new();
    for seq in 1..=5 {
        let frame = json!({"type": "msg", "seq": seq, "time": "2026-11-26T14:03:07-03:00",
            "from": "ana", "text": format!("m{seq}")});
        text.push_str(&format!("{frame}\n"));
    }
    // bia's session, as a server that was killed left it in its log.
    let token = "0123456789abcdef0123456789abcdef";
    let session = json!({"type": "session", "name": "bia", "token_sha256": sha256_hex(token)});
    text.push_str(&format!("{session}\n"));
    text.push_str("isto não é json\n");
    text.push_str(r#"{"type":"msg","seq":6,"time":"2026-11-2"#);
    std::fs::write(&path, text).unwrap();

    let (mut server, addr) =
        Serve::new(&["--history", "3", "--log", path.to_str().unwrap()]).start();
    let errors = server.stderr_lines();
    let warning = wait_line(&errors, LIMIT, |l| l.starts_with("soquete: ")).expect("one warning");
    assert!(
        warning.contains("1 unreadable line") && warning.contains("cut short"),
        "{warning}"
    );

    let (mut bia, welcome) = Peer::resume(addr, "bia", 1, token);
    assert_eq!(welcome["last_seq"], 5, "{welcome}");
    assert_eq!(
        welcome["missed"], 1,
        "seq 2 is older than the history of 3: {welcome}"
    );
    assert_eq!(seqs(&bia.messages(3)), [3, 4, 5]);
    bia.say("nova");
    assert_eq!(bia.messages(1)[0]["seq"], 6);
    let log = std::fs::read_to_string(&path).unwrap();
    let last: Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    assert_eq!((&last["seq"], &last["text"]), (&json!(6), &json!("nova")));
}

#[test]
fn a_reconnect_takes_its_name_back_from_its_half_open_connection() {
    let (_server, addr) = start_server(&[]);
    let mut obs = Peer::structured(addr, "obs");
    let (mut old, token) = Peer::session(addr, "ana");
    obs.frame_where(|f| f["type"] == "join" && f["name"] == "ana");

    // A second ana without the token does not get the name, reconnecting or not.
    for hello in [
        hello("ana"),
        json!({"type": "hello", "version": 1, "name": "ana", "last_seq": 0}),
    ] {
        let mut other = Peer::connect(addr);
        other.send_json(hello);
        assert_eq!(
            other.frame_where(|f| f["type"] == "error")["code"],
            "name_taken"
        );
    }

    let (_new, welcome) = Peer::resume(addr, "ana", 0, &token);
    assert_eq!(welcome["name"], "ana", "{welcome}");
    let bye = old.frame_where(|f| f["type"] == "bye");
    assert_eq!(bye["code"], "replaced", "{bye}");
    assert!(
        bye["reason"].as_str().unwrap().contains("reconnected"),
        "{bye}"
    );
    assert!(old.closed());
    let leave = obs.frame_where(|f| f["type"] == "leave" && f["name"] == "ana");
    assert_eq!(
        (&leave["name"], &leave["reason"]),
        (&json!("ana"), &json!("reconnected"))
    );
    obs.frame_where(|f| f["type"] == "join" && f["name"] == "ana");
}

/// The room's identity, from a `welcome`.
fn epoch(welcome: &Value) -> String {
    welcome["epoch"]
        .as_str()
        .unwrap_or_else(|| panic!("a welcome says which room: {welcome}"))
        .to_string()
}

#[test]
fn a_room_keeps_its_epoch_across_a_restart_with_its_log_and_only_then() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("room.log");
    let log = log.to_str().unwrap();
    let (mut server, addr) = Serve::new(&["--log", log]).start();
    let (_ana, welcome) = Peer::join(addr, hello("ana"));
    let first = epoch(&welcome);

    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let (mut server, _) = Serve::new(&["--log", log]).port(addr.port()).start();
    let (_ana, welcome) = Peer::join(addr, hello("ana"));
    assert_eq!(epoch(&welcome), first, "the log carries the room over");

    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let (_server, _) = Serve::new(&[]).port(addr.port()).start();
    let (_ana, welcome) = Peer::join(addr, hello("ana"));
    assert_ne!(epoch(&welcome), first, "without its log, a new room");
}

#[test]
fn a_resume_from_another_room_is_sent_this_room_from_its_start() {
    let (_server, addr) = start_server(&["--history", "3"]);
    let (mut ana, welcome) = Peer::join(addr, hello("ana"));
    let here = epoch(&welcome);
    let (bia, token) = Peer::session(addr, "bia");
    drop(bia);
    ana.frame_where(|f| f["type"] == "leave" && f["name"] == "bia");
    for i in 1..=5 {
        ana.say(&format!("m{i}"));
    }
    ana.frame_where(|f| f["type"] == "msg" && f["seq"] == 5);
    let hello = |last_seq: u64, epoch: &str| json!({"type": "hello", "version": 1, "name": "bia", "last_seq": last_seq, "epoch": epoch, "token": token});
    // bia says she saw seq 4 of another room: her 4 says nothing of this room's.
    let (mut bia, welcome) = Peer::join(addr, hello(4, "another-room"));
    assert_eq!(
        welcome["missed"], 2,
        "1 and 2 are older than the history: {welcome}"
    );
    assert_eq!(seqs(&bia.messages(3)), [3, 4, 5]);
    drop(bia);
    ana.frame_where(|f| f["type"] == "leave" && f["name"] == "bia");
    // In this room, her 4 is this room's 4.
    let (mut bia, welcome) = Peer::join(addr, hello(4, &here));
    assert!(welcome.get("missed").is_none(), "{welcome}");
    ana.say("m6");
    assert_eq!(seqs(&bia.messages(2)), [5, 6]);
}

#[test]
fn a_client_whose_server_restarted_without_its_log_is_told_and_joins_the_new_room_afresh() {
    let (mut old, addr) = start_server(&[]);
    let mut ana = ana_reconnecting_to(&addr.to_string(), &["--reconnect-attempts", "0"], &[]);
    let errors = ana.stderr_lines();
    let stdin = ana.child.stdin.take().unwrap();
    let mut out = Transcript::of(&mut ana);
    out.wait_for("ana's welcome", |line| line.starts_with("* welcome"));
    let mut bia = Peer::structured(addr, "bia");
    for i in 1..=3 {
        bia.say(&format!("old {i}"));
    }
    out.wait_for("old 3", |line| line.ends_with("<bia> old 3"));

    old.child.kill().unwrap();
    old.child.wait().unwrap();
    wait_line(&errors, LIMIT, |line| line.starts_with("* connection lost"))
        .expect("the loss is shown");
    // ana stands still while a new server, with no log, fills its room past her last seq (3).
    ana.freeze();
    let (_new, again) = Serve::new(&[]).port(addr.port()).start();
    assert_eq!(again, addr);
    let mut cid = Peer::structured(addr, "cid");
    for i in 1..=5 {
        cid.say(&format!("new {i}"));
    }
    assert_eq!(seqs(&cid.messages(5)), [1, 2, 3, 4, 5]);
    ana.thaw();
    let rejoined = wait_line(&errors, LIMIT, |line| {
        line.starts_with("* the server restarted")
    });
    assert!(rejoined.is_some(), "the new room is told");
    cid.frame_where(|f| f["type"] == "join" && f["name"] == "ana");
    cid.say("live");
    out.wait_for("live", |line| line.ends_with("<cid> live"));
    drop(stdin);
    assert_eq!(ana.wait_exit(LIMIT).and_then(|s| s.code()), Some(0));

    let lines = out.all();
    for i in 1..=5 {
        // Her token is not this room's: nothing from before she joined it.
        assert_eq!(count(&lines, &format!("<cid> new {i}")), 0, "{lines:#?}");
    }
    let notes: Vec<String> = errors.try_iter().collect();
    assert_eq!(
        count(&notes, "* the server restarted without its history"),
        0,
        "told once, in the note waited for above: {notes:#?}"
    );
}

#[test]
fn a_client_refused_by_a_full_server_is_told_retries_and_then_joins_fresh() {
    let (_server, addr) = start_server(&["--max-clients", "2"]);
    let mut bia = Peer::structured(addr, "bia");
    let mut cid = Peer::structured(addr, "cid");
    bia.say("before ana");
    cid.frame_where(|f| f["type"] == "msg");
    // However long the seat takes to free, ana does not give up.
    let mut ana = ana_reconnecting_to(&addr.to_string(), &["--reconnect-attempts", "0"], &[]);
    let errors = ana.stderr_lines();
    let mut stdin = ana.child.stdin.take().unwrap();
    let mut out = Transcript::of(&mut ana);
    let mut notes = Vec::new();
    for _ in 0..2 {
        assert!(
            collect_until(&errors, LIMIT, &mut notes, |line| line.contains("full")),
            "the refusal is told: {notes:#?}"
        );
        let full = notes.last().unwrap();
        assert!(
            full.starts_with("* the server is full") && full.contains("trying again in "),
            "{full}"
        );
    }
    // What ana types while refused is said once she is in.
    stdin.write_all(b"typed while refused\n").unwrap();
    drop(bia);
    out.wait_for("ana's welcome", |line| line.starts_with("* welcome"));
    let said = cid.frame_where(|f| f["type"] == "msg");
    assert_eq!(said["text"], "typed while refused", "{said}");
    drop(stdin);
    assert_eq!(ana.wait_exit(LIMIT).and_then(|s| s.code()), Some(0));

    let lines = out.all();
    assert_eq!(
        count(&lines, "before ana"),
        0,
        "no history from before she joined: {lines:#?}"
    );
    notes.extend(errors.try_iter());
    for misleading in ["reconnected", "without a bye"] {
        assert_eq!(count(&notes, misleading), 0, "{notes:#?}");
    }
}
