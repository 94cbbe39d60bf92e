//! Sessions and reserved names: one address cannot push out another's reservations.

use crossbeam_channel::Receiver;

use crate::chat::protocol::{Greeting, Secret, name_key};
use crate::chat::server::event::{Ending, Kind};
use crate::chat::server::outbox::Outgoing;
use crate::chat::server::token::Reservations;

use super::super::Hub;
use super::super::fixture::{add, hub, text_of};

/// Connection `id`, from `ip`, says `hello` as `name` (with `token`, to resume).
fn hello(
    hub: &mut Hub,
    id: u64,
    ip: [u8; 4],
    name: &str,
    token: Option<&str>,
) -> Receiver<Outgoing> {
    let queue = add(hub, id, "", Kind::Pending);
    hub.clients.get_mut(&id).unwrap().peer = (ip, 40000).into();
    let greeting = Greeting::Structured {
        name: name.into(),
        last_seq: None,
        epoch: None,
        token: token.map(|token| Secret::new(token.into())),
        probe: false,
    };
    hub.first_line(id, greeting);
    queue
}

/// The frames queued for a structured client.
fn frames(queue: &Receiver<Outgoing>) -> Vec<serde_json::Value> {
    text_of(queue)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn one_address_filling_the_reservations_never_frees_another_members_name() {
    let mut hub = hub();
    hub.reserved = Reservations::with_limits(std::time::Duration::from_secs(60), 4, 16);
    // One address: many sessions, each a new name, then dropped.
    for n in 0..40 {
        let id = 100 + n;
        hello(&mut hub, id, [10, 0, 0, 66], &format!("x{n}"), None);
        hub.remove(id, "connection lost", Ending::Forced);
    }
    // Then ana's connection drops: her name is still kept for her.
    let ana = hello(&mut hub, 1, [10, 0, 0, 1], "ana", None);
    let welcome = frames(&ana).remove(0);
    let token = welcome["token"].as_str().unwrap().to_string();
    hub.remove(1, "connection lost", Ending::Forced);
    let intruder = hello(&mut hub, 2, [10, 0, 0, 66], "ana", None);
    let said = frames(&intruder);
    assert_eq!(said[0]["code"], "name_taken", "{said:?}");
    assert_ne!(hub.clients[&2].name, "ana");
    // The owner's token still takes it back.
    let back = hello(&mut hub, 3, [10, 0, 0, 9], "ana", Some(&token));
    assert_eq!(frames(&back)[0]["name"], "ana");
    // The attacker keeps its first four, and no more.
    assert!(
        hub.reserved.held(&name_key("x3")).is_some()
            && hub.reserved.held(&name_key("x4")).is_none()
    );
}
