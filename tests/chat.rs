//! `soquete chat`, piped and `--raw`, against real servers on 127.0.0.1: `nc -l`, the course's
//! Python one-shot server, servers the test plays (speaking the soquete protocol or not), and
//! `soquete serve`.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::support::fake_server::{GREETING, Scripted, name_prompt_server};
use crate::support::peer::Peer;
use crate::support::ports::{ClosedPort, listening_port};
use crate::support::process::{Running, soquete, soquete_path, wait_line};
use crate::support::serve::{start_server, start_server_with_console};
use crate::support::{LIMIT, poll, require, tool};

/// The server's side of a whole piped session: welcome, one message from bia, then everything
/// the client says until `quit`, answered with `bye`.
fn chat_until_quit(peer: &mut Peer) -> (String, Vec<String>) {
    let name = peer.handshake();
    peer.msg(1, "bia", "oi pessoal");
    (name, peer.said_until_quit())
}

#[test]
fn piped_client_says_hello_shows_the_chat_and_leaves_after_bye_at_end_of_input() {
    let server = Scripted::start(chat_until_quit);
    let output = soquete()
        .args(["chat", "--name", "ana", &server.target()])
        .write_stdin("olá, mundo\n/me waves\nlast line without newline")
        .timeout(LIMIT)
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(output.status.success(), "{stdout}\n{stderr}");

    let (name, said) = server.result();
    assert_eq!(name, "ana");
    assert_eq!(
        said,
        ["olá, mundo", "/me waves", "last line without newline"]
    );

    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            GREETING,
            "* welcome to soquete-test (group mode): you are ana, 2 here; /help lists commands",
            "[14:03:07] <bia> oi pessoal",
            "* bye: you left",
        ],
        "chat lines on stdout"
    );
    assert!(
        stderr.starts_with("* connected: local 127.0.0.1:"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("→ remote {}", server.addr)),
        "{stderr}"
    );
    assert!(stderr.contains("* closed by the server"), "{stderr}");
}

#[test]
fn json_output_is_one_parsable_event_per_line() {
    let server = Scripted::start(chat_until_quit);
    let output = soquete()
        .args(["chat", "--json", "--name", "ana", &server.target()])
        .write_stdin("hi\n")
        .timeout(LIMIT)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let events: Vec<serde_json::Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|err| panic!("{line}: {err}")))
        .collect();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        ["connected", "line", "welcome", "msg", "bye", "closed"]
    );
    assert_eq!(events[0]["remote"], server.addr.to_string());
    let local: SocketAddr = events[0]["local"].as_str().unwrap().parse().unwrap();
    assert!(local.ip().is_loopback());
    assert_eq!(events[3]["from"], "bia");
    assert_eq!(events[3]["text"], "oi pessoal");
    assert_eq!(events[3]["time"], "2026-11-26T14:03:07-03:00");
    assert_eq!(events[5]["by"], "server");
    assert_eq!(server.result().1, ["hi"]);
}

#[test]
fn server_that_drops_the_connection_is_a_lost_connection_exit_1_with_no_reconnect() {
    let server = Scripted::start(|peer| {
        peer.handshake();
        // Dropping the peer closes the connection without a bye, as a crashed server would.
    });
    let mut client =
        Running::start_with_stdin(&["chat", "--no-reconnect", "--name", "ana", &server.target()]);
    let errors = client.stderr_lines();
    server.result();
    let status = client.wait_exit(LIMIT).expect("the client exits");
    assert_eq!(status.code(), Some(1));
    let error =
        wait_line(&errors, LIMIT, |line| line.starts_with("soquete: ")).expect("one error line");
    assert_eq!(
        error,
        format!(
            "soquete: connection to {} lost: the server closed the connection without a bye",
            server.addr
        )
    );
}

#[test]
fn sync_client_refuses_a_second_line_until_the_answer_arrives() {
    let (go_on, answer_now) = mpsc::channel::<()>();
    let server = Scripted::start(move |peer| {
        peer.handshake();
        let mut said = vec![peer.frame()["text"].as_str().unwrap().to_string()];
        answer_now.recv_timeout(LIMIT).expect("the test says when");
        peer.msg(1, "bia", "oi pessoal");
        said.push(peer.frame()["text"].as_str().unwrap().to_string());
        // The client keeps its end of input until this second answer, then leaves.
        peer.msg(2, "bia", "resposta dois");
        assert!(peer.said_until_quit().is_empty());
        said
    });
    let mut client =
        Running::start_with_stdin(&["chat", "--sync", "--name", "ana", &server.target()]);
    let errors = client.stderr_lines();
    let mut stdin = client.child.stdin.take().unwrap();
    stdin.write_all(b"question one\nout of turn\n").unwrap();
    let refused = wait_line(&errors, LIMIT, |line| line.contains("--sync"))
        .expect("the second line is refused");
    assert_eq!(
        refused,
        "* wait for the answer before sending again (--sync): line not sent"
    );
    go_on.send(()).unwrap();
    client
        .wait_for(LIMIT, |line| line.contains("<bia> oi pessoal"))
        .expect("the answer arrives");
    stdin.write_all(b"question two\n").unwrap();
    drop(stdin);
    assert_eq!(server.result(), ["question one", "question two"]);
    assert_eq!(client.wait_exit(LIMIT).and_then(|s| s.code()), Some(0));
}

