//! Unlock without a password change, for a fully verified flow: the page only (the unlock is
//! `latchkey_selfservice::unlock`).
//!
//! Cloud accounts have no unlock operation in Graph: smart lockout ends by itself, and a reset
//! ends it at once. What the portal can do is clear an Identity Protection risk flag, which blocks
//! sign-in just like a lock. Synced accounts are locked in on-premises AD: when an on-premises
//! gateway that can unlock is connected, the portal queues an unlock job (lockoutTime=0, done by
//! the gateway with its service account), waits a bounded time and reports the real outcome;
//! when none is connected it says so plainly.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_policy::Action;
use latchkey_selfservice::unlock::{self, UnlockOutcome, UnlockResult};

use crate::act;
use crate::error::WebError;
use crate::extract::Posted;
use crate::flow::{self, CsrfForm, Step};
use crate::portal::Portal;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/unlock", web::post().to(submit));
}

async fn submit(
    req: HttpRequest,
    portal: web::Data<Portal>,
    posted: Posted<CsrfForm>,
) -> Result<HttpResponse, WebError> {
    act::to_completion(submit_now(req, portal, posted.step)).await
}

async fn submit_now(
    req: HttpRequest,
    portal: web::Data<Portal>,
    step: Step,
) -> Result<HttpResponse, WebError> {
    let (acting, lang) = act::claim(&portal, step, Action::Unlock).await?;
    let (result, risk_cleared) = match unlock::unlock(&portal.services, acting).await {
        UnlockOutcome::Done {
            result,
            risk_cleared,
            recorded: Ok(()),
        } => (result, risk_cleared),
        UnlockOutcome::Done {
            recorded: Err(e), ..
        } => return Err(WebError::ended_store(lang, &e)),
        UnlockOutcome::TryAgain(recorded) => return Err(WebError::try_again(lang, recorded)),
        UnlockOutcome::Unknown => {
            return Err(WebError::ended(
                StatusCode::SERVICE_UNAVAILABLE,
                "error_generic",
                lang,
            ));
        }
    };
    let catalogs = portal.templates.catalogs();
    let mut paragraphs = Vec::new();
    if risk_cleared {
        paragraphs.push(catalogs.get(lang, "unlock_risk_cleared").to_string());
    }
    let key = match result {
        UnlockResult::Cloud => "unlock_cloud",
        UnlockResult::OnPremisesDone => "unlock_onprem_done",
        UnlockResult::OnPremisesPending => "unlock_onprem_pending",
        UnlockResult::OnPremisesUnavailable => "unlock_onprem_unavailable",
        UnlockResult::OnPremisesFailed => "unlock_onprem_failed",
        UnlockResult::OnPremisesNotPermitted => "unlock_onprem_not_permitted",
    };
    paragraphs.push(catalogs.get(lang, key).to_string());
    Ok(flow::result_page(
        &portal,
        &req,
        lang,
        "unlock_title",
        &paragraphs,
    ))
}
