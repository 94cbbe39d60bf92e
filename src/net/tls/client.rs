//! The client side of TLS: whom to trust and the verifier that applies it. A certificate from a
//! CA is checked against the system's roots (or the `--tls-ca` file's); one from no known CA
//! (self-signed) is trusted on first use, as ssh does: by the fingerprint the known-hosts file
//! remembers for the server, or else the one given with `--tls-fingerprint`, or else the user's
//! yes on a terminal (asked by the client, which then connects again). Anything else is a
//! [`Refusal`] that says what is wrong, in one line; nothing ever falls back to plain text.

use std::net::TcpStream;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::CertificateError;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

use super::certificate::CertificateInfo;
use super::judged::{Judge, connection};
use super::known_hosts::KnownHosts;
pub use super::roots::Roots;
use super::stream::TlsStream;
use super::{Fingerprint, describe_error};
use crate::error::{Context, Error, Result};
use crate::net::sanitize::visible;

/// How long the whole TLS handshake may take (after the TCP connection).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Overrides [`HANDSHAKE_TIMEOUT`] (milliseconds), for tests that cannot wait 10 s.
pub const HANDSHAKE_TIMEOUT_ENV: &str = "SOQUETE_TLS_HANDSHAKE_TIMEOUT_MS";

/// What a client trusts, and where it remembers self-signed servers.
#[derive(Debug, Clone)]
pub struct ClientTls {
    /// The CAs.
    pub roots: Roots,
    /// `--tls-fingerprint`: the self-signed certificate to accept on first use.
    pub fingerprint: Option<Fingerprint>,
    /// The known-hosts file; None: the system has no data directory and none was given.
    pub known_hosts: Option<KnownHosts>,
    /// How long each handshake may take, all of it ([`HANDSHAKE_TIMEOUT`]).
    pub handshake_timeout: Duration,
}

/// How the server's certificate came to be trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trusted {
    /// It chains to a root (the system's or `--tls-ca`'s) and names the host.
    ByCa,
    /// Its fingerprint is the one the known-hosts file remembers.
    ByKnownHost,
    /// Its fingerprint is the one `--tls-fingerprint` gave; it is now remembered.
    ByFingerprint,
}

/// Why a server's certificate was refused: each says what is wrong and what to do, in one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A certificate from no trusted CA, for a server never seen, and no fingerprint given.
    #[error(
        "{server} presents a certificate no trusted CA signed (self-signed?), fingerprint {fingerprint}; \
         if the server's operator confirms it, connect again with --tls-fingerprint {fingerprint} \
         (or from a terminal, to be asked)"
    )]
    Unknown {
        server: String,
        fingerprint: Fingerprint,
    },
    /// The certificate's fingerprint is not the one remembered: ssh's loudest warning.
    #[error(
        "WARNING: THE CERTIFICATE OF {server} HAS CHANGED: remembered {known}, presented {presented}. \
         Someone may be intercepting the connection, or the server made a new certificate; \
         if its operator confirms the new one, remove line {line} of {file} and connect again"
    )]
    Changed {
        server: String,
        known: Fingerprint,
        presented: Fingerprint,
        file: String,
        line: usize,
    },
    /// The certificate is not the one `--tls-fingerprint` named (`by_ca`: though a CA vouches
    /// for it: the user pinned another).
    #[error(
        "{server} presents certificate {presented}, not the {given} given with --tls-fingerprint{}",
        ca_hint(*.by_ca)
    )]
    Mismatch {
        server: String,
        given: Fingerprint,
        presented: Fingerprint,
        by_ca: bool,
    },
    /// The certificate is invalid: expired, for another name, not from the CA given.
    #[error("{server}'s certificate is refused: {why}")]
    Certificate { server: String, why: String },
    /// The handshake failed for another reason (the server does not speak TLS, an alert).
    #[error("TLS handshake with {server} failed: {why}")]
    Handshake { server: String, why: String },
}

/// What a [`Refusal::Mismatch`] adds when a CA vouches for the certificate.
fn ca_hint(by_ca: bool) -> &'static str {
    match by_ca {
        true => {
            " (a CA vouches for it, but the certificate pinned is another; without \
                 --tls-fingerprint the CA's word is enough)"
        }
        false => "",
    }
}

