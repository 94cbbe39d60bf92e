//! Single mode's line: what a waiting client types is kept for its turn, even when it leaves
//! before the turn comes (as the course's client does); waiting is not being idle; and what all
//! waiting clients may keep together is bounded.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::support::course::COURSE_CLIENT;
use crate::support::peer::Peer;
use crate::support::proc::{has_proc, status_number};
use crate::support::process::{Running, lines_until};
use crate::support::serve::{Serve, console_line, start_server, type_at_console};
use crate::support::{LIMIT, require, tool};

#[test]
fn lines_kept_by_clients_that_left_before_their_turn_reach_the_console_at_their_turn() {
    if !require(tool("python3"), "python3") {
        return;
    }
    let (mut server, addr) = Serve::new(&["--mode", "single"]).console().start();
    let (mut first, _) = Peer::raw(addr);
    first.send("/nick primeira");
    first.line_where(|l| l.contains("now known as primeira"));

    let (ip, port) = (addr.ip().to_string(), addr.port().to_string());
    let mut course = Running::program("python3", &["-c", COURSE_CLIENT, &ip, &port]);
    assert!(course.wait_exit(LIMIT).expect("it ends").success());
    let said = course.lines.recv_timeout(LIMIT).unwrap();
    assert!(said.contains("queued at position 1"), "{said}");
    console_line(&server, |l| {
        l.contains("left before its turn: its 1 kept line")
    });

    let (mut nc, greeting) = Peer::raw(addr);
    assert!(
        greeting.contains("queued at position 1"),
        "one that left is no one to wait for: {greeting}"
    );
    nc.send("/nick apressada");
    nc.line_where(|l| l.contains("now known as apressada"));
    nc.send("uma pergunta");
    nc.line_where(|l| l.contains("kept"));
    nc.send("/me desiste");
    nc.writer.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(nc.closed());
    console_line(&server, |l| {
        l.contains("apressada left before its turn: its 2 kept")
    });

    first.send("exit");
    assert!(first.closed());
    let shown = lines_until(&server.lines, |l| l.contains("desiste"));
    let kept: Vec<&String> = shown.iter().filter(|l| l.starts_with('[')).collect();
    assert_eq!(kept.len(), 3, "{shown:?}");
    assert!(kept[0].ends_with("<guest-2> Hello Server (left before its turn)"));
    assert!(kept[1].ends_with("<apressada> uma pergunta (left before its turn)"));
    assert!(kept[2].ends_with("* apressada desiste (left before its turn)"));

    // Nobody is left in line: the next client is served at once.
    let (_next, greeting) = Peer::raw(addr);
    assert!(greeting.contains("talking with server"), "{greeting}");
    type_at_console(&mut server, "/status");
    console_line(&server, |l| l.starts_with("served "));
}

#[test]
fn waiting_in_line_is_not_being_idle_and_the_idle_time_counts_from_the_turn() {
    let (mut server, addr) = Serve::new(&["--mode", "single", "--idle-timeout", "1"])
        .console()
        .start();
    let (mut first, _) = Peer::raw(addr);
    let (mut waiting, _) = Peer::raw(addr);
    waiting.send("pergunta antiga");
    waiting.line_where(|l| l.contains("kept"));
    let queued = Instant::now();
    // The served client keeps talking while the other waits well past the idle timeout.
    for n in 0.. {
        assert!(n < 1000, "a round trip through the console each time");
        let text = format!("ainda aqui {n}");
        first.send(&text);
        console_line(&server, |l| l.ends_with(&text));
        if queued.elapsed() >= Duration::from_millis(2500) {
            break;
        }
    }
    waiting.send("/who");
    let who = waiting.line_where(|l| l.starts_with("* bye") || l.contains(" here: "));
    assert!(who.contains(" here: "), "still in line: {who}");

    first.send("exit");
    assert!(first.closed());
    waiting.line_where(|l| l.contains("your turn"));
    let served = Instant::now();
    console_line(&server, |l| l.contains("pergunta antiga"));
    type_at_console(&mut server, "resposta");
    waiting.line_where(|l| l.contains("<server> resposta"));
    let bye = waiting.line_where(|l| l.starts_with("* bye"));
    assert!(bye.contains("idle for 1 s"), "{bye}");
    // A second from its turn (less the time its notice took to arrive), not from its last line.
    assert!(
        served.elapsed() >= Duration::from_millis(500),
        "closed for idleness {:?} after its turn came",
        served.elapsed()
    );
    assert!(waiting.closed());
}

#[test]
fn what_waiting_clients_keep_is_bounded_each_told_once_and_the_server_stays_small() {
    if !require(has_proc(), "/proc, to read a process's memory") {
        return;
    }
    const CLIENTS: usize = 80;
    const LINES: usize = 150;
    let (server, addr) = start_server(&["--mode", "single", "--rate-limit", "off"]);
    let pid = server.child.id();
    let (_served, _) = Peer::raw(addr);
    let waiting: Vec<Peer> = (0..CLIENTS).map(|_| Peer::raw(addr).0).collect();
    let before = status_number(pid, "VmRSS");

    let line = format!("{}\n", "k".repeat(8000));
    let clients: Vec<_> = waiting
        .into_iter()
        .map(|mut peer| {
            let line = line.clone();
            // 96 MB through one server on 2 cores: beside the rest of the suite this takes
            // longer than one step's LIMIT, so each wait here gets more (still bounded).
            let heavy = 4 * LIMIT;
            peer.writer.set_read_timeout(Some(heavy)).unwrap();
            peer.writer.set_write_timeout(Some(heavy)).unwrap();
            std::thread::spawn(move || {
                for _ in 0..LINES {
                    peer.writer.write_all(line.as_bytes()).unwrap();
                }
                peer.send("/who");
                // Everything until the answer to /who: the server has seen every line by then.
                let mut told = Vec::new();
                peer.line_where_within(heavy, |l| {
                    if l.starts_with("! ") {
                        told.push(l.to_string());
                    }
                    // `* 3 here: …`, or the first page of a long list: `* 82 here (1-50): …`.
                    l.contains(" here: ") || l.contains(" here (1-")
                });
                told
            })
        })
        .collect();
    let told: Vec<Vec<String>> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let peak = status_number(pid, "VmHWM");
    // What is kept (4 MiB), and what may be on its way to the hub (1024 events of at most 32 KiB
    // each), with room to spare: far less than what was sent.
    let sent_mib = CLIENTS * LINES * 8000 / (1024 * 1024);
    assert!(
        peak.saturating_sub(before) < 48 * 1024,
        "{CLIENTS} waiting clients sent {sent_mib} MiB: the server grew from {before} KiB to {peak} KiB"
    );

    for notices in &told {
        assert_eq!(notices.len(), 1, "one notice each: {notices:?}");
        assert!(notices[0].contains("are not kept"), "{notices:?}");
    }
    let per_client = told.iter().filter(|n| n[0].contains("for you")).count();
    let in_all = told
        .iter()
        .filter(|n| n[0].contains("the most the server keeps"))
        .count();
    assert!(per_client > 0 && in_all > 0, "{told:?}");
}
