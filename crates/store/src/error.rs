//! The store's error type. Messages never contain secrets, codes or key material: a failed
//! decryption says which row kind failed, not what was in it.

use std::path::PathBuf;

/// Everything a [`crate::Store`] call or the key loading can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database answered with an error or could not be reached.
    #[error("database error: {0}")]
    Database(#[source] DatabaseError),
    /// Applying the embedded PostgreSQL migrations failed (or the database is newer than this
    /// program).
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The SQLite database's migration record does not fit this program's migrations.
    #[error("database migration failed: {0}")]
    SqliteMigration(#[from] SqliteMigrationError),
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
    /// The system's random number generator failed: no id, token or nonce was made.
    #[error("{0}")]
    NoRandomness(#[from] latchkey_types::random::NoRandomness),
    /// The SQLite database opened read-only (file permissions, a read-only filesystem or
    /// mount): every request writes, so the portal refuses to start rather than answer nothing
    /// but errors.
    #[error(
        "SQLite database {}: read-only (file permissions or a read-only filesystem); the portal \
         writes to it on every request: give the service account write access to the file and \
         its folder",
        .path.display()
    )]
    ReadOnly { path: PathBuf },
    /// Audit forwarding positions this PostgreSQL server cannot have written: the database was
    /// restored from a logical dump (pg_dump) into another server, whose transaction ids are
    /// lower. Forwarding stops rather than skip the new events.
    #[error(
        "audit forwarding: the audit trail holds transaction ids ahead of this PostgreSQL \
         server's (the database was restored from pg_dump into another server); forwarding \
         stops until the positions are rebased (README, \"Backups\")"
    )]
    RestoredPositions,
    /// PostgreSQL could not be reached, or refused the connection, at start.
    #[error("PostgreSQL at {target}: {cause}")]
    Unreachable { target: String, cause: String },
    /// A connection to a PostgreSQL server on another host that would not be encrypted and
    /// authenticated: credentials and users' data would cross the network readable.
    #[error(
        "PostgreSQL at {target}: sslmode={mode} does not authenticate the server, so credentials \
         and data could be read or the database impersonated on the network; a server that is not \
         on this host needs sslmode=verify-full in `store.database_url` (with \
         sslrootcert=/path/to/ca.pem for a private CA)"
    )]
    Insecure { target: String, mode: String },
}

/// The driver's error, per backend. Neither driver puts bound values (secrets, codes) into its
/// messages: they name the statement's failure (constraint, lock, I/O), not the data.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    /// PostgreSQL, through sqlx.
    #[error(transparent)]
    Postgres(#[from] sqlx::Error),
    /// SQLite, through rusqlite.
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// The store was closed ([`crate::SqliteStore::close`]); it takes no more statements.
    #[error("the store is closed")]
    Closed,
    /// The SQLite background checkpoint thread could not be started.
    #[error("cannot start the SQLite checkpoint thread: {0}")]
    CheckpointThread(#[source] std::io::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        Self::Database(DatabaseError::Postgres(e))
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Database(DatabaseError::Sqlite(e))
    }
}

/// Why the SQLite migrations could not be applied. The wording follows sqlx's migrator, which
/// kept the same bookkeeping table (`_sqlx_migrations`) before this runner.
#[derive(Debug, thiserror::Error)]
pub enum SqliteMigrationError {
    /// A recorded migration's checksum differs from the SQL embedded in this program.
    #[error("migration {0} was previously applied but has been modified")]
    Modified(i64),
    /// The database records a migration this program does not know (it is newer).
    #[error("migration {0} was previously applied but is missing in the resolved migrations")]
    Unknown(i64),
    /// A migration is recorded as failed (`success = false`).
    #[error("migration {0} is partially applied; fix and remove row from `_sqlx_migrations` table")]
    Dirty(i64),
    /// Running a migration's SQL failed.
    #[error("while executing migration {version}: {source}")]
    Execute {
        version: i64,
        #[source]
        source: rusqlite::Error,
    },
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
