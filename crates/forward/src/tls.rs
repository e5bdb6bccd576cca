//! The TLS client settings both outputs share: the system's roots, or only a private CA's, and
//! an optional client certificate (RFC 5425 §5 mutual authentication).

use std::sync::Arc;

use rustls::crypto::ring::default_provider;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::ForwardError;

/// PEM material for a TLS client, as read from the configured files.
#[derive(Clone, Default)]
pub struct TlsMaterial {
    /// Trust only these CA certificates (a private CA); `None`: the system's roots.
    pub ca_pem: Option<Vec<u8>>,
    /// A client certificate chain and its key, for receivers that authenticate senders.
    pub client_cert_pem: Option<Vec<u8>>,
    pub client_key_pem: Option<latchkey_types::Secret<Vec<u8>>>,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("ca_pem", &self.ca_pem.is_some())
            .field("client_cert_pem", &self.client_cert_pem.is_some())
            .field(
                "client_key_pem",
                &self.client_key_pem.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

fn config_error(what: &str, e: impl std::fmt::Display) -> ForwardError {
    ForwardError::Config(format!("{what}: {e}"))
}

impl TlsMaterial {
    pub(crate) fn roots(&self) -> Result<rustls::RootCertStore, ForwardError> {
        let mut roots = rustls::RootCertStore::empty();
        match &self.ca_pem {
            Some(pem) => {
                for cert in CertificateDer::pem_slice_iter(pem) {
                    let cert = cert.map_err(|e| config_error("the CA file", e))?;
                    roots
                        .add(cert)
                        .map_err(|e| config_error("the CA file", e))?;
                }
                if roots.is_empty() {
                    return Err(ForwardError::Config(
                        "the CA file holds no certificate".into(),
                    ));
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                let (added, _) = roots.add_parsable_certificates(found.certs);
                if added == 0 {
                    return Err(ForwardError::Config(
                        "no system CA certificates found (install ca-certificates, or set a CA \
                         file)"
                            .into(),
                    ));
                }
            }
        }
        Ok(roots)
    }

    /// A rustls client configuration (ring, TLS 1.2 and 1.3).
    pub(crate) fn client_config(&self) -> Result<rustls::ClientConfig, ForwardError> {
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| config_error("TLS", e))?
            .with_root_certificates(self.roots()?);
        match (&self.client_cert_pem, &self.client_key_pem) {
            (None, None) => Ok(builder.with_no_client_auth()),
            (Some(cert), Some(key)) => {
                let chain = CertificateDer::pem_slice_iter(cert)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| config_error("the client certificate file", e))?;
                let key = PrivateKeyDer::from_pem_slice(key.expose()).map_err(|_| {
                    ForwardError::Config("the client key file holds no private key".into())
                })?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| config_error("the client certificate", e))
            }
            _ => Err(ForwardError::Config(
                "a client certificate needs its key file and the key its certificate file".into(),
            )),
        }
    }
}
