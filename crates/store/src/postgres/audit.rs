//! Audit events on PostgreSQL. The table refuses UPDATE, DELETE and TRUNCATE (trigger in the
//! migration).

use sqlx::{Postgres, QueryBuilder, Row};

use super::PostgresStore;
use time::OffsetDateTime;

use crate::audit::{AuditDayCount, AuditEvent, AuditId, AuditQuery, AuditRecord, Outcome};
use crate::error::{Result, StoreError};
use crate::sqlite::{day_from_number, ms};

const T: &str = "audit_events";

impl PostgresStore {
    pub(super) async fn append_audit_impl(&self, e: &AuditEvent) -> Result<AuditId> {
        let row = sqlx::query(
            "INSERT INTO audit_events (at_ms, correlation_id, actor, subject, event_type, method, \
             outcome, reason, details) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb) \
             RETURNING id",
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
        let mut b: QueryBuilder<Postgres> = QueryBuilder::new(
            "SELECT id, at_ms, correlation_id, actor, subject, event_type, method, outcome, \
             reason, details::text AS details FROM audit_events WHERE 1 = 1",
        );
        if let Some(s) = &q.subject {
            b.push(" AND subject = ").push_bind(s.to_string());
        }
        if let Some(t) = &q.event_type {
            b.push(" AND event_type = ").push_bind(t.clone());
        }
        if !q.actors.is_empty() {
            b.push(" AND actor = ANY(")
                .push_bind(q.actors.clone())
                .push(")");
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
        // Paging back (`after` alone) takes the oldest `limit` rows above the bound, then shows
        // them newest first like every other page.
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
            .map(crate::rows::audit_record)
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
        // Integer division by a day of milliseconds: the UTC day number since the epoch (as on
        // SQLite). The range predicate uses the at_ms index; only the counts leave the database.
        let types: Vec<String> = event_types.iter().map(|t| (*t).to_string()).collect();
        let rows = sqlx::query(
            "SELECT at_ms / 86400000 AS day, event_type, outcome, COUNT(*) AS n \
             FROM audit_events WHERE at_ms >= $1 AND at_ms < $2 \
               AND (cardinality($3::text[]) = 0 OR event_type = ANY($3)) \
             GROUP BY 1, 2, 3 ORDER BY day, event_type COLLATE \"C\", outcome COLLATE \"C\"",
        )
        .bind(ms(since))
        .bind(ms(until))
        .bind(&types)
        .fetch_all(&self.pool)
        .await?;
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
