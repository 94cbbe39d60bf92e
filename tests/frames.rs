//! The longest lines and the largest frames, end to end: a raw client's line of the protocol's
//! limit reaches every kind of client whole, however TCP cuts it, and `/who` in a room of
//! hundreds arrives at `soquete chat`.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;

use crate::support::peer::Peer;
use crate::support::process::{Running, lines_until};
use crate::support::serve::start_server;

/// The protocol's longest line (`MAX_LINE_BYTES`).
const MAX_LINE: usize = 8192;

/// `soquete chat ARGS --name NAME addr`, stdin a pipe, once it is welcomed.
fn chat(addr: SocketAddr, name: &str, args: &[&str]) -> Running {
    let target = addr.to_string();
    let mut all = vec!["chat", "--name", name];
    all.extend_from_slice(args);
    all.push(&target);
    let client = Running::start_with_stdin(&all);
    lines_until(&client.lines, |line| line.contains("welcome"));
    client
}

/// A line of the limit: printable, with a marker at each end, and every byte ASCII.
fn longest_line(marker: &str) -> String {
    let body = MAX_LINE - 2 * marker.len();
    format!("{marker}{}{marker}", "x".repeat(body))
}

#[test]
fn a_raw_clients_longest_line_reaches_soquete_chat_whole_as_json_and_as_text() {
    let (_server, addr) = start_server(&["--rate-limit", "off"]);
    let json = chat(addr, "ana", &["--json"]);
    let text = chat(addr, "bia", &[]);
    let (mut raw, _) = Peer::raw(addr);
    raw.send("/nick nc");
    raw.line_where(|l| l.contains("now known as nc"));

    let line = longest_line("<8K>");
    assert_eq!(line.len(), MAX_LINE);
    raw.send(&line);
    raw.send("after");
    let seen = lines_until(&json.lines, |l| l.contains(r#""text":"after""#));
    let msgs: Vec<Value> = seen
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|frame| frame["type"] == "msg")
        .collect();
    assert_eq!(msgs.len(), 2, "{seen:?}");
    assert_eq!(msgs[0]["text"], line.as_str());
    assert_eq!(msgs[0]["from"], "nc");

    let seen = lines_until(&text.lines, |l| l.ends_with("<nc> after"));
    assert!(
        seen.iter().any(|l| l.ends_with(&format!("<nc> {line}"))),
        "{:?}",
        seen.iter()
            .map(|l| &l[..l.len().min(80)])
            .collect::<Vec<_>>()
    );
}

#[test]
fn a_line_of_the_limit_whose_cr_and_lf_come_apart_is_delivered() {
    let (_server, addr) = start_server(&["--rate-limit", "off"]);
    let mut ana = Peer::structured(addr, "ana");
    let (mut raw, _) = Peer::raw(addr);
    let line = longest_line("<cr|lf>");
    raw.writer.write_all(line.as_bytes()).unwrap();
    raw.writer.write_all(b"\r").unwrap();
    // Only to have the server read the `\r` and the `\n` apart (this proves nothing by itself:
    // what the others receive does).
    std::thread::sleep(Duration::from_millis(200));
    raw.writer.write_all(b"\n").unwrap();
    raw.send("after");
    let msg = ana.frame_where(|f| f["type"] == "msg");
    assert_eq!(msg["text"], line.as_str());
    let next = ana.frame_where(|f| f["type"] == "msg" || f["type"] == "error");
    assert_eq!(next["text"], "after", "{next}");
    // The sender was told nothing was too long.
    raw.send("/nick fim");
    let told = raw.line_where(|l| l.contains("now known as fim") || l.starts_with("! "));
    assert!(told.contains("now known as fim"), "{told}");
}

#[test]
fn who_in_a_room_of_hundreds_arrives_at_soquete_chat_in_pages() {
    const RAW: usize = 300;
    let (_server, addr) = start_server(&[]);
    let client = chat(addr, "ana", &["--json"]);
    let mut members = Vec::new();
    for n in 0..RAW {
        let (mut peer, _) = Peer::raw(addr);
        peer.send(&format!("oi {n}"));
        members.push(peer);
    }
    // Each is a member once it has its welcome.
    for peer in &mut members {
        peer.line_where(|l| l.starts_with("* welcome"));
    }
    let mut stdin = client.child.stdin.as_ref().unwrap();
    stdin.write_all(b"/who\n").unwrap();
    let seen = lines_until(&client.lines, |l| {
        l.contains(r#""type":"who""#) && !l.contains(r#""more":true"#)
    });
    let pages: Vec<Value> = seen
        .iter()
        .filter(|l| l.contains(r#""type":"who""#))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let total = RAW + 2; // the console, ana and the raw ones
    let listed: Vec<&str> = pages
        .iter()
        .flat_map(|page| page["members"].as_array().unwrap())
        .map(|member| member["name"].as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), total, "{pages:?}");
    assert_eq!(listed[0], "server");
    assert!(listed.contains(&"ana"));
    for (n, page) in pages.iter().enumerate() {
        assert_eq!(page["total"], total);
        assert_eq!(page["more"].as_bool().unwrap_or(false), n + 1 < pages.len());
    }
    // A raw member reads the same list, page by page, as text.
    let raw = &mut members[0];
    raw.send("/who");
    let first = raw.line_where(|l| l.starts_with(&format!("* {total} here")));
    assert!(
        first.starts_with(&format!("* {total} here (1-50): server (")),
        "{first}"
    );
}
