//! JSON batching (`POST /$batch`): several Graph requests in one HTTP request.
//!
//! Graph answers a batch with 200 and one part per request, each with its own status, headers
//! and body, in any order. Parts are throttled individually: a part refused with 429 (or 503, or
//! 504 for a read) makes [`crate::http::Http::execute`] retry the whole batch within the same
//! budget as any request, waiting the longest `Retry-After` of the refused parts (at least the
//! client's own backoff when one of them gave none). Only reads are batched here, so sending
//! every part again is safe. A batch whose parts were all refused with 401 is a rejected token:
//! [`crate::GraphClient`] fetches a new one and sends the batch once more.
//!
//! Each part is still one request against the tenant's throttling limits; a batch saves round
//! trips (and the HTTP requests a tenant's logs and an operator's dashboards count), not
//! resource units.

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use serde_json::{Value, json};
use url::Url;

use crate::error::GraphError;
use crate::http::{Response, parse_retry_after};

/// Most requests Graph accepts in one batch.
pub(crate) const MAX_PARTS: usize = 20;

/// The batch body for GET requests of `urls`, with ids `"1"`, `"2"`, … in order. Each url must
/// lie under `base` (the Graph base URL with its version): a part's url is relative to it.
pub(crate) fn body(base: &Url, urls: &[Url]) -> Result<Value, GraphError> {
    if urls.is_empty() || urls.len() > MAX_PARTS {
        return Err(GraphError::InvalidInput(format!(
            "a batch holds 1 to {MAX_PARTS} requests"
        )));
    }
    let prefix = base.path().trim_end_matches('/');
    let mut requests = Vec::with_capacity(urls.len());
    for (i, url) in urls.iter().enumerate() {
        let relative = url
            .path()
            .strip_prefix(prefix)
            .filter(|rest| rest.starts_with('/') && crate::http::same_origin(url, base))
            .ok_or_else(|| {
                GraphError::InvalidInput("a batched request must address the Graph base".into())
            })?;
        let relative = match url.query() {
            Some(q) => format!("{relative}?{q}"),
            None => relative.to_string(),
        };
        requests.push(json!({ "id": (i + 1).to_string(), "method": "GET", "url": relative }));
    }
    Ok(json!({ "requests": requests }))
}

#[derive(Deserialize)]
struct Answer {
    responses: Vec<Part>,
}

#[derive(Deserialize)]
struct Part {
    id: String,
    status: u16,
    #[serde(default)]
    headers: serde_json::Map<String, Value>,
    #[serde(default)]
    body: Value,
}

/// The parts of a batch answer of `count` requests, in request order, each as the
/// [`Response`] it would have been alone (non-2xx ones included). Every id must be answered
/// exactly once.
pub(crate) fn split(resp: &Response, count: usize) -> Result<Vec<Response>, GraphError> {
    let unexpected = |message: &str| GraphError::UnexpectedResponse {
        status: resp.status.as_u16(),
        message: format!("batch answer: {message}"),
        client_request_id: resp.client_request_id.clone(),
    };
    let answer: Answer = resp.json()?;
    let mut out: Vec<Option<Response>> = (0..count).map(|_| None).collect();
    for part in answer.responses {
        let slot = part
            .id
            .parse::<usize>()
            .ok()
            .filter(|i| (1..=count).contains(i))
            .and_then(|i| out.get_mut(i - 1))
            .ok_or_else(|| unexpected("a part answers no request that was sent"))?;
        if slot.is_some() {
            return Err(unexpected("a request is answered twice"));
        }
        let status = StatusCode::from_u16(part.status)
            .map_err(|_| unexpected("a part has no valid status"))?;
        *slot = Some(Response {
            status,
            headers: headers(&part.headers),
            body: match part.body {
                Value::Null => Vec::new(),
                // JSON bodies come embedded; others (base64) are never asked for here.
                body => serde_json::to_vec(&body).map_err(|_| unexpected("unreadable body"))?,
            },
            client_request_id: resp.client_request_id.clone(),
        });
    }
    out.into_iter()
        .map(|p| p.ok_or_else(|| unexpected("a request has no answer")))
        .collect()
}

