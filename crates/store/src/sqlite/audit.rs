//! Audit events on SQLite. The table refuses UPDATE and DELETE (triggers in the migration).

use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite};

use super::{SqliteStore, from_ms, json, ms, object_id};
use time::OffsetDateTime;

use crate::audit::{AuditDayCount, AuditEvent, AuditId, AuditQuery, AuditRecord, Outcome};
use crate::error::{Result, StoreError};

const T: &str = "audit_events";

fn record_from_row(row: &SqliteRow) -> Result<AuditRecord> {
    let subject: Option<String> = row.try_get("subject")?;
    Ok(AuditRecord {
        id: AuditId(row.try_get("id")?),
        event: AuditEvent {
            at: from_ms(row.try_get("at_ms")?, T, "at_ms")?,
            correlation_id: row.try_get("correlation_id")?,
            actor: row.try_get("actor")?,
            subject: subject.map(|s| object_id(&s, T, "subject")).transpose()?,
            event_type: row.try_get("event_type")?,
            method: row.try_get("method")?,
            outcome: Outcome::parse(&row.try_get::<String, _>("outcome")?).ok_or(
                StoreError::Corrupt {
                    table: T,
                    column: "outcome",
                },
            )?,
            reason: row.try_get("reason")?,
            details: json(&row.try_get::<String, _>("details")?, T, "details")?,
        },
    })
}

impl SqliteStore {
    pub(super) async fn append_audit_impl(&self, e: &AuditEvent) -> Result<AuditId> {
        let row = sqlx::query(
            "INSERT INTO audit_events (at_ms, correlation_id, actor, subject, event_type, method, \
             outcome, reason, details) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING id",
        )
        .bind(ms(e.at))
        .bind(&e.correlation_id)
        .bind(&e.actor)
        .bind(e.subject.map(|s| s.to_string()))
        .bind(&e.event_type)
        .bind(&e.method)
        .bind(e.outcome.as_str())
        .bind(&e.reason)
        .bind(e.details.to_string())
        .fetch_one(&self.pool)
        .await?;
        Ok(AuditId(row.try_get("id")?))
    }

    pub(super) async fn audit_events_impl(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>> {
        // Only fixed SQL fragments are pushed; every value goes through push_bind.
        let mut b: QueryBuilder<Sqlite> = QueryBuilder::new(
            "SELECT id, at_ms, correlation_id, actor, subject, event_type, method, outcome, \
             reason, details FROM audit_events WHERE 1 = 1",
        );
        if let Some(s) = &q.subject {
            b.push(" AND subject = ").push_bind(s.to_string());
        }
        if let Some(t) = &q.event_type {
            b.push(" AND event_type = ").push_bind(t.clone());
        }
        if !q.actors.is_empty() {
            b.push(" AND actor IN (");
            let mut list = b.separated(", ");
            for a in &q.actors {
                list.push_bind(a.clone());
            }
            b.push(")");
        }
        if let Some(o) = q.outcome {
            b.push(" AND outcome = ").push_bind(o.as_str());
        }
        if let Some(c) = &q.correlation_id {
            b.push(" AND correlation_id = ").push_bind(c.clone());
        }
        if let Some(t) = q.since {
            b.push(" AND at_ms >= ").push_bind(ms(t));
        }
        if let Some(t) = q.until {
            b.push(" AND at_ms < ").push_bind(ms(t));
        }
        if let Some(id) = q.before {
            b.push(" AND id < ").push_bind(id.0);
        }
        if let Some(id) = q.after {
            b.push(" AND id > ").push_bind(id.0);
        }
        let limit = match q.limit {
            0 => AuditQuery::MAX_LIMIT,
            n => n.min(AuditQuery::MAX_LIMIT),
        };
        // Paging back (`after` alone) takes the oldest `limit` rows above the bound, then
        // shows them newest first like every other page.
        let ascending = q.after.is_some() && q.before.is_none();
        b.push(if ascending {
            " ORDER BY id ASC LIMIT "
        } else {
            " ORDER BY id DESC LIMIT "
        })
        .push_bind(i64::from(limit));
        let rows = b.build().fetch_all(&self.pool).await?;
        let mut out = rows
            .iter()
            .map(record_from_row)
            .collect::<Result<Vec<_>>>()?;
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
        let mut b: QueryBuilder<Sqlite> = QueryBuilder::new(
            "SELECT at_ms / 86400000 AS day, event_type, outcome, COUNT(*) AS n \
             FROM audit_events WHERE at_ms >= ",
        );
        b.push_bind(ms(since))
            .push(" AND at_ms < ")
            .push_bind(ms(until));
        if !event_types.is_empty() {
            b.push(" AND event_type IN (");
            let mut list = b.separated(", ");
            for t in event_types {
                list.push_bind((*t).to_string());
            }
            b.push(")");
        }
        b.push(" GROUP BY day, event_type, outcome ORDER BY day, event_type, outcome");
        let rows = b.build().fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                let day: i64 = row.try_get("day")?;
                Ok(AuditDayCount {
                    day: day_from_number(day)?,
                    event_type: row.try_get("event_type")?,
                    outcome: Outcome::parse(&row.try_get::<String, _>("outcome")?).ok_or(
                        StoreError::Corrupt {
                            table: T,
                            column: "outcome",
                        },
                    )?,
                    count: u64::try_from(row.try_get::<i64, _>("n")?).unwrap_or(0),
                })
            })
            .collect()
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
