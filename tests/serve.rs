//! `soquete serve` with real clients on 127.0.0.1: soquete's JSON protocol spoken over a plain
//! `TcpStream`, raw lines, and the real `nc` and `python3`.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{Running, soquete, start_server, start_server_at, start_server_with_console};

/// Longest any single wait in these tests may take.
const LIMIT: Duration = Duration::from_secs(10);
/// Most lines a test reads while looking for one.
const MAX_LINES: usize = 5_000;

/// One client connection, read line by line with a timeout.
struct Peer {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Peer {
    fn connect(addr: SocketAddr) -> Peer {
        let stream = TcpStream::connect_timeout(&addr, LIMIT).expect("connects");
        stream.set_read_timeout(Some(LIMIT)).unwrap();
        stream.set_write_timeout(Some(LIMIT)).unwrap();
        Peer {
            writer: stream.try_clone().unwrap(),
            reader: BufReader::new(stream),
        }
    }

    /// A raw client (nc, telnet): it hears a greeting line at once.
    fn raw(addr: SocketAddr) -> (Peer, String) {
        let mut peer = Peer::connect(addr);
        let greeting = peer.line();
        (peer, greeting)
    }

    /// A structured client: says hello, skips the plain greeting, returns once welcomed.
    fn structured(addr: SocketAddr, name: &str) -> Peer {
        let mut peer = Peer::connect(addr);
        peer.send_json(json!({"type": "hello", "version": 1, "name": name}));
        let welcome = peer.frame_where(|f| f["type"] == "welcome");
        assert_eq!(welcome["name"], name, "{welcome}");
        peer
    }

    fn send(&mut self, text: &str) {
        self.writer
            .write_all(format!("{text}\n").as_bytes())
            .unwrap();
    }

    fn send_json(&mut self, frame: Value) {
        self.send(&frame.to_string());
    }

    fn say(&mut self, text: &str) {
        self.send_json(json!({"type": "msg", "text": text}));
    }

    /// The next line, without its newline; panics on timeout or end of stream.
    fn line(&mut self) -> String {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line).expect("a line in time");
        assert!(n > 0, "the server closed the connection");
        line.trim_end_matches('\n').to_string()
    }

    /// The next line for which `wanted` holds, within [`LIMIT`] (heartbeats keep a connection
    /// talking, so a wait is bounded in time, not only in lines).
    fn line_where(&mut self, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + LIMIT;
        for _ in 0..MAX_LINES {
            let line = self.line();
            if wanted(&line) {
                return line;
            }
            assert!(std::time::Instant::now() < deadline, "no such line in time");
        }
        panic!("no such line in {MAX_LINES}");
    }

    /// The next JSON frame (plain lines, such as the greeting, are skipped).
    fn frame(&mut self) -> Value {
        for _ in 0..MAX_LINES {
            let line = self.line();
            if let Ok(frame) = serde_json::from_str::<Value>(&line) {
                return frame;
            }
        }
        panic!("no frame in {MAX_LINES} lines");
    }

