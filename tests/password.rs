//! A room with a password (`serve --password-file`, `SOQUETE_PASSWORD`): every kind of client
//! (a soquete client, `chat --raw`, nc, the course's Python client) gets in with the right one
//! and is turned away with a wrong or missing one; the password a raw client types reaches no
//! one (not the room, the console nor the log); a connection that gives none hears nothing of
//! the room; `probe --chat` tells such a room without trying a password.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde_json::{Value, json};

use crate::support::course::COURSE_CLIENT;
use crate::support::peer::Peer;
use crate::support::process::{Running, lines_until, soquete};
use crate::support::serve::{Serve, console_line};
use crate::support::tmux::{Tmux, in_shell};
use crate::support::{LIMIT, require, tool};

/// The room's password in these tests: UTF-8, with a space.
pub const PASSWORD: &str = "cavalo correto ✓";

/// A file of its own holding `text` (then a newline), for `--password-file`.
pub fn password_file(test: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("soquete-password-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(test);
    std::fs::write(&path, format!("{text}\n")).unwrap();
    path
}

/// `soquete serve --password-file FILE ARGS`, with [`PASSWORD`] in FILE, to start.
pub fn locked(test: &str, args: &[&str]) -> Serve {
    let file = password_file(test, PASSWORD);
    let mut all = vec!["--password-file", file.to_str().unwrap()];
    all.extend_from_slice(args);
    Serve::new(&all)
}

/// [`locked`], started.
pub fn locked_server(test: &str, args: &[&str]) -> (Running, SocketAddr) {
    locked(test, args).start()
}

/// A structured client's hello, with `password` when given.
fn hello(name: &str, password: Option<&str>) -> Value {
    let mut hello = json!({"type": "hello", "version": 1, "name": name});
    if let Some(password) = password {
        hello["password"] = json!(password);
    }
    hello
}

/// Reads what is left of a connection turned away: every line until the server closes.
fn rest(peer: &mut Peer) -> Vec<String> {
    let mut lines = Vec::new();
    while let Some(line) = peer.next() {
        lines.push(line);
        assert!(lines.len() < 100, "the server closes: {lines:?}");
    }
    lines
}

#[test]
fn a_soquete_client_gets_in_with_the_right_password_only() {
    let (server, addr) = locked_server("structured", &[]);
    let mut ana = Peer::connect(addr);
    ana.send_json(hello("ana", Some(PASSWORD)));
    assert_eq!(ana.line(), "* password:", "the prompt comes first");
    let welcome = ana.frame_where(|f| f["type"] == "welcome");
    assert_eq!(welcome["name"], "ana");

    for (password, code) in [(Some("wrong"), "bad_password"), (None, "password_required")] {
        let mut intruder = Peer::connect(addr);
        intruder.send_json(hello("bia", password));
        let lines = rest(&mut intruder);
        assert_eq!(lines[0], "* password:", "{lines:?}");
        let error: Value = serde_json::from_str(&lines[1]).unwrap();
        assert_eq!(error["type"], "error");
        assert_eq!(error["code"], code, "{error}");
        assert_eq!(lines.len(), 2, "one error, then the close: {lines:?}");
    }
    // The room heard of neither.
    ana.say("marker");
    let seen = ana.frame_where(|f| f["type"] != "ping" && f["type"] != "error");
    assert_eq!(seen["text"], "marker", "nothing before the marker: {seen}");
    console_line(&server, |line| line.contains("wrong password"));
}

#[test]
fn nc_gets_the_prompt_and_its_first_line_is_the_password() {
    if !require(tool("nc"), "nc (netcat-openbsd)") {
        return;
    }
    let (server, addr) = locked_server("nc", &[]);
    let mut ana = Peer::connect(addr);
    ana.send_json(hello("ana", Some(PASSWORD)));
    ana.frame_where(|f| f["type"] == "welcome");
    let port = addr.port().to_string();

    let mut nc = Running::program("nc", &["127.0.0.1", &port]);
    nc.wait_for(LIMIT, |line| line == "* password:")
        .expect("nc shows the prompt");
    let mut typed = nc.child.stdin.take().unwrap();
    typed
        .write_all(format!("{PASSWORD}\noi, sou o nc\n").as_bytes())
        .unwrap();
    nc.wait_for(LIMIT, |line| line.starts_with("* welcome to soquete"))
        .expect("nc is welcomed");
    let said = ana.frame_where(|f| f["type"] == "msg");
    assert_eq!(said["text"], "oi, sou o nc");
    drop(typed);

    let mut wrong = Running::program("nc", &["127.0.0.1", &port]);
    let mut typed = wrong.child.stdin.take().unwrap();
    typed.write_all(b"not it\n").unwrap();
    let seen = lines_until(&wrong.lines, |line| line.starts_with("! "));
    assert_eq!(seen, ["* password:", "! wrong password"]);
    drop(typed);
    wrong.wait_exit(LIMIT).expect("nc ends: the server closed");
    console_line(&server, |line| {
        line.contains("denied") && line.contains("wrong password")
    });
}

#[test]
fn the_course_client_hears_the_prompt_and_its_line_is_checked_as_the_password() {
    if !require(tool("python3"), "python3") {
        return;
    }
    // The course's client sends `Hello Server` and reads once: its line is its password.
    let file = password_file("course", "Hello Server");
    let (server, addr) = Serve::new(&["--password-file", file.to_str().unwrap()]).start();
    let port = addr.port().to_string();
    let run = |server: &Running| {
        let python = Running::program("python3", &["-c", COURSE_CLIENT, "127.0.0.1", &port]);
        python
            .wait_for(LIMIT, |line| line.starts_with("Recebido:"))
            .expect("the course client prints the reply")
            .to_string()
            + &console_line(server, |line| line.contains("127.0.0.1:"))
    };
    let right = run(&server);
    assert!(right.starts_with("Recebido: * password:"), "{right}");
    assert!(right.contains("connected"), "right: let in ({right})");

    let file = password_file("course-wrong", PASSWORD);
    let (server, addr) = Serve::new(&["--password-file", file.to_str().unwrap()]).start();
    let port = addr.port().to_string();
    let python = Running::program("python3", &["-c", COURSE_CLIENT, "127.0.0.1", &port]);
    python
        .wait_for(LIMIT, |line| line == "Recebido: * password:")
        .expect("the course client prints the prompt");
    let denied = console_line(&server, |line| line.contains("denied"));
    assert!(denied.contains("wrong password"), "{denied}");
    assert!(
        !denied.contains("Hello Server"),
        "never the password: {denied}"
    );
}

/// Runs `soquete ARGS` with `stdin`, and `SOQUETE_PASSWORD` only when `password` gives it:
/// its exit code, stdout and stderr.
fn run(args: &[&str], stdin: &str, password: Option<&str>) -> (Option<i32>, String, String) {
    let mut command = soquete();
    command.args(args).env_remove("SOQUETE_PASSWORD");
    if let Some(password) = password {
        command.env("SOQUETE_PASSWORD", password);
    }
    let output = command.write_stdin(stdin).timeout(LIMIT).output().unwrap();
    let text = |bytes: Vec<u8>| String::from_utf8_lossy(&bytes).into_owned();
    (
        output.status.code(),
        text(output.stdout),
        text(output.stderr),
    )
}

#[test]
fn soquete_chat_sends_the_password_from_a_file_or_the_environment() {
    let (_server, addr) = locked_server("chat", &[]);
    let target = addr.to_string();
    let right = password_file("chat-right", PASSWORD);
    let right = right.to_str().unwrap();
    let chat = ["chat", "--no-reconnect", &target];
    let (code, stdout, stderr) = run(
        &[&chat[..], &["--password-file", right]].concat(),
        "olá\n",
        None,
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("* welcome to soquete"), "{stdout}");
    assert!(
        !stdout.contains("* password:"),
        "the raw prompt is not shown: {stdout}"
    );

    let (code, _, stderr) = run(&chat, "olá\n", Some("wrong"));
    assert_eq!(code, Some(1), "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.ends_with("did not let us in: wrong password"),
        "{stderr}"
    );

    let (code, _, stderr) = run(&chat, "olá\n", None);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("this room needs a password; give it with --password-file"),
        "{stderr}"
    );

    let empty = password_file("chat-empty", "");
    let (code, _, stderr) = run(
        &[&chat[..], &["--password-file", empty.to_str().unwrap()]].concat(),
        "",
        None,
    );
    assert_eq!(code, Some(64), "{stderr}");
    assert!(stderr.contains("the password is empty"), "{stderr}");
}