/// What the parts Graph refused for now ask for before the batch is sent again.
#[derive(Debug)]
pub(crate) struct Refused {
    /// The refused part whose `Retry-After` is the longest (the error reported if the
    /// retries run out).
    pub part: Response,
    /// The longest `Retry-After` a refused part gave.
    pub wait: Option<Duration>,
    /// Some refused part gave none: the wait is at least the client's own backoff.
    pub unsaid: bool,
}

/// The parts Graph refused for now (429, 503, or 504: the batch holds reads only), or `None`
/// when no part was (or the answer is unreadable: [`split`] reports it).
///
/// Resending the whole batch reads the parts that succeeded again too (Microsoft suggests
/// resending only the refused ones): with two parts, one extra read per throttled check, for
/// one code path.
pub(crate) fn refused_for_now(resp: &Response, count: usize, now: SystemTime) -> Option<Refused> {
    let mut refused: Vec<(Response, Option<Duration>)> = split(resp, count)
        .ok()?
        .into_iter()
        .filter(|p| matches!(p.status.as_u16(), 429 | 503 | 504))
        .map(|p| {
            let wait = p
                .header("retry-after")
                .and_then(|v| parse_retry_after(v, now));
            (p, wait)
        })
        .collect();
    let unsaid = refused.iter().any(|(_, w)| w.is_none());
    refused.sort_by_key(|(_, w)| std::cmp::Reverse(*w));
    let (part, wait) = refused.into_iter().next()?;
    Some(Refused { part, wait, unsaid })
}

/// When every part was refused with 401, the first one's error: the batch's token was
/// rejected, as a request alone would have been with 401.
pub(crate) fn all_unauthorized(resp: &Response, count: usize) -> Option<crate::error::ApiError> {
    let parts = split(resp, count).ok()?;
    if parts.iter().all(|p| p.status.as_u16() == 401) {
        parts
            .first()
            .map(|p| crate::http::parse_graph_error(p, None))
    } else {
        None
    }
}

/// Each part's url and status, for the metrics (nothing when the answer is unreadable).
pub(crate) fn part_statuses<'a>(urls: &'a [Url], body: &[u8]) -> Vec<(&'a Url, u16)> {
    let Ok(answer) = serde_json::from_slice::<Answer>(body) else {
        return Vec::new();
    };
    answer
        .responses
        .iter()
        .filter_map(|p| {
            let i = p.id.parse::<usize>().ok()?.checked_sub(1)?;
            Some((urls.get(i)?, p.status))
        })
        .collect()
}

