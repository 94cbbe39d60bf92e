//! A TLS handshake that looks rather than trusts, for the probe: it completes whatever the
//! certificate (the handshake's signatures are still checked), and reports the chain, what was
//! negotiated, and what the standard verification (chain to the roots, dates, name) says.

use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct};
use rustls::{Error as TlsError, SignatureScheme};

use super::client::{Roots, provider};
use super::stream::{Negotiated, TlsStream};
use crate::error::{Error, Result};

/// What one handshake showed.
#[derive(Debug, Clone)]
pub struct Inspection {
    /// Version and cipher suite.
    pub negotiated: Negotiated,
    /// The certificates the server sent, its own first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The standard verification's objection; None: a client would accept it as it is.
    pub objection: Option<CertificateError>,
}

/// Shakes hands with `host` (SNI and the name checked) over `tcp` within `timeout`.
/// `Ok(Err(text))`: the handshake itself failed (not TLS, an alert, a timeout).
pub fn inspect(
    tcp: TcpStream,
    host: &str,
    roots: &Roots,
    timeout: Duration,
) -> Result<std::result::Result<Inspection, String>> {
    let looker = Arc::new(Looker {
        standard: roots.verifier()?,
        seen: Mutex::new(None),
    });
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|err| Error::Internal(format!("TLS versions: {err}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::clone(&looker) as Arc<dyn ServerCertVerifier>)
        .with_no_client_auth();
    let name = ServerName::try_from(host.trim_matches(['[', ']']).to_string())
        .map_err(|_| Error::Usage(format!("'{host}' is not a name TLS can check")))?;
    let conn = ClientConnection::new(Arc::new(config), name)
        .map_err(|err| Error::Internal(format!("starting TLS: {err}")))?;
    let stream = match TlsStream::handshake(tcp, conn, timeout) {
        Ok(stream) => stream,
        Err(err) => return Ok(Err(super::describe_error(&err))),
    };
    let negotiated = stream.negotiated();
    // A polite close; the probe is done with the server either way.
    let _ = stream.shutdown(Shutdown::Both);
    let seen = looker.seen.lock().ok().and_then(|mut seen| seen.take());
    let Some((chain, objection)) = seen else {
        return Ok(Err("the server sent no certificate".into()));
    };
    Ok(Ok(Inspection {
        negotiated,
        chain,
        objection,
    }))
}

/// Accepts any certificate, remembering it and the standard verifier's view of it.
#[derive(Debug)]
struct Looker {
    standard: Arc<WebPkiServerVerifier>,
    seen: Mutex<Option<(Vec<CertificateDer<'static>>, Option<CertificateError>)>>,
}

impl ServerCertVerifier for Looker {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, TlsError> {
        let objection = match self.standard.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(_) => None,
            Err(TlsError::InvalidCertificate(error)) => Some(error),
            Err(other) => Some(CertificateError::Other(rustls::OtherError(Arc::new(
                std::io::Error::other(other.to_string()),
            )))),
        };
        let chain = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|cert| cert.clone().into_owned())
            .collect();
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some((chain, objection));
        }
        Ok(ServerCertVerified::assertion())
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
