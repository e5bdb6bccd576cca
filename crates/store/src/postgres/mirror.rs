//! The directory mirror on PostgreSQL ([`crate::mirror`]): a page is one transaction that first
//! locks the lease row (fencing: a syncer that lost its lease changes nothing) and writes its rows
//! in a few array statements (`unnest`), not one round trip per row.

use std::collections::HashMap;

use latchkey_types::ObjectId;
use sqlx::{Postgres, Row, Transaction};
use time::OffsetDateTime;

use super::PostgresStore;
use crate::error::Result;
use crate::mirror::{
    GroupKind, MirrorCollection, MirrorCounts, MirrorLink, MirrorListedUser, MirrorPage,
    MirrorParent, MirrorSyncState, MirrorUser, clip_error, split_methods,
};
use crate::sqlite::{dur_ms, ms, object_id, opt_from_ms};
use crate::store::{MirrorStore, StoreFuture};

/// The lease row's name (one syncer per database).
const LEASE: &str = "directory";

impl PostgresStore {
    async fn lease_mirror_impl(
        &self,
        holder: &str,
        now: OffsetDateTime,
        ttl: std::time::Duration,
    ) -> Result<bool> {
        let got = sqlx::query(
            "INSERT INTO mirror_lease (name, holder, lease_until_ms) VALUES ($1, $2, $3 + $4) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
               lease_until_ms = excluded.lease_until_ms \
             WHERE mirror_lease.holder = excluded.holder OR mirror_lease.lease_until_ms <= $3 \
             RETURNING 1",
        )
        .bind(LEASE)
        .bind(holder)
        .bind(ms(now))
        .bind(dur_ms(ttl))
        .fetch_optional(&self.pool)
        .await?;
        Ok(got.is_some())
    }

