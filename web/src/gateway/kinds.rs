//! Changing what a registered gateway may do, without a new credential: shared by
//! `latchkey gateway allow` and the admin console. A gateway always keeps `unlock` (it carries
//! no secret, and a gateway that may do nothing is a revoked one: revoke it instead); `reset`
//! is the operator's explicit decision, because reset jobs carry users' new passwords to the
//! gateway's host.

use latchkey_jobs::JobKind;
use latchkey_store::{Store, StoreError};

/// The kinds a gateway is allowed: unlock, and reset when `allow_reset`.
pub fn allowed(allow_reset: bool) -> Vec<String> {
    let mut kinds = vec![JobKind::Unlock.as_str().to_string()];
    if allow_reset {
        kinds.push(JobKind::Reset.as_str().to_string());
    }
    kinds
}

/// A change made: what the gateway could do before and can do now (for the audit trail).
#[derive(Debug)]
pub struct Change {
    pub before: Vec<String>,
    pub after: Vec<String>,
}

impl Change {
    /// Reset was granted by this change (the security-relevant direction).
    pub fn grants_reset(&self) -> bool {
        let reset = JobKind::Reset.as_str();
        !self.before.iter().any(|k| k == reset) && self.after.iter().any(|k| k == reset)
    }
}

impl Change {
    /// Puts the kinds back as they were: a change the audit trail could not record does not
    /// stand (best effort: the gateway may have polled meanwhile).
    pub async fn undo(&self, store: &dyn Store, name: &str) -> Result<(), StoreError> {
        store.set_gateway_kinds(name.trim(), &self.before).await?;
        Ok(())
    }
}

/// Sets the live gateway `name`'s kinds to [`allowed`]`(allow_reset)`; the next claim already
/// follows them. `None` when there is no live gateway of that name (revoked ones stay as they
/// were).
pub async fn set(
    store: &dyn Store,
    name: &str,
    allow_reset: bool,
) -> Result<Option<Change>, StoreError> {
    let after = allowed(allow_reset);
    Ok(store
        .set_gateway_kinds(name.trim(), &after)
        .await?
        .map(|before| Change { before, after }))
}
