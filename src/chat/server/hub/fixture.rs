//! A hub for unit tests, whose clients' outboxes a test reads directly.

use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crossbeam_channel::Receiver;

use crate::chat::server::cluster::{Link, Op, Publisher, Round};
use crate::chat::server::config::Mode;
use crate::chat::server::console::Console;
use crate::chat::server::event::{Accepted, Kind};
use crate::chat::server::history::History;
use crate::chat::server::outbox::Outgoing;
use crate::chat::server::throttle::RateLimit;

use super::client::Client;
use super::{Hub, Settings};

/// A hub in group mode whose clients' outboxes the test reads directly.
pub fn hub() -> Hub {
    hub_in(Mode::Group)
}

/// A hub in `mode`, keeping 100 messages for resuming clients.
pub fn hub_in(mode: Mode) -> Hub {
    let (console, _printer) = Console::new(None);
    let settings = Settings {
        mode,
        sync: false,
        name: "server".into(),
        listening: "127.0.0.1:65432".parse().unwrap(),
        rate_limit: RateLimit::Off,
        idle_timeout: None,
        tls: None,
        name_reserve: Duration::from_secs(60),
        ddns: None,
        cluster: None,
    };
    let (_room, room_wakes) = crossbeam_channel::bounded(1);
    Hub::new(settings, console, room_wakes, History::new(100), 0)
}

/// A hub in group mode sharing its room (`--cluster`) as server `ours`: what it hands the
/// publisher and the presence thread arrives on the two receivers.
pub fn shared_hub(ours: &str) -> (Hub, Receiver<Round>, Receiver<Op>) {
    let mut hub = hub();
    let (rounds, published) = crossbeam_channel::unbounded();
    let (presence, asked) = crossbeam_channel::unbounded();
    hub.settings.cluster = Some(Link {
        server: ours.into(),
        publisher: Publisher::new(rounds),
        presence,
        shown: "redis://127.0.0.1:6379".into(),
        guests: 0,
        remote: Vec::new(),
    });
    (hub, published, asked)
}

/// Adds a client (named unless `name` is empty); returns the queue its writer would read.
pub fn add(hub: &mut Hub, id: u64, name: &str, kind: Kind) -> Receiver<Outgoing> {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let stream = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (outbox, queue) = crossbeam_channel::unbounded();
    let accepted = Accepted {
        id,
        peer: stream.local_addr().unwrap(),
        local: stream.peer_addr().unwrap(),
        stream: Arc::new(stream),
        outbox,
        stats: Arc::default(),
    };
    let client = Client {
        kind,
        name: name.into(),
        ..Client::new(accepted)
    };
    hub.clients.insert(id, client);
    if !name.is_empty() {
        hub.names.insert(crate::chat::protocol::name_key(name), id);
    }
    hub.connected.fetch_add(1, Ordering::Relaxed);
    queue
}

/// Everything queued for a client, as one string.
pub fn text_of(queue: &Receiver<Outgoing>) -> String {
    queue
        .try_iter()
        .map(|out| String::from_utf8(out.concat()).unwrap())
        .collect()
}
