//! The gateway API: `GET /gateway/v1/jobs/next` (long-poll) and `POST
//! /gateway/v1/jobs/{id}/result`. Bearer-authenticated per gateway; every request counts against
//! the client address, failed credentials against a tighter limit; failures are audited.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_jobs::{
    Ack, CAPABILITIES_HEADER, JobKind, JobOffer, JobOutcome, JobReport, MAX_DETAIL,
    MAX_WAIT_SECONDS, NEXT_PATH,
};
use latchkey_store::{AuditEvent, FinishOutcome, Gateway, Limit, Outcome, ThrottleKey};
use serde::Deserialize;

use super::credential;
use crate::portal::Portal;
use latchkey_selfservice::flow::Unrecorded as _;

/// Every gateway API request from one address (a gateway polls about twice a minute).
const API_LIMIT: Limit = Limit::new(240, Duration::from_secs(600));
/// Wrong credentials from one address before it gets 429 instead of 401.
const AUTH_FAILURE_LIMIT: Limit = Limit::new(10, Duration::from_secs(600));
/// How often a waiting long-poll looks for a new job.
const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// Long-poll length when the gateway does not ask for one.
const DEFAULT_WAIT_SECONDS: u64 = 25;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(NEXT_PATH, web::get().to(next))
        .route("/gateway/v1/jobs/{id}/result", web::post().to(report));
}

fn plain(status: StatusCode, text: &'static str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/plain; charset=utf-8")
        .body(text)
}

async fn audit(
    portal: &Portal,
    event_type: &str,
    actor: String,
    job: Option<&latchkey_store::Job>,
    outcome: Outcome,
    reason: Option<String>,
    details: serde_json::Value,
) -> bool {
    let event = AuditEvent {
        at: portal.services.clock.now(),
        correlation_id: job.map_or_else(|| uuid_like(portal), |j| j.correlation_id.clone()),
        actor,
        subject: job.map(|j| j.subject),
        event_type: event_type.to_string(),
        method: job.map(|j| j.kind.as_str().to_string()),
        outcome,
        reason,
        details,
    };
    match portal.services.store.append_audit(&event).await {
        Ok(_) => true,
        Err(e) => {
            tracing::error!(error = %e, "gateway API: cannot write the audit event");
            false
        }
    }
}

/// A correlation id for events that belong to no flow (a refused request).
fn uuid_like(portal: &Portal) -> String {
    let t = portal.services.clock.now().unix_timestamp_nanos();
    format!("gateway-{t:x}")
}

