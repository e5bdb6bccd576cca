//! One error type for everything the client can report.
//!
//! No variant ever carries a secret: token-endpoint descriptions are cut to their first line and
//! scrubbed of everything the client sent as a credential; Graph messages are server text about
//! the request, never containing the password (Graph does not echo it).

use std::fmt;
use std::time::Duration;

/// A Graph API error response (`{"error":{"code","message","innerError":{...}}}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// `error.code`, e.g. `Request_ResourceNotFound`, `Authorization_RequestDenied`.
    pub code: String,
    /// `error.message` (at most 500 characters).
    pub message: String,
    /// `error.innerError.code`, when present.
    pub inner_code: Option<String>,
    /// The `request-id` response header, else `innerError.request-id`.
    pub request_id: Option<String>,
    /// The `client-request-id` this client sent.
    pub client_request_id: String,
    /// `Retry-After`, when the server sent one.
    pub retry_after: Option<Duration>,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Graph returned {} {}: {}",
            self.status, self.code, self.message
        )?;
        if let Some(inner) = &self.inner_code {
            write!(f, " (inner code {inner})")?;
        }
        write!(f, " [client-request-id {}", self.client_request_id)?;
        if let Some(r) = &self.request_id {
            write!(f, ", request-id {r}")?;
        }
        f.write_str("]")
    }
}

/// An error answer from the identity platform's token endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenError {
    pub status: u16,
    /// OAuth `error`, e.g. `invalid_client`, `invalid_grant`. Branch on this.
    pub error: String,
    /// `suberror`, e.g. `consent_required`.
    pub suberror: Option<String>,
    /// AADSTS numbers from `error_codes`, e.g. `[7000215]`.
    pub error_codes: Vec<u32>,
    /// First line of `error_description`, with anything the client sent as a credential removed.
    pub description: String,
    pub correlation_id: Option<String>,
    pub trace_id: Option<String>,
    pub client_request_id: String,
}

impl TokenError {
    /// True when the token endpoint named this AADSTS code.
    pub fn has_code(&self, aadsts: u32) -> bool {
        self.error_codes.contains(&aadsts)
    }
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "token endpoint returned {} {}", self.status, self.error)?;
        if let Some(s) = &self.suberror {
            write!(f, "/{s}")?;
        }
        if !self.error_codes.is_empty() {
            let codes: Vec<String> = self
                .error_codes
                .iter()
                .map(|c| format!("AADSTS{c}"))
                .collect();
            write!(f, " ({})", codes.join(", "))?;
        }
        if !self.description.is_empty() {
            write!(f, ": {}", self.description)?;
        }
        write!(f, " [client-request-id {}", self.client_request_id)?;
        if let Some(c) = &self.correlation_id {
            write!(f, ", correlation-id {c}")?;
        }
        f.write_str("]")
    }
}

