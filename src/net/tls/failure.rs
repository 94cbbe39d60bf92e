//! Why a client's TLS handshake failed, in words for the server's console: the common failures
//! (a client too old, nothing in common, our certificate refused) said as a person would, the
//! rest with rustls's names spelled out, never a Debug dump.

use rustls::{AlertDescription, Error, PeerIncompatible};

/// What the server's console says of a handshake rustls ended with `err`.
pub fn describe(err: &Error) -> String {
    match err {
        Error::PeerIncompatible(why) => incompatible(why),
        Error::AlertReceived(alert) => alert_received(*alert),
        Error::InvalidMessage(why) => format!(
            "the client sent something that is not a valid TLS message ({})",
            spelled(&format!("{why:?}"))
        ),
        Error::PeerMisbehaved(why) => format!(
            "the client broke the TLS protocol ({})",
            spelled(&format!("{why:?}"))
        ),
        Error::InappropriateHandshakeMessage { .. } | Error::InappropriateMessage { .. } => {
            "the client sent a TLS message out of turn".into()
        }
        Error::DecryptError => "the client's records could not be decrypted".into(),
        other => spelled(&other.to_string()),
    }
}

/// An I/O error in words: [`describe`] for one that carries rustls's error, else as it is.
pub fn describe_io(err: &std::io::Error) -> String {
    match err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<Error>())
    {
        Some(tls) => describe(tls),
        None => err.to_string(),
    }
}

/// The client and this server have no TLS in common.
fn incompatible(why: &PeerIncompatible) -> String {
    match why {
        PeerIncompatible::SignatureAlgorithmsExtensionRequired
        | PeerIncompatible::Tls12NotOffered
        | PeerIncompatible::Tls12NotOfferedOrEnabled
        | PeerIncompatible::SupportedVersionsExtensionRequired => {
            "the client offers only TLS 1.1 or older (this server speaks TLS 1.2 and 1.3)".into()
        }
        PeerIncompatible::NoCipherSuitesInCommon => {
            "no cipher suite in common (the client offers none of TLS 1.2 and 1.3's safe ones)"
                .into()
        }
        PeerIncompatible::NoKxGroupsInCommon
        | PeerIncompatible::NoEcPointFormatsInCommon
        | PeerIncompatible::UncompressedEcPointsRequired => {
            "no key exchange in common (the client offers no group this server has)".into()
        }
        PeerIncompatible::NoSignatureSchemesInCommon => {
            "no signature algorithm in common for this server's certificate key".into()
        }
        PeerIncompatible::NullCompressionRequired => {
            "the client asks for compression, which TLS no longer allows".into()
        }
        other => format!(
            "the client's TLS does not fit this server's ({})",
            spelled(&format!("{other:?}"))
        ),
    }
}

/// The client ended the handshake with an alert.
fn alert_received(alert: AlertDescription) -> String {
    let name = snake(&format!("{alert:?}"));
    match alert {
        AlertDescription::BadCertificate
        | AlertDescription::UnknownCA
        | AlertDescription::CertificateUnknown
        | AlertDescription::UnsupportedCertificate
        | AlertDescription::CertificateExpired
        | AlertDescription::CertificateRevoked => format!(
            "the client refused our certificate ({name} alert): it does not trust it (compare \
             the fingerprint, or serve the full chain)"
        ),
        AlertDescription::ProtocolVersion => {
            format!("the client refused every TLS version this server speaks ({name} alert)")
        }
        AlertDescription::HandshakeFailure | AlertDescription::InsufficientSecurity => {
            format!("the client found nothing acceptable in our answer ({name} alert)")
        }
        _ => format!("the client ended the handshake ({name} alert)"),
    }
}

/// A Rust name (`HandshakePayloadTooLarge`, or a Display with one in it) in lower-case words;
/// what follows the name (a value in parentheses) is left out.
fn spelled(text: &str) -> String {
    let mut out = String::new();
    let mut previous_lower = false;
    for c in text.chars() {
        if c == '(' || c == '{' {
            break;
        }
        if c.is_ascii_uppercase() {
            if previous_lower {
                out.push(' ');
            }
            out.push(c.to_ascii_lowercase());
            previous_lower = false;
        } else {
            out.push(c);
            previous_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        }
    }
    out.trim().to_string()
}

/// `BadCertificate` as TLS names the alert: `bad_certificate`.
fn snake(name: &str) -> String {
    spelled(name).replace(' ', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_failures_are_said_in_words_and_the_rest_spelled_out() {
        let old = describe(&Error::PeerIncompatible(
            PeerIncompatible::SignatureAlgorithmsExtensionRequired,
        ));
        assert_eq!(
            old,
            "the client offers only TLS 1.1 or older (this server speaks TLS 1.2 and 1.3)"
        );
        let none = describe(&Error::PeerIncompatible(
            PeerIncompatible::NoCipherSuitesInCommon,
        ));
        assert!(none.starts_with("no cipher suite in common"), "{none}");
        let refused = describe(&Error::AlertReceived(AlertDescription::BadCertificate));
        assert!(
            refused.starts_with("the client refused our certificate (bad_certificate alert)"),
            "{refused}"
        );
        let unknown = describe(&Error::AlertReceived(AlertDescription::UnknownCA));
        assert!(unknown.contains("(unknown_ca alert)"), "{unknown}");
        let corrupt = describe(&Error::InvalidMessage(
            rustls::InvalidMessage::HandshakePayloadTooLarge,
        ));
        assert_eq!(
            corrupt,
            "the client sent something that is not a valid TLS message (handshake payload too large)"
        );
        for err in [
            Error::PeerIncompatible(PeerIncompatible::ServerDoesNotSupportTls12Or13),
            Error::AlertReceived(AlertDescription::DecodeError),
            Error::PeerMisbehaved(rustls::PeerMisbehaved::TooManyKeyUpdateRequests),
            Error::General("boom".into()),
        ] {
            let said = describe(&err);
            assert!(
                !said
                    .chars()
                    .any(|c| c.is_ascii_uppercase() && c != 'T' && c != 'L' && c != 'S'),
                "{said}"
            );
        }
    }
}
