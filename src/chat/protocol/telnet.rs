//! Telnet's commands (RFC 854), as a telnet client sends them to a raw server: taken out of the
//! byte stream so they are never shown as text, applied to the line being typed (erase
//! character, erase line, interrupt), and answered where telnet waits for an answer.
//!
//! A byte 255 (IAC) starts a command. UTF-8 never has that byte, so a structured client's frames
//! never hold one, and text from nc or a Python socket meets one only if it is not UTF-8 anyway;
//! even then, an IAC before a byte that starts no command (below 236) is left as data.

/// "Interpret as command": starts every command; doubled, it is a data byte 255.
const IAC: u8 = 255;
const DONT: u8 = 254;
const DO: u8 = 253;
const WONT: u8 = 252;
const WILL: u8 = 251;
/// Starts a subnegotiation, which runs to IAC SE.
const SB: u8 = 250;
/// Erase line.
const EL: u8 = 248;
/// Erase character.
const EC: u8 = 247;
/// Are you there?
const AYT: u8 = 246;
/// Interrupt process (telnet's Ctrl-C).
const IP: u8 = 244;
/// Break (telnet's Ctrl-\).
const BRK: u8 = 243;
/// Abort and suspend (RFC 1184: telnet's Ctrl-Z is SUSP).
const ABORT: u8 = 238;
const SUSP: u8 = 237;
/// The lowest command byte (EOF, RFC 1184); an IAC before a lower byte starts no command.
const FIRST_COMMAND: u8 = 236;
/// SE, the end of a subnegotiation.
const SE: u8 = 240;
/// Longest subnegotiation (bytes after IAC SB): telnet's own are a few bytes (a terminal type,
/// a window size); past this, a stray IAC SB in data has swallowed enough, and what follows is
/// data again.
const MAX_SUBNEGOTIATION: u16 = 256;
/// The TIMING-MARK option (RFC 860): after an interrupt, telnet sends DO TIMING-MARK and shows
/// nothing the server sends until its WILL TIMING-MARK comes.
const TIMING_MARK: u8 = 6;

/// What telnet commands asked of the server.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TelnetRequests {
    /// Bytes to send back, as they are: WILL TIMING-MARK for every DO TIMING-MARK, and the
    /// first time each other option is asked for, its refusal (WONT for DO, DONT for WILL):
    /// the server takes up no option.
    pub answer: Vec<u8>,
    /// An interrupt came (IP, BRK, ABORT or SUSP: Ctrl-C, Ctrl-\, Ctrl-Z in telnet). The line
    /// being typed was dropped; the connection goes on.
    pub interrupted: bool,
    /// AYT came: telnet's user asks for visible proof that the server is there.
    pub are_you_there: bool,
}

/// Where the decoder is in the command syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Data,
    /// After IAC.
    Command,
    /// After IAC and WILL, WONT, DO or DONT: the option byte comes next.
    Option(u8),
    /// Inside IAC SB … IAC SE, this many bytes in.
    Sub(u16),
    /// After an IAC inside a subnegotiation, this many bytes in.
    SubCommand(u16),
}

/// Takes telnet's commands out of a byte stream, however the stream is cut into reads.
#[derive(Debug)]
pub struct Telnet {
    state: State,
    /// Options already refused, by verb (DO, WILL) and option: each is refused once, so two
    /// ends that keep asking never loop.
    refused: [[bool; 256]; 2],
    requests: TelnetRequests,
    /// Bytes of the data looked at or taken back by commands (to show that work is bounded).
    #[cfg(test)]
    touched: usize,
}

impl Default for Telnet {
    fn default() -> Self {
        Telnet {
            state: State::Data,
            refused: [[false; 256]; 2],
            requests: TelnetRequests::default(),
            #[cfg(test)]
            touched: 0,
        }
    }
}

