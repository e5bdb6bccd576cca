//! Native TLS (`[server] tls_cert_file` + `tls_key_file`), for deployments without a reverse
//! proxy: rustls with ring (the portal's one TLS stack), TLS 1.3 and 1.2, HTTP/1.1.
//!
//! The certificate is re-read when its files change (an ACME client or a deployment replaced
//! them): every handshake compares the files' modification times with the loaded pair's, one
//! `stat` each, and loads the new pair then. A pair that does not load (half written, key and
//! certificate not matching) is logged and the previous one stays in use: a renewal can never
//! take the portal off the air. At start a pair that does not load is an error.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use anyhow::Context;
use rustls::crypto::ring as provider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The server's TLS configuration, with the certificate pair loaded (an error says which file
/// and why).
pub fn server_config(cert: &Path, key: &Path) -> anyhow::Result<rustls::ServerConfig> {
    let resolver = Reloading::new(cert, key)?;
    let mut config =
        rustls::ServerConfig::builder_with_provider(Arc::new(provider::default_provider()))
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The files' modification times: what "changed" means.
type Stamp = (Option<SystemTime>, Option<SystemTime>);

struct Loaded {
    key: Arc<CertifiedKey>,
    stamp: Stamp,
}

/// A certificate resolver that follows its files.
struct Reloading {
    cert: PathBuf,
    key: PathBuf,
    loaded: RwLock<Loaded>,
}

impl std::fmt::Debug for Reloading {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloading")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

fn stamp(cert: &Path, key: &Path) -> Stamp {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    (modified(cert), modified(key))
}

/// Reads the pair: the chain (leaf first) and its private key (PKCS#8, PKCS#1 or SEC1 PEM).
fn load(cert: &Path, key: &Path) -> anyhow::Result<Arc<CertifiedKey>> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("key `server.tls_cert_file` ({})", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("key `server.tls_cert_file` ({}): not PEM", cert.display()))?;
    anyhow::ensure!(
        !chain.is_empty(),
        "key `server.tls_cert_file` ({}): no certificate in it",
        cert.display()
    );
    let private = PrivateKeyDer::from_pem_file(key).with_context(|| {
        format!(
            "key `server.tls_key_file` ({}): no PEM private key",
            key.display()
        )
    })?;
    let signing = provider::sign::any_supported_type(&private).with_context(|| {
        format!(
            "key `server.tls_key_file` ({}): unsupported key",
            key.display()
        )
    })?;
    let certified = CertifiedKey::new(chain, signing);
    certified
        .keys_match()
        .context("`server.tls_key_file` is not the key of `server.tls_cert_file`")?;
    Ok(Arc::new(certified))
}

impl Reloading {
    fn new(cert: &Path, key: &Path) -> anyhow::Result<Self> {
        let stamp = stamp(cert, key);
        let loaded = load(cert, key)?;
        Ok(Self {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            loaded: RwLock::new(Loaded { key: loaded, stamp }),
        })
    }

    /// The pair in use, reloaded first if its files changed.
    fn current(&self) -> Arc<CertifiedKey> {
        let now = stamp(&self.cert, &self.key);
        {
            let loaded = self.loaded.read().unwrap_or_else(|e| e.into_inner());
            if loaded.stamp == now {
                return Arc::clone(&loaded.key);
            }
        }
        let mut loaded = self.loaded.write().unwrap_or_else(|e| e.into_inner());
        if loaded.stamp != now {
            match load(&self.cert, &self.key) {
                Ok(key) => {
                    tracing::info!(cert = %self.cert.display(), "TLS certificate reloaded");
                    loaded.key = key;
                }
                // Remembered as seen, so a broken pair is reported once per change.
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "TLS certificate not reloaded; the previous one stays in use")
                }
            }
            loaded.stamp = now;
        }
        Arc::clone(&loaded.key)
    }
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}
