//! A certificate's SHA-256 fingerprint, written as `SHA256:` and 32 colon-separated hex pairs,
//! the form `openssl x509 -fingerprint -sha256` prints (after its `sha256 Fingerprint=`), so a
//! teacher can read it out and a student can compare it with either tool.

use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// The SHA-256 of a certificate's DER bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    pub fn of_der(der: &[u8]) -> Fingerprint {
        Fingerprint(Sha256::digest(der).into())
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SHA256:")?;
        for (i, byte) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{byte:02X}")?;
        }
        Ok(())
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "a fingerprint is SHA256: and 64 hex digits (colons optional), as `openssl x509 -fingerprint -sha256` prints"
)]
pub struct ParseFingerprintError;

/// Reads `SHA256:AB:CD:…`, with or without the prefix and the colons, in either case.
impl FromStr for Fingerprint {
    type Err = ParseFingerprintError;

    fn from_str(text: &str) -> Result<Fingerprint, ParseFingerprintError> {
        let text = text.trim();
        let hex = match text.get(..7) {
            Some(prefix) if prefix.eq_ignore_ascii_case("sha256:") => &text[7..],
            _ => text,
        };
        let digits: Vec<u8> = hex.bytes().filter(|&b| b != b':').collect();
        if digits.len() != 64 {
            return Err(ParseFingerprintError);
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(digits.chunks(2)) {
            let pair = std::str::from_utf8(pair).map_err(|_| ParseFingerprintError)?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| ParseFingerprintError)?;
        }
        Ok(Fingerprint(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_as_openssl_does_and_reads_back_in_every_spelling() {
        let print = Fingerprint::of_der(b"abc");
        let text = print.to_string();
        assert!(text.starts_with("SHA256:BA:78:16:BF:"), "{text}");
        assert_eq!(text.len(), 7 + 32 * 3 - 1);
        assert_eq!(text.parse::<Fingerprint>(), Ok(print));
        let bare: String = text[7..].replace(':', "").to_lowercase();
        assert_eq!(bare.parse::<Fingerprint>(), Ok(print));
        assert_eq!(
            "SHA256:12".parse::<Fingerprint>(),
            Err(ParseFingerprintError)
        );
        assert_eq!(
            "zz".repeat(32).parse::<Fingerprint>(),
            Err(ParseFingerprintError)
        );
    }
}
