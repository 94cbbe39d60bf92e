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
    assert_eq!(quoted_name("<ana>\u{2800}"), "\"<ana>\\u{2800}\"");
    assert_eq!(quoted_name("ana\u{200b}"), "\"ana\\u{200b}\"");
    assert_eq!(quoted_name("\u{3164}"), "\"\\u{3164}\"");
    assert_eq!(quoted_name("\u{301}e\u{301}"), "\"\\u{301}e\u{301}\"");
    assert_eq!(quoted_name("a\u{202e}b\u{1b}"), "\"a\\u{202e}b\\u{1b}\"");
}

#[test]
fn blank_looking_characters_and_angle_brackets_are_refused() {
    let cases = [
        ("ana\u{2800}", "U+2800"), // braille pattern blank
        ("server>\u{2800}please\u{2800}type", "U+003E"),
        ("\u{2800}\u{2800}\u{2800}", "U+2800"),
        ("ana\u{1d159}", "U+1D159"), // musical symbol null notehead
        ("a\u{2062}na", "U+2062"),   // invisible times
        ("a\u{2063}na", "U+2063"),   // invisible separator
        ("a\u{2064}na", "U+2064"),   // invisible plus
        ("a\u{180e}na", "U+180E"),   // Mongolian vowel separator
        ("a\u{34f}na", "U+034F"),    // combining grapheme joiner
        ("a\u{17b4}na", "U+17B4"),   // Khmer inherent vowel
        ("a\u{206a}na", "U+206A"),   // deprecated format character
        ("a\u{1d173}na", "U+1D173"), // musical symbol begin beam
        ("ana\u{115f}", "U+115F"),
        ("ana\u{1160}", "U+1160"),
        ("ana\u{3164}", "U+3164"),
        ("ana\u{ffa0}", "U+FFA0"),
        ("<ana>", "U+003C"),
        ("ana>", "U+003E"),
        ("a<na", "U+003C"),
    ];
    for (name, code) in cases {
        let why = refusal(name);
        assert!(why.contains(code), "{name:?}: {why}");
        assert!(
            why.is_ascii(),
            "the reason shows no character it refuses: {why:?}"
        );
    }
}

#[test]
fn no_accepted_name_has_a_blank_in_its_key() {
    // Whatever NFKC or the skeleton turns into a space is refused, so no accepted name can look
    // like two words (`<server> please type`). Every assigned plane but private use is tried.
    let assigned = (0..=0x3ffff_u32).chain(0xe0000..=0xe0fff);
    for c in assigned.filter_map(char::from_u32) {
        let mut buffer = [0; 4];
        if name_key(c.encode_utf8(&mut buffer)).contains(char::is_whitespace) {
            let name = format!("a{c}b");
            assert!(
                validate_name(&name).is_err(),
                "U+{:04X} shows as a space",
                c as u32
            );
        }
    }
}

#[test]
fn a_name_needs_a_letter_or_a_digit() {
    for name in ["-", "._.", "\u{2022}", "\u{1f600}", "\u{2014}\u{2014}"] {
        assert!(refusal(name).contains("letter or digit"), "{name:?}");
    }
    for name in ["guest-3", "\u{1f600}ana", "7", "_x_"] {
        assert_eq!(validate_name(name), Ok(name.to_string()), "{name}");
    }
}

#[test]
fn lookalikes_outside_the_confusables_tables_have_one_key() {
    for lookalike in [
        "\u{a731}\u{1d07}\u{280}\u{1d20}\u{1d07}\u{280}", // small capitals ꜱᴇʀᴠᴇʀ
        "\u{24e2}\u{24d4}\u{24e1}\u{24e5}\u{24d4}\u{24e1}", // circled ⓢⓔⓡⓥⓔⓡ
        "\u{2e2}\u{1d49}\u{2b3}\u{1d5b}\u{1d49}\u{2b3}",  // modifier letters ˢᵉʳᵛᵉʳ
        "\u{17f}erver",                                   // long s
        "\u{1d42c}\u{1d41e}\u{1d42b}\u{1d42f}\u{1d41e}\u{1d42b}", // bold 𝐬𝐞𝐫𝐯𝐞𝐫
        "\u{1d5cc}\u{1d5be}\u{1d5cb}\u{1d5cf}\u{1d5be}\u{1d5cb}", // sans-serif 𝗌𝖾𝗋𝗏𝖾𝗋
    ] {
        let name = validate_name(lookalike).expect(lookalike);
        assert_eq!(name, lookalike, "the name itself is kept as typed (NFC)");
        assert_eq!(name_key(&name), name_key("server"), "{lookalike}");
    }
    let small_capitals = "\u{1d00}\u{299}\u{1d04}\u{1d05}\u{1d07}\u{a730}\u{262}\u{29c}\u{26a}\
        \u{1d0a}\u{1d0b}\u{29f}\u{1d0d}\u{274}\u{1d0f}\u{1d18}\u{280}\u{a731}\u{1d1b}\u{1d1c}\
        \u{1d20}\u{1d21}\u{28f}\u{1d22}";
    assert_eq!(
        name_key(small_capitals),
        name_key("abcdefghijklmnoprstuvwyz")
    );
}

#[test]
fn a_letter_carries_at_most_two_combining_marks() {
    assert!(validate_name("a\u{301}\u{308}").is_ok());
    assert!(validate_name("ệ").is_ok());
    let zalgo = format!("a{}", "\u{301}\u{316}\u{334}\u{35c}\u{36f}".repeat(2));
    assert!(refusal(&zalgo).contains("combining marks"), "{zalgo}");
    // Counted on the NFC form: e + acute composes to é, which then takes two more.
    assert!(validate_name("e\u{301}\u{308}\u{323}").is_ok());
    assert!(validate_name("e\u{301}\u{308}\u{323}\u{330}").is_err());
}

#[test]
fn ordinary_names_and_the_console_names_still_pass() {
    for name in [
        "José",
        "наташа",
        "中文名",
        "محمد",
        "guest-3",
        "server",
        "mesa",
        "ana_b",
    ] {
        assert_eq!(validate_name(name), Ok(name.to_string()), "{name}");
    }
    for (a, b) in [("José", "jose"), ("наташа", "натаща"), ("ana", "anna")] {
        assert_ne!(name_key(a), name_key(b), "{a} and {b}");
    }
}
