//! `resetPassword` (delegated only) and its long-running operation.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde::Deserialize;
use serde_json::json;
use url::Url;

use crate::client::GraphClient;
use crate::error::GraphError;
use crate::http::{Endpoint, Request, parse_retry_after};
use crate::model::{LongRunningOperation, OperationStatus, PASSWORD_METHOD_ID, ResetOutcome};
use latchkey_types::{ObjectId, Secret};

impl GraphClient {
    /// Resets the user's password through the password method:
    /// `POST /users/{id}/authentication/methods/28c10230-…/resetPassword`, then polls the
    /// operation in `Location` until it succeeds or fails.
    ///
    /// This is the call that writes back to on-premises AD when writeback is on. Microsoft
    /// allows it only with a delegated token (an admin holding Authentication Administrator or
    /// Privileged Authentication Administrator), never on the admin's own account.
    ///
    /// With `new_password = None` Graph generates one (cloud-only users) and it is returned in
    /// [`ResetOutcome::new_password`]. The `Location` URL is followed as is, but only when it is on
    /// the Graph base URL's origin (the bearer token goes nowhere else). Polling honours
    /// `Retry-After` (else `timeouts.lro_poll_interval`) within `timeouts.lro_deadline`.
    /// The request itself is not repeated after a timeout or a dropped connection.
    pub async fn reset_password(
        &self,
        id: &ObjectId,
        new_password: Option<&Secret<String>>,
    ) -> Result<ResetOutcome, GraphError> {
        let body = match new_password {
            Some(p) if p.expose().is_empty() => {
                return Err(GraphError::InvalidInput("empty password".into()));
            }
            Some(p) => json!({ "newPassword": p.expose() }),
            None => json!({}),
        };
        let user = id.to_string();
        let url = self.url(&[
            "users",
            &user,
            "authentication",
            "methods",
            PASSWORD_METHOD_ID,
            "resetPassword",
        ]);
        let resp = self.post_json(url.clone(), body, false).await?;

        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Accepted {
            #[serde(default)]
            new_password: Option<Secret<String>>,
        }
        let generated = if resp.body.iter().all(u8::is_ascii_whitespace) {
            None
        } else {
            resp.json::<Accepted>()?.new_password
        };
        // Only report a generated password when we did not choose one.
        let generated = if new_password.is_none() {
            generated
        } else {
            None
        };

        let Some(location) = resp.header("location").map(str::to_string) else {
            if resp.status.as_u16() == 202 {
                return Err(GraphError::UnexpectedResponse {
                    status: 202,
                    message: "202 Accepted without a Location header".into(),
                    client_request_id: resp.client_request_id,
                });
            }
            // A synchronous success (not documented, but not a failure either).
            return Ok(ResetOutcome {
                new_password: generated,
                operation_id: None,
            });
        };
        let location = url
            .join(&location)
            .map_err(|_| GraphError::UnexpectedResponse {
                status: resp.status.as_u16(),
                message: "Location is not a valid URL".into(),
                client_request_id: resp.client_request_id.clone(),
            })?;
        // From here the operation runs in the directory: a failure to follow it says nothing
        // about its outcome (only its own `failed` status does).
        self.check_link(&location)
            .map_err(|e| GraphError::OperationLost(Box::new(e)))?;
        let first_wait = resp
            .header("retry-after")
            .and_then(|v| parse_retry_after(v, self.wall_now()));
        let op = self
            .poll_operation(location, first_wait, resp.client_request_id.clone())
            .await
            .map_err(|e| match e {
                e @ (GraphError::ResetFailed { .. } | GraphError::OperationTimedOut { .. }) => e,
                other => GraphError::OperationLost(Box::new(other)),
            })?;
        Ok(ResetOutcome {
            new_password: generated,
            operation_id: op.id,
        })
    }

    /// Polls a `longRunningOperation` until `succeeded` (Ok) or `failed` (ResetFailed).
    async fn poll_operation(
        &self,
        location: Url,
        first_wait: Option<Duration>,
        mut client_request_id: String,
    ) -> Result<LongRunningOperation, GraphError> {
        let t = self.timeouts();
        let (interval, deadline_len) = (t.lro_poll_interval, t.lro_deadline);
        let started = Instant::now();
        // The configured operation deadline, or the work's budget if it ends sooner.
        let deadline_len =
            crate::deadline::left().map_or(deadline_len, |left| left.min(deadline_len));
        let deadline = started + deadline_len;
        let mut wait = first_wait.unwrap_or(interval);
        let mut last_status = "notStarted".to_string();
        loop {
            if Instant::now() + wait > deadline {
                return Err(GraphError::OperationTimedOut {
                    last_status,
                    waited: started.elapsed(),
                    client_request_id,
                });
            }
            tokio::time::sleep(wait).await;
            let resp = self
                .send(Request::new(Method::GET, location.clone(), Endpoint::Graph))
                .await?;
            client_request_id = resp.client_request_id.clone();
            let op: LongRunningOperation = resp.json()?;
            match op.status {
                OperationStatus::Succeeded => return Ok(op),
                OperationStatus::Failed => {
                    return Err(GraphError::ResetFailed {
                        status_detail: op.status_detail,
                        operation_id: op.id,
                        client_request_id,
                    });
                }
                other => {
                    last_status = format!("{other:?}");
                    tracing::debug!(
                        target: "latchkey_graph",
                        status = %last_status,
                        client_request_id = %client_request_id,
                        "operation still running"
                    );
                }
            }
            wait = resp
                .header("retry-after")
                .and_then(|v| parse_retry_after(v, self.wall_now()))
                .unwrap_or(interval);
        }
    }
}
