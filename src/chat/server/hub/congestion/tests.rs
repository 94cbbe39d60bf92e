//! Congestion: a client that does not drain in time is let go, and thousands at once need no
//! deep stack.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::chat::server::event::Kind;
use crate::chat::server::outbox::{OUTBOX_BYTES, STALL_TIMEOUT};

use super::super::fixture::{add, hub};

#[test]
fn a_congested_client_that_does_not_drain_in_time_is_let_go() {
    let mut hub = hub();
    let _sleeper = add(&mut hub, 1, "sleeper", Kind::Raw);
    let ana = add(&mut hub, 2, "ana", Kind::Structured);
    let frame = hub.msg("server".into(), "oi".into(), false);
    hub.broadcast(&frame, None);
    let stats = Arc::clone(&hub.clients[&1].stats);
    stats.queued_bytes.store(OUTBOX_BYTES, Ordering::Relaxed);
    hub.congested
        .insert(1, Instant::now() - STALL_TIMEOUT - Duration::from_millis(1));
    hub.wait_for_room();
    assert!(!hub.clients.contains_key(&1), "the sleeper is gone");
    assert!(stats.is_closed());
    let frames: Vec<serde_json::Value> = ana
        .try_iter()
        .map(|out| serde_json::from_slice(&out.concat()).unwrap())
        .collect();
    let types: Vec<&str> = frames.iter().map(|f| f["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["msg", "leave"]);
    let reason = frames[1]["reason"].as_str().unwrap();
    assert!(reason.starts_with("too slow"), "{reason}");
}

#[test]
fn thousands_of_clients_let_go_at_once_need_no_deep_stack() {
    const CLIENTS: u64 = 3000;
    let mut hub = hub();
    let mut queues = Vec::new();
    for id in 1..=CLIENTS {
        queues.push(add(&mut hub, id, &format!("c{id}"), Kind::Raw));
        hub.clients[&id]
            .stats
            .queued_bytes
            .store(OUTBOX_BYTES, Ordering::Relaxed);
        hub.congested.insert(id, Instant::now() - STALL_TIMEOUT);
    }
    // A small stack: the drops are a loop, not a recursion.
    let hub = std::thread::Builder::new()
        .stack_size(128 * 1024)
        .spawn(move || {
            hub.wait_for_room();
            hub
        })
        .unwrap()
        .join()
        .expect("no stack overflow");
    assert!(hub.clients.is_empty());
    assert!(hub.names.is_empty());
}

#[test]
fn a_congested_client_whose_connection_was_reset_holds_nobody_up_nor_is_let_go_as_slow() {
    let mut hub = hub();
    let _gone = add(&mut hub, 1, "gone", Kind::Raw);
    let stats = Arc::clone(&hub.clients[&1].stats);
    stats.queued_msgs.store(1, Ordering::Relaxed);
    stats.queued_bytes.store(OUTBOX_BYTES, Ordering::Relaxed);
    stats.progress.store(0, Ordering::Relaxed);
    // Its writer met a reset: its reader still has the client's last lines to read, and ends it.
    stats.lose("connection lost: reset".into());
    hub.congested.insert(1, Instant::now() - STALL_TIMEOUT);
    let started = Instant::now();
    hub.wait_for_room();
    assert!(started.elapsed() < STALL_TIMEOUT, "not waited for");
    assert_eq!(stats.stalled_for(), Duration::ZERO);
    hub.drop_stalled();
    assert!(hub.clients.contains_key(&1), "left for its reader to end");
    assert!(!stats.is_closed());
}