impl Telnet {
    /// Appends the data bytes of `input` to `data`, which must hold no line end (the caller
    /// takes each complete line out before decoding more): the line being typed starts at 0, or
    /// after the last line end decoded here. Erase character and erase line edit that line; an
    /// interrupt drops it. No command looks at more of it than it takes back.
    pub fn decode(&mut self, input: &[u8], data: &mut Vec<u8>) {
        let mut line_start = 0;
        let push = |data: &mut Vec<u8>, line_start: &mut usize, byte: u8| {
            data.push(byte);
            if ends_line(data, data.len() - 1) {
                *line_start = data.len();
            }
        };
        let mut rest = input;
        while let Some((&byte, after)) = rest.split_first() {
            if self.state == State::Data && byte != IAC {
                // Plain data up to the next IAC, taken at once (most input has no IAC at all).
                let run = rest.iter().position(|&b| b == IAC).unwrap_or(rest.len());
                let from = data.len();
                data.extend_from_slice(&rest[..run]);
                if let Some(end) = (from..data.len()).rev().find(|&at| ends_line(data, at)) {
                    line_start = end + 1;
                }
                rest = &rest[run..];
                continue;
            }
            rest = after;
            // A subnegotiation that runs on past the cap was none: what follows is data.
            if let State::Sub(n) | State::SubCommand(n) = self.state
                && n >= MAX_SUBNEGOTIATION
            {
                self.state = State::Data;
            }
            self.state = match (self.state, byte) {
                (State::Data, IAC) => State::Command,
                (State::Data, _) => {
                    push(data, &mut line_start, byte);
                    State::Data
                }
                (State::Command, IAC) => {
                    push(data, &mut line_start, IAC);
                    State::Data
                }
                // Not a command (they are 236 to 255): a byte 255 that is not UTF-8, from a
                // client that is not telnet. Both bytes are data, a line end included.
                (State::Command, _) if byte < FIRST_COMMAND => {
                    push(data, &mut line_start, IAC);
                    push(data, &mut line_start, byte);
                    State::Data
                }
                (State::Command, WILL | WONT | DO | DONT) => State::Option(byte),
                (State::Command, SB) => State::Sub(0),
                (State::Command, command) => {
                    self.command(command, data, line_start);
                    State::Data
                }
                (State::Option(verb), option) => {
                    self.negotiate(verb, option);
                    State::Data
                }
                (State::Sub(n), IAC) => State::SubCommand(n + 1),
                (State::Sub(n), _) | (State::SubCommand(n), IAC) => State::Sub(n + 1),
                (State::SubCommand(_), SE) => State::Data,
                // Not the end after all: RFC 855 has IAC SE as the only way out.
                (State::SubCommand(n), _) => State::Sub(n + 1),
            };
        }
    }

    /// What the commands decoded so far asked for, once; None when they asked for nothing.
    pub fn take_requests(&mut self) -> Option<TelnetRequests> {
        (self.requests != TelnetRequests::default()).then(|| std::mem::take(&mut self.requests))
    }

    /// A two-byte command (IAC and `command`), where the line being typed starts at `start`.
    fn command(&mut self, command: u8, data: &mut Vec<u8>, start: usize) {
        #[cfg(test)]
        let before = data.len();
        match command {
            EC if data.len() > start => {
                // The last character, however many bytes of UTF-8 it took.
                while data.len() > start + 1 && is_continuation(data[data.len() - 1]) {
                    data.pop();
                }
                data.pop();
            }
            EL => data.truncate(start),
            IP | BRK | ABORT | SUSP => {
                data.truncate(start);
                self.requests.interrupted = true;
            }
            AYT => self.requests.are_you_there = true,
            // NOP, DM, GA, AO, EOR and the rest ask for nothing a chat server does.
            _ => {}
        }
        #[cfg(test)]
        {
            self.touched += before - data.len();
        }
    }