#[test]
fn chat_raw_types_the_password_as_its_first_line() {
    let (_server, addr) = locked_server("raw", &[]);
    let target = addr.to_string();
    let typed = format!("{PASSWORD}\n/who\n");
    let (code, stdout, stderr) = run(&["chat", "--raw", &target], &typed, None);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.starts_with("* password:\n"), "{stdout}");
    assert!(stdout.contains("* welcome to soquete"), "{stdout}");
    assert!(stdout.contains("* 2 here:"), "{stdout}");

    let (_, stdout, _) = run(&["chat", "--raw", &target], "nope\n/who\n", None);
    assert_eq!(stdout, "* password:\n! wrong password\n");
}

#[test]
fn the_password_a_raw_client_types_reaches_no_one_and_no_file() {
    let log = password_file("log", "").with_extension("log");
    let _ = std::fs::remove_file(&log);
    for mode in ["group", "echo"] {
        let mut args = vec!["--mode", mode];
        if mode == "group" {
            args.extend(["--log", log.to_str().unwrap()]);
        }
        let (mut server, addr) = locked_server(&format!("leak-{mode}"), &args);
        let errors = server.stderr_lines();
        let mut ana = Peer::connect(addr);
        ana.send_json(hello("ana", Some(PASSWORD)));
        ana.frame_where(|f| f["type"] == "welcome");

        let mut wrong = Peer::connect(addr);
        wrong.send("segredo errado");
        assert_eq!(rest(&mut wrong), ["* password:", "! wrong password"]);
        let (mut nina, prompt) = Peer::raw(addr);
        assert_eq!(prompt, "* password:");
        nina.send(PASSWORD);
        nina.send("oi");
        if mode == "group" {
            ana.frame_where(|f| f["text"] == "oi");
            ana.say("marker");
        } else {
            nina.send("marker");
        }
        let mut heard = Vec::new();
        nina.line_where(|line| {
            heard.push(line.to_string());
            line.contains("marker")
        });
        assert!(
            heard.iter().all(|l| !l.contains(PASSWORD)),
            "{mode}: never echoed: {heard:?}"
        );
        if mode == "group" {
            let mut frames = Vec::new();
            ana.frame_where(|f| {
                frames.push(f.to_string());
                f["text"] == "marker"
            });
            let all = frames.join("\n");
            assert!(!all.contains(PASSWORD) && !all.contains("segredo"), "{all}");
        }
        let last = if mode == "group" { "marker" } else { "(guest-" };
        let console = lines_until(&server.lines, |line| line.contains(last));
        let console = console.join("\n");
        assert!(
            !console.contains(PASSWORD) && !console.contains("segredo"),
            "{console}"
        );
        assert!(
            console.contains("wrong password (1 failed try from 127.0.0.1)"),
            "{console}"
        );
        server.interrupt(LIMIT).expect("the server stops");
        let warning: Vec<String> = errors.try_iter().collect();
        assert_eq!(
            warning
                .iter()
                .filter(|l| l.contains("not encrypted"))
                .count(),
            1,
            "warned once: {warning:?}"
        );
        assert!(warning.iter().all(|l| !l.contains(PASSWORD)), "{warning:?}");
    }
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("marker"), "{logged}");
    assert!(
        !logged.contains(PASSWORD) && !logged.contains("segredo"),
        "{logged}"
    );
}

