//! Audit forwarding bookkeeping: how far each SIEM output has delivered the audit trail, and
//! which portal instance delivers it now.
//!
//! Every output (`syslog`, `webhook`) has one row: a **cursor** (the position of the last event
//! it delivered) and a **lease** (holder and deadline). An instance forwards an output only while
//! it holds the lease, renewed every round, so several instances on one PostgreSQL database
//! deliver each event through one forwarder; an instance that dies stops renewing and another
//! takes over when the lease runs out. Moving the cursor is fenced by the holder: an instance
//! that lost its lease can no longer move it (what it sent meanwhile is sent again by the next
//! holder: delivery is at least once, the audit id is the idempotency key).
//!
//! # Positions
//! [`crate::Store::audit_after`] returns only events that are **final**: no event can appear
//! later before them. On SQLite one writer commits at a time, so row ids grow in commit order and
//! the id alone is the position. On PostgreSQL ids are handed out before commit, so a
//! transaction that took id 10 may commit after id 11 was read; there each row also records its
//! transaction id (`xid8`), positions are ordered by (transaction, id), and only rows of
//! transactions older than every running one (`pg_snapshot_xmin`) are final. A long-running
//! transaction anywhere in the cluster therefore delays forwarding; it never loses an event.

use crate::audit::AuditRecord;

/// A position in the audit trail, in the order events become final.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AuditPosition {
    /// PostgreSQL: the writing transaction's id; SQLite: always 0.
    pub(crate) tx: i64,
    pub(crate) id: i64,
}

impl AuditPosition {
    /// Before every event.
    pub const START: AuditPosition = AuditPosition { tx: 0, id: 0 };
}

/// Where a new output's cursor starts, the first time any instance leases it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForwardStart {
    /// With the first event in the trail (the whole history is delivered).
    Beginning,
    /// After the events already written: only new ones are delivered.
    Now,
}

/// A final event with its position, as [`crate::Store::audit_after`] returns it.
#[derive(Clone, Debug, PartialEq)]
pub struct ForwardItem {
    pub position: AuditPosition,
    pub record: AuditRecord,
}

/// Output names are short identifiers chosen by the portal (`syslog`, `webhook`).
pub(crate) fn check_output(output: &str) -> crate::Result<()> {
    let ok = !output.is_empty()
        && output.len() <= 32
        && output
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(crate::StoreError::Invalid(
            "an audit forwarding output name is 1-32 of a-z, 0-9, _ and -",
        ))
    }
}
