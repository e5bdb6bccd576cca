//! The directory mirror on SQLite ([`crate::mirror`]): a page is one IMMEDIATE transaction with
//! its sync state, fenced by the lease.

use latchkey_types::ObjectId;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use time::OffsetDateTime;

use super::{SqliteStore, dur_ms, ms, object_id, opt_from_ms};
use crate::error::Result;
use crate::mirror::{
    GroupKind, MirrorCollection, MirrorCounts, MirrorLink, MirrorListedUser, MirrorPage,
    MirrorParent, MirrorSyncState, MirrorUser, clip_error, split_methods,
};
use crate::store::{MirrorStore, StoreFuture};

/// The lease row's name (one syncer per database).
const LEASE: &str = "directory";

impl SqliteStore {
    pub(super) async fn lease_mirror_impl(
        &self,
        holder: &str,
        now: OffsetDateTime,
        ttl: std::time::Duration,
    ) -> Result<bool> {
        self.write(|conn| {
            Ok(conn
                .prepare_cached(
                    "INSERT INTO mirror_lease (name, holder, lease_until_ms) VALUES (?1, ?2, ?3 + ?4) \
                     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
                       lease_until_ms = excluded.lease_until_ms \
                     WHERE mirror_lease.holder = excluded.holder OR mirror_lease.lease_until_ms <= ?3 \
                     RETURNING 1",
                )?
                .query_row(params![LEASE, holder, ms(now), dur_ms(ttl)], |_| Ok(()))
                .optional()?
                .is_some())
        })
    }

    pub(super) async fn release_mirror_impl(&self, holder: &str) -> Result<()> {
        self.write(|conn| {
            conn.prepare_cached(
                "UPDATE mirror_lease SET lease_until_ms = 0 WHERE name = ?1 AND holder = ?2",
            )?
            .execute(params![LEASE, holder])?;
            Ok(())
        })
    }

    pub(super) async fn request_mirror_sync_impl(&self, now: OffsetDateTime) -> Result<()> {
        self.write(|conn| {
            conn.prepare_cached(
                "INSERT INTO mirror_lease (name, holder, lease_until_ms, requested_ms) \
                 VALUES (?1, '', 0, ?2) ON CONFLICT (name) DO UPDATE SET requested_ms = ?2",
            )?
            .execute(params![LEASE, ms(now)])?;
            Ok(())
        })
    }

    pub(super) async fn mirror_requested_impl(&self) -> Result<Option<OffsetDateTime>> {
        self.read(|conn| {
            let v: Option<Option<i64>> = conn
                .prepare_cached("SELECT requested_ms FROM mirror_lease WHERE name = ?1")?
                .query_row([LEASE], |r| r.get(0))
                .optional()?;
            opt_from_ms(v.flatten(), "mirror_lease", "requested_ms")
        })
    }

