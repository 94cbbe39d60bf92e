//! `soquete serve` at its limits: bad input, a flooder, stalled and slow readers, idle clients, a
//! full room, and thousands of connections, after which nothing is left behind.

use std::io::{BufRead, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::peer::{MAX_LINES, Peer};
use crate::support::proc::{counts_back_to, has_proc, threads_and_fds};
use crate::support::process::{Running, lines_until};
use crate::support::serve::{Serve, console_line, start_server};
use crate::support::{LIMIT, require};

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
                // Every message of everyone, the stalled one's leave somewhere among them. A
                // talker let go as too slow would leave the others waiting: its leave says so.
                let (mut seqs, mut leave, mut others) = (Vec::new(), None, Vec::new());
                let mut leaves = Vec::new();
                let mut line = String::new();
                let deadline = Instant::now() + LIMIT;
                while seqs.len() < TALKERS * EACH {
                    // Pings keep coming: without this bound a lost message would be a hang.
                    assert!(
                        Instant::now() < deadline,
                        "t{i} heard {} of {} messages in {LIMIT:?}, the last {:?}; leaves {leaves:?}; and {others:?}",
                        seqs.len(),
                        TALKERS * EACH,
                        seqs.last()
                    );
                    line.clear();
                    let read = reader.read_line(&mut line).expect("a line in time");
                    assert!(read > 0, "t{i} was let go after {} messages", seqs.len());
                    if let Some(rest) = line.strip_prefix(r#"{"type":"msg","seq":"#) {
                        let seq: u64 = rest.split(',').next().unwrap().parse().unwrap();
                        seqs.push(seq);
                    } else if line.contains(r#""type":"leave""#) {
                        leaves.push(line.trim_end().to_string());
                        leave = Some(serde_json::from_str::<Value>(&line).unwrap());
                    } else if others.len() < 20 {
                        others.push(line.trim_end().to_string());
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
    let (_server, addr) = start_server(&["--rate-limit", "100/s,burst=10"]);
    let mut ana = Peer::structured(addr, "ana");
    let mut bia = Peer::structured(addr, "bia");
    let (mut flood, _) = Peer::raw(addr);
    flood.send("/nick enxurrada");
    ana.frame_where(|f| f["type"] == "nick" && f["new"] == "enxurrada");
    bia.frame_where(|f| f["type"] == "nick" && f["new"] == "enxurrada");

    let started = Instant::now();
    let burst: String = (0..100).map(|i| format!("enxurrada {i}\n")).collect();
    flood.writer.write_all(burst.as_bytes()).unwrap();
    let (mut ana_heard, mut bia_heard) = (Vec::new(), Vec::new());
    for i in 0..10 {
        let sent = Instant::now();
        let text = format!("ana {i}");
        ana.say(&text);
        bia.frames_until(&mut bia_heard, |f| f["text"] == json!(text));
        let text = format!("bia {i}");
        bia.say(&text);
        ana.frames_until(&mut ana_heard, |f| f["text"] == json!(text));
        assert!(
            sent.elapsed() < Duration::from_secs(1),
            "a round trip took {:?} during the flood",
            sent.elapsed()
        );
    }
    ana.frames_until(&mut ana_heard, |f| f["text"] == "enxurrada 99");
    let flooded: Vec<&str> = ana_heard
        .iter()
        .filter(|m| m["from"] == "enxurrada")
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = (0..100).map(|i| format!("enxurrada {i}")).collect();
    assert_eq!(flooded, expected, "nothing dropped, nothing reordered");
    // 10 at once, then 100 a second: the other 90 lines take at least 0.9 s.
    assert!(
        started.elapsed() >= Duration::from_millis(850),
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
        |ana: &mut Peer, heard: &mut Vec<Value>| ana.frames_until(heard, |f| f["type"] == "msg");

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
    // Connect and close without a word, and a reset in the middle of a line: the half line is
    // delivered, as after a clean close (see tests/resets.rs).
    drop(TcpStream::connect(addr).unwrap());
    console_line(&server, |l| l.starts_with("probe "));
    let (mut rst, _) = Peer::raw(addr);
    rst.send("/nick rst");
    ana.frame_where(|f| f["type"] == "nick" && f["new"] == "rst");
    rst.line_where(|l| l.contains("now known as rst"));
    rst.writer.write_all(b"meia linha sem fim").unwrap();
    rst.reset();
    let leave = ana.frames_until(&mut heard, |f| f["type"] == "leave");
    assert_eq!(leave["name"], "rst", "{leave}");

    eve.say("fim");
    let last = next_msg(&mut ana, &mut heard);
    assert_eq!(
        (&last["from"], &last["text"]),
        (&json!("eve"), &json!("fim"))
    );
    let texts: Vec<&str> = heard.iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(
        texts,
        [
            "curta",
            "ol\u{fffd} \u{fffd}",
            "fundo",
            "olá vermelho\u{fffd}!",
            "negrito\u{fffd}",
            "meia linha sem fim",
            "fim"
        ],
        "nothing else was delivered"
    );
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
    // It said hello: it is told in a frame too, with a code a program acts on.
    let bye = third.frame();
    assert_eq!(
        (&bye["type"], &bye["code"]),
        (&json!("bye"), &json!("full"))
    );
    assert!(third.closed());
    // nc hears the line alone, as before.
    let (mut nc, line) = Peer::raw(addr);
    assert!(line.starts_with("* server full"), "{line}");
    assert!(nc.closed());
    console_line(&server, |l| {
        l.starts_with("refused ") && l.contains("server full")
    });

    drop(bob);
    ana.frame_where(|f| f["type"] == "leave" && f["name"] == "bob");
    let _cid = Peer::structured(addr, "cid");
}

#[test]
fn an_idle_client_is_closed_and_only_that_one() {
    // The server's heartbeat paces ana: a ping says a quarter of the idle timeout went by.
    let (_server, addr) = Serve::new(&["--idle-timeout", "1"])
        .env("SOQUETE_HEARTBEAT_INTERVAL_MS", "250")
        .start();
    let (mut quiet, _) = Peer::raw(addr);
    let mut ana = Peer::structured(addr, "ana");
    let mut leave = None;
    // ana keeps busy (a /who after each ping) while the quiet one says nothing.
    for _ in 0..40 {
        ana.send_json(json!({"type": "who"}));
        let frame = ana.frame_where(|f| f["type"] == "ping" || f["type"] == "leave");
        if frame["type"] == "leave" {
            leave = Some(frame);
            break;
        }
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

/// Writes `piece` every 300 ms on `peer`'s connection until the receiver of what it returns is
/// dropped (at most 100 times): a client that is busy without ever completing a line.
fn keep_writing(peer: &Peer, piece: Vec<u8>) -> mpsc::Sender<()> {
    let mut writer = peer.writer.try_clone().unwrap();
    let (stop, stopped) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        for _ in 0..100 {
            if writer.write_all(&piece).is_err() {
                return;
            }
            match stopped.recv_timeout(Duration::from_millis(300)) {
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                _ => return,
            }
        }
    });
    stop
}

/// The console's word that `name` was let go for idleness (a member that talks only to stay
/// would be idle too, so the console is the one witness).
fn console_says_idle(server: &Running, name: &str) {
    let gone = console_line(server, |l| l.starts_with("disconnected "));
    assert!(gone.contains(&format!("({name}: idle for 1 s")), "{gone}");
}

#[test]
fn a_client_trickling_bytes_without_a_newline_is_idle() {
    let (server, addr) = start_server(&["--idle-timeout", "1"]);
    let (mut raw, _) = Peer::raw(addr);
    raw.send("/nick gotas");
    raw.line_where(|l| l.contains("now known as gotas"));
    let started = Instant::now();
    let _stop = keep_writing(&raw, b"x".to_vec());
    let bye = raw.line_where(|l| l.starts_with("* bye"));
    assert!(bye.contains("idle for 1 s"), "{bye}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    console_says_idle(&server, "gotas");
}

#[test]
fn a_client_sending_only_overlong_lines_is_idle() {
    let (server, addr) = start_server(&["--idle-timeout", "1", "--rate-limit", "off"]);
    let (mut raw, _) = Peer::raw(addr);
    raw.send("/nick longo");
    raw.line_where(|l| l.contains("now known as longo"));
    let mut overlong = vec![b'x'; 9000];
    overlong.push(b'\n');
    let _stop = keep_writing(&raw, overlong);
    let mut refused = 0;
    let bye = raw.line_where(|l| {
        refused += usize::from(l.starts_with("! a line longer"));
        l.starts_with("* bye")
    });
    assert!(bye.contains("idle for 1 s"), "{bye}");
    assert!(refused >= 1, "the overlong lines were read and refused");
    console_says_idle(&server, "longo");
}

#[test]
fn ten_thousand_connections_leave_threads_and_files_where_they_were() {
    if !require(has_proc(), "/proc, to count a process's threads and files") {
        return;
    }
    const WORKERS: usize = 4;
    const CYCLES: usize = 2500;
    let (server, addr) = start_server(&[]);
    let pid = server.child.id();
    // A connection that stays for the whole test, and has talked: every thread the server
    // starts is running by then (none is started lazily later).
    let (mut warm, _) = Peer::raw(addr);
    warm.send("/nick aquecer");
    warm.line_where(|l| l.contains("now known as aquecer"));
    let before = threads_and_fds(pid);

    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            std::thread::spawn(move || {
                for n in 0..CYCLES {
                    let (peer, greeting) = Peer::raw(addr);
                    assert!(greeting.starts_with("* soquete chat server"), "{greeting}");
                    if (w + n) % 2 == 0 {
                        // A reset: no TIME_WAIT left on this side, and the server's error path.
                        peer.reset();
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    let after = counts_back_to(pid, before);
    assert_eq!(
        after,
        before,
        "(threads, files) before and after {} connections",
        WORKERS * CYCLES
    );
}

#[test]
fn a_client_dropped_as_too_slow_sees_the_end_and_its_threads_and_file_go() {
    if !require(has_proc(), "/proc, to count a process's threads and files") {
        return;
    }
    let (server, addr) = start_server(&["--rate-limit", "off"]);
    let pid = server.child.id();
    let (mut talker, _) = Peer::raw(addr);
    talker.send("/nick falador");
    talker.line_where(|l| l.contains("now known as falador"));
    let before = threads_and_fds(pid);

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
    // 64 KB at a time (sixteen lines of 4,000 bytes) fills the kernel's buffers on the way to
    // the stalled reader in a fraction of a second; then it has read nothing for long enough.
    let filler = format!("{}\n", "x".repeat(4000)).repeat(16);
    let deadline = Instant::now() + LIMIT;
    let left = loop {
        writer.write_all(filler.as_bytes()).unwrap();
        if let Ok(line) = heard.recv_timeout(Duration::from_millis(5)) {
            break line;
        }
        assert!(Instant::now() < deadline, "never dropped");
    };
    assert!(left.contains("(too slow"), "{left}");

    // What was already on its way still arrives, then the end: never a socket left open.
    stalled.set_read_timeout(Some(LIMIT)).unwrap();
    let started = Instant::now();
    let mut sink = vec![0u8; 64 * 1024];
    loop {
        match std::io::Read::read(&mut stalled, &mut sink) {
            Ok(0) => break,
            Ok(_) => assert!(started.elapsed() < LIMIT, "still open"),
            Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(err) => panic!("no end of stream: {err}"),
        }
    }
    let after = counts_back_to(pid, before);
    assert_eq!(after, before, "(threads, files) before and after the drop");
    // The listening thread reads until the end: shutting the socket down (its clone, the
    // writer, keeps it open) is that end.
    writer.shutdown(Shutdown::Both).unwrap();
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
                let deadline = Instant::now() + Duration::from_secs(120);
                while got < (CLIENTS - 1) * EACH {
                    line.clear();
                    assert!(
                        reader.read_line(&mut line).expect("a line in time") > 0,
                        "closed"
                    );
                    assert!(!line.contains("too slow"), "{line}");
                    assert!(Instant::now() < deadline, "too long");
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
