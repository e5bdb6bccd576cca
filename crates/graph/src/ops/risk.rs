//! Identity Protection (Entra ID P2). Throttled at 1 request/second per tenant, 429 without
//! `Retry-After`: the retry budget's backoff applies.

use crate::client::GraphClient;
use crate::error::GraphError;
use crate::model::RiskyUser;
use latchkey_types::ObjectId;
use serde_json::json;

impl GraphClient {
    /// `GET /identityProtection/riskyUsers/{id}`; `None` when the user has no risk record (404).
    pub async fn get_risky_user(&self, id: &ObjectId) -> Result<Option<RiskyUser>, GraphError> {
        let id = id.to_string();
        let url = self.url(&["identityProtection", "riskyUsers", &id]);
        match self.get_json(url).await {
            Ok(u) => Ok(Some(u)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `POST /identityProtection/riskyUsers/dismiss` (sets the users' risk to none). No request
    /// for an empty list.
    pub async fn dismiss_risky_users(&self, ids: &[ObjectId]) -> Result<(), GraphError> {
        if ids.is_empty() {
            return Ok(());
        }
        let body = json!({ "userIds": ids.iter().map(|i| i.to_string()).collect::<Vec<_>>() });
        let url = self.url(&["identityProtection", "riskyUsers", "dismiss"]);
        // Dismissing twice has the same effect as once.
        self.post_json(url, body, true).await?;
        Ok(())
    }
}
