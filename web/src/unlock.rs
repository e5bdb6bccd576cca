//! Unlock without a password change, for a fully verified flow: the page only (the unlock is
//! `latchkey_selfservice::unlock`).
//!
//! Cloud accounts have no unlock operation in Graph: smart lockout ends by itself after the
//! tenant's lockout duration, and a reset ends it at once. The page says so with the tenant's
//! numbers and offers "Reset my password" in the same flow (the claim was given back, so no second
//! verification). Where the policy says so, an Identity Protection risk flag, which blocks
//! sign-in just like a lock, is dismissed. Synced accounts are locked in on-premises AD: when an on-premises
//! gateway that can unlock is connected, the portal queues an unlock job (lockoutTime=0, done by
//! the gateway with its service account), waits a bounded time and reports the real outcome;
//! when none is connected it says so plainly.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_policy::Action;
use latchkey_selfservice::unlock::{self, CloudLockout, UnlockOutcome, UnlockResult};

use crate::act;
use crate::error::WebError;
use crate::extract::Posted;
use crate::flow::{self, CsrfForm, NextLink, RefusalPage as _, Step};
use crate::i18n::Lang;
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
    let may_reset = acting.policy.allows(Action::Reset);
    let (result, risk_cleared) = match unlock::unlock(&portal.services, acting).await {
        UnlockOutcome::NothingToUnlock {
            lockout,
            recorded: Ok(()),
        } => return Ok(nothing_to_unlock(&portal, &req, lang, lockout, may_reset)),
        UnlockOutcome::NothingToUnlock {
            recorded: Err(e), ..
        } => return Err(WebError::Store(lang, e)),
        UnlockOutcome::Done {
            result,
            risk_cleared,
            recorded: Ok(()),
        } => (result, risk_cleared),
        UnlockOutcome::Done {
            recorded: Err(e), ..
        } => return Err(WebError::ended_store(lang, &e)),
        UnlockOutcome::TryAgain(recorded) => return Err(WebError::try_again(lang, recorded)),
        UnlockOutcome::Throttled(refusal) => {
            let message = refusal.message(&portal, lang);
            let mut r = flow::keep_page(&portal, &req, lang, "unlock_title", &[message], None);
            *r.status_mut() = refusal.status();
            return Ok(r);
        }
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
        UnlockResult::Cloud => "unlock_cloud_after_risk",
        UnlockResult::OnPremisesDone => "unlock_onprem_done",
        UnlockResult::OnPremisesPending => "unlock_onprem_pending",
        UnlockResult::OnPremisesUnavailable => "unlock_onprem_unavailable",
        UnlockResult::OnPremisesFailed => "unlock_onprem_failed",
        UnlockResult::OnPremisesNotPermitted => "unlock_onprem_not_permitted",
    };
    paragraphs.push(catalogs.get(lang, key).to_string());
    if matches!(result, UnlockResult::OnPremisesDone)
        && let Some(kiosk) = crate::kiosk::active(&portal, &req)
    {
        paragraphs.push(kiosk.signin_paragraph(&portal, lang, crate::kiosk::Finished::Unlock));
    }
    Ok(flow::result_page(
        &portal,
        &req,
        lang,
        "unlock_title",
        &paragraphs,
    ))
}

/// A cloud account: what Entra does (with the tenant's own numbers) and, when the policy allows
/// it, the way out now — a new password, in the same flow. The flow's cookie stays.
fn nothing_to_unlock(
    portal: &Portal,
    req: &HttpRequest,
    lang: Lang,
    lockout: CloudLockout,
    may_reset: bool,
) -> HttpResponse {
    let catalogs = portal.templates.catalogs();
    let minutes = u64::from(lockout.duration_seconds).div_ceil(60).max(1);
    let mut paragraphs = vec![
        catalogs
            .get(lang, "unlock_cloud")
            .replace("{threshold}", &lockout.threshold.to_string())
            .replace(
                "{duration}",
                &catalogs.plural(lang, "duration_minutes", minutes),
            ),
        catalogs.get(lang, "unlock_cloud_unknown").to_string(),
    ];
    let link = may_reset.then(|| NextLink {
        href: "/reset".into(),
        label: catalogs.get(lang, "unlock_cloud_reset").to_string(),
    });
    if !may_reset {
        paragraphs.push(catalogs.get(lang, "unlock_cloud_wait").to_string());
    }
    flow::keep_page(portal, req, lang, "unlock_title", &paragraphs, link)
}
