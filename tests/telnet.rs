//! telnet as a chat client of `soquete serve`: its commands (Ctrl-C's interrupt and timing mark)
//! never reach the room as text, and a telnet user who pressed Ctrl-C goes on chatting. With
//! the real telnet in a tmux pane, and with the bytes it sends replayed.

use std::io::{BufRead, Write};

use crate::support::peer::Peer;
use crate::support::serve::start_server;
use crate::support::tmux::Tmux;
use crate::support::{require, tool};

/// What telnet sends for Ctrl-C (captured from GNU inetutils telnet 2.4): IAC IP, then IAC DO
/// TIMING-MARK, after which it shows nothing until the server answers IAC WILL TIMING-MARK.
const CTRL_C: &[u8] = b"\xff\xf4\xff\xfd\x06";
const WILL_TIMING_MARK: &[u8] = b"\xff\xfb\x06";

#[test]
fn telnet_goes_on_chatting_after_ctrl_c_and_the_room_sees_no_control_bytes() {
    if !require(tool("telnet"), "telnet") {
        return;
    }
    let (_server, addr) = start_server(&[]);
    let mut ana = Peer::structured(addr, "ana");
    let command = format!("telnet {} {}", addr.ip(), addr.port());
    let Some(tmux) = Tmux::start("telnet", &command) else {
        return;
    };
    tmux.wait_screen("the greeting", |screen| {
        screen
            .iter()
            .any(|l| l.starts_with("* soquete chat server"))
    });
    tmux.type_text("antes");
    tmux.press(&["Enter"]);
    let before = ana.frame_where(|f| f["type"] == "msg");
    assert_eq!(before["text"], "antes");

    tmux.press(&["C-c"]);
    // telnet shows what the server sends again: its timing mark was answered.
    tmux.wait_screen("the notice after Ctrl-C", |screen| {
        screen
            .iter()
            .any(|l| l.contains("does not leave the chat") && l.contains("/quit"))
    });
    tmux.type_text("depois");
    tmux.press(&["Enter"]);
    let after = ana.frame_where(|f| f["type"] == "msg");
    assert_eq!(after["text"], "depois", "no U+FFFD before it");

    ana.say("oi telnet");
    tmux.wait_screen("ana's message", |screen| {
        screen.iter().any(|l| l.ends_with("<ana> oi telnet"))
    });
}

#[test]
fn telnets_bytes_for_ctrl_c_are_answered_and_never_text() {
    let (_server, addr) = start_server(&[]);
    let mut ana = Peer::structured(addr, "ana");
    let (mut telnet, _) = Peer::raw(addr);
    telnet.writer.write_all(b"antes\r\n").unwrap();
    let before = ana.frame_where(|f| f["type"] == "msg");
    assert_eq!(before["text"], "antes");
    telnet.line_where(|l| l.starts_with("* welcome"));

    telnet.writer.write_all(CTRL_C).unwrap();
    let mut answer = Vec::new();
    telnet.reader.read_until(b'\n', &mut answer).unwrap();
    assert!(answer.starts_with(WILL_TIMING_MARK), "{answer:?}");
    let notice = String::from_utf8_lossy(&answer[WILL_TIMING_MARK.len()..]).into_owned();
    assert!(notice.starts_with("* interrupting (Ctrl-C)"), "{notice}");

    // Options telnet may ask for are refused, a subnegotiation vanishes, and a doubled 255 is
    // a byte (not UTF-8: U+FFFD).
    telnet
        .writer
        .write_all(b"\xff\xfd\x01\xff\xfa\x18\x00xterm\xff\xf0dep\xff\xffois\r\n")
        .unwrap();
    let after = ana.frame_where(|f| f["type"] == "msg");
    assert_eq!(after["text"], "dep\u{fffd}ois");
    let mut refusal = [0u8; 3];
    std::io::Read::read_exact(&mut telnet.reader, &mut refusal).unwrap();
    assert_eq!(refusal, *b"\xff\xfc\x01", "WONT ECHO");
}

#[test]
fn a_structured_client_gets_no_telnet_answers() {
    let (_server, addr) = start_server(&[]);
    let mut ana = Peer::structured(addr, "ana");
    // Not UTF-8, so not a frame: refused as any other garbage, and nothing answered.
    ana.writer.write_all(CTRL_C).unwrap();
    ana.writer.write_all(b"\n").unwrap();
    let error = ana.frame_where(|f| f["type"] == "error");
    assert_eq!(error["code"], "bad_frame");
    ana.say("ok");
    ana.frame_where(|f| f["type"] == "msg" && f["text"] == "ok");
}

#[test]
fn a_stray_subnegotiation_start_swallows_at_most_its_cap_and_later_lines_arrive() {
    let (_server, addr) = start_server(&[]);
    let mut ana = Peer::structured(addr, "ana");
    let (mut raw, _) = Peer::raw(addr);
    raw.send("antes");
    ana.frame_where(|f| f["type"] == "msg" && f["text"] == "antes");
    // Latin-1 "ÿú" is IAC SB, which starts a subnegotiation: it ends 256 bytes on at the most.
    let mut bytes = b"\xff\xfa".to_vec();
    for n in 0..40 {
        bytes.extend_from_slice(format!("linha {n:02}\n").as_bytes());
    }
    bytes.extend_from_slice(b"depois\n");
    raw.writer.write_all(&bytes).unwrap();
    let mut heard = Vec::new();
    ana.frames_until(&mut heard, |f| f["type"] == "msg" && f["text"] == "depois");
    let texts: Vec<&str> = heard.iter().map(|f| f["text"].as_str().unwrap()).collect();
    // 256 bytes are 28 lines of 9 bytes and the first 4 bytes of the 29th.
    let mut expected = vec!["a 28".to_string()];
    expected.extend((29..40).map(|n| format!("linha {n}")));
    expected.push("depois".into());
    assert_eq!(texts, expected);
}

#[test]
fn a_broker_relays_telnets_bytes_as_data_and_answers_nothing() {
    let (_server, addr) = start_server(&["--mode", "broker"]);
    let mut ana = Peer::connect(addr);
    let mut bob = Peer::connect(addr);
    // One accept thread, one event queue: eva's welcome means the others are known too.
    let mut eva = Peer::structured(addr, "eva");
    // "ÿú" in UTF-8 and in Latin-1 (IAC SB), and the bytes of telnet's Ctrl-C.
    ana.writer
        .write_all(b"\xc3\xbf\xc3\xba utf-8, \xff\xfa latin-1, \xff\xf4\xff\xfd\x06 ctrl-c\n")
        .unwrap();
    ana.send("depois");
    let latin1 = "\u{fffd}".repeat(2);
    let ctrl_c = "\u{fffd}".repeat(5);
    assert_eq!(
        bob.line(),
        format!("ÿú utf-8, {latin1} latin-1, {ctrl_c} ctrl-c"),
        "data, made safe as any other line, not commands"
    );
    assert_eq!(bob.line(), "depois");
    eva.say("de eva");
    assert_eq!(ana.line(), "de eva", "no telnet answer before it");
}
