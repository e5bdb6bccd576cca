//! TLS configuration (rustls with ring) and what the check reports about the DC's certificate.

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use super::error::LdapError;

/// What the server certificate is verified against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrustSource {
    /// PEM file with one or more CA certificates.
    CaFile(std::path::PathBuf),
    /// The operating system's trust store.
    System,
    /// No verification at all (labs only; reported loudly).
    Insecure,
}

impl std::fmt::Display for TrustSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrustSource::CaFile(p) => write!(f, "CA file {}", p.display()),
            TrustSource::System => f.write_str("the system trust store"),
            TrustSource::Insecure => {
                f.write_str("NOTHING (insecure mode: certificate not verified)")
            }
        }
    }
}

/// The rustls client configuration for `trust` (`None`: insecure, nothing verified). Also used
/// by the gateway's HTTPS client towards the portal.
pub fn client_config(trust: &TrustSource) -> Result<Option<Arc<rustls::ClientConfig>>, LdapError> {
    let mut roots = RootCertStore::empty();
    match trust {
        TrustSource::Insecure => return Ok(None),
        TrustSource::CaFile(path) => {
            for cert in read_pem_certs(path)? {
                roots
                    .add(cert)
                    .map_err(|e| LdapError::Config(format!("CA file {}: {e}", path.display())))?;
            }
        }
        TrustSource::System => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                // Individual unparsable system certificates are skipped, as browsers do.
                if let Err(e) = roots.add(cert) {
                    tracing::debug!(error = %e, "a system CA certificate is skipped");
                }
            }
            if roots.is_empty() {
                return Err(LdapError::Config(
                    "the system trust store is empty or unreadable; set ca_file".into(),
                ));
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| LdapError::Config(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Some(Arc::new(config)))
}

fn read_pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, LdapError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| LdapError::Config(format!("CA file {}: {e}", path.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| LdapError::Config(format!("CA file {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(LdapError::Config(format!(
            "CA file {}: no PEM certificate in it",
            path.display()
        )));
    }
    Ok(certs)
}

/// The facts about a server certificate the check reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateInfo {
    pub subject: String,
    pub issuer: String,
    /// DNS names and IP addresses from subjectAltName.
    pub names: Vec<String>,
    /// Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
}

/// Parses a DER certificate for the report.
pub fn describe_certificate(der: &[u8]) -> Result<CertificateInfo, String> {
    use x509_parser::prelude::*;
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| format!("unparsable certificate: {e}"))?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                GeneralName::DNSName(d) => names.push((*d).to_string()),
                GeneralName::IPAddress(ip) => match ip.len() {
                    4 => names.push(format!("{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3])),
                    16 => {
                        let mut b = [0u8; 16];
                        b.copy_from_slice(ip);
                        names.push(std::net::Ipv6Addr::from(b).to_string());
                    }
                    _ => {}
                },
                _ => {}
            }
        }
    }
    Ok(CertificateInfo {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        names,
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
    })
}
