//! Sending requests: `client-request-id`, timeouts, the retry budget, error bodies, the request
//! counter and the (optional) HTTP debug log.
//!
//! Retries:
//! - 429 and 503 are retried for every method (the request was not processed).
//! - 504 and transport failures (timeout, connection dropped mid-exchange) are retried only for
//!   requests marked idempotent: the server may have done the work already. A failure to
//!   *connect* is retried for every method (nothing was sent).
//! - The wait is the server's `Retry-After` (delta seconds, fractional accepted, or HTTP-date);
//!   without one, exponential backoff with jitter. Both `max_attempts` and `max_total_wait` bound
//!   the retries; a `Retry-After` longer than what is left ends them at once.
//!
//! Every attempt gets a fresh `client-request-id` GUID, which is logged and put in errors.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use crate::config::{RetryPolicy, Timeouts};
use crate::error::{ApiError, GraphError, TokenError, TransportKind};
use crate::redact;
use latchkey_types::Secret;

/// Largest response body read (Graph pages of 999 objects are well under this).
const MAX_BODY: usize = 16 * 1024 * 1024;
/// Log target of the detailed HTTP debug log.
pub const HTTP_LOG_TARGET: &str = "latchkey_graph::http";

/// Which server answered, for error parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Graph,
    Token,
}

/// A request body.
#[derive(Debug, Clone)]
pub(crate) enum Body {
    None,
    Json(Value),
    /// Form fields; values of sensitive fields are secrets and are scrubbed from errors.
    Form(Vec<(&'static str, Secret<String>)>),
}

/// One logical request (possibly sent several times).
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub method: Method,
    pub url: Url,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body,
    pub bearer: Option<Secret<String>>,
    pub idempotent: bool,
    pub endpoint: Endpoint,
    /// A `$batch` of reads of these URLs: a part refused for now retries the whole batch, and
    /// the observer sees every part.
    pub batch: Option<Vec<Url>>,
}

impl Request {
    pub fn new(method: Method, url: Url, endpoint: Endpoint) -> Self {
        let idempotent = matches!(
            method,
            Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::PATCH
        );
        Self {
            method,
            url,
            headers: Vec::new(),
            body: Body::None,
            bearer: None,
            idempotent,
            endpoint,
            batch: None,
        }
    }
    pub fn json(mut self, v: Value) -> Self {
        self.body = Body::Json(v);
        self
    }
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
    pub fn idempotent(mut self, yes: bool) -> Self {
        self.idempotent = yes;
        self
    }
    /// Marks a `$batch` of reads of `urls` (see [`crate::batch`]).
    pub fn batch_of(mut self, urls: Vec<Url>) -> Self {
        self.batch = Some(urls);
        self.idempotent = true;
        self
    }
    /// How many requests a `$batch` carries.
    pub fn batch_parts(&self) -> Option<usize> {
        self.batch.as_ref().map(Vec::len)
    }
}

/// A successful (2xx) answer.
#[derive(Debug)]
pub(crate) struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub client_request_id: String,
}