    /// WILL, WONT, DO or DONT `option`.
    fn negotiate(&mut self, verb: u8, option: u8) {
        let answer = match verb {
            DO if option == TIMING_MARK => Some(WILL),
            DO => self.refuse_once(0, option).then_some(WONT),
            WILL => self.refuse_once(1, option).then_some(DONT),
            // WONT and DONT are never answered (RFC 854: that is what keeps negotiation from
            // looping).
            _ => None,
        };
        if let Some(answer) = answer {
            self.requests
                .answer
                .extend_from_slice(&[IAC, answer, option]);
        }
    }

    /// True the first time `option` is asked for with this verb.
    fn refuse_once(&mut self, verb: usize, option: u8) -> bool {
        !std::mem::replace(&mut self.refused[verb][usize::from(option)], true)
    }
}

/// Whether the byte at `at` ends a line: a `\n`, or the `\0` of telnet's bare carriage return
/// `\r\0` (the one place this rule is written).
pub(super) fn ends_line(bytes: &[u8], at: usize) -> bool {
    bytes[at] == b'\n' || (bytes[at] == 0 && at > 0 && bytes[at - 1] == b'\r')
}

/// A byte inside a UTF-8 character, not its first.
fn is_continuation(byte: u8) -> bool {
    byte & 0xC0 == 0x80
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `bytes` decoded in reads of `chunk` bytes: the data and every request, in order. Between
    /// reads, complete lines are taken out of what is decoded, as `LineReader` takes them.
    fn decode(bytes: &[u8], chunk: usize) -> (Vec<u8>, TelnetRequests) {
        let mut telnet = Telnet::default();
        let (mut lines, mut data, mut all) = (Vec::new(), Vec::new(), TelnetRequests::default());
        for piece in bytes.chunks(chunk) {
            telnet.decode(piece, &mut data);
            if let Some(end) = (0..data.len()).rev().find(|&at| ends_line(&data, at)) {
                lines.extend(data.drain(..=end));
            }
            if let Some(requests) = telnet.take_requests() {
                all.answer.extend(requests.answer);
                all.interrupted |= requests.interrupted;
                all.are_you_there |= requests.are_you_there;
            }
        }
        lines.extend(data);
        (lines, all)
    }

    #[test]
    fn ctrl_c_in_telnet_is_no_text_and_its_timing_mark_is_answered() {
        // What telnet sends for a line, Ctrl-C, and the next line (captured from telnet 0.17).
        let bytes = b"hello\r\n\xff\xf4\xff\xfd\x06again\r\n";
        for chunk in [1, 2, 3, bytes.len()] {
            let (data, requests) = decode(bytes, chunk);
            assert_eq!(data, b"hello\r\nagain\r\n", "chunk {chunk}");
            assert_eq!(requests.answer, [IAC, WILL, TIMING_MARK]);
            assert!(requests.interrupted && !requests.are_you_there);
        }
        // Every Ctrl-C is answered, Ctrl-\ (BRK) and Ctrl-Z (SUSP) too.
        let (data, requests) = decode(b"\xff\xf3\xff\xfd\x06\xff\xed\xff\xfd\x06", 4096);
        assert!(data.is_empty());
        assert_eq!(
            requests.answer,
            [IAC, WILL, TIMING_MARK, IAC, WILL, TIMING_MARK]
        );
    }

    #[test]
    fn a_byte_255_that_starts_no_command_is_data() {
        // Not UTF-8 from nc, say: the line and its end stay as they came.
        for chunk in [1, 4096] {
            let (data, requests) = decode(b"ol\xe1 \xff\nnext\xffA\n", chunk);
            assert_eq!(data, b"ol\xe1 \xff\nnext\xffA\n");
            assert_eq!(requests, TelnetRequests::default());
        }
    }

    #[test]
    fn options_are_refused_once_and_refusals_never_answered() {
        let bytes = b"\xff\xfd\x18\xff\xfb\x1f\xff\xfd\x18\xff\xfc\x01\xff\xfe\x01ok";
        let (data, requests) = decode(bytes, 1);
        assert_eq!(data, b"ok");
        assert_eq!(requests.answer, [IAC, WONT, 0x18, IAC, DONT, 0x1f]);
    }

    #[test]
    fn subnegotiations_and_other_commands_vanish_and_iac_iac_is_a_byte() {
        let bytes = b"a\xff\xfa\x18\x00xterm\xff\xff\xff\xf0b\xff\xf1c\xff\xf2d\xff\xf9e\xff\xff";
        for chunk in [1, 5, bytes.len()] {
            let (data, requests) = decode(bytes, chunk);
            assert_eq!(data, b"abcde\xff", "chunk {chunk}");
            assert_eq!(requests, TelnetRequests::default());
        }
    }

    #[test]
    fn a_command_costs_the_same_however_long_the_line_being_typed() {
        let mut telnet = Telnet::default();
        let mut data = Vec::new();
        telnet.decode(&vec![b'x'; 7 * 1024], &mut data);
        // 100,000 NOPs and GAs: none of them looks at the line.
        telnet.decode(&b"\xff\xf1\xff\xf9".repeat(50_000), &mut data);
        assert_eq!(data, vec![b'x'; 7 * 1024]);
        assert_eq!(telnet.touched, 0);
        // Each erase takes back its character and no more.
        telnet.decode(&b"\xff\xf7y".repeat(100_000), &mut data);
        assert_eq!(data.len(), 7 * 1024);
        assert!(data.ends_with(b"xy"));
        assert!(telnet.touched <= 100_000, "{}", telnet.touched);
    }

    #[test]
    fn a_subnegotiation_that_never_ends_swallows_at_most_its_cap() {
        // A stray IAC SB (Latin-1 "ÿú") before lines: past the cap they are data again.
        let mut bytes = b"\xff\xfa".to_vec();
        for n in 0..100 {
            bytes.extend_from_slice(format!("line {n:02}\n").as_bytes());
        }
        let kept = &bytes[2 + usize::from(MAX_SUBNEGOTIATION)..];
        for chunk in [1, 7, bytes.len()] {
            let (data, requests) = decode(&bytes, chunk);
            assert_eq!(data, kept, "chunk {chunk}");
            assert_eq!(requests, TelnetRequests::default());
        }
    }

    #[test]
    fn erase_character_and_line_edit_only_the_line_being_typed() {
        let (data, _) = decode(b"done\nol\xc3\xa1\xff\xf7x", 1);
        assert_eq!(data, b"done\nolx", "á is one character of two bytes");
        let (data, _) = decode(b"done\nol\xc3\xa1\xff\xf7\xff\xf7\xff\xf7\xff\xf7!", 3);
        assert_eq!(data, b"done\n!", "never past the line's start");
        let (data, _) = decode(b"done\r\0typo\xff\xf8fine", 2);
        assert_eq!(data, b"done\r\0fine");
        let (data, requests) = decode(b"half a li\xff\xf4ne", 2);
        assert_eq!(data, b"ne");
        assert!(requests.interrupted);
        let (_, requests) = decode(b"\xff\xf6", 1);
        assert!(requests.are_you_there && requests.answer.is_empty());
    }

    #[test]
    fn lines_that_end_in_the_read_of_an_erase_are_not_touched_by_it() {
        // Plain data is taken a run at a time: the line being typed still starts after the
        // run's last line end, whichever kind, and however the reads cut the bytes.
        let cases: [(&[u8], &[u8]); 4] = [
            (b"one\ntwo\nthr\xff\xf8x", b"one\ntwo\nx"),
            (b"one\r\0two\r\0thr\xff\xf8x", b"one\r\0two\r\0x"),
            (b"ab\r\0c\xff\xf7\xff\xf7\xff\xf7d", b"ab\r\0d"),
            (b"a\rb\0c\xff\xf8d\ne", b"d\ne"),
        ];
        for (bytes, kept) in cases {
            for chunk in [1, 2, 3, 5, bytes.len()] {
                assert_eq!(
                    decode(bytes, chunk).0,
                    kept,
                    "{bytes:?} in reads of {chunk}"
                );
            }
        }
    }
}
