//! The test line every client sends and every receiver checks, byte for byte:
//! `c0017 0000123 0000001234567 ppp…p` (sender, per-sender sequence, send time in ns since the
//! generator started, padding of one letter chosen by sender and sequence), and the `h0017`
//! hello of the setup.

use std::io::Write;

/// Length of a test line's header, `c0017 0000123 0000001234567 `, before the padding.
pub const HEADER: usize = 28;

/// Bytes of a test line, newline included, unless `--size` says otherwise.
pub const DEFAULT_SIZE: usize = 64;

/// What one line's body turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub enum Body {
    /// `h0017`: client 17 says hello during the setup.
    Hello(usize),
    /// A test line, well formed to the last byte.
    Test { from: usize, seq: u32, sent_ns: u64 },
}

/// The decimal number of `bytes`, all of them digits; `None` for anything else.
fn digits(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() {
        return None;
    }
    let mut value = 0u64;
    for &b in bytes {
        if !b.is_ascii_digit() {
            return None;
        }
        value = value * 10 + u64::from(b - b'0');
    }
    Some(value)
}

/// The padding letter of line `seq` of sender `from`: it changes from line to line, so two lines
/// glued or cut do not look whole.
fn pad_char(from: usize, seq: u32) -> u8 {
    b'a' + ((from as u64 * 7 + u64::from(seq)) % 26) as u8
}

/// Reads a line body (without its newline) of a test run whose lines are `size` bytes long.
pub fn parse_body(body: &[u8], size: usize) -> Option<Body> {
    if body.len() == 5 && body[0] == b'h' {
        return digits(&body[1..]).map(|from| Body::Hello(from as usize));
    }
    if body.len() != size - 1
        || body[0] != b'c'
        || body[5] != b' '
        || body[13] != b' '
        || body[27] != b' '
    {
        return None;
    }
    let from = digits(&body[1..5])? as usize;
    let seq = digits(&body[6..13])? as u32;
    let sent_ns = digits(&body[14..27])?;
    let pad = pad_char(from, seq);
    if body[HEADER..].iter().any(|&b| b != pad) {
        return None;
    }
    Some(Body::Test { from, seq, sent_ns })
}

/// Appends test line `seq` of sender `from`, sent at `sent_ns`, `size` bytes with the newline.
pub fn write_line(out: &mut Vec<u8>, from: usize, seq: u32, sent_ns: u64, size: usize) {
    let start = out.len();
    let _ = write!(
        out,
        "c{from:04} {seq:07} {:013} ",
        sent_ns % 10_000_000_000_000
    );
    debug_assert_eq!(out.len() - start, HEADER);
    out.resize(start + size - 1, pad_char(from, seq));
    out.push(b'\n');
}

/// Appends the hello of client `from`.
pub fn write_hello(out: &mut Vec<u8>, from: usize) {
    let _ = writeln!(out, "h{from:04}");
}
