//! Prometheus metrics (`[metrics] listen`, its own address, off by default): scraped at
//! `GET /metrics` there, never on the portal's public listener.
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `latchkey_build_info` | `version` | 1 |
//! | `latchkey_http_requests_total` | `route` (the route template, e.g. `/verify/{kind}`), `method`, `status` | answers |
//! | `latchkey_http_request_duration_seconds` | `route` | time to answer |
//! | `latchkey_audit_events_total` | `event`, `method`, `outcome` | every audit event as it is stored: flows started, verifications by method and outcome, throttle refusals, codes sent, resets, unlocks, passes, console actions |
//! | `latchkey_graph_requests_total` | `operation` (`GET /users/{id}/transitiveMemberOf`, `token`), `status` (`none`: no answer) | Graph and token-endpoint attempts: 429s, token acquisitions |
//! | `latchkey_graph_request_duration_seconds` | `operation` | time to Graph's answer |
//! | `latchkey_graph_retries_total` | `operation` | attempts that repeated a request |
//! | `latchkey_gateways` | `state` | registered gateways: connected, not_connected, revoked |
//! | `latchkey_gateway_last_poll_age_seconds` | `gateway` (names admins registered) | since each live gateway's last poll |
//! | `latchkey_store_call_duration_seconds` | `operation` (the store method, e.g. `claim_flow`) | time each store call took (its statements and waiting for a connection) |
//! | `latchkey_store_call_errors_total` | `operation` | store calls that failed |
//! | `latchkey_throttle_refusals_total` | `scope` (the throttle: `start:client`, `verify:client`, `send:email`, `fail:code`, ...) | attempts a throttle refused |
//! | `latchkey_gateway_jobs` | `kind` (`unlock`, `reset`), `state` (`queued`, `claimed`, `succeeded`, `failed`, `expired`) | gateway jobs in the store (ended jobs are kept 30 days) |
//! | `latchkey_audit_forwarded_total` | `output` (`syslog`, `webhook`) | audit events delivered to a SIEM output by this instance |
//! | `latchkey_audit_forward_failures_total` | `output` | deliveries that failed (the events stay queued) |
//! | `latchkey_audit_forward_backlog` | `output` | audit events written but not delivered yet (every instance reports the same number: aggregate with `max`) |
//! | `latchkey_directory_mirror_lag_seconds` | | age of the directory mirror's oldest last round (absent before its first full round) |
//! | `latchkey_directory_mirror_usable` | | 1 while identification reads the mirror, 0 while it reads Graph live |
//! | `latchkey_directory_mirror_objects` | `kind` (`users`, `groups`, `roles`, `memberships`) | what the mirror holds |
//!
//! Emails and texts sent or failed are audit events (`notify.*`, method = channel), so they are
//! in `latchkey_audit_events_total`; so are policy reloads (`policy.reload`) and their result.
//!
//! Labels hold only values from fixed sets (route templates, never paths; event types, method
//! kinds and outcomes from the code; Graph collections by name), never a user, an address or an
//! id: the number of series is bounded whatever the traffic (tested). The one exception is the
//! `gateway` label: the names admins gave the gateways they registered. Only audit events this
//! process stores are counted (a command-line tool writes its own).

