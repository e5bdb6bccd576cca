//! Every request the simulator served (except `/_sim/` control calls), in arrival order, so
//! tests can assert what the client sent: headers such as `client-request-id` or
//! `ConsistencyLevel`, `$select`, form bodies. This is an in-memory test record, not a log:
//! it holds what the client sent verbatim (simulator credentials included) and is never
//! written to tracing output.
//!
//! A `$batch` shows up as the outer `POST /v1.0/$batch` (`batch_part: false`) followed by one
//! entry per part the simulator ran (`batch_part: true`; a part refused for a failed dependency
//! never reaches the tenant and has no entry). A test counting the HTTP requests a client sent
//! (what the tenant's throttling budget is charged) counts the `batch_part == false` entries; the
//! parts are there to assert what a batch carried.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    /// Path as sent (still percent-encoded), e.g. `/v1.0/users/adele%40contoso.com`.
    pub path: String,
    /// Raw query string without the `?` (empty when absent).
    pub query: String,
    /// Header names lower-cased, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// Status sent; 0 when the connection was dropped by a fault (or the response never finished).
    pub status: u16,
    /// A part of a `$batch` the simulator ran for a client, not a request the client sent
    /// itself (see the module docs). Absent in records made before batching: `false`.
    #[serde(default)]
    pub batch_part: bool,
}

impl RecordedRequest {
    /// First value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Decoded value of a query parameter, e.g. `query_param("$select")`.
    pub fn query_param(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// Decoded value of a form-body parameter (token requests).
    pub fn form_param(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.body.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

#[derive(Debug, Default)]
pub struct Recorder {
    entries: Mutex<Vec<RecordedRequest>>,
    /// Keep only method, path, query and status: a load run counts requests by kind, and every
    /// request's headers (a bearer token alone is ~1.5 KB) would otherwise pile up in memory.
    summary_only: AtomicBool,
}

impl Recorder {
    /// Records a request on arrival; returns its index for [`Recorder::set_status`].
    pub fn push(&self, mut r: RecordedRequest) -> usize {
        if self.summary_only.load(Ordering::Relaxed) {
            r.headers = Vec::new();
            r.body = String::new();
        }
        let mut e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        e.push(r);
        e.len() - 1
    }

    pub fn set_status(&self, index: usize, status: u16) {
        let mut e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        // Index may be gone if the log was cleared while the request ran.
        if let Some(r) = e.get_mut(index) {
            r.status = status;
        }
    }

    pub fn all(&self) -> Vec<RecordedRequest> {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Whether only the summary is kept (callers can skip collecting headers and body).
    pub fn summary_only(&self) -> bool {
        self.summary_only.load(Ordering::Relaxed)
    }

    /// `true`: from now on record only method, path, query and status (no headers, no body).
    pub fn set_summary_only(&self, on: bool) {
        self.summary_only.store(on, Ordering::Relaxed);
    }

    pub fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> RecordedRequest {
        RecordedRequest {
            method: "GET".into(),
            path: "/v1.0/users".into(),
            query: "$select=id".into(),
            headers: vec![("authorization".into(), "Bearer secret".into())],
            body: "x".into(),
            status: 0,
            batch_part: false,
        }
    }

    #[test]
    fn summary_mode_keeps_what_requests_are_counted_by_and_drops_the_rest() {
        let r = Recorder::default();
        r.push(request());
        r.set_summary_only(true);
        let i = r.push(request());
        r.set_status(i, 200);
        let all = r.all();
        assert_eq!(all[0], request(), "full record before");
        assert_eq!(
            (
                all[1].method.as_str(),
                all[1].path.as_str(),
                all[1].query.as_str()
            ),
            ("GET", "/v1.0/users", "$select=id")
        );
        assert_eq!(all[1].status, 200);
        assert!(all[1].headers.is_empty() && all[1].body.is_empty());
    }

    #[test]
    fn a_record_without_batch_part_parses_as_a_request_the_client_sent() {
        let old = r#"{"method":"GET","path":"/v1.0/users","query":"","headers":[],"body":"","status":200}"#;
        let r: RecordedRequest = serde_json::from_str(old).expect("older JSON parses");
        assert!(!r.batch_part);
    }
}