    async fn release_mirror_impl(&self, holder: &str) -> Result<()> {
        sqlx::query("UPDATE mirror_lease SET lease_until_ms = 0 WHERE name = $1 AND holder = $2")
            .bind(LEASE)
            .bind(holder)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn request_mirror_sync_impl(&self, now: OffsetDateTime) -> Result<()> {
        sqlx::query(
            "INSERT INTO mirror_lease (name, holder, lease_until_ms, requested_ms) \
             VALUES ($1, '', 0, $2) ON CONFLICT (name) DO UPDATE SET requested_ms = $2",
        )
        .bind(LEASE)
        .bind(ms(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn mirror_requested_impl(&self) -> Result<Option<OffsetDateTime>> {
        let v: Option<Option<i64>> =
            sqlx::query_scalar("SELECT requested_ms FROM mirror_lease WHERE name = $1")
                .bind(LEASE)
                .fetch_optional(&self.pool)
                .await?;
        opt_from_ms(v.flatten(), "mirror_lease", "requested_ms")
    }

    async fn apply_mirror_page_impl(
        &self,
        holder: &str,
        page: &MirrorPage,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let held: Option<String> =
            sqlx::query_scalar("SELECT holder FROM mirror_lease WHERE name = $1 FOR UPDATE")
                .bind(LEASE)
                .fetch_optional(&mut *tx)
                .await?;
        if held.as_deref() != Some(holder) {
            return Ok(false);
        }
        let (generation, full) = advance_state(&mut tx, page, now).await?;
        write_users(&mut tx, page, generation).await?;
        write_groups(&mut tx, page, generation).await?;
        write_registrations(&mut tx, page, generation).await?;
        remove(&mut tx, page).await?;
        if full && matches!(page.link, MirrorLink::Done(_)) {
            sweep(&mut tx, page.collection, generation).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn record_mirror_error_impl(
        &self,
        collection: MirrorCollection,
        error: &str,
        now: OffsetDateTime,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO mirror_sync (collection, error, error_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (collection) DO UPDATE SET error = $2, error_ms = $3",
        )
        .bind(collection.as_str())
        .bind(clip_error(error))
        .bind(ms(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn mirror_sync_state_impl(&self) -> Result<Vec<MirrorSyncState>> {
        let rows = sqlx::query(
            "SELECT collection, link, link_done, full_round, pages_in_round, last_round_ms, \
             last_full_round_ms, error, error_ms FROM mirror_sync ORDER BY collection",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let link: Option<String> = r.try_get("link")?;
            let done: i64 = r.try_get("link_done")?;
            let error: Option<String> = r.try_get("error")?;
            let error_at = opt_from_ms(r.try_get("error_ms")?, "mirror_sync", "error_ms")?;
            out.push(MirrorSyncState {
                collection: MirrorCollection::parse(&r.try_get::<String, _>("collection")?)?,
                link: link.map(|l| {
                    if done != 0 {
                        MirrorLink::Done(l)
                    } else {
                        MirrorLink::More(l)
                    }
                }),
                full_round: r.try_get::<i64, _>("full_round")? != 0,
                pages_in_round: u64::try_from(r.try_get::<i64, _>("pages_in_round")?).unwrap_or(0),
                last_round_at: opt_from_ms(
                    r.try_get("last_round_ms")?,
                    "mirror_sync",
                    "last_round_ms",
                )?,
                last_full_round_at: opt_from_ms(
                    r.try_get("last_full_round_ms")?,
                    "mirror_sync",
                    "last_full_round_ms",
                )?,
                last_error: error.zip(error_at).map(|(e, at)| (at, e)),
            });
        }
        Ok(out)
    }

    async fn mirror_find_users_impl(&self, key: &str, max: u32) -> Result<Vec<MirrorUser>> {
        let rows = sqlx::query(
            "SELECT u.id, u.upn, u.display_name, u.enabled, u.synced, p.profile \
             FROM mirror_user_keys k JOIN mirror_users u ON u.id = k.user_id \
             JOIN mirror_profiles p ON p.id = u.id \
             WHERE k.key = $1 ORDER BY u.id LIMIT $2",
        )
        .bind(key)
        .bind(i64::from(max))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(user_row).collect()
    }

    async fn mirror_user_impl(&self, id: &ObjectId) -> Result<Option<MirrorUser>> {
        let row = sqlx::query(
            "SELECT u.id, u.upn, u.display_name, u.enabled, u.synced, p.profile \
             FROM mirror_users u JOIN mirror_profiles p ON p.id = u.id WHERE u.id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(user_row).transpose()
    }

    async fn mirror_parents_impl(&self, members: &[ObjectId]) -> Result<Vec<MirrorParent>> {
        let ids: Vec<String> = members.iter().map(ToString::to_string).collect();
        let rows = sqlx::query(
            "SELECT member_id, group_id, group_kind FROM mirror_members \
             WHERE member_id = ANY($1)",
        )
        .bind(&ids)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(parent_row).collect()
    }

    async fn mirror_ancestors_impl(&self, member: &ObjectId) -> Result<Vec<(ObjectId, GroupKind)>> {
        // Planned for each member (an unnamed statement), never from a plan cached for the
        // statement: measured on a 500,000-user mirror, the connection's cached plan took
        // 0.6 s per query where a plan for the value took 0.5 ms.
        let rows = sqlx::query(crate::mirror::ANCESTORS_POSTGRES)
            .persistent(false)
            .bind(member.to_string())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    object_id(
                        &r.try_get::<String, _>("group_id")?,
                        "mirror_members",
                        "group_id",
                    )?,
                    GroupKind::from_i64(r.try_get("group_kind")?)?,
                ))
            })
            .collect()
    }

    async fn mirror_nesting_impl(&self) -> Result<Vec<MirrorParent>> {
        let rows = sqlx::query(
            "SELECT member_id, group_id, group_kind FROM mirror_members WHERE member_type = 1",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(parent_row).collect()
    }

    async fn mirror_users_page_impl(
        &self,
        after: Option<ObjectId>,
        limit: u32,
    ) -> Result<Vec<MirrorListedUser>> {
        let after = after.map(|a| a.to_string()).unwrap_or_default();
        let rows = sqlx::query(
            "SELECT id, upn, display_name, enabled, synced FROM mirror_users \
             WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(&after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut users = Vec::with_capacity(rows.len());
        for r in &rows {
            users.push(MirrorListedUser {
                id: object_id(&r.try_get::<String, _>("id")?, "mirror_users", "id")?,
                user_principal_name: r.try_get("upn")?,
                display_name: r.try_get("display_name")?,
                enabled: r.try_get::<i64, _>("enabled")? != 0,
                synced: r.try_get::<i64, _>("synced")? != 0,
                direct: Vec::new(),
            });
        }
        let (Some(first), Some(last)) = (users.first(), users.last()) else {
            return Ok(users);
        };
        let members = sqlx::query(
            "SELECT member_id, group_id, group_kind FROM mirror_members \
             WHERE member_id >= $1 AND member_id <= $2 AND member_type = 0",
        )
        .bind(first.id.to_string())
        .bind(last.id.to_string())
        .fetch_all(&self.pool)
        .await?;
        let at: HashMap<ObjectId, usize> =
            users.iter().enumerate().map(|(i, u)| (u.id, i)).collect();
        for r in &members {
            let member = object_id(
                &r.try_get::<String, _>("member_id")?,
                "mirror_members",
                "member_id",
            )?;
            let group = object_id(
                &r.try_get::<String, _>("group_id")?,
                "mirror_members",
                "group_id",
            )?;
            if let Some(&i) = at.get(&member) {
                users[i]
                    .direct
                    .push((group, GroupKind::from_i64(r.try_get("group_kind")?)?));
            }
        }
        Ok(users)
    }

    async fn mirror_group_names_impl(
        &self,
        ids: &[ObjectId],
    ) -> Result<Vec<(ObjectId, Option<String>, GroupKind)>> {
        let wanted: Vec<String> = ids.iter().map(ToString::to_string).collect();
        let rows =
            sqlx::query("SELECT id, display_name, kind FROM mirror_groups WHERE id = ANY($1)")
                .bind(&wanted)
                .fetch_all(&self.pool)
                .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push((
                object_id(&r.try_get::<String, _>("id")?, "mirror_groups", "id")?,
                r.try_get("display_name")?,
                GroupKind::from_i64(r.try_get("kind")?)?,
            ));
        }
        Ok(out)
    }

    async fn mirror_registration_impl(&self, user: &ObjectId) -> Result<Option<Vec<String>>> {
        let methods: Option<String> =
            sqlx::query_scalar("SELECT methods FROM mirror_registrations WHERE user_id = $1")
                .bind(user.to_string())
                .fetch_optional(&self.pool)
                .await?;
        Ok(methods.map(|m| split_methods(&m)))
    }

    async fn mirror_registrations_impl(&self) -> Result<Vec<(ObjectId, Vec<String>)>> {
        let rows =
            sqlx::query("SELECT user_id, methods FROM mirror_registrations WHERE methods <> ''")
                .fetch_all(&self.pool)
                .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let id = object_id(
                &r.try_get::<String, _>("user_id")?,
                "mirror_registrations",
                "user_id",
            )?;
            out.push((id, split_methods(&r.try_get::<String, _>("methods")?)));
        }
        Ok(out)
    }

    async fn mirror_counts_impl(&self) -> Result<MirrorCounts> {
        let r = sqlx::query(
            "SELECT (SELECT count(*) FROM mirror_users) AS users, \
               (SELECT count(*) FROM mirror_groups WHERE kind = 0) AS groups, \
               (SELECT count(*) FROM mirror_groups WHERE kind = 1) AS roles, \
               (SELECT count(*) FROM mirror_members) AS memberships",
        )
        .fetch_one(&self.pool)
        .await?;
        let n =
            |c: &str| -> Result<u64> { Ok(u64::try_from(r.try_get::<i64, _>(c)?).unwrap_or(0)) };
        Ok(MirrorCounts {
            users: n("users")?,
            groups: n("groups")?,
            roles: n("roles")?,
            memberships: n("memberships")?,
        })
    }
}

fn user_row(r: &sqlx::postgres::PgRow) -> Result<MirrorUser> {
    Ok(MirrorUser {
        id: object_id(&r.try_get::<String, _>("id")?, "mirror_users", "id")?,
        user_principal_name: r.try_get("upn")?,
        display_name: r.try_get("display_name")?,
        enabled: r.try_get::<i64, _>("enabled")? != 0,
        synced: r.try_get::<i64, _>("synced")? != 0,
        keys: Vec::new(),
        profile: r.try_get("profile")?,
    })
}

fn parent_row(r: &sqlx::postgres::PgRow) -> Result<MirrorParent> {
    Ok(MirrorParent {
        member: object_id(
            &r.try_get::<String, _>("member_id")?,
            "mirror_members",
            "member_id",
        )?,
        group: object_id(
            &r.try_get::<String, _>("group_id")?,
            "mirror_members",
            "group_id",
        )?,
        kind: GroupKind::from_i64(r.try_get("group_kind")?)?,
    })
}

/// Moves the collection's sync state past `page`; returns the generation its rows get and
/// whether the round is a full one.
async fn advance_state(
    tx: &mut Transaction<'_, Postgres>,
    page: &MirrorPage,
    now: OffsetDateTime,
) -> Result<(i64, bool)> {
    let name = page.collection.as_str();
    let before = sqlx::query(
        "SELECT generation, full_round, pages_in_round, link_done FROM mirror_sync \
         WHERE collection = $1 FOR UPDATE",
    )
    .bind(name)
    .fetch_optional(&mut **tx)
    .await?;
    let (mut generation, mut full, mut pages, was_done) = match before {
        Some(r) => (
            r.try_get::<i64, _>("generation")?,
            r.try_get::<i64, _>("full_round")?,
            r.try_get::<i64, _>("pages_in_round")?,
            r.try_get::<i64, _>("link_done")?,
        ),
        None => (0, 0, 0, 1),
    };
    if page.begins_full_round {
        generation += 1;
        full = 1;
        pages = 0;
    } else if was_done != 0 {
        full = 0;
        pages = 0;
    }
    pages += 1;
    let (link, done) = match &page.link {
        MirrorLink::More(l) => (l, 0i64),
        MirrorLink::Done(l) => (l, 1i64),
    };
    sqlx::query(
        "INSERT INTO mirror_sync (collection, link, link_done, full_round, generation, \
           pages_in_round, last_round_ms, last_full_round_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, CASE WHEN $3 = 1 THEN $7::bigint END, \
           CASE WHEN $3 = 1 AND $4 = 1 THEN $7::bigint END) \
         ON CONFLICT (collection) DO UPDATE SET link = $2, link_done = $3, full_round = $4, \
           generation = $5, pages_in_round = $6, \
           last_round_ms = CASE WHEN $3 = 1 THEN $7 ELSE mirror_sync.last_round_ms END, \
           last_full_round_ms = CASE WHEN $3 = 1 AND $4 = 1 THEN $7 \
             ELSE mirror_sync.last_full_round_ms END, \
           error = CASE WHEN $3 = 1 THEN NULL ELSE mirror_sync.error END, \
           error_ms = CASE WHEN $3 = 1 THEN NULL ELSE mirror_sync.error_ms END",
    )
    .bind(name)
    .bind(link)
    .bind(done)
    .bind(full)
    .bind(generation)
    .bind(pages)
    .bind(ms(now))
    .execute(&mut **tx)
    .await?;
    Ok((generation, full != 0))
}

async fn write_users(
    tx: &mut Transaction<'_, Postgres>,
    page: &MirrorPage,
    generation: i64,
) -> Result<()> {
    if page.users.is_empty() {
        return Ok(());
    }
    // A user listed twice in one page: the later entry wins, as it would row by row.
    let mut last: HashMap<ObjectId, usize> = HashMap::new();
    for (i, u) in page.users.iter().enumerate() {
        last.insert(u.id, i);
    }
    let users: Vec<&MirrorUser> = page
        .users
        .iter()
        .enumerate()
        .filter(|(i, u)| last.get(&u.id) == Some(i))
        .map(|(_, u)| u)
        .collect();
    let ids: Vec<String> = users.iter().map(|u| u.id.to_string()).collect();
    let upns: Vec<&str> = users
        .iter()
        .map(|u| u.user_principal_name.as_str())
        .collect();
    let names: Vec<Option<&str>> = users.iter().map(|u| u.display_name.as_deref()).collect();
    let enabled: Vec<i64> = users.iter().map(|u| i64::from(u.enabled)).collect();
    let synced: Vec<i64> = users.iter().map(|u| i64::from(u.synced)).collect();
    let profiles: Vec<&str> = users.iter().map(|u| u.profile.as_str()).collect();
    sqlx::query(
        "INSERT INTO mirror_users (id, upn, display_name, enabled, synced, generation) \
         SELECT u.id, u.upn, u.name, u.enabled, u.synced, $6 \
         FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[]) \
           AS u(id, upn, name, enabled, synced) \
         ON CONFLICT (id) DO UPDATE SET upn = excluded.upn, display_name = excluded.display_name, \
           enabled = excluded.enabled, synced = excluded.synced, \
           generation = excluded.generation",
    )
    .bind(&ids)
    .bind(&upns)
    .bind(&names)
    .bind(&enabled)
    .bind(&synced)
    .bind(generation)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO mirror_profiles (id, profile) SELECT * FROM unnest($1::text[], $2::text[]) \
         ON CONFLICT (id) DO UPDATE SET profile = excluded.profile",
    )
    .bind(&ids)
    .bind(&profiles)
    .execute(&mut **tx)
    .await?;
    sqlx::query("DELETE FROM mirror_user_keys WHERE user_id = ANY($1)")
        .bind(&ids)
        .execute(&mut **tx)
        .await?;
    let mut key_users: Vec<String> = Vec::new();
    let mut keys: Vec<&str> = Vec::new();
    for u in &users {
        for k in &u.keys {
            key_users.push(u.id.to_string());
            keys.push(k.as_str());
        }
    }
    sqlx::query(
        "INSERT INTO mirror_user_keys (key, user_id) SELECT * FROM unnest($1::text[], $2::text[]) \
         ON CONFLICT DO NOTHING",
    )
    .bind(&keys)
    .bind(&key_users)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn write_groups(
    tx: &mut Transaction<'_, Postgres>,
    page: &MirrorPage,
    generation: i64,
) -> Result<()> {
    let Some(kind) = page.collection.group_kind() else {
        return Ok(());
    };
    // One row per group: a later entry's name (when it has one) wins.
    let mut groups: Vec<(ObjectId, Option<&str>, Option<String>)> = Vec::new();
    for g in &page.groups {
        let template = g.role_template_id.map(|r| r.to_string());
        match groups.iter_mut().find(|(id, _, _)| *id == g.id) {
            Some(entry) => {
                if g.display_name.is_some() {
                    entry.1 = g.display_name.as_deref();
                }
                if template.is_some() {
                    entry.2 = template;
                }
            }
            None => groups.push((g.id, g.display_name.as_deref(), template)),
        }
    }
    let ids: Vec<String> = groups.iter().map(|g| g.0.to_string()).collect();
    let names: Vec<Option<&str>> = groups.iter().map(|g| g.1).collect();
    let templates: Vec<Option<String>> = groups.iter().map(|g| g.2.clone()).collect();
    sqlx::query(
        "INSERT INTO mirror_groups (id, kind, display_name, role_template_id, generation) \
         SELECT g.id, $4, g.name, g.template, $5 \
         FROM unnest($1::text[], $2::text[], $3::text[]) AS g(id, name, template) \
         ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, \
           display_name = COALESCE(excluded.display_name, mirror_groups.display_name), \
           role_template_id = COALESCE(excluded.role_template_id, mirror_groups.role_template_id), \
           generation = excluded.generation",
    )
    .bind(&ids)
    .bind(&names)
    .bind(&templates)
    .bind(kind.as_i64())
    .bind(generation)
    .execute(&mut **tx)
    .await?;
    // Membership edits in page order collapse to the last edit per (group, member).
    let mut last: HashMap<(ObjectId, ObjectId), usize> = HashMap::new();
    for (i, m) in page.members.iter().enumerate() {
        last.insert((m.group, m.member), i);
    }
    let (mut add_g, mut add_m, mut add_t, mut del_g, mut del_m) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (i, m) in page.members.iter().enumerate() {
        if last.get(&(m.group, m.member)) != Some(&i) {
            continue;
        }
        if m.removed {
            del_g.push(m.group.to_string());
            del_m.push(m.member.to_string());
        } else {
            add_g.push(m.group.to_string());
            add_m.push(m.member.to_string());
            add_t.push(m.member_type.as_i64());
        }
    }
    sqlx::query(
        "DELETE FROM mirror_members m USING unnest($1::text[], $2::text[]) AS d(g, mem) \
         WHERE m.group_id = d.g AND m.member_id = d.mem",
    )
    .bind(&del_g)
    .bind(&del_m)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO mirror_members (group_id, member_id, member_type, group_kind, generation) \
         SELECT a.g, a.mem, a.t, $4, $5 FROM unnest($1::text[], $2::text[], $3::bigint[]) \
           AS a(g, mem, t) \
         ON CONFLICT (group_id, member_id) DO UPDATE SET member_type = excluded.member_type, \
           group_kind = excluded.group_kind, generation = excluded.generation",
    )
    .bind(&add_g)
    .bind(&add_m)
    .bind(&add_t)
    .bind(kind.as_i64())
    .bind(generation)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn write_registrations(
    tx: &mut Transaction<'_, Postgres>,
    page: &MirrorPage,
    generation: i64,
) -> Result<()> {
    if page.registrations.is_empty() {
        return Ok(());
    }
    // A user listed twice: the later entry wins.
    let mut last: HashMap<ObjectId, &Vec<String>> = HashMap::new();
    for (user, methods) in &page.registrations {
        last.insert(*user, methods);
    }
    let users: Vec<String> = last.keys().map(ToString::to_string).collect();
    let methods: Vec<String> = last.values().map(|m| m.join(",")).collect();
    sqlx::query(
        "INSERT INTO mirror_registrations (user_id, methods, generation) \
         SELECT r.u, r.m, $3 FROM unnest($1::text[], $2::text[]) AS r(u, m) \
         ON CONFLICT (user_id) DO UPDATE SET methods = excluded.methods, \
           generation = excluded.generation",
    )
    .bind(&users)
    .bind(&methods)
    .bind(generation)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn remove(tx: &mut Transaction<'_, Postgres>, page: &MirrorPage) -> Result<()> {
    if page.removed.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = page.removed.iter().map(ToString::to_string).collect();
    if page.collection == MirrorCollection::RegistrationDetails {
        sqlx::query("DELETE FROM mirror_registrations WHERE user_id = ANY($1)")
            .bind(&ids)
            .execute(&mut **tx)
            .await?;
    } else if page.collection.group_kind().is_none() {
        sqlx::query("DELETE FROM mirror_user_keys WHERE user_id = ANY($1)")
            .bind(&ids)
            .execute(&mut **tx)
            .await?;
        sqlx::query("DELETE FROM mirror_profiles WHERE id = ANY($1)")
            .bind(&ids)
            .execute(&mut **tx)
            .await?;
        sqlx::query("DELETE FROM mirror_users WHERE id = ANY($1)")
            .bind(&ids)
            .execute(&mut **tx)
            .await?;
    } else {
        sqlx::query("DELETE FROM mirror_members WHERE group_id = ANY($1) OR member_id = ANY($1)")
            .bind(&ids)
            .execute(&mut **tx)
            .await?;
        sqlx::query("DELETE FROM mirror_groups WHERE id = ANY($1)")
            .bind(&ids)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// At the end of a full round: deletes what the round did not see (stamped older).
async fn sweep(
    tx: &mut Transaction<'_, Postgres>,
    collection: MirrorCollection,
    generation: i64,
) -> Result<()> {
    match (collection, collection.group_kind()) {
        (MirrorCollection::RegistrationDetails, _) => {
            sqlx::query("DELETE FROM mirror_registrations WHERE generation < $1")
                .bind(generation)
                .execute(&mut **tx)
                .await?;
        }
        (_, None) => {
            for table in ["mirror_user_keys WHERE user_id", "mirror_profiles WHERE id"] {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DELETE FROM {table} IN (SELECT id FROM mirror_users WHERE generation < $1)"
                )))
                .bind(generation)
                .execute(&mut **tx)
                .await?;
            }
            sqlx::query("DELETE FROM mirror_users WHERE generation < $1")
                .bind(generation)
                .execute(&mut **tx)
                .await?;
        }
        (_, Some(kind)) => {
            sqlx::query("DELETE FROM mirror_members WHERE group_kind = $1 AND generation < $2")
                .bind(kind.as_i64())
                .bind(generation)
                .execute(&mut **tx)
                .await?;
            sqlx::query("DELETE FROM mirror_groups WHERE kind = $1 AND generation < $2")
                .bind(kind.as_i64())
                .bind(generation)
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(())
}
impl MirrorStore for PostgresStore {
    fn lease_mirror<'a>(
        &'a self,
        holder: &'a str,
        now: OffsetDateTime,
        ttl: std::time::Duration,
    ) -> StoreFuture<'a, bool> {
        Box::pin(
            self.observer
                .timed("lease_mirror", self.lease_mirror_impl(holder, now, ttl)),
        )
    }
    fn release_mirror<'a>(&'a self, holder: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(
            self.observer
                .timed("release_mirror", self.release_mirror_impl(holder)),
        )
    }
    fn apply_mirror_page<'a>(
        &'a self,
        holder: &'a str,
        page: &'a MirrorPage,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, bool> {
        Box::pin(self.observer.timed(
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
        Box::pin(self.observer.timed(
            "record_mirror_error",
            self.record_mirror_error_impl(collection, error, now),
        ))
    }
    fn mirror_sync_state(&self) -> StoreFuture<'_, Vec<MirrorSyncState>> {
        Box::pin(
            self.observer
                .timed("mirror_sync_state", self.mirror_sync_state_impl()),
        )
    }
    fn request_mirror_sync(&self, now: OffsetDateTime) -> StoreFuture<'_, ()> {
        Box::pin(
            self.observer
                .timed("request_mirror_sync", self.request_mirror_sync_impl(now)),
        )
    }
    fn mirror_requested(&self) -> StoreFuture<'_, Option<OffsetDateTime>> {
        Box::pin(
            self.observer
                .timed("mirror_requested", self.mirror_requested_impl()),
        )
    }
    fn mirror_find_users<'a>(&'a self, key: &'a str, max: u32) -> StoreFuture<'a, Vec<MirrorUser>> {
        Box::pin(
            self.observer
                .timed("mirror_find_users", self.mirror_find_users_impl(key, max)),
        )
    }
    fn mirror_user<'a>(&'a self, id: &'a ObjectId) -> StoreFuture<'a, Option<MirrorUser>> {
        Box::pin(
            self.observer
                .timed("mirror_user", self.mirror_user_impl(id)),
        )
    }
    fn mirror_parents<'a>(&'a self, members: &'a [ObjectId]) -> StoreFuture<'a, Vec<MirrorParent>> {
        Box::pin(
            self.observer
                .timed("mirror_parents", self.mirror_parents_impl(members)),
        )
    }
    fn mirror_ancestors<'a>(
        &'a self,
        member: &'a ObjectId,
    ) -> StoreFuture<'a, Vec<(ObjectId, GroupKind)>> {
        Box::pin(
            self.observer
                .timed("mirror_ancestors", self.mirror_ancestors_impl(member)),
        )
    }
    fn mirror_nesting(&self) -> StoreFuture<'_, Vec<MirrorParent>> {
        Box::pin(
            self.observer
                .timed("mirror_nesting", self.mirror_nesting_impl()),
        )
    }
    fn mirror_users_page(
        &self,
        after: Option<ObjectId>,
        limit: u32,
    ) -> StoreFuture<'_, Vec<MirrorListedUser>> {
        Box::pin(self.observer.timed(
            "mirror_users_page",
            self.mirror_users_page_impl(after, limit),
        ))
    }
    fn mirror_group_names<'a>(
        &'a self,
        ids: &'a [ObjectId],
    ) -> StoreFuture<'a, Vec<(ObjectId, Option<String>, GroupKind)>> {
        Box::pin(
            self.observer
                .timed("mirror_group_names", self.mirror_group_names_impl(ids)),
        )
    }
    fn mirror_counts(&self) -> StoreFuture<'_, MirrorCounts> {
        Box::pin(
            self.observer
                .timed("mirror_counts", self.mirror_counts_impl()),
        )
    }
    fn mirror_registrations(&self) -> StoreFuture<'_, Vec<(ObjectId, Vec<String>)>> {
        Box::pin(
            self.observer
                .timed("mirror_registrations", self.mirror_registrations_impl()),
        )
    }
    fn mirror_registration<'a>(
        &'a self,
        user: &'a ObjectId,
    ) -> StoreFuture<'a, Option<Vec<String>>> {
        Box::pin(
            self.observer
                .timed("mirror_registration", self.mirror_registration_impl(user)),
        )
    }
}
