//! Background WAL checkpoints for a file database.
//!
//! In WAL mode a commit only appends to the log; a checkpoint copies the logged pages back into
//! the database file and syncs it to disk. SQLite runs checkpoints inside whichever commit
//! crosses `wal_autocheckpoint` pages, which here is a request's own statement on an async
//! worker thread, fsync included (the load bench saw ~130 fsyncs a second on request threads).
//! This thread checkpoints every [`EVERY`] on its own connection instead, in PASSIVE mode: it
//! never waits for readers or the writer, and requests never wait for it. The writer keeps a
//! high auto-checkpoint ([`BACKSTOP_PAGES`]) so the log stays bounded even if this thread fell
//! behind.

use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

use crate::error::{DatabaseError, Result, StoreError};

/// How often the log is copied back. Short enough that the log stays small at the load bench's
/// write rate (~45,000 pages a second at 300 resets a second), long enough to cost nothing idle.
const EVERY: Duration = Duration::from_millis(100);

/// At most one warning this often while checkpoints keep failing.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// The writer's own auto-checkpoint, only reached when this thread falls behind (pages).
pub(super) const BACKSTOP_PAGES: i64 = 10_000;

/// The running checkpoint thread; it stops when this is dropped or [`Checkpointer::stop`]ped.
pub(super) struct Checkpointer {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    pub(super) fn start(path: &Path, busy_timeout: Duration) -> Result<Self> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(busy_timeout)?;
        // It reads and writes no pages through its own cache: keep that cache minimal.
        conn.pragma_update(None, "cache_size", 16)?;
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                // A failing checkpoint (disk full, I/O) fails ten times a second: say so once a
                // minute, not every time.
                let mut warned: Option<Instant> = None;
                // Ends on a stop message or when the store (the sender) is gone.
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(EVERY) {
                    let done = conn
                        .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(0));
                    if let Err(e) = done
                        && warned.is_none_or(|at| at.elapsed() >= WARN_EVERY)
                    {
                        tracing::warn!(error = %e, "SQLite WAL checkpoint failed");
                        warned = Some(Instant::now());
                    }
                }
            })
            .map_err(|e| StoreError::Database(DatabaseError::CheckpointThread(e)))?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Stops the thread and waits for a running checkpoint to finish.
    pub(super) fn stop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!("the SQLite checkpoint thread panicked");
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        // No join here: the last store handle may be dropped on an async worker; the thread
        // sees the closed channel at once and ends by itself.
        drop(self.stop.take());
    }
}
