//! Line framing: a byte stream cut into lines exactly as sent, whatever TCP does to the bytes,
//! with a bound on a line's length.

use std::io::{self, Read};

/// Longest line accepted; the rest of a longer line is discarded and its sender told.
pub const MAX_LINE_BYTES: usize = 8 * 1024;

/// What [`LineReader`] yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// One complete line, without its terminator; invalid UTF-8 replaced by U+FFFD.
    Line(String),
    /// A line longer than the limit: its first part was dropped, the rest is being discarded.
    Overlong,
}

/// Splits a byte stream into lines, whatever TCP does to the bytes: several lines in one read and
/// one line over many reads come out exactly as sent. Accepts `\n`, `\r\n` and telnet's `\r\0`;
/// a last line without a terminator is yielded at end of stream.
pub struct LineReader<R> {
    inner: R,
    buffer: Vec<u8>,
    /// Bytes of `buffer` already scanned for a terminator.
    scanned: usize,
    max_line: usize,
    discarding: bool,
    eof: bool,
}

impl<R: Read> LineReader<R> {
    /// A reader with the protocol's line limit.
    pub fn new(inner: R) -> Self {
        Self::with_limit(inner, MAX_LINE_BYTES)
    }

    /// A reader with a chosen line limit (bytes).
    pub fn with_limit(inner: R, max_line: usize) -> Self {
        LineReader {
            inner,
            buffer: Vec::with_capacity(1024),
            scanned: 0,
            max_line,
            discarding: false,
            eof: false,
        }
    }

    /// Bytes received that do not yet form a complete line.
    pub fn pending(&self) -> &[u8] {
        &self.buffer
    }

    /// Ends the stream here, as the peer's close would: what is pending becomes the last line.
    pub fn finish(&mut self) {
        self.eof = true;
    }

    /// The next line, `Ok(None)` at end of stream.
    pub fn next_line(&mut self) -> io::Result<Option<Incoming>> {
        loop {
            if let Some(end) = find_terminator(&self.buffer, self.scanned) {
                let (content_end, after) = terminator_bounds(&self.buffer, end);
                let overlong = content_end > self.max_line;
                let line = (!overlong).then(|| clean(&self.buffer[..content_end]));
                self.buffer.drain(..after);
                self.scanned = 0;
                if std::mem::take(&mut self.discarding) {
                    continue;
                }
                // A long line that arrived whole in one read is still too long.
                return Ok(Some(line.map_or(Incoming::Overlong, Incoming::Line)));
            }
            self.scanned = self.buffer.len();
            if self.buffer.len() > self.max_line {
                self.buffer.clear();
                self.scanned = 0;
                if !self.discarding {
                    self.discarding = true;
                    return Ok(Some(Incoming::Overlong));
                }
            }
            if self.eof {
                if self.buffer.is_empty() || std::mem::take(&mut self.discarding) {
                    self.buffer.clear();
                    return Ok(None);
                }
                let line = clean(&self.buffer);
                self.buffer.clear();
                self.scanned = 0;
                return Ok(Some(Incoming::Line(line)));
            }
            let mut chunk = [0u8; 4096];
            match self.inner.read(&mut chunk) {
                Ok(0) => self.eof = true,
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
    }
}

/// Index of the first `\n` at or after `from`, or of the `\0` of a `\r\0` pair.
fn find_terminator(bytes: &[u8], from: usize) -> Option<usize> {
    (from..bytes.len())
        .find(|&i| bytes[i] == b'\n' || (bytes[i] == 0 && i > 0 && bytes[i - 1] == b'\r'))
}

/// For a terminator at `end`: where the line's content ends and where the next line starts.
fn terminator_bounds(buffer: &[u8], end: usize) -> (usize, usize) {
    let content_end = if end > 0 && buffer[end - 1] == b'\r' {
        end - 1
    } else {
        end
    };
    (content_end, end + 1)
}

fn clean(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .trim_end_matches(['\r', '\0'])
        .replace('\0', "")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out its bytes in chunks of a fixed size.
    struct Dribble {
        bytes: Vec<u8>,
        at: usize,
        chunk: usize,
    }

    impl Read for Dribble {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.chunk.min(buf.len()).min(self.bytes.len() - self.at);
            buf[..n].copy_from_slice(&self.bytes[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    fn lines_of(bytes: &[u8], chunk: usize) -> Vec<Incoming> {
        let mut reader = LineReader::with_limit(
            Dribble {
                bytes: bytes.to_vec(),
                at: 0,
                chunk,
            },
            16,
        );
        let mut lines = Vec::new();
        while let Some(line) = reader.next_line().unwrap() {
            lines.push(line);
            assert!(lines.len() < 10_000);
        }
        lines
    }

    fn line(text: &str) -> Incoming {
        Incoming::Line(text.to_string())
    }

    #[test]
    fn many_lines_in_one_read_and_one_line_over_many_reads() {
        let bytes = b"one\ntwo\r\nthree\n";
        for chunk in [1, 2, 3, 4096] {
            assert_eq!(
                lines_of(bytes, chunk),
                [line("one"), line("two"), line("three")],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn telnet_cr_nul_ends_a_line() {
        assert_eq!(lines_of(b"hi\r\0there\r\n", 1), [line("hi"), line("there")]);
    }

    #[test]
    fn last_line_without_newline_is_kept() {
        assert_eq!(lines_of(b"Hello Server", 5), [line("Hello Server")]);
    }

    #[test]
    fn a_stream_finished_after_a_reset_gives_its_unfinished_line_once() {
        // Bytes, then a reset: the error first, then what was pending as the last line.
        let mut reader = LineReader::new(io::Cursor::new(b"whole\nhalf".to_vec()).chain(Reset));
        assert_eq!(reader.next_line().unwrap(), Some(line("whole")));
        let err = reader.next_line().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
        reader.finish();
        assert_eq!(reader.next_line().unwrap(), Some(line("half")));
        assert_eq!(reader.next_line().unwrap(), None);
    }

    /// A peer that reset the connection.
    struct Reset;

    impl Read for Reset {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::ErrorKind::ConnectionReset.into())
        }
    }

    #[test]
    fn invalid_utf8_is_replaced_and_utf8_kept() {
        assert_eq!(lines_of("olá\n".as_bytes(), 1), [line("olá")]);
        assert_eq!(lines_of(b"a\xffb\n", 1), [line("a\u{fffd}b")]);
    }

    #[test]
    fn a_line_just_over_the_limit_is_overlong_however_it_arrives() {
        let mut bytes = vec![b'x'; 17];
        bytes.extend_from_slice(b"\nok\n");
        for chunk in [1, 5, 4096] {
            assert_eq!(
                lines_of(&bytes, chunk),
                [Incoming::Overlong, line("ok")],
                "chunk {chunk}"
            );
        }
        let mut exact = vec![b'x'; 16];
        exact.push(b'\n');
        assert_eq!(lines_of(&exact, 4096), [line(&"x".repeat(16))]);
    }

    #[test]
    fn overlong_line_is_reported_once_and_the_next_line_survives() {
        let mut bytes = vec![b'x'; 100];
        bytes.extend_from_slice(b"\nok\n");
        assert_eq!(lines_of(&bytes, 7), [Incoming::Overlong, line("ok")]);
    }
}