impl Response {
    pub fn json<T: for<'de> Deserialize<'de>>(&self) -> Result<T, GraphError> {
        serde_json::from_slice(&self.body).map_err(|e| GraphError::UnexpectedResponse {
            status: self.status.as_u16(),
            message: format!(
                "response body does not match the documented shape: {}",
                without_quoted(&e.to_string())
            ),
            client_request_id: self.client_request_id.clone(),
        })
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The HTTP machinery shared by one client.
#[derive(Debug)]
pub(crate) struct Http {
    client: reqwest::Client,
    retry: RetryPolicy,
    timeouts: Timeouts,
    /// The redacted HTTP debug log; switched at run time (the admin console's time-boxed toggle).
    debug: AtomicBool,
    sent: AtomicU64,
    /// The wall clock an HTTP-date `Retry-After` is measured against.
    clock: crate::config::Clock,
    /// Told about every attempt (metrics), when set.
    observer: std::sync::OnceLock<std::sync::Arc<dyn crate::observe::GraphObserver>>,
}

impl Http {
    pub fn new(
        retry: RetryPolicy,
        timeouts: Timeouts,
        debug: bool,
        clock: crate::config::Clock,
    ) -> Result<Self, GraphError> {
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            return Err(GraphError::Config(
                "no rustls crypto provider installed: call \
                 rustls::crypto::ring::default_provider().install_default() at start-up"
                    .into(),
            ));
        }
        let client = reqwest::Client::builder()
            .connect_timeout(timeouts.connect)
            // Redirects are never followed: a redirect would carry the bearer token elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("latchkey-graph/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| GraphError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            client,
            retry,
            timeouts,
            debug: AtomicBool::new(debug),
            sent: AtomicU64::new(0),
            clock,
            observer: std::sync::OnceLock::new(),
        })
    }

    /// Sets the observer told about every attempt (once; `false` if one is set already).
    pub fn observe(&self, observer: std::sync::Arc<dyn crate::observe::GraphObserver>) -> bool {
        self.observer.set(observer).is_ok()
    }

    /// HTTP requests sent so far (every attempt, token endpoint included).
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Switches the redacted HTTP debug log on or off for this client and its clones.
    pub fn set_debug(&self, on: bool) {
        self.debug.store(on, Ordering::Relaxed);
    }

    pub fn debug(&self) -> bool {
        self.debug.load(Ordering::Relaxed)
    }

    /// Now, by the client's clock, as `SystemTime` (for HTTP dates).
    pub fn wall_now(&self) -> SystemTime {
        SystemTime::from(self.clock.now())
    }

    pub fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    /// Sends `req`, retrying within the budget. `Ok` only for 2xx.
    pub async fn execute(&self, req: &Request) -> Result<Response, GraphError> {
        let mut attempt: u32 = 0;
        let mut waited = Duration::ZERO;
        loop {
            attempt += 1;
            // The work's shared budget: nothing is sent once it is spent, and no write with so
            // little left that it would be cut off mid-flight.
            let floor = if req.idempotent {
                Duration::ZERO
            } else {
                crate::deadline::MIN_FOR_A_WRITE
            };
            if crate::deadline::left().is_some_and(|left| left.is_zero() || left < floor) {
                return Err(GraphError::BudgetExhausted);
            }
            // `backoff_too`: some refused part of a batch said no `Retry-After`, so the wait is
            // at least the client's own backoff, whatever another part said.
            let (err, retryable, server_wait, backoff_too) =
                match self.send_once(req, attempt).await {
                    Ok(resp) if resp.status.is_success() => match self.refused_part(req, &resp) {
                        None => return Ok(resp),
                        // A throttled part: the batch is retried as a throttled request is.
                        Some(r) => (
                            GraphError::Api(Box::new(parse_graph_error(&r.part, r.wait))),
                            true,
                            r.wait,
                            r.unsaid,
                        ),
                    },
                    Ok(resp) => {
                        let status = resp.status.as_u16();
                        let retry_after = resp
                            .header("retry-after")
                            .and_then(|v| parse_retry_after(v, self.wall_now()));
                        let retryable =
                            status == 429 || status == 503 || (status == 504 && req.idempotent);
                        (
                            self.map_error(req, resp, retry_after),
                            retryable,
                            retry_after,
                            false,
                        )
                    }
                    Err(e) => {
                        let retryable = match &e {
                            GraphError::Transport { kind, .. } => {
                                *kind == TransportKind::Connect || req.idempotent
                            }
                            _ => false,
                        };
                        (e, retryable, None, false)
                    }
                };
            if !retryable {
                return Err(err);
            }
            let own = || {
                let step = backoff(&self.retry, attempt);
                // Identity Protection allows one request a second per tenant and its 429 carries
                // no Retry-After (throttling-limits): a retry sooner than that is refused again.
                if req.url.path().contains("/identityProtection/") {
                    step.max(IDENTITY_PROTECTION_SPACING)
                } else {
                    step
                }
            };
            let delay = match server_wait {
                Some(wait) if backoff_too => wait.max(own()),
                Some(wait) => wait,
                None => own(),
            };
            let past_budget = crate::deadline::left().is_some_and(|left| delay >= left);
            if attempt >= self.retry.max_attempts
                || waited + delay > self.retry.max_total_wait
                || past_budget
            {
                tracing::warn!(
                    target: "latchkey_graph",
                    method = %req.method, path = %redact::redact_path(req.url.path()), attempts = attempt,
                    waited_ms = waited.as_millis() as u64,
                    "retry budget exhausted"
                );
                return Err(GraphError::RetriesExhausted {
                    attempts: attempt,
                    waited,
                    last: Box::new(err),
                });
            }
            tracing::info!(
                target: "latchkey_graph",
                method = %req.method, path = %redact::redact_path(req.url.path()), attempt,
                status = err.status(), delay_ms = delay.as_millis() as u64,
                client_request_id = err.client_request_id(),
                "retrying"
            );
            tokio::time::sleep(delay).await;
            waited += delay;
        }
    }

    /// For a `$batch`, a part Graph refused for now and the wait the refused parts ask for.
    fn refused_part(&self, req: &Request, resp: &Response) -> Option<crate::batch::Refused> {
        let parts = req.batch_parts()?;
        crate::batch::refused_for_now(resp, parts, self.wall_now())
    }

    async fn send_once(&self, req: &Request, attempt: u32) -> Result<Response, GraphError> {
        let crid = latchkey_types::random::uuid()
            .map_err(|_| GraphError::Config("no system randomness for a client-request-id".into()))?
            .to_string();
        let mut rb = self
            .client
            .request(req.method.clone(), req.url.clone())
            // The attempt's own timeout, or what is left of the work's budget if less.
            .timeout(
                crate::deadline::left().map_or(self.timeouts.request, |left| {
                    left.min(self.timeouts.request)
                }),
            )
            .header("client-request-id", &crid)
            .header("return-client-request-id", "true");
        for (k, v) in &req.headers {
            rb = rb.header(*k, v);
        }
        if let Some(token) = &req.bearer {
            let mut v =
                HeaderValue::from_str(&format!("Bearer {}", token.expose())).map_err(|_| {
                    GraphError::UnexpectedResponse {
                        status: 0,
                        message: "access token is not a valid header value".into(),
                        client_request_id: crid.clone(),
                    }
                })?;
            v.set_sensitive(true);
            rb = rb.header(reqwest::header::AUTHORIZATION, v);
        }
        let (body_bytes, content_type): (Vec<u8>, Option<&str>) = match &req.body {
            Body::None => (Vec::new(), None),
            Body::Json(v) => (v.to_string().into_bytes(), Some("application/json")),
            Body::Form(fields) => {
                let s = url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(fields.iter().map(|(k, v)| (*k, v.expose().as_str())))
                    .finish();
                (s.into_bytes(), Some("application/x-www-form-urlencoded"))
            }
        };
        if let Some(ct) = content_type {
            rb = rb
                .header(reqwest::header::CONTENT_TYPE, ct)
                .body(body_bytes.clone());
        } else if req.method == Method::POST {
            rb = rb.header(reqwest::header::CONTENT_LENGTH, "0");
        }

        if self.debug.load(Ordering::Relaxed) {
            tracing::debug!(
                target: HTTP_LOG_TARGET,
                method = %req.method,
                url = %redact::redact_url(&req.url),
                attempt,
                client_request_id = %crid,
                body = %redact::redact_body(content_type, &body_bytes),
                "request"
            );
        }

        self.sent.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let result = async {
            let mut resp = rb.send().await?;
            let status = resp.status();
            let headers = resp.headers().clone();
            let mut body = Vec::new();
            while let Some(chunk) = resp.chunk().await? {
                if body.len() + chunk.len() > MAX_BODY {
                    break;
                }
                body.extend_from_slice(&chunk);
            }
            Ok::<_, reqwest::Error>((status, headers, body))
        }
        .await;
        let elapsed = started.elapsed();
        let elapsed_ms = elapsed.as_millis() as u64;
        if let Some(observer) = self.observer.get() {
            let operation =
                crate::observe::operation(req.endpoint == Endpoint::Token, &req.method, &req.url);
            let status = result.as_ref().ok().map(|(s, _, _)| s.as_u16());
            observer.attempt(&crate::observe::Attempt {
                operation: &operation,
                status,
                elapsed,
                retry: attempt > 1,
                part: false,
            });
            // A batch's parts are requests against the tenant's limits of their own: the
            // metrics show each with its status (a throttled part is a 429 there).
            if let (Some(urls), Ok((status, _, body))) = (&req.batch, &result)
                && status.is_success()
            {
                for (url, part) in crate::batch::part_statuses(urls, body) {
                    observer.attempt(&crate::observe::Attempt {
                        operation: &crate::observe::operation(false, &Method::GET, url),
                        status: Some(part),
                        elapsed,
                        retry: attempt > 1,
                        part: true,
                    });
                }
            }
        }

        match result {
            Ok((status, headers, body)) => {
                let request_id = headers
                    .get("request-id")
                    .or_else(|| headers.get("x-ms-request-id"))
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                if self.debug.load(Ordering::Relaxed) {
                    let ct = headers
                        .get(reqwest::header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok());
                    let location = headers
                        .get(reqwest::header::LOCATION)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|l| Url::parse(l).ok())
                        .map(|u| redact::redact_url(&u))
                        .unwrap_or_default();
                    let retry_after = headers
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    tracing::debug!(
                        target: HTTP_LOG_TARGET,
                        method = %req.method,
                        url = %redact::redact_url(&req.url),
                        status = status.as_u16(),
                        elapsed_ms,
                        client_request_id = %crid,
                        request_id = %request_id,
                        retry_after,
                        location = %location,
                        body = %redact::redact_body(ct, &body),
                        "response"
                    );
                } else {
                    tracing::debug!(
                        target: "latchkey_graph",
                        method = %req.method,
                        path = %redact::redact_path(req.url.path()),
                        status = status.as_u16(),
                        elapsed_ms,
                        client_request_id = %crid,
                        request_id = %request_id,
                        "graph request"
                    );
                }
                Ok(Response {
                    status,
                    headers,
                    body,
                    client_request_id: crid,
                })
            }
            Err(e) => {
                let kind = if e.is_connect() {
                    TransportKind::Connect
                } else if e.is_timeout() {
                    TransportKind::Timeout
                } else {
                    TransportKind::Dropped
                };
                let message = error_chain(&e);
                if self.debug.load(Ordering::Relaxed) {
                    tracing::debug!(
                        target: HTTP_LOG_TARGET,
                        method = %req.method,
                        url = %redact::redact_url(&req.url),
                        elapsed_ms,
                        client_request_id = %crid,
                        error = %message,
                        "transport error"
                    );
                } else {
                    tracing::debug!(
                        target: "latchkey_graph",
                        method = %req.method,
                        path = %redact::redact_path(req.url.path()),
                        elapsed_ms,
                        client_request_id = %crid,
                        error = %message,
                        "transport error"
                    );
                }
                Err(GraphError::Transport {
                    kind,
                    method: req.method.to_string(),
                    path: redact::redact_path(req.url.path()),
                    message,
                    client_request_id: crid,
                })
            }
        }
    }

    fn map_error(
        &self,
        req: &Request,
        resp: Response,
        retry_after: Option<Duration>,
    ) -> GraphError {
        match req.endpoint {
            Endpoint::Graph => GraphError::Api(Box::new(parse_graph_error(&resp, retry_after))),
            Endpoint::Token => {
                let secrets: Vec<&str> = match &req.body {
                    Body::Form(fields) => fields
                        .iter()
                        .filter(|(k, _)| redact::is_sensitive_key(k))
                        .map(|(_, v)| v.expose().as_str())
                        .collect(),
                    _ => Vec::new(),
                };
                GraphError::Token(Box::new(parse_token_error(&resp, &secrets)))
            }
        }
    }
}

