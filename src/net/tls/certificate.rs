//! What a person wants to know about a certificate (x509-parser): whom it is for, who issued
//! it, until when, and its fingerprint; whether it names a host. Text from the certificate is
//! the server's (hostile): callers neutralise it before a terminal.

use std::net::IpAddr;

use serde::Serialize;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::Fingerprint;

/// One certificate, described.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CertificateInfo {
    /// The subject, as `CN=…, O=…`.
    pub subject: String,
    /// The names it is valid for: DNS names and IP addresses of its subjectAltName.
    pub names: Vec<String>,
    /// The issuer, as `CN=…, O=…`.
    pub issuer: String,
    /// Subject and issuer are the same: self-signed (or a root).
    pub self_signed: bool,
    /// Valid from, RFC 3339.
    pub not_before: String,
    /// Valid until, RFC 3339.
    pub not_after: String,
    /// Whole days from now until `not_after` (negative once expired).
    pub days_left: i64,
    /// SHA-256 of the DER, `SHA256:AB:…`.
    pub fingerprint: String,
}

/// `n` days in words: "1 day", "3 days".
pub fn days(n: i64) -> String {
    if n.abs() == 1 {
        format!("{n} day")
    } else {
        format!("{n} days")
    }
}

impl CertificateInfo {
    /// Reads a DER certificate; None when it does not parse.
    pub fn parse(der: &[u8]) -> Option<CertificateInfo> {
        let (_, cert) = X509Certificate::from_der(der).ok()?;
        let validity = cert.validity();
        let rfc3339 = |time: &x509_parser::time::ASN1Time| {
            chrono::DateTime::from_timestamp(time.timestamp(), 0)
                .map_or_else(String::new, |t| t.to_rfc3339())
        };
        let now = chrono::Utc::now().timestamp();
        Some(CertificateInfo {
            subject: cert.subject().to_string(),
            names: names(&cert),
            issuer: cert.issuer().to_string(),
            self_signed: cert.subject().as_raw() == cert.issuer().as_raw(),
            not_before: rfc3339(&validity.not_before),
            not_after: rfc3339(&validity.not_after),
            days_left: (validity.not_after.timestamp() - now).div_euclid(86_400),
            fingerprint: Fingerprint::of_der(der).to_string(),
        })
    }

    /// Whether `host` (a name or an address, as typed) is among the names; a `*.` wildcard
    /// covers one label, as TLS clients match it.
    pub fn names_host(&self, host: &str) -> bool {
        let host = host.trim_matches(['[', ']']);
        if let Ok(ip) = host.parse::<IpAddr>() {
            return self.names.iter().any(|n| n.parse::<IpAddr>() == Ok(ip));
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.names.iter().any(|name| {
            let name = name.to_ascii_lowercase();
            match name.strip_prefix("*.") {
                Some(parent) => host
                    .split_once('.')
                    .is_some_and(|(label, rest)| !label.is_empty() && rest == parent),
                None => name == host,
            }
        })
    }
}

/// The DNS names and IP addresses of the subjectAltName.
fn names(cert: &X509Certificate<'_>) -> Vec<String> {
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some(dns.to_string()),
            GeneralName::IPAddress(bytes) => ip_of(bytes).map(|ip| ip.to_string()),
            _ => None,
        })
        .collect()
}

fn ip_of(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(names: &[&str]) -> CertificateInfo {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(names)
            .unwrap()
            .self_signed(&key)
            .unwrap();
        CertificateInfo::parse(cert.der()).unwrap()
    }

    #[test]
    fn reads_names_and_matches_hosts_as_tls_does() {
        let cert = info(&["chat.example.org", "*.ddns.net", "127.0.0.1", "::1"]);
        assert_eq!(
            cert.names,
            ["chat.example.org", "*.ddns.net", "127.0.0.1", "::1"]
        );
        assert!(cert.self_signed);
        assert!(cert.days_left > 1000, "rcgen's default runs to 4096");
        assert!(cert.fingerprint.starts_with("SHA256:"));
        for host in [
            "chat.example.org",
            "CHAT.example.org.",
            "lab.ddns.net",
            "127.0.0.1",
            "[::1]",
        ] {
            assert!(cert.names_host(host), "{host}");
        }
        for host in ["example.org", "a.b.ddns.net", "ddns.net", "127.0.0.2"] {
            assert!(!cert.names_host(host), "{host}");
        }
    }

    #[test]
    fn one_day_is_said_as_one() {
        assert_eq!(days(1), "1 day");
        assert_eq!(days(-1), "-1 day");
        assert_eq!(days(0), "0 days");
        assert_eq!(days(14), "14 days");
    }
}
