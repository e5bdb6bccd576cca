//! Fault injection: make the next N matching requests fail the way Graph and the STS fail in
//! production (throttling, 5xx, slowness, a dropped connection).

use std::sync::Mutex;
use std::time::Duration;

pub use actix_web::http::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// What happens to a matching request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// 429 with the documented throttling body; `Retry-After` sent verbatim when given
    /// (any string: "1", "0.2", "2.128").
    TooManyRequests { retry_after: Option<String> },
    /// Any status with a Graph-style error body (500 `generalException`, 503
    /// `serviceNotAvailable`, 504 `gatewayTimeout`, ...).
    Status(u16),
    /// Delay, then serve the request normally.
    Latency(Duration),
    /// Close the TCP connection without sending a response.
    DropConnection,
    /// Carry the request out, then close the connection without sending the response: a write
    /// that was applied although the client never heard so (a gateway timeout, a reset link).
    DropResponse,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// `None` matches every method.
    pub method: Option<Method>,
    /// Matches when the request path contains this text (empty matches everything).
    pub path_contains: String,
    pub kind: FaultKind,
    /// How many matching requests it applies to; 0 means every matching request until cleared.
    pub times: u32,
}

impl Fault {
    fn matches(&self, method: &Method, path: &str) -> bool {
        self.method.as_ref().is_none_or(|m| m == method) && path.contains(&self.path_contains)
    }
}

#[derive(Debug, Default)]
pub struct Faults {
    list: Mutex<Vec<Fault>>,
}

impl Faults {
    pub fn add(&self, f: Fault) {
        self.list.lock().unwrap_or_else(|p| p.into_inner()).push(f);
    }

    pub fn clear(&self) {
        self.list.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// The first matching fault's kind, consuming one use of it.
    pub fn take(&self, method: &Method, path: &str) -> Option<FaultKind> {
        let mut list = self.list.lock().unwrap_or_else(|p| p.into_inner());
        let i = list.iter().position(|f| f.matches(method, path))?;
        let kind = list[i].kind.clone();
        match list[i].times {
            0 => {}
            1 => {
                list.remove(i);
            }
            _ => list[i].times -= 1,
        }
        Some(kind)
    }
}

/// The error code Graph uses for a given 5xx/4xx status in its generic error body.
pub fn code_for_status(status: u16) -> &'static str {
    match status {
        400 => "badRequest",
        401 => "InvalidAuthenticationToken",
        403 => "accessDenied",
        404 => "itemNotFound",
        409 => "conflict",
        429 => "TooManyRequests",
        500 => "generalException",
        501 => "notSupported",
        503 => "serviceNotAvailable",
        504 => "gatewayTimeout",
        507 => "insufficientStorage",
        509 => "bandwidthLimitExceeded",
        _ => "UnknownError",
    }
}

/// Body of an injected 429 (concepts/throttling.md example shape).
pub fn throttled_body(date: &str, request_id: &str) -> serde_json::Value {
    json!({"error": {
        "code": "TooManyRequests",
        "innerError": {
            "code": "429",
            "date": date,
            "message": "Please retry after",
            "request-id": request_id,
            "status": "429"
        },
        "message": "Please retry again later."
    }})
}

/// JSON form used by the `/_sim/faults` control endpoint and the standalone binary:
/// `{"method":"GET","path_contains":"/users","times":1,"kind":{"type":"too_many_requests","retry_after":"1"}}`;
/// kinds: `too_many_requests` (`retry_after`), `status` (`status`), `latency` (`millis`),
/// `drop_connection`, `drop_response`.
#[derive(Debug, Serialize, Deserialize)]
pub struct FaultWire {
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub path_contains: String,
    pub kind: FaultKindWire,
    #[serde(default = "one")]
    pub times: u32,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FaultKindWire {
    TooManyRequests {
        #[serde(default)]
        retry_after: Option<String>,
    },
    Status {
        status: u16,
    },
    Latency {
        millis: u64,
    },
    DropConnection,
    DropResponse,
}

impl TryFrom<FaultWire> for Fault {
    type Error = String;
    fn try_from(w: FaultWire) -> Result<Fault, String> {
        let method = match w.method {
            Some(m) => Some(
                Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                    .map_err(|_| format!("bad method {m}"))?,
            ),
            None => None,
        };
        let kind = match w.kind {
            FaultKindWire::TooManyRequests { retry_after } => {
                FaultKind::TooManyRequests { retry_after }
            }
            FaultKindWire::Status { status } if (100..=999).contains(&status) => {
                FaultKind::Status(status)
            }
            FaultKindWire::Status { status } => return Err(format!("bad status {status}")),
            FaultKindWire::Latency { millis } => FaultKind::Latency(Duration::from_millis(millis)),
            FaultKindWire::DropConnection => FaultKind::DropConnection,
            FaultKindWire::DropResponse => FaultKind::DropResponse,
        };
        Ok(Fault {
            method,
            path_contains: w.path_contains,
            kind,
            times: w.times,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_counts_down_and_zero_is_forever() {
        let f = Faults::default();
        f.add(Fault {
            method: Some(Method::GET),
            path_contains: "/users".into(),
            kind: FaultKind::Status(503),
            times: 2,
        });
        assert_eq!(f.take(&Method::POST, "/v1.0/users"), None);
        assert_eq!(
            f.take(&Method::GET, "/v1.0/users"),
            Some(FaultKind::Status(503))
        );
        assert_eq!(
            f.take(&Method::GET, "/v1.0/users"),
            Some(FaultKind::Status(503))
        );
        assert_eq!(f.take(&Method::GET, "/v1.0/users"), None);
        f.add(Fault {
            method: None,
            path_contains: String::new(),
            kind: FaultKind::DropConnection,
            times: 0,
        });
        for _ in 0..5 {
            assert_eq!(f.take(&Method::PUT, "/x"), Some(FaultKind::DropConnection));
        }
    }
}
