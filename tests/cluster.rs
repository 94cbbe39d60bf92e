//! Rooms across servers (`serve --cluster redis://… --room NAME`), against the real
//! `redis-server`: a bad URL and an unreachable Redis are one clear line each; two and three
//! servers on one Redis are one room, one order, each message once, raw and structured clients
//! alike.

use std::net::SocketAddr;

use serde_json::Value;

use crate::support::LIMIT;
use crate::support::peer::Peer;
use crate::support::ports::ClosedPort;
use crate::support::process::{Running, soquete};
use crate::support::redis::RedisServer;
use crate::support::serve::Serve;

/// `soquete serve --cluster URL --room ROOM EXTRA`, with `env`.
pub(crate) fn clustered(redis: &RedisServer, room: &str, extra: &[&str]) -> (Running, SocketAddr) {
    let url = redis.url();
    let mut args = vec!["--cluster", url.as_str(), "--room", room];
    args.extend_from_slice(extra);
    Serve::new(&args).start()
}

/// `soquete serve ARGS` that must fail at once: its exit code and its stderr.
fn refused(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut command = soquete();
    command.arg("serve").arg("--port").arg("0").args(args);
    for (var, value) in env {
        command.env(var, value);
    }
    let output = command.timeout(LIMIT).output().expect("soquete runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code().unwrap_or(-1), stderr)
}

#[test]
fn a_bad_cluster_url_or_room_is_one_usage_line_that_never_shows_the_password() {
    for (args, says) in [
        (
            &[
                "--cluster",
                "http://:hunter2@127.0.0.1:6379",
                "--room",
                "sala",
            ][..],
            "not a Redis URL",
        ),
        (
            &[
                "--cluster",
                "redis://:hunter2@127.0.0.1:6379/x",
                "--room",
                "sala",
            ],
            "not a Redis URL",
        ),
        (
            &["--cluster", "redis://127.0.0.1:6379", "--room", "a b"],
            "--room",
        ),
        (&["--cluster", "redis://127.0.0.1:6379"], "--room"),
        (&["--room", "sala"], "--cluster"),
        (
            &[
                "--cluster",
                "redis://127.0.0.1:6379",
                "--room",
                "sala",
                "--mode",
                "echo",
            ],
            "group or broker",
        ),
        (
            &[
                "--cluster",
                "redis://127.0.0.1:6379",
                "--room",
                "s",
                "--mode",
                "single",
            ],
            "group or broker",
        ),
        (
            &[
                "--cluster",
                "redis://127.0.0.1:6379",
                "--room",
                "s",
                "--log",
                "x.log",
            ],
            "--log and --cluster",
        ),
    ] {
        let (code, stderr) = refused(args, &[]);
        assert_eq!(code, 64, "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(!stderr.contains("hunter2"), "{stderr}");
    }
}

#[test]
fn an_unreachable_redis_is_one_line_naming_it_masked_and_why() {
    let closed = ClosedPort::hold();
    let url = format!("redis://:hunter2@127.0.0.1:{}", closed.port());
    let started = std::time::Instant::now();
    let (code, stderr) = refused(&["--cluster", &url, "--room", "sala"], &[]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        format!(
            "soquete: cannot reach Redis at redis://:***@127.0.0.1:{}: Connection refused (os error 111)",
            closed.port()
        )
    );
    assert!(started.elapsed() < LIMIT);
    // A password from the environment is not shown either.
    let url = format!("redis://127.0.0.1:{}", closed.port());
    let env = [("SOQUETE_REDIS_PASSWORD", "hunter2")];
    let (code, stderr) = refused(&["--cluster", &url, "--room", "sala"], &env);
    assert_eq!((code, stderr.lines().count()), (1, 1), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

/// One client of a test room: raw (nc) or structured, and the texts it says.
struct Member {
    peer: Peer,
    structured: bool,
    tag: String,
}

impl Member {
    /// Joins server `addr` under `tag`: a raw client names itself with /nick (and hears it).
    fn join(addr: SocketAddr, tag: &str, structured: bool) -> Member {
        let peer = if structured {
            Peer::structured(addr, tag)
        } else {
            let (mut peer, _) = Peer::raw(addr);
            peer.send(&format!("/nick {tag}"));
            peer.line_where(|line| line.contains(&format!("is now known as {tag}")));
            peer
        };
        Member {
            peer,
            structured,
            tag: tag.into(),
        }
    }

    fn say(&mut self, text: &str) {
        if self.structured {
            self.peer.say(text);
        } else {
            self.peer.send(text);
        }
    }

    /// The room's next `count` messages as this member gets them: `(seq, text)` (no seq for a
    /// raw client, which reads text lines).
    fn heard(&mut self, count: usize) -> Vec<(Option<u64>, String)> {
        (0..count)
            .map(|_| {
                if self.structured {
                    let msg: Value = self.peer.frame_where(|f| f["type"] == "msg");
                    (
                        msg["seq"].as_u64(),
                        msg["text"].as_str().unwrap().to_string(),
                    )
                } else {
                    let line = self.peer.line_where(|l| l.contains("> m-"));
                    (None, line.split("> ").nth(1).unwrap().to_string())
                }
            })
            .collect()
    }
}

/// Every member of every server says `each` lines at once; every member hears every line once
/// (but a raw member its own), all in one order, numbered 1, 2, 3… for structured members.
fn one_room(servers: usize) {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let started: Vec<_> = (0..servers)
        .map(|_| clustered(&redis, "sala", &[]))
        .collect();
    let mut members = Vec::new();
    for (n, (_, addr)) in started.iter().enumerate() {
        members.push(Member::join(*addr, &format!("raw{n}"), false));
        members.push(Member::join(*addr, &format!("json{n}"), true));
    }
    let each = 5;
    for round in 0..each {
        for member in &mut members {
            let text = format!("m-{}-{round}", member.tag);
            member.say(&text);
        }
    }
    let total = members.len() * each;
    let mut orders = Vec::new();
    for member in &mut members {
        let expected = if member.structured {
            total
        } else {
            total - each
        };
        let heard = member.heard(expected);
        if member.structured {
            let seqs: Vec<u64> = heard.iter().map(|(seq, _)| seq.unwrap()).collect();
            assert_eq!(
                seqs,
                (1..=total as u64).collect::<Vec<_>>(),
                "{}",
                member.tag
            );
        }
        let texts: Vec<String> = heard.into_iter().map(|(_, text)| text).collect();
        orders.push((member.tag.clone(), texts));
    }
    let full = orders
        .iter()
        .find(|(tag, _)| tag.starts_with("json"))
        .unwrap()
        .1
        .clone();
    let mut sorted = full.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), total, "each line once: {full:?}");
    for (tag, texts) in &orders {
        let mine = format!("m-{tag}-");
        let expected: Vec<&String> = full
            .iter()
            .filter(|text| tag.starts_with("json") || !text.starts_with(&mine))
            .collect();
        assert_eq!(
            texts.iter().collect::<Vec<_>>(),
            expected,
            "{tag}: one order"
        );
    }
    // Nothing more came: the next message anyone hears is the last one said.
    members[0].say("m-end");
    for member in members.iter_mut().skip(1) {
        assert_eq!(member.heard(1)[0].1, "m-end", "{}", member.tag);
    }
    let seq = redis.cli(&["HGET", "soquete:{sala}:meta", "seq"]);
    assert_eq!(
        seq.trim(),
        (total + 1).to_string(),
        "the room's numbering is Redis's"
    );
}

#[test]
fn two_servers_on_one_redis_are_one_room_in_one_order() {
    one_room(2);
}

#[test]
fn three_servers_on_one_redis_are_one_room_in_one_order() {
    one_room(3);
}

/// The `seq` and text of the next `count` messages `peer` gets.
pub(crate) fn messages(peer: &mut Peer, count: usize) -> Vec<(u64, String)> {
    peer.messages(count)
        .iter()
        .map(|m| {
            (
                m["seq"].as_u64().unwrap(),
                m["text"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_client_of_a_killed_server_resumes_on_another_with_exactly_what_it_missed() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (mut a, a_addr) = clustered(&redis, "sala", &[]);
    let (_b, b_addr) = clustered(&redis, "sala", &[]);
    let (mut ana, token) = Peer::session(a_addr, "ana");
    let mut bia = Peer::structured(b_addr, "bia");
    for n in 1..=3 {
        bia.say(&format!("m{n}"));
    }
    let seen = messages(&mut ana, 3);
    assert_eq!(seen.last().unwrap(), &(3, "m3".to_string()), "{seen:?}");

    // Server A dies under ana: the room goes on on B.
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    drop(ana);
    for n in 4..=5 {
        bia.say(&format!("m{n}"));
    }
    assert_eq!(messages(&mut bia, 5).last().unwrap().0, 5);

    // No one else takes ana's name meanwhile, on any server.
    let mut impostor = Peer::connect(b_addr);
    impostor.send_json(serde_json::json!({"type": "hello", "version": 1, "name": "ana"}));
    let error = impostor.frame_where(|f| f["type"] == "error");
    assert_eq!(error["code"], "name_taken", "{error}");

    // ana comes back on B with its token: exactly m4 and m5, once, then what is new.
    let (mut ana, welcome) = Peer::resume(b_addr, "ana", 3, &token);
    assert_eq!(welcome["name"], "ana", "{welcome}");
    assert!(welcome.get("missed").is_none(), "{welcome}");
    assert_eq!(welcome["last_seq"], 5, "{welcome}");
    assert_eq!(
        messages(&mut ana, 2),
        [(4, "m4".to_string()), (5, "m5".to_string())]
    );
    bia.say("m6");
    assert_eq!(messages(&mut ana, 1), [(6, "m6".to_string())]);
}

#[test]
fn a_reconnect_storm_reads_the_stream_no_more_than_before() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (_a, a_addr) = clustered(&redis, "sala", &[]);
    let (_b, b_addr) = clustered(&redis, "sala", &[]);
    let sessions: Vec<(String, String)> = (0..20)
        .map(|n| {
            let name = format!("p{n}");
            let (peer, token) = Peer::session(a_addr, &name);
            drop(peer);
            (name, token)
        })
        .collect();
    let mut talker = Peer::structured(a_addr, "talker");
    for n in 1..=10 {
        talker.say(&format!("t{n}"));
    }
    let last = messages(&mut talker, 10).last().unwrap().0;
    let reads = |redis: &RedisServer| {
        let stats = redis.cli(&["INFO", "commandstats"]);
        ["xrange", "xrevrange"]
            .iter()
            .map(|command| {
                stats
                    .lines()
                    .find(|l| l.starts_with(&format!("cmdstat_{command}:")))
                    .and_then(|l| l.split("calls=").nth(1)?.split(',').next()?.parse().ok())
                    .unwrap_or(0u64)
            })
            .sum::<u64>()
    };
    let before = reads(&redis);
    // Every session comes back on B at once, each having seen the room up to seq `last - 5`.
    let mut peers: Vec<Peer> = sessions
        .iter()
        .map(|(name, token)| {
            let mut peer = Peer::connect(b_addr);
            peer.send_json(serde_json::json!({
                "type": "hello", "version": 1, "name": name,
                "last_seq": last - 5, "token": token
            }));
            peer
        })
        .collect();
    for (peer, (name, _)) in peers.iter_mut().zip(&sessions) {
        let welcome = peer.frame_where(|f| f["type"] == "welcome");
        assert_eq!(welcome["name"], name.as_str(), "{welcome}");
        let replayed: Vec<u64> = messages(peer, 5).iter().map(|(seq, _)| *seq).collect();
        assert_eq!(replayed, (last - 4..=last).collect::<Vec<_>>(), "{name}");
    }
    assert_eq!(reads(&redis), before, "no stream read per resuming client");
}

#[test]
fn a_name_in_use_on_one_server_is_refused_on_another_and_who_lists_both() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (_a, a_addr) = clustered(&redis, "sala", &[]);
    let (_b, b_addr) = clustered(&redis, "sala", &["--name", "mesa"]);
    let mut bia = Peer::structured(b_addr, "bia");
    let zeca = Member::join(a_addr, "zeca", false);
    // bia hears of zeca's join on the other server, then lists the whole room.
    bia.frame_where(|f| f["type"] == "join" && f["name"] == "guest-1" || f["name"] == "zeca");
    let ana = Peer::structured(a_addr, "ana");
    bia.frame_where(|f| f["type"] == "join" && f["name"] == "ana");
    bia.send_json(serde_json::json!({"type": "who"}));
    let who = bia.frame_where(|f| f["type"] == "who");
    let names: Vec<&str> = who["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    for name in ["mesa", "bia", "zeca", "ana", "server"] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }

    // Names held on A are taken on B: by a hello, and by a raw client's /nick.
    for wish in ["zeca", "ana", "ANA"] {
        let mut peer = Peer::connect(b_addr);
        peer.send_json(serde_json::json!({"type": "hello", "version": 1, "name": wish}));
        let error = peer.frame_where(|f| f["type"] == "error");
        assert_eq!(error["code"], "name_taken", "{wish}: {error}");
        let welcome = peer.frame_where(|f| f["type"] == "welcome");
        assert_ne!(welcome["name"], wish, "{welcome}");
    }
    let (mut raw, _) = Peer::raw(b_addr);
    raw.send("/nick zeca");
    let line = raw.line_where(|l| l.contains("zeca"));
    assert!(line.contains("taken"), "{line}");

    // A name free in the whole room is had by /nick on B, and is then taken on A.
    raw.send("/nick livre");
    raw.line_where(|l| l.contains("is now known as livre"));
    let mut late = Peer::connect(a_addr);
    late.send_json(serde_json::json!({"type": "hello", "version": 1, "name": "livre"}));
    let error = late.frame_where(|f| f["type"] == "error");
    assert_eq!(error["code"], "name_taken", "{error}");

    // zeca quits on A: the name comes free on B (as soon as A has told Redis).
    let mut zeca = zeca;
    zeca.say("/quit");
    let free = crate::support::poll(LIMIT, || {
        raw.send("/nick zeca");
        let line = raw.line_where(|l| l.contains("zeca"));
        line.contains("is now known as zeca").then_some(())
    });
    assert!(free.is_some(), "zeca's name never came free");
    drop(ana);
}

#[test]
fn a_crashed_servers_members_and_raw_names_go_after_the_ttl() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let ttl = [("SOQUETE_CLUSTER_TTL_MS", "600")];
    let start = |name: &str| {
        let url = redis.url();
        let mut serve = Serve::new(&["--cluster", &url, "--room", "sala", "--name", name]);
        for (var, value) in ttl {
            serve = serve.env(var, value);
        }
        serve.start()
    };
    let (mut a, a_addr) = start("mesa_a");
    let (_b, b_addr) = start("mesa_b");
    let mut bia = Peer::structured(b_addr, "bia");
    let _zeca = Member::join(a_addr, "zeca", false);
    bia.frame_where(|f| f["type"] == "nick" && f["new"] == "zeca");
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    // Within the TTL (and a beat), zeca is neither listed nor holding the name.
    let gone = crate::support::poll(LIMIT, || {
        bia.send_json(serde_json::json!({"type": "who"}));
        let who = bia.frame_where(|f| f["type"] == "who");
        let listed = who["members"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["name"] == "zeca");
        (!listed).then_some(())
    });
    assert!(gone.is_some(), "zeca still listed");
    let (mut raw, _) = Peer::raw(b_addr);
    let free = crate::support::poll(LIMIT, || {
        raw.send("/nick zeca");
        let line = raw.line_where(|l| l.contains("zeca"));
        line.contains("is now known as zeca").then_some(())
    });
    assert!(free.is_some(), "the name zeca never came free");
}

/// Redis is killed and started again while two servers run: their members are told the room is
/// split, then whole again; a line said meanwhile is heard at once on its own server (held,
/// without a number) and once, numbered, on the other after; the numbering goes on, dense,
/// whether Redis kept the room (AOF) or not.
fn redis_restarts(aof: bool) {
    let Some(mut redis) = RedisServer::start_with(aof) else {
        return;
    };
    let (a, a_addr) = clustered(&redis, "sala", &[]);
    let (_b, b_addr) = clustered(&redis, "sala", &[]);
    let mut ana = Peer::structured(a_addr, "ana");
    let mut bia = Peer::structured(b_addr, "bia");
    ana.say("m1");
    assert_eq!(messages(&mut bia, 1), [(1, "m1".to_string())]);
    assert_eq!(messages(&mut ana, 1), [(1, "m1".to_string())]);
    redis.kill();
    a.wait_for(LIMIT, |line| line.contains("lost Redis"))
        .expect("the console says Redis is lost");
    let split = ana.frame_where(|f| f["type"] == "notice");
    assert!(
        split["text"]
            .as_str()
            .unwrap()
            .contains("the room is split"),
        "{split}"
    );
    ana.say("m2");
    let held = ana.frame_where(|f| f["type"] == "msg");
    assert_eq!(
        (&held["seq"], &held["held"]),
        (&0.into(), &true.into()),
        "{held}"
    );
    redis.restart();
    a.wait_for(LIMIT, |line| line.contains("is back"))
        .expect("the console says Redis is back");
    let back = bia.frame_where(|f| {
        f["type"] == "notice" && f["text"].as_str().unwrap().contains("whole again")
    });
    assert!(back["text"].as_str().unwrap().contains("follows"), "{back}");
    assert_eq!(messages(&mut bia, 1), [(2, "m2".to_string())]);
    bia.say("m3");
    let expected = [(3, "m3".to_string())];
    assert_eq!(messages(&mut ana, 1), expected, "m2 not again");
    assert_eq!(messages(&mut bia, 1), expected);
}

#[test]
fn redis_restarted_with_its_aof_while_servers_run_loses_and_repeats_nothing() {
    redis_restarts(true);
}

#[test]
fn redis_restarted_empty_while_servers_run_never_gives_a_number_twice() {
    redis_restarts(false);
}

/// A burst far longer than the stream keeps is stored no faster than the servers read it back
/// (each publisher waits for every live server's reader): the members of both servers get it
/// whole, in order.
#[test]
fn a_burst_longer_than_the_stream_keeps_reaches_every_server_whole() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    // Trimmed to the length asked, not to Redis's nodes of 100 entries.
    redis.cli(&["CONFIG", "SET", "stream-node-max-entries", "4"]);
    let url = redis.url();
    let args = [
        "--cluster",
        &url,
        "--room",
        "sala",
        "--history",
        "10",
        "--rate-limit",
        "off",
    ];
    let start = || {
        Serve::new(&args)
            .env("SOQUETE_CLUSTER_STREAM_LEN", "8")
            .start()
    };
    let ((_a, addr), (_b, far)) = (start(), start());
    let mut listeners = [
        Member::join(addr, "near", false),
        Member::join(far, "far", false),
    ];
    let mut sender = Member::join(addr, "sender", false);
    let count = 3000;
    let burst: String = (0..count).map(|n| format!("m-{n}\n")).collect();
    std::io::Write::write_all(&mut sender.peer.writer, burst.as_bytes()).unwrap();
    let expected: Vec<String> = (0..count).map(|n| format!("m-{n}")).collect();
    for listener in &mut listeners {
        let heard = listener.heard(count);
        let texts: Vec<String> = heard.into_iter().map(|(_, text)| text).collect();
        assert!(texts == expected, "{}: lost or reordered", listener.tag);
    }
}
