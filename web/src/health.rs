//! Health endpoints for load balancers and orchestrators:
//! - `GET /healthz`: the process answers (liveness). Always 200 while it runs.
//! - `GET /readyz`: it can serve requests (readiness): the store answers, a policy set is
//!   loaded, an access token for Microsoft Graph can be had, the at-rest key file is readable.
//!   200 with every check, or 503 naming the failing ones. Never a secret: each check says only
//!   what failed and, for Graph, the identity platform's error code.
//!
//! The answer is computed at most once per [`CACHE`] and shared: a balancer polling every second
//! costs one store statement per window, and a token endpoint that is down is asked once per
//! window, not once per probe (the Graph client itself keeps a valid token cached).

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Serialize;
use time::OffsetDateTime;

use crate::portal::Portal;

/// How long one readiness answer is reused.
pub const CACHE: Duration = Duration::from_secs(5);
/// The longest one check may take before it counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz));
}

/// What readiness checks beyond the shared services (a portal part; without it, no key check).
pub struct Readiness {
    key_file: Option<PathBuf>,
    last: Mutex<Option<(OffsetDateTime, Report)>>,
}

impl Readiness {
    pub fn new(key_file: Option<PathBuf>) -> Self {
        Self {
            key_file,
            last: Mutex::new(None),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
struct Check {
    name: &'static str,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    problem: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
struct Report {
    ready: bool,
    checks: Vec<Check>,
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("ok")
}

async fn readyz(portal: web::Data<Portal>) -> HttpResponse {
    let part = portal.part::<Readiness>();
    let now = portal.services.clock.now();
    let cached = part.as_ref().and_then(|p| {
        let last = p.last.lock().unwrap_or_else(|e| e.into_inner());
        last.as_ref()
            .filter(|(at, _)| now - *at < CACHE && now >= *at)
            .map(|(_, r)| r.clone())
    });
    let report = match cached {
        Some(r) => r,
        None => {
            let key_file = part.as_ref().and_then(|p| p.key_file.clone());
            let report = assess(&portal, key_file).await;
            if let Some(p) = &part {
                *p.last.lock().unwrap_or_else(|e| e.into_inner()) = Some((now, report.clone()));
            }
            report
        }
    };
    let status = if report.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    HttpResponse::build(status)
        .insert_header(("Cache-Control", "no-store"))
        .json(report)
}

async fn assess(portal: &Portal, key_file: Option<PathBuf>) -> Report {
    let s = &portal.services;
    let store = match tokio::time::timeout(CHECK_TIMEOUT, s.store.ping()).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: the store does not answer");
            Some("the store does not answer".to_string())
        }
        Err(_) => Some(format!("the store did not answer within {CHECK_TIMEOUT:?}")),
    };
    let policies = s
        .policies()
        .policies()
        .is_empty()
        .then(|| "no policy is loaded".to_string());
    let graph = match tokio::time::timeout(CHECK_TIMEOUT, s.directory.ready()).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: no Microsoft Graph token");
            Some(match e.code() {
                Some(code) => format!("no access token for Microsoft Graph ({code})"),
                None => "no access token for Microsoft Graph".to_string(),
            })
        }
        Err(_) => Some(format!(
            "no access token for Microsoft Graph within {CHECK_TIMEOUT:?}"
        )),
    };
    let key = key_file.and_then(|path| {
        std::fs::File::open(&path)
            .err()
            .map(|e| format!("the key file cannot be read ({})", e.kind()))
    });
    let checks: Vec<Check> = [
        ("store", store),
        ("policies", policies),
        ("graph", graph),
        ("key_file", key),
    ]
    .into_iter()
    .map(|(name, problem)| Check {
        name,
        ok: problem.is_none(),
        problem,
    })
    .collect();
    Report {
        ready: checks.iter().all(|c| c.ok),
        checks,
    }
}
