//! A TLS handshake that looks rather than trusts, for the probe: it completes whatever the
//! certificate (the handshake's signatures are still checked), and reports the chain, what was
//! negotiated, and what the standard verification (chain to the roots, dates, name) says.

use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use rustls::{CertificateError, Error as TlsError};

use super::judged::{Judge, connection};
use super::roots::Roots;
use super::stream::{Negotiated, TlsStream};
use crate::error::Result;

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

/// Shakes hands with `host` (SNI and the name checked) over `tcp` within `timeout`; returns
/// what it saw and the connection, still open. `Ok(Err(text))`: the handshake itself failed
/// (not TLS, an alert, a timeout).
pub fn inspect(
    tcp: TcpStream,
    host: &str,
    roots: &Roots,
    timeout: Duration,
) -> Result<std::result::Result<(Inspection, TlsStream), String>> {
    let looker = Arc::new(Looker {
        seen: Mutex::new(None),
    });
    let conn = connection(roots, Arc::clone(&looker), host)?;
    let stream = match TlsStream::handshake(tcp, conn, timeout) {
        Ok(stream) => stream,
        Err(err) => return Ok(Err(super::describe_error(&err))),
    };
    let negotiated = stream.negotiated();
    let seen = looker.seen.lock().ok().and_then(|mut seen| seen.take());
    let Some((chain, objection)) = seen else {
        return Ok(Err("the server sent no certificate".into()));
    };
    let inspection = Inspection {
        negotiated,
        chain,
        objection,
    };
    Ok(Ok((inspection, stream)))
}

/// Accepts any certificate, remembering it and the standard check's objection.
#[derive(Debug)]
struct Looker {
    seen: Mutex<Option<(Vec<CertificateDer<'static>>, Option<CertificateError>)>>,
}

impl Judge for Looker {
    fn judge(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        standard: std::result::Result<(), TlsError>,
    ) -> bool {
        let objection = match standard {
            Ok(()) => None,
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
        true
    }
}
