//! JSON batching (`concepts/json-batching.md`): `POST /v1.0/$batch` with
//! `{"requests":[{id, method, url, headers?, body?, dependsOn?}]}` (at most 20), answered 200
//! with `{"responses":[{id, status, headers?, body?}]}` whatever the parts' own statuses. A
//! malformed batch is 400 as a whole and runs nothing.
//!
//! Each part is sent to the simulator itself as a real HTTP request (`base_url/v1.0` + the part's
//! url, the batch's `Authorization`, the part's headers and body), so permissions, 404s, injected
//! faults, throttling and request ids apply per part exactly as they do to a direct request. A
//! part that gets no answer (a dropped connection, a timeout) is a 504 in its own slot, never a
//! failed batch. Parts carry [`PART_HEADER`] with the simulator's secret so the recorder marks
//! them `batch_part` (crate::recording).
//!
//! Parts without `dependsOn` run concurrently; a part runs once every part it names has answered,
//! and gets 424 without running when one of them did not succeed (non-2xx). Answers come back in
//! reverse request order: Graph promises no order, and a client that matches answers by position
//! must fail its tests.
//!
//! Choices where Microsoft documents nothing: the error messages (the duplicate-id one is Graph's
//! as observed); an empty `requests` list is refused like a missing one; a 424 carries code
//! `FailedDependency`; a part's headers are the inner response's minus the transport and
//! request-id headers (Graph's parts show Content-Type, Location, Retry-After and such, not
//! request-id); a part's own `Authorization` is ignored (the batch's token is used); a non-JSON
//! body travels base64-encoded both ways; a bad token refuses the whole batch with 401 (Graph
//! has also been seen to answer 200 with every part 401: the client handles both); `dependsOn`
//! may only name earlier parts; lower-case methods are accepted; a part url that names the
//! version (`/v1.0/...`) is refused; the batch's `Content-Type` is not checked. Graph's older
//! documentation mentions a `nextLink` on a batch answer for parts not yet answered; the
//! simulator always answers every part (the client refuses an answer that leaves one out).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::web::{Bytes, Data};
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value, json};

use super::error::{GraphError, GraphResult};
use super::ids::RequestIds;
use crate::app::Shared;
use crate::clock::fmt;

/// Marks a request as a `$batch` part; its value is the simulator's secret made at start. Lower
/// case, as header names are compared.
pub const PART_HEADER: &str = "x-latchkey-sim-batch-part";
const MAX_REQUESTS: usize = 20;
const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];
/// A part still unanswered after this is a 504, as Graph's gateway gives up on a slow backend.
const PART_TIMEOUT: Duration = Duration::from_secs(60);
/// Part headers not passed on: transport headers reqwest sets itself, the batch's own token
/// (a part cannot switch identity) and the marker (only the simulator sets it).
const DROPPED_PART_HEADERS: [&str; 6] = [
    "authorization",
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    PART_HEADER,
];
/// Answer headers about the inner HTTP exchange rather than the part's answer.
const DROPPED_ANSWER_HEADERS: [&str; 8] = [
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "date",
    "request-id",
    "client-request-id",
    "x-ms-ags-diagnostic",
];

/// The client that sends the parts. Its own ring provider, so no process-wide rustls default is
/// needed (reqwest is built without one; the parts are plain loopback HTTP anyway). No
/// redirects: a part's 302 is its answer. No idle pool: the parts are sent from whichever worker
/// runtime serves the batch, and a connection is tied to the runtime that opened it; a fresh
/// connection per part also confines a dropped-connection fault to its part.
pub fn part_client() -> std::io::Result<reqwest::Client> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .pool_max_idle_per_host(0)
        .timeout(PART_TIMEOUT)
        .build()
        .map_err(std::io::Error::other)
}

/// One validated part, ready to send.
#[derive(Debug)]
struct Part {
    id: String,
    method: reqwest::Method,
    url: String,
    headers: HeaderMap,
    body: Option<Vec<u8>>,
    /// Indices of earlier parts.
    depends_on: Vec<usize>,
}