impl ClientTls {
    /// Makes a TLS connection over `tcp` to `host` (the name typed: checked against the
    /// certificate and sent as SNI); `server` is `HOST:PORT` as the known-hosts file spells it.
    /// An I/O failure during the handshake is an `Err(Error)`; a refused certificate is
    /// `Ok(Err(Refusal))`.
    pub fn connect(
        &self,
        tcp: TcpStream,
        host: &str,
        server: &str,
    ) -> Result<std::result::Result<(TlsStream, Trusted), Refusal>> {
        let known = match &self.known_hosts {
            Some(file) => file
                .lookup(server)
                .with_context(|| format!("reading {}", file.path().display()))?,
            None => None,
        };
        let verifier = Arc::new(Verifier {
            private_ca: self.roots.private_ca.is_some(),
            given: self.fingerprint,
            pin: match (&known, self.fingerprint) {
                (Some(known), _) => Some(Pin::Known(known.fingerprint, known.line)),
                (None, Some(given)) => Some(Pin::Given(given)),
                (None, None) => None,
            },
            decision: Mutex::new(None),
        });
        let conn = connection(&self.roots, Arc::clone(&verifier), host)?;
        let handshake = TlsStream::handshake(tcp, conn, self.handshake_timeout);
        let decision = verifier.decision.lock().map(|d| d.clone()).ok().flatten();
        let refusal = |why: String| Refusal::Handshake {
            server: server.to_string(),
            why,
        };
        let stream = match (handshake, decision) {
            (Ok(stream), Some(Decision::Trust(trusted))) => (stream, trusted),
            (Ok(_), _) => return Err(Error::Internal("TLS verified nothing".into())),
            (Err(_), Some(Decision::Refuse(why))) => {
                let refusal = why.into_refusal(server);
                return Ok(Err(match &self.known_hosts {
                    Some(file) => refusal.with_file(file.path()),
                    None => refusal,
                }));
            }
            (Err(err), _) if err.kind() == std::io::ErrorKind::InvalidData => {
                return Ok(Err(refusal(describe_error(&err))));
            }
            (Err(err), _) => {
                return Err(Error::io(format!("TLS handshake with {server}"), err));
            }
        };
        if stream.1 == Trusted::ByFingerprint
            && let (Some(file), Some(print)) = (&self.known_hosts, self.fingerprint)
        {
            self.remember(file, server, &print)?;
        }
        Ok(Ok(stream))
    }

    /// Remembers `fingerprint` for `server` (after the user said yes on a terminal).
    pub fn trust(&self, server: &str, fingerprint: &Fingerprint) -> Result<()> {
        match &self.known_hosts {
            Some(file) => self.remember(file, server, fingerprint),
            None => Err(Error::Usage(
                "no data directory to remember the server in: give --state-dir DIR".into(),
            )),
        }
    }

    fn remember(&self, file: &KnownHosts, server: &str, fingerprint: &Fingerprint) -> Result<()> {
        file.remember(server, fingerprint)
            .with_context(|| format!("writing {}", file.path().display()))
    }
}

/// The fingerprint a self-signed certificate must have.
#[derive(Debug, Clone, Copy)]
enum Pin {
    /// Remembered in the known-hosts file, at this line.
    Known(Fingerprint, usize),
    /// Given with --tls-fingerprint.
    Given(Fingerprint),
}

/// What the verifier decided, kept for the message after the handshake.
#[derive(Debug, Clone)]
enum Decision {
    Trust(Trusted),
    Refuse(Why),
}

/// A refusal before it knows the server's name and the file's.
#[derive(Debug, Clone)]
enum Why {
    Unknown(Fingerprint),
    Changed(Fingerprint, Fingerprint, usize),
    /// Given, presented, and whether a CA vouches for it.
    Mismatch(Fingerprint, Fingerprint, bool),
    Certificate(String),
}

impl Why {
    fn into_refusal(self, server: &str) -> Refusal {
        let server = server.to_string();
        match self {
            Why::Unknown(fingerprint) => Refusal::Unknown {
                server,
                fingerprint,
            },
            Why::Changed(known, presented, line) => Refusal::Changed {
                server,
                known,
                presented,
                file: String::new(),
                line,
            },
            Why::Mismatch(given, presented, by_ca) => Refusal::Mismatch {
                server,
                given,
                presented,
                by_ca,
            },
            Why::Certificate(why) => Refusal::Certificate { server, why },
        }
    }
}

