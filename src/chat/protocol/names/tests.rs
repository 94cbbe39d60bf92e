//! Names: what is refused and why, and which names count as the same.

use super::*;

#[test]
fn names_are_checked() {
    assert_eq!(validate_name(" ana "), Ok("ana".into()));
    assert!(validate_name("").is_err());
    assert!(validate_name("a b").is_err());
    assert!(validate_name("/x").is_err());
    assert!(validate_name(&"x".repeat(33)).is_err());
    assert!(validate_name("a\u{1b}[31m").is_err());
}

#[test]
fn names_are_kept_in_nfc() {
    let nfd = "jose\u{301}";
    assert_eq!(validate_name(nfd), Ok("jos\u{e9}".into()));
    assert_eq!(validate_name("jos\u{e9}"), Ok("jos\u{e9}".into()));
    // 32 characters once composed, 64 before.
    assert_eq!(
        validate_name(&"e\u{301}".repeat(32)),
        Ok("\u{e9}".repeat(32))
    );
    assert!(validate_name(&"e\u{301}".repeat(33)).is_err());
}

/// The reason a name is refused, which must say what the problem is.
fn refusal(name: &str) -> String {
    validate_name(name).expect_err(name)
}

#[test]
fn invisible_format_and_bidi_characters_are_refused_by_name() {
    let cases = [
        ("ana\u{200b}", "invisible", "U+200B"),   // zero-width space
        ("a\u{200c}na", "invisible", "U+200C"),   // zero-width non-joiner
        ("a\u{200d}na", "invisible", "U+200D"),   // zero-width joiner
        ("an\u{ad}a", "invisible", "U+00AD"),     // soft hyphen
        ("\u{feff}ana", "invisible", "U+FEFF"),   // byte-order mark
        ("a\u{2060}na", "invisible", "U+2060"),   // word joiner
        ("a\u{180e}na", "invisible", "U+180E"),   // Mongolian vowel separator
        ("a\u{e0061}na", "invisible", "U+E0061"), // tag letter
        ("ana\u{200e}", "bidi", "U+200E"),
        ("ana\u{200f}", "bidi", "U+200F"),
        ("ana\u{61c}", "bidi", "U+061C"),
        ("ana\u{202a}", "bidi", "U+202A"),
        ("ana\u{202e}revlis", "bidi", "U+202E"),
        ("ana\u{2066}", "bidi", "U+2066"),
        ("ana\u{2069}", "bidi", "U+2069"),
        ("\u{3164}", "Hangul filler", "U+3164"),
        ("ana\u{115f}", "Hangul filler", "U+115F"),
        ("ana\u{1160}", "Hangul filler", "U+1160"),
        ("ana\u{ffa0}", "Hangul filler", "U+FFA0"),
        ("ana\u{fe0f}", "variation selector", "U+FE0F"),
        ("ana\u{e0100}", "variation selector", "U+E0100"),
        ("a\u{3000}na", "space", "U+3000"),
        ("a\u{a0}na", "space", "U+00A0"),
        ("a\u{2028}na", "space", "U+2028"),
        ("ana\u{a0}", "space", "U+00A0"),
        ("\u{600}ana", "format", "U+0600"), // Arabic number sign: Cf, not default-ignorable
        ("ana\u{fffb}", "format", "U+FFFB"),
        ("ana\u{e000}", "private-use", "U+E000"),
        ("ana\u{10fffd}", "private-use", "U+10FFFD"),
        ("ana\u{fdd0}", "noncharacter", "U+FDD0"),
        ("ana\u{ffff}", "noncharacter", "U+FFFF"),
        ("\u{301}ana", "combining mark", "U+0301"),
        ("\u{20dd}", "combining mark", "U+20DD"),
    ];
    for (name, problem, code) in cases {
        let why = refusal(name);
        assert!(why.contains(problem), "{name:?}: {why}");
        assert!(why.contains(code), "{name:?}: {why}");
        assert!(
            why.chars().all(|c| c.is_ascii_graphic() || c == ' '),
            "the reason shows no character it refuses: {why:?}"
        );
    }
}

#[test]
fn ordinary_names_in_any_script_are_accepted() {
    for name in [
        "ana",
        "José",
        "ação",
        "bia_2",
        "guest-1",
        "Ωμέγα",
        "наташа",
        "中文名",
        "😀ana",
        "a.b",
        "ａｎａ",
        "sеrver",
    ] {
        assert_eq!(validate_name(name), Ok(name.to_string()), "{name}");
    }
}

#[test]
fn names_that_look_alike_have_one_key() {
    let same = [
        ("ana", "ANA"),
        ("ana", "Ana"),
        ("ana", "ａｎａ"),    // fullwidth
        ("ana", "ＡＮＡ"),    // fullwidth capitals
        ("ana", "аnа"),       // Cyrillic а
        ("server", "sеrver"), // Cyrillic е
        ("server", "SЕRVER"), // Cyrillic Е
        ("lan", "Ian"),       // capital I beside small l
        ("rn", "m"),
        ("guest-1", "guest-l"),
        ("jos\u{e9}", "jose\u{301}"), // NFC beside NFD
    ];
    for (a, b) in same {
        let (a, b) = (validate_name(a).unwrap(), validate_name(b).unwrap());
        assert_eq!(name_key(&a), name_key(&b), "{a:?} and {b:?}");
    }
    let different = [
        ("ana", "ana_b"),
        ("jose", "josé"),
        ("ana", "bia"),
        ("guest-1", "guest-11"),
    ];
    for (a, b) in different {
        assert_ne!(name_key(a), name_key(b), "{a:?} and {b:?}");
    }
}

#[test]
fn a_refused_name_is_quoted_without_its_invisible_characters() {
    assert_eq!(quoted_name("ana b"), "\"ana b\"");
    assert_eq!(quoted_name("ana\u{200b}"), "\"ana\\u{200b}\"");
    assert_eq!(quoted_name("\u{3164}"), "\"\\u{3164}\"");
    assert_eq!(quoted_name("\u{301}e\u{301}"), "\"\\u{301}e\u{301}\"");
    assert_eq!(quoted_name("a\u{202e}b\u{1b}"), "\"a\\u{202e}b\\u{1b}\"");
}
