//! The rules a chat name follows, checked wherever a name comes in (`hello`, `/nick`, `--name`).

/// Longest nickname, in characters.
pub const MAX_NAME_CHARS: usize = 32;

/// Checks a proposed name: 1 to 32 characters, no spaces or control characters, not a command.
pub fn validate_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("a name cannot be empty".into());
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(format!("a name has at most {MAX_NAME_CHARS} characters"));
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("a name cannot contain spaces or control characters".into());
    }
    if name.starts_with(['/', '*', '!', '[', '<']) {
        return Err("a name cannot start with / * ! [ or <".into());
    }
    Ok(name.to_string())
}

/// The key two names are compared by: names are unique by this key, not by their spelling.
pub fn name_key(name: &str) -> String {
    name.to_lowercase()
}

#[cfg(test)]
mod tests {
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
}
