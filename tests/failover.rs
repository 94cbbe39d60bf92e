//! `soquete chat A B` (or a name with several addresses): servers of one room. The client starts
//! on the first that answers, and when its server goes away it moves at once to the next one and
//! resumes there, with its token, `last_seq` and epoch.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ChildStdin;
use std::sync::mpsc::Receiver;

use serde_json::Value;

use crate::support::fake_server::{FakeServer, Scripted};
use crate::support::hosts::HostsFile;
use crate::support::peer::Peer;
use crate::support::ports::{ClosedPort, live_v4_dead_v6};
use crate::support::process::{Running, collect_until, wait_line};
use crate::support::serve::{Serve, console_line, start_server};
use crate::support::transcript::Transcript;
use crate::support::{LIMIT, require};

/// `soquete chat --name ana ARGS…` with stdin a pipe, pausing at most 0.2 s between rounds.
fn ana(targets: &[&str], flags: &[&str]) -> Running {
    ana_env(targets, flags, &[])
}

/// As [`ana`], with these variables added to the environment.
fn ana_env(targets: &[&str], flags: &[&str], env: &[(&str, &str)]) -> Running {
    let mut args = vec!["chat", "--name", "ana", "--reconnect-max", "0.2"];
    args.extend_from_slice(flags);
    args.extend_from_slice(targets);
    Running::start_with_stdin_env(&args, env)
}

/// [`ana`] to `first` and `second`, giving each 0.3 s to welcome it.
fn ana_waiting_300_ms(first: &str, second: &str) -> Running {
    ana_env(
        &[first, second],
        &[],
        &[("SOQUETE_WELCOME_TIMEOUT_MS", "300")],
    )
}

/// A welcome to room `epoch` at `last_seq`, giving `token`.
fn welcome(epoch: &str, last_seq: u64, token: &str) -> String {
    format!(
        r#"{{"type":"welcome","version":1,"server":"soquete-test","mode":"group","name":"ana","room_size":2,"last_seq":{last_seq},"epoch":"{epoch}","token":"{token}"}}"#
    )
}

#[test]
fn a_first_server_that_refuses_is_skipped_with_one_line_and_the_second_is_joined() {
    let closed = ClosedPort::hold();
    let first = format!("127.0.0.1:{}", closed.port());
    let (_server, addr) = start_server(&[]);
    let second = addr.to_string();
    let mut bia = Peer::structured(addr, "bia");
    let mut client = ana(&[&first, &second], &[]);
    let errors = client.stderr_lines();
    let mut stdin = client.child.stdin.take().unwrap();

    let mut notes = Vec::new();
    assert!(
        collect_until(&errors, LIMIT, &mut notes, |l| l.starts_with("* connected")),
        "{notes:#?}"
    );
    assert_eq!(
        notes[0],
        format!("* cannot connect to {first}: Connection refused (os error 111) — trying {second}"),
        "{notes:#?}"
    );
    assert!(
        notes[1].ends_with(&format!("→ remote {second}")),
        "{notes:#?}"
    );
    stdin.write_all(b"on the second\n").unwrap();
    let said = bia.frame_where(|f| f["type"] == "msg" && f["from"] == "ana");
    assert_eq!(said["text"], "on the second");
    drop(stdin);
    assert_eq!(client.wait_exit(LIMIT).and_then(|s| s.code()), Some(0));
}

#[test]
fn no_server_answering_is_one_error_naming_each_exit_1() {
    let (one, two) = (ClosedPort::hold(), ClosedPort::hold());
    let targets = [
        format!("127.0.0.1:{}", one.port()),
        format!("127.0.0.1:{}", two.port()),
    ];
    let mut client = ana(&[&targets[0], &targets[1]], &[]);
    let errors = client.stderr_lines();
    assert_eq!(client.wait_exit(LIMIT).and_then(|s| s.code()), Some(1));
    let notes: Vec<String> = errors.iter().collect();
    let last = notes.last().expect("an error");
    assert!(
        last.starts_with("soquete: no server answered: cannot connect to ")
            && targets.iter().all(|t| last.contains(t.as_str())),
        "{notes:#?}"
    );
}

