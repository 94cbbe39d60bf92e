//! The first line of a connection: a soquete client says `hello` in JSON, anything else (nc,
//! telnet, a Python socket) is a raw client whose first line is already a message.

use super::{ClientFrame, Secret};
use crate::net::sanitize::neutralize;

/// What the first line of a connection says about the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Greeting {
    /// A soquete client: JSON from now on.
    Structured {
        name: String,
        last_seq: Option<u64>,
        /// The room `last_seq` belongs to, when the client knows it.
        epoch: Option<String>,
        /// The resume token the client was given, when it resumes a session.
        token: Option<Secret>,
        probe: bool,
    },
    /// A JSON object of type `hello` that is not a valid one (a field of the wrong type, one
    /// missing): why, fit for a terminal. It is never taken as text (it may carry a token or a
    /// password): the client gets `bad_frame` and the connection closes.
    BadHello(String),
    /// Anything else (nc, telnet, a Python socket): plain text, and this line is its first message.
    Raw(String),
}

/// Tells a structured client from a raw one by its first line, without any flag on either side.
pub fn classify_first_line(line: &str) -> Greeting {
    if !line.trim_start().starts_with('{') {
        return Greeting::Raw(line.to_string());
    }
    match serde_json::from_str(line) {
        Ok(ClientFrame::Hello {
            name,
            last_seq,
            epoch,
            token,
            probe,
            ..
        }) => Greeting::Structured {
            name,
            last_seq,
            epoch,
            token,
            probe,
        },
        Err(err) if says_hello(line) => {
            let why = format!("not a valid hello: {err}");
            Greeting::BadHello(neutralize(&why).into_owned())
        }
        _ => Greeting::Raw(line.to_string()),
    }
}

/// True when `line` is a JSON object whose `type` is `hello`, whatever else it holds.
fn says_hello(line: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(line).is_ok_and(|value| value["type"] == "hello")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_line_tells_structured_from_raw() {
        let hello = r#"{"type":"hello","version":1,"name":"ana"}"#;
        assert_eq!(
            classify_first_line(hello),
            Greeting::Structured {
                name: "ana".into(),
                last_seq: None,
                epoch: None,
                token: None,
                probe: false
            }
        );
        let probe = r#"{"type":"hello","version":1,"name":"p","probe":true}"#;
        assert!(matches!(
            classify_first_line(probe),
            Greeting::Structured { probe: true, .. }
        ));
        assert_eq!(
            classify_first_line("Hello Server"),
            Greeting::Raw("Hello Server".into())
        );
        assert_eq!(
            classify_first_line("{not json"),
            Greeting::Raw("{not json".into())
        );
        let msg = r#"{"type":"msg","text":"hi"}"#;
        assert_eq!(classify_first_line(msg), Greeting::Raw(msg.into()));
    }

    #[test]
    fn a_hello_that_does_not_parse_is_a_bad_hello_never_text() {
        for line in [
            r#"{"type":"hello","version":1,"name":"eve","last_seq":"x"}"#,
            r#"{"type":"hello","version":1,"name":"eve","token":123}"#,
            r#"{"type":"hello","name":"eve"}"#,
            r#"{"name":"eve","type":"hello","probe":"\u001b]0;x\u0007"}"#,
        ] {
            match classify_first_line(line) {
                Greeting::BadHello(why) => {
                    assert!(why.starts_with("not a valid hello"), "{why}");
                    assert!(!why.contains('\u{1b}'), "{why:?}");
                }
                other => panic!("{line}: {other:?}"),
            }
        }
    }
}
