//! Clients that only listen: a raw connection that never writes (`nc host port` run to watch the
//! room) hears everything said from its connect on, and is a member of the room; a soquete
//! client that arrives meanwhile still gets frames only, from its welcome on.

use serde_json::{Value, json};

use crate::support::peer::Peer;
use crate::support::serve::start_server;

/// The number in each `<ana> line NNN` of `lines`, in the order they came.
fn numbered(lines: &[String]) -> Vec<u32> {
    lines
        .iter()
        .filter_map(|line| line.split_once("<ana> line ")?.1.parse().ok())
        .collect()
}

#[test]
fn a_raw_listener_hears_every_line_from_its_connect_on_and_is_listed_in_who() {
    let (_server, addr) = start_server(&["--rate-limit", "off"]);
    let mut ana = Peer::structured(addr, "ana");
    let say = |ana: &mut Peer, lines: std::ops::RangeInclusive<u32>| {
        for n in lines {
            ana.say(&format!("line {n:03}"));
        }
    };
    say(&mut ana, 1..=20);
    // Its greeting says the server has accepted it: from here on, nothing may be lost.
    let (mut listener, greeting) = Peer::raw(addr);
    assert!(greeting.starts_with("* soquete chat server"), "{greeting}");
    say(&mut ana, 21..=40);
    let mut late = Peer::connect(addr);
    assert!(late.line().starts_with("* soquete chat server"));
    say(&mut ana, 41..=60);
    // A soquete client says hello after the room spoke: its first line after the greeting
    // is its welcome, and after it come frames only, none from before the welcome.
    late.send_json(json!({"type": "hello", "version": 1, "name": "bia"}));
    let welcome: Value = serde_json::from_str(&late.line()).expect("JSON, from the welcome on");
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    let said = ana.messages(60);
    assert_eq!(said.last().unwrap()["text"], "line 060");

    // The listener never writes: after the join grace it is a member, listed in /who.
    let join = ana.frame_where(|f| f["type"] == "join" && f["name"] != "bia");
    let name = join["name"].as_str().unwrap().to_string();
    ana.send_json(json!({"type": "who"}));
    let who = ana.frame_where(|f| f["type"] == "who");
    let member = who["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name.as_str())
        .unwrap_or_else(|| panic!("{name} is listed: {who}"));
    assert_eq!(member["kind"], "-", "{who}");

    ana.say("marker");
    let mut heard = Vec::new();
    listener.line_where(|line| {
        heard.push(line.to_string());
        line.ends_with("<ana> marker")
    });
    let numbers = numbered(&heard);
    let first = *numbers.first().unwrap_or(&61);
    assert!(
        first <= 21,
        "lines said after its connect were lost: {heard:#?}"
    );
    assert_eq!(
        numbers,
        (first..=60).collect::<Vec<_>>(),
        "every line once, in order: {heard:#?}"
    );
    assert!(
        heard
            .iter()
            .any(|l| l.starts_with("* welcome to soquete") && l.contains(&name)),
        "{heard:#?}"
    );
    late.line_where(|line| {
        let frame: Value = serde_json::from_str(line).expect("frames only");
        assert!(
            frame["type"] != "msg" || frame["seq"].as_u64() > welcome["last_seq"].as_u64(),
            "nothing from before its welcome: {frame} after {welcome}"
        );
        frame["text"] == "marker"
    });
}