#[test]
fn a_killed_server_is_left_for_the_next_at_once_and_lines_typed_after_arrive_there() {
    // Two rooms (no --cluster): on the second the client is a newcomer, as the epoch differs.
    let (mut first, a) = start_server(&[]);
    let (_second, b) = start_server(&[]);
    let mut bia = Peer::structured(b, "bia");
    let mut client = ana(
        &[&a.to_string(), &b.to_string()],
        &["--reconnect-attempts", "0"],
    );
    let errors = client.stderr_lines();
    let mut stdin = client.child.stdin.take().unwrap();
    let mut out = Transcript::of(&mut client);
    out.wait_for("the welcome on A", |l| l.starts_with("* welcome"));
    stdin.write_all(b"on A\n").unwrap();
    out.wait_for("the echo on A", |l| l.ends_with("<ana> on A"));

    first.child.kill().unwrap(); // SIGKILL: no bye
    first.child.wait().unwrap();
    let moved = wait_line(&errors, LIMIT, |l| l.starts_with("* connected to another"))
        .expect("the move is told");
    assert!(
        moved.contains(&format!("→ remote {b} (after {a} went away)")),
        "{moved}"
    );
    out.wait_for("the welcome on B", |l| l.starts_with("* welcome"));
    let another_room = wait_line(&errors, LIMIT, |l| l.contains("another room"))
        .expect("B's room is another: told");
    assert!(
        another_room.starts_with("* this server holds another room"),
        "{another_room}"
    );
    stdin.write_all(b"after the move\n").unwrap();
    let said = bia.frame_where(|f| f["type"] == "msg" && f["from"] == "ana");
    assert_eq!(
        said["text"], "after the move",
        "nothing from A is said again on B"
    );
    drop(stdin);
    assert_eq!(client.wait_exit(LIMIT).and_then(|s| s.code()), Some(0));
}

