//! Line framing: a byte stream cut into lines exactly as sent, whatever TCP does to the bytes,
//! with a bound on a line's length.

use std::io::{self, Read};

use super::telnet::{Telnet, TelnetRequests, ends_line};

/// Longest line accepted; the rest of a longer line is discarded and its sender told.
pub const MAX_LINE_BYTES: usize = 8 * 1024;

/// What [`LineReader`] yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// One complete line, without its terminator; invalid UTF-8 replaced by U+FFFD.
    Line(String),
    /// A line longer than the limit: its first part was dropped, the rest is being discarded.
    Overlong,
    /// Telnet commands asked for something (only with [`LineReader::set_telnet`]).
    Telnet(TelnetRequests),
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
    /// Telnet's commands are taken out of the stream (a raw server's connections).
    telnet: Option<Telnet>,
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
            telnet: None,
        }
    }

    /// Whether telnet's commands are taken out of the stream (and what they ask for yielded as
    /// [`Incoming::Telnet`]), from the next read on.
    pub fn set_telnet(&mut self, on: bool) {
        if on != self.telnet.is_some() {
            self.telnet = on.then(Telnet::default);
        }
    }

    /// The stream read from.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// The stream read from, to change how it reads.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// Bytes received that do not yet form a complete line.
    pub fn pending(&self) -> &[u8] {
        &self.buffer
    }

    /// Puts bytes already read (and decoded) by another reader of the same stream in front of
    /// what comes next: a connection read first by the password check goes on where it stopped.
    pub fn preload(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
        self.scanned = 0;
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
            // Lines that came before a telnet command go first (a timing mark is answered
            // once what preceded it was taken).
            if let Some(requests) = self.telnet.as_mut().and_then(Telnet::take_requests) {
                return Ok(Some(Incoming::Telnet(requests)));
            }
            self.scanned = self.buffer.len();
            // A line of the limit may end in a `\r` whose `\n` (or `\0`) is still on its way.
            let open = self.buffer.len() - usize::from(self.buffer.last() == Some(&b'\r'));
            if open > self.max_line {
                // A trailing `\r` stays: with a `\0` after it, it ends the line being dropped.
                self.buffer.drain(..open);
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
                Ok(n) => match &mut self.telnet {
                    // Every complete line was taken out of the buffer before this read.
                    Some(telnet) => {
                        telnet.decode(&chunk[..n], &mut self.buffer);
                        // Erasing may have taken back bytes already scanned.
                        self.scanned = self.scanned.min(self.buffer.len());
                    }
                    None => self.buffer.extend_from_slice(&chunk[..n]),
                },
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
    }
}

/// Index of the first `\n` at or after `from`, or of the `\0` of a `\r\0` pair.
fn find_terminator(bytes: &[u8], from: usize) -> Option<usize> {
    (from..bytes.len()).find(|&at| ends_line(bytes, at))
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

    /// A reader that hands out its bytes cut at the given offsets, one read per piece.
    struct Cut {
        bytes: Vec<u8>,
        cuts: Vec<usize>,
        at: usize,
    }

    impl Read for Cut {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let end = self
                .cuts
                .iter()
                .copied()
                .find(|&cut| cut > self.at)
                .unwrap_or(self.bytes.len())
                .min(self.bytes.len())
                .min(self.at + buf.len());
            let n = end - self.at;
            buf[..n].copy_from_slice(&self.bytes[self.at..end]);
            self.at = end;
            Ok(n)
        }
    }

    #[test]
    fn a_line_of_the_limit_is_whole_wherever_reads_cut_it_and_its_terminator() {
        for terminator in [&b"\r\n"[..], b"\n", b"\r\0"] {
            for len in MAX_LINE_BYTES - 2..=MAX_LINE_BYTES + 1 {
                let mut bytes = vec![b'x'; len];
                bytes.extend_from_slice(terminator);
                bytes.extend_from_slice(b"ok\n");
                let expected = if len <= MAX_LINE_BYTES {
                    line(&"x".repeat(len))
                } else {
                    Incoming::Overlong
                };
                // One cut anywhere around the limit, then byte by byte through it.
                let mut cuttings: Vec<Vec<usize>> = (MAX_LINE_BYTES - 4..=MAX_LINE_BYTES + 4)
                    .map(|cut| vec![cut])
                    .collect();
                cuttings.push((MAX_LINE_BYTES - 4..bytes.len()).collect());
                for cuts in cuttings {
                    let what = format!("{len} bytes + {terminator:?}, cut at {:?}", cuts[0]);
                    let mut reader = LineReader::new(Cut {
                        bytes: bytes.clone(),
                        cuts,
                        at: 0,
                    });
                    let mut lines = Vec::new();
                    while let Some(line) = reader.next_line().unwrap() {
                        lines.push(line);
                        assert!(lines.len() < 10, "{what}");
                    }
                    assert_eq!(lines, [expected.clone(), line("ok")], "{what}");
                }
            }
        }
    }

    #[test]
    fn with_telnet_its_commands_are_no_text_and_what_they_ask_comes_out_once() {
        let bytes = b"hello\r\n\xff\xf4\xff\xfd\x06again\r\n\xff\xff\n";
        for chunk in [1, 3, 4096] {
            let mut reader = LineReader::new(Dribble {
                bytes: bytes.to_vec(),
                at: 0,
                chunk,
            });
            reader.set_telnet(true);
            let (mut lines, mut asked) = (Vec::new(), Vec::new());
            while let Some(incoming) = reader.next_line().unwrap() {
                match incoming {
                    Incoming::Telnet(requests) => asked.push(requests),
                    other => lines.push(other),
                }
                assert!(lines.len() + asked.len() < 10);
            }
            assert_eq!(
                lines,
                [line("hello"), line("again"), line("\u{fffd}")],
                "chunk {chunk}"
            );
            // Asked once, or in pieces as the reads cut the commands.
            let answer: Vec<u8> = asked.iter().flat_map(|r| r.answer.clone()).collect();
            assert_eq!(answer, b"\xff\xfb\x06", "chunk {chunk}");
            assert_eq!(asked.iter().filter(|r| r.interrupted).count(), 1);
        }
    }

    #[test]
    fn overlong_line_is_reported_once_and_the_next_line_survives() {
        let mut bytes = vec![b'x'; 100];
        bytes.extend_from_slice(b"\nok\n");
        assert_eq!(lines_of(&bytes, 7), [Incoming::Overlong, line("ok")]);
    }
}