/// The authenticated gateway of this request, or the response to send instead.
async fn authenticate(portal: &Portal, req: &HttpRequest) -> Result<Gateway, HttpResponse> {
    let s = &portal.services;
    let now = s.clock.now();
    let client = s
        .proxies
        .client_ip(req)
        .map_or_else(|| "unknown".to_string(), |ip| ip.to_string());
    let unavailable = |e: latchkey_store::StoreError| {
        tracing::error!(error = %e, "gateway API: store unavailable");
        plain(StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    };
    let allowed = s
        .store
        .hit(&ThrottleKey::new("gateway-api", &client), &[API_LIMIT], now)
        .await
        .map_err(unavailable)?;
    if !allowed.is_allowed() {
        return Err(plain(StatusCode::TOO_MANY_REQUESTS, "too many requests"));
    }
    let presented = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(credential::parse);
    let gateway = match &presented {
        Some((id, hash)) => s
            .store
            .authenticate_gateway(id, hash)
            .await
            .map_err(unavailable)?,
        None => None,
    };
    if let Some(g) = gateway {
        return Ok(g);
    }
    // Nothing of the presented credential is logged or audited, only the address.
    // Refused whether or not this is recorded (`audit` logs a failure to write it).
    let _ = audit(
        portal,
        "gateway.auth",
        "anonymous".into(),
        None,
        Outcome::Denied,
        Some("missing or wrong gateway credential".into()),
        serde_json::json!({ "client": client }),
    )
    .await;
    tracing::warn!(%client, "gateway API: refused a request with a missing or wrong credential");
    let failures = s
        .store
        .hit(
            &ThrottleKey::new("gateway-auth-failure", &client),
            &[AUTH_FAILURE_LIMIT],
            now,
        )
        .await
        .map_err(unavailable)?;
    if !failures.is_allowed() {
        return Err(plain(StatusCode::TOO_MANY_REQUESTS, "too many requests"));
    }
    Err(HttpResponse::Unauthorized()
        .insert_header((WWW_AUTHENTICATE, "Bearer realm=\"latchkey-gateway\""))
        .content_type("text/plain; charset=utf-8")
        .body("unauthorized"))
}

#[derive(Deserialize)]
struct NextQuery {
    wait: Option<u64>,
}

/// `GET /gateway/v1/jobs/next?wait=S`: the next job for this gateway, waiting up to `S` seconds.
async fn next(
    req: HttpRequest,
    portal: web::Data<Portal>,
    query: web::Query<NextQuery>,
) -> HttpResponse {
    let gateway = match authenticate(&portal, &req).await {
        Ok(g) => g,
        Err(r) => return r,
    };
    let kinds: Vec<JobKind> = req
        .headers()
        .get(CAPABILITIES_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(JobKind::parse_list)
        .unwrap_or_default();
    // The header only narrows what the operator allowed at registration (the store enforces it
    // again when claiming): a gateway cannot grant itself reset jobs.
    let kinds: Vec<String> = kinds
        .iter()
        .map(|k| k.as_str().to_string())
        .filter(|k| gateway.allowed_kinds.contains(k))
        .collect();
    let s = &portal.services;
    let start = s.clock.now();
    if let Err(e) = s.store.gateway_seen(&gateway.id, &kinds, start).await {
        tracing::error!(error = %e, "gateway API: cannot record the poll");
        return plain(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    }
    s.store.expire_jobs(start).await.or_log();
    let wait = Duration::from_secs(
        query
            .wait
            .unwrap_or(DEFAULT_WAIT_SECONDS)
            .min(MAX_WAIT_SECONDS),
    );
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let now = s.clock.now();
        match s.store.claim_job(&gateway.id, &kinds, now).await {
            Ok(Some(claimed)) => return offer(&portal, &gateway, claimed).await,
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, "gateway API: cannot claim a job");
                return plain(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
            }
        }
        if tokio::time::Instant::now() + POLL_INTERVAL > deadline {
            return HttpResponse::NoContent().finish();
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

async fn offer(
    portal: &Portal,
    gateway: &Gateway,
    claimed: latchkey_store::ClaimedJob,
) -> HttpResponse {
    let job = &claimed.job;
    let audited = audit(
        portal,
        "gateway.job.claimed",
        format!("gateway:{}", gateway.name),
        Some(job),
        Outcome::Success,
        None,
        serde_json::json!({ "job": job.id, "gateway": gateway.id }),
    )
    .await;
    if !audited {
        // The job is claimed and its secret gone; without an audit record it must not run.
        return plain(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    }
    tracing::info!(job = %job.id, kind = job.kind.as_str(), gateway = %gateway.name, "gateway took a job");
    let offer = JobOffer {
        id: job.id.clone(),
        kind: job.kind,
        // The account only: what the portal keeps for after the change never leaves it.
        target: job.target.account.clone(),
        not_after_ms: i64::try_from(job.expires_at.unix_timestamp_nanos() / 1_000_000)
            .unwrap_or(i64::MAX),
        new_password: claimed.secret.map(|s| s.expose().clone()),
        must_change: job.target.must_change,
        correlation_id: job.correlation_id.clone(),
    };
    HttpResponse::Ok().json(offer)
}

/// The report with its free text bounded and stripped of control characters (it goes to the
/// audit trail).
fn bounded(mut report: JobReport) -> JobReport {
    let clean = |s: &str| -> String {
        s.chars()
            .filter(|c| !c.is_control())
            .take(MAX_DETAIL)
            .collect()
    };
    if let JobOutcome::Failed { detail, .. } = &mut report.outcome {
        *detail = clean(detail);
    }
    report.object_dn = report.object_dn.map(|dn| clean(&dn));
    report
}

/// A first report of job `id`: audited, then for a success the steps after the change. `false`
/// when the audit event could not be written (the agent reports again).
async fn recorded(
    portal: &web::Data<Portal>,
    gateway: &Gateway,
    id: &str,
    report: &JobReport,
) -> bool {
    let s = &portal.services;
    let job = match s.store.job(id, s.clock.now()).await {
        Ok(job) => job,
        Err(e) => {
            // Loudly: a reset whose steps after the change cannot run without the row.
            tracing::error!(error = %e, job = %id, "gateway API: a reported job cannot be read back");
            None
        }
    };
    let succeeded = report.outcome == JobOutcome::Succeeded;
    let (outcome, reason) = match &report.outcome {
        JobOutcome::Succeeded => (Outcome::Success, None),
        JobOutcome::Failed { reason, detail } => (
            if *reason == latchkey_jobs::FailureReason::DirectoryUnavailable {
                Outcome::Error
            } else {
                Outcome::Failure
            },
            Some(format!("{}: {detail}", reason.as_str())),
        ),
    };
    tracing::info!(job = %id, gateway = %gateway.name, succeeded, "gateway reported a job");
    let audited = audit(
        portal,
        "gateway.job.result",
        format!("gateway:{}", gateway.name),
        job.as_ref(),
        outcome,
        reason,
        serde_json::json!({ "job": id, "object_dn": report.object_dn }),
    )
    .await;
    if !audited {
        return false;
    }
    if let (true, Some(job)) = (succeeded, job) {
        after_success(portal, job).await;
    }
    true
}

/// `POST /gateway/v1/jobs/{id}/result`.
async fn report(
    req: HttpRequest,
    portal: web::Data<Portal>,
    path: web::Path<String>,
    body: web::Json<JobReport>,
) -> HttpResponse {
    let gateway = match authenticate(&portal, &req).await {
        Ok(g) => g,
        Err(r) => return r,
    };
    let id = path.into_inner();
    let report = bounded(body.into_inner());
    let s = &portal.services;
    let now = s.clock.now();
    let succeeded = report.outcome == JobOutcome::Succeeded;
    let value = match serde_json::to_value(&report) {
        Ok(v) => v,
        Err(_) => return plain(StatusCode::BAD_REQUEST, "bad report"),
    };
    let finished = match s
        .store
        .finish_job(&id, &gateway.id, succeeded, &value, now)
        .await
    {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(error = %e, "gateway API: cannot record a result");
            return plain(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
        }
    };
    match finished {
        FinishOutcome::Recorded => {
            if !recorded(&portal, &gateway, &id, &report).await {
                return plain(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
            }
            HttpResponse::Ok().json(Ack { id, recorded: true })
        }
        FinishOutcome::AlreadyRecorded => {
            // A repeated report: the first one may have stopped before the steps after the
            // change (its audit or job read failed, or the agent hung up meanwhile). Offer them
            // again; the store's claim lets them run only once.
            if succeeded && let Ok(Some(job)) = s.store.job(&id, now).await {
                after_success(&portal, job).await;
            }
            HttpResponse::Ok().json(Ack {
                id,
                recorded: false,
            })
        }
        FinishOutcome::Conflict => plain(StatusCode::CONFLICT, "job already finished"),
        FinishOutcome::NotFound => plain(StatusCode::NOT_FOUND, "no such job"),
    }
}

/// The steps after a password change done by a gateway, unless the waiting page ran them. On a
/// task of their own: an agent hanging up mid-request must not cancel them halfway (the claim
/// would be taken and the rest never done); the reply still waits for them.
async fn after_success(portal: &web::Data<Portal>, job: latchkey_store::Job) {
    let portal = portal.clone();
    let steps = actix_web::rt::spawn(async move {
        latchkey_selfservice::gateway::reported(&portal.services, &job).await
    });
    if steps.await.is_err() {
        tracing::error!("gateway API: the steps after a reset stopped unexpectedly");
    }
}