    pub(super) async fn apply_mirror_page_impl(
        &self,
        holder: &str,
        page: &MirrorPage,
        now: OffsetDateTime,
    ) -> Result<bool> {
        self.write(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let held: Option<String> = tx
                .prepare_cached("SELECT holder FROM mirror_lease WHERE name = ?1")?
                .query_row([LEASE], |r| r.get(0))
                .optional()?;
            if held.as_deref() != Some(holder) {
                return Ok(false);
            }
            let generation = advance_state(&tx, page, now)?;
            write_page(&tx, page, generation)?;
            if matches!(page.link, MirrorLink::Done(_)) {
                sweep_if_full_round_done(&tx, page, generation)?;
            }
            tx.commit()?;
            Ok(true)
        })
    }

    pub(super) async fn record_mirror_error_impl(
        &self,
        collection: MirrorCollection,
        error: &str,
        now: OffsetDateTime,
    ) -> Result<()> {
        self.write(|conn| {
            conn.prepare_cached(
                "INSERT INTO mirror_sync (collection, error, error_ms) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (collection) DO UPDATE SET error = ?2, error_ms = ?3",
            )?
            .execute(params![collection.as_str(), clip_error(error), ms(now)])?;
            Ok(())
        })
    }

    pub(super) async fn mirror_sync_state_impl(&self) -> Result<Vec<MirrorSyncState>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT collection, link, link_done, full_round, pages_in_round, last_round_ms, \
                 last_full_round_ms, error, error_ms FROM mirror_sync ORDER BY collection",
            )?;
            let mut rows = stmt.query([])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                let collection = MirrorCollection::parse(&r.get::<_, String>(0)?)?;
                let link: Option<String> = r.get(1)?;
                let done: i64 = r.get(2)?;
                let error: Option<String> = r.get(7)?;
                let error_at = opt_from_ms(r.get(8)?, "mirror_sync", "error_ms")?;
                out.push(MirrorSyncState {
                    collection,
                    link: link.map(|l| {
                        if done != 0 {
                            MirrorLink::Done(l)
                        } else {
                            MirrorLink::More(l)
                        }
                    }),
                    full_round: r.get::<_, i64>(3)? != 0,
                    pages_in_round: u64::try_from(r.get::<_, i64>(4)?).unwrap_or(0),
                    last_round_at: opt_from_ms(r.get(5)?, "mirror_sync", "last_round_ms")?,
                    last_full_round_at: opt_from_ms(
                        r.get(6)?,
                        "mirror_sync",
                        "last_full_round_ms",
                    )?,
                    last_error: error.zip(error_at).map(|(e, at)| (at, e)),
                });
            }
            Ok(out)
        })
    }

    pub(super) async fn mirror_find_users_impl(
        &self,
        key: &str,
        max: u32,
    ) -> Result<Vec<MirrorUser>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT u.id, u.upn, u.display_name, u.enabled, u.synced, p.profile \
                 FROM mirror_user_keys k JOIN mirror_users u ON u.id = k.user_id \
                 JOIN mirror_profiles p ON p.id = u.id \
                 WHERE k.key = ?1 ORDER BY u.id LIMIT ?2",
            )?;
            let mut rows = stmt.query(params![key, i64::from(max)])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(user_row(r)?);
            }
            Ok(out)
        })
    }

    pub(super) async fn mirror_user_impl(&self, id: &ObjectId) -> Result<Option<MirrorUser>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT u.id, u.upn, u.display_name, u.enabled, u.synced, p.profile \
                 FROM mirror_users u JOIN mirror_profiles p ON p.id = u.id WHERE u.id = ?1",
            )?;
            let mut rows = stmt.query([id.to_string()])?;
            rows.next()?.map(user_row).transpose()
        })
    }

    pub(super) async fn mirror_parents_impl(
        &self,
        members: &[ObjectId],
    ) -> Result<Vec<MirrorParent>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT member_id, group_id, group_kind FROM mirror_members WHERE member_id = ?1",
            )?;
            let mut out = Vec::new();
            for m in members {
                let mut rows = stmt.query([m.to_string()])?;
                while let Some(r) = rows.next()? {
                    out.push(parent_row(r)?);
                }
            }
            Ok(out)
        })
    }

    pub(super) async fn mirror_ancestors_impl(
        &self,
        member: &ObjectId,
    ) -> Result<Vec<(ObjectId, GroupKind)>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(crate::mirror::ANCESTORS_SQLITE)?;
            let mut rows = stmt.query([member.to_string()])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push((
                    object_id(&r.get::<_, String>(0)?, "mirror_members", "group_id")?,
                    GroupKind::from_i64(r.get(1)?)?,
                ));
            }
            Ok(out)
        })
    }

    pub(super) async fn mirror_nesting_impl(&self) -> Result<Vec<MirrorParent>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT member_id, group_id, group_kind FROM mirror_members WHERE member_type = 1",
            )?;
            let mut rows = stmt.query([])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(parent_row(r)?);
            }
            Ok(out)
        })
    }

    pub(super) async fn mirror_users_page_impl(
        &self,
        after: Option<ObjectId>,
        limit: u32,
    ) -> Result<Vec<MirrorListedUser>> {
        self.read(|conn| {
            let after = after.map(|a| a.to_string()).unwrap_or_default();
            let mut users = Vec::new();
            {
                let mut stmt = conn.prepare_cached(
                    "SELECT id, upn, display_name, enabled, synced FROM mirror_users \
                     WHERE id > ?1 ORDER BY id LIMIT ?2",
                )?;
                let mut rows = stmt.query(params![after, i64::from(limit)])?;
                while let Some(r) = rows.next()? {
                    let id: String = r.get(0)?;
                    users.push(MirrorListedUser {
                        id: object_id(&id, "mirror_users", "id")?,
                        user_principal_name: r.get(1)?,
                        display_name: r.get(2)?,
                        enabled: r.get::<_, i64>(3)? != 0,
                        synced: r.get::<_, i64>(4)? != 0,
                        direct: Vec::new(),
                    });
                }
            }
            let (Some(first), Some(last)) = (users.first(), users.last()) else {
                return Ok(users);
            };
            // One range read of the page's memberships (the member index is ordered by member).
            let mut stmt = conn.prepare_cached(
                "SELECT member_id, group_id, group_kind FROM mirror_members \
                 WHERE member_id >= ?1 AND member_id <= ?2 AND member_type = 0 \
                 ORDER BY member_id",
            )?;
            let mut rows = stmt.query(params![first.id.to_string(), last.id.to_string()])?;
            let mut at = 0;
            while let Some(r) = rows.next()? {
                let member = object_id(&r.get::<_, String>(0)?, "mirror_members", "member_id")?;
                let group = object_id(&r.get::<_, String>(1)?, "mirror_members", "group_id")?;
                while at < users.len() && users[at].id < member {
                    at += 1;
                }
                if let Some(u) = users.get_mut(at).filter(|u| u.id == member) {
                    u.direct.push((group, GroupKind::from_i64(r.get(2)?)?));
                }
            }
            Ok(users)
        })
    }

    pub(super) async fn mirror_group_names_impl(
        &self,
        ids: &[ObjectId],
    ) -> Result<Vec<(ObjectId, Option<String>, GroupKind)>> {
        self.read(|conn| {
            let mut stmt =
                conn.prepare_cached("SELECT display_name, kind FROM mirror_groups WHERE id = ?1")?;
            let mut out = Vec::new();
            for id in ids {
                let found: Option<(Option<String>, i64)> = stmt
                    .query_row([id.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                if let Some((name, kind)) = found {
                    out.push((*id, name, GroupKind::from_i64(kind)?));
                }
            }
            Ok(out)
        })
    }

    pub(super) async fn mirror_registration_impl(
        &self,
        user: &ObjectId,
    ) -> Result<Option<Vec<String>>> {
        self.read(|conn| {
            let methods: Option<String> = conn
                .prepare_cached("SELECT methods FROM mirror_registrations WHERE user_id = ?1")?
                .query_row([user.to_string()], |r| r.get(0))
                .optional()?;
            Ok(methods.map(|m| split_methods(&m)))
        })
    }

    pub(super) async fn mirror_registrations_impl(&self) -> Result<Vec<(ObjectId, Vec<String>)>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT user_id, methods FROM mirror_registrations WHERE methods <> ''",
            )?;
            let mut rows = stmt.query([])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                let id = object_id(&r.get::<_, String>(0)?, "mirror_registrations", "user_id")?;
                out.push((id, split_methods(&r.get::<_, String>(1)?)));
            }
            Ok(out)
        })
    }

    pub(super) async fn mirror_counts_impl(&self) -> Result<MirrorCounts> {
        self.read(|conn| {
            let count = |sql: &str| -> Result<u64> {
                let n: i64 = conn.prepare_cached(sql)?.query_row([], |r| r.get(0))?;
                Ok(u64::try_from(n).unwrap_or(0))
            };
            Ok(MirrorCounts {
                users: count("SELECT count(*) FROM mirror_users")?,
                groups: count("SELECT count(*) FROM mirror_groups WHERE kind = 0")?,
                roles: count("SELECT count(*) FROM mirror_groups WHERE kind = 1")?,
                memberships: count("SELECT count(*) FROM mirror_members")?,
            })
        })
    }
}

