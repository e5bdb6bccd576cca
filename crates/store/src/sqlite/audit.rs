//! Audit events on SQLite. The table refuses UPDATE and DELETE (triggers in the migration).

use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite};

use super::{SqliteStore, from_ms, json, ms, object_id};
use crate::audit::{AuditEvent, AuditId, AuditQuery, AuditRecord, Outcome};
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
        if let Some(t) = q.since {
            b.push(" AND at_ms >= ").push_bind(ms(t));
        }
        if let Some(t) = q.until {
            b.push(" AND at_ms < ").push_bind(ms(t));
        }
        if let Some(id) = q.before {
            b.push(" AND id < ").push_bind(id.0);
        }
        let limit = match q.limit {
            0 => AuditQuery::MAX_LIMIT,
            n => n.min(AuditQuery::MAX_LIMIT),
        };
        b.push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::from(limit));
        let rows = b.build().fetch_all(&self.pool).await?;
        rows.iter().map(record_from_row).collect()
    }
}
