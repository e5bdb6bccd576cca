//! What the command line shares when it acts on the portal's store (`latchkey gateway …`,
//! `latchkey passkey …`): the same database and key as `latchkey serve`, audit events written as
//! the actor `admin:cli`, and the time through the one clock seam.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use latchkey_store::{AuditEvent, EncryptionKey, Outcome, Store};
use latchkey_types::ObjectId;

use crate::config::Settings;

/// The portal's store, opened with its key (run on the portal host, or where its configuration,
/// key file and database are reachable).
pub(crate) async fn open(config: &Path) -> anyhow::Result<Arc<dyn Store>> {
    let settings = Settings::load(config)?;
    let key = EncryptionKey::load_or_create(&settings.store.key_file).with_context(|| {
        format!(
            "key `store.key_file` ({})",
            settings.store.key_file.display()
        )
    })?;
    crate::serve::open_store(&settings, &key).await
}

/// Appends an audit event of the command line (its own correlation id). Never ignored: a
/// command whose audit event cannot be written says so and fails.
pub(crate) async fn audit(
    store: &dyn Store,
    event_type: &str,
    subject: Option<ObjectId>,
    outcome: Outcome,
    reason: Option<&str>,
    details: serde_json::Value,
) -> anyhow::Result<()> {
    let event = AuditEvent {
        at: now(),
        correlation_id: format!("cli-{}", latchkey_types::random::uuid()?.simple()),
        actor: "admin:cli".into(),
        subject,
        event_type: event_type.into(),
        method: None,
        outcome,
        reason: reason.map(str::to_string),
        details,
    };
    store
        .append_audit(&event)
        .await
        .context("writing the audit event")?;
    Ok(())
}

/// The command line's time: the system clock, through the one clock seam.
pub(crate) fn now() -> time::OffsetDateTime {
    latchkey_verify::Clock::now(&latchkey_verify::SystemClock)
}
