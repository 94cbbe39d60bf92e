//! Real `soquete chat` clients given every server of a room (`chat A B`) while their server is
//! killed: they move to the other server, resume, and print every message once, none missing;
//! what they type after the move reaches the room once.

use std::io::Write;

use serde_json::Value;

use crate::cluster::clustered;
use crate::support::LIMIT;
use crate::support::peer::Peer;
use crate::support::process::{Running, collect_until};
use crate::support::redis::RedisServer;

/// The texts of the `msg` events among `--json` lines, in the order printed.
fn texts(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|event| event["type"] == "msg")
        .filter_map(|event| event["text"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn chat_clients_of_a_killed_server_move_to_another_and_miss_nothing_nor_see_it_twice() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (mut a, a_addr) = clustered(&redis, "sala", &[]);
    let (_b, b_addr) = clustered(&redis, "sala", &[]);
    let (a_addr, b_addr) = (a_addr.to_string(), b_addr.to_string());
    let mut clients: Vec<(Running, Vec<String>)> = (0..3)
        .map(|n| {
            let name = format!("c{n}");
            let args = [
                "chat",
                "--name",
                name.as_str(),
                "--json",
                "--reconnect-max",
                "0.2",
                a_addr.as_str(),
                b_addr.as_str(),
            ];
            (Running::start_with_stdin(&args), Vec::new())
        })
        .collect();
    for (client, seen) in &mut clients {
        assert!(
            collect_until(&client.lines, LIMIT, seen, |l| l
                .contains(r#""type":"welcome""#)),
            "{seen:?}"
        );
    }
    let mut bia = Peer::structured(b_addr.parse().unwrap(), "bia");
    // Every client is in the room on A and hears B's member: the room is one.
    bia.say("t-1");
    for (client, seen) in &mut clients {
        assert!(
            collect_until(&client.lines, LIMIT, seen, |l| l
                .contains(r#""text":"t-1""#)),
            "{seen:?}"
        );
        assert!(seen.iter().any(|l| l.contains(&a_addr)), "on A: {seen:?}");
    }

    // A dies under them; the room goes on on B at once, some of it while they move.
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    for n in 2..=6 {
        bia.say(&format!("t-{n}"));
    }
    for (n, (client, _)) in clients.iter_mut().enumerate() {
        let stdin = client.child.stdin.as_mut().unwrap();
        writeln!(stdin, "after-{n}").unwrap();
    }
    bia.say("t-7");

    for (n, (client, seen)) in clients.iter_mut().enumerate() {
        assert!(
            collect_until(&client.lines, LIMIT, seen, |l| l
                .contains(r#""text":"t-7""#)),
            "c{n} hears the room after the move: {seen:?}"
        );
        let from_bia: Vec<String> = texts(seen)
            .into_iter()
            .filter(|t| t.starts_with("t-"))
            .collect();
        let expected: Vec<String> = (1..=7).map(|k| format!("t-{k}")).collect();
        assert_eq!(from_bia, expected, "c{n}: each message once, in order");
        let moved = seen
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|e| e["type"] == "reconnected")
            .unwrap_or_else(|| panic!("c{n} says it moved: {seen:?}"));
        assert_eq!(moved["previous"].as_str(), Some(a_addr.as_str()), "{moved}");
    }
    // What each typed after the move reached the room once.
    let mut heard = Vec::new();
    while heard.len() < 3 {
        let msg = bia.frame_where(|f| f["type"] == "msg");
        let text = msg["text"].as_str().unwrap().to_string();
        if text.starts_with("after-") {
            heard.push(text);
        }
    }
    heard.sort();
    assert_eq!(heard, ["after-0", "after-1", "after-2"]);
    bia.say("t-8");
    loop {
        let msg = bia.frame_where(|f| f["type"] == "msg");
        let text = msg["text"].as_str().unwrap();
        assert!(!text.starts_with("after-"), "nothing twice: {msg}");
        if text == "t-8" {
            break;
        }
    }
}
