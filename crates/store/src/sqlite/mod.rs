//! The SQLite backend: one file in WAL mode (or an in-memory database for tests and demos),
//! through rusqlite.
//!
//! Statements run on the calling thread, synchronously, inside the async fns: they are point
//! statements of a few microseconds, and handing each one to a worker thread and back (what
//! sqlx-sqlite does) cost more than the statement itself (two thread wake-ups per statement;
//! see issue 3, "Benchmark"). No lock is held across an `.await`: there is none while a
//! connection is borrowed.
//!
//! A file database has ONE writer connection behind a mutex (SQLite allows one writer at a time;
//! queueing in-process is cheaper than SQLite's busy handler, which sleeps) and a few read-only
//! connections for plain lookups (readers run in parallel under WAL). The busy timeout stays for
//! other processes writing the same file (e.g. `latchkey gateway register`).

mod audit;
mod checkpoint;
mod codes;
mod enrollments;
mod flows;
mod forward;
mod gateway;
mod migrate;
mod mirror;
mod outbox;
mod passkeys;
mod roles;
mod throttle;

pub(crate) use audit::day_from_number;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, Row, Rows};
use time::OffsetDateTime;

use self::checkpoint::Checkpointer;
use crate::crypto::Cipher;
use crate::error::{DatabaseError, Result, StoreError};
use crate::store::PurgeReport;

/// The embedded SQLite migrations, in order. Add a file under `migrations/sqlite/` and a line
/// here (and the matching PostgreSQL file).
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "audit_search",
        include_str!("../../migrations/sqlite/0002_audit_search.sql"),
    ),
    (
        3,
        "gateway",
        include_str!("../../migrations/sqlite/0003_gateway.sql"),
    ),
    (
        4,
        "gateway_allowed_kinds",
        include_str!("../../migrations/sqlite/0004_gateway_allowed_kinds.sql"),
    ),
    (
        5,
        "gateway_job_after_change",
        include_str!("../../migrations/sqlite/0005_gateway_job_after_change.sql"),
    ),
    (
        6,
        "notice_outbox",
        include_str!("../../migrations/sqlite/0006_notice_outbox.sql"),
    ),
    (
        7,
        "passkeys",
        include_str!("../../migrations/sqlite/0007_passkeys.sql"),
    ),
    (
        8,
        "audit_forwarding",
        include_str!("../../migrations/sqlite/0008_audit_forwarding.sql"),
    ),
    (
        9,
        "directory_mirror",
        include_str!("../../migrations/sqlite/0009_directory_mirror.sql"),
    ),
];

/// Prepared statements kept per connection. The backend has about 40 fixed statements plus a few
/// whose text varies (throttle limits, audit filters, subject lists); rusqlite's default of 16
/// would re-parse the hot ones on every flow.
const STATEMENT_CACHE: usize = 256;

/// Where the database lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SqliteLocation {
    /// A file, created if missing (its folder must exist).
    File(PathBuf),
    /// A private in-memory database that lives as long as the store (tests, demo).
    Memory,
}

/// Connection settings for [`SqliteStore::open`].
#[derive(Clone, Debug)]
pub struct SqliteOptions {
    pub location: SqliteLocation,
    /// Read-only connections of a file database (readers run in parallel under WAL). Writes go
    /// through one connection of their own: SQLite allows one writer at a time, and queueing
    /// writers on an in-process lock is much cheaper than letting several connections fight for
    /// the database lock in SQLite's busy handler, which sleeps. Ignored for memory, which always
    /// uses one connection.
    pub max_connections: u32,
    /// How long a connection waits for another process's lock before failing with "database is
    /// locked".
    pub busy_timeout: Duration,
}

