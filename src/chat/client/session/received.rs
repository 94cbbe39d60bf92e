//! What each line from the server does: a soquete server's frames (welcome, messages, notices,
//! the password's questions, bye), shown once and in order; a server that does not speak
//! soquete is handed to `plain`.

use super::{Action, End, LocalEvent, Output, Session, state};
use crate::chat::protocol::{
    BAD_PASSWORD, ByeCode, PASSWORD_ENV, PASSWORD_PROMPT, PASSWORD_REQUIRED, ServerFrame,
    TOO_MANY_TRIES, says_needs_tls,
};
use crate::net::sanitize::neutralize;

impl Session {
    pub(super) fn received(&mut self, line: &str, actions: &mut Vec<Action>) {
        if self.plain() {
            self.received_plain(line, actions);
            return;
        }
        // A soquete server on a TLS-only port: it closes, and so would every attempt again.
        if !self.welcomed && says_needs_tls(line) {
            actions.push(Action::Show(Output::State {
                human: None,
                json: LocalEvent::Line {
                    text: line,
                    partial: false,
                }
                .to_json(),
            }));
            actions.push(state(None, LocalEvent::Lost { error: "needs TLS" }));
            actions.push(Action::Finish(End::NeedsTls));
            self.finished = true;
            return;
        }
        if self.first_line(line, actions) {
            return;
        }
        let Ok(frame) = serde_json::from_str::<ServerFrame>(line) else {
            // The raw clients' password prompt, come too late: not shown.
            if line == PASSWORD_PROMPT && !self.welcomed {
                return;
            }
            self.unknown_line(line, actions);
            return;
        };
        match &frame {
            // The room needs a password and ours is missing or wrong: the server closes, and
            // trying again would only be slowed down.
            ServerFrame::Error { code, message }
                if !self.welcomed
                    && [PASSWORD_REQUIRED, BAD_PASSWORD, TOO_MANY_TRIES]
                        .contains(&code.as_str()) =>
            {
                actions.push(Action::Show(Output::State {
                    human: None,
                    json: line.to_string(),
                }));
                // Printed once, by main: nothing from the network drives the terminal.
                let message = neutralize(message);
                let reason = match (code.as_str(), &self.settings.password) {
                    (PASSWORD_REQUIRED, None) => {
                        format!("{message}; give it with --password-file FILE or {PASSWORD_ENV}")
                    }
                    (PASSWORD_REQUIRED, Some(_)) if self.password_withheld() => {
                        format!("{message}; its prompt came too late, so the password was not sent")
                    }
                    _ => message.into_owned(),
                };
                actions.push(state(None, LocalEvent::Lost { error: &reason }));
                actions.push(Action::Finish(End::Denied(reason)));
                self.finished = true;
                return;
            }
            // Refused (`--max-clients`): not the end, and not a loss either; the client's own
            // line says so (the frame goes to `--json` output only).
            ServerFrame::Bye {
                code: ByeCode::Full,
                ..
            } if !self.welcomed => {
                actions.push(Action::Show(Output::State {
                    human: None,
                    json: line.to_string(),
                }));
                self.refused(actions);
                return;
            }
            // The heartbeat only proves the connection alive; it is never shown. An idle server
            // also means the replay after a re-join is over.
            ServerFrame::Ping => {
                if self.resume_until.is_some() {
                    self.resumed(actions);
                }
                return;
            }
            // A replay overlaps what we saw before the loss: each message is shown once (a held
            // one, of a split room, has no number yet: always shown).
            ServerFrame::Msg { seq, held, .. } if !held && *seq <= self.last_seq => return,
            _ => {}
        }
        let human = String::from_utf8_lossy(&frame.to_text_line())
            .trim_end()
            .to_string();
        actions.push(Action::Show(Output::Data {
            human,
            json: without_token(&frame).unwrap_or_else(|| line.to_string()),
        }));
        match frame {
            ServerFrame::Welcome {
                name,
                mode,
                last_seq,
                epoch,
                missed,
                token,
                ..
            } => {
                let fresh = self.new_session(token);
                self.welcomed(name, &mode, (last_seq, epoch), (missed, fresh), actions);
            }
            ServerFrame::Nick { old, new, .. } if old == self.name => {
                self.name = new.clone();
                self.names.push(new.clone());
                actions.push(Action::Rename(new));
                self.answered(actions);
            }
            ServerFrame::Msg {
                seq,
                from,
                text,
                action,
                held,
                ..
            } => {
                if !held {
                    self.last_seq = seq;
                }
                if self.names.contains(&from) {
                    // Our own message coming back is not the other side's answer, but it
                    // confirms that message and every one we sent before it.
                    self.pending.confirm(&text, action);
                } else {
                    self.answered(actions);
                }
                if !held && self.resume_until.is_some_and(|until| seq >= until) {
                    self.resumed(actions);
                }
            }
            ServerFrame::Bye { reason, code } => {
                let rejoining = self.connections > 1 && !self.welcomed;
                let resumable = self.settings.reconnect.is_some() && !self.leaving;
                if resumable && (rejoining || code == ByeCode::Shutdown) {
                    // The server is going away (or refused the re-join): we did not ask to leave.
                    self.connection_lost(&format!("bye: {reason}"), true, actions);
                } else {
                    self.finish(actions, End::Done, "server");
                }
            }
            _ => self.answered(actions),
        }
        if self.leaving && self.up && !self.finished {
            // Still working through our lines (an echo, a notice): no reason to give up yet.
            actions.push(Action::AwaitConfirmation);
        }
    }
}

/// A welcome that carries a token, as `--json` shows it: without the token.
fn without_token(frame: &ServerFrame) -> Option<String> {
    let ServerFrame::Welcome { token: Some(_), .. } = frame else {
        return None;
    };
    let mut shown = frame.clone();
    if let ServerFrame::Welcome { token, .. } = &mut shown {
        *token = None;
    }
    let line = shown.to_json_line();
    Some(String::from_utf8_lossy(line.trim_ascii_end()).into_owned())
}