#[test]
fn a_connection_without_the_password_hears_nothing_of_the_room_and_never_joins() {
    let (server, addr) = locked("silent", &[])
        .env("SOQUETE_HEARTBEAT_INTERVAL_MS", "1500")
        .start();
    let mut ana = Peer::connect(addr);
    ana.send_json(hello("ana", Some(PASSWORD)));
    ana.frame_where(|f| f["type"] == "welcome");
    ana.say("before");
    ana.frame_where(|f| f["text"] == "before");
    let (mut silent, prompt) = Peer::raw(addr);
    assert_eq!(prompt, "* password:");
    // ana's next ping comes 1.5 s after its last frame: the silent connection has been silent
    // for longer than the join grace (1 s) that makes a raw connection a listener.
    ana.frame_where(|f| f["type"] == "ping");
    ana.say("after");
    ana.frame_where(|f| f["text"] == "after");
    console_line(&server, |line| line.contains("<ana> after"));
    silent.send("a guess");
    assert_eq!(
        rest(&mut silent),
        ["! wrong password"],
        "nothing of the room, before or after"
    );
    let denied = console_line(&server, |line| line.contains("127.0.0.1:"));
    assert!(denied.contains("denied"), "never connected: {denied}");
}

#[test]
fn probe_chat_says_the_room_needs_a_password_without_trying_one() {
    let (server, addr) = locked_server("probe", &[]);
    let target = addr.to_string();
    let (code, stdout, _) = run(&["probe", "--chat", &target], "", None);
    assert_eq!(code, Some(0), "a soquete server: {stdout}");
    assert!(
        stdout.contains("soquete server: its room needs a password (none was tried)"),
        "{stdout}"
    );
    let (_, stdout, _) = run(&["probe", "--chat", "--json", &target], "", None);
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    let chat = &doc["targets"][0]["addresses"][0]["chat"];
    assert_eq!(chat["found"], "password_required", "{doc}");
    assert_eq!(doc["targets"][0]["soquete"], true);
    let console = console_line(&server, |line| line.contains("denied"));
    assert!(console.contains("a soquete probe"), "{console}");
    assert!(!console.contains("failed"), "no try was counted: {console}");
}