impl SqliteOptions {
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self {
            location: SqliteLocation::File(path.into()),
            // Reads are short point lookups; a few connections keep two cores busy, and each
            // keeps its own page cache (memory).
            max_connections: 2,
            busy_timeout: Duration::from_secs(5),
        }
    }
    pub fn memory() -> Self {
        Self {
            location: SqliteLocation::Memory,
            max_connections: 1,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// One connection, `None` once the store is closed.
type Slot = Mutex<Option<Connection>>;

/// [`Store`] on SQLite through rusqlite. Cloning shares the connections.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    /// The one connection that writes (every statement that changes something, and reads that
    /// must see the state a write is about to change, run here).
    writer: Slot,
    /// Read-only connections for plain lookups (a file database; empty for memory, whose reads
    /// use the writer).
    readers: Vec<Slot>,
    /// Where the next read starts looking for a free reader.
    next_reader: AtomicUsize,
    /// WAL checkpoints off the request path (a file database; `None` for memory or closed).
    checkpointer: Mutex<Option<Checkpointer>>,
    cipher: Cipher,
    observer: crate::audit::ObserverSlot,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("readers", &self.inner.readers.len())
            .finish_non_exhaustive()
    }
}

/// Sets what every connection needs: the busy timeout, foreign keys, `synchronous=NORMAL` (safe
/// in WAL: a power cut may lose the last commits, never corrupt), the page cache and the
/// statement cache.
fn configure(conn: &Connection, busy_timeout: Duration) -> rusqlite::Result<()> {
    conn.busy_timeout(busy_timeout)?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // 1 MiB of private page cache per connection instead of SQLite's 2 MiB: the hot set (open
    // flows, codes, throttles, index pages) is small, and the operating system caches the file
    // anyway, so the larger private copy mostly duplicates it in the portal's RSS.
    conn.pragma_update(None, "cache_size", PAGE_CACHE_KIB)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(())
}

/// SQLite's `cache_size` in its negative-means-KiB form.
const PAGE_CACHE_KIB: i64 = -1024;

/// A poisoned lock only means a caller panicked while holding the connection; rusqlite rolled
/// back any transaction it had open when the panic dropped it, so the connection is usable.
fn unpoison<T>(r: std::result::Result<T, PoisonError<T>>) -> T {
    r.unwrap_or_else(PoisonError::into_inner)
}

impl SqliteStore {
    /// Opens (creating if needed) the database, sets WAL, `synchronous=NORMAL`, the busy timeout
    /// and foreign keys on every connection, and applies pending migrations.
    pub async fn open(options: &SqliteOptions, cipher: Cipher) -> Result<Self> {
        let (writer, readers, checkpointer) = match &options.location {
            SqliteLocation::File(path) => {
                // No SQLITE_OPEN_URI: the path is a file name, never interpreted as a URI.
                let mut writer = Connection::open_with_flags(
                    path,
                    OpenFlags::SQLITE_OPEN_READ_WRITE
                        | OpenFlags::SQLITE_OPEN_CREATE
                        | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                // SQLite falls back to read-only without a word when the file or its mount cannot
                // be written; a portal on such a database could only answer errors. Checked
                // before anything reads the file (a WAL database read-only fails differently).
                if writer.is_readonly(rusqlite::MAIN_DB)? {
                    return Err(StoreError::ReadOnly { path: path.clone() });
                }
                configure(&writer, options.busy_timeout)?;
                // WAL is a property of the file; the pragma answers with the mode now in force.
                let mode: String =
                    writer.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
                if !mode.eq_ignore_ascii_case("wal") {
                    tracing::warn!(mode, "SQLite did not switch the database to WAL");
                }
                // Checkpoints run on their own thread (checkpoint.rs); this is only the bound.
                writer.pragma_update(None, "wal_autocheckpoint", checkpoint::BACKSTOP_PAGES)?;
                // Migrations first: the readers open a database that has its tables.
                migrate::run(&mut writer, MIGRATIONS)?;
                let mut readers = Vec::new();
                for _ in 0..options.max_connections.max(1) {
                    let reader = Connection::open_with_flags(
                        path,
                        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                    )?;
                    configure(&reader, options.busy_timeout)?;
                    readers.push(Mutex::new(Some(reader)));
                }
                let checkpointer = Checkpointer::start(path, options.busy_timeout)?;
                (writer, readers, Some(checkpointer))
            }
            SqliteLocation::Memory => {
                // A private database of this one connection: it lives as long as the store.
                let mut conn = Connection::open_in_memory()?;
                configure(&conn, options.busy_timeout)?;
                migrate::run(&mut conn, MIGRATIONS)?;
                (conn, Vec::new(), None)
            }
        };
        Ok(Self {
            inner: Arc::new(Inner {
                writer: Mutex::new(Some(writer)),
                readers,
                next_reader: AtomicUsize::new(0),
                checkpointer: Mutex::new(checkpointer),
                cipher,
                observer: Default::default(),
            }),
        })
    }

    /// Closes every connection (waits for a running statement); later calls fail with
    /// [`DatabaseError::Closed`].
    pub async fn close(&self) {
        if let Some(mut c) = unpoison(self.inner.checkpointer.lock()).take() {
            c.stop();
        }
        for slot in self.inner.readers.iter().chain([&self.inner.writer]) {
            drop(unpoison(slot.lock()).take());
        }
    }

    pub(crate) fn cipher(&self) -> &Cipher {
        &self.inner.cipher
    }

    /// Runs `f` on the writer connection, on this thread. `f` must not block on anything but
    /// SQLite (it holds the only writer).
    pub(crate) fn write<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let mut guard = unpoison(self.inner.writer.lock());
        let conn = guard
            .as_mut()
            .ok_or(StoreError::Database(DatabaseError::Closed))?;
        f(conn)
    }