#[test]
fn on_a_server_of_the_same_room_the_client_resumes_with_its_token_last_seq_and_epoch() {
    let (a, b) = (FakeServer::start(), FakeServer::start());
    let token = "0123456789abcdef0123456789abcdef";
    let mut client = ana(&[&a.target(), &b.target()], &["--json"]);
    let mut stdin = client.child.stdin.take().unwrap();
    let mut out = Transcript::of(&mut client);

    let mut on_a = a.next_peer();
    on_a.hello();
    on_a.send(&welcome("e1", 0, token));
    for seq in 1..=3 {
        on_a.msg(seq, "bia", &format!("m{seq}"));
    }
    out.wait_for("m3", |l| l.contains(r#""text":"m3""#));
    on_a.reset();

    // A still listens, but B comes first: the next server, at once.
    let mut on_b = b.next_peer();
    let hello = on_b.hello();
    assert_eq!(hello["last_seq"], 3, "{hello}");
    assert_eq!(hello["epoch"], "e1", "{hello}");
    assert_eq!(hello["token"], token, "{hello}");
    on_b.send(&welcome("e1", 5, token));
    for seq in 3..=5 {
        on_b.msg(seq, "bia", &format!("m{seq}"));
    }
    out.wait_for("m5", |l| l.contains(r#""text":"m5""#));
    stdin.write_all(b"after the move\n").unwrap();
    let said = on_b.frame();
    assert_eq!(said["text"], "after the move", "{said}");
    drop(stdin);
    assert_eq!(on_b.said_until_quit(), Vec::<String>::new());
    assert_eq!(client.wait_exit(LIMIT).and_then(|s| s.code()), Some(0));

    let lines: Vec<Value> = out
        .all()
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let texts: Vec<&str> = lines
        .iter()
        .filter(|f| f["type"] == "msg")
        .filter_map(|f| f["text"].as_str())
        .collect();
    assert_eq!(texts, ["m1", "m2", "m3", "m4", "m5"], "each once, in order");
    let moved = lines
        .iter()
        .find(|f| f["type"] == "reconnected")
        .expect("a reconnected event");
    assert_eq!(moved["remote"], b.target(), "{moved}");
    assert_eq!(moved["previous"], a.target(), "{moved}");
}

#[test]
fn a_name_with_two_addresses_is_two_servers_the_second_used_when_the_first_is_closed() {
    let Some((v4, _v6_closed)) = live_v4_dead_v6() else {
        require(false, "an IPv6 loopback");
        return;
    };
    let port = v4.local_addr().unwrap().port();
    // glibc orders ::1 before 127.0.0.1 (RFC 6724): the first address is the closed one.
    let Some(hosts) = HostsFile::new("::1 pair.test\n127.0.0.1 pair.test\n") else {
        return;
    };
    let server = Scripted::start_on(v4, |peer| {
        peer.handshake();
        peer.said_until_quit()
    });
    let mut client = hosts.start(&["chat", "--name", "ana", &format!("pair.test:{port}")]);
    let errors = client.stderr_lines();
    assert_eq!(server.result(), Vec::<String>::new());
    assert_eq!(client.wait_exit(LIMIT).and_then(|s| s.code()), Some(0));
    let notes: Vec<String> = errors.iter().collect();
    assert!(
        notes[0].starts_with(&format!(
            "* cannot connect to pair.test:{port} ([::1]:{port}): "
        )) && notes[0].ends_with(&format!("— trying pair.test:{port} (127.0.0.1:{port})")),
        "{notes:#?}"
    );
    assert!(
        notes[1].ends_with(&format!("→ remote 127.0.0.1:{port}")),
        "{notes:#?}"
    );
}

#[test]
fn raw_takes_the_first_that_answers_and_no_other_after_it() {
    let closed = ClosedPort::hold();
    let first = format!("127.0.0.1:{}", closed.port());
    let server = Scripted::start(|peer| {
        peer.send("hello from the second");
        peer.next()
    });
    let mut client = Running::start_with_stdin(&["chat", "--raw", &first, &server.target()]);
    let errors = client.stderr_lines();
    let mut stdin = client.child.stdin.take().unwrap();
    client
        .wait_for(LIMIT, |l| l == "hello from the second")
        .expect("the second server's line");
    stdin.write_all(b"hi\n").unwrap();
    drop(stdin);
    assert_eq!(server.result().as_deref(), Some("hi"));
    assert_eq!(client.wait_exit(LIMIT).and_then(|s| s.code()), Some(0));
    let notes: Vec<String> = errors.iter().collect();
    assert!(notes[0].contains("— trying 127.0.0.1:"), "{notes:#?}");
}

/// `soquete serve --tls` with a self-signed certificate of its own, kept in `state` (a restart
/// on `port` serves the same one); returns it, its address and the fingerprint it printed.
fn tls_server(state: &Path, port: u16) -> (Running, SocketAddr, String) {
    let (server, addr) = Serve::new(&["--tls", "--state-dir", state.to_str().unwrap()])
        .port(port)
        .start();
    let line = console_line(&server, |l| l.starts_with("tls: certificate "));
    let print = line["tls: certificate ".len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    (server, addr, print)
}

/// A client state directory in `dir` whose known_hosts holds `lines`.
fn known_hosts(dir: &Path, name: &str, lines: &[String]) -> String {
    let state = dir.join(name);
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("known_hosts"), lines.join("\n") + "\n").unwrap();
    state.to_str().unwrap().to_string()
}

/// `ana` over TLS to `targets` with the client state directory `state`, once welcomed; with
/// its stderr lines and its stdin.
fn welcomed_over_tls(targets: &[String], state: &str) -> (Running, Receiver<String>, ChildStdin) {
    let targets: Vec<&str> = targets.iter().map(String::as_str).collect();
    let mut client = ana(&targets, &["--tls", "--state-dir", state]);
    let errors = client.stderr_lines();
    let stdin = client.child.stdin.take().unwrap();
    client
        .wait_for(LIMIT, |l| l.starts_with("* welcome"))
        .expect("welcomed on the first");
    (client, errors, stdin)
}

#[test]
fn with_tls_each_server_is_verified_as_itself_and_one_not_trusted_is_skipped_loudly() {
    let dir = tempfile::tempdir().unwrap();
    let a_state = dir.path().join("a");
    let (mut a_server, a, a_print) = tls_server(&a_state, 0);
    let (b_server, b, b_print) = tls_server(&dir.path().join("b"), 0);
    assert_ne!(a_print, b_print, "two certificates");
    let (a_line, b_line) = (format!("{a} {a_print}"), format!("{b} {b_print}"));

    // Both remembered, each under its own HOST:PORT: the move to B is verified by B's line.
    let state = known_hosts(dir.path(), "both", &[a_line.clone(), b_line]);
    let targets = [a.to_string(), b.to_string()];
    let (mut client, errors, stdin) = welcomed_over_tls(&targets, &state);
    a_server.child.kill().unwrap();
    a_server.child.wait().unwrap();
    console_line(&b_server, |l| {
        l.starts_with("connected ") && l.contains("(ana,")
    });
    let mut notes = Vec::new();
    assert!(
        collect_until(&errors, LIMIT, &mut notes, |l| l
            .starts_with("* connected to another server")),
        "the move is told: {notes:#?}"
    );
    drop(stdin);
    assert_eq!(client.wait_exit(LIMIT).and_then(|s| s.code()), Some(0));

    // Only A remembered: B's certificate is refused when the client gets there, loudly, and B
    // is never talked to; the client goes on round the list and resumes on A once it is back.
    let (a_again, _, print_again) = tls_server(&a_state, a.port());
    assert_eq!(print_again, a_print, "A serves the certificate it kept");
    let state = known_hosts(dir.path(), "only-a", &[a_line]);
    let (mut client, errors, stdin) = welcomed_over_tls(&targets, &state);
    drop(a_again); // killed
    let refused = wait_line(&errors, LIMIT, |l| l.contains("skipped, never talked to"))
        .expect("B's refusal is said");
    assert!(
        refused.starts_with(&format!(
            "* {b} presents a certificate no trusted CA signed"
        )),
        "{refused}"
    );
    let (_a_back, _, _) = tls_server(&a_state, a.port());
    wait_line(&errors, LIMIT, |l| l.starts_with("* reconnected")).expect("back on A");
    drop(stdin);
    assert_eq!(client.wait_exit(LIMIT).and_then(|s| s.code()), Some(0));
    drop(b_server);
}

#[test]
fn with_tls_a_first_server_not_trusted_is_skipped_and_the_next_joined_and_none_trusted_is_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let (_a_server, a, a_print) = tls_server(&dir.path().join("a"), 0);
    let (_b_server, b, _) = tls_server(&dir.path().join("b"), 0);
    let state = known_hosts(dir.path(), "only-a", &[format!("{a} {a_print}")]);
    let targets = [b.to_string(), a.to_string()];
    let (mut client, errors, stdin) = welcomed_over_tls(&targets, &state);
    drop(stdin);
    assert_eq!(client.wait_exit(LIMIT).and_then(|s| s.code()), Some(0));
    let notes: Vec<String> = errors.iter().collect();
    assert!(
        notes[0].contains(&format!("{b} presents a certificate no trusted CA signed"))
            && notes[0].ends_with("— skipped, never talked to"),
        "{notes:#?}"
    );

    // Neither trusted: one error, exit 1.
    let nobody = known_hosts(dir.path(), "none", &[]);
    let mut client = ana(
        &[&targets[0], &targets[1]],
        &["--tls", "--state-dir", &nobody],
    );
    let errors = client.stderr_lines();
    assert_eq!(client.wait_exit(LIMIT).and_then(|s| s.code()), Some(1));
    let notes: Vec<String> = errors.iter().collect();
    assert!(
        notes
            .last()
            .unwrap()
            .starts_with("soquete: no server answered: "),
        "{notes:#?}"
    );
}

#[test]
fn servers_that_welcome_and_drop_the_client_meet_the_backoff_and_the_attempt_limit() {
    let servers = [FakeServer::start(), FakeServer::start()];
    let mut client = ana(
        &[&servers[0].target(), &servers[1].target()],
        &["--reconnect-attempts", "3"],
    );
    let errors = client.stderr_lines();
    // The first connection and three attempts, each welcomed and dropped at once.
    for turn in 0..4 {
        let mut peer = servers[turn % 2].next_peer();
        peer.hello();
        peer.send(&welcome("e1", 0, "0123456789abcdef0123456789abcdef"));
        drop(peer);
    }
    assert_eq!(client.wait_exit(LIMIT).and_then(|s| s.code()), Some(1));
    let notes: Vec<String> = errors.iter().collect();
    let attempts: Vec<&String> = notes.iter().filter(|l| l.contains("(attempt ")).collect();
    assert_eq!(attempts.len(), 3, "{notes:#?}");
    assert!(
        attempts[0].ends_with("now, to the next server (attempt 1)"),
        "{notes:#?}"
    );
    assert!(
        attempts[1].contains(" s (attempt 2)"),
        "a pause: {notes:#?}"
    );
    assert!(
        notes.last().unwrap().contains("gave up after 3 attempts"),
        "{notes:#?}"
    );
}

#[test]
fn a_server_that_never_welcomes_is_skipped_with_one_line_and_lines_typed_arrive_on_the_next() {
    let silent = FakeServer::start(); // accepts, says nothing: nc -l
    let (_server, addr) = start_server(&[]);
    let mut bia = Peer::structured(addr, "bia");
    let (first, second) = (silent.target(), addr.to_string());
    let mut client = ana_waiting_300_ms(&first, &second);
    let errors = client.stderr_lines();
    let mut stdin = client.child.stdin.take().unwrap();
    let _held = silent.next_peer();
    stdin.write_all(b"typed early\n").unwrap();
    let said = bia.frame_where(|f| f["type"] == "msg" && f["from"] == "ana");
    assert_eq!(said["text"], "typed early");
    drop(stdin);
    assert_eq!(client.wait_exit(LIMIT).and_then(|s| s.code()), Some(0));
    let notes: Vec<String> = errors.iter().collect();
    let skipped: Vec<&String> = notes.iter().filter(|l| l.contains("no welcome")).collect();
    assert_eq!(skipped.len(), 1, "{notes:#?}");
    assert!(
        skipped[0].starts_with(&format!(
            "* {first}: no welcome in time (not a soquete server?) — skipped"
        )),
        "{notes:#?}"
    );
}

#[test]
fn with_json_each_server_skipped_at_start_is_an_event() {
    let closed = ClosedPort::hold();
    let first = format!("127.0.0.1:{}", closed.port());
    let (_server, addr) = start_server(&[]);
    let mut client = ana(&[&first, &addr.to_string()], &["--json"]);
    let stdin = client.child.stdin.take().unwrap();
    let mut out = Transcript::of(&mut client);
    out.wait_for("the welcome", |l| l.contains(r#""type":"welcome""#));
    drop(stdin);
    assert_eq!(client.wait_exit(LIMIT).and_then(|s| s.code()), Some(0));
    let events: Vec<Value> = out
        .all()
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(events[0]["type"], "skipped", "{events:#?}");
    assert_eq!(events[0]["server"], first.as_str(), "{events:#?}");
    assert!(
        events[0]["error"]
            .as_str()
            .unwrap()
            .starts_with(&format!("cannot connect to {first}: ")),
        "{events:#?}"
    );
    assert_eq!(events[1]["type"], "connected", "{events:#?}");
}

#[test]
fn after_a_move_a_server_that_never_welcomes_is_skipped_and_the_lines_held_go_to_the_next() {
    let (a, silent) = (FakeServer::start(), FakeServer::start());
    let token = "0123456789abcdef0123456789abcdef";
    let (first, second) = (a.target(), silent.target());
    let mut client = ana_waiting_300_ms(&first, &second);
    let errors = client.stderr_lines();
    let mut stdin = client.child.stdin.take().unwrap();
    let mut on_a = a.next_peer();
    on_a.hello();
    on_a.send(&welcome("e1", 0, token));
    wait_line(&errors, LIMIT, |l| l.starts_with("* connected")).expect("on A");
    on_a.reset();
    let _held = silent.next_peer();
    stdin.write_all(b"typed on the silent one\n").unwrap();
    let skipped = wait_line(&errors, LIMIT, |l| l.contains("no welcome"))
        .expect("the silent server is skipped");
    assert!(
        skipped.starts_with(&format!("* {second}: no welcome in time")),
        "{skipped}"
    );
    let mut again = a.next_peer();
    let hello = again.hello();
    assert_eq!(hello["token"], token, "{hello}");
    again.send(&welcome("e1", 0, token));
    let said = again.frame();
    assert_eq!(said["text"], "typed on the silent one", "{said}");
    drop(stdin);
    assert_eq!(again.said_until_quit(), Vec::<String>::new());
    assert_eq!(client.wait_exit(LIMIT).and_then(|s| s.code()), Some(0));
}