    fn frame_where(&mut self, mut wanted: impl FnMut(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + LIMIT;
        for _ in 0..MAX_LINES {
            let frame = self.frame();
            if wanted(&frame) {
                return frame;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no such frame in time"
            );
        }
        panic!("no such frame in {MAX_LINES}");
    }

    /// A structured client that reconnects: its hello says the last `seq` it saw. Returns the
    /// peer and its `welcome`.
    fn resume(addr: SocketAddr, name: &str, last_seq: u64) -> (Peer, Value) {
        let mut peer = Peer::connect(addr);
        peer.send_json(json!({"type": "hello", "version": 1, "name": name, "last_seq": last_seq}));
        let welcome = peer.frame_where(|f| f["type"] == "welcome");
        (peer, welcome)
    }

    /// The next `count` chat messages, skipping other frames.
    fn messages(&mut self, count: usize) -> Vec<Value> {
        (0..count)
            .map(|_| self.frame_where(|f| f["type"] == "msg"))
            .collect()
    }

    /// True when the server has closed the connection (after what is left to read).
    fn closed(&mut self) -> bool {
        let mut rest = String::new();
        for _ in 0..MAX_LINES {
            rest.clear();
            match self.reader.read_line(&mut rest) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
        false
    }
}

/// Every line up to and including the first for which `wanted` holds.
fn lines_until(lines: &mpsc::Receiver<String>, wanted: impl Fn(&str) -> bool) -> Vec<String> {
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + LIMIT;
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match lines.recv_timeout(left) {
            Ok(line) => {
                let done = wanted(&line);
                seen.push(line);
                if done {
                    return seen;
                }
            }
            Err(_) => break,
        }
    }
    panic!("no such line; saw {seen:?}");
}

fn type_at_console(server: &mut Running, line: &str) {
    let stdin = server.child.stdin.as_mut().expect("stdin is piped");
    stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
    stdin.flush().unwrap();
}

fn console_line(server: &Running, wanted: impl Fn(&str) -> bool) -> String {
    server
        .wait_for(LIMIT, wanted)
        .expect("the console prints it in time")
}

fn python(script: &str, addr: SocketAddr) -> Child {
    Command::new("python3")
        .args([
            "-c",
            script,
            &addr.ip().to_string(),
            &addr.port().to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs")
}

#[test]
fn group_messages_reach_every_other_member_once_in_the_same_order() {
    let (_server, addr) = start_server(&[]);
    let mut peers = [
        Peer::structured(addr, "ana"),
        Peer::structured(addr, "bia"),
        Peer::structured(addr, "cid"),
    ];
    for peer in &mut peers[..2] {
        peer.frame_where(|f| f["type"] == "join" && f["name"] == "cid");
    }
    for round in 0..5 {
        for (peer, name) in peers.iter_mut().zip(["ana", "bia", "cid"]) {
            peer.say(&format!("{name} {round}"));
        }
    }
    let logs: Vec<Vec<Value>> = peers.iter_mut().map(|p| p.messages(15)).collect();
    for log in &logs {
        for msg in log {
            let time = msg["time"].as_str().expect("a time");
            chrono::DateTime::parse_from_rfc3339(time).expect("RFC 3339 with offset");
            let from = msg["from"].as_str().expect("an author");
            assert!(
                msg["text"].as_str().unwrap().starts_with(from),
                "{msg}: stamped with its real author"
            );
        }
        let seqs: Vec<u64> = log.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
        for name in ["ana", "bia", "cid"] {
            let texts: Vec<&str> = log
                .iter()
                .filter(|m| m["from"] == name)
                .map(|m| m["text"].as_str().unwrap())
                .collect();
            let sent: Vec<String> = (0..5).map(|r| format!("{name} {r}")).collect();
            assert_eq!(texts, sent, "each of {name}'s messages once, in order");
        }
    }
    let order = |log: &Vec<Value>| -> Vec<(u64, String)> {
        log.iter()
            .map(|m| (m["seq"].as_u64().unwrap(), m["text"].to_string()))
            .collect()
    };
    assert_eq!(order(&logs[0]), order(&logs[1]), "same order for all");
    assert_eq!(order(&logs[1]), order(&logs[2]), "same order for all");
}

#[test]
fn nc_python_and_structured_clients_understand_each_other() {
    let (_server, addr) = start_server(&[]);
    let mut ana = Peer::structured(addr, "ana");

    let port = addr.port().to_string();
    let mut nc = Running::program("nc", &["127.0.0.1", &port]);
    let mut nc_in = nc.child.stdin.take().unwrap();
    nc_in.write_all(b"/nick nina\n").unwrap();
    ana.frame_where(|f| f["type"] == "nick" && f["new"] == "nina");
    nc_in.write_all("olá do nc\n".as_bytes()).unwrap();
    let msg = ana.frame_where(|f| f["type"] == "msg");
    assert_eq!(
        (&msg["from"], &msg["text"]),
        (&json!("nina"), &json!("olá do nc"))
    );

    let script = r#"
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
f = s.makefile("rb")
s.sendall(b"/nick py\noi do python\n")
for raw in f:
    line = raw.decode("utf-8").rstrip("\n")
    print(line, flush=True)
    if "<ana> oi todos" in line:
        break
s.close()
"#;
    let py = python(script, addr);
    let msg = ana.frame_where(|f| f["type"] == "msg");
    assert_eq!(
        (&msg["from"], &msg["text"]),
        (&json!("py"), &json!("oi do python"))
    );
    nc_in.write_all("tudo bem?\n".as_bytes()).unwrap();
    ana.frame_where(|f| f["type"] == "msg" && f["text"] == "tudo bem?");
    ana.say("oi todos");

    let output = py.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let heard = String::from_utf8(output.stdout).unwrap();
    assert!(
        heard.contains("<nina> tudo bem?"),
        "python hears nc:\n{heard}"
    );
    assert!(
        heard.contains("<ana> oi todos"),
        "python hears ana:\n{heard}"
    );

    let seen = lines_until(&nc.lines, |line| line.contains("<ana> oi todos"));
    assert!(
        seen.iter().any(|l| l.contains("<py> oi do python")),
        "nc hears python: {seen:?}"
    );
    assert!(
        !seen.iter().any(|l| l.contains("<nina>")),
        "nc is not sent its own lines back: {seen:?}"
    );
}

#[test]
fn the_course_client_gets_a_reply_and_the_server_stays_up() {
    let (mut server, addr) = start_server(&[]);
    let mut ana = Peer::structured(addr, "ana");
    // The lecture's client: no newline, one recv, done.
    let script = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.settimeout(10)
s.connect((sys.argv[1], int(sys.argv[2])))
s.send("Hello Server".encode())
resp = s.recv(1024).decode()
print(f"Recebido: {resp}")
"#;
    for _ in 0..2 {
        let output = python(script, addr).wait_with_output().unwrap();
        assert!(output.status.success(), "{output:?}");
        let said = String::from_utf8(output.stdout).unwrap();
        assert!(
            said.starts_with("Recebido: * "),
            "a readable reply: {said:?}"
        );
        let msg = ana.frame_where(|f| f["type"] == "msg");
        assert_eq!(
            msg["text"], "Hello Server",
            "a last line without newline counts"
        );
        assert!(msg["from"].as_str().unwrap().starts_with("guest-"), "{msg}");
    }
    assert!(server.child.try_wait().unwrap().is_none(), "still serving");
    assert!(server.interrupt(LIMIT).expect("stops").success());
}

#[test]
fn a_thousand_lines_in_one_write_and_one_line_dribbled_arrive_intact() {
    let (_server, addr) = start_server(&["--rate-limit", "off"]);
    let mut ana = Peer::structured(addr, "ana");
    let (mut bob, _) = Peer::raw(addr);
    let batch: String = (0..1000).map(|i| format!("linha {i:04}\n")).collect();
    bob.writer.write_all(batch.as_bytes()).unwrap();
    let texts: Vec<String> = ana
        .messages(1000)
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_string())
        .collect();
    let expected: Vec<String> = (0..1000).map(|i| format!("linha {i:04}")).collect();
    assert_eq!(texts, expected);

    bob.writer.set_nodelay(true).unwrap();
    for byte in "gota a gota, ção\r\n".as_bytes() {
        bob.writer.write_all(&[*byte]).unwrap();
        bob.writer.flush().unwrap();
    }
    assert_eq!(ana.messages(1)[0]["text"], "gota a gota, ção");
}

#[test]
fn echo_mode_sends_each_line_back() {
    let (_server, addr) = start_server(&["--mode", "echo"]);
    let (mut raw, greeting) = Peer::raw(addr);
    assert!(greeting.contains("echo"), "{greeting}");
    raw.send("ping");
    assert_eq!(raw.line(), "ping");
    raw.send("/who");
    assert_eq!(raw.line(), "/who", "echo mode echoes every line as is");

    let mut ana = Peer::structured(addr, "ana");
    ana.say("pong");
    let msg = ana.frame_where(|f| f["type"] == "msg");
    assert_eq!(
        (&msg["from"], &msg["text"]),
        (&json!("ana"), &json!("pong"))
    );
}

#[test]
fn broker_mode_relays_raw_lines_bare_and_verbatim_and_structured_clients_get_frames() {
    let (_server, addr) = start_server(&["--mode", "broker"]);
    let mut ana = Peer::connect(addr);
    let mut bob = Peer::connect(addr);
    // One accept thread, one event queue: eva's welcome means bob's connection is known too.
    let mut eva = Peer::structured(addr, "eva");
    // The broker says nothing of its own to raw clients: their first line is already data. Bob,
    // silent, gets what was said since he connected once his silence shows he is a listener.
    let lines = ["dados 1", "", "/who", "exit", "ção \t fim"];
    for line in lines {
        ana.send(line);
    }
    for line in lines {
        assert_eq!(bob.line(), line, "relayed as sent, nothing else before it");
    }
    for line in lines {
        let msg = eva.frame_where(|f| f["type"] == "msg");
        assert_eq!(
            (
                &msg["text"],
                msg["from"].as_str().unwrap().starts_with("guest-")
            ),
            (&json!(line), true)
        );
    }
    eva.say("de eva");
    assert_eq!(ana.line(), "de eva");
    assert_eq!(bob.line(), "de eva");
    let echo = eva.frame_where(|f| f["type"] == "msg");
    assert_eq!(
        (&echo["from"], &echo["text"]),
        (&json!("eva"), &json!("de eva"))
    );
    bob.send("de bob");
    assert_eq!(
        ana.line(),
        "de bob",
        "ana heard no join, leave or notice in between"
    );
}

#[test]
fn a_frame_claiming_another_author_is_stamped_with_the_real_one() {
    let (_server, addr) = start_server(&[]);
    let mut ana = Peer::structured(addr, "ana");
    let mut bia = Peer::structured(addr, "bia");
    bia.send_json(json!({"type": "msg", "from": "ana", "text": "sou a ana", "seq": 1}));
    let msg = ana.frame_where(|f| f["type"] == "msg");
    assert_eq!(msg["from"], "bia");
    assert_eq!(msg["text"], "sou a ana");
}

#[test]
fn nick_clash_gets_an_error_whatever_the_case() {
    let (_server, addr) = start_server(&[]);
    let _ana = Peer::structured(addr, "ana");
    let mut bia = Peer::structured(addr, "bia");
    bia.send_json(json!({"type": "nick", "name": "ANA"}));
    let error = bia.frame_where(|f| f["type"] == "error");
    assert_eq!(error["code"], "name_taken", "{error}");

    let (mut raw, _) = Peer::raw(addr);
    raw.send("/nick Ana");
    let line = raw.line_where(|l| l.starts_with("! "));
    assert!(line.contains("taken"), "{line}");
    raw.send("/who");
    let who = raw.line_where(|l| l.contains(" here: "));
    assert!(
        who.contains("ana (127.0.0.1:") && who.contains("guest-"),
        "{who}"
    );
}

#[test]
fn a_port_probe_is_not_announced() {
    let (server, addr) = start_server(&[]);
    let mut ana = Peer::structured(addr, "ana");
    let status = Command::new("nc")
        .args(["-z", &addr.ip().to_string(), &addr.port().to_string()])
        .status()
        .expect("nc runs");
    assert!(status.success());
    console_line(&server, |l| l.starts_with("probe "));
    ana.say("depois");
    let frame = ana.frame();
    assert_eq!(
        (&frame["type"], &frame["text"]),
        (&json!("msg"), &json!("depois")),
        "nothing announced before: {frame}"
    );
}

#[test]
fn a_probe_that_resets_is_closed_without_a_word() {
    let (server, addr) = start_server(&[]);
    // Reset at once (perhaps before the server has set it up), and after its greeting.
    for read_greeting in [false, true] {
        let mut probe = Peer::connect(addr);
        if read_greeting {
            probe.line();
        }
        socket2::SockRef::from(&probe.writer)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(probe);
        let line = console_line(&server, |l| l.starts_with("probe "));
        assert!(line.contains("closed without a word"), "{line}");
    }
}

#[test]
fn single_mode_queues_the_second_client_and_serves_it_after_exit() {
    let (mut server, addr) = start_server_with_console(&["--mode", "single"]);
    let (mut first, greeting) = Peer::raw(addr);
    assert!(greeting.contains("talking with server"), "{greeting}");
    let (mut second, greeting) = Peer::raw(addr);
    assert!(greeting.contains("queued at position 1"), "{greeting}");
    second.send("cheguei cedo");
    second.line_where(|l| l.contains("kept"));

    first.send("oi servidor");
    console_line(&server, |l| l.contains("oi servidor"));
    type_at_console(&mut server, "oi cliente");
    let line = first.line_where(|l| l.contains("oi cliente"));
    assert!(line.contains("<server> oi cliente"), "{line}");
    first.send("exit");
    assert!(first.closed(), "exit ends the first session");

    second.line_where(|l| l.contains("your turn"));
    console_line(&server, |l| l.contains("cheguei cedo"));
    type_at_console(&mut server, "agora tu");
    second.line_where(|l| l.contains("<server> agora tu"));
    type_at_console(&mut server, "exit");
    assert!(second.closed(), "exit at the console ends the session");
}

#[test]
fn sync_mode_refuses_a_second_send_before_the_answer() {
    let (mut server, addr) = start_server_with_console(&["--mode", "single", "--sync"]);
    let (mut client, _) = Peer::raw(addr);
    client.send("pergunta 1");
    console_line(&server, |l| l.contains("pergunta 1"));
    client.send("pergunta 2");
    let refusal = client.line_where(|l| l.starts_with("! "));
    assert!(refusal.contains("wait for the answer"), "{refusal}");

    type_at_console(&mut server, "resposta 1");
    client.line_where(|l| l.contains("<server> resposta 1"));
    type_at_console(&mut server, "fora de vez");
    console_line(&server, |l| l.contains("wait for the client"));
    client.send("pergunta 3");
    let printed = lines_until(&server.lines, |l| l.contains("pergunta 3"));
    assert!(
        !printed.iter().any(|l| l.contains("pergunta 2")),
        "{printed:?}"
    );
    type_at_console(&mut server, "resposta 3");
    let answer = client.line_where(|l| l.contains("<server>"));
    assert!(
        answer.contains("resposta 3"),
        "the refused line never went: {answer}"
    );
}

#[test]
fn console_speaks_shows_connections_and_status() {
    let (mut server, addr) = start_server_with_console(&["--name", "sala"]);
    let mut ana = Peer::structured(addr, "ana");
    let local = ana.writer.local_addr().unwrap();
    let connected = console_line(&server, |l| l.starts_with("connected "));
    assert_eq!(
        connected,
        format!("connected {local} → {addr} (ana, structured)")
    );

    type_at_console(&mut server, "olá da consola");
    let msg = ana.frame_where(|f| f["type"] == "msg");
    assert_eq!(
        (&msg["from"], &msg["text"]),
        (&json!("sala"), &json!("olá da consola"))
    );

    type_at_console(&mut server, "/status");
    console_line(&server, |l| {
        l.starts_with("listen") && l.contains(&addr.to_string())
    });
    let row = console_line(&server, |l| l.contains(&local.to_string()));
    assert!(row.contains("ana") && row.contains("structured"), "{row}");

    drop(ana);
    let gone = console_line(&server, |l| l.starts_with("disconnected "));
    assert!(
        gone.starts_with(&format!("disconnected {local} → {addr} (ana")),
        "{gone}"
    );
}

#[test]
fn ctrl_c_says_bye_and_exits_0() {
    let (mut server, addr) = start_server(&[]);
    let mut ana = Peer::structured(addr, "ana");
    assert!(server.interrupt(LIMIT).expect("stops").success());
    let bye = ana.frame_where(|f| f["type"] == "bye");
    assert!(bye["reason"].as_str().unwrap().contains("shutting down"));
    assert_eq!(bye["code"], "shutdown", "{bye}");
}

#[test]
fn a_port_in_use_is_one_clear_line_and_exit_1() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let output = soquete()
        .args(["serve", "--port", &port])
        .timeout(LIMIT)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{stderr}"
    );
}