impl Refusal {
    /// Names the known-hosts file in a [`Refusal::Changed`].
    pub fn with_file(mut self, path: &Path) -> Refusal {
        if let Refusal::Changed { file, .. } = &mut self {
            *file = path.display().to_string();
        }
        self
    }
}

/// The CA check, then the pin for a certificate no CA vouches for.
#[derive(Debug)]
struct Verifier {
    /// `--tls-ca` was given: a certificate it did not sign is refused, not pinned.
    private_ca: bool,
    /// `--tls-fingerprint`: any certificate, even one a CA vouches for, must have it.
    given: Option<Fingerprint>,
    pin: Option<Pin>,
    decision: Mutex<Option<Decision>>,
}

impl Verifier {
    /// Decides on `end_entity`, sent in a chain of `sent` certificates (its own included).
    fn decide(
        &self,
        end_entity: &CertificateDer<'_>,
        sent: usize,
        standard: std::result::Result<(), rustls::Error>,
    ) -> Decision {
        let presented = Fingerprint::of_der(end_entity);
        let error = match standard {
            Ok(()) => {
                return match self.given {
                    Some(given) if given != presented => {
                        Decision::Refuse(Why::Mismatch(given, presented, true))
                    }
                    _ => Decision::Trust(Trusted::ByCa),
                };
            }
            Err(rustls::Error::InvalidCertificate(error)) => error,
            Err(other) => return Decision::Refuse(Why::Certificate(other.to_string())),
        };
        let cert = CertificateInfo::parse(end_entity);
        // A CA's certificate sent without its intermediate is no case for a pin (it changes
        // at every renewal): the server's chain is to be fixed; one pinned already still works.
        let incomplete = self.pin.is_none() && chain_incomplete(&error, cert.as_ref(), sent);
        if !no_ca_vouches(&error, cert.as_ref()) || self.private_ca || incomplete {
            let why = explain(&error, self.private_ca, cert.as_ref(), sent);
            return Decision::Refuse(Why::Certificate(why));
        }
        match self.pin {
            Some(Pin::Known(known, _)) if known == presented => {
                Decision::Trust(Trusted::ByKnownHost)
            }
            Some(Pin::Known(known, line)) => Decision::Refuse(Why::Changed(known, presented, line)),
            Some(Pin::Given(given)) if given == presented => {
                Decision::Trust(Trusted::ByFingerprint)
            }
            Some(Pin::Given(given)) => Decision::Refuse(Why::Mismatch(given, presented, false)),
            None => Decision::Refuse(Why::Unknown(presented)),
        }
    }
}

/// Whether `error` only says that no CA vouches for `cert`: an unknown issuer, or a self-signed
/// certificate (which webpki calls a CA used as end entity when it says CA:TRUE, as `openssl req
/// -x509` makes it, and whose signature it checks against a root that bears the same name, when
/// one does: Debian's snakeoil root is `CN=localhost`, RSA, as `serve --tls` names its own).
/// The chat client trusts such a certificate on first use; the probe says it is self-signed.
pub fn no_ca_vouches(error: &CertificateError, cert: Option<&CertificateInfo>) -> bool {
    match error {
        CertificateError::UnknownIssuer => true,
        CertificateError::Other(_)
        | CertificateError::BadSignature
        | CertificateError::UnsupportedSignatureAlgorithmContext { .. }
        | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
            cert.is_some_and(|cert| cert.self_signed)
        }
        _ => false,
    }
}

/// Whether the server sent its certificate alone (`sent`: the chain's length) though a CA, not
/// itself, issued it, and no root is that CA: the intermediate certificate is missing (a server
/// given `cert.pem` instead of `fullchain.pem`). Not with `--tls-ca`, whose CA may sign leaves
/// itself: there it is a certificate that CA did not sign.
pub fn chain_incomplete(
    error: &CertificateError,
    cert: Option<&CertificateInfo>,
    sent: usize,
) -> bool {
    sent == 1
        && matches!(error, CertificateError::UnknownIssuer)
        && cert.is_some_and(|cert| !cert.self_signed)
}