/// serde messages may quote the offending value (`invalid type: string "…"`): drop quoted text.
pub(crate) fn without_quoted(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut inside = false;
    for c in msg.chars() {
        if c == '"' {
            if !inside {
                out.push_str("\"…\"");
            }
            inside = !inside;
        } else if !inside {
            out.push(c);
        }
    }
    out
}

/// reqwest's error and its sources, without the URL (query strings may hold personal data).
fn error_chain(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut parts = Vec::new();
    let mut src = e.source();
    while let Some(s) = src {
        parts.push(s.to_string());
        src = s.source();
    }
    let head = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "could not connect".to_string()
    } else if e.is_body() || e.is_decode() {
        "connection broke while reading the response".to_string()
    } else {
        "request failed".to_string()
    };
    if parts.is_empty() {
        head
    } else {
        format!("{head}: {}", parts.join(": "))
    }
}

#[derive(Deserialize)]
struct GraphErrorBody {
    error: GraphErrorInner,
}
#[derive(Deserialize)]
struct GraphErrorInner {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default, rename = "innerError", alias = "innererror")]
    inner: Option<Value>,
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max).collect();
        t.push('…');
        t
    }
}

/// Parses a Graph error response into [`ApiError`]. Unparseable bodies keep the status.
pub(crate) fn parse_graph_error(resp: &Response, retry_after: Option<Duration>) -> ApiError {
    let parsed: Option<GraphErrorBody> = serde_json::from_slice(&resp.body).ok();
    let header_request_id = resp.header("request-id").map(str::to_string);
    match parsed {
        Some(b) => {
            let inner = b.error.inner.unwrap_or(Value::Null);
            let inner_code = inner
                .get("code")
                .and_then(Value::as_str)
                .map(str::to_string);
            let inner_rid = inner
                .get("request-id")
                .and_then(Value::as_str)
                .map(str::to_string);
            ApiError {
                status: resp.status.as_u16(),
                code: b.error.code.unwrap_or_else(|| "unknown".into()),
                message: truncate(&b.error.message.unwrap_or_default(), 500),
                inner_code,
                request_id: header_request_id.or(inner_rid),
                client_request_id: resp.client_request_id.clone(),
                retry_after,
            }
        }
        None => ApiError {
            status: resp.status.as_u16(),
            code: resp
                .status
                .canonical_reason()
                .unwrap_or("unknown")
                .replace(' ', ""),
            message: "(no Graph error body)".into(),
            inner_code: None,
            request_id: header_request_id,
            client_request_id: resp.client_request_id.clone(),
            retry_after,
        },
    }
}

