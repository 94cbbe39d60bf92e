//! The one certificate verifier of the client side: rustls's standard check (chain to the
//! roots, dates, name) runs first, then a [`Judge`] decides with its result in hand — the chat
//! client's trust on first use, the probe's look at anything. A certificate the `--tls-ca` file
//! holds byte for byte passes the standard check by its name and dates ([`Roots::check_given`]). The handshake's signatures are
//! always checked by the standard verifier: a certificate accepted is one whose key signed.

use std::fmt;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct};
use rustls::{Error as TlsError, SignatureScheme};

use super::roots::{Roots, provider};
use crate::error::{Error, Result};

/// Decides on the server's certificate once the standard check has spoken.
pub trait Judge: fmt::Debug + Send + Sync {
    /// True accepts `end_entity` (sent with `intermediates`); `standard` is what rustls's own
    /// verifier said of it.
    fn judge(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        standard: std::result::Result<(), TlsError>,
    ) -> bool;
}

#[derive(Debug)]
struct Judged<J> {
    standard: Arc<WebPkiServerVerifier>,
    roots: Roots,
    judge: Arc<J>,
}

/// A client connection to `host` (sent as SNI, and the name the standard check wants) whose
/// certificate `judge` decides on, over `roots`.
pub fn connection<J: Judge + 'static>(
    roots: &Roots,
    judge: Arc<J>,
    host: &str,
) -> Result<ClientConnection> {
    let verifier = Arc::new(Judged {
        standard: roots.verifier()?,
        roots: roots.clone(),
        judge,
    });
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|err| Error::Internal(format!("TLS versions: {err}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    let name = ServerName::try_from(host.trim_matches(['[', ']']).to_string())
        .map_err(|_| Error::Usage(format!("'{host}' is not a name TLS can check")))?;
    ClientConnection::new(Arc::new(config), name)
        .map_err(|err| Error::Internal(format!("starting TLS: {err}")))
}

impl<J: Judge> ServerCertVerifier for Judged<J> {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, TlsError> {
        let standard = self
            .standard
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .map(|_| ())
            .or_else(|err| {
                (self.roots.check_given(end_entity, server_name, now)).unwrap_or(Err(err))
            });
        match self.judge.judge(end_entity, intermediates, standard) {
            true => Ok(ServerCertVerified::assertion()),
            false => Err(TlsError::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, TlsError> {
        self.standard.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, TlsError> {
        self.standard.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.standard.supported_verify_schemes()
    }
}
