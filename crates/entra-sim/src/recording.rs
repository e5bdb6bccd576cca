//! Every request the simulator served (except `/_sim/` control calls), in arrival order, so
//! tests can assert what the client sent: headers such as `client-request-id` or
//! `ConsistencyLevel`, `$select`, form bodies. This is an in-memory test record, not a log:
//! it holds what the client sent verbatim (simulator credentials included) and is never
//! written to tracing output.

use std::sync::Mutex;

use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
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
}

impl Recorder {
    /// Records a request on arrival; returns its index for [`Recorder::set_status`].
    pub fn push(&self, r: RecordedRequest) -> usize {
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

    pub fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}