fn user_row(r: &rusqlite::Row<'_>) -> Result<MirrorUser> {
    let id: String = r.get(0)?;
    Ok(MirrorUser {
        id: object_id(&id, "mirror_users", "id")?,
        user_principal_name: r.get(1)?,
        display_name: r.get(2)?,
        enabled: r.get::<_, i64>(3)? != 0,
        synced: r.get::<_, i64>(4)? != 0,
        // Keys are written, not read back: lookups go through them.
        keys: Vec::new(),
        profile: r.get(5)?,
    })
}

fn parent_row(r: &rusqlite::Row<'_>) -> Result<MirrorParent> {
    Ok(MirrorParent {
        member: object_id(&r.get::<_, String>(0)?, "mirror_members", "member_id")?,
        group: object_id(&r.get::<_, String>(1)?, "mirror_members", "group_id")?,
        kind: GroupKind::from_i64(r.get(2)?)?,
    })
}

/// Moves the collection's sync state past `page` and returns the generation its rows get.
fn advance_state(tx: &Transaction<'_>, page: &MirrorPage, now: OffsetDateTime) -> Result<i64> {
    let name = page.collection.as_str();
    let before: Option<(i64, i64, i64, i64)> = tx
        .prepare_cached(
            "SELECT generation, full_round, pages_in_round, link_done FROM mirror_sync \
             WHERE collection = ?1",
        )?
        .query_row([name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .optional()?;
    let (mut generation, mut full, mut pages, was_done) = before.unwrap_or((0, 0, 0, 1));
    if page.begins_full_round {
        generation += 1;
        full = 1;
        pages = 0;
    } else if was_done != 0 {
        // The first page after a deltaLink: an incremental round starts.
        full = 0;
        pages = 0;
    }
    pages += 1;
    let (link, done) = match &page.link {
        MirrorLink::More(l) => (l, 0),
        MirrorLink::Done(l) => (l, 1),
    };
    let now = ms(now);
    tx.prepare_cached(
        "INSERT INTO mirror_sync (collection, link, link_done, full_round, generation, \
           pages_in_round, last_round_ms, last_full_round_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, CASE WHEN ?3 = 1 THEN ?7 END, \
           CASE WHEN ?3 = 1 AND ?4 = 1 THEN ?7 END) \
         ON CONFLICT (collection) DO UPDATE SET link = ?2, link_done = ?3, full_round = ?4, \
           generation = ?5, pages_in_round = ?6, \
           last_round_ms = CASE WHEN ?3 = 1 THEN ?7 ELSE last_round_ms END, \
           last_full_round_ms = CASE WHEN ?3 = 1 AND ?4 = 1 THEN ?7 ELSE last_full_round_ms END, \
           error = CASE WHEN ?3 = 1 THEN NULL ELSE error END, \
           error_ms = CASE WHEN ?3 = 1 THEN NULL ELSE error_ms END",
    )?
    .execute(params![name, link, done, full, generation, pages, now])?;
    Ok(generation)
}

fn write_page(tx: &Connection, page: &MirrorPage, generation: i64) -> Result<()> {
    for u in &page.users {
        let id = u.id.to_string();
        tx.prepare_cached(
            "INSERT INTO mirror_users (id, upn, display_name, enabled, synced, generation) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (id) DO UPDATE SET upn = ?2, \
               display_name = ?3, enabled = ?4, synced = ?5, generation = ?6",
        )?
        .execute(params![
            id,
            u.user_principal_name,
            u.display_name,
            i64::from(u.enabled),
            i64::from(u.synced),
            generation
        ])?;
        tx.prepare_cached(
            "INSERT INTO mirror_profiles (id, profile) VALUES (?1, ?2) \
             ON CONFLICT (id) DO UPDATE SET profile = ?2",
        )?
        .execute(params![id, u.profile])?;
        tx.prepare_cached("DELETE FROM mirror_user_keys WHERE user_id = ?1")?
            .execute([&id])?;
        let mut insert = tx.prepare_cached(
            "INSERT OR IGNORE INTO mirror_user_keys (key, user_id) VALUES (?1, ?2)",
        )?;
        for k in &u.keys {
            insert.execute(params![k, id])?;
        }
    }
    for (user, methods) in &page.registrations {
        tx.prepare_cached(
            "INSERT INTO mirror_registrations (user_id, methods, generation) VALUES (?1, ?2, ?3) \
             ON CONFLICT (user_id) DO UPDATE SET methods = ?2, generation = ?3",
        )?
        .execute(params![user.to_string(), methods.join(","), generation])?;
    }
    let kind = page.collection.group_kind();
    for g in &page.groups {
        let Some(kind) = kind else { continue };
        tx.prepare_cached(
            "INSERT INTO mirror_groups (id, kind, display_name, role_template_id, generation) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (id) DO UPDATE SET kind = ?2, \
               display_name = COALESCE(?3, display_name), \
               role_template_id = COALESCE(?4, role_template_id), generation = ?5",
        )?
        .execute(params![
            g.id.to_string(),
            kind.as_i64(),
            g.display_name,
            g.role_template_id.map(|r| r.to_string()),
            generation
        ])?;
    }
    for m in &page.members {
        let Some(kind) = kind else { continue };
        if m.removed {
            tx.prepare_cached("DELETE FROM mirror_members WHERE group_id = ?1 AND member_id = ?2")?
                .execute(params![m.group.to_string(), m.member.to_string()])?;
        } else {
            tx.prepare_cached(
                "INSERT INTO mirror_members (group_id, member_id, member_type, group_kind, \
                   generation) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (group_id, member_id) \
                 DO UPDATE SET member_type = ?3, group_kind = ?4, generation = ?5",
            )?
            .execute(params![
                m.group.to_string(),
                m.member.to_string(),
                m.member_type.as_i64(),
                kind.as_i64(),
                generation
            ])?;
        }
    }
    for id in &page.removed {
        let id = id.to_string();
        match (page.collection, kind) {
            (MirrorCollection::RegistrationDetails, _) => {
                tx.prepare_cached("DELETE FROM mirror_registrations WHERE user_id = ?1")?
                    .execute([&id])?;
            }
            (_, None) => {
                tx.prepare_cached("DELETE FROM mirror_user_keys WHERE user_id = ?1")?
                    .execute([&id])?;
                tx.prepare_cached("DELETE FROM mirror_profiles WHERE id = ?1")?
                    .execute([&id])?;
                tx.prepare_cached("DELETE FROM mirror_users WHERE id = ?1")?
                    .execute([&id])?;
            }
            (_, Some(_)) => {
                tx.prepare_cached(
                    "DELETE FROM mirror_members WHERE group_id = ?1 OR member_id = ?1",
                )?
                .execute([&id])?;
                tx.prepare_cached("DELETE FROM mirror_groups WHERE id = ?1")?
                    .execute([&id])?;
            }
        }
    }
    Ok(())
}

/// At the end of a full round: deletes what the round did not see (stamped older).
fn sweep_if_full_round_done(tx: &Connection, page: &MirrorPage, generation: i64) -> Result<()> {
    let full: i64 = tx
        .prepare_cached("SELECT full_round FROM mirror_sync WHERE collection = ?1")?
        .query_row([page.collection.as_str()], |r| r.get(0))?;
    if full == 0 {
        return Ok(());
    }
    match (page.collection, page.collection.group_kind()) {
        (MirrorCollection::RegistrationDetails, _) => {
            tx.prepare_cached("DELETE FROM mirror_registrations WHERE generation < ?1")?
                .execute([generation])?;
        }
        (_, None) => {
            for table in ["mirror_user_keys WHERE user_id", "mirror_profiles WHERE id"] {
                tx.prepare_cached(&format!(
                    "DELETE FROM {table} IN (SELECT id FROM mirror_users WHERE generation < ?1)"
                ))?
                .execute([generation])?;
            }
            tx.prepare_cached("DELETE FROM mirror_users WHERE generation < ?1")?
                .execute([generation])?;
        }
        (_, Some(kind)) => {
            tx.prepare_cached(
                "DELETE FROM mirror_members WHERE group_kind = ?1 AND generation < ?2",
            )?
            .execute(params![kind.as_i64(), generation])?;
            tx.prepare_cached("DELETE FROM mirror_groups WHERE kind = ?1 AND generation < ?2")?
                .execute(params![kind.as_i64(), generation])?;
        }
    }
    Ok(())
}

impl MirrorStore for SqliteStore {
    fn lease_mirror<'a>(
        &'a self,
        holder: &'a str,
        now: OffsetDateTime,
        ttl: std::time::Duration,
    ) -> StoreFuture<'a, bool> {
        Box::pin(
            self.inner
                .observer
                .timed("lease_mirror", self.lease_mirror_impl(holder, now, ttl)),
        )
    }
    fn release_mirror<'a>(&'a self, holder: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(
            self.inner
                .observer
                .timed("release_mirror", self.release_mirror_impl(holder)),
        )
    }
    fn apply_mirror_page<'a>(
        &'a self,
        holder: &'a str,
        page: &'a MirrorPage,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, bool> {
        Box::pin(self.inner.observer.timed(
            "apply_mirror_page",
            self.apply_mirror_page_impl(holder, page, now),
        ))
    }
    fn record_mirror_error<'a>(
        &'a self,
        collection: MirrorCollection,
        error: &'a str,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, ()> {
        Box::pin(self.inner.observer.timed(
            "record_mirror_error",
            self.record_mirror_error_impl(collection, error, now),
        ))
    }
    fn mirror_sync_state(&self) -> StoreFuture<'_, Vec<MirrorSyncState>> {
        Box::pin(
            self.inner
                .observer
                .timed("mirror_sync_state", self.mirror_sync_state_impl()),
        )
    }
    fn request_mirror_sync(&self, now: OffsetDateTime) -> StoreFuture<'_, ()> {
        Box::pin(
            self.inner
                .observer
                .timed("request_mirror_sync", self.request_mirror_sync_impl(now)),
        )
    }
    fn mirror_requested(&self) -> StoreFuture<'_, Option<OffsetDateTime>> {
        Box::pin(
            self.inner
                .observer
                .timed("mirror_requested", self.mirror_requested_impl()),
        )
    }
    fn mirror_find_users<'a>(&'a self, key: &'a str, max: u32) -> StoreFuture<'a, Vec<MirrorUser>> {
        Box::pin(
            self.inner
                .observer
                .timed("mirror_find_users", self.mirror_find_users_impl(key, max)),
        )
    }
    fn mirror_user<'a>(&'a self, id: &'a ObjectId) -> StoreFuture<'a, Option<MirrorUser>> {
        Box::pin(
            self.inner
                .observer
                .timed("mirror_user", self.mirror_user_impl(id)),
        )
    }
    fn mirror_parents<'a>(&'a self, members: &'a [ObjectId]) -> StoreFuture<'a, Vec<MirrorParent>> {
        Box::pin(
            self.inner
                .observer
                .timed("mirror_parents", self.mirror_parents_impl(members)),
        )
    }
    fn mirror_ancestors<'a>(
        &'a self,
        member: &'a ObjectId,
    ) -> StoreFuture<'a, Vec<(ObjectId, GroupKind)>> {
        Box::pin(
            self.inner
                .observer
                .timed("mirror_ancestors", self.mirror_ancestors_impl(member)),
        )
    }
    fn mirror_nesting(&self) -> StoreFuture<'_, Vec<MirrorParent>> {
        Box::pin(
            self.inner
                .observer
                .timed("mirror_nesting", self.mirror_nesting_impl()),
        )
    }
    fn mirror_users_page(
        &self,
        after: Option<ObjectId>,
        limit: u32,
    ) -> StoreFuture<'_, Vec<MirrorListedUser>> {
        Box::pin(self.inner.observer.timed(
            "mirror_users_page",
            self.mirror_users_page_impl(after, limit),
        ))
    }
    fn mirror_group_names<'a>(
        &'a self,
        ids: &'a [ObjectId],
    ) -> StoreFuture<'a, Vec<(ObjectId, Option<String>, GroupKind)>> {
        Box::pin(
            self.inner
                .observer
                .timed("mirror_group_names", self.mirror_group_names_impl(ids)),
        )
    }
    fn mirror_counts(&self) -> StoreFuture<'_, MirrorCounts> {
        Box::pin(
            self.inner
                .observer
                .timed("mirror_counts", self.mirror_counts_impl()),
        )
    }
    fn mirror_registrations(&self) -> StoreFuture<'_, Vec<(ObjectId, Vec<String>)>> {
        Box::pin(
            self.inner
                .observer
                .timed("mirror_registrations", self.mirror_registrations_impl()),
        )
    }
    fn mirror_registration<'a>(
        &'a self,
        user: &'a ObjectId,
    ) -> StoreFuture<'a, Option<Vec<String>>> {
        Box::pin(
            self.inner
                .observer
                .timed("mirror_registration", self.mirror_registration_impl(user)),
        )
    }
}
