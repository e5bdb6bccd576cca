//! The store's error type. Messages never contain secrets, codes or key material: a failed
//! decryption says which row kind failed, not what was in it.

use std::path::PathBuf;

/// Everything a [`crate::Store`] call or the key loading can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database answered with an error or could not be reached.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying the embedded migrations failed (or the database is newer than this program).
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A ciphertext did not authenticate: wrong key, tampered data, or a row copied to another
    /// user or method (the associated data no longer matches).
    #[error("cannot decrypt {what}: wrong key, tampered data or a row moved to another user")]
    Decrypt { what: &'static str },
    /// Encryption itself failed (should not happen; reported rather than unwrapped).
    #[error("cannot encrypt {what}")]
    Encrypt { what: &'static str },
    /// The encryption key could not be loaded or created.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A row holds a value this program cannot read (e.g. an object id that is not a GUID).
    #[error("unreadable value in {table}.{column}")]
    Corrupt {
        table: &'static str,
        column: &'static str,
    },
    /// The configured database URL names a backend this build does not support.
    #[error(
        "unsupported database URL (expected sqlite://PATH, sqlite::memory: or postgres://...): {0}"
    )]
    UnsupportedUrl(String),
    /// The caller passed a value the store refuses (e.g. a limit of zero, a negative duration).
    #[error("invalid argument: {0}")]
    Invalid(&'static str),
}

/// Why the at-rest encryption key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key file {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "key file {0} is readable by group or others (mode {mode:o}); run: chmod 600 {0}",
        .path.display()
    )]
    Permissions { path: PathBuf, mode: u32 },
    #[error("environment variable {0} is not set")]
    EnvMissing(String),
    /// The content is not base64 of exactly 32 bytes. The content itself is never echoed.
    #[error("{origin}: not a base64-encoded 256-bit key")]
    Format { origin: String },
    #[error("no system randomness available")]
    Random,
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
