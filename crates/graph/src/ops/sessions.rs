//! `revokeSignInSessions`: signs a user out of every app by invalidating their refresh tokens.

use reqwest::Method;

use crate::client::GraphClient;
use crate::error::GraphError;
use crate::http::{Endpoint, Request};
use latchkey_types::ObjectId;

impl GraphClient {
    /// `POST /users/{id}/revokeSignInSessions` (no body). Graph resets the user's
    /// `signInSessionsValidFromDateTime` to now, so refresh tokens and browser session cookies
    /// issued before stop working (Microsoft notes a delay of a few minutes).
    ///
    /// Needs `User.RevokeSessions.All` (application). It is a write: a 504 or a dropped
    /// connection is not retried, because Graph may have done it already.
    pub async fn revoke_sign_in_sessions(&self, id: &ObjectId) -> Result<(), GraphError> {
        let id = id.to_string();
        let url = self.url(&["users", &id, "revokeSignInSessions"]);
        // v1.0 answers 200 `{"value": true}` (older docs: 204); any 2xx is success.
        self.send(Request::new(Method::POST, url, Endpoint::Graph).idempotent(false))
            .await?;
        Ok(())
    }
}
