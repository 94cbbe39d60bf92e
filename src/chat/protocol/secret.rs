//! A secret a frame carries (a resume token, a room's password): on the wire the plain string it
//! is, never shown by `Debug`, so no debug print, log or panic message can leak it.

use serde::{Deserialize, Serialize};

/// A string that is secret: serialized as itself, debug-printed as `Secret(…)`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(secret: String) -> Secret {
        Secret(secret)
    }

    /// The secret itself, for the one place that needs it (hashing, comparing, sending).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_its_string_on_the_wire_and_hidden_from_debug() {
        let secret = Secret::new("0123abcd".into());
        assert_eq!(serde_json::to_string(&secret).unwrap(), r#""0123abcd""#);
        assert_eq!(
            serde_json::from_str::<Secret>(r#""0123abcd""#).unwrap(),
            secret
        );
        assert_eq!(format!("{secret:?}"), "Secret(…)");
        assert_eq!(secret.expose(), "0123abcd");
    }
}
