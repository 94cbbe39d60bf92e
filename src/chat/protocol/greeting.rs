//! The first line of a connection: a soquete client says `hello` in JSON, anything else (nc,
//! telnet, a Python socket) is a raw client whose first line is already a message.

use super::ClientFrame;

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
        token: Option<String>,
        probe: bool,
    },
    /// Anything else (nc, telnet, a Python socket): plain text, and this line is its first message.
    Raw(String),
}

/// Tells a structured client from a raw one by its first line, without any flag on either side.
pub fn classify_first_line(line: &str) -> Greeting {
    if line.trim_start().starts_with('{')
        && let Ok(ClientFrame::Hello {
            name,
            last_seq,
            epoch,
            token,
            probe,
            ..
        }) = serde_json::from_str(line)
    {
        return Greeting::Structured {
            name,
            last_seq,
            epoch,
            token,
            probe,
        };
    }
    Greeting::Raw(line.to_string())
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
    }
}
