//! Latchkey's server-side state.
//!
//! Everything that matters for security lives here, in the database, so that every portal
//! instance enforces the same limits: self-service **flows** bound to one directory user,
//! issued one-time **codes**, **throttle** counters, enrolled **methods** (secrets encrypted at
//! rest) and the append-only **audit** trail.
//!
//! - [`Store`]: the trait the flows program against (dyn-compatible: hold an `Arc<dyn Store>`).
//!   Its documentation states the contract every backend keeps (atomicity, bound state, secrets).
//! - [`SqliteStore`]: the SQLite backend (WAL, busy timeout, foreign keys, embedded migrations
//!   from `migrations/sqlite/`). A PostgreSQL backend will implement the same trait with the
//!   migrations in `migrations/postgres/`; [`open`] picks the backend from the URL.
//! - [`EncryptionKey`] / [`Cipher`]: the at-rest key (file created with mode 0600 on first run, or
//!   an environment variable) and XChaCha20-Poly1305 sealing bound to (table, user, method).
//!
//! Time is always a parameter (`now`); nothing here reads the clock, so tests control it.

mod audit;
mod code;
mod crypto;
mod enrollment;
mod error;
mod flow;
mod gateway;
mod sqlite;
mod store;
mod throttle;

use std::sync::Arc;

pub use audit::{AuditDayCount, AuditEvent, AuditId, AuditQuery, AuditRecord, Outcome};
pub use code::{CodeAttempt, CodeId, IssuedCode, NewCode};
pub use crypto::{Cipher, EncryptionKey, aad};
pub use enrollment::{Enrollment, EnrollmentState, NewEnrollment};
pub use error::{KeyError, Result, StoreError};
pub use flow::{Flow, FlowId, FlowLifetime, FlowToken, FlowUpdate, NewFlow};
pub use gateway::{ClaimedJob, FinishOutcome, Gateway, Job, JobState, NewJob};
pub use sqlite::{SqliteLocation, SqliteOptions, SqliteStore};
pub use store::{PurgeReport, Store, StoreFuture};
pub use throttle::{Limit, ThrottleDecision, ThrottleKey};

/// Opens the store named by a database URL, as configuration gives it:
/// `sqlite:///var/lib/latchkey/latchkey.db` (or `sqlite:relative/path.db`, resolved against the
/// working directory; callers resolve config-relative paths first) or `sqlite::memory:`.
/// `postgres://` is refused until that backend exists.
pub async fn open(url: &str, cipher: Cipher) -> Result<Arc<dyn Store>> {
    let options = if url == "sqlite::memory:" {
        SqliteOptions::memory()
    } else if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .filter(|p| !p.is_empty())
    {
        SqliteOptions::file(path)
    } else {
        // The URL may carry a password: report only its scheme.
        let scheme = url.split_once(':').map_or("(none)", |(s, _)| s);
        return Err(StoreError::UnsupportedUrl(format!("scheme {scheme}")));
    };
    Ok(Arc::new(SqliteStore::open(&options, cipher).await?))
}