/// A certificate error in the words a user acts on, never rustls's debug text; `cert`: the
/// certificate, as far as it reads; `sent`: how many certificates the server sent.
pub fn explain(
    error: &CertificateError,
    private_ca: bool,
    cert: Option<&CertificateInfo>,
    sent: usize,
) -> String {
    let names = cert.map_or(&[][..], |cert| &cert.names[..]);
    let self_signed = cert.is_some_and(|cert| cert.self_signed);
    match error {
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            let when = match error {
                CertificateError::ExpiredContext { not_after, .. } => {
                    format!(" on {}", date(*not_after))
                }
                _ => String::new(),
            };
            format!("it expired{when} (the server must renew it)")
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "it is not valid yet (is this machine's clock right?)".into()
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            let names = if names.is_empty() {
                "no name at all".to_string()
            } else {
                visible(&names.join(", ")).into_owned()
            };
            match error {
                // An address typed: no DNS involved, only a name the certificate carries works.
                CertificateError::NotValidForNameContext {
                    expected: ServerName::IpAddress(ip),
                    ..
                } => format!(
                    "it does not name the address {}: it is for {names} (connect by one of them)",
                    std::net::IpAddr::from(*ip)
                ),
                _ => {
                    let expected = match error {
                        CertificateError::NotValidForNameContext { expected, .. } => {
                            format!(", not {}", expected.to_str())
                        }
                        _ => String::new(),
                    };
                    format!(
                        "it is for {names}{expected}: a classic sign of DNS pointing at an old \
                         address (another server there now), or of a name the certificate does \
                         not list"
                    )
                }
            }
        }
        _ if private_ca
            && (no_ca_vouches(error, cert) || matches!(error, CertificateError::Other(_))) =>
        {
            if chain_incomplete(error, cert, sent) {
                // The CA may have issued it through an intermediate the server did not send.
                format!(
                    "the CA given with --tls-ca did not issue it itself, and the server sent no \
                     intermediate certificate (its issuer is {}): the server should serve the \
                     full chain (fullchain.pem), or the certificate is another CA's",
                    cert.map_or("?".into(), |cert| visible(&cert.issuer))
                )
            } else {
                "it was not issued by the CA given with --tls-ca".into()
            }
        }
        _ if self_signed && no_ca_vouches(error, cert) => {
            "it is self-signed: no CA vouches for it".into()
        }
        _ if chain_incomplete(error, cert, sent) => format!(
            "the server sent no intermediate certificate (its issuer is {}): the server should \
             serve the full chain (fullchain.pem)",
            cert.map_or("?".into(), |cert| visible(&cert.issuer))
        ),
        CertificateError::UnknownIssuer => "no trusted CA issued it (unknown issuer)".into(),
        other => in_words(other),
    }
}

/// The certificate errors [`explain`] has no more to say about, in words.
fn in_words(error: &CertificateError) -> String {
    use CertificateError::*;
    match error {
        BadEncoding => "it is not a well-formed certificate".into(),
        Revoked => "its CA revoked it".into(),
        UnhandledCriticalExtension => "it has a critical extension no client knows".into(),
        UnknownRevocationStatus => "its revocation status is unknown".into(),
        ExpiredRevocationList | ExpiredRevocationListContext { .. } => {
            "its CA's revocation list has expired".into()
        }
        BadSignature
        | UnsupportedSignatureAlgorithmContext { .. }
        | UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
            "its signature does not verify with the key of the CA it names (another CA with \
             that name, or a forged certificate)"
                .into()
        }
        InvalidPurpose | InvalidPurposeContext { .. } => {
            "it is not meant for a TLS server (its extended key usage)".into()
        }
        InvalidOcspResponse => "the server's OCSP response is invalid".into(),
        Other(other) => format!("it is refused: {other}"),
        _ => "it fails the standard certificate check".into(),
    }
}