#[test]
fn on_a_terminal_chat_asks_for_the_password_without_echo() {
    let (_server, addr) = locked_server("tty", &[]);
    let Some(tmux) = Tmux::start("password", &in_shell(&["--name", "ana", &addr.to_string()]))
    else {
        return;
    };
    tmux.wait_screen("the password prompt", |screen| {
        screen
            .last()
            .is_some_and(|l| l.starts_with("password for the room at "))
    });
    tmux.type_text(PASSWORD);
    tmux.press(&["Enter"]);
    let screen = tmux.wait_screen("the welcome", |screen| {
        screen.iter().any(|l| l.starts_with("* welcome to soquete"))
    });
    assert!(
        screen
            .iter()
            .all(|l| !l.contains(PASSWORD) && l != "* password:"),
        "{screen:#?}"
    );
    tmux.type_text("/quit");
    tmux.press(&["Enter"]);
    tmux.wait_screen("the exit", |screen| {
        screen.iter().any(|l| l == "exit status 0")
    });
}

/// A client holding a password (`SOQUETE_PASSWORD`, as `serve` reads it) sends it only to a
/// server that asked: a server that greets, or one that stays silent, never sees it, on the
/// first connection nor on a reconnection; one that asks gets it, with a warning that it crossed
/// the network readable (no `--tls`).
#[test]
fn soquete_chat_sends_the_password_only_to_a_server_that_asked() {
    let server = crate::support::fake_server::FakeServer::start();
    let args = [
        "chat",
        "--name",
        "ana",
        "--reconnect-max",
        "0.2",
        &server.target(),
    ];
    let mut client = Running::start_with_stdin_env(&args, &[("SOQUETE_PASSWORD", "s3cret")]);
    let errors = client.stderr_lines();

    // Greets, as a soquete server without a password does.
    let mut first = server.next_peer();
    let hello = first.hello();
    assert!(hello.get("password").is_none(), "sent unasked: {hello}");
    first.welcome("ana", 0, None);
    first.reset();
    // Silent (nc -l): the hello comes anyway, without the password.
    let mut second = server.next_peer();
    let hello = second.frame();
    assert_eq!(hello["type"], "hello", "{hello}");
    assert!(hello.get("password").is_none(), "sent unasked: {hello}");
    second.reset();
    // Asks, as a password room does: its prompt first.
    let mut third = server.next_peer();
    third.send("* password:");
    let hello = third.frame();
    assert_eq!(hello["password"], "s3cret", "{hello}");
    crate::support::process::wait_line(&errors, LIMIT, |line| {
        line.contains("crosses the network readable")
    })
    .expect("a warning that the password crossed in clear");
    drop(client);
}

/// A password no raw client can type (NUL is dropped from every line it sends, other control
/// characters are not typed) is refused when the server starts, in one line, exit 64.
#[test]
fn a_password_with_control_characters_is_refused_at_start() {
    let file = password_file("control", "abc\u{0}def");
    let output = soquete()
        .args([
            "serve",
            "--port",
            "0",
            "--password-file",
            file.to_str().unwrap(),
        ])
        .env_remove("SOQUETE_PASSWORD")
        .timeout(LIMIT)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(64), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("control character"), "{stderr}");
}
