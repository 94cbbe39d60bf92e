//! A member's input: chat lines and commands (`/nick`, `/who`, `/me`, `/help`, `/quit`, or
//! their frames), cleaned of terminal controls and turned into what the room does; echo mode's
//! replies.

use crate::chat::protocol::{ByeCode, Command, HELP, ServerFrame, TelnetRequests, parse_command};
use crate::net::sanitize::neutralize;

use crate::chat::server::config::Mode;
use crate::chat::server::event::{Ending, Input, Kind};

use super::Hub;
use super::client::Client;

impl Hub {
    /// Lines that arrived together from one client. In group and broker mode, a run of plain
    /// chat lines goes out as one batch: stamped one by one, sent to each member in one piece.
    pub(super) fn inputs(&mut self, id: u64, inputs: Vec<Input>) {
        if !self.settings.mode.is_room() {
            for input in inputs {
                self.input(id, input);
            }
            return;
        }
        let verbatim = self.relays_verbatim(id);
        let mut run = Vec::new();
        for input in inputs {
            let input = clean_input(input);
            match &input {
                Input::Text(_) if verbatim => {
                    let Input::Text(text) = input else {
                        unreachable!()
                    };
                    run.push((text, false));
                }
                Input::Text(text) if text.trim().is_empty() => {}
                Input::Text(text) => match parse_command(text) {
                    None => {
                        let Input::Text(text) = input else {
                            unreachable!()
                        };
                        run.push((text, false));
                    }
                    Some(Command::Me(action)) if !action.is_empty() => run.push((action, true)),
                    Some(_) => {
                        self.said_together(id, std::mem::take(&mut run));
                        self.input(id, input);
                    }
                },
                _ => {
                    self.said_together(id, std::mem::take(&mut run));
                    self.input(id, input);
                }
            }
        }
        self.said_together(id, run);
    }

    /// One input of a named client: said to the room (or the console), or a command run.
    pub(super) fn input(&mut self, id: u64, input: Input) {
        if !self.clients.get(&id).is_some_and(Client::named) {
            return;
        }
        let input = clean_input(input);
        if self.settings.mode == Mode::Echo {
            return self.echo(id, input);
        }
        match input {
            Input::Text(text) if self.relays_verbatim(id) => self.said(id, text, false),
            Input::Text(text) => {
                if text.trim().is_empty() {
                    return;
                }
                match parse_command(&text) {
                    Some(Command::Nick(name)) => self.nick(id, &name),
                    Some(Command::Who) => self.who(id),
                    Some(Command::Help) => self.help(id),
                    Some(Command::Quit) => self.quit(id),
                    Some(Command::Me(action)) if action.is_empty() => {
                        self.refuse(id, "usage", "/me needs an action: /me waves")
                    }
                    Some(Command::Me(action)) => self.said(id, action, true),
                    Some(Command::Status) | Some(Command::Unknown(_)) => {
                        let word = text.split_whitespace().next().unwrap_or("").to_string();
                        self.refuse(
                            id,
                            "unknown_command",
                            &format!("unknown command {word}; /help lists commands"),
                        )
                    }
                    None => self.said(id, text, false),
                }
            }
            Input::Nick(name) => self.nick(id, &name),
            Input::Who => self.who(id),
            Input::Quit => self.quit(id),
            Input::Bad(message) => self.refuse(id, "bad_frame", &message),
        }
    }

    /// A broker relays a raw client's every line as it came, blank ones and `/…` included: it
    /// runs no commands for it.
    fn relays_verbatim(&self, id: u64) -> bool {
        self.settings.mode == Mode::Broker
            && self
                .clients
                .get(&id)
                .is_some_and(|c| c.kind != Kind::Structured)
    }

    /// A client said something (or did, with `/me`).
    fn said(&mut self, id: u64, text: String, action: bool) {
        match self.settings.mode {
            Mode::Single => self.single_said(id, text, action),
            _ => self.said_together(id, vec![(text, action)]),
        }
    }

    /// Echo mode: a line goes back to its sender, stamped for a structured one.
    fn echo(&mut self, id: u64, input: Input) {
        let (name, kind) = (self.clients[&id].name.clone(), self.clients[&id].kind);
        match input {
            Input::Text(text) => {
                let frame = self.msg(name, text.clone(), false);
                self.console.message(&frame);
                if kind == Kind::Structured {
                    self.send(id, &frame);
                } else {
                    let mut line = text.clone().into_bytes();
                    line.push(b'\n');
                    self.deliver(id, line.into());
                }
                if text.trim() == "exit" {
                    self.quit(id);
                }
            }
            Input::Quit => self.quit(id),
            Input::Nick(_) | Input::Who => {
                self.refuse(id, "unsupported", "echo mode only sends lines back")
            }
            Input::Bad(message) => self.refuse(id, "bad_frame", &message),
        }
    }

    /// `/who`: the console, then every member (in several frames in a large room).
    fn who(&mut self, id: u64) {
        for frame in ServerFrame::who_pages(self.members()) {
            self.send(id, &frame);
        }
    }

    /// `/help`: the commands a client has, one notice each.
    fn help(&mut self, id: u64) {
        for line in HELP {
            self.send(
                id,
                &ServerFrame::Notice {
                    text: (*line).to_string(),
                },
            );
        }
    }

    /// `/quit` or `exit`: `bye`, then the connection closes after it.
    fn quit(&mut self, id: u64) {
        self.send(
            id,
            &ServerFrame::Bye {
                reason: "you left".into(),
                code: ByeCode::Quit,
            },
        );
        self.end_session(id);
        self.remove(id, "quit", Ending::Graceful);
    }

    /// What a raw client's telnet asked for: the answer goes out as it is (after Ctrl-C,
    /// telnet shows nothing until its timing mark is answered). Ctrl-C does not leave the room:
    /// the client is told what does. AYT gets a visible yes.
    pub(super) fn telnet(&mut self, id: u64, requests: TelnetRequests) {
        if !requests.answer.is_empty() {
            self.deliver(id, requests.answer.into());
        }
        if self.settings.mode == Mode::Echo {
            return;
        }
        if requests.interrupted {
            let text = "interrupting (Ctrl-C) does not leave the chat: \
                        type /quit (or, in telnet, Ctrl-] then quit)";
            self.send(id, &ServerFrame::Notice { text: text.into() });
        }
        if requests.are_you_there {
            let text = "yes, the chat server is here";
            self.send(id, &ServerFrame::Notice { text: text.into() });
        }
    }

    /// Tells one client that what it sent was refused.
    pub(super) fn refuse(&mut self, id: u64, code: &str, message: &str) {
        self.send(
            id,
            &ServerFrame::Error {
                code: code.into(),
                message: message.into(),
            },
        );
    }
}

/// Nobody's terminal (the console's included) may be driven by what a client sends; a line break
/// inside a frame's text would let it forge a second line for raw readers.
fn clean_input(input: Input) -> Input {
    match input {
        // Printable ASCII, the usual line, has nothing to neutralise.
        Input::Text(text) if text.bytes().all(|b| (b' '..=b'~').contains(&b)) => Input::Text(text),
        Input::Text(text) => Input::Text(neutralize(&text.replace(['\n', '\r'], " ")).into_owned()),
        Input::Bad(message) => Input::Bad(neutralize(&message).into_owned()),
        input => input,
    }
}