/// Everything that can go wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GraphError {
    /// The configuration is unusable (bad URL, plain http to a non-loopback host, …).
    #[error("configuration error: {0}")]
    Config(String),
    /// The certificate or key could not be loaded or used.
    #[error("credential error: {0}")]
    Credential(String),
    /// An argument was rejected before any request was sent.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The token endpoint refused to issue a token.
    #[error("{0}")]
    Token(Box<TokenError>),
    /// Graph answered with an error status.
    #[error("{0}")]
    Api(Box<ApiError>),
    /// `find_user`: nothing matched.
    #[error("no user matches [client-request-id {client_request_id}]")]
    NotFound { client_request_id: String },
    /// `find_user`: more than one directory object matched, so none is chosen.
    #[error("more than one user matches [client-request-id {client_request_id}]")]
    Ambiguous { client_request_id: String },
    /// 429/503/504 or transport failures kept coming until the retry budget ran out.
    #[error("gave up after {attempts} attempts and {waited:?} of waiting: {last}")]
    RetriesExhausted {
        attempts: u32,
        waited: Duration,
        last: Box<GraphError>,
    },
    /// The request could not be completed on the network (connect, timeout, dropped).
    #[error(
        "transport error ({kind}) on {method} {path}: {message} [client-request-id {client_request_id}]"
    )]
    Transport {
        kind: TransportKind,
        method: String,
        /// Path only (query strings may carry personal data), addresses masked.
        path: String,
        message: String,
        client_request_id: String,
    },
    /// A response that does not follow the documented contract (bad JSON, missing header, …).
    #[error("unexpected response ({status}): {message} [client-request-id {client_request_id}]")]
    UnexpectedResponse {
        status: u16,
        message: String,
        client_request_id: String,
    },
    /// A link from the server (`@odata.nextLink`, `Location`) points to another origin than the
    /// configured Graph base URL; the bearer token is not sent there.
    #[error("refusing to follow a link to a foreign origin {origin}")]
    ForeignLink { origin: String },
    /// The password method cannot be deleted (and unknown method types have no delete URL).
    #[error("this authentication method type cannot be deleted: {odata_type}")]
    MethodNotDeletable { odata_type: String },
    /// `resetPassword` finished with status `failed`.
    #[error("password reset failed: {}", status_detail.as_deref().unwrap_or("no detail given"))]
    ResetFailed {
        status_detail: Option<String>,
        operation_id: Option<String>,
        client_request_id: String,
    },
    /// The work's time budget ([`crate::deadline`]) ran out before this request was sent.
    #[error("the time budget for directory requests ran out")]
    BudgetExhausted,
    /// A long-running operation was accepted, but following it failed (its outcome is unknown).
    #[error("lost track of an accepted operation: {0}")]
    OperationLost(Box<GraphError>),
    /// A long-running operation did not finish before the configured deadline.
    #[error(
        "operation still {last_status} after {waited:?}; giving up [client-request-id {client_request_id}]"
    )]
    OperationTimedOut {
        last_status: String,
        waited: Duration,
        client_request_id: String,
    },
}

/// What kind of transport failure happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// The connection could not be made (the request was not sent).
    Connect,
    /// No complete answer within the configured timeout.
    Timeout,
    /// The connection broke while sending or receiving.
    Dropped,
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TransportKind::Connect => "connect",
            TransportKind::Timeout => "timeout",
            TransportKind::Dropped => "connection dropped",
        })
    }
}

impl GraphError {
    /// The innermost error (unwraps [`GraphError::RetriesExhausted`]).
    pub fn root(&self) -> &GraphError {
        match self {
            GraphError::RetriesExhausted { last, .. } => last.root(),
            other => other,
        }
    }

    /// HTTP status of the (last) answer, when there was one.
    pub fn status(&self) -> Option<u16> {
        match self.root() {
            GraphError::Api(e) => Some(e.status),
            GraphError::Token(e) => Some(e.status),
            GraphError::UnexpectedResponse { status, .. } => Some(*status),
            GraphError::NotFound { .. } => Some(404),
            _ => None,
        }
    }

    /// Graph `error.code`, or the token endpoint's `error`.
    pub fn code(&self) -> Option<&str> {
        match self.root() {
            GraphError::Api(e) => Some(&e.code),
            GraphError::Token(e) => Some(&e.error),
            _ => None,
        }
    }

    /// The `client-request-id` of the request that failed, for support and logs.
    pub fn client_request_id(&self) -> Option<&str> {
        match self.root() {
            GraphError::Api(e) => Some(&e.client_request_id),
            GraphError::Token(e) => Some(&e.client_request_id),
            GraphError::NotFound { client_request_id }
            | GraphError::Ambiguous { client_request_id }
            | GraphError::Transport {
                client_request_id, ..
            }
            | GraphError::UnexpectedResponse {
                client_request_id, ..
            }
            | GraphError::ResetFailed {
                client_request_id, ..
            }
            | GraphError::OperationTimedOut {
                client_request_id, ..
            } => Some(client_request_id),
            _ => None,
        }
    }

    /// The Graph `request-id` (server side), when known.
    pub fn request_id(&self) -> Option<&str> {
        match self.root() {
            GraphError::Api(e) => e.request_id.as_deref(),
            _ => None,
        }
    }

