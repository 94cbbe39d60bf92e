//! The rules a chat name follows, checked wherever a name comes in (`hello`, `/nick`, `--name`),
//! and the key that decides when two names are the same: names that look alike are one name.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;
use unicode_security::skeleton;

/// Longest nickname, in characters (of its NFC form).
pub const MAX_NAME_CHARS: usize = 32;

/// Checks a proposed name and returns it in NFC, the form stored and shown: 1 to 32 characters;
/// no spaces, control, invisible, format or bidi-control characters; no combining mark first;
/// not a command. The reason for a refusal names the character by its code point, never shows it.
pub fn validate_name(name: &str) -> Result<String, String> {
    let name: String = name.nfc().collect();
    let name = name.trim_matches(|c: char| c.is_ascii_whitespace());
    if name.is_empty() {
        return Err("a name cannot be empty".into());
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(format!("a name has at most {MAX_NAME_CHARS} characters"));
    }
    if let Some((c, problem)) = name.chars().find_map(|c| refused(c).map(|p| (c, p))) {
        return Err(format!(
            "a name cannot contain {problem} ({})",
            code_point(c)
        ));
    }
    if let Some(c) = name.chars().next().filter(|&c| is_combining_mark(c)) {
        return Err(format!(
            "a name cannot start with a combining mark ({})",
            code_point(c)
        ));
    }
    if name.starts_with(['/', '*', '!', '[', '<']) {
        return Err("a name cannot start with / * ! [ or <".into());
    }
    Ok(name.to_string())
}

/// The key two names are compared by: names are unique by this key, not by their spelling. It
/// is the UTS #39 confusable skeleton with case ignored, so `ANA`, fullwidth `ａｎａ` and
/// Cyrillic `аnа` are all `ana`, and NFD `josé` is NFC `josé`.
pub fn name_key(name: &str) -> String {
    // Skeleton, lowercase, skeleton: `Ian` meets `lan` (capital I looks like small l) and the
    // lowercase of a prototype (Cyrillic `Е` → `E` → `e`) meets its own lookalikes.
    let once: String = skeleton(name).collect();
    skeleton(&once.to_lowercase()).collect()
}

/// A proposed name in quotes for an error message, each character a name may not hold written
/// as `\u{…}` (a combining mark first too), so that the message shows what was typed and
/// nothing invisible, reordering or drawn over the quote.
pub fn quoted_name(name: &str) -> String {
    let shown: String = name
        .chars()
        .enumerate()
        .map(|(i, c)| {
            let hidden = (refused(c).is_some() && c != ' ') || (i == 0 && is_combining_mark(c));
            match hidden {
                true => c.escape_unicode().to_string(),
                false => c.to_string(),
            }
        })
        .collect();
    format!("\"{shown}\"")
}

/// What is wrong with a character in a name, if anything.
fn refused(c: char) -> Option<&'static str> {
    let problem = match c {
        ' ' => "spaces",
        c if c.is_control() => "a control character",
        // Explicit embeddings, overrides and isolates reorder what follows them; the marks
        // (LRM, RLM, ALM) are invisible and change how neighbours are placed.
        '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => {
            "a bidi control character"
        }
        '\u{115f}' | '\u{1160}' | '\u{3164}' | '\u{ffa0}' => {
            "a Hangul filler, which shows as blank"
        }
        '\u{180b}'..='\u{180d}'
        | '\u{180f}'
        | '\u{fe00}'..='\u{fe0f}'
        | '\u{e0100}'..='\u{e01ef}' => "a variation selector",
        c if c.is_whitespace() => "a space character",
        c if invisible(c) => "an invisible character",
        c if format_shown(c) => "a format character",
        '\u{e000}'..='\u{f8ff}' | '\u{f0000}'..='\u{ffffd}' | '\u{100000}'..='\u{10fffd}' => {
            "a private-use character"
        }
        c if noncharacter(c) => "a noncharacter",
        _ => return None,
    };
    Some(problem)
}

/// A default-ignorable code point (zero-width spaces and joiners, soft hyphen, tags, …): what
/// the confusable skeleton drops, since it shows as nothing.
fn invisible(c: char) -> bool {
    skeleton(c.encode_utf8(&mut [0; 4])).next().is_none()
}

/// The format characters (general category Cf) that are not default-ignorable: prepended
/// concatenation marks and annotation and hieroglyph format controls (Unicode 16). No crate
/// here carries the general category; every other Cf character is default-ignorable.
fn format_shown(c: char) -> bool {
    matches!(c,
        '\u{600}'..='\u{605}' | '\u{6dd}' | '\u{70f}' | '\u{890}'..='\u{891}' | '\u{8e2}'
        | '\u{fff9}'..='\u{fffb}' | '\u{110bd}' | '\u{110cd}' | '\u{13430}'..='\u{1343f}')
}

/// The 66 code points Unicode promises never to assign.
fn noncharacter(c: char) -> bool {
    matches!(c, '\u{fdd0}'..='\u{fdef}') || (c as u32) & 0xfffe == 0xfffe
}

/// `U+202E`: a character named without being shown.
fn code_point(c: char) -> String {
    format!("U+{:04X}", c as u32)
}

#[cfg(test)]
mod tests;
