//! Shared test helpers: temp folders, stores, a fixed clock. Tests that every backend must pass
//! are listed in `backend_tests!` (backends.rs) instead of opening a store themselves.

use std::path::{Path, PathBuf};
use std::time::Duration;

use latchkey_store::{Cipher, EncryptionKey, SqliteOptions, SqliteStore};
use latchkey_types::ObjectId;
use time::OffsetDateTime;

/// A private temporary folder removed on drop (no tempfile crate needed for this).
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "latchkey-store-{tag}-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn cipher() -> Cipher {
    Cipher::new(&EncryptionKey::generate().unwrap())
}

pub async fn memory_store() -> SqliteStore {
    SqliteStore::open(&SqliteOptions::memory(), cipher())
        .await
        .unwrap()
}

/// A store on a real file (WAL, several connections); keep the TempDir alive as long as it.
pub async fn file_store(tag: &str) -> (TempDir, SqliteStore) {
    let dir = TempDir::new(tag);
    let store = SqliteStore::open(
        &SqliteOptions::file(dir.path().join("latchkey.db")),
        cipher(),
    )
    .await
    .unwrap();
    (dir, store)
}

/// A fixed "now": 2027-01-15T08:00:00Z.
pub fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
}

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

pub fn mins(n: u64) -> Duration {
    Duration::from_secs(60 * n)
}

pub fn user() -> ObjectId {
    ObjectId::new_random()
}

/// A job's target: an on-premises account, nothing for the portal to do afterwards.
pub fn target() -> latchkey_store::JobTarget {
    latchkey_store::JobTarget {
        account: latchkey_store::Target {
            sam_account_name: "cmendes".into(),
            domain: None,
            allow_privileged: false,
        },
        must_change: false,
        after_change: None,
    }
}