/// A certificate time as a UTC date.
fn date(time: UnixTime) -> String {
    let secs = i64::try_from(time.as_secs()).unwrap_or(i64::MAX);
    chrono::DateTime::from_timestamp(secs, 0).map_or_else(
        || "?".into(),
        |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

impl Judge for Verifier {
    fn judge(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        standard: std::result::Result<(), rustls::Error>,
    ) -> bool {
        let decision = self.decide(end_entity, 1 + intermediates.len(), standard);
        let trusted = matches!(decision, Decision::Trust(_));
        if let Ok(mut slot) = self.decision.lock() {
            *slot = Some(decision);
        }
        trusted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::ServerName;

    /// A self-signed certificate for 127.0.0.1, valid over `years` (as offsets from now).
    fn self_signed(from: i32, to: i32) -> CertificateDer<'static> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        params.not_before = rcgen::date_time_ymd(2026 + from, 1, 1);
        params.not_after = rcgen::date_time_ymd(2026 + to, 1, 1);
        params.self_signed(&key).unwrap().der().clone()
    }

    fn verifier(pin: Option<Pin>) -> Verifier {
        Verifier {
            private_ca: false,
            given: None,
            pin,
            decision: Mutex::new(None),
        }
    }

    /// What `verifier` decides of `cert` for 127.0.0.1, after the system's standard check.
    fn decide(verifier: &Verifier, cert: &CertificateDer<'_>) -> Decision {
        let standard = Roots::load(None).unwrap().verifier().unwrap();
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let checked = standard
            .verify_server_cert(cert, &[], &name, &[], UnixTime::now())
            .map(|_| ());
        verifier.decide(cert, 1, checked)
    }

    #[test]
    fn a_self_signed_certificate_is_trusted_only_by_its_pin() {
        let cert = self_signed(-1, 5);
        let print = Fingerprint::of_der(&cert);
        let other = Fingerprint::of_der(b"another");
        assert!(matches!(
            decide(&verifier(None), &cert),
            Decision::Refuse(Why::Unknown(p)) if p == print
        ));
        assert!(matches!(
            decide(&verifier(Some(Pin::Given(print))), &cert),
            Decision::Trust(Trusted::ByFingerprint)
        ));
        assert!(matches!(
            decide(&verifier(Some(Pin::Given(other))), &cert),
            Decision::Refuse(Why::Mismatch(g, p, false)) if g == other && p == print
        ));
        assert!(matches!(
            decide(&verifier(Some(Pin::Known(print, 3))), &cert),
            Decision::Trust(Trusted::ByKnownHost)
        ));
        assert!(matches!(
            decide(&verifier(Some(Pin::Known(other, 3))), &cert),
            Decision::Refuse(Why::Changed(k, p, 3)) if k == other && p == print
        ));
    }

    #[test]
    fn a_pinned_certificate_out_of_its_dates_is_refused() {
        let expired = self_signed(-5, -1);
        let print = Fingerprint::of_der(&expired);
        match decide(&verifier(Some(Pin::Known(print, 1))), &expired) {
            Decision::Refuse(Why::Certificate(why)) => assert!(why.contains("expired"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_certificate_error_is_said_in_words_never_as_debug_text() {
        let cert = CertificateInfo::parse(&self_signed(-1, 5)).unwrap();
        let id = || {
            rustls::pki_types::AlgorithmIdentifier::from_slice(&[6, 8])
                .as_ref()
                .to_vec()
        };
        let errors = [
            CertificateError::BadEncoding,
            CertificateError::Revoked,
            CertificateError::UnhandledCriticalExtension,
            CertificateError::UnknownRevocationStatus,
            CertificateError::BadSignature,
            CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext {
                signature_algorithm_id: id(),
                public_key_algorithm_id: id(),
            },
            CertificateError::InvalidPurpose,
            CertificateError::InvalidOcspResponse,
            CertificateError::ApplicationVerificationFailure,
        ];
        for error in &errors {
            let said = explain(error, false, None, 2);
            assert!(!said.contains(['{', '[', ':']), "{error:?}: {said}");
            assert!(said.starts_with("it") || said.starts_with("the"), "{said}");
        }
        // A self-signed certificate is that, whatever the roots made of its signature.
        for error in &errors[4..6] {
            assert_eq!(
                explain(error, false, Some(&cert), 1),
                "it is self-signed: no CA vouches for it"
            );
        }
    }
}
