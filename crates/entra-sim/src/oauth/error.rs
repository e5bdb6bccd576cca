//! STS error responses in the documented shape (reference-error-codes.md):
//! `error`, `error_description` ("AADSTSnnnnn: ...\r\nTrace ID: ...\r\nCorrelation ID: ...\r\n
//! Timestamp: ..."), `error_codes`, `timestamp`, `trace_id`, `correlation_id`, `error_uri`,
//! optional `suberror`. The correlation id is the client's `client-request-id` when it sent one,
//! as Entra does.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use serde_json::json;
use time::OffsetDateTime;

use crate::clock::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StsError {
    pub status: StatusCode,
    /// OAuth `error` value (`invalid_client`, `invalid_grant`, ...).
    pub error: &'static str,
    /// The AADSTS number.
    pub code: u32,
    pub description: String,
    pub suberror: Option<&'static str>,
}

impl StsError {
    pub fn new(
        status: u16,
        error: &'static str,
        code: u32,
        description: impl Into<String>,
    ) -> Self {
        StsError {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            error,
            code,
            description: description.into(),
            suberror: None,
        }
    }

    pub fn missing(param: &str) -> Self {
        Self::new(
            400,
            "invalid_request",
            900144,
            format!("The request body must contain the following parameter: '{param}'."),
        )
    }

    pub fn invalid_tenant(tenant: &str) -> Self {
        Self::new(
            400,
            "invalid_tenant",
            90002,
            format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
            ),
        )
    }

    pub fn unknown_app(client_id: &str, directory: &str) -> Self {
        Self::new(
            400,
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory '{directory}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
            ),
        )
    }

    pub fn invalid_scope(scope: &str) -> Self {
        Self::new(
            400,
            "invalid_scope",
            70011,
            format!(
                "The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."
            ),
        )
    }

    pub fn consent_required(client_id: &str, app_name: &str) -> Self {
        StsError {
            suberror: Some("consent_required"),
            ..Self::new(
                400,
                "invalid_grant",
                65001,
                format!(
                    "The user or administrator has not consented to use the application with ID '{client_id}' named '{app_name}'. Send an interactive authorization request for this user and resource."
                ),
            )
        }
    }

    /// Renders the JSON error response.
    pub fn render(&self, req: &HttpRequest, base_url: &str, now: OffsetDateTime) -> HttpResponse {
        let trace_id = uuid::Uuid::new_v4().to_string();
        let correlation_id = req
            .headers()
            .get("client-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| v.parse::<uuid::Uuid>().is_ok())
            .map(str::to_owned)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let ts = fmt::sts(now);
        let mut body = json!({
            "error": self.error,
            "error_description": format!(
                "AADSTS{}: {}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {ts}",
                self.code, self.description
            ),
            "error_codes": [self.code],
            "timestamp": ts,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": format!("{base_url}/error?code={}", self.code),
        });
        if let Some(s) = self.suberror {
            body["suberror"] = json!(s);
        }
        HttpResponse::build(self.status)
            .insert_header(("Cache-Control", "no-store, no-cache"))
            .insert_header(("Pragma", "no-cache"))
            .insert_header(("x-ms-request-id", trace_id))
            .insert_header(("client-request-id", correlation_id))
            .json(body)
    }
}
