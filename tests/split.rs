//! A room across servers split while Redis is away (docs/CLUSTER.md): each server's members go
//! on hearing each other at once (provisional lines, `"held":true` without a `seq` for
//! structured clients); when Redis is back every client gets the other side's lines once, never
//! its own side's again, and a resume anywhere replays the room with dense numbers.

use std::net::SocketAddr;

use serde_json::Value;

use crate::cluster::{clustered, messages};
use crate::support::LIMIT;
use crate::support::peer::Peer;
use crate::support::process::Running;
use crate::support::redis::RedisServer;

/// One server's side: two raw members and a structured one.
struct Side {
    raws: Vec<Peer>,
    json: Peer,
    token: String,
}

impl Side {
    fn join(addr: SocketAddr, tag: &str) -> Side {
        let raws = (1..=2)
            .map(|n| {
                let (mut peer, _) = Peer::raw(addr);
                let name = format!("{tag}raw{n}");
                peer.send(&format!("/nick {name}"));
                peer.line_where(|line| line.contains(&format!("is now known as {name}")));
                peer
            })
            .collect();
        let (json, token) = Peer::session(addr, &format!("{tag}json"));
        Side { raws, json, token }
    }

    /// Every member is told the room is split.
    fn told_split(&mut self, server: &Running) {
        let mut console = Vec::new();
        let said = server.wait_for(LIMIT, |line| {
            console.push(line.to_string());
            line.contains("the room is split")
        });
        assert!(
            said.is_some(),
            "the console says the room is split: {console:?}"
        );
        for raw in &mut self.raws {
            raw.line_where(|line| line.contains("the room is split"));
        }
        let notice = self.json.frame_where(|f| f["type"] == "notice");
        assert!(
            notice["text"]
                .as_str()
                .unwrap()
                .contains("the room is split"),
            "{notice}"
        );
    }

    /// While split, each member says a line in turn, and the others of this server (and a
    /// structured author itself) hear it at once, provisional.
    fn talk(&mut self, tag: &str) -> Vec<String> {
        let mut said = Vec::new();
        for speaker in 0..3 {
            let text = format!("{tag}-{speaker}");
            if speaker == 2 {
                self.json.say(&text);
            } else {
                self.raws[speaker].send(&text);
            }
            for (n, raw) in self.raws.iter_mut().enumerate() {
                if n != speaker {
                    raw.line_where(|line| line.ends_with(&format!("> {text}")));
                }
            }
            let msg = self.json.frame_where(|f| f["type"] == "msg");
            assert_eq!(msg["text"], text.as_str(), "{msg}");
            assert_eq!(msg["held"], true, "provisional: {msg}");
            assert_eq!(msg["seq"], 0, "no number yet: {msg}");
            said.push(text);
        }
        said
    }

    /// The chat lines every member gets until `end`: raw members' texts, and the structured
    /// member's `(seq, text)`.
    fn until(&mut self, end: &str) -> (Vec<Vec<String>>, Vec<(u64, String)>) {
        let raws = self
            .raws
            .iter_mut()
            .map(|raw| {
                let mut heard = Vec::new();
                raw.line_where(|line| {
                    if let Some((_, text)) = line.split_once("> ") {
                        heard.push(text.to_string());
                    }
                    line.ends_with(&format!("> {end}"))
                });
                heard
            })
            .collect();
        let mut heard = Vec::new();
        self.json
            .frames_until(&mut heard, |f| f["type"] == "msg" && f["text"] == end);
        let json = heard
            .iter()
            .map(|m: &Value| {
                (
                    m["seq"].as_u64().unwrap(),
                    m["text"].as_str().unwrap().into(),
                )
            })
            .collect();
        (raws, json)
    }
}

#[test]
fn a_split_room_keeps_each_servers_members_talking_and_rejoins_with_nothing_lost_or_twice() {
    let Some(mut redis) = RedisServer::start_with(true) else {
        return;
    };
    let (a, a_addr) = clustered(&redis, "sala", &[]);
    let (b, b_addr) = clustered(&redis, "sala", &[]);
    let mut side_a = Side::join(a_addr, "a");
    let mut side_b = Side::join(b_addr, "b");

    redis.kill();
    side_a.told_split(&a);
    side_b.told_split(&b);
    let said_a = side_a.talk("a");
    let said_b = side_b.talk("b");

    redis.restart();
    for (server, side) in [(&a, &mut side_a), (&b, &mut side_b)] {
        server
            .wait_for(LIMIT, |line| line.contains("the room is whole again"))
            .expect("the console says the room is whole again");
        let notice = side.json.frame_where(|f| f["type"] == "notice");
        assert!(
            notice["text"].as_str().unwrap().contains("whole again"),
            "{notice}"
        );
    }
    // A's structured member gets B's three lines, numbered; then says the last line, which
    // comes after everything said while split.
    let from_b = messages(&mut side_a.json, 3);
    let texts: Vec<&str> = from_b.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(texts, said_b, "B's lines, in B's order");
    side_a.json.say("end");

    let (raws_a, json_a) = side_a.until("end");
    let (raws_b, json_b) = side_b.until("end");
    for heard in &raws_a {
        assert_eq!(
            heard[..],
            [&said_b[..], &["end".to_string()]].concat(),
            "A raw"
        );
    }
    for heard in &raws_b {
        assert_eq!(
            heard[..],
            [&said_a[..], &["end".to_string()]].concat(),
            "B raw"
        );
    }
    let texts_b: Vec<&String> = json_b.iter().map(|(_, t)| t).collect();
    assert_eq!(
        texts_b,
        said_a
            .iter()
            .chain(["end".to_string()].iter())
            .collect::<Vec<_>>(),
        "B's structured member"
    );
    assert_eq!(json_a.last().unwrap().1, "end", "{json_a:?}");
    // Every number given once, dense: B's side read A's, A's side read B's.
    let mut seqs: Vec<u64> = from_b.iter().map(|(s, _)| *s).collect();
    seqs.extend(json_b.iter().map(|(s, _)| *s));
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=7).collect::<Vec<_>>(), "{from_b:?} {json_b:?}");
    assert_eq!(json_a.last().unwrap().0, 7, "{json_a:?}");

    // A's structured member resumes on B: the whole room, numbered 1 to 7, once.
    let token = side_a.token.clone();
    drop(side_a);
    let (mut ajson, welcome) = Peer::resume(b_addr, "ajson", 0, &token);
    assert_eq!(welcome["name"], "ajson", "{welcome}");
    assert!(
        welcome.get("token").is_none_or(|t| t == token.as_str()),
        "the session resumed, not a new one (B asked Redis, back): {welcome}"
    );
    let replay = messages(&mut ajson, 7);
    let numbers: Vec<u64> = replay.iter().map(|(s, _)| *s).collect();
    assert_eq!(numbers, (1..=7).collect::<Vec<_>>(), "{replay:?}");
    let mut texts: Vec<String> = replay.into_iter().map(|(_, t)| t).collect();
    texts.sort();
    let mut all: Vec<String> = [&said_a[..], &said_b[..], &["end".to_string()]].concat();
    all.sort();
    assert_eq!(texts, all);
}
