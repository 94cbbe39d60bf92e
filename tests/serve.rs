//! `soquete serve` with real clients on 127.0.0.1: soquete's JSON protocol spoken over a plain
//! `TcpStream`, raw lines, and the real `nc` and `python3`.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{Running, soquete, start_server, start_server_with_console};

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

    /// The next line for which `wanted` holds.
    fn line_where(&mut self, wanted: impl Fn(&str) -> bool) -> String {
        for _ in 0..MAX_LINES {
            let line = self.line();
            if wanted(&line) {
                return line;
            }
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

    fn frame_where(&mut self, wanted: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..MAX_LINES {
            let frame = self.frame();
            if wanted(&frame) {
                return frame;
            }
        }
        panic!("no such frame in {MAX_LINES}");
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
    let (_server, addr) = start_server(&[]);
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
        stderr.contains(&format!("listening on 127.0.0.1:{port}")),
        "{stderr}"
    );
}

#[test]
fn a_client_that_stops_reading_is_disconnected_and_holds_up_no_one() {
    let (server, addr) = start_server(&[]);
    let mut ana = Peer::structured(addr, "ana");
    let (mut sleeper, _) = Peer::raw(addr);
    sleeper.send("/nick dorminhoco");
    ana.frame_where(|f| f["type"] == "nick" && f["new"] == "dorminhoco");
    let (mut talker, _) = Peer::raw(addr);
    talker.send("/nick tagarela");
    ana.frame_where(|f| f["type"] == "nick" && f["new"] == "tagarela");
    // Far more than the sleeper's socket buffers and outbox hold; ana keeps reading.
    let line = format!("{}\n", "x".repeat(8000));
    let writer = std::thread::spawn(move || {
        for _ in 0..2000 {
            if talker.writer.write_all(line.as_bytes()).is_err() {
                break;
            }
        }
        talker
    });
    let leave = ana.frame_where(|f| f["type"] == "leave");
    assert!(
        leave["name"] == "dorminhoco" && leave["reason"].as_str().unwrap().contains("too slow"),
        "{leave}"
    );
    console_line(&server, |l| {
        l.starts_with("disconnected ") && l.contains("too slow")
    });
    let _talker = writer.join().unwrap();
    let mut bia = Peer::structured(addr, "bia");
    bia.say("ainda aqui");
    ana.frame_where(|f| f["type"] == "msg" && f["text"] == "ainda aqui");
}
