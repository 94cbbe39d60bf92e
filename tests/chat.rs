//! `soquete chat` against real servers on 127.0.0.1: `nc -l`, the course's Python one-shot
//! server, small in-test servers that speak the soquete protocol, and `soquete serve`; and the
//! interactive client driven through tmux.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::support::{
    Running, sockets_json, soquete, soquete_path, start_server, start_server_with_console,
    wait_line,
};

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
        self.send("* soquete test server: send a JSON hello, or just type");
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
    peer.send(r#"{"type":"bye","reason":"you left","code":"quit"}"#);
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
        let mut said = vec![peer.next_frame()["text"].as_str().unwrap().to_string()];
        answer_now.recv_timeout(LIMIT).expect("the test says when");
        peer.send(FROM_BIA);
        said.push(peer.next_frame()["text"].as_str().unwrap().to_string());
        // The client keeps its end of input until this second answer, then leaves.
        peer.send(
            &FROM_BIA
                .replace("oi pessoal", "resposta dois")
                .replace(r#""seq":1"#, r#""seq":2"#),
        );
        let quit = peer.next_frame();
        assert_eq!(quit["type"], "quit", "{quit}");
        peer.send(r#"{"type":"bye","reason":"you left","code":"quit"}"#);
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
    // Byte for byte what the server sent: no newline added.
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        "Hello Client, olá"
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
    /// A 100×20 pane named `chat` running `command` in a shell, which stays on screen after it
    /// exits; None (the test is skipped) without tmux.
    fn start(name: &str, command: &str) -> Option<Tmux> {
        if Command::new("tmux").arg("-V").output().is_err() {
            eprintln!("skipped: tmux is not installed");
            return None;
        }
        let tmux = Tmux {
            socket: format!("soquete-{name}-{}", std::process::id()),
        };
        tmux.run(&[
            "new-session",
            "-d",
            "-s",
            "chat",
            "-x",
            "100",
            "-y",
            "20",
            command,
        ]);
        tmux.run(&["set-option", "-t", "chat", "remain-on-exit", "on"]);
        Some(tmux)
    }

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
    let (send_now, wait_for_test) = mpsc::channel::<()>();
    let server = Scripted::start(move |peer| {
        peer.handshake();
        wait_for_test
            .recv_timeout(LIMIT)
            .expect("the test says when");
        peer.send(FROM_BIA);
        let typed = peer.next_frame();
        let quit = peer.next_frame();
        peer.send(r#"{"type":"bye","reason":"you left","code":"quit"}"#);
        (typed, quit)
    });
    let Some(tmux) = Tmux::start(
        "half-typed",
        &in_shell(&["--name", "ana", &server.target()]),
    ) else {
        return;
    };
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
        screen.iter().any(|l| l.contains("exit status "))
    });
    // A prompt the editor redraws at the very end may share the status's row.
    assert!(
        screen.iter().any(|l| l.ends_with("exit status 0")),
        "{screen:#?}"
    );
    assert!(tmux.screen().iter().any(|l| l == "* bye: you left"));
}

/// `soquete chat ARGS` in a shell that then reports the exit status (tmux itself may be late to
/// reap its child).
fn in_shell(args: &[&str]) -> String {
    format!(
        "{} chat {}; echo \"exit status $?\"",
        soquete_path().display(),
        args.join(" ")
    )
}

/// The screen's line at which `wanted` is, panicking with the screen if it is not there.
fn line_of(screen: &[String], wanted: &str) -> usize {
    screen
        .iter()
        .position(|line| line == wanted)
        .unwrap_or_else(|| panic!("no line {wanted:?}: {screen:#?}"))
}

#[test]
fn ctrl_d_on_a_half_typed_line_keeps_it_and_on_an_empty_line_leaves() {
    let server = Scripted::start(|peer| {
        peer.handshake();
        (peer.next_frame(), peer.next_frame(), {
            peer.send(r#"{"type":"bye","reason":"you left","code":"quit"}"#);
        })
    });
    let Some(tmux) = Tmux::start("ctrl-d", &in_shell(&["--name", "ana", &server.target()])) else {
        return;
    };
    tmux.wait_screen("the prompt after the welcome", |screen| {
        screen.last().is_some_and(|l| l == "ana>")
    });
    tmux.run(&["send-keys", "-t", "chat", "-l", "partial"]);
    tmux.wait_screen("the half-typed line", |screen| {
        screen.last().is_some_and(|l| l == "ana> partial")
    });
    tmux.run(&["send-keys", "-t", "chat", "C-d"]);
    // Nothing happens: the line stays, and so does the client (checked after the key had time).
    thread::sleep(Duration::from_millis(300));
    let screen = tmux.screen();
    assert_eq!(
        screen.last().map(String::as_str),
        Some("ana> partial"),
        "{screen:#?}"
    );
    assert!(
        !screen.iter().any(|l| l.starts_with("exit status")),
        "{screen:#?}"
    );

    tmux.run(&["send-keys", "-t", "chat", "Enter"]);
    tmux.wait_screen("the next prompt", |screen| {
        screen.last().is_some_and(|l| l == "ana>")
    });
    tmux.run(&["send-keys", "-t", "chat", "C-d"]);
    let (typed, quit, ()) = server
        .result
        .recv_timeout(LIMIT)
        .unwrap_or_else(|_| panic!("the server got no line and quit: {:#?}", tmux.screen()));
    assert_eq!(typed["text"], "partial", "{typed}");
    assert_eq!(quit["type"], "quit", "{quit}");
    let screen = tmux.wait_screen("the client's exit status", |screen| {
        screen.iter().any(|l| l.contains("exit status "))
    });
    // A prompt the editor redraws at the very end may share the status's row.
    assert!(
        screen.iter().any(|l| l.ends_with("exit status 0")),
        "{screen:#?}"
    );
}

/// A raw server played by the test: asks `Name: ` without a newline, reads the answer, greets
/// and closes. Returns the answer.
fn name_prompt_server(greeting: &'static [u8]) -> Scripted<Option<String>> {
    Scripted::start(move |peer| {
        peer.writer.write_all(b"Name: ").unwrap();
        let name = peer.next();
        if let Some(name) = &name {
            peer.writer
                .write_all(format!("Hello {name}").as_bytes())
                .unwrap();
            peer.writer.write_all(greeting).unwrap();
        }
        name
    })
}

#[test]
fn raw_client_shows_a_prompt_at_once_and_writes_bytes_through_unchanged() {
    let server = name_prompt_server(b", ol\xc3\xa1 \xff\r\n\x00end");
    let mut client = std::process::Command::new(soquete_path())
        .args(["chat", "--raw", &server.target()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = client.stdout.take().unwrap();
    let (tx, chunks) = mpsc::channel::<Vec<u8>>();
    thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        while let Ok(n @ 1..) = std::io::Read::read(&mut stdout, &mut buffer) {
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
    // The server closed: the client ends by itself (its input still open).
    let deadline = Instant::now() + LIMIT;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match chunks.recv_timeout(left) {
            Ok(chunk) => out.extend(chunk),
            Err(_) => break,
        }
    }
    assert_eq!(out, b"Name: Hello ana, ol\xc3\xa1 \xff\r\n\x00end");
    let status = loop {
        if let Some(status) = client.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the client exits");
        thread::sleep(Duration::from_millis(10));
    };
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
fn raw_client_on_a_terminal_shows_a_prompt_and_no_stray_prompt_after_the_close() {
    let server = name_prompt_server(b"\n");
    let command = in_shell(&["--raw", "--name", "bob", &server.target()]);
    let Some(tmux) = Tmux::start("raw-prompt", &command) else {
        return;
    };
    let screen = tmux.wait_screen("the server's prompt above ours", |screen| {
        screen.len() >= 2
            && screen[screen.len() - 2] == "Name:"
            && screen[screen.len() - 1] == "bob>"
    });
    assert!(screen[0].starts_with("* connected: "), "{screen:#?}");
    tmux.run(&["send-keys", "-t", "chat", "-l", "ana"]);
    tmux.run(&["send-keys", "-t", "chat", "Enter"]);
    assert_eq!(server.result().as_deref(), Some("ana"));
    let screen = tmux.wait_screen("the client's exit status", |screen| {
        screen.iter().any(|l| l.contains("exit status "))
    });
    let closed = line_of(&screen, "* closed by the server");
    assert_eq!(screen[closed - 1], "Hello ana", "{screen:#?}");
    // The empty prompt is erased at the close, but the editor can redraw it a moment later
    // under load (a known cosmetic race): only the exit status is asserted here.
    assert!(
        screen[closed + 1].ends_with("exit status 0"),
        "the client exits 0 after the close: {screen:#?}"
    );
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

// Reconnection: a server played by the test on a port it keeps, so a client that lost it can
// come back, and the real server killed with SIGKILL and restarted on its `--log`.

/// A soquete server played by the test: its listener stays open for the whole test, and every
/// connection it accepts is handed over by [`FakeServer::next_peer`].
struct FakeServer {
    addr: SocketAddr,
    peers: mpsc::Receiver<Peer>,
}

impl FakeServer {
    fn start() -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let (tx, peers) = mpsc::channel();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                stream.set_read_timeout(Some(LIMIT)).unwrap();
                let peer = Peer {
                    reader: BufReader::new(stream.try_clone().unwrap()),
                    writer: stream,
                };
                if tx.send(peer).is_err() {
                    return;
                }
            }
        });
        FakeServer { addr, peers }
    }

    fn target(&self) -> String {
        self.addr.to_string()
    }

    /// The next connection the client makes.
    fn next_peer(&self) -> Peer {
        self.peers
            .recv_timeout(LIMIT)
            .expect("the client connects (again)")
    }
}

impl Peer {
    /// The greeting, then the client's `hello`, returned as sent.
    fn hello(&mut self) -> serde_json::Value {
        self.send("* soquete test server");
        let hello = self.next_frame();
        assert_eq!(hello["type"], "hello", "{hello}");
        hello
    }

    fn welcome(&mut self, name: &str, last_seq: u64, missed: Option<u64>) {
        let missed = missed.map_or(String::new(), |n| format!(r#","missed":{n}"#));
        self.send(&format!(
            r#"{{"type":"welcome","version":1,"server":"soquete-test","mode":"group","name":"{name}","room_size":2,"last_seq":{last_seq}{missed}}}"#
        ));
    }

    fn msg(&mut self, seq: u64, from: &str, text: &str) {
        self.send(&format!(
            r#"{{"type":"msg","seq":{seq},"time":"2026-11-26T14:03:07-03:00","from":"{from}","text":"{text}"}}"#
        ));
    }

    /// The client's frames up to and including `quit`, answered with `bye`: the texts it said.
    fn said_until_quit(&mut self) -> Vec<String> {
        let mut said = Vec::new();
        loop {
            let frame = self.next_frame();
            match frame["type"].as_str() {
                Some("msg") => said.push(frame["text"].as_str().unwrap().to_string()),
                Some("quit") => break,
                other => panic!("unexpected frame {other:?}: {frame}"),
            }
        }
        self.send(r#"{"type":"bye","reason":"you left","code":"quit"}"#);
        said
    }

    /// Ends the connection with a reset (RST), as when a server's process dies with unread data.
    fn reset(self) {
        socket2::SockRef::from(&self.writer)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
    }
}

/// A client's output lines, kept as they are waited for, so the whole transcript can be checked.
struct Transcript {
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Transcript {
    /// Takes over the client's stdout lines.
    fn of(client: &mut Running) -> Transcript {
        Transcript {
            lines: std::mem::replace(&mut client.lines, mpsc::channel().1),
            seen: Vec::new(),
        }
    }

    fn wait_for(&mut self, what: &str, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + LIMIT;
        loop {
            let left = deadline
                .checked_duration_since(Instant::now())
                .unwrap_or_else(|| panic!("waiting for {what}: {:#?}", self.seen));
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if wanted(&line) {
                        return line;
                    }
                }
                Err(_) => panic!("waiting for {what}: {:#?}", self.seen),
            }
        }
    }

    /// Everything, once the client has exited (its output then ends).
    fn all(mut self) -> Vec<String> {
        let deadline = Instant::now() + LIMIT;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => break,
            }
        }
        self.seen
    }
}

fn count(lines: &[String], wanted: &str) -> usize {
    lines.iter().filter(|line| line.contains(wanted)).count()
}

#[test]
fn client_reconnects_after_a_reset_resumes_once_and_delivers_what_was_typed_meanwhile() {
    let server = FakeServer::start();
    let mut client = Running::start_with_stdin(&[
        "chat",
        "--name",
        "ana",
        "--reconnect-max",
        "0.2",
        &server.target(),
    ]);
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
    let typed = second.next_frame();
    assert_eq!(typed["text"], "typed while away", "{typed}");
    let typed = second.next_frame();
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
    let mut client = Running::start_with_stdin_env(
        &[
            "chat",
            "--json",
            "--name",
            "ana",
            "--reconnect-max",
            "0.2",
            &server.target(),
        ],
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
    let mut client = Running::start_with_stdin(&[
        "chat",
        "--name",
        "ana",
        "--reconnect-max",
        "0.2",
        &server.target(),
    ]);
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
    second.welcome("ana", 1012, Some(2));
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

/// Whether this build's server keeps a log to restart from (`soquete serve --log`).
fn serve_has_log() -> bool {
    let help = soquete().args(["serve", "--help"]).output().unwrap();
    String::from_utf8_lossy(&help.stdout).contains("--log")
}

#[test]
fn clients_survive_a_killed_and_restarted_server_seeing_every_message_once_in_order() {
    if !serve_has_log() {
        eprintln!("skipped: this build's `soquete serve` has no --log");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("room.jsonl");
    let log = log.to_str().unwrap();
    let port = free_port().to_string();
    let serve = ["serve", "--port", &port, "--log", log];
    let server = Running::start(&serve);
    server
        .wait_for(LIMIT, |line| line.starts_with("listening on "))
        .expect("the server listens");
    let target = format!("127.0.0.1:{port}");
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

    let mut server = server;
    server.child.kill().unwrap(); // SIGKILL: no bye, nothing flushed at exit
    server.child.wait().unwrap();
    ana_out.wait_for("ana's loss", |line| line.contains(r#""reconnecting""#));
    bia_out.wait_for("bia's loss", |line| line.contains(r#""reconnecting""#));
    ana_stdin
        .write_all(b"three, typed while the server was down\n")
        .unwrap();

    let restarted = Running::start(&serve);
    restarted
        .wait_for(LIMIT, |line| line.starts_with("listening on "))
        .expect("the server listens again on the same port");
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
    // 150 lines at 50/s take the server about 3 s to read: three times the leave timeout the
    // client is given here, which it must wait out as long as the echoes keep coming.
    let (_server, addr) = start_server(&["--rate-limit", "50/s,burst=5"]);
    let target = addr.to_string();
    let bia = Running::start_with_stdin(&["chat", "--json", "--name", "bia", &target]);
    bia.wait_for(LIMIT, |line| line.contains(r#""type":"welcome""#))
        .expect("bia is welcomed");

    let input: String = (1..=150).map(|n| format!("{n}\n")).collect();
    let started = Instant::now();
    let output = soquete()
        .args(["chat", "--name", "flood", &target])
        .env("SOQUETE_QUIT_TIMEOUT_MS", "1000")
        .write_stdin(input)
        .timeout(LIMIT)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}\n{output:?}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        started.elapsed() > Duration::from_millis(1500),
        "rate-limited"
    );

    let received = std::sync::Mutex::new(Vec::new());
    bia.wait_for(LIMIT, |line| {
        let Ok(frame) = serde_json::from_str::<serde_json::Value>(line) else {
            return false;
        };
        if frame["type"] != "msg" || frame["from"] != "flood" {
            return false;
        }
        let text = frame["text"].as_str().unwrap().to_string();
        let last = text == "150";
        received.lock().unwrap().push(text);
        last
    })
    .expect("bia receives the last line");
    let expected: Vec<String> = (1..=150).map(|n| n.to_string()).collect();
    assert_eq!(
        *received.lock().unwrap(),
        expected,
        "every line once, in order"
    );
}
