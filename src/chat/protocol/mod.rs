//! The chat wire protocol, version 1 (docs/PROTOCOL.md): line framing (`lines`), the JSON frames
//! structured clients speak and the text lines raw clients (nc, telnet, a Python socket) read
//! (`frames`), how the first line tells the two apart (`greeting`), commands and name rules,
//! the telnet commands a raw client's telnet sends (`telnet`), and the room's password
//! (`password`).
//! Every item is re-exported here: `crate::chat::protocol::X` is the one path to it.

mod commands;
mod frames;
mod greeting;
mod lines;
mod names;
mod password;
mod secret;
mod telnet;

pub use commands::{Command, HELP, parse_command};
pub use frames::{
    ByeCode, ClientFrame, FRAME_ENVELOPE_BYTES, MAX_FRAME_BYTES, MEMBER_BYTES, Member, MsgEncoder,
    ServerFrame, WHO_PAGE,
};
pub use greeting::{Greeting, classify_first_line};
pub use lines::{Incoming, LineReader, MAX_LINE_BYTES};
pub use names::{MAX_NAME_CHARS, name_key, quoted_name, validate_name};
pub use password::{
    BAD_PASSWORD, MAX_PASSWORD_BYTES, PASSWORD_ENV, PASSWORD_PROMPT, PASSWORD_REQUIRED, Password,
    PasswordSource, TOO_MANY_TRIES,
};
pub use secret::Secret;
pub use telnet::TelnetRequests;

/// Protocol version spoken in `hello` and `welcome`.
pub const PROTOCOL_VERSION: u32 = 1;
/// The course's port, the default of `serve`, `chat` and `probe`.
pub use crate::net::DEFAULT_PORT;
/// How often the server sends structured clients a `ping` when nothing else was sent.
pub const HEARTBEAT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);
/// A structured client that hears nothing for this long takes the connection as lost.
pub const HEARTBEAT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);
/// How the line a plain client reads on a TLS-only port begins (`probe --chat` knows it by this).
pub const NEEDS_TLS: &str = "* this server needs TLS";

/// Whether `line` (from a server, before any welcome) is the one a soquete server on a TLS-only
/// port says to a plain client: `probe --chat` and `chat` without `--tls` both know it by this.
pub fn says_needs_tls(line: &str) -> bool {
    line.starts_with(NEEDS_TLS)
}
