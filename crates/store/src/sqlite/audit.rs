//! Audit events on SQLite. The table refuses UPDATE and DELETE (triggers in the migration).

use rusqlite::types::Value;
use rusqlite::{params, params_from_iter};

use super::{SqliteStore, ms, returning};
use time::OffsetDateTime;

use crate::audit::{AuditDayCount, AuditEvent, AuditId, AuditQuery, AuditRecord, Outcome};
use crate::error::{Result, StoreError};

const T: &str = "audit_events";

/// A statement assembled from fixed SQL fragments, every value bound (never spliced in).
struct Query {
    sql: String,
    values: Vec<Value>,
}

impl Query {
    fn new(sql: &str) -> Self {
        Self {
            sql: sql.to_string(),
            values: Vec::new(),
        }
    }
    /// Appends `fragment` followed by a placeholder for `value`.
    fn push_bind(&mut self, fragment: &str, value: impl Into<Value>) {
        self.sql.push_str(fragment);
        self.sql.push('?');
        self.values.push(value.into());
    }
    /// Appends `fragment (?, ?, ...)`, one placeholder per value.
    fn push_list(&mut self, fragment: &str, values: impl IntoIterator<Item = Value>) {
        self.sql.push_str(fragment);
        self.sql.push('(');
        for (i, v) in values.into_iter().enumerate() {
            self.sql.push_str(if i == 0 { "?" } else { ", ?" });
            self.values.push(v);
        }
        self.sql.push(')');
    }
}

impl SqliteStore {
    pub(super) async fn append_audit_impl(&self, e: &AuditEvent) -> Result<AuditId> {
        self.write(|conn| {
            let mut stmt = conn.prepare_cached(
                "INSERT INTO audit_events (at_ms, correlation_id, actor, subject, event_type, method, \
                 outcome, reason, details) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING id",
            )?;
            let rows = stmt.query(params![
                ms(e.at),
                e.correlation_id,
                e.actor,
                e.subject.map(|s| s.to_string()),
                e.event_type,
                e.method,
                e.outcome.as_str(),
                e.reason,
                e.details.to_string(),
            ])?;
            let id = returning(rows, |row| Ok(row.get::<_, i64>("id")?))?
                .ok_or(rusqlite::Error::QueryReturnedNoRows)?;
            Ok(AuditId(id))
        })
    }

    /// Searches run on a read connection (under WAL it sees every committed event), so a long
    /// search never holds up the writer.
    pub(super) async fn audit_events_impl(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>> {
        let mut b = Query::new(
            "SELECT id, at_ms, correlation_id, actor, subject, event_type, method, outcome, \
             reason, details FROM audit_events WHERE 1 = 1",
        );
        if let Some(s) = &q.subject {
            b.push_bind(" AND subject = ", s.to_string());
        }
        if let Some(t) = &q.event_type {
            b.push_bind(" AND event_type = ", t.clone());
        }
        if !q.actors.is_empty() {
            b.push_list(
                " AND actor IN ",
                q.actors.iter().map(|a| Value::Text(a.clone())),
            );
        }
        if let Some(o) = q.outcome {
            b.push_bind(" AND outcome = ", o.as_str().to_string());
        }
        if let Some(c) = &q.correlation_id {
            b.push_bind(" AND correlation_id = ", c.clone());
        }
        if let Some(t) = q.since {
            b.push_bind(" AND at_ms >= ", ms(t));
        }
        if let Some(t) = q.until {
            b.push_bind(" AND at_ms < ", ms(t));
        }
        if let Some(id) = q.before {
            b.push_bind(" AND id < ", id.0);
        }
        if let Some(id) = q.after {
            b.push_bind(" AND id > ", id.0);
        }
        let limit = match q.limit {
            0 => AuditQuery::MAX_LIMIT,
            n => n.min(AuditQuery::MAX_LIMIT),
        };
        // Paging back (`after` alone) takes the oldest `limit` rows above the bound, then
        // shows them newest first like every other page.
        let ascending = q.after.is_some() && q.before.is_none();
        b.push_bind(
            if ascending {
                " ORDER BY id ASC LIMIT "
            } else {
                " ORDER BY id DESC LIMIT "
            },
            i64::from(limit),
        );
        let mut out = self.read(|conn| {
            let mut stmt = conn.prepare_cached(&b.sql)?;
            let mut rows = stmt.query(params_from_iter(b.values.iter()))?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(crate::rows::audit_record(row)?);
            }
            Ok(out)
        })?;
        if ascending {
            out.reverse();
        }
        Ok(out)
    }

    pub(super) async fn audit_daily_counts_impl(
        &self,
        since: OffsetDateTime,
        until: OffsetDateTime,
        event_types: &[&str],
    ) -> Result<Vec<AuditDayCount>> {
        // Integer division by a day of milliseconds: the UTC day number since the epoch. The
        // range predicate uses the at_ms index; only the grouped counts leave the database.
        let mut b = Query::new(
            "SELECT at_ms / 86400000 AS day, event_type, outcome, COUNT(*) AS n \
             FROM audit_events WHERE at_ms >= ",
        );
        b.push_bind("", ms(since));
        b.push_bind(" AND at_ms < ", ms(until));
        if !event_types.is_empty() {
            b.push_list(
                " AND event_type IN ",
                event_types.iter().map(|t| Value::Text((*t).to_string())),
            );
        }
        b.sql
            .push_str(" GROUP BY day, event_type, outcome ORDER BY day, event_type, outcome");
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&b.sql)?;
            let mut rows = stmt.query(params_from_iter(b.values.iter()))?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                let day: i64 = row.get("day")?;
                out.push(AuditDayCount {
                    day: day_from_number(day)?,
                    event_type: row.get("event_type")?,
                    outcome: Outcome::parse(&row.get::<_, String>("outcome")?).ok_or(
                        StoreError::Corrupt {
                            table: T,
                            column: "outcome",
                        },
                    )?,
                    count: u64::try_from(row.get::<_, i64>("n")?).unwrap_or(0),
                });
            }
            Ok(out)
        })
    }
}

/// The UTC date of day number `n` since 1970-01-01.
pub(crate) fn day_from_number(n: i64) -> Result<time::Date> {
    OffsetDateTime::from_unix_timestamp(n.saturating_mul(86_400))
        .map(|t| t.date())
        .map_err(|_| StoreError::Corrupt {
            table: T,
            column: "at_ms",
        })
}