    /// 404 from Graph, or no match in `find_user`.
    pub fn is_not_found(&self) -> bool {
        matches!(self.root(), GraphError::NotFound { .. }) || self.status() == Some(404)
    }

    /// 403 from Graph (missing permission or directory role, or target too privileged).
    pub fn is_forbidden(&self) -> bool {
        matches!(self.root(), GraphError::Api(e) if e.status == 403)
    }

    /// 400 from Graph: the request itself was refused (invalid input, or a rule such as a FIDO2
    /// policy or an expired passkey challenge). Not worth retrying unchanged.
    pub fn is_bad_request(&self) -> bool {
        matches!(self.root(), GraphError::Api(e) if e.status == 400)
    }

    /// 401 from Graph or a refused token (credential problem).
    pub fn is_unauthorized(&self) -> bool {
        matches!(self.root(), GraphError::Token(_))
            || matches!(self.root(), GraphError::Api(e) if e.status == 401)
    }

    /// 429 / throttling, including an exhausted retry budget after throttling.
    pub fn is_throttled(&self) -> bool {
        self.status() == Some(429)
    }

    /// Whether a failed *write* certainly was not carried out: it never left (configuration,
    /// credential, token, input, no connection), or Graph answered that it did not do it (429
    /// and 503 mean "not processed"; any 4xx is a refusal), or the operation itself reported
    /// `failed`. Everything else (timeout, dropped connection, 500/502/504, an answer that could
    /// not be read, a lost long-running operation) may have been applied.
    pub fn not_applied(&self) -> bool {
        match self.root() {
            GraphError::Config(_)
            | GraphError::Credential(_)
            | GraphError::InvalidInput(_)
            | GraphError::Token(_)
            | GraphError::NotFound { .. }
            | GraphError::Ambiguous { .. }
            | GraphError::ForeignLink { .. }
            | GraphError::MethodNotDeletable { .. }
            | GraphError::BudgetExhausted
            | GraphError::ResetFailed { .. } => true,
            GraphError::Transport { kind, .. } => *kind == TransportKind::Connect,
            GraphError::Api(e) => {
                e.status == 429 || e.status == 503 || (400..500).contains(&e.status)
            }
            _ => false,
        }
    }

    /// The opposite of [`GraphError::not_applied`]: only a read of the result can tell whether
    /// the write happened; never retry it blindly.
    pub fn outcome_unknown(&self) -> bool {
        !self.not_applied()
    }

    /// A fault that may pass by itself: throttling, a server or network failure. The user is
    /// told to try again shortly; it is never a refusal.
    pub fn is_transient(&self) -> bool {
        match self.root() {
            GraphError::Transport { .. }
            | GraphError::OperationTimedOut { .. }
            | GraphError::OperationLost(_)
            | GraphError::BudgetExhausted => true,
            GraphError::Api(e) => e.status == 429 || e.status >= 500,
            GraphError::Token(e) => e.status == 429 || e.status >= 500,
            GraphError::UnexpectedResponse { status, .. } => *status >= 500,
            _ => false,
        }
    }

    /// The error Graph gives when a property of a synced (on-premises mastered) user is changed.
    pub fn is_on_premises_mastered(&self) -> bool {
        matches!(self.root(), GraphError::Api(e)
            if e.status == 400 && e.message.to_ascii_lowercase().contains("on-premises mastered"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers_see_through_retries() {
        let api = ApiError {
            status: 429,
            code: "TooManyRequests".into(),
            message: "Please retry again later.".into(),
            inner_code: Some("429".into()),
            request_id: Some("r".into()),
            client_request_id: "c".into(),
            retry_after: None,
        };
        let e = GraphError::RetriesExhausted {
            attempts: 3,
            waited: Duration::from_secs(1),
            last: Box::new(GraphError::Api(Box::new(api))),
        };
        assert_eq!(e.status(), Some(429));
        assert_eq!(e.code(), Some("TooManyRequests"));
        assert_eq!(e.client_request_id(), Some("c"));
        assert!(e.is_throttled());
        assert!(!e.is_not_found());
        assert!(e.to_string().contains("client-request-id c"));
    }
}
