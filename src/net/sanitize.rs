//! Text from the network made safe for a terminal: one `neutralize` for the chat server, the
//! client, the probe and the sockets table.

use std::borrow::Cow;

/// Makes text safe for a terminal: ANSI/terminal escape sequences (CSI such as colours and cursor
/// moves, OSC such as window titles, DCS and the other string sequences, two-byte ESC sequences,
/// and their 8-bit C1 forms) are removed, and every other control character but tab becomes
/// U+FFFD. Text without control characters comes back borrowed, untouched.
pub fn neutralize(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c.is_control() && c != '\t') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\t' => out.push(c),
            '\u{1b}' => match chars.peek().copied() {
                Some('[') => {
                    chars.next();
                    skip_csi(&mut chars);
                }
                Some(']' | 'P' | 'X' | '^' | '_') => {
                    chars.next();
                    skip_string(&mut chars);
                }
                Some(' '..='/') => {
                    // nF: intermediates, then one final byte (ESC ( B selects a charset).
                    while chars.next_if(|c| (' '..='/').contains(c)).is_some() {}
                    chars.next_if(|c| ('0'..='~').contains(c));
                }
                Some('0'..='~') => {
                    chars.next();
                }
                _ => {}
            },
            '\u{9b}' => skip_csi(&mut chars),
            '\u{90}' | '\u{98}' | '\u{9d}' | '\u{9e}' | '\u{9f}' => skip_string(&mut chars),
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Skips a CSI sequence's parameter and intermediate bytes and its final byte.
fn skip_csi(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    // Parameter bytes are 0x30-0x3F and intermediate bytes 0x20-0x2F: together ' '..='?'.
    while chars.next_if(|c| (' '..='?').contains(c)).is_some() {}
    chars.next_if(|c| ('@'..='~').contains(c));
}

/// Skips an OSC/DCS/SOS/PM/APC string up to its terminator: BEL, ST (ESC \\) or 8-bit ST.
fn skip_string(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(c) = chars.next() {
        match c {
            '\u{7}' | '\u{9c}' => return,
            '\u{1b}' => {
                chars.next_if_eq(&'\\');
                return;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_and_controls_are_neutralized() {
        let cases = [
            ("plain olá\ttab", "plain olá\ttab"),
            ("\u{1b}[31mred\u{1b}[0m", "red"),
            ("\u{1b}[2J\u{1b}[1;1Hclear", "clear"),
            ("\u{1b}]0;pwned title\u{7}after", "after"),
            ("\u{1b}]8;;http://x\u{1b}\\link\u{1b}]8;;\u{1b}\\", "link"),
            ("\u{1b}(Bcharset", "charset"),
            ("\u{1b}cReset", "Reset"),
            ("\u{9b}31mc1", "c1"),
            (
                "bell\u{7}back\u{8}del\u{7f}",
                "bell\u{fffd}back\u{fffd}del\u{fffd}",
            ),
            ("nul\u{0}cr\r", "nul\u{fffd}cr\u{fffd}"),
            ("lone esc\u{1b}", "lone esc"),
        ];
        for (input, expected) in cases {
            assert_eq!(neutralize(input), expected, "{input:?}");
        }
        assert!(matches!(neutralize("nada a fazer"), Cow::Borrowed(_)));
    }
}