    /// Runs `f` on a read-only connection (the writer for a memory database): the first free
    /// one from a rotating start, else waits for one.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let readers = &self.inner.readers;
        if readers.is_empty() {
            return self.write(|conn| f(conn));
        }
        let start = self.inner.next_reader.fetch_add(1, Ordering::Relaxed);
        let mut taken: Option<MutexGuard<'_, Option<Connection>>> = None;
        for i in 0..readers.len() {
            match readers[(start + i) % readers.len()].try_lock() {
                Ok(guard) => {
                    taken = Some(guard);
                    break;
                }
                Err(TryLockError::Poisoned(p)) => {
                    taken = Some(p.into_inner());
                    break;
                }
                Err(TryLockError::WouldBlock) => {}
            }
        }
        let guard = match taken {
            Some(guard) => guard,
            None => unpoison(readers[start % readers.len()].lock()),
        };
        let conn = guard
            .as_ref()
            .ok_or(StoreError::Database(DatabaseError::Closed))?;
        f(conn)
    }
}

/// Maps the first row of a changing statement (`INSERT/UPDATE … RETURNING`), then steps the
/// statement to its end. Outside an explicit transaction SQLite commits such a statement only
/// when it finishes; left to itself, rusqlite finishes it when `Rows` is dropped and ignores any
/// error there, so a failed commit (disk full, I/O error) would come back as success: an audit
/// id for an event that is not stored, a throttle hit or code try that did not count.
pub(crate) fn returning<T>(
    mut rows: Rows<'_>,
    map: impl FnOnce(&Row<'_>) -> Result<T>,
) -> Result<Option<T>> {
    let first = match rows.next()? {
        Some(row) => Some(map(row)?),
        None => None,
    };
    while rows.next()?.is_some() {}
    Ok(first)
}

// ---- value conversions shared by the submodules ------------------------------------------------

pub(crate) use crate::rows::{dur_ms, from_ms, ms, object_id, opt_from_ms};

// ---- the trait, delegating to the inherent async fns in the submodules -------------------------

impl SqliteStore {
    async fn purge_expired_impl(&self, now: OffsetDateTime) -> Result<PurgeReport> {
        let at = now;
        let now = ms(now);
        self.write(|conn| {
            let flows = conn
                .prepare_cached(
                    "DELETE FROM flows WHERE expires_at_ms <= ?1 OR last_seen_at_ms + idle_ms <= ?1",
                )?
                .execute([now])?;
            let codes = conn
                .prepare_cached("DELETE FROM codes WHERE expires_at_ms <= ?1")?
                .execute([now])?;
            let throttle_hits = conn
                .prepare_cached("DELETE FROM throttle_hits WHERE expires_at_ms <= ?1")?
                .execute([now])?;
            let jobs = Self::purge_old_jobs(conn, at)?;
            Ok(PurgeReport {
                flows: flows as u64,
                codes: codes as u64,
                throttle_hits: throttle_hits as u64,
                jobs,
            })
        })
    }
}