#[derive(Deserialize)]
struct TokenErrorBody {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
    #[serde(default)]
    error_codes: Vec<u32>,
    #[serde(default)]
    correlation_id: Option<String>,
    #[serde(default)]
    trace_id: Option<String>,
    #[serde(default)]
    suberror: Option<String>,
}

/// Parses a token-endpoint error. The description is cut to its first line (the rest is trace
/// and correlation ids, kept in their own fields) and scrubbed of `secrets` (what was sent).
pub(crate) fn parse_token_error(resp: &Response, secrets: &[&str]) -> TokenError {
    let status = resp.status.as_u16();
    match serde_json::from_slice::<TokenErrorBody>(&resp.body) {
        Ok(b) => {
            let first = b
                .error_description
                .as_deref()
                .unwrap_or("")
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string();
            TokenError {
                status,
                error: truncate(&b.error, 100),
                suberror: b.suberror,
                error_codes: b.error_codes,
                description: truncate(&redact::scrub(&first, secrets), 400),
                correlation_id: b.correlation_id,
                trace_id: b.trace_id,
                client_request_id: resp.client_request_id.clone(),
            }
        }
        Err(_) => TokenError {
            status,
            error: format!("http_{status}"),
            suberror: None,
            error_codes: Vec::new(),
            description: "the token endpoint's answer is not an OAuth error body".into(),
            correlation_id: None,
            trace_id: None,
            client_request_id: resp.client_request_id.clone(),
        },
    }
}

