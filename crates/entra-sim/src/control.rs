//! `/_sim/` control endpoints for scripts driving the standalone binary:
//! `GET /_sim/requests` (the request record as JSON), `DELETE /_sim/requests`,
//! `POST /_sim/faults` (body: see [`crate::faults::FaultWire`]), `DELETE /_sim/faults`,
//! `POST /_sim/signin` (`{"upn","password"}` → `{"outcome","aadsts"}`), `GET /_sim/health`,
//! `GET` / `PUT /_sim/fido2-policy` (the FIDO2 method policy, as the fixture's `[fido2_policy]`
//! keys in JSON; missing keys take their defaults), `GET` / `PUT /_sim/delta` (the `[delta]`
//! keys in JSON: `page_size`, `members_per_object`, `token_lifetime_days`, `expired_status`),
//! `POST /_sim/delta/reset` (every issued delta token is stale: its next use gets the resync
//! answer; 204), `POST /_sim/churn` (`{"count": N, "seed": S}` → the
//! [`crate::state::churn::ChurnSummary`] as JSON).

use actix_web::HttpResponse;
use actix_web::web::{self, Data, Json};
use serde::Deserialize;
use serde_json::json;

use crate::app::Shared;
use crate::faults::{Fault, FaultWire};
use crate::fixture::{DeltaFixture, Fido2PolicyFixture};

async fn requests(shared: Data<Shared>) -> HttpResponse {
    HttpResponse::Ok().json(shared.recorder.all())
}

async fn clear_requests(shared: Data<Shared>) -> HttpResponse {
    shared.recorder.clear();
    HttpResponse::NoContent().finish()
}

async fn add_fault(shared: Data<Shared>, body: Json<FaultWire>) -> HttpResponse {
    match Fault::try_from(body.into_inner()) {
        Ok(f) => {
            shared.faults.add(f);
            HttpResponse::NoContent().finish()
        }
        Err(e) => HttpResponse::BadRequest().json(json!({ "error": e })),
    }
}

async fn clear_faults(shared: Data<Shared>) -> HttpResponse {
    shared.faults.clear();
    HttpResponse::NoContent().finish()
}

#[derive(Deserialize)]
struct SignIn {
    upn: String,
    password: String,
}

async fn sign_in(shared: Data<Shared>, body: Json<SignIn>) -> HttpResponse {
    let now = shared.clock.now();
    let outcome = shared.state().sign_in(&body.upn, &body.password, now);
    HttpResponse::Ok().json(json!({ "outcome": outcome, "aadsts": outcome.aadsts() }))
}

async fn fido2_policy(shared: Data<Shared>) -> HttpResponse {
    HttpResponse::Ok().json(shared.state().fido2_policy.clone())
}

async fn set_fido2_policy(shared: Data<Shared>, body: Json<Fido2PolicyFixture>) -> HttpResponse {
    let policy = body.into_inner();
    match policy.validate() {
        Ok(()) => {
            shared.state().fido2_policy = policy;
            HttpResponse::NoContent().finish()
        }
        Err(e) => HttpResponse::BadRequest().json(json!({ "error": e.to_string() })),
    }
}

async fn delta_settings(shared: Data<Shared>) -> HttpResponse {
    HttpResponse::Ok().json(shared.state().delta.clone())
}

async fn set_delta_settings(shared: Data<Shared>, body: Json<DeltaFixture>) -> HttpResponse {
    let d = body.into_inner();
    match d.validate() {
        Ok(()) => {
            shared.state().delta = d;
            HttpResponse::NoContent().finish()
        }
        Err(e) => HttpResponse::BadRequest().json(json!({ "error": e.to_string() })),
    }
}

async fn reset_delta(shared: Data<Shared>) -> HttpResponse {
    shared.state().changes.epoch += 1;
    HttpResponse::NoContent().finish()
}

#[derive(Deserialize)]
struct Churn {
    count: usize,
    #[serde(default)]
    seed: u64,
}

async fn churn(shared: Data<Shared>, body: Json<Churn>) -> HttpResponse {
    let now = shared.clock.now();
    let summary = shared.state().churn(body.count, body.seed, now);
    HttpResponse::Ok().json(summary)
}

async fn health(shared: Data<Shared>) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "status": "ok",
        "base_url": shared.base_url,
        "tenant_id": shared.state().tenant_id.to_string(),
    }))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/_sim")
            .route("/requests", web::get().to(requests))
            .route("/requests", web::delete().to(clear_requests))
            .route("/faults", web::post().to(add_fault))
            .route("/faults", web::delete().to(clear_faults))
            .route("/signin", web::post().to(sign_in))
            .route("/fido2-policy", web::get().to(fido2_policy))
            .route("/fido2-policy", web::put().to(set_fido2_policy))
            .route("/delta", web::get().to(delta_settings))
            .route("/delta", web::put().to(set_delta_settings))
            .route("/delta/reset", web::post().to(reset_delta))
            .route("/churn", web::post().to(churn))
            .route("/health", web::get().to(health)),
    );
}
