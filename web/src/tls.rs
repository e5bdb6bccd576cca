//! Native TLS (`[server] tls_cert_file` + `tls_key_file`), for deployments without a reverse
//! proxy: rustls with ring (the portal's one TLS stack), TLS 1.3 and 1.2, HTTP/1.1.
//!
//! The certificate is re-read when its files change (an ACME client or a deployment replaced
//! them): every handshake compares the files' identity (inode, size, modification time) with the
//! loaded pair's, one `stat` each, and loads the new pair then. A pair that does not load (half
//! written, key and certificate not matching) is logged once and the previous one stays in use —
//! a renewal can never take the portal off the air — and is tried again every [`RETRY`] until it
//! loads (a file still being written, or rewritten within one timestamp tick). At start a pair
//! that does not load is an error.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

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

/// How often a pair that did not load is tried again.
const RETRY: Duration = Duration::from_secs(10);

/// One file's identity: inode, size, modification time (a copy that keeps the time, or a rewrite
/// in place, still changes one of them).
type FileId = Option<(u64, u64, Option<SystemTime>)>;
/// What "changed" means for the pair.
type Stamp = (FileId, FileId);

struct Loaded {
    key: Arc<CertifiedKey>,
    stamp: Stamp,
    /// When the files as stamped last failed to load (`None`: they are the loaded pair).
    failed: Option<Instant>,
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
    let id = |p: &Path| -> FileId {
        let m = std::fs::metadata(p).ok()?;
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(&m);
        #[cfg(not(unix))]
        let inode = 0;
        Some((inode, m.len(), m.modified().ok()))
    };
    (id(cert), id(key))
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
            loaded: RwLock::new(Loaded {
                key: loaded,
                stamp,
                failed: None,
            }),
        })
    }

    /// The pair in use, reloaded first if its files changed (or a failed load is due again).
    fn current(&self) -> Arc<CertifiedKey> {
        let now = stamp(&self.cert, &self.key);
        let due = |l: &Loaded| l.stamp != now || l.failed.is_some_and(|t| t.elapsed() >= RETRY);
        {
            let loaded = self.loaded.read().unwrap_or_else(|e| e.into_inner());
            if !due(&loaded) {
                return Arc::clone(&loaded.key);
            }
        }
        let mut loaded = self.loaded.write().unwrap_or_else(|e| e.into_inner());
        if due(&loaded) {
            let changed = loaded.stamp != now;
            match load(&self.cert, &self.key) {
                Ok(key) => {
                    tracing::info!(cert = %self.cert.display(), "TLS certificate reloaded");
                    loaded.key = key;
                    loaded.failed = None;
                }
                Err(e) => {
                    // Said once per change of the files; tried again quietly meanwhile.
                    if changed {
                        tracing::error!(error = %format!("{e:#}"), "TLS certificate not reloaded; the previous one stays in use");
                    }
                    loaded.failed = Some(Instant::now());
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