/// A part's answer as it goes into `responses`.
#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    headers: Map<String, Value>,
    body: Option<Value>,
}

impl Answer {
    fn succeeded(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// An answer the simulator makes itself (424, 504), in the Graph error shape.
    fn error(status: StatusCode, code: &str, message: String, ctx: &Ctx) -> Answer {
        let err = GraphError::new(status, code, message);
        let request_id = uuid::Uuid::new_v4().to_string();
        let mut headers = Map::new();
        headers.insert("Content-Type".into(), json!("application/json"));
        Answer {
            status: status.as_u16(),
            headers,
            body: Some(err.body(&ctx.date, &request_id, &ctx.client_request_id)),
        }
    }
}

/// What every part of one batch shares.
#[derive(Clone)]
struct Ctx {
    client: reqwest::Client,
    secret: String,
    authorization: Option<HeaderValue>,
    client_request_id: String,
    date: String,
}

fn bad(message: impl Into<String>) -> GraphError {
    GraphError::odata_bad_request(message)
}

pub async fn batch(
    req: HttpRequest,
    // The batch's token is checked as any request's (401 for the whole batch, nothing run);
    // permissions are the parts' business.
    _caller: super::auth::Caller,
    shared: Data<Shared>,
    body: Bytes,
) -> GraphResult {
    let parts = parse(&shared, &body)?;
    let ctx = Ctx {
        client: shared.batch_client.clone(),
        secret: shared.batch_secret.clone(),
        // actix's `http` 0.2 header type → reqwest's `http` 1.
        authorization: req
            .headers()
            .get("authorization")
            .and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok()),
        client_request_id: req
            .extensions()
            .get::<RequestIds>()
            .map(|ids| ids.client_request_id.clone())
            .unwrap_or_default(),
        date: fmt::inner_error(shared.clock.now()),
    };
    let answers = run(&parts, &ctx).await;
    let responses: Vec<Value> = parts
        .iter()
        .zip(answers)
        .rev()
        .map(|(part, a)| {
            let mut r = json!({"id": part.id, "status": a.status});
            if !a.headers.is_empty() {
                r["headers"] = Value::Object(a.headers);
            }
            if let Some(b) = a.body {
                r["body"] = b;
            }
            r
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "responses": responses })))
}

/// Runs the parts in waves: each wave sends, concurrently, every part whose dependencies have all
/// answered. `dependsOn` only names earlier parts, so the first unanswered part is always ready
/// and the loop ends.
async fn run(parts: &[Part], ctx: &Ctx) -> Vec<Answer> {
    let mut answers: Vec<Option<Answer>> = vec![None; parts.len()];
    while answers.iter().any(Option::is_none) {
        let mut wave = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            if answers[i].is_some() || part.depends_on.iter().any(|&d| answers[d].is_none()) {
                continue;
            }
            let failed = part
                .depends_on
                .iter()
                .find(|&&d| answers[d].as_ref().is_some_and(|a| !a.succeeded()));
            if let Some(&d) = failed {
                answers[i] = Some(Answer::error(
                    StatusCode::FAILED_DEPENDENCY,
                    "FailedDependency",
                    format!(
                        "The request depends on request '{}', which failed.",
                        parts[d].id
                    ),
                    ctx,
                ));
                continue;
            }
            wave.push((i, tokio::spawn(send(ctx.clone(), request_of(part)))));
        }
        for (i, task) in wave {
            answers[i] = Some(task.await.unwrap_or_else(|_| no_answer(ctx)));
        }
    }
    answers.into_iter().flatten().collect()
}

/// What [`send`] needs of a part, owned so the send can be spawned.
fn request_of(p: &Part) -> (reqwest::Method, String, HeaderMap, Option<Vec<u8>>) {
    (
        p.method.clone(),
        p.url.clone(),
        p.headers.clone(),
        p.body.clone(),
    )
}

fn no_answer(ctx: &Ctx) -> Answer {
    Answer::error(
        StatusCode::GATEWAY_TIMEOUT,
        crate::faults::code_for_status(504),
        "The request timed out.".into(),
        ctx,
    )
}

