//! Secrets at rest: XChaCha20-Poly1305 with a 256-bit key kept outside the database.
//!
//! Blob layout: `version (1 byte) ‖ nonce (24 bytes) ‖ ciphertext ‖ tag (16 bytes)`. Nonces are
//! random (192 bits: no practical collision risk, no counter to keep across restarts). The version
//! byte leaves room for key rotation without guessing which key sealed a row.
//!
//! The associated data ([`aad`]) names the table, the user and the method, so a ciphertext copied
//! into another user's or method's row fails to decrypt instead of handing that user the seed.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use latchkey_types::{ObjectId, Secret};
use ring::rand::{SecureRandom, SystemRandom};

use crate::error::{KeyError, StoreError};

const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// A 256-bit at-rest key. Never printed (`Debug` shows `[redacted]`), never written anywhere but
/// the key file it was generated into.
#[derive(Clone)]
pub struct EncryptionKey([u8; 32]);

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EncryptionKey([redacted])")
    }
}

impl EncryptionKey {
    /// A fresh random key.
    pub fn generate() -> Result<Self, KeyError> {
        let k = latchkey_types::random::bytes::<32>().map_err(|_| KeyError::Random)?;
        Ok(Self(k))
    }

    /// Standard base64 of exactly 32 bytes; surrounding whitespace is ignored. `origin` names
    /// where the text came from, for the error message (the text itself is never echoed).
    pub fn from_base64(text: &Secret<String>, origin: &str) -> Result<Self, KeyError> {
        let bad = || KeyError::Format {
            origin: origin.to_string(),
        };
        let bytes = STANDARD
            .decode(text.expose().trim().as_bytes())
            .map_err(|_| bad())?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| bad())?;
        Ok(Self(key))
    }

    /// Reads the key from environment variable `var` (base64).
    pub fn from_env(var: &str) -> Result<Self, KeyError> {
        let value = std::env::var(var).map_err(|_| KeyError::EnvMissing(var.to_string()))?;
        Self::from_base64(&Secret::new(value), &format!("environment variable {var}"))
    }

    /// Reads the key file, or creates it with a fresh key (mode 0600) when it does not exist.
    ///
    /// An existing file readable by group or others is refused: the key is the only thing that
    /// separates a copy of the database from every enrolled TOTP seed. Creation is race-free: the
    /// key is written to a private temporary file and hard-linked into place, so two processes
    /// starting together end up with the same key and nobody reads a half-written file.
    pub fn load_or_create(path: &Path) -> Result<Self, KeyError> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                check_private(path)?;
                Self::from_base64(&Secret::new(text), &format!("key file {}", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate()?;
                match key.write_new(path) {
                    Ok(()) => {
                        tracing::info!(path = %path.display(), "generated a new at-rest encryption key");
                        Ok(key)
                    }
                    // Someone else created it in the meantime: theirs wins.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        Self::load_or_create(path)
                    }
                    Err(source) => Err(KeyError::Io {
                        path: path.to_path_buf(),
                        source,
                    }),
                }
            }
            Err(source) => Err(KeyError::Io {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    fn write_new(&self, path: &Path) -> std::io::Result<()> {
        let suffix = latchkey_types::random::bytes::<8>()
            .map_err(|_| std::io::Error::other("no system randomness"))?;
        let tmp = tmp_path(path, u64::from_le_bytes(suffix));
        let result = (|| {
            let mut f = private_create(&tmp)?;
            f.write_all(STANDARD.encode(self.0).as_bytes())?;
            f.write_all(b"\n")?;
            f.sync_all()?;
            std::fs::hard_link(&tmp, path)
        })();
        // The temporary name is gone after a successful link; left over only after a failure.
        if let Err(e) = std::fs::remove_file(&tmp)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(error = %e, file = %tmp.display(), "cannot remove a temporary key file");
        }
        result
    }
}

fn tmp_path(path: &Path, n: u64) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{n:016x}"));
    path.with_file_name(name)
}

#[cfg(unix)]
fn private_create(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn private_create(path: &Path) -> std::io::Result<std::fs::File> {
    // Windows: the file inherits the folder's ACL; the installer makes that folder private.
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), KeyError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyError::Permissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> Result<(), KeyError> {
    Ok(())
}

/// Seals and opens secrets with one [`EncryptionKey`]. Cheap to clone.
#[derive(Clone)]
pub struct Cipher {
    aead: XChaCha20Poly1305,
    rng: SystemRandom,
}

impl fmt::Debug for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cipher([redacted])")
    }
}

impl Cipher {
    pub fn new(key: &EncryptionKey) -> Self {
        Self {
            aead: XChaCha20Poly1305::new(&key.0.into()),
            rng: latchkey_types::random::generator(),
        }
    }

    /// Encrypts `plaintext`, binding it to `aad`. `what` names the kind of secret for errors.
    pub fn seal(
        &self,
        plaintext: &[u8],
        aad: &[u8],
        what: &'static str,
    ) -> Result<Vec<u8>, StoreError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| StoreError::Encrypt { what })?;
        let ct = self
            .aead
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| StoreError::Encrypt { what })?;
        let mut blob = Vec::with_capacity(1 + NONCE_LEN + ct.len());
        blob.push(VERSION);
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&ct);
        Ok(blob)
    }

    /// Decrypts a blob made by [`Cipher::seal`] with the same `aad`.
    pub fn open(
        &self,
        blob: &[u8],
        aad: &[u8],
        what: &'static str,
    ) -> Result<Secret<Vec<u8>>, StoreError> {
        let err = || StoreError::Decrypt { what };
        if blob.len() < 1 + NONCE_LEN + TAG_LEN || blob[0] != VERSION {
            return Err(err());
        }
        let (nonce, ct) = blob[1..].split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| err())?;
        self.aead
            .decrypt(&XNonce::from(nonce), Payload { msg: ct, aad })
            .map(Secret::new)
            .map_err(|_| err())
    }
}

/// Associated data for a secret stored in `table` for `subject`'s `method`. Length-prefixed parts,
/// so no two different triples encode the same bytes.
pub fn aad(table: &str, subject: &ObjectId, method: &str) -> Vec<u8> {
    let subject = subject.to_string();
    let mut out = Vec::with_capacity(32 + table.len() + subject.len() + method.len());
    out.extend_from_slice(b"latchkey-aad-v1");
    for part in [table, subject.as_str(), method] {
        out.extend_from_slice(&(part.len() as u32).to_be_bytes());
        out.extend_from_slice(part.as_bytes());
    }
    out
}

/// Associated data for a value sealed into the row `id` of `table` (no subject or method): the
/// blob fails to open anywhere else.
pub(crate) fn row_aad(table: &str, id: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + table.len() + id.len());
    out.extend_from_slice(b"latchkey-row-aad-v1");
    for part in [table, id] {
        out.extend_from_slice(&(part.len() as u32).to_be_bytes());
        out.extend_from_slice(part.as_bytes());
    }
    out
}

impl EncryptionKey {
    /// A 256-bit subkey for another purpose (`b"csrf"`, `b"codes"`): HMAC-SHA256(key, label).
    /// One key file then serves every secret the portal needs across restarts and instances,
    /// and knowing a subkey reveals neither the at-rest key nor the other subkeys.
    pub fn derive(&self, label: &[u8]) -> [u8; 32] {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.0);
        let tag = ring::hmac::sign(&key, label);
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }
}