use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AuditLabels {
    event: String,
    method: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GraphLabels {
    operation: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct StateLabels {
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct GatewayLabels {
    pub gateway: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScopeLabels {
    scope: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct JobLabels {
    pub kind: String,
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutputLabels {
    output: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct KindLabels {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
}

/// The registry and the families the portal records into (a portal part).
pub struct Metrics {
    registry: Registry,
    requests: Family<HttpLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    audit: Family<AuditLabels, Counter>,
    graph: Family<GraphLabels, Counter>,
    graph_latency: Family<OperationLabels, Histogram>,
    graph_retries: Family<OperationLabels, Counter>,
    pub(crate) gateways: Family<StateLabels, Gauge>,
    pub(crate) gateway_age: Family<GatewayLabels, Gauge>,
    store_latency: Family<OperationLabels, Histogram>,
    store_errors: Family<OperationLabels, Counter>,
    throttles: Family<ScopeLabels, Counter>,
    pub(crate) jobs: Family<JobLabels, Gauge>,
    forwarded: Family<OutputLabels, Counter>,
    forward_failures: Family<OutputLabels, Counter>,
    forward_backlog: Family<OutputLabels, Gauge>,
    pub(crate) mirror_lag: Gauge,
    pub(crate) mirror_usable: Gauge,
    pub(crate) mirror_objects: Family<KindLabels, Gauge>,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_string(),
            })
            .set(1);
        registry.register("latchkey_build_info", "The running build", build);
        let requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "latchkey_http_requests",
            "HTTP answers by route template, method and status",
            requests.clone(),
        );
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            // 1 ms to ~16 s.
            Histogram::new(exponential_buckets(0.001, 2.0, 15))
        });
        registry.register(
            "latchkey_http_request_duration_seconds",
            "Time to answer, by route template",
            latency.clone(),
        );
        let audit = Family::<AuditLabels, Counter>::default();
        registry.register(
            "latchkey_audit_events",
            "Audit events as they are stored, by type, method and outcome",
            audit.clone(),
        );
        let graph = Family::<GraphLabels, Counter>::default();
        registry.register(
            "latchkey_graph_requests",
            "Microsoft Graph and token-endpoint attempts by operation and status (none: no answer)",
            graph.clone(),
        );
        let graph_latency = Family::<OperationLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.005, 2.0, 14))
        });
        registry.register(
            "latchkey_graph_request_duration_seconds",
            "Time to Graph's answer, by operation",
            graph_latency.clone(),
        );
        let graph_retries = Family::<OperationLabels, Counter>::default();
        registry.register(
            "latchkey_graph_retries",
            "Graph attempts that repeated a request (after a 429, a 503 or a lost answer)",
            graph_retries.clone(),
        );
        let gateways = Family::<StateLabels, Gauge>::default();
        registry.register(
            "latchkey_gateways",
            "Registered on-premises gateways by state (connected, not_connected, revoked)",
            gateways.clone(),
        );
        let gateway_age = Family::<GatewayLabels, Gauge>::default();
        registry.register(
            "latchkey_gateway_last_poll_age_seconds",
            "Seconds since each live gateway last polled (names are the ones admins registered)",
            gateway_age.clone(),
        );
        let store_latency = Family::<OperationLabels, Histogram>::new_with_constructor(|| {
            // 50 µs to ~13 s (waiting for a pooled connection can take seconds).
            Histogram::new(exponential_buckets(0.000_05, 2.0, 19))
        });
        registry.register(
            "latchkey_store_call_duration_seconds",
            "Time each store call took (statements and waiting for a connection), by operation",
            store_latency.clone(),
        );
        let store_errors = Family::<OperationLabels, Counter>::default();
        registry.register(
            "latchkey_store_call_errors",
            "Store calls that failed, by operation",
            store_errors.clone(),
        );
        let throttles = Family::<ScopeLabels, Counter>::default();
        registry.register(
            "latchkey_throttle_refusals",
            "Attempts a throttle refused, by throttle (verify:client, send:email, fail:code, ...)",
            throttles.clone(),
        );
        let jobs = Family::<JobLabels, Gauge>::default();
        registry.register(
            "latchkey_gateway_jobs",
            "Gateway jobs in the store by kind and state (ended jobs are kept 30 days)",
            jobs.clone(),
        );
        let forwarded = Family::<OutputLabels, Counter>::default();
        registry.register(
            "latchkey_audit_forwarded",
            "Audit events delivered to a SIEM output by this instance",
            forwarded.clone(),
        );
        let forward_failures = Family::<OutputLabels, Counter>::default();
        registry.register(
            "latchkey_audit_forward_failures",
            "Failed deliveries to a SIEM output (the events stay queued and are sent again)",
            forward_failures.clone(),
        );
        let forward_backlog = Family::<OutputLabels, Gauge>::default();
        registry.register(
            "latchkey_audit_forward_backlog",
            "Audit events written but not yet delivered to a SIEM output",
            forward_backlog.clone(),
        );
        let mirror_lag = Gauge::default();
        registry.register(
            "latchkey_directory_mirror_lag_seconds",
            "Age of the directory mirror's oldest last round (absent before the first full round)",
            mirror_lag.clone(),
        );
        let mirror_usable = Gauge::default();
        registry.register(
            "latchkey_directory_mirror_usable",
            "1 while the directory mirror is read (synced, within the lag bound), else 0",
            mirror_usable.clone(),
        );
        let mirror_objects = Family::<KindLabels, Gauge>::default();
        registry.register(
            "latchkey_directory_mirror_objects",
            "Objects in the directory mirror: users, groups, roles, memberships",
            mirror_objects.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            audit,
            graph,
            graph_latency,
            graph_retries,
            gateways,
            gateway_age,
            store_latency,
            store_errors,
            throttles,
            jobs,
            forwarded,
            forward_failures,
            forward_backlog,
            mirror_lag,
            mirror_usable,
            mirror_objects,
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "metrics: cannot encode");
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl latchkey_store::AuditObserver for Metrics {
    fn appended(&self, event: &latchkey_store::AuditEvent) {
        self.audit
            .get_or_create(&AuditLabels {
                event: event.event_type.clone(),
                method: event.method.clone().unwrap_or_default(),
                outcome: event.outcome.as_str().to_string(),
            })
            .inc();
    }
}