async fn send(ctx: Ctx, req: (reqwest::Method, String, HeaderMap, Option<Vec<u8>>)) -> Answer {
    let (method, url, mut headers, body) = req;
    if let Some(auth) = &ctx.authorization {
        headers.insert(reqwest::header::AUTHORIZATION, auth.clone());
    }
    if !headers.contains_key("client-request-id")
        && let Ok(v) = HeaderValue::from_str(&ctx.client_request_id)
    {
        headers.insert("client-request-id", v);
    }
    if let Ok(v) = HeaderValue::from_str(&ctx.secret) {
        headers.insert(PART_HEADER, v);
    }
    let mut rb = ctx.client.request(method, url).headers(headers);
    if let Some(b) = body {
        rb = rb.body(b);
    }
    let Ok(resp) = rb.send().await else {
        return no_answer(&ctx);
    };
    let status = resp.status().as_u16();
    let mut out = Map::new();
    for (name, value) in resp.headers() {
        if DROPPED_ANSWER_HEADERS.contains(&name.as_str()) {
            continue;
        }
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        let key = title_case(name.as_str());
        // A repeated header is one comma-separated value, as HTTP allows.
        let joined = match out.get(&key).and_then(Value::as_str) {
            Some(prev) => format!("{prev}, {value}"),
            None => value,
        };
        out.insert(key, Value::String(joined));
    }
    let is_json = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("json"));
    let Ok(bytes) = resp.bytes().await else {
        return no_answer(&ctx);
    };
    let body = if bytes.is_empty() {
        None
    } else if is_json {
        Some(
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(STANDARD.encode(&bytes))),
        )
    } else {
        Some(Value::String(STANDARD.encode(&bytes)))
    };
    Answer {
        status,
        headers: out,
        body,
    }
}

/// `retry-after` → `Retry-After`, as Graph shows part headers.
fn title_case(name: &str) -> String {
    name.split('-')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// The whole batch validated before anything runs: one bad part refuses the batch.
fn parse(shared: &Shared, body: &[u8]) -> GraphResult<Vec<Part>> {
    let payload: Value =
        serde_json::from_slice(body).map_err(|_| bad("Invalid batch payload format."))?;
    let Some(requests) = payload.get("requests").and_then(Value::as_array) else {
        return Err(bad(
            "Invalid batch payload format: a 'requests' array is required.",
        ));
    };
    if requests.is_empty() {
        return Err(bad("The batch contains no requests."));
    }
    if requests.len() > MAX_REQUESTS {
        return Err(bad(format!(
            "The batch contains {} requests; at most {MAX_REQUESTS} are allowed.",
            requests.len()
        )));
    }
    let mut ids: Vec<String> = Vec::new();
    let mut seen = HashSet::new();
    let mut parts = Vec::new();
    for r in requests {
        let part = parse_part(shared, r, &ids)?;
        // Ids are unique regardless of case (Graph refuses "a" next to "A").
        if !seen.insert(part.id.to_lowercase()) {
            return Err(bad(format!(
                "Request Id {} has to be unique in a batch.",
                part.id
            )));
        }
        ids.push(part.id.clone());
        parts.push(part);
    }
    Ok(parts)
}

/// One part; `earlier` holds the ids of the parts before it (what `dependsOn` may name).
fn parse_part(shared: &Shared, r: &Value, earlier: &[String]) -> GraphResult<Part> {
    let field = |name: &str| {
        r.get(name).and_then(Value::as_str).ok_or_else(|| {
            bad(format!(
                "Invalid batch payload format: every request needs a string '{name}'."
            ))
        })
    };
    let id = field("id")?;
    if id.is_empty() {
        return Err(bad("Invalid batch payload format: a request id is empty."));
    }
    let method = field("method")?.to_ascii_uppercase();
    if !METHODS.contains(&method.as_str()) {
        return Err(bad(format!(
            "Request {id}: method '{method}' is not supported in a batch."
        )));
    }
    let method = reqwest::Method::from_bytes(method.as_bytes())
        .map_err(|_| bad(format!("Request {id}: invalid method.")))?;
    let url = part_url(shared, id, field("url")?)?;
    let headers = part_headers(id, r.get("headers"))?;
    let body = part_body(id, r.get("body"), &headers)?;
    let mut depends_on = Vec::new();
    match r.get("dependsOn") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            for d in list {
                // Only an earlier part can be named: Graph runs the list in order.
                let i = d
                    .as_str()
                    .and_then(|d| earlier.iter().position(|e| e.eq_ignore_ascii_case(d)))
                    .ok_or_else(|| bad(format!("Invalid dependency for request Id {id}.")))?;
                depends_on.push(i);
            }
        }
        Some(_) => return Err(bad(format!("Invalid dependency for request Id {id}."))),
    }
    Ok(Part {
        id: id.to_owned(),
        method,
        url,
        headers,
        body,
        depends_on,
    })
}

