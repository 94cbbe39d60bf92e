//! What the operator is told about the pair they serve, one line each: a certificate that has
//! expired or soon will, a CA's certificate served without its chain (warnings: it is served);
//! and, instead of rustls's names, why a pair cannot be served at all: a passphrase on the key,
//! the chain in the wrong order, a key that is another certificate's.

use std::sync::Arc;

use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::certificate::{CertificateInfo, days};
use super::roots::provider;
use crate::net::sanitize::neutralize;

/// Days before its end from which a certificate being served is worth a warning.
pub const EXPIRY_WARNING_DAYS: i64 = 14;

/// The warnings about a chain being served (its own certificate first): one line each, none
/// when all is well.
pub fn warnings(chain: &[CertificateDer<'_>]) -> Vec<String> {
    let Some(leaf) = chain.first().and_then(|der| CertificateInfo::parse(der)) else {
        return Vec::new();
    };
    let mut lines = Vec::new();
    let day = leaf.not_after.get(..10).unwrap_or(&leaf.not_after);
    if leaf.days_left < 0 {
        lines.push(format!(
            "tls: the certificate has EXPIRED on {day}: every verifying client will refuse it; renew it"
        ));
    } else if leaf.days_left < EXPIRY_WARNING_DAYS {
        let when = match leaf.days_left {
            0 => "in less than a day".to_string(),
            n => format!("in {}", days(n)),
        };
        lines.push(format!(
            "tls: the certificate expires {when} ({day}): renew it"
        ));
    }
    if chain.len() == 1 && !leaf.self_signed {
        lines.push(format!(
            "tls: only the server's certificate, no intermediate (issuer {}): clients will not \
             verify it; serve the full chain (fullchain.pem)",
            neutralize(&leaf.issuer)
        ));
    }
    lines
}

/// Why a key file cannot be used when it is passphrase-protected (an encrypted PKCS#8 key, or
/// a traditional one with `Proc-Type: 4,ENCRYPTED`); None otherwise.
pub fn encrypted_key(key_pem: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(key_pem);
    let encrypted = text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || text
            .lines()
            .any(|line| line.trim() == "Proc-Type: 4,ENCRYPTED");
    encrypted.then(|| {
        "the key file is passphrase-protected: give an unencrypted key \
         (openssl pkey -in KEY -out PLAIN.key)"
            .to_string()
    })
}

/// Why rustls refused `chain` with `key` (`err`), in words: the key is another certificate's
/// in the file (the chain's order is wrong), or none's.
pub fn misfit(
    chain: &[CertificateDer<'_>],
    key: &PrivateKeyDer<'_>,
    err: &rustls::Error,
) -> String {
    let rustls::Error::InconsistentKeys(_) = err else {
        return format!("the key does not fit the certificate: {err}");
    };
    let Ok(signing) = provider().key_provider.load_private_key(key.clone_key()) else {
        return format!("the key does not fit the certificate: {err}");
    };
    let fits = |der: &CertificateDer<'_>| {
        CertifiedKey::new(vec![der.clone().into_owned()], Arc::clone(&signing))
            .keys_match()
            .is_ok()
    };
    match chain.iter().skip(1).position(fits) {
        Some(at) => format!(
            "the key belongs to certificate {} in the file, not the first: the server's own \
             certificate must come first in the file (leaf first, then the chain)",
            at + 2
        ),
        None => "the key does not belong to the certificate (nor to any in the file)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::tls::server::identity;
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    /// A CA (PEM) and a leaf it signed for `days` more days (PEM, and its key's PEM).
    fn ca_and_leaf(days: i64) -> (String, String, String) {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, "Test CA");
        let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate().unwrap();
        let mut leaf = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let epoch = rcgen::date_time_ymd(1970, 1, 1);
        let at = |days: i64| {
            let secs = now.as_secs() as i64 + days * 86_400 + 3600;
            epoch + Duration::from_secs(secs as u64)
        };
        leaf.not_before = at(days.min(0) - 30);
        leaf.not_after = at(days);
        let leaf_pem = leaf.signed_by(&key, &issuer).unwrap().pem();
        (ca_pem, leaf_pem, key.serialize_pem())
    }

    fn warned(pem: &str) -> Vec<String> {
        let chain: Vec<_> = rustls_pki_types::pem::PemObject::pem_slice_iter(pem.as_bytes())
            .map(Result::unwrap)
            .collect();
        warnings(&chain)
    }

    #[test]
    fn an_ending_certificate_and_a_missing_chain_are_warned_about() {
        let (ca, leaf, _) = ca_and_leaf(4);
        let lines = warned(&format!("{leaf}{ca}"));
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].starts_with("tls: the certificate expires in 4 days (20"),
            "{lines:?}"
        );
        assert!(lines[0].ends_with("): renew it"), "{lines:?}");
        let lines = warned(&leaf);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(
            lines[1],
            "tls: only the server's certificate, no intermediate (issuer CN=Test CA): clients \
             will not verify it; serve the full chain (fullchain.pem)"
        );
        let (ca, leaf, _) = ca_and_leaf(-3);
        let lines = warned(&format!("{leaf}{ca}"));
        assert!(
            lines[0].starts_with("tls: the certificate has EXPIRED on 20"),
            "{lines:?}"
        );
        assert!(
            lines[0].contains("every verifying client will refuse it"),
            "{lines:?}"
        );
        let (ca, leaf, _) = ca_and_leaf(90);
        assert!(warned(&format!("{leaf}{ca}")).is_empty());
        assert!(
            warned(&ca).is_empty(),
            "a self-signed certificate has no chain"
        );
    }

    #[test]
    fn a_pair_that_cannot_be_served_is_explained_in_words() {
        let (ca, leaf, key) = ca_and_leaf(90);
        let err = identity(format!("{ca}{leaf}").as_bytes(), key.as_bytes())
            .err()
            .unwrap();
        assert!(
            err.contains("the server's own certificate must come first in the file (leaf first, then the chain)"),
            "{err}"
        );
        let other = KeyPair::generate().unwrap().serialize_pem();
        let err = identity(format!("{leaf}{ca}").as_bytes(), other.as_bytes())
            .err()
            .unwrap();
        assert!(
            err.contains("the key does not belong to the certificate"),
            "{err}"
        );
        assert!(!err.contains("KeyMismatch"), "{err}");
        let encrypted = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHDBOBgkqhkiG9w0BBQ0wQTApBgkqhkiG9w0BBQwwHAQI\n-----END ENCRYPTED PRIVATE KEY-----\n";
        let err = identity(leaf.as_bytes(), encrypted.as_bytes())
            .err()
            .unwrap();
        assert!(
            err.contains("the key file is passphrase-protected"),
            "{err}"
        );
        let traditional = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,00112233445566778899AABBCCDDEEFF\n\nAAAA\n-----END RSA PRIVATE KEY-----\n";
        let err = identity(leaf.as_bytes(), traditional.as_bytes())
            .err()
            .unwrap();
        assert!(
            err.contains("the key file is passphrase-protected"),
            "{err}"
        );
    }
}