impl latchkey_store::CallObserver for Metrics {
    fn call(&self, operation: &'static str, elapsed: std::time::Duration, ok: bool) {
        let labels = OperationLabels {
            operation: operation.to_string(),
        };
        self.store_latency
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
        if !ok {
            self.store_errors.get_or_create(&labels).inc();
        }
    }
    fn throttled(&self, scope: &str) {
        // Scopes are names from the code; kept to their shape all the same, so no label value
        // can ever carry anything else.
        let scope: String = scope
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '-'))
            .take(40)
            .collect();
        self.throttles.get_or_create(&ScopeLabels { scope }).inc();
    }
}

impl latchkey_forward::ForwardObserver for Metrics {
    fn delivered(&self, output: &'static str, events: u64) {
        self.forwarded
            .get_or_create(&OutputLabels {
                output: output.to_string(),
            })
            .inc_by(events);
    }
    fn failed(&self, output: &'static str) {
        self.forward_failures
            .get_or_create(&OutputLabels {
                output: output.to_string(),
            })
            .inc();
    }
    fn backlog(&self, output: &'static str, events: u64) {
        self.forward_backlog
            .get_or_create(&OutputLabels {
                output: output.to_string(),
            })
            .set(i64::try_from(events).unwrap_or(i64::MAX));
    }
}

impl latchkey_graph::observe::GraphObserver for Metrics {
    fn attempt(&self, a: &latchkey_graph::observe::Attempt<'_>) {
        let operation = a.operation.to_string();
        let status = a
            .status
            .map_or_else(|| "none".to_string(), |s| s.to_string());
        self.graph
            .get_or_create(&GraphLabels {
                operation: operation.clone(),
                status,
            })
            .inc();
        // A `$batch` part is counted with its own status, but its time and retries are the
        // batch's, already recorded under `POST /$batch`.
        if a.part {
            return;
        }
        self.graph_latency
            .get_or_create(&OperationLabels {
                operation: operation.clone(),
            })
            .observe(a.elapsed.as_secs_f64());
        if a.retry {
            self.graph_retries
                .get_or_create(&OperationLabels { operation })
                .inc();
        }
    }
}

/// Middleware: counts and times every answer under its route template.
pub async fn record(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let metrics = req
        .app_data::<web::Data<crate::portal::Portal>>()
        .and_then(|p| p.part::<Metrics>());
    let Some(metrics) = metrics else {
        return next.call(req).await;
    };
    // The template the request matched (`/verify/{kind}`), never the path itself (paths hold
    // tokens and are unbounded).
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_string());
    let method = match req.method().as_str() {
        m @ ("GET" | "POST" | "HEAD") => m.to_string(),
        _ => "other".to_string(),
    };
    let started = std::time::Instant::now();
    let res = next.call(req).await?;
    let status = res.status().as_u16();
    metrics
        .latency
        .get_or_create(&RouteLabels {
            route: route.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    metrics
        .requests
        .get_or_create(&HttpLabels {
            route,
            method,
            status,
        })
        .inc();
    Ok(res)
}

/// Serves `GET /metrics` on `listen` until the process stops.
pub fn serve(metrics: Arc<Metrics>, listen: &str) -> anyhow::Result<actix_web::dev::Server> {
    let server = actix_web::HttpServer::new(move || {
        let metrics = Arc::clone(&metrics);
        actix_web::App::new().route(
            "/metrics",
            web::get().to(move || {
                let metrics = Arc::clone(&metrics);
                async move {
                    HttpResponse::Ok()
                        .content_type("text/plain; version=0.0.4; charset=utf-8")
                        .body(metrics.render())
                }
            }),
        )
    })
    .workers(1)
    .disable_signals()
    .bind(listen)
    .map_err(|e| anyhow::anyhow!("key `metrics.listen` ({listen}): {e}"))?
    .run();
    Ok(server)
}