/// The absolute URL of a part on this simulator. A part's url is relative to the version
/// (`/users/{id}` or `users/{id}`): an absolute URL, a version segment or a nested `$batch` is
/// refused, and so is anything that resolves outside `/v1.0/` (`/../_sim/faults`).
fn part_url(shared: &Shared, id: &str, raw: &str) -> GraphResult<String> {
    let invalid = || {
        bad(format!(
            "Request {id}: invalid url '{raw}'; a batch request's url is relative to the version, e.g. '/users'."
        ))
    };
    if raw.is_empty() || raw.starts_with("//") || url::Url::parse(raw).is_ok() {
        return Err(invalid());
    }
    let sep = if raw.starts_with('/') { "" } else { "/" };
    let full =
        url::Url::parse(&format!("{}{sep}{raw}", shared.graph_base())).map_err(|_| invalid())?;
    let base = url::Url::parse(&shared.base_url).map_err(|_| invalid())?;
    let mut segments = full.path_segments().into_iter().flatten();
    if full.origin() != base.origin() || segments.next() != Some("v1.0") {
        return Err(invalid());
    }
    let first = segments.next().unwrap_or("");
    if ["v1.0", "beta"]
        .iter()
        .any(|v| first.eq_ignore_ascii_case(v))
    {
        return Err(invalid());
    }
    if first.eq_ignore_ascii_case("$batch") || first.eq_ignore_ascii_case("%24batch") {
        return Err(bad(format!(
            "Request {id}: a batch cannot contain another batch."
        )));
    }
    Ok(full.to_string())
}

fn part_headers(id: &str, headers: Option<&Value>) -> GraphResult<HeaderMap> {
    let mut out = HeaderMap::new();
    let map = match headers {
        None | Some(Value::Null) => return Ok(out),
        Some(Value::Object(m)) => m,
        Some(_) => {
            return Err(bad(format!(
                "Request {id}: 'headers' must be an object of strings."
            )));
        }
    };
    for (name, value) in map {
        let invalid = || bad(format!("Request {id}: invalid header '{name}'."));
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid())?;
        let value = value
            .as_str()
            .and_then(|v| HeaderValue::from_str(v).ok())
            .ok_or_else(invalid)?;
        if !DROPPED_PART_HEADERS.contains(&name.as_str()) {
            out.append(name, value);
        }
    }
    Ok(out)
}

/// The bytes to send: a JSON body as JSON; any other content type takes a base64 string.
fn part_body(id: &str, body: Option<&Value>, headers: &HeaderMap) -> GraphResult<Option<Vec<u8>>> {
    let body = match body {
        None | Some(Value::Null) => return Ok(None),
        Some(b) => b,
    };
    let Some(ct) = headers.get(reqwest::header::CONTENT_TYPE) else {
        return Err(bad(format!(
            "Request {id}: a request with a body needs a Content-Type header."
        )));
    };
    if ct.to_str().is_ok_and(|ct| ct.contains("json")) {
        return serde_json::to_vec(body)
            .map(Some)
            .map_err(|_| bad(format!("Request {id}: invalid body.")));
    }
    body.as_str()
        .and_then(|s| STANDARD.decode(s).ok())
        .map(Some)
        .ok_or_else(|| {
            bad(format!(
                "Request {id}: a body that is not JSON must be a base64 string."
            ))
        })
}
