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
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Serialize;

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
    /// The last answer and when it was made (monotonic time: a cache's age, not a date). Held
    /// across an assessment, so probes that arrive meanwhile wait for it and share it.
    last: tokio::sync::Mutex<Option<(Instant, Report)>>,
}

impl Readiness {
    pub fn new(key_file: Option<PathBuf>) -> Self {
        Self {
            key_file,
            last: tokio::sync::Mutex::new(None),
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
    let report = match portal.part::<Readiness>() {
        Some(part) => {
            // One assessment at a time; the answer is stamped when it is made.
            let mut last = part.last.lock().await;
            match &*last {
                Some((at, report)) if at.elapsed() < CACHE => report.clone(),
                _ => {
                    let report = assess(&portal, part.key_file.clone()).await;
                    *last = Some((Instant::now(), report.clone()));
                    report
                }
            }
        }
        None => assess(&portal, None).await,
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
    // The store and Graph are asked together: the answer takes the slower of the two.
    let (store, graph) = tokio::join!(
        tokio::time::timeout(CHECK_TIMEOUT, s.store.ping()),
        tokio::time::timeout(CHECK_TIMEOUT, s.directory.ready())
    );
    let store = match store {
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
    let graph = match graph {
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
    let key = key_file.and_then(|path| match std::fs::File::open(&path) {
        Err(e) => Some(format!("the key file cannot be read ({})", e.kind())),
        Ok(f) if !f.metadata().is_ok_and(|m| m.is_file()) => {
            Some("the key file is not a file".to_string())
        }
        Ok(_) => None,
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
