//! Graph errors in the directory shape:
//! `{"error":{"code","message","innerError":{"date","request-id","client-request-id"}}}`.
//!
//! Handlers return [`GraphError`]; the ids are only known to the Graph middleware
//! ([`super::ids`]), which renders the final body from the error stored in the response's
//! extensions. Codes follow the directory (Entra) style throughout, including the
//! authentication-methods and Identity Protection endpoints, whose exact code style Microsoft
//! does not document (graph.md §12).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
}

impl std::fmt::Display for GraphError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl GraphError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> GraphError {
        GraphError {
            status,
            code: code.to_owned(),
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> GraphError {
        Self::new(StatusCode::BAD_REQUEST, "Request_BadRequest", message)
    }

    /// OData-layer errors (unknown segment, unknown `$select` property) use the plain code.
    pub fn odata_bad_request(message: impl Into<String>) -> GraphError {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    pub fn unsupported_query() -> GraphError {
        Self::new(
            StatusCode::BAD_REQUEST,
            "Request_UnsupportedQuery",
            "Unsupported Query.",
        )
    }

    pub fn not_found(key: &str) -> GraphError {
        Self::new(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            format!(
                "Resource '{key}' does not exist or one of its queried reference-property objects are not present."
            ),
        )
    }

    pub fn forbidden() -> GraphError {
        Self::new(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        )
    }

    pub fn unauthorized(message: impl Into<String>) -> GraphError {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            message,
        )
    }

    pub fn password_complexity() -> GraphError {
        Self::bad_request(
            "The specified password does not comply with password complexity requirements. Please provide a different password.",
        )
    }

    pub fn on_prem_mastered() -> GraphError {
        Self::bad_request(
            "Unable to update the specified properties for on-premises mastered Directory Sync objects or objects currently undergoing migration.",
        )
    }

    pub fn body(&self, date: &str, request_id: &str, client_request_id: &str) -> Value {
        json!({"error": {
            "code": self.code,
            "message": self.message,
            "innerError": {
                "date": date,
                "request-id": request_id,
                "client-request-id": client_request_id,
            }
        }})
    }
}

impl ResponseError for GraphError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut resp = HttpResponse::build(self.status);
        if self.status == StatusCode::UNAUTHORIZED {
            resp.insert_header((
                "WWW-Authenticate",
                "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\"",
            ));
        }
        // Placeholder ids; the Graph middleware re-renders with the real ones.
        let mut r = resp.json(self.body("", "", ""));
        r.extensions_mut().insert(self.clone());
        r
    }
}

pub type GraphResult<T = HttpResponse> = Result<T, GraphError>;