#[test]
fn an_address_not_on_this_machine_names_the_port_asked_for() {
    // 192.0.2.0/24 is TEST-NET-1: never an address of this machine.
    let output = soquete()
        .args(["serve", "--bind", "192.0.2.1"])
        .timeout(LIMIT)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.starts_with("soquete: cannot listen on 192.0.2.1:65432: "),
        "{stderr}"
    );
}

#[test]
fn sync_mode_always_accepts_exit_and_quit_even_out_of_turn() {
    let (_server, addr) = start_server_with_console(&["--mode", "single", "--sync"]);
    let mut ana = Peer::structured(addr, "ana");
    ana.say("x1");
    ana.frame_where(|f| f["type"] == "msg" && f["text"] == "x1");
    ana.say("x2");
    ana.say("exit");
    let mut types = Vec::new();
    while types.last() != Some(&json!("bye")) {
        assert!(types.len() < 10, "{types:?}");
        types.push(ana.frame()["type"].clone());
    }
    assert_eq!(types, ["error", "bye"], "only x2 is refused");
    assert!(ana.closed());

    let (mut raw, _) = Peer::raw(addr);
    raw.send("y1");
    raw.line_where(|l| l.starts_with("* welcome"));
    raw.send("/quit");
    let next = raw.line();
    assert!(next.starts_with("* bye"), "{next}");
    assert!(raw.closed());
}

