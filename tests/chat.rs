//! `soquete chat` against real servers on 127.0.0.1: `nc -l`, the course's Python one-shot
//! server, small in-test servers that speak the soquete protocol, and `soquete serve`; and the
//! interactive client driven through tmux.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::support::{Running, sockets_json, soquete, soquete_path, start_server, wait_line};

/// How long any one step may take before the test fails.
const LIMIT: Duration = Duration::from_secs(10);

/// One connection accepted by an in-test server.
struct Peer {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Peer {
    fn send(&mut self, line: &str) {
        self.writer
            .write_all(format!("{line}\n").as_bytes())
            .expect("the client is connected");
    }

    /// The next line the client sent, without its newline; None when it closed.
    fn next(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line.trim_end_matches(['\r', '\n']).to_string()),
        }
    }

    fn next_frame(&mut self) -> serde_json::Value {
        let line = self.next().expect("the client sent a line");
        serde_json::from_str(&line).unwrap_or_else(|err| panic!("not JSON: {line}: {err}"))
    }

    /// The soquete handshake, server side: greeting line, `hello`, `welcome`; returns the name.
    fn handshake(&mut self) -> String {
        self.send("soquete test server: send a JSON hello, or just type");
        let hello = self.next_frame();
        assert_eq!(hello["type"], "hello", "{hello}");
        assert_eq!(hello["version"], 1, "{hello}");
        let name = hello["name"]
            .as_str()
            .expect("hello has a name")
            .to_string();
        self.send(&format!(
            r#"{{"type":"welcome","version":1,"server":"soquete-test","mode":"group","name":"{name}","room_size":2}}"#
        ));
        name
    }
}

/// A server on 127.0.0.1 (port 0) that runs `script` on its first connection; the script's
/// result comes back through [`Scripted::result`].
struct Scripted<T> {
    addr: SocketAddr,
    result: mpsc::Receiver<T>,
}

impl<T: Send + 'static> Scripted<T> {
    fn start(script: impl FnOnce(&mut Peer) -> T + Send + 'static) -> Scripted<T> {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let (tx, result) = mpsc::channel();
        thread::spawn(move || {
            let (stream, _) = listener.accept().expect("the client connects");
            stream.set_read_timeout(Some(LIMIT)).unwrap();
            let mut peer = Peer {
                reader: BufReader::new(stream.try_clone().unwrap()),
                writer: stream,
            };
            let _ = tx.send(script(&mut peer));
        });
        Scripted { addr, result }
    }

    fn target(&self) -> String {
        self.addr.to_string()
    }

    fn result(&self) -> T {
        self.result
            .recv_timeout(LIMIT)
            .expect("the in-test server finished its script")
    }
}

const FROM_BIA: &str =
    r#"{"type":"msg","seq":1,"time":"2026-11-26T14:03:07-03:00","from":"bia","text":"oi pessoal"}"#;