#[test]
fn raw_client_and_python_one_shot_server_hello_server_gets_the_reply() {
    if !require(tool("python3"), "python3") {
        return;
    }
    // The course's server: reads once, answers once without a newline, closes.
    let script = "import socket\n\
        s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n\
        print(s.getsockname()[1], flush=True)\n\
        conn, addr = s.accept()\n\
        print('Recebido:', conn.recv(1024).decode().strip(), flush=True)\n\
        conn.send('Hello Client, olá'.encode()); conn.close()\n";
    let python = Running::program("python3", &["-c", script]);
    let port = python
        .wait_for(LIMIT, |_| true)
        .expect("python prints its port");
    let output = soquete()
        .args(["chat", "--raw", &format!("127.0.0.1:{port}")])
        .write_stdin("Hello Server\n")
        .timeout(LIMIT)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    // Byte for byte what the server sent: no newline added.
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        "Hello Client, olá"
    );
    python
        .wait_for(LIMIT, |line| line == "Recebido: Hello Server")
        .expect("the server got the line");
}

#[test]
fn raw_client_talks_with_nc_both_ways_and_half_closes_at_end_of_input() {
    if !require(tool("nc"), "nc (netcat-openbsd)") {
        return;
    }
    // nc binds port 0 and keeps it: the port is read from /proc once nc listens.
    let mut nc = Running::program("nc", &["-l", "127.0.0.1", "0"]);
    let port = listening_port(nc.child.id());
    let mut client = Running::start_with_stdin(&["chat", "--raw", &format!("127.0.0.1:{port}")]);
    let mut typed = client.child.stdin.take().unwrap();
    typed.write_all("olá nc, ação!\n".as_bytes()).unwrap();
    nc.wait_for(LIMIT, |line| line == "olá nc, ação!")
        .expect("nc prints the client's line, UTF-8 intact");

    let mut nc_typed = nc.child.stdin.take().unwrap();
    nc_typed.write_all("oi soquete, café\n".as_bytes()).unwrap();
    client
        .wait_for(LIMIT, |line| line == "oi soquete, café")
        .expect("the client prints nc's line");

    // End of input: the client half-closes, nc sees the end and closes, the client exits 0.
    drop(typed);
    assert_eq!(client.wait_exit(LIMIT).and_then(|s| s.code()), Some(0));
    drop(nc_typed);
    nc.wait_exit(LIMIT).expect("nc ends");
}

#[test]
fn bad_target_is_a_usage_error_in_one_line() {
    for bad in ["host:port", "[::1", "127.0.0.1:0", "a b"] {
        let output = soquete()
            .args(["chat", bad])
            .timeout(LIMIT)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(64), "{bad}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("soquete: bad target"), "{stderr}");
    }
}

#[test]
fn refused_connection_exits_1_naming_the_address() {
    let closed = ClosedPort::hold();
    let port = closed.port();
    let output = soquete()
        .args(["chat", &format!(":{port}")])
        .timeout(LIMIT)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!("soquete: cannot connect to 127.0.0.1:{port}: ")),
        "{stderr}"
    );
}