/// The `seq` of every message frame in `frames`.
fn seqs(frames: &[Value]) -> Vec<u64> {
    frames.iter().map(|m| m["seq"].as_u64().unwrap()).collect()
}

/// Reads frames until `wanted` holds, keeping every chat message met on the way.
fn frames_until(peer: &mut Peer, heard: &mut Vec<Value>, wanted: impl Fn(&Value) -> bool) -> Value {
    peer.frame_where(|frame| {
        if frame["type"] == "msg" {
            heard.push(frame.clone());
        }
        wanted(frame)
    })
}

#[test]
fn a_killed_server_restarts_from_its_log_and_a_client_resumes_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("room.log");
    let log = log.to_str().unwrap();
    let (mut server, addr) = start_server(&["--log", log]);
    let mut ana = Peer::structured(addr, "ana");
    let mut bia = Peer::structured(addr, "bia");
    ana.frame_where(|f| f["type"] == "join" && f["name"] == "bia");
    for i in 1..=3 {
        ana.say(&format!("antes {i}"));
    }
    let seen = bia.messages(3);
    assert_eq!(seqs(&seen), [1, 2, 3]);
    // bia's network goes; ana talks on, and her echoes say each line was stamped (and logged).
    drop(bia);
    let mut heard = Vec::new();
    frames_until(&mut ana, &mut heard, |f| {
        f["type"] == "leave" && f["name"] == "bia"
    });
    for i in 4..=6 {
        ana.say(&format!("enquanto {i}"));
    }
    heard.extend(ana.messages(6 - heard.len()));
    assert_eq!(seqs(&heard), [1, 2, 3, 4, 5, 6]);

    // kill -9: no bye, no flush, no clean anything. Then the same --log and the same port
    // (std's listener sets SO_REUSEADDR, so the old connections do not hold the port).
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let (_server, again) = start_server_at(addr.port(), &["--log", log]);
    assert_eq!(again, addr);

    let (mut ana, welcome) = Peer::resume(addr, "ana", 6);
    assert_eq!(
        (welcome["name"].as_str(), welcome["last_seq"].as_u64()),
        (Some("ana"), Some(6))
    );
    assert!(welcome.get("missed").is_none(), "{welcome}");
    ana.say("depois");
    assert_eq!(
        ana.messages(1)[0]["seq"],
        7,
        "numbering goes on from the log"
    );

    let (mut bia, welcome) = Peer::resume(addr, "bia", 3);
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
    text.push_str("isto não é json\n");
    text.push_str(r#"{"type":"msg","seq":6,"time":"2026-11-2"#);
    std::fs::write(&path, text).unwrap();

    let mut server = Running::start(&[
        "serve",
        "--port",
        "0",
        "--history",
        "3",
        "--log",
        path.to_str().unwrap(),
    ]);
    let errors = server.stderr_lines();
    let listening = server
        .wait_for(LIMIT, |l| l.starts_with("listening on "))
        .expect("it starts");
    let addr: SocketAddr = listening["listening on ".len()..].parse().unwrap();
    let warning = crate::support::wait_line(&errors, LIMIT, |l| l.starts_with("soquete: "))
        .expect("one warning");
    assert!(
        warning.contains("1 unreadable line") && warning.contains("cut short"),
        "{warning}"
    );

    let (mut bia, welcome) = Peer::resume(addr, "bia", 1);
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
    let mut old = Peer::structured(addr, "ana");
    obs.frame_where(|f| f["type"] == "join" && f["name"] == "ana");

    // A second ana that is not reconnecting does not get the name.
    let mut other = Peer::connect(addr);
    other.send_json(json!({"type": "hello", "version": 1, "name": "ana"}));
    assert_eq!(
        other.frame_where(|f| f["type"] == "error")["code"],
        "name_taken"
    );

    let (_new, welcome) = Peer::resume(addr, "ana", 0);
    assert_eq!(welcome["name"], "ana", "{welcome}");
    let bye = old.frame_where(|f| f["type"] == "bye");
    assert_eq!(bye["code"], "replaced", "{bye}");
    assert!(
        bye["reason"].as_str().unwrap().contains("reconnected"),
        "{bye}"
    );
    assert!(old.closed());
    let leave = obs.frame_where(|f| f["type"] == "leave");
    assert_eq!(
        (&leave["name"], &leave["reason"]),
        (&json!("ana"), &json!("reconnected"))
    );
    obs.frame_where(|f| f["type"] == "join" && f["name"] == "ana");
}

