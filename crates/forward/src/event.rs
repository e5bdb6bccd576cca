//! The forwarded form of an audit event: one JSON object, the same for every output (the
//! webhook's array items, the syslog message's body), so a SIEM parses one shape.

use latchkey_store::AuditRecord;
use serde_json::{Value, json};
use time::macros::format_description;

/// UTC with milliseconds, always three digits: `2026-12-07T12:45:01.123Z` (the JSON's `at`
/// and the syslog TIMESTAMP).
pub fn utc_millis(t: time::OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        ))
        .unwrap_or_else(|_| "-".into())
}

/// The event as JSON. `id` is the audit row's id, unique and increasing within one deployment's
/// store: with `source`, the idempotency key (delivery is at least once).
pub fn event_json(record: &AuditRecord, source: &str) -> Value {
    let e = &record.event;
    json!({
        "id": record.id.0,
        "source": source,
        "at": utc_millis(e.at),
        "event": e.event_type,
        "outcome": e.outcome.as_str(),
        "method": e.method,
        "reason": e.reason,
        "actor": e.actor,
        "subject": e.subject.map(|s| s.to_string()),
        "correlationId": e.correlation_id,
        "details": e.details,
    })
}
