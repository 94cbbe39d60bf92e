//! What the person at the server console asks of the hub: a line to say, or a console command
//! (`/status`, `/who`, `/help`); and the facts `/status` is drawn from.

use crossbeam_channel::Sender;

use crate::chat::protocol::{Command, ServerFrame, parse_command};
use crate::output::Style;

use crate::chat::server::config::Mode;
use crate::chat::server::outbox::Stats;
use crate::chat::server::status::{self, Row, Traffic};

use super::Hub;
use super::client::Client;

impl Hub {
    /// A line typed at the console.
    pub(super) fn console_line(&mut self, line: &str) {
        let line = line.trim_end_matches(['\r', '\n']);
        if line.trim() == "/reload" {
            let said = match &self.settings.tls {
                Some(tls) => tls.reload_lines(&tls.reload()),
                None => vec![
                    "! /reload reads --tls-cert and --tls-key again: this server has no TLS".into(),
                ],
            };
            for line in said {
                self.console.event(&line);
            }
            return;
        }
        match parse_command(line) {
            Some(Command::Status) => {
                let table = status::table(&self.status());
                self.console.table(&table, Style::for_stdout());
                if let Some(ddns) = &self.settings.ddns {
                    self.console.event(&ddns.line());
                }
                if let Some(tls) = &self.settings.tls {
                    let print = tls.fingerprint();
                    self.console
                        .event(&format!("tls certificate {print} ({})", tls.origin));
                }
            }
            Some(Command::Who) => {
                for frame in ServerFrame::who_pages(self.members()) {
                    self.console.message(&frame);
                }
            }
            Some(Command::Help) => {
                for text in CONSOLE_HELP {
                    self.console.event(text);
                }
            }
            _ if self.settings.mode == Mode::Single => self.single_console(line),
            _ if self.settings.mode == Mode::Echo => self
                .console
                .event("! echo mode: the console only runs /status, /who and /help"),
            Some(Command::Me(action)) if !action.is_empty() && self.is_shared() => {
                let name = self.settings.name.clone();
                self.said_shared(super::shared::CONSOLE, &name, vec![(action, true)]);
            }
            None if !line.trim().is_empty() && self.is_shared() => {
                let name = self.settings.name.clone();
                self.said_shared(
                    super::shared::CONSOLE,
                    &name,
                    vec![(line.to_string(), false)],
                );
            }
            Some(Command::Me(action)) if !action.is_empty() => {
                let frame = self.msg(self.settings.name.clone(), action, true);
                let json = self.record(&frame);
                self.fan_out(&frame, Some(json), None);
            }
            Some(Command::Quit) => self.console.event("! Ctrl-C stops the server"),
            Some(_) => self
                .console
                .event("! not a console command; /help lists them"),
            None if line.trim().is_empty() => {}
            None => {
                let frame = self.msg(self.settings.name.clone(), line.to_string(), false);
                let json = self.record(&frame);
                self.fan_out(&frame, Some(json), None);
            }
        }
    }

    /// The rows of `/status`: the listening socket, then every accepted one.
    fn status(&self) -> Vec<Row> {
        let listen = Row {
            state: "listen".into(),
            local: self.settings.listening.to_string(),
            peer: "*:*".into(),
            name: self.settings.name.clone(),
            kind: self.settings.mode.name().into(),
            tls: match &self.settings.tls {
                Some(tls) if tls.optional => "optional".into(),
                Some(_) => "on".into(),
                None => "-".into(),
            },
            since: self.started,
            traffic: None,
        };
        let clients = self.clients.iter().map(|(&id, client)| {
            let stats = &client.stats;
            Row {
                state: self.state_of(id),
                local: client.local.to_string(),
                peer: client.peer.to_string(),
                name: if client.named() {
                    client.name.clone()
                } else {
                    "-".into()
                },
                kind: client.kind.label().into(),
                tls: match stats.tls.get() {
                    Some(version) => version.to_string(),
                    // With --tls-optional: a client that came in plain text.
                    None if self.settings.tls.is_some() => "plain".into(),
                    None => "-".into(),
                },
                since: client.since,
                traffic: Some(Traffic {
                    msgs_in: Stats::get(&stats.msgs_in),
                    msgs_out: Stats::get(&stats.msgs_out),
                    bytes_in: Stats::get(&stats.bytes_in),
                    bytes_out: Stats::get(&stats.bytes_out),
                    queue: client.outbox.as_ref().map_or(0, Sender::len),
                }),
            }
        });
        std::iter::once(listen).chain(clients).collect()
    }

    /// A client's state in `/status`: its place in single mode's line, else joined or not.
    fn state_of(&self, id: u64) -> String {
        match self.settings.mode {
            Mode::Single => self.session.state_of(id),
            _ if self.clients.get(&id).is_some_and(Client::named) => "member".into(),
            _ => "new".into(),
        }
    }
}

/// What the console's `/help` prints.
const CONSOLE_HELP: &[&str] = &[
    "a line       say it to the room (group, broker) or to the client being served (single)",
    "/me ACTION   say what you are doing (group)",
    "/status      the listening socket and every accepted one, with traffic and queue depth (and the --ddns check)",
    "/who         who is connected",
    "/reload      serve the --tls-cert and --tls-key files again (new connections get them)",
    "exit         end the current session and serve the next client (single)",
    "Ctrl-C       stop the server",
];