/// Parses `Retry-After`: delta seconds (fractional accepted, as Graph's own sample `2.128`) or an
/// HTTP-date (IMF-fixdate). A date in the past means "now". Absurd values are capped at 1 hour.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    const CAP: Duration = Duration::from_secs(3600);
    let v = value.trim();
    if v.is_empty() {
        return None;
    }
    if let Ok(secs) = v.parse::<f64>() {
        if !secs.is_finite() || secs < 0.0 {
            return None;
        }
        return Some(Duration::from_secs_f64(secs.min(CAP.as_secs_f64())));
    }
    let fmt = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let at = time::PrimitiveDateTime::parse(v, &fmt).ok()?.assume_utc();
    let at: SystemTime = at.into();
    Some(at.duration_since(now).unwrap_or(Duration::ZERO).min(CAP))
}

/// Exponential backoff with jitter for attempt `n` (1-based): a random wait in
/// `[step/2, step]` where `step = min(max_delay, base * 2^(n-1))`.
/// The least wait before retrying an Identity Protection request refused with 429: its limit is
/// one request a second per tenant.
const IDENTITY_PROTECTION_SPACING: Duration = Duration::from_millis(1100);

pub fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(16));
    let step = policy
        .base_delay
        .saturating_mul(factor)
        .min(policy.max_delay);
    let half = step / 2;
    // Jitter only spreads retries out; without randomness every client waits three quarters
    // of the step, which is still a valid wait.
    let b = latchkey_types::random::bytes::<4>().unwrap_or([0xff, 0xff, 0xff, 0x7f]);
    let frac = f64::from(u32::from_le_bytes(b)) / f64::from(u32::MAX);
    half + half.mul_f64(frac)
}

