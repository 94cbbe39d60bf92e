//! `probe --tls`: after an open verdict, a TLS handshake with the address under the target's
//! name, and what a person needs to know about the certificate: whom it is for and whether that
//! includes the host, who issued it, how long it has left, its fingerprint, and whether it
//! verifies against the system's roots (or `--tls-ca`). Gathers only; `render` prints.

use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use rustls::CertificateError;
use serde::Serialize;

use super::connect::{ChatCheck, check_chat_tls};
use crate::net::clock::millis;
use crate::net::sanitize::visible;
use crate::net::tls::certificate::{CertificateInfo, days};
use crate::net::tls::client::{chain_incomplete, explain};
use crate::net::tls::inspect::inspect;
use crate::net::tls::roots::Roots;

/// Fewer days than this before expiry is a warning: time to renew.
pub const EXPIRY_WARNING_DAYS: i64 = 14;

/// What the TLS check found on one address.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TlsCheck {
    /// The handshake failed (not TLS, an alert, a timeout): why. The fields below are then empty.
    pub error: Option<String>,
    /// Time from the TCP connection to the end of the handshake.
    pub handshake_ms: Option<f64>,
    /// `TLSv1.3` or `TLSv1.2`.
    pub version: Option<String>,
    /// The cipher suite, as IANA names it.
    pub cipher: Option<String>,
    /// The server's certificate.
    pub certificate: Option<CertificateInfo>,
    /// How many certificates the server sent (its own included).
    pub chain_length: usize,
    /// The server sent its certificate alone, though a CA (not itself) issued it and no root is
    /// that CA: the intermediate is missing (`cert.pem` served instead of `fullchain.pem`).
    pub chain_incomplete: bool,
    /// The certificate names the host probed.
    pub names_host: Option<bool>,
    /// The chain leads to a trusted root (and is within its dates).
    pub chain_verified: bool,
    /// The roots it was checked against: `system` or the `--tls-ca` file.
    pub verified_against: String,
    /// Why a client would refuse it; None: a client would accept it.
    pub problem: Option<String>,
    /// Remarks: expiry close, a name that suggests stale DNS, self-signed.
    pub warnings: Vec<String>,
    /// A client would accept this certificate for this host: the check passed.
    pub ok: bool,
}

/// Connects to `address` again and shakes hands as `host`; with `chat`, then runs the
/// `--chat` check over TLS (None when the handshake failed).
pub fn check(
    address: SocketAddr,
    host: &str,
    timeout: Duration,
    roots: &Roots,
    chat: bool,
) -> (TlsCheck, Option<ChatCheck>) {
    let verified_against = match &roots.private_ca {
        Some(file) => file.display().to_string(),
        None => "system".into(),
    };
    let failed = |error: String| TlsCheck {
        error: Some(error),
        handshake_ms: None,
        version: None,
        cipher: None,
        certificate: None,
        chain_length: 0,
        chain_incomplete: false,
        names_host: None,
        chain_verified: false,
        verified_against: verified_against.clone(),
        problem: None,
        warnings: Vec::new(),
        ok: false,
    };
    let tcp = match TcpStream::connect_timeout(&address, timeout) {
        Ok(tcp) => tcp,
        Err(err) => return (failed(format!("connecting again for TLS: {err}")), None),
    };
    let start = Instant::now();
    let (inspection, stream) = match inspect(tcp, host, roots, timeout) {
        Ok(Ok(seen)) => seen,
        Ok(Err(why)) => return (failed(why), None),
        Err(err) => return (failed(err.to_string()), None),
    };
    let handshake_ms = millis(start.elapsed());
    let chat = chat.then(|| check_chat_tls(&stream));
    // A polite close; the probe is done with the server either way.
    let _ = stream.shutdown(Shutdown::Both);
    let certificate = inspection
        .chain
        .first()
        .and_then(|der| CertificateInfo::parse(der));
    let names_host = certificate.as_ref().map(|c| c.names_host(host));
    let objection = inspection.objection.as_ref();
    let chain_verified = matches!(
        objection,
        None | Some(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
        )
    );
    let private_ca = roots.private_ca.is_some();
    let sent = inspection.chain.len();
    let problem = objection.map(|error| explain(error, private_ca, certificate.as_ref(), sent));
    let chain_incomplete = !private_ca
        && objection.is_some_and(|error| chain_incomplete(error, certificate.as_ref(), sent));
    // A name the verification refused is said in the problem already.
    let name_warning = names_host.filter(|_| !(chain_verified && problem.is_some()));
    let warnings = warnings(certificate.as_ref(), name_warning, host, chain_verified);
    let check = TlsCheck {
        error: None,
        handshake_ms: Some(handshake_ms),
        version: Some(inspection.negotiated.version),
        cipher: Some(inspection.negotiated.cipher),
        chain_length: sent,
        chain_incomplete,
        names_host,
        chain_verified,
        verified_against,
        ok: problem.is_none() && names_host == Some(true),
        problem,
        warnings,
        certificate,
    };
    (check, chat)
}

/// What deserves a `!` line.
fn warnings(
    certificate: Option<&CertificateInfo>,
    names_host: Option<bool>,
    host: &str,
    chain_verified: bool,
) -> Vec<String> {
    let Some(cert) = certificate else {
        return vec!["the certificate could not be read".into()];
    };
    let mut warnings = Vec::new();
    if cert.days_left < 0 {
        warnings.push(format!(
            "the certificate expired {} ago",
            days(-cert.days_left)
        ));
    } else if cert.days_left < EXPIRY_WARNING_DAYS {
        warnings.push(format!(
            "the certificate expires in {}: renew it",
            days(cert.days_left)
        ));
    }
    if names_host == Some(false) {
        warnings.push(match host.trim_matches(['[', ']']).parse::<std::net::IpAddr>() {
            // An address probed: no DNS involved.
            Ok(ip) => format!(
                "the certificate does not name the address {ip}: it is for {} (connect by one \
                 of them)",
                match cert.names.is_empty() {
                    true => "no name at all".to_string(),
                    false => visible(&cert.names.join(", ")).into_owned(),
                }
            ),
            Err(_) => format!(
                "the certificate does not name {host}: a classic sign of DNS pointing at an old \
                 address (another server answers there now)"
            ),
        });
    }
    // Self-signed and verified: it is the `--tls-ca` file's own certificate.
    if cert.self_signed && !chain_verified && cert.days_left < 0 {
        // A pin would be refused too: dates are checked even for a pinned certificate.
        warnings.push(
            "self-signed and expired: no client accepts it, pinned or not; the server must make \
             a new one (`soquete serve --tls --tls-renew`, or its own tools)"
                .into(),
        );
    } else if cert.self_signed && !chain_verified {
        warnings.push(
            "self-signed: compare its fingerprint with the one the server printed at start, then \
             give it to `soquete chat --tls --tls-fingerprint`"
                .into(),
        );
    }
    warnings
}