#[test]
fn a_stalled_reader_among_twenty_talkers_is_dropped_and_the_others_get_everything() {
    const TALKERS: usize = 20;
    const EACH: usize = 50;
    let (server, addr) = start_server(&["--rate-limit", "off"]);
    let mut first = Peer::structured(addr, "t0");
    // Connected, says hello, never reads a byte; a small receive buffer fills sooner.
    let stalled = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    stalled.set_recv_buffer_size(4096).unwrap();
    stalled.connect_timeout(&addr.into(), LIMIT).unwrap();
    let mut stalled = TcpStream::from(stalled);
    stalled
        .write_all(b"{\"type\":\"hello\",\"version\":1,\"name\":\"parado\"}\n")
        .unwrap();
    first.frame_where(|f| f["type"] == "join" && f["name"] == "parado");
    let mut peers = vec![first];
    peers.extend((1..TALKERS).map(|i| Peer::structured(addr, &format!("t{i}"))));

    let filler = "x".repeat(7900);
    let talkers: Vec<_> = peers
        .into_iter()
        .enumerate()
        .map(|(i, peer)| {
            let filler = filler.clone();
            std::thread::spawn(move || {
                let Peer {
                    mut writer,
                    mut reader,
                } = peer;
                let sender = std::thread::spawn(move || {
                    for n in 0..EACH {
                        let frame = json!({"type": "msg", "text": format!("t{i} {n} {filler}")});
                        writer.write_all(format!("{frame}\n").as_bytes()).unwrap();
                    }
                    writer
                });
                // Every message of everyone, the stalled one's leave somewhere among them.
                let (mut seqs, mut leave) = (Vec::new(), None);
                let mut line = String::new();
                while seqs.len() < TALKERS * EACH {
                    line.clear();
                    assert!(reader.read_line(&mut line).expect("a line in time") > 0);
                    if let Some(rest) = line.strip_prefix(r#"{"type":"msg","seq":"#) {
                        let seq: u64 = rest.split(',').next().unwrap().parse().unwrap();
                        seqs.push(seq);
                    } else if line.contains(r#""type":"leave""#) {
                        leave = Some(serde_json::from_str::<Value>(&line).unwrap());
                    }
                }
                let _writer = sender.join().unwrap();
                (seqs, leave)
            })
        })
        .collect();
    let mut leaves = Vec::new();
    for talker in talkers {
        let (seqs, leave) = talker.join().unwrap();
        assert_eq!(seqs, (1..=(TALKERS * EACH) as u64).collect::<Vec<_>>());
        leaves.extend(leave);
    }
    assert!(!leaves.is_empty(), "the talkers saw the stalled one leave");
    for leave in &leaves {
        assert_eq!(leave["name"], "parado", "{leave}");
        assert!(
            leave["reason"].as_str().unwrap().starts_with("too slow"),
            "{leave}"
        );
    }
    console_line(&server, |l| {
        l.starts_with("disconnected ") && l.contains("(parado: too slow")
    });
    stalled.set_read_timeout(Some(LIMIT)).unwrap();
    let mut rest = Vec::new();
    let _ = std::io::Read::read_to_end(&mut stalled, &mut rest);
}