/// True when `link` has the same scheme, host and port as `base`.
pub(crate) fn same_origin(link: &Url, base: &Url) -> bool {
    link.origin() == base.origin()
}

/// Appends query parameters with `%20` for spaces (as Microsoft's examples do) and the keys
/// (`$select`, `$filter`, …) left as they are.
pub(crate) fn set_query(url: &mut Url, params: &[(&str, &str)]) {
    let q: Vec<String> = params
        .iter()
        .map(|(k, v)| {
            let enc: String = url::form_urlencoded::byte_serialize(v.as_bytes()).collect();
            format!("{k}={}", enc.replace('+', "%20"))
        })
        .collect();
    url.set_query(Some(&q.join("&")));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_fractional_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(parse_retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after(" 2.128 ", now),
            Some(Duration::from_millis(2128))
        );
        assert_eq!(parse_retry_after("0", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("999999999", now),
            Some(Duration::from_secs(3600))
        );
        for bad in [
            "",
            "-1",
            "soon",
            "NaN",
            "inf",
            "Sunday, 06-Nov-94 08:49:37 GMT",
        ] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad}");
        }
    }

    #[test]
    fn backoff_grows_is_jittered_and_capped() {
        let p = RetryPolicy {
            max_attempts: 10,
            max_total_wait: Duration::from_secs(100),
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
        };
        for _ in 0..50 {
            let d1 = backoff(&p, 1);
            assert!(d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100));
            let d3 = backoff(&p, 3);
            assert!(d3 >= Duration::from_millis(200) && d3 <= Duration::from_millis(400));
            let d20 = backoff(&p, 20);
            assert!(d20 >= Duration::from_millis(500) && d20 <= Duration::from_millis(1000));
        }
        let samples: std::collections::HashSet<_> = (0..20).map(|_| backoff(&p, 4)).collect();
        assert!(samples.len() > 1, "no jitter");
    }

    #[test]
    fn query_encoding_escapes_values_not_keys() {
        let mut u = Url::parse("https://graph.microsoft.com/v1.0/users").unwrap();
        set_query(
            &mut u,
            &[
                ("$filter", "mail eq 'a+b@x.com' or x eq '&$top=999'"),
                ("$top", "2"),
            ],
        );
        assert_eq!(
            u.as_str(),
            "https://graph.microsoft.com/v1.0/users?$filter=mail%20eq%20%27a%2Bb%40x.com%27%20or%20x%20eq%20%27%26%24top%3D999%27&$top=2"
        );
        let pairs: Vec<(String, String)> =
            u.query_pairs().map(|(k, v)| (k.into(), v.into())).collect();
        assert_eq!(pairs[0].1, "mail eq 'a+b@x.com' or x eq '&$top=999'");
        assert_eq!(pairs.len(), 2);
    }

    fn resp(status: u16, body: &str) -> Response {
        Response {
            status: StatusCode::from_u16(status).unwrap(),
            headers: HeaderMap::new(),
            body: body.as_bytes().to_vec(),
            client_request_id: "crid".into(),
        }
    }

    #[test]
    fn graph_error_bodies() {
        let r = resp(
            400,
            include_str!(
                "../../../tests/fixtures/graph-examples/error-400-onprem-mastered.OBSERVED.json"
            ),
        );
        let e = parse_graph_error(&r, None);
        assert_eq!(e.code, "Request_BadRequest");
        assert_eq!(
            e.request_id.as_deref(),
            Some("22e0aabc-9acb-4673-9c8d-2433d54bd1ed")
        );
        assert_eq!(e.client_request_id, "crid");
        assert!(GraphError::Api(Box::new(e)).is_on_premises_mastered());
        let r = resp(
            429,
            include_str!("../../../tests/fixtures/graph-examples/error-429-throttled.json"),
        );
        let e = parse_graph_error(&r, Some(Duration::from_millis(2128)));
        assert_eq!(e.code, "TooManyRequests");
        assert_eq!(e.inner_code.as_deref(), Some("429"));
        let e = parse_graph_error(&resp(502, "<html>bad gateway</html>"), None);
        assert_eq!(e.status, 502);
        assert_eq!(e.code, "BadGateway");
    }

    #[test]
    fn token_error_bodies_are_first_line_and_scrubbed() {
        let r = resp(
            401,
            include_str!(
                "../../../tests/fixtures/graph-examples/token-error-7000215.OBSERVED.json"
            ),
        );
        let e = parse_token_error(&r, &["a8fdfbd0-da97-42d9-8f1a-fd6a7cb650b4"]);
        assert_eq!(e.error, "invalid_client");
        assert_eq!(e.error_codes, vec![7000215]);
        assert!(e.has_code(7000215));
        assert!(e.description.starts_with("AADSTS7000215"));
        assert!(!e.description.contains("Trace ID"));
        assert!(
            !e.description.contains("a8fdfbd0"),
            "scrubbed: {}",
            e.description
        );
        assert_eq!(
            e.correlation_id.as_deref(),
            Some("5fc87507-4086-4e77-b415-cee677eb232e")
        );
        let r = resp(
            400,
            include_str!("../../../tests/fixtures/graph-examples/token-error-65001.OBSERVED.json"),
        );
        let e = parse_token_error(&r, &[]);
        assert_eq!(e.error, "invalid_grant");
        assert_eq!(e.suberror.as_deref(), Some("consent_required"));
        let e = parse_token_error(&resp(500, "oops"), &[]);
        assert_eq!(e.error, "http_500");
    }

    #[test]
    fn decode_errors_do_not_quote_values() {
        let e = serde_json::from_str::<u32>(r#""s3cret""#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("s3cret"));
        let m = without_quoted(&e);
        assert!(!m.contains("s3cret"), "{m}");
        assert!(m.contains("invalid type"));
    }

    #[test]
    fn origin_check() {
        let base = Url::parse("https://graph.microsoft.com/v1.0").unwrap();
        assert!(same_origin(
            &Url::parse("https://graph.microsoft.com/v1.0/users?$skiptoken=x").unwrap(),
            &base
        ));
        assert!(!same_origin(
            &Url::parse("https://graph.microsoft.com.evil.com/v1.0").unwrap(),
            &base
        ));
        assert!(!same_origin(
            &Url::parse("http://graph.microsoft.com/v1.0").unwrap(),
            &base
        ));
        assert!(!same_origin(
            &Url::parse("https://graph.microsoft.com:8443/v1.0").unwrap(),
            &base
        ));
    }
}
