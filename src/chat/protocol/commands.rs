//! The commands people type (`/nick`, `/who`, `/me`, `/help`, `/quit`, `exit`), read the same
//! way from raw and structured clients and at the server console, and the `/help` text.

/// A chat command, typed by raw and structured clients alike (and at the server console).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Nick(String),
    Who,
    Me(String),
    Help,
    Quit,
    Status,
    Unknown(String),
}

/// Reads `text` as a command: `/word args`, or exactly `exit` (the labs' way to end a session).
pub fn parse_command(text: &str) -> Option<Command> {
    let trimmed = text.trim();
    if trimmed == "exit" {
        return Some(Command::Quit);
    }
    let rest = trimmed.strip_prefix('/')?;
    let (word, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let args = args.trim();
    Some(match word.to_ascii_lowercase().as_str() {
        "nick" | "name" => Command::Nick(args.to_string()),
        "who" | "names" => Command::Who,
        "me" => Command::Me(args.to_string()),
        "help" | "?" => Command::Help,
        "quit" | "exit" | "bye" => Command::Quit,
        "status" => Command::Status,
        _ => Command::Unknown(word.to_string()),
    })
}

/// The help text every client gets for `/help`.
pub const HELP: &[&str] = &[
    "/nick NAME   change your name (names are unique, case-insensitive)",
    "/who         list members with their IP:port",
    "/me ACTION   say what you are doing",
    "/quit        leave (a line that is exactly `exit` does too)",
    "/help        this list",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse() {
        assert_eq!(
            parse_command("/nick bia"),
            Some(Command::Nick("bia".into()))
        );
        assert_eq!(parse_command("/WHO"), Some(Command::Who));
        assert_eq!(
            parse_command("/me waves"),
            Some(Command::Me("waves".into()))
        );
        assert_eq!(parse_command("exit"), Some(Command::Quit));
        assert_eq!(parse_command("exit now"), None);
        assert_eq!(
            parse_command("/frobnicate"),
            Some(Command::Unknown("frobnicate".into()))
        );
        assert_eq!(parse_command("hello"), None);
    }
}
