//! Passkeys on PostgreSQL ([`crate::passkey`]).

use latchkey_types::ObjectId;
use time::OffsetDateTime;

use super::PostgresStore;
use crate::passkey::{NewPasskey, Passkey, PasskeyAdded, aaguid_hex};
use crate::sqlite::ms;
use crate::store::{PasskeyStore, StoreFuture};

macro_rules! cols {
    () => {
        "credential_id, subject, user_handle, name, public_key, sign_count, aaguid, \
         backup_eligible, backed_up, created_at_ms, last_used_at_ms"
    };
}

impl PasskeyStore for PostgresStore {
    fn add_passkey(
        &self,
        new: NewPasskey,
        max_per_user: u32,
        now: OffsetDateTime,
    ) -> StoreFuture<'_, PasskeyAdded> {
        Box::pin(self.observer.timed("add_passkey", async move {
            let mut tx = self.pool.begin().await?;
            // Serialises registrations of one user (instances share the database): the count
            // below then sees every passkey a concurrent registration committed.
            sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 7))")
                .bind(format!("passkeys:{}", new.subject))
                .execute(&mut *tx)
                .await?;
            let inserted = sqlx::query(
                "INSERT INTO passkeys (credential_id, subject, user_handle, name, public_key, \
                 sign_count, aaguid, backup_eligible, backed_up, created_at_ms) \
                 SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 \
                 WHERE (SELECT count(*) FROM passkeys WHERE subject = $2) < $11 \
                 ON CONFLICT (credential_id) DO NOTHING",
            )
            .bind(&new.credential_id)
            .bind(new.subject.to_string())
            .bind(&new.user_handle)
            .bind(&new.name)
            .bind(&new.public_key)
            .bind(i64::from(new.sign_count))
            .bind(aaguid_hex(&new.aaguid))
            .bind(new.backup_eligible)
            .bind(new.backed_up)
            .bind(ms(now))
            .bind(i64::from(max_per_user))
            .execute(&mut *tx)
            .await?;
            let added = if inserted.rows_affected() == 1 {
                PasskeyAdded::Added
            } else {
                let taken = sqlx::query("SELECT 1 FROM passkeys WHERE credential_id = $1")
                    .bind(&new.credential_id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .is_some();
                if taken {
                    PasskeyAdded::Duplicate
                } else {
                    PasskeyAdded::Full
                }
            };
            tx.commit().await?;
            Ok(added)
        }))
    }

    fn passkeys<'a>(&'a self, subject: &'a ObjectId) -> StoreFuture<'a, Vec<Passkey>> {
        Box::pin(self.observer.timed("passkeys", async move {
            let rows = sqlx::query(concat!(
                "SELECT ",
                cols!(),
                " FROM passkeys WHERE subject = $1 ORDER BY created_at_ms, credential_id"
            ))
            .bind(subject.to_string())
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(crate::rows::passkey).collect()
        }))
    }

    fn passkey<'a>(&'a self, credential_id: &'a [u8]) -> StoreFuture<'a, Option<Passkey>> {
        Box::pin(self.observer.timed("passkey", async move {
            let row = sqlx::query(concat!(
                "SELECT ",
                cols!(),
                " FROM passkeys WHERE credential_id = $1"
            ))
            .bind(credential_id)
            .fetch_optional(&self.pool)
            .await?;
            row.as_ref().map(crate::rows::passkey).transpose()
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
        Box::pin(self.observer.timed("use_passkey", async move {
            // A concurrent update of the same row waits for the row lock and then re-checks
            // `sign_count = $2` against the committed value: one of two wins.
            let done = sqlx::query(
                "UPDATE passkeys SET sign_count = $3, backed_up = $4, last_used_at_ms = $5 \
                 WHERE credential_id = $1 AND sign_count = $2",
            )
            .bind(credential_id)
            .bind(i64::from(seen_count))
            .bind(i64::from(new_count))
            .bind(backed_up)
            .bind(ms(now))
            .execute(&self.pool)
            .await?;
            Ok(done.rows_affected() == 1)
        }))
    }

    fn remove_passkey<'a>(
        &'a self,
        subject: &'a ObjectId,
        credential_id: &'a [u8],
    ) -> StoreFuture<'a, bool> {
        Box::pin(self.observer.timed("remove_passkey", async move {
            let done =
                sqlx::query("DELETE FROM passkeys WHERE subject = $1 AND credential_id = $2")
                    .bind(subject.to_string())
                    .bind(credential_id)
                    .execute(&self.pool)
                    .await?;
            Ok(done.rows_affected() == 1)
        }))
    }
}
