//! Names people cannot fake, and lines that cannot be reordered, against a real `serve`: a name
//! that looks like one in use or like `server` is refused, whatever the client; a bad `--name`
//! is a one-line usage error; a Trojan Source line reaches nc and `soquete chat` neutralised.

use std::io::Write;
use std::net::SocketAddr;

use serde_json::{Value, json};

use crate::support::peer::Peer;
use crate::support::process::{Running, lines_until, soquete};
use crate::support::serve::start_server;
use crate::support::tmux::{Tmux, in_shell};
use crate::support::{LIMIT, require, tool};

/// A structured client that says hello as `name`: the error it gets, and its welcome.
fn refused_hello(addr: SocketAddr, name: &str) -> (Value, Value) {
    let mut peer = Peer::connect(addr);
    peer.send_json(json!({"type": "hello", "version": 1, "name": name}));
    let error = peer.frame_where(|f| f["type"] == "error");
    let welcome = peer.frame_where(|f| f["type"] == "welcome");
    (error, welcome)
}

#[test]
fn names_that_look_like_a_member_or_the_server_are_taken_in_a_real_room() {
    // The console has another name: `server` is reserved all the same.
    let (_server, addr) = start_server(&["--name", "mesa"]);
    let target = addr.to_string();
    let ana = Running::start_with_stdin(&["chat", "--name", "ana", &target]);
    lines_until(&ana.lines, |line| line.contains("you are ana"));

    for (wish, like) in [
        ("ＡＮＡ", "ana"),
        ("аnа", "ana"),
        ("sеrver", "server"),
        ("mеsa", "mesa"),
    ] {
        let (error, welcome) = refused_hello(addr, wish);
        assert_eq!(error["code"], "name_taken", "{wish}: {error}");
        let message = error["message"].as_str().unwrap();
        assert!(message.contains(&format!("looks like {like}")), "{message}");
        assert!(
            welcome["name"].as_str().unwrap().starts_with("guest-"),
            "{welcome}"
        );
    }

    // `soquete chat` asking for Cyrillic `sеrver` is told so and joins as a guest.
    let cyrillic = Running::start_with_stdin(&["chat", "--name", "sеrver", &target]);
    let seen = lines_until(&cyrillic.lines, |line| line.contains("you are guest-"));
    assert!(
        seen.iter()
            .any(|l| l.starts_with("! ") && l.contains("looks like server")),
        "{seen:?}"
    );

    // A raw client's /nick goes through the same rule.
    let (mut raw, _) = Peer::raw(addr);
    raw.send("/nick SЕRVER");
    let line = raw.line_where(|l| l.starts_with("! "));
    assert!(line.contains("looks like server"), "{line}");

    // NFD `josé` is kept as NFC, and NFC `josé` is then the same name.
    let (_jose, welcome) = Peer::join(
        addr,
        json!({"type": "hello", "version": 1, "name": "jose\u{301}"}),
    );
    assert_eq!(welcome["name"], "jos\u{e9}");
    let (error, _) = refused_hello(addr, "jos\u{e9}");
    assert_eq!(error["code"], "name_taken", "{error}");
}

#[test]
fn an_invisible_name_is_refused_by_code_point_without_showing_it() {
    let (_server, addr) = start_server(&[]);
    for (wish, code) in [
        ("ana\u{200b}", "U+200B"),
        ("an\u{ad}a", "U+00AD"),
        ("ana\u{202e}", "U+202E"),
        ("\u{3164}", "U+3164"),
    ] {
        let (error, _) = refused_hello(addr, wish);
        assert_eq!(error["code"], "bad_name", "{error}");
        let message = error["message"].as_str().unwrap();
        assert!(message.contains(code) && message.is_ascii(), "{message:?}");
    }
}

#[test]
fn a_bad_name_on_the_command_line_is_a_one_line_usage_error() {
    for (name, code) in [
        ("ana\u{200b}", "U+200B"),
        ("\u{3164}", "U+3164"),
        ("a\u{202e}b", "U+202E"),
        ("\u{301}ana", "U+0301"),
    ] {
        for args in [
            vec!["chat", "--name", name, "127.0.0.1:9"],
            vec!["serve", "--port", "0", "--name", name],
        ] {
            let output = soquete().args(&args).timeout(LIMIT).output().unwrap();
            assert_eq!(output.status.code(), Some(2), "{args:?}");
            let stderr = String::from_utf8(output.stderr).unwrap();
            assert_eq!(stderr.lines().count(), 1, "{stderr}");
            assert!(stderr.starts_with("soquete: "), "{stderr}");
            assert!(stderr.contains(code) && stderr.is_ascii(), "{stderr:?}");
        }
    }
}

/// Trojan Source: what the line shows is not what it says once the overrides reorder it.
const TROJAN: &str = "access \u{202e}\u{2066}denied\u{2069}\u{2066} granted \u{202c}end";

/// True when `line` holds no bidi embedding, override or isolate, and U+FFFD where they were.
fn neutralised(line: &str) -> bool {
    !line.contains(|c| matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'))
        && line.contains("access \u{fffd}\u{fffd}denied\u{fffd}\u{fffd} granted \u{fffd}end")
}

#[test]
fn a_trojan_source_line_reaches_nc_and_soquete_chat_neutralised() {
    if !require(tool("nc"), "nc (netcat-openbsd)") {
        return;
    }
    let (_server, addr) = start_server(&[]);
    let port = addr.port().to_string();
    let mut nc = Running::program("nc", &["127.0.0.1", &port]);
    let mut nc_in = nc.child.stdin.take().unwrap();
    nc_in.write_all(b"/nick nina\n").unwrap();
    nc.wait_for(LIMIT, |line| line.contains("now known as nina"))
        .expect("nc is named");
    let Some(tmux) = Tmux::start("trojan", &in_shell(&["--name", "ana", &addr.to_string()])) else {
        return;
    };
    tmux.wait_screen("the welcome", |screen| {
        screen.iter().any(|l| l.starts_with("* welcome to"))
    });

    let (mut eve, _) = Peer::raw(addr);
    eve.send("/nick eve");
    eve.line_where(|l| l.contains("now known as eve"));
    eve.send(TROJAN);
    let screen = tmux.wait_screen("eve's line", |screen| {
        screen.iter().any(|l| l.contains("<eve> "))
    });
    let line = screen.iter().find(|l| l.contains("<eve> ")).unwrap();
    assert!(neutralised(line), "soquete chat shows {line:?}");
    let line = nc
        .wait_for(LIMIT, |line| line.contains("<eve> "))
        .expect("nc hears eve");
    assert!(neutralised(&line), "nc shows {line:?}");
}