#[test]
fn raw_client_shows_a_prompt_at_once_and_writes_bytes_through_unchanged() {
    let server = name_prompt_server(b", ol\xc3\xa1 \xff\r\n\x00end");
    let mut client = Command::new(soquete_path())
        .args(["chat", "--raw", &server.target()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Bytes as they come, not lines: the prompt has no newline.
    let mut stdout = client.stdout.take().unwrap();
    let (tx, chunks) = mpsc::channel::<Vec<u8>>();
    thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        while let Ok(n @ 1..) = stdout.read(&mut buffer) {
            if tx.send(buffer[..n].to_vec()).is_err() {
                return;
            }
        }
    });
    let mut out = Vec::new();
    let deadline = Instant::now() + LIMIT;
    while out != b"Name: " {
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = chunks
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("the prompt is shown before any newline: {out:?}"));
        out.extend(chunk);
    }
    let mut stdin = client.stdin.take().unwrap();
    stdin.write_all(b"ana\n").unwrap();
    assert_eq!(server.result().as_deref(), Some("ana"));
    // The server closed: the client ends by itself (its input still open), and its output with it.
    let deadline = Instant::now() + LIMIT;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match chunks.recv_timeout(left) {
            Ok(chunk) => out.extend(chunk),
            Err(_) => break,
        }
    }
    assert_eq!(out, b"Name: Hello ana, ol\xc3\xa1 \xff\r\n\x00end");
    let status = poll(LIMIT, || client.try_wait().unwrap()).expect("the client exits");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn raw_json_client_shows_a_prompt_as_a_partial_line() {
    let server = name_prompt_server(b"!\n");
    let mut client = Running::start_with_stdin(&["chat", "--raw", "--json", &server.target()]);
    let prompt = client
        .wait_for(LIMIT, |line| line.contains(r#""type":"line""#))
        .expect("the prompt, before any newline");
    assert_eq!(prompt, r#"{"type":"line","text":"Name: ","partial":true}"#);
    let mut stdin = client.child.stdin.take().unwrap();
    stdin.write_all(b"ana\n").unwrap();
    let greeting = client
        .wait_for(LIMIT, |line| line.contains(r#""type":"line""#))
        .expect("the greeting");
    assert_eq!(greeting, r#"{"type":"line","text":"Hello ana!"}"#);
    client
        .wait_for(LIMIT, |line| line == r#"{"type":"closed","by":"server"}"#)
        .expect("closed by the server");
    assert_eq!(client.wait_exit(LIMIT).and_then(|s| s.code()), Some(0));
}

#[test]
fn raw_client_says_it_closed_when_the_server_says_exit() {
    let server = Scripted::start(|peer| {
        peer.send("exit");
        // The client closes; the server never does.
        peer.next()
    });
    let mut client = Running::start_with_stdin(&["chat", "--raw", &server.target()]);
    let errors = client.stderr_lines();
    let _stdin = client.child.stdin.take();
    client
        .wait_for(LIMIT, |line| line == "exit")
        .expect("the server's exit is shown");
    assert_eq!(server.result(), None, "the client closed the connection");
    assert_eq!(client.wait_exit(LIMIT).and_then(|s| s.code()), Some(0));
    let note = wait_line(&errors, LIMIT, |line| {
        line.contains("exit: connection closed")
    });
    assert_eq!(
        note.as_deref(),
        Some("* the server said exit: connection closed")
    );
}

#[test]
fn plain_client_tells_a_server_that_does_not_speak_soquete_and_talks_plain_lines_to_it() {
    // What `nc -l` does with a person at it: shows our hello, says something, reads a line.
    let server = Scripted::start(|peer| {
        let hello = peer.next();
        peer.send("hello from nc");
        let line = peer.next();
        let end = peer.next();
        (hello, line, end)
    });
    let mut client = Running::start_with_stdin(&["chat", "--name", "ana", &server.target()]);
    let errors = client.stderr_lines();
    let mut stdin = client.child.stdin.take().unwrap();
    client
        .wait_for(LIMIT, |line| line == "hello from nc")
        .expect("its line, shown as it is");
    let note = "* this server does not speak the soquete protocol; use --raw to talk to it \
                (talking plain lines to it meanwhile)";
    wait_line(&errors, LIMIT, |line| line == note).expect("told once, soon");
    stdin.write_all(b"oi nc\n").unwrap();
    drop(stdin);
    let (hello, line, end) = server.result();
    assert!(hello.unwrap().contains(r#""type":"hello""#));
    assert_eq!(line.as_deref(), Some("oi nc"), "a plain line, not a frame");
    assert_eq!(end, None, "end of input half-closes, as --raw does");
    // The server closes in turn (the script ended): a normal end.
    assert_eq!(client.wait_exit(LIMIT).and_then(|s| s.code()), Some(0));
    let rest: Vec<String> = errors.try_iter().collect();
    assert!(!rest.iter().any(|l| l == note), "said once: {rest:?}");
}

#[test]
fn two_clients_chat_through_soquete_serve_and_the_piped_one_leaves_cleanly() {
    let (_server, addr) = start_server(&[]);
    let target = addr.to_string();
    let bia = Running::start_with_stdin(&["chat", "--json", "--name", "bia", &target]);
    bia.wait_for(LIMIT, |line| line.contains(r#""type":"welcome""#))
        .expect("bia is welcomed");

    let output = soquete()
        .args(["chat", "--name", "ana", &target])
        .write_stdin("olá bia, tudo bem?\n")
        .timeout(LIMIT)
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout.clone()).unwrap();
    assert!(output.status.success(), "{stdout}\n{output:?}");
    assert!(
        stdout.lines().any(|l| l.starts_with("* welcome to")),
        "{stdout}"
    );
    assert!(stdout.lines().any(|l| l.starts_with("* bye")), "{stdout}");

    let message = bia
        .wait_for(LIMIT, |line| line.contains("tudo bem"))
        .expect("bia receives ana's message");
    let frame: serde_json::Value = serde_json::from_str(&message).unwrap();
    assert_eq!(frame["type"], "msg");
    assert_eq!(frame["from"], "ana");
    assert_eq!(frame["text"], "olá bia, tudo bem?");
    assert!(
        frame["time"].is_string() && frame["seq"].is_u64(),
        "{frame}"
    );
}

#[test]
fn killed_server_is_a_lost_connection_for_a_client_with_no_reconnect() {
    let (mut server, addr) = start_server(&[]);
    let mut client =
        Running::start_with_stdin(&["chat", "--no-reconnect", "--name", "ana", &addr.to_string()]);
    let errors = client.stderr_lines();
    client
        .wait_for(LIMIT, |line| line.starts_with("* welcome to"))
        .expect("welcomed");
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    assert_eq!(client.wait_exit(LIMIT).and_then(|s| s.code()), Some(1));
    let error =
        wait_line(&errors, LIMIT, |line| line.starts_with("soquete: ")).expect("one error line");
    assert!(
        error.starts_with(&format!("soquete: connection to {addr} lost: ")),
        "{error}"
    );
}

#[test]
fn under_sync_a_line_out_of_turn_is_refused_once_and_exit_still_leaves() {
    let (_server, addr) = start_server_with_console(&["--mode", "single", "--sync"]);
    let target = addr.to_string();
    // Refused by the server (a client without --sync), or by the client itself (--sync): once
    // either way, and `exit` out of turn is no second refusal.
    for sync in [false, true] {
        let mut args = vec!["chat", "--name", "ana"];
        if sync {
            args.push("--sync");
        }
        args.push(&target);
        let output = soquete()
            .args(&args)
            .write_stdin("x1\nx2\nexit\n")
            .timeout(LIMIT)
            .output()
            .unwrap();
        let stdout = String::from_utf8(output.stdout.clone()).unwrap();
        let stderr = String::from_utf8(output.stderr.clone()).unwrap();
        assert!(output.status.success(), "sync {sync}: {output:?}");
        let all: Vec<&str> = stdout.lines().chain(stderr.lines()).collect();
        let refusals = all
            .iter()
            .filter(|l| l.contains("wait for the answer before sending again"))
            .count();
        assert_eq!(refusals, 1, "sync {sync}: {all:?}");
        assert!(
            stdout.lines().any(|l| l == "* bye: you left"),
            "sync {sync}: {all:?}"
        );
        assert!(
            stdout.lines().any(|l| l.ends_with("<ana> x1")),
            "sync {sync}"
        );
        assert!(
            !stdout.lines().any(|l| l.ends_with("<ana> x2")),
            "x2 is not delivered, nor held: {all:?}"
        );
    }
}

#[test]
fn a_long_piped_input_to_a_rate_limited_server_is_all_delivered_and_the_client_waits() {
    // 150 lines at 75/s take the server about 2 s to read: twice the leave timeout the client
    // is given here, which it must wait out as long as the echoes keep coming. (A much shorter
    // timeout could be outlasted by a mere gap between echoes on a busy machine.)
    const LINES: usize = 150;
    const QUIT_TIMEOUT: Duration = Duration::from_millis(1000);
    let (_server, addr) = start_server(&["--rate-limit", "75/s,burst=5"]);
    let target = addr.to_string();
    let bia = Running::start_with_stdin(&["chat", "--json", "--name", "bia", &target]);
    bia.wait_for(LIMIT, |line| line.contains(r#""type":"welcome""#))
        .expect("bia is welcomed");

    let input: String = (1..=LINES).map(|n| format!("{n}\n")).collect();
    let started = Instant::now();
    let output = soquete()
        .args(["chat", "--name", "flood", &target])
        .env(
            "SOQUETE_QUIT_TIMEOUT_MS",
            QUIT_TIMEOUT.as_millis().to_string(),
        )
        .write_stdin(input)
        .timeout(LIMIT)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}\n{output:?}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(started.elapsed() > QUIT_TIMEOUT * 3 / 2, "rate-limited");

    let mut received = Vec::new();
    let last = LINES.to_string();
    bia.wait_for(LIMIT, |line| {
        let Ok(frame) = serde_json::from_str::<serde_json::Value>(line) else {
            return false;
        };
        if frame["type"] != "msg" || frame["from"] != "flood" {
            return false;
        }
        let text = frame["text"].as_str().unwrap().to_string();
        let done = text == last;
        received.push(text);
        done
    })
    .expect("bia receives the last line");
    let expected: Vec<String> = (1..=LINES).map(|n| n.to_string()).collect();
    assert_eq!(received, expected, "every line once, in order");
}
