//! Asking for the room's password on a terminal: a password-protected server's first line is
//! its prompt (`* password:`), sent at once. With no password given and a person at a terminal,
//! that first line is read before the line editor owns the terminal, and when it is the prompt
//! the person is asked, without echo, once per run. Anything else read meanwhile goes on to the
//! connection's reader, so nothing is lost.

use std::io::{self, IsTerminal, Read};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::chat::protocol::{MAX_FRAME_BYTES, PASSWORD_PROMPT, Password};
use crate::error::{Context, Error, Result};

/// How long the server's first line is waited for (a soquete server sends it at once; a silent
/// server, such as `nc -l`, only delays the start by this much).
pub const FIRST_LINE_WAIT: Duration = Duration::from_millis(500);

/// Whether the person at this terminal may be asked: stdin is a terminal.
pub fn can_ask() -> bool {
    io::stdin().is_terminal()
}

/// Reads the server's first line (at most [`FIRST_LINE_WAIT`]); when it is the password prompt,
/// asks for the password without echo. Returns the password asked for, if any, and the bytes
/// read that the connection's reader must still see (the prompt too: the session, seeing it,
/// sends the password).
pub fn ask_if_needed(
    reader: &mut dyn Read,
    tcp: &TcpStream,
    remote: SocketAddr,
) -> Result<(Option<Password>, Vec<u8>)> {
    let first = first_line(reader, tcp).with_context(|| format!("connection to {remote}"))?;
    let line = first.strip_suffix(b"\n").unwrap_or(&first);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line != PASSWORD_PROMPT.as_bytes() {
        return Ok((None, first));
    }
    let typed = rpassword::prompt_password(format!("password for the room at {remote}: "))
        .context("reading the password from the terminal")?;
    let password = Password::new(typed, "the password typed")
        .map_err(|err| Error::io("asking for the password", io::Error::other(err.to_string())))?;
    Ok((Some(password), first))
}

/// The bytes of the server's first line, its `\n` included, read one at a time so nothing after
/// it is taken; what came before the wait ran out when there is no whole line. `tcp` is the
/// socket beneath `reader` (the same, or under TLS), whose read timeout bounds the wait.
fn first_line(reader: &mut dyn Read, stream: &TcpStream) -> io::Result<Vec<u8>> {
    let deadline = Instant::now() + FIRST_LINE_WAIT;
    let mut bytes = Vec::new();
    let mut byte = [0u8; 1];
    while bytes.len() < MAX_FRAME_BYTES && !bytes.ends_with(b"\n") {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        stream.set_read_timeout(Some(left))?;
        match reader.read(&mut byte) {
            Ok(0) => break,
            Ok(_) => bytes.push(byte[0]),
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                break;
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            // The reader meets the failure again and says so.
            Err(_) => break,
        }
    }
    stream.set_read_timeout(None)?;
    Ok(bytes)
}
