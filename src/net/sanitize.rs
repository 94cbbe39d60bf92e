//! Text from the network made safe for a terminal: one `neutralize` for the chat server, the
//! client, the probe and the sockets table.

use std::borrow::Cow;

/// Makes text safe for a terminal: ANSI/terminal escape sequences (CSI such as colours and cursor
/// moves, OSC such as window titles, DCS and the other string sequences, two-byte ESC sequences,
/// and their 8-bit C1 forms) are removed, and every other control character but tab becomes
/// U+FFFD, as does every bidi embedding, override and isolate (U+202A–U+202E, U+2066–U+2069),
/// which could reorder the rest of the line (Trojan Source). Text without any of these comes
/// back borrowed, untouched.
pub fn neutralize(text: &str) -> Cow<'_, str> {
    if !text
        .chars()
        .any(|c| (c.is_control() && c != '\t') || reorders(c))
    {
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
            c if c.is_control() || reorders(c) => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Makes text that names something safe and faithful for a terminal: every control character
/// (tab, escape and the rest of C0, DEL, C1) and every bidi control that reorders is shown as
/// its escape (`\x1b`, `\u{202e}`), a backslash as `\\`, so that two different strings
/// never look the same: for a certificate's subject, issuer and names, where `neutralize`
/// would make `local\x1b[mhost` read `localhost`. Text without any comes back borrowed.
pub fn visible(text: &str) -> Cow<'_, str> {
    let shown = |c: char| c.is_control() || reorders(c) || c == '\\';
    if !text.chars().any(shown) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x100 && shown(c) => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if shown(c) => out.push_str(&format!("\\u{{{:04x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A bidi control that opens or closes a directional run (embedding, override, isolate): it
/// can make a line show its characters in another order than they are read. The marks (LRM,
/// RLM, ALM) only place their neighbours, as any right-to-left letter does, and are kept.
fn reorders(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
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

    #[test]
    fn bidi_overrides_and_isolates_cannot_reorder_a_line() {
        // Trojan Source: the line shows "access granted" and hides the rest after RLO … PDI.
        let trojan = "ok\u{202e} }\u{2066}if admin\u{2069} \u{2066}// user\u{202c}";
        assert_eq!(
            neutralize(trojan),
            "ok\u{fffd} }\u{fffd}if admin\u{fffd} \u{fffd}// user\u{fffd}"
        );
        for c in ('\u{202a}'..='\u{202e}').chain('\u{2066}'..='\u{2069}') {
            assert_eq!(
                neutralize(&format!("a{c}b")),
                "a\u{fffd}b",
                "U+{:04X}",
                c as u32
            );
        }
        // The marks order nothing beyond their neighbours and are kept, as is right-to-left text.
        for text in [
            "\u{5e9}\u{5dc}\u{5d5}\u{5dd}\u{200f}!",
            "a\u{200e}b",
            "\u{627}\u{61c}1",
        ] {
            assert_eq!(neutralize(text), text);
        }
    }

    #[test]
    fn visible_shows_every_control_so_two_names_never_look_the_same() {
        let cases = [
            ("localhost", "localhost"),
            ("local\u{1b}[mhost", "local\\x1b[mhost"),
            ("evil\u{1b}[31m.example", "evil\\x1b[31m.example"),
            ("tab\there\r\u{7f}\u{9b}", "tab\\x09here\\x0d\\x7f\\x9b"),
            ("a\u{202e}b", "a\\u{202e}b"),
            ("back\\x1b", "back\\\\x1b"),
            ("olá ✓", "olá ✓"),
        ];
        for (input, expected) in cases {
            assert_eq!(visible(input), expected, "{input:?}");
            // Nothing a terminal would act on is left, so neutralize leaves it as it is.
            assert_eq!(neutralize(&visible(input)), visible(input), "{input:?}");
        }
        assert!(matches!(visible("nada"), Cow::Borrowed(_)));
    }
}