/// The server side of a whole piped session: welcome, one message from bia, then everything the
/// client says until `quit`, answered with `bye`.
fn chat_until_quit(peer: &mut Peer) -> (String, Vec<String>) {
    let name = peer.handshake();
    peer.send(FROM_BIA);
    let mut said = Vec::new();
    loop {
        let frame = peer.next_frame();
        match frame["type"].as_str() {
            Some("msg") => said.push(frame["text"].as_str().unwrap().to_string()),
            Some("quit") => break,
            other => panic!("unexpected frame {other:?}: {frame}"),
        }
    }
    peer.send(r#"{"type":"bye","reason":"you left"}"#);
    (name, said)
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
            "* soquete test server: send a JSON hello, or just type",
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
fn server_that_drops_the_connection_is_a_lost_connection_exit_1() {
    let server = Scripted::start(|peer| {
        peer.handshake();
        // Dropping the peer closes the connection without a bye, as a crashed server would.
    });
    let mut client = Running::start_with_stdin(&["chat", "--name", "ana", &server.target()]);
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
        let mut said = vec![peer.next_frame()["text"].as_str().unwrap().to_string()];
        answer_now.recv_timeout(LIMIT).expect("the test says when");
        peer.send(FROM_BIA);
        said.push(peer.next_frame()["text"].as_str().unwrap().to_string());
        // The client keeps its end of input until this second answer, then leaves.
        peer.send(&FROM_BIA.replace("oi pessoal", "resposta dois"));
        let quit = peer.next_frame();
        assert_eq!(quit["type"], "quit", "{quit}");
        peer.send(r#"{"type":"bye","reason":"you left"}"#);
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
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        "Hello Client, olá\n"
    );
    python
        .wait_for(LIMIT, |line| line == "Recebido: Hello Server")
        .expect("the server got the line");
}

/// A free port: bound, then released for a program that cannot bind port 0 and say which.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Waits until something listens on 127.0.0.1:`port`, as `soquete sockets` sees it.
fn wait_listening(port: u16) {
    let deadline = Instant::now() + LIMIT;
    let port_text = port.to_string();
    while Instant::now() < deadline {
        let rows = sockets_json(&["-tl", "--port", &port_text]);
        if rows.iter().any(|row| row["local_port"] == port) {
            return;
        }
    }
    panic!("nothing listens on port {port}");
}

#[test]
fn raw_client_talks_with_nc_both_ways_and_half_closes_at_end_of_input() {
    if Command::new("nc").arg("-h").output().is_err() {
        eprintln!("skipped: nc (netcat-openbsd) is not installed");
        return;
    }
    let port = free_port();
    let mut nc = Running::program("nc", &["-l", "127.0.0.1", &port.to_string()]);
    wait_listening(port);
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
        assert_eq!(output.status.code(), Some(2), "{bad}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("soquete: bad target"), "{stderr}");
    }
}

#[test]
fn refused_connection_exits_1_naming_the_address() {
    let port = free_port();
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

/// A tmux server on its own socket, killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> String {
        let output = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux runs");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// The pane's visible lines, without trailing blank ones.
    fn screen(&self) -> Vec<String> {
        let text = self.run(&["capture-pane", "-p", "-t", "chat"]);
        let mut lines: Vec<String> = text.lines().map(|l| l.trim_end().to_string()).collect();
        while lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        lines
    }

    /// Polls the screen (bounded) until `wanted` holds; returns it.
    fn wait_screen(&self, what: &str, wanted: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = Instant::now() + LIMIT;
        loop {
            let screen = self.screen();
            if wanted(&screen) {
                return screen;
            }
            assert!(Instant::now() < deadline, "waiting for {what}: {screen:#?}");
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.run(&["kill-server"]);
    }
}

#[test]
fn interactive_client_keeps_a_half_typed_line_intact_when_a_message_arrives() {
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("skipped: tmux is not installed");
        return;
    }
    let (send_now, wait_for_test) = mpsc::channel::<()>();
    let server = Scripted::start(move |peer| {
        peer.handshake();
        wait_for_test
            .recv_timeout(LIMIT)
            .expect("the test says when");
        peer.send(FROM_BIA);
        let typed = peer.next_frame();
        let quit = peer.next_frame();
        peer.send(r#"{"type":"bye","reason":"you left"}"#);
        (typed, quit)
    });
    let tmux = Tmux {
        socket: format!("soquete-chat-test-{}", std::process::id()),
    };
    // The shell reports the exit status: tmux itself may be late to reap its child.
    let command = format!(
        "{} chat --name ana {}; echo \"exit status $?\"",
        soquete_path().display(),
        server.target()
    );
    tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "chat",
        "-x",
        "100",
        "-y",
        "20",
        &command,
    ]);
    tmux.run(&["set-option", "-t", "chat", "remain-on-exit", "on"]);
    tmux.wait_screen("the prompt after the welcome", |screen| {
        screen.iter().any(|l| l.starts_with("* welcome to"))
            && screen.last().is_some_and(|l| l == "ana>")
    });

    tmux.run(&["send-keys", "-t", "chat", "-l", "meio digitado, ação"]);
    tmux.wait_screen("the half-typed line", |screen| {
        screen
            .last()
            .is_some_and(|l| l == "ana> meio digitado, ação")
    });
    send_now.send(()).unwrap();
    let screen = tmux.wait_screen("bia's message", |screen| {
        screen.iter().any(|l| l.ends_with("<bia> oi pessoal"))
    });
    let n = screen.len();
    assert!(n >= 2, "{screen:#?}");
    assert_eq!(screen[n - 2], "[14:03:07] <bia> oi pessoal", "{screen:#?}");
    assert_eq!(screen[n - 1], "ana> meio digitado, ação", "{screen:#?}");

    tmux.run(&["send-keys", "-t", "chat", " e completo", "Enter"]);
    tmux.run(&["send-keys", "-t", "chat", "-l", "/quit"]);
    tmux.run(&["send-keys", "-t", "chat", "Enter"]);
    let (typed, quit) = server
        .result
        .recv_timeout(LIMIT)
        .unwrap_or_else(|_| panic!("the server got no line and quit: {:#?}", tmux.screen()));
    assert_eq!(typed["type"], "msg");
    assert_eq!(typed["text"], "meio digitado, ação e completo");
    assert_eq!(quit["type"], "quit");
    let screen = tmux.wait_screen("the client's exit status", |screen| {
        screen.iter().any(|l| l.starts_with("exit status "))
    });
    assert!(screen.iter().any(|l| l == "exit status 0"), "{screen:#?}");
    assert!(tmux.screen().iter().any(|l| l == "* bye: you left"));
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
fn killed_server_is_a_lost_connection_for_the_client() {
    let (mut server, addr) = start_server(&[]);
    let mut client = Running::start_with_stdin(&["chat", "--name", "ana", &addr.to_string()]);
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