fn headers(map: &serde_json::Map<String, Value>) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (name, value) in map {
        if let (Ok(name), Some(Ok(value))) = (
            HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()),
            value.as_str().map(HeaderValue::from_str),
        ) {
            out.insert(name, value);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(body: Value) -> Response {
        Response {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body: body.to_string().into_bytes(),
            client_request_id: "c".into(),
        }
    }

    #[test]
    fn parts_are_relative_to_the_version_and_numbered_in_order() {
        let base = Url::parse("https://graph.microsoft.com/v1.0").unwrap();
        let urls = [
            Url::parse("https://graph.microsoft.com/v1.0/users/a?$select=id").unwrap(),
            Url::parse("https://graph.microsoft.com/v1.0/users/a/transitiveMemberOf").unwrap(),
        ];
        assert_eq!(
            body(&base, &urls).unwrap(),
            json!({"requests": [
                {"id": "1", "method": "GET", "url": "/users/a?$select=id"},
                {"id": "2", "method": "GET", "url": "/users/a/transitiveMemberOf"},
            ]})
        );
        for bad in [
            "https://evil.example/v1.0/users",
            "https://graph.microsoft.com/beta/users",
            "https://graph.microsoft.com/v1.0x/users",
        ] {
            assert!(body(&base, &[Url::parse(bad).unwrap()]).is_err(), "{bad}");
        }
        assert!(body(&base, &[]).is_err());
        assert!(body(&base, &vec![urls[0].clone(); 21]).is_err());
    }

    #[test]
    fn parts_come_back_in_request_order_whatever_order_graph_answers_in() {
        let resp = answer(json!({"responses": [
            {"id": "2", "status": 404, "body": {"error": {"code": "Request_ResourceNotFound"}}},
            {"id": "1", "status": 200, "headers": {"Content-Type": "application/json"}, "body": {"id": "x"}},
        ]}));
        let parts = split(&resp, 2).unwrap();
        assert_eq!(parts[0].status, 200);
        assert_eq!(parts[0].body, br#"{"id":"x"}"#);
        assert_eq!(parts[0].header("content-type"), Some("application/json"));
        assert_eq!(parts[1].status, 404);
    }

    #[test]
    fn missing_twice_answered_or_unknown_parts_are_refused() {
        for bad in [
            json!({"responses": [{"id": "1", "status": 200, "body": {}}]}),
            json!({"responses": [{"id": "1", "status": 200}, {"id": "1", "status": 200}, {"id": "2", "status": 200}]}),
            json!({"responses": [{"id": "1", "status": 200}, {"id": "3", "status": 200}]}),
            json!({"responses": [{"id": "1", "status": 200}, {"id": "2", "status": 1000}]}),
            json!({"value": []}),
        ] {
            assert!(split(&answer(bad.clone()), 2).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_throttled_part_asks_for_the_longest_wait() {
        let resp = answer(json!({"responses": [
            {"id": "1", "status": 429, "headers": {"Retry-After": "2"}},
            {"id": "2", "status": 503, "headers": {"Retry-After": "5"}},
        ]}));
        let r = refused_for_now(&resp, 2, SystemTime::now()).unwrap();
        assert_eq!(r.part.status, 503);
        assert_eq!(r.wait, Some(Duration::from_secs(5)));
        assert!(!r.unsaid);
        let fine = answer(json!({"responses": [
            {"id": "1", "status": 200, "body": {}},
            {"id": "2", "status": 404, "body": {}},
        ]}));
        assert!(refused_for_now(&fine, 2, SystemTime::now()).is_none());
        // A part without Retry-After: whatever the other says, the backoff applies too.
        for other in ["0", "1"] {
            let mixed = answer(json!({"responses": [
                {"id": "1", "status": 429, "headers": {"Retry-After": other}},
                {"id": "2", "status": 503},
            ]}));
            let r = refused_for_now(&mixed, 2, SystemTime::now()).unwrap();
            assert!(r.unsaid, "{other}");
            assert_eq!(r.part.status, 429);
        }
        let alone = answer(json!({"responses": [
            {"id": "1", "status": 429, "headers": {"Retry-After": "0"}},
            {"id": "2", "status": 200, "body": {}},
        ]}));
        let r = refused_for_now(&alone, 2, SystemTime::now()).unwrap();
        assert_eq!((r.wait, r.unsaid), (Some(Duration::ZERO), false));
    }

    #[test]
    fn every_part_401_is_a_rejected_token_and_parts_report_their_statuses() {
        let all = answer(json!({"responses": [
            {"id": "2", "status": 401, "body": {"error": {"code": "InvalidAuthenticationToken"}}},
            {"id": "1", "status": 401, "body": {"error": {"code": "InvalidAuthenticationToken"}}},
        ]}));
        assert_eq!(
            all_unauthorized(&all, 2).unwrap().code,
            "InvalidAuthenticationToken"
        );
        let one = answer(json!({"responses": [
            {"id": "1", "status": 401, "body": {}},
            {"id": "2", "status": 200, "body": {}},
        ]}));
        assert!(all_unauthorized(&one, 2).is_none());
        let urls = [
            Url::parse("https://graph.microsoft.com/v1.0/users/a").unwrap(),
            Url::parse("https://graph.microsoft.com/v1.0/users/a/transitiveMemberOf").unwrap(),
        ];
        let mut seen = part_statuses(&urls, &one.body);
        seen.sort_by_key(|(u, _)| u.as_str().len());
        assert_eq!(seen, vec![(&urls[0], 401), (&urls[1], 200)]);
        assert!(part_statuses(&urls, b"not json").is_empty());
    }
}