#[test]
fn a_flooder_is_slowed_down_with_one_notice_and_the_others_still_talk() {
    let (_server, addr) = start_server(&["--rate-limit", "50/s,burst=10"]);
    let mut ana = Peer::structured(addr, "ana");
    let mut bia = Peer::structured(addr, "bia");
    let (mut flood, _) = Peer::raw(addr);
    flood.send("/nick enxurrada");
    ana.frame_where(|f| f["type"] == "nick" && f["new"] == "enxurrada");
    bia.frame_where(|f| f["type"] == "nick" && f["new"] == "enxurrada");

    let started = std::time::Instant::now();
    let burst: String = (0..100).map(|i| format!("enxurrada {i}\n")).collect();
    flood.writer.write_all(burst.as_bytes()).unwrap();
    let (mut ana_heard, mut bia_heard) = (Vec::new(), Vec::new());
    for i in 0..10 {
        let sent = std::time::Instant::now();
        let text = format!("ana {i}");
        ana.say(&text);
        frames_until(&mut bia, &mut bia_heard, |f| f["text"] == json!(text));
        let text = format!("bia {i}");
        bia.say(&text);
        frames_until(&mut ana, &mut ana_heard, |f| f["text"] == json!(text));
        assert!(
            sent.elapsed() < Duration::from_secs(1),
            "a round trip took {:?} during the flood",
            sent.elapsed()
        );
    }
    frames_until(&mut ana, &mut ana_heard, |f| f["text"] == "enxurrada 99");
    let flooded: Vec<&str> = ana_heard
        .iter()
        .filter(|m| m["from"] == "enxurrada")
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = (0..100).map(|i| format!("enxurrada {i}")).collect();
    assert_eq!(flooded, expected, "nothing dropped, nothing reordered");
    // 10 at once, then 50 a second: the other 90 lines take at least 1.8 s.
    assert!(
        started.elapsed() >= Duration::from_millis(1700),
        "{:?}",
        started.elapsed()
    );

    flood.send("/who");
    let seen: Vec<String> = (0..MAX_LINES)
        .map(|_| flood.line())
        .take_while(|l| !l.contains(" here: "))
        .collect();
    let notices: Vec<&String> = seen.iter().filter(|l| l.contains("faster than")).collect();
    assert_eq!(notices.len(), 1, "{seen:?}");
    assert!(notices[0].contains("none is lost"), "{}", notices[0]);
}

#[test]
fn bad_input_reaches_no_one_broken_and_the_server_lives_on() {
    let (mut server, addr) = start_server(&[]);
    let mut ana = Peer::structured(addr, "ana");
    let mut eve = Peer::structured(addr, "eve");
    let (mut raw, _) = Peer::raw(addr);
    raw.send("/nick mallory");
    ana.frame_where(|f| f["type"] == "nick" && f["new"] == "mallory");
    let mut heard = Vec::new();
    let next_msg =
        |ana: &mut Peer, heard: &mut Vec<Value>| frames_until(ana, heard, |f| f["type"] == "msg");

    // Oversize: dropped, its sender told, the next line fine.
    raw.send(&"y".repeat(10_000));
    raw.send("curta");
    assert!(
        raw.line_where(|l| l.starts_with("! "))
            .contains("longer than")
    );
    assert_eq!(next_msg(&mut ana, &mut heard)["text"], "curta");
    // Invalid UTF-8: replaced.
    raw.writer.write_all(b"ol\xe1 \xff\n").unwrap();
    assert_eq!(
        next_msg(&mut ana, &mut heard)["text"],
        "ol\u{fffd} \u{fffd}"
    );
    // Invalid JSON, an unknown frame, JSON nested too deep: an error to eve alone.
    for line in [
        "{nope".to_string(),
        r#"{"type":"dance"}"#.into(),
        format!(
            r#"{{"type":"msg","text":"fundo","x":{}{}}}"#,
            "[".repeat(300),
            "]".repeat(300)
        ),
    ] {
        eve.send(&line);
        assert_eq!(
            eve.frame_where(|f| f["type"] == "error")["code"],
            "bad_frame",
            "{line}"
        );
    }
    let nested = format!(
        r#"{{"type":"msg","text":"fundo","x":{}{}}}"#,
        "[".repeat(31),
        "]".repeat(31)
    );
    eve.send(&nested);
    assert_eq!(
        next_msg(&mut ana, &mut heard)["text"],
        "fundo",
        "unknown fields are ignored, up to 32 levels deep"
    );
    // Escape sequences and control characters: nobody's terminal runs them.
    eve.say("\u{1b}[2J\u{1b}]0;dono\u{7}olá \u{1b}[31mvermelho\u{1b}[0m\u{7}!");
    assert_eq!(
        next_msg(&mut ana, &mut heard)["text"],
        "olá vermelho\u{fffd}!"
    );
    raw.writer
        .write_all(b"\x1b[1mnegrito\x1b[0m\x08\n")
        .unwrap();
    assert_eq!(next_msg(&mut ana, &mut heard)["text"], "negrito\u{fffd}");
    eve.send_json(json!({"type": "nick", "name": "\u{1b}[31mred"}));
    assert_eq!(
        eve.frame_where(|f| f["type"] == "error")["code"],
        "bad_name"
    );
    // Empty lines are nothing.
    raw.send("");
    raw.send("   ");
    // Connect and close without a word, and a reset in the middle of a line.
    drop(TcpStream::connect(addr).unwrap());
    console_line(&server, |l| l.starts_with("probe "));
    let (mut rst, _) = Peer::raw(addr);
    rst.send("/nick rst");
    ana.frame_where(|f| f["type"] == "nick" && f["new"] == "rst");
    rst.writer.write_all(b"meia linha sem fim").unwrap();
    socket2::SockRef::from(&rst.writer)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(rst);
    let leave = frames_until(&mut ana, &mut heard, |f| f["type"] == "leave");
    assert_eq!(leave["name"], "rst", "{leave}");

    eve.say("fim");
    let last = next_msg(&mut ana, &mut heard);
    assert_eq!(
        (&last["from"], &last["text"]),
        (&json!("eve"), &json!("fim"))
    );
    let texts: Vec<&str> = heard.iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(texts.len(), 6, "nothing else was delivered: {texts:?}");
    let console = lines_until(&server.lines, |l| l.contains("<eve> fim"));
    assert!(
        console
            .iter()
            .all(|l| !l.contains('\u{1b}') && !l.contains('\u{7}')),
        "{console:?}"
    );
    assert!(server.child.try_wait().unwrap().is_none(), "still serving");
}

