//! `soquete serve` with real clients on 127.0.0.1: soquete's JSON protocol spoken over a plain
//! `TcpStream`, raw lines, and the real `nc` and `python3`; its modes (group, echo, broker,
//! single, sync), its console, its signals and its listening socket.

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::course::COURSE_CLIENT;
use crate::support::peer::Peer;
use crate::support::process::{Running, lines_until, soquete};
use crate::support::serve::{
    Serve, console_line, start_server, start_server_with_console, type_at_console,
};
use crate::support::{LIMIT, require, tool};

/// Runs `script` in python3 with the server's IP and port as its arguments.
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
    if !require(tool("nc") && tool("python3"), "nc and python3") {
        return;
    }
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
    if !require(tool("python3"), "python3") {
        return;
    }
    let (mut server, addr) = start_server(&[]);
    let mut ana = Peer::structured(addr, "ana");
    for _ in 0..2 {
        let output = python(COURSE_CLIENT, addr).wait_with_output().unwrap();
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
    if !require(tool("nc"), "nc (netcat-openbsd)") {
        return;
    }
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
        probe.reset();
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

#[test]
fn a_quiet_structured_client_hears_a_heartbeat_and_a_raw_one_does_not() {
    // The server pings a structured client after this much silence (5 s unless told).
    let interval = Duration::from_millis(300);
    let (_server, addr) = Serve::new(&[])
        .env(
            "SOQUETE_HEARTBEAT_INTERVAL_MS",
            &interval.as_millis().to_string(),
        )
        .start();
    let mut ana = Peer::structured(addr, "ana");
    let (mut raw, _) = Peer::raw(addr);
    // The nick is the last thing ana is sent before the silence: it goes out after this.
    let quiet_since = Instant::now();
    raw.send("/nick quieto");
    ana.frame_where(|f| f["type"] == "nick");
    let ping = ana.frame();
    assert_eq!(ping["type"], "ping", "{ping}");
    let waited = quiet_since.elapsed();
    assert!(
        waited >= interval && waited < interval * 5,
        "a ping after {waited:?} of silence, not after about {interval:?}"
    );
    // A second ping: the raw client, told of the nick at the same time as ana, has been as
    // quiet for a whole interval more. Any ping of its own would come before its /who answer.
    let ping = ana.frame();
    assert_eq!(ping["type"], "ping", "{ping}");
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
    let text = std::fs::read_to_string(&log).unwrap();
    let logged: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(
        logged.len(),
        3,
        "the room's epoch, ana's session, then her message: {text}"
    );
    assert_eq!(logged[0]["type"], "epoch", "{text}");
    assert_eq!(
        (&logged[1]["type"], &logged[1]["name"]),
        (&json!("session"), &json!("ana")),
        "{text}"
    );
    assert_eq!(
        (&logged[2]["seq"], &logged[2]["text"]),
        (&json!(1), &json!("guardada"))
    );
}
