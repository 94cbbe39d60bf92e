//! The rules a chat name follows, checked wherever a name comes in (`hello`, `/nick`, `--name`),
//! and the key that decides when two names are the same: names that look alike are one name.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;
use unicode_security::skeleton;

/// Longest nickname, in characters (of its NFC form).
pub const MAX_NAME_CHARS: usize = 32;

/// Most combining marks one character may carry (counted on the NFC form): enough for any
/// accented letter, too few to stack marks over the lines around (Zalgo text).
pub const MAX_MARKS: usize = 2;

/// Checks a proposed name and returns it in NFC, the form stored and shown: 1 to 32 characters;
/// no spaces or what shows as one, no control, invisible, format or bidi-control characters, no
/// `<` or `>` (they frame a name on screen); at least one letter or digit; no combining mark
/// first and at most [`MAX_MARKS`] on a character; not a command. The reason for a refusal names the character by its code point, never shows it.
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
    if let Some(c) = crowded_mark(name) {
        return Err(format!(
            "a character in a name carries at most {MAX_MARKS} combining marks ({} is one more)",
            code_point(c)
        ));
    }
    if name.starts_with(['/', '*', '!', '[']) {
        return Err("a name cannot start with / * ! or [".into());
    }
    if !name.chars().any(char::is_alphanumeric) {
        return Err("a name needs at least one letter or digit".into());
    }
    if name_key(name).contains(char::is_whitespace) {
        return Err("a name cannot contain what shows as a space".into());
    }
    Ok(name.to_string())
}

/// The key two names are compared by: names are unique by this key, not by their spelling. It
/// is the UTS #39 confusable skeleton of the NFKC form with case ignored and small capitals read
/// as letters, so `ANA`, fullwidth `ａｎａ` and Cyrillic `аnа` are all `ana`, NFD `josé` is NFC
/// `josé`, and `ꜱᴇʀᴠᴇʀ`, `ⓢⓔⓡⓥⓔⓡ`, `ˢᵉʳᵛᵉʳ`, `ſerver` and `𝐬𝐞𝐫𝐯𝐞𝐫` are all `server`.
pub fn name_key(name: &str) -> String {
    // NFKC first: circled, modifier, mathematical and long-s letters are compatibility forms of
    // plain ones, which the confusables tables do not list. Small capitals are nobody's
    // compatibility form, so a table reads them. Case is ignored after the first skeleton.
    let folded: String = name
        .nfkc()
        .map(|c| small_capital(c).map_or_else(|| c.to_string(), str::to_string))
        .collect();
    // Skeleton, lowercase, skeleton: `Ian` meets `lan` (capital I looks like small l) and the
    // lowercase of a prototype (Cyrillic `Е` → `E` → `e`) meets its own lookalikes.
    let once: String = skeleton(&folded).collect();
    skeleton(&once.to_lowercase()).collect()
}

/// The letters a Latin small capital looks like (they are not in the confusables tables, nor
/// compatibility forms of the letters): `ꜱᴇʀᴠᴇʀ` reads as `server`.
fn small_capital(c: char) -> Option<&'static str> {
    let letters = match c {
        '\u{1d00}' => "a",
        '\u{1d01}' => "ae",
        '\u{299}' => "b",
        '\u{1d04}' => "c",
        '\u{1d05}' => "d",
        '\u{1d07}' => "e",
        '\u{a730}' => "f",
        '\u{262}' => "g",
        '\u{29c}' => "h",
        '\u{26a}' => "i",
        '\u{1d0a}' => "j",
        '\u{1d0b}' => "k",
        '\u{29f}' => "l",
        '\u{1d0d}' => "m",
        '\u{274}' => "n",
        '\u{1d0f}' => "o",
        '\u{276}' => "oe",
        '\u{1d18}' => "p",
        '\u{a7af}' => "q",
        '\u{280}' => "r",
        '\u{a731}' => "s",
        '\u{1d1b}' => "t",
        '\u{1d1c}' => "u",
        '\u{1d20}' => "v",
        '\u{1d21}' => "w",
        '\u{28f}' => "y",
        '\u{1d22}' => "z",
        _ => return None,
    };
    Some(letters)
}

/// The first combining mark beyond [`MAX_MARKS`] on one character, if any.
fn crowded_mark(name: &str) -> Option<char> {
    let mut marks = 0;
    name.chars().find(|&c| {
        marks = if is_combining_mark(c) { marks + 1 } else { 0 };
        marks > MAX_MARKS
    })
}

/// A proposed name in quotes for an error message, each character a name may not hold written
/// as `\u{…}` (a combining mark first too), so that the message shows what was typed and
/// nothing invisible, reordering or drawn over the quote.
pub fn quoted_name(name: &str) -> String {
    let shown: String = name
        .chars()
        .enumerate()
        .map(|(i, c)| {
            let shown_as_is = matches!(c, ' ' | '<' | '>');
            let hidden = (refused(c).is_some() && !shown_as_is) || (i == 0 && is_combining_mark(c));
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
        '<' | '>' => "an angle bracket, which frames a name on screen",
        // Symbols that draw nothing, without being spaces or default-ignorable.
        '\u{2800}' | '\u{1d159}' => "a blank symbol",
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
        c if c.is_whitespace() || shows_as_space(c) => "a space character",
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

/// A character whose key (compatibility form, confusable skeleton) holds a space.
fn shows_as_space(c: char) -> bool {
    name_key(c.encode_utf8(&mut [0; 4])).contains(char::is_whitespace)
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