#[test]
fn max_clients_tells_the_next_one_the_server_is_full() {
    let (server, addr) = start_server(&["--max-clients", "2"]);
    let mut ana = Peer::structured(addr, "ana");
    let (mut bob, _) = Peer::raw(addr);
    bob.send("/nick bob");
    ana.frame_where(|f| f["type"] == "nick" && f["new"] == "bob");

    let mut third = Peer::connect(addr);
    third.send_json(json!({"type": "hello", "version": 1, "name": "cid"}));
    let line = third.line();
    assert!(line.starts_with("* server full"), "{line}");
    assert!(third.closed());
    console_line(&server, |l| {
        l.starts_with("refused ") && l.contains("server full")
    });

    drop(bob);
    ana.frame_where(|f| f["type"] == "leave" && f["name"] == "bob");
    let _cid = Peer::structured(addr, "cid");
}

#[test]
fn an_idle_client_is_closed_and_only_that_one() {
    let (_server, addr) = start_server(&["--idle-timeout", "1"]);
    let (mut quiet, _) = Peer::raw(addr);
    let mut ana = Peer::structured(addr, "ana");
    let (mut heard, mut leave) = (Vec::new(), None);
    // ana keeps busy (a /who every 250 ms) while the quiet one says nothing.
    for _ in 0..40 {
        ana.send_json(json!({"type": "who"}));
        let frame = frames_until(&mut ana, &mut heard, |f| {
            f["type"] == "who" || f["type"] == "leave"
        });
        if frame["type"] == "leave" {
            leave = Some(frame);
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let leave = leave.expect("the quiet one is closed");
    assert!(
        leave["reason"]
            .as_str()
            .unwrap()
            .starts_with("idle for 1 s"),
        "{leave}"
    );
    let bye = quiet.line_where(|l| l.starts_with("* bye"));
    assert!(bye.contains("idle"), "{bye}");
    assert!(quiet.closed());
    ana.say("ainda aqui");
    ana.frame_where(|f| f["type"] == "msg" && f["text"] == "ainda aqui");
}

#[test]
fn a_quiet_structured_client_hears_a_heartbeat_and_a_raw_one_does_not() {
    let (_server, addr) = start_server(&[]);
    let mut ana = Peer::structured(addr, "ana");
    let (mut raw, _) = Peer::raw(addr);
    raw.send("/nick quieto");
    ana.frame_where(|f| f["type"] == "nick");
    let quiet_since = std::time::Instant::now();
    let ping = ana.frame();
    assert_eq!(ping["type"], "ping", "{ping}");
    let waited = quiet_since.elapsed();
    assert!(
        waited >= Duration::from_secs(4) && waited < Duration::from_secs(8),
        "{waited:?}"
    );
    raw.send("/who");
    let line = raw.line_where(|l| l.contains(" here: ") || l.contains("ping"));
    assert!(
        line.contains(" here: "),
        "no ping line for raw clients: {line}"
    );
}

#[test]
fn sigterm_says_bye_keeps_the_log_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("room.log");
    let (mut server, addr) = start_server(&["--log", log.to_str().unwrap()]);
    let mut ana = Peer::structured(addr, "ana");
    ana.say("guardada");
    ana.messages(1);
    assert!(server.terminate(LIMIT).expect("stops").success());
    let bye = ana.frame_where(|f| f["type"] == "bye");
    assert!(
        bye["reason"].as_str().unwrap().contains("shutting down"),
        "{bye}"
    );
    let logged: Value =
        serde_json::from_str(std::fs::read_to_string(&log).unwrap().trim()).unwrap();
    assert_eq!(
        (&logged["seq"], &logged["text"]),
        (&json!(1), &json!("guardada"))
    );
}

/// Threads and open files of a process, from /proc.
#[cfg(target_os = "linux")]
fn threads_and_fds(pid: u32) -> (usize, usize) {
    let count = |what: &str| {
        std::fs::read_dir(format!("/proc/{pid}/{what}"))
            .unwrap()
            .count()
    };
    (count("task"), count("fd"))
}

#[cfg(target_os = "linux")]
#[test]
fn ten_thousand_connections_leave_threads_and_files_where_they_were() {
    const WORKERS: usize = 4;
    const CYCLES: usize = 2500;
    let (server, addr) = start_server(&[]);
    let pid = server.child.id();
    let settled = |limit: Duration, wanted: &dyn Fn((usize, usize)) -> bool| {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let now = threads_and_fds(pid);
            if wanted(now) || std::time::Instant::now() > deadline {
                return now;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let (mut warm, _) = Peer::raw(addr);
    warm.send("aquecer");
    drop(warm);
    console_line(&server, |l| l.starts_with("disconnected "));
    let mut before = threads_and_fds(pid);
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(20));
        let now = threads_and_fds(pid);
        if now == before {
            break;
        }
        before = now;
    }

    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            std::thread::spawn(move || {
                for n in 0..CYCLES {
                    let (peer, greeting) = Peer::raw(addr);
                    assert!(greeting.starts_with("* soquete chat server"), "{greeting}");
                    if (w + n) % 2 == 0 {
                        // A reset: no TIME_WAIT left on this side, and the server's error path.
                        socket2::SockRef::from(&peer.writer)
                            .set_linger(Some(Duration::ZERO))
                            .unwrap();
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    let after = settled(Duration::from_secs(10), &|now| now <= before);
    assert_eq!(
        after,
        before,
        "(threads, files) before and after {} connections",
        WORKERS * CYCLES
    );
}

/// Waits (bounded) until the server's (threads, files) stop changing, and returns them.
#[cfg(target_os = "linux")]
fn settled_counts(pid: u32) -> (usize, usize) {
    let mut before = threads_and_fds(pid);
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(50));
        let now = threads_and_fds(pid);
        if now == before {
            break;
        }
        before = now;
    }
    before
}

#[cfg(target_os = "linux")]
#[test]
fn a_client_dropped_as_too_slow_sees_the_end_and_its_threads_and_file_go() {
    let (server, addr) = start_server(&["--rate-limit", "off"]);
    let pid = server.child.id();
    let (mut talker, _) = Peer::raw(addr);
    talker.send("/nick falador");
    talker.line_where(|l| l.contains("now known as falador"));
    let before = settled_counts(pid);

    let stalled = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    stalled.set_recv_buffer_size(4096).unwrap();
    stalled.connect_timeout(&addr.into(), LIMIT).unwrap();
    let mut stalled = TcpStream::from(stalled);
    stalled.write_all(b"/nick parado\n").unwrap();
    talker.line_where(|l| l.contains("now known as parado"));

    // The talker reads everything on a thread of its own while it talks.
    let Peer {
        mut writer,
        mut reader,
    } = talker;
    let (seen, heard) = mpsc::channel();
    let listener = std::thread::spawn(move || {
        let mut line = String::new();
        while matches!(reader.read_line(&mut line), Ok(n) if n > 0) {
            if line.contains("parado left") && seen.send(line.clone()).is_err() {
                break;
            }
            line.clear();
        }
    });
    let filler = "x".repeat(4000);
    let deadline = std::time::Instant::now() + LIMIT;
    let left = loop {
        writer.write_all(format!("{filler}\n").as_bytes()).unwrap();
        if let Ok(line) = heard.recv_timeout(Duration::from_millis(5)) {
            break line;
        }
        assert!(std::time::Instant::now() < deadline, "never dropped");
    };
    assert!(left.contains("(too slow"), "{left}");

    // What was already on its way still arrives, then the end: never a socket left open.
    stalled.set_read_timeout(Some(LIMIT)).unwrap();
    let started = std::time::Instant::now();
    let mut sink = vec![0u8; 64 * 1024];
    loop {
        match std::io::Read::read(&mut stalled, &mut sink) {
            Ok(0) => break,
            Ok(_) => assert!(started.elapsed() < LIMIT, "still open"),
            Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(err) => panic!("no end of stream: {err}"),
        }
    }
    let deadline = std::time::Instant::now() + LIMIT;
    let mut after = threads_and_fds(pid);
    while after != before && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        after = threads_and_fds(pid);
    }
    assert_eq!(after, before, "(threads, files) before and after the drop");
    drop(writer);
    listener.join().unwrap();
}

#[test]
fn twenty_clients_sending_at_full_speed_lose_nothing() {
    const CLIENTS: usize = 20;
    const EACH: usize = 2000;
    let (_server, addr) = start_server(&["--rate-limit", "off"]);
    let peers: Vec<(Peer, String)> = (0..CLIENTS)
        .map(|i| {
            let (mut peer, _) = Peer::raw(addr);
            peer.send(&format!("/nick c{i}"));
            peer.line_where(|l| l.contains(&format!("now known as c{i}")));
            (peer, format!("c{i}"))
        })
        .collect();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(CLIENTS));
    let clients: Vec<_> = peers
        .into_iter()
        .map(|(peer, name)| {
            let barrier = std::sync::Arc::clone(&barrier);
            std::thread::spawn(move || {
                let Peer {
                    mut writer,
                    mut reader,
                } = peer;
                barrier.wait();
                let sender = std::thread::spawn(move || {
                    let lines: String = (0..EACH)
                        .map(|n| {
                            format!("{name} {n} ppppppppppppppppppppppppppppppppppppppppppppp\n")
                        })
                        .collect();
                    writer.write_all(lines.as_bytes()).unwrap();
                    writer
                });
                // Every line of every other client, each sender's in order; never a drop.
                let mut next = [0usize; CLIENTS];
                let (mut got, mut line) = (0, String::new());
                let deadline = std::time::Instant::now() + Duration::from_secs(120);
                while got < (CLIENTS - 1) * EACH {
                    line.clear();
                    assert!(
                        reader.read_line(&mut line).expect("a line in time") > 0,
                        "closed"
                    );
                    assert!(!line.contains("too slow"), "{line}");
                    assert!(std::time::Instant::now() < deadline, "too long");
                    let Some((_, text)) = line.split_once("> c") else {
                        continue;
                    };
                    let mut words = text.split(' ');
                    let from: usize = words.next().unwrap().parse().unwrap();
                    let n: usize = words.next().unwrap().parse().unwrap();
                    assert_eq!(n, next[from], "in order, none missing, from c{from}");
                    next[from] += 1;
                    got += 1;
                }
                sender.join().unwrap()
            })
        })
        .collect();
    let writers: Vec<TcpStream> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    drop(writers);
}
