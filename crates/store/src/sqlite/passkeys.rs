//! Passkeys on SQLite ([`crate::passkey`]).

use latchkey_types::ObjectId;
use rusqlite::{OptionalExtension as _, params};
use time::OffsetDateTime;

use super::{SqliteStore, ms};
use crate::passkey::{NewPasskey, Passkey, PasskeyAdded, aaguid_hex};
use crate::store::{PasskeyStore, StoreFuture};

macro_rules! cols {
    () => {
        "credential_id, subject, user_handle, name, public_key, sign_count, aaguid, \
         backup_eligible, backed_up, created_at_ms, last_used_at_ms"
    };
}

impl PasskeyStore for SqliteStore {
    fn add_passkey(
        &self,
        new: NewPasskey,
        max_per_user: u32,
        now: OffsetDateTime,
    ) -> StoreFuture<'_, PasskeyAdded> {
        Box::pin(self.inner.observer.timed("add_passkey", async move {
            self.write(|conn| {
                // One statement on the only writer: the count and the insert cannot interleave
                // with another registration.
                let inserted = conn
                    .prepare_cached(
                        "INSERT INTO passkeys (credential_id, subject, user_handle, name, public_key, \
                         sign_count, aaguid, backup_eligible, backed_up, created_at_ms) \
                         SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10 \
                         WHERE (SELECT count(*) FROM passkeys WHERE subject = ?2) < ?11 \
                         ON CONFLICT (credential_id) DO NOTHING",
                    )?
                    .execute(params![
                        new.credential_id,
                        new.subject.to_string(),
                        new.user_handle,
                        new.name,
                        new.public_key,
                        i64::from(new.sign_count),
                        aaguid_hex(&new.aaguid),
                        new.backup_eligible,
                        new.backed_up,
                        ms(now),
                        i64::from(max_per_user),
                    ])?;
                if inserted == 1 {
                    return Ok(PasskeyAdded::Added);
                }
                let taken = conn
                    .prepare_cached("SELECT 1 FROM passkeys WHERE credential_id = ?1")?
                    .exists(params![new.credential_id])?;
                Ok(if taken {
                    PasskeyAdded::Duplicate
                } else {
                    PasskeyAdded::Full
                })
            })
        }))
    }

    fn passkeys<'a>(&'a self, subject: &'a ObjectId) -> StoreFuture<'a, Vec<Passkey>> {
        Box::pin(self.inner.observer.timed("passkeys", async move {
            self.read(|conn| {
                let mut stmt = conn.prepare_cached(concat!(
                    "SELECT ",
                    cols!(),
                    " FROM passkeys WHERE subject = ?1 ORDER BY created_at_ms, credential_id"
                ))?;
                let mut rows = stmt.query(params![subject.to_string()])?;
                let mut out = Vec::new();
                while let Some(row) = rows.next()? {
                    out.push(crate::rows::passkey(row)?);
                }
                Ok(out)
            })
        }))
    }

    fn passkey<'a>(&'a self, credential_id: &'a [u8]) -> StoreFuture<'a, Option<Passkey>> {
        Box::pin(self.inner.observer.timed("passkey", async move {
            self.read(|conn| {
                let mut stmt = conn.prepare_cached(concat!(
                    "SELECT ",
                    cols!(),
                    " FROM passkeys WHERE credential_id = ?1"
                ))?;
                let found = stmt
                    .query_row(params![credential_id], |row| Ok(crate::rows::passkey(row)))
                    .optional()?;
                found.transpose()
            })
        }))
    }

    fn use_passkey<'a>(
        &'a self,
        credential_id: &'a [u8],
        seen_count: u32,
        new_count: u32,
        backed_up: bool,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, bool> {
        Box::pin(self.inner.observer.timed("use_passkey", async move {
            self.write(|conn| {
                let changed = conn
                    .prepare_cached(
                        "UPDATE passkeys SET sign_count = ?3, backed_up = ?4, last_used_at_ms = ?5 \
                         WHERE credential_id = ?1 AND sign_count = ?2",
                    )?
                    .execute(params![
                        credential_id,
                        i64::from(seen_count),
                        i64::from(new_count),
                        backed_up,
                        ms(now),
                    ])?;
                Ok(changed == 1)
            })
        }))
    }

    fn remove_passkey<'a>(
        &'a self,
        subject: &'a ObjectId,
        credential_id: &'a [u8],
    ) -> StoreFuture<'a, bool> {
        Box::pin(self.inner.observer.timed("remove_passkey", async move {
            self.write(|conn| {
                let gone = conn
                    .prepare_cached(
                        "DELETE FROM passkeys WHERE subject = ?1 AND credential_id = ?2",
                    )?
                    .execute(params![subject.to_string(), credential_id])?;
                Ok(gone == 1)
            })
        }))
    }
}
