//! Latchkey's server-side state.
//!
//! Everything that matters for security lives here, in the database, so that every portal
//! instance enforces the same limits: self-service **flows** bound to one directory user,
//! issued one-time **codes**, **throttle** counters, enrolled **methods** (secrets encrypted at
//! rest) and the append-only **audit** trail.
//!
//! - [`Store`]: the trait the flows program against (dyn-compatible: hold an `Arc<dyn Store>`).
//!   Its documentation states the contract every backend keeps (atomicity, bound state, secrets).
//! - [`SqliteStore`]: the SQLite backend through rusqlite (WAL, busy timeout, foreign keys,
//!   embedded migrations from `migrations/sqlite/`), the single-instance default.
//! - [`PostgresStore`]: the PostgreSQL backend (migrations from `migrations/postgres/`) for several
//!   portal instances sharing one database. [`open`] picks the backend from the URL; the flows
//!   never know which one they have.
//! - [`EncryptionKey`] / [`Cipher`]: the at-rest key (file created with mode 0600 on first run, or
//!   an environment variable) and XChaCha20-Poly1305 sealing bound to (table, user, method).
//!
//! Time is always a parameter (`now`); nothing here reads the clock, so tests control it.
#![cfg_attr(test, allow(clippy::disallowed_methods))] // unit tests read the system clock and randomness directly

mod audit;
mod code;
mod crypto;
mod enrollment;
mod error;
mod flow;
mod forward;
mod gateway;
mod mirror;
mod outbox;
mod passkey;
mod postgres;
mod rows;
mod sqlite;
mod store;
mod throttle;

use std::sync::Arc;

use latchkey_types::Secret;

pub use audit::{
    AuditDayCount, AuditEvent, AuditId, AuditObserver, AuditQuery, AuditRecord, CallObserver,
    Outcome,
};
pub use code::{CodeAttempt, CodeId, IssuedCode, NewCode};
pub use crypto::{Cipher, EncryptionKey, aad};
pub use enrollment::{EnrolledMethod, Enrollment, EnrollmentState, NewEnrollment};
pub use error::{DatabaseError, KeyError, Result, SqliteMigrationError, StoreError};
pub use flow::{
    Flow, FlowId, FlowLifetime, FlowPurpose, FlowStep, FlowToken, FlowUpdate, NewFlow, Verification,
};
pub use forward::{AuditPosition, ForwardItem, ForwardStart};
pub use gateway::{
    AfterChange, Channel, ClaimedJob, FinishOutcome, Gateway, JOB_KINDS, JOB_RETENTION, Job,
    JobCount, JobKind, JobState, JobTarget, NewJob, Target,
};
pub use mirror::{
    GroupKind, MemberEdit, MemberType, MirrorCollection, MirrorCounts, MirrorGroup, MirrorLink,
    MirrorListedUser, MirrorPage, MirrorParent, MirrorSyncState, MirrorUser,
};
pub use outbox::{NewNotice, NoticeOutcome, QueuedNotice};
pub use passkey::{NewPasskey, Passkey, PasskeyAdded};
pub use postgres::{PostgresOptions, PostgresStore};
pub use sqlite::{SqliteLocation, SqliteOptions, SqliteStore};
pub use store::{
    AuditStore, CodeStore, EnrollmentStore, FlowStore, ForwardStore, GatewayStore, MirrorStore,
    NoticeStore, PasskeyStore, PurgeReport, Store, StoreFuture, ThrottleStore,
};
pub use throttle::{Limit, ThrottleDecision, ThrottleKey};

/// The store's role traits, for code that holds a concrete backend (`SqliteStore`,
/// `PostgresStore`) rather than `dyn Store`: `use latchkey_store::prelude::*;`.
pub mod prelude {
    pub use crate::store::{
        AuditStore, CodeStore, EnrollmentStore, FlowStore, ForwardStore, GatewayStore, MirrorStore,
        NoticeStore, PasskeyStore, Store, ThrottleStore,
    };
}

/// Opens the store named by a database URL, as configuration gives it:
/// `sqlite:///var/lib/latchkey/latchkey.db` (or `sqlite:relative/path.db`, resolved against the
/// working directory; callers resolve config-relative paths first), `sqlite::memory:`, or
/// `postgres://user:password@host:5432/database?sslmode=verify-full` (also `postgresql://`).
pub async fn open(url: &str, cipher: Cipher) -> Result<Arc<dyn Store>> {
    open_with(url, None, cipher).await
}

/// [`open`] with the database password kept out of the URL (read from a file or the environment
/// by the caller). Only PostgreSQL uses a password; for SQLite it is refused rather than ignored.
pub async fn open_with(
    url: &str,
    password: Option<Secret<String>>,
    cipher: Cipher,
) -> Result<Arc<dyn Store>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let options = PostgresOptions::new(url).password(password);
        return Ok(Arc::new(PostgresStore::open(&options, cipher).await?));
    }
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
    if password.is_some() {
        return Err(StoreError::Invalid(
            "a database password is only used with postgres:// URLs",
        ));
    }
    Ok(Arc::new(SqliteStore::open(&options, cipher).await?))
}
