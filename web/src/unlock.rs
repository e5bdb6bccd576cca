//! Unlock without a password change, for a fully verified flow.
//!
//! Cloud accounts have no unlock operation in Graph: smart lockout ends by itself, and a reset
//! ends it at once. What the portal can do is clear an Identity Protection risk flag, which blocks
//! sign-in just like a lock. Synced accounts are locked in on-premises AD: when an on-premises
//! gateway that can unlock is connected, the portal queues an unlock job (lockoutTime=0, done by
//! the gateway with its service account), waits a bounded time and reports the real outcome;
//! when none is connected it says so plainly.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_jobs::{FailureReason, JobKind, Target};
use latchkey_policy::Action;
use latchkey_store::Outcome;

use crate::act;
use crate::app::Portal;
use crate::flow::Step;
use crate::gateway::jobs::{self, Waited};
use crate::verification::CsrfForm;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/unlock", web::post().to(unlock));
}

async fn unlock(
    req: HttpRequest,
    portal: web::Data<Portal>,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    act::to_completion(unlock_now(req, portal, form.into_inner())).await
}

async fn unlock_now(req: HttpRequest, portal: web::Data<Portal>, form: CsrfForm) -> HttpResponse {
    let acting = match act::claim(&portal, &req, &form.csrf, Action::Unlock).await {
        Ok(a) => a,
        Err(response) => return response,
    };
    // Once claimed, the change and the steps after it get a Graph budget of their own: they
    // must not be cut short by what the checks before them spent.
    let budget = portal.services.graph_budget;
    latchkey_graph::deadline::fresh(budget, unlock_claimed(&portal, &req, acting)).await
}

/// [`unlock_now`] once the flow is claimed.
async fn unlock_claimed(portal: &Portal, req: &HttpRequest, acting: act::Acting) -> HttpResponse {
    let (lang, subject) = (acting.step.lang, acting.step.flow.subject);
    let started = acting
        .audit(portal, "unlock", Outcome::Started, "unlock requested")
        .await;
    if started.is_err() {
        return acting.retry_page(portal, req, started).await;
    }
    // On-premises first: when nothing could be queued, nothing has changed yet (not even the
    // risk flag below), so the verification may be used again.
    let on_premises = if acting.step.data.synced {
        match on_premises(portal, &acting.step).await {
            OnPremises::Answer(key, outcome, reason) => Some((key, outcome, reason)),
            OnPremises::NotQueued => {
                let audited = acting
                    .audit(portal, "unlock", Outcome::Error, "gateway: nothing queued")
                    .await;
                return acting.retry_page(portal, req, audited).await;
            }
            // A job may exist: this verification is spent.
            OnPremises::Unknown => {
                if let Err(e) = acting
                    .audit(
                        portal,
                        "unlock",
                        Outcome::Error,
                        "gateway job: state unknown",
                    )
                    .await
                {
                    tracing::error!(error = %e, "unlock: cannot audit an unknown job state");
                }
                acting.finish(portal).await;
                let page =
                    portal.error_page(req, lang, StatusCode::SERVICE_UNAVAILABLE, "error_generic");
                return crate::flow::with_cleared_cookie(portal, page);
            }
        }
    } else {
        None
    };
    let catalogs = portal.templates.catalogs();
    let dir = &portal.services.directory;
    // A budget of its own: the gateway's wait above may have taken most of the claim's.
    let dismissal = async {
        match dir.is_at_risk(&subject).await {
            Ok(true) => dir.dismiss_risk(&subject).await.is_ok(),
            // Identity Protection needs Entra ID P2 and is throttled hard; not knowing is not
            // fatal.
            Ok(false) | Err(_) => false,
        }
    };
    let cleared = latchkey_graph::deadline::fresh(portal.services.graph_budget, dismissal).await;
    let mut paragraphs = Vec::new();
    if cleared {
        paragraphs.push(catalogs.get(lang, "unlock_risk_cleared").to_string());
    }
    let (message_key, outcome, reason) = match on_premises {
        Some(answer) => answer,
        None if cleared => (
            "unlock_cloud",
            Outcome::Success,
            "risk dismissed".to_string(),
        ),
        None => (
            "unlock_cloud",
            Outcome::Success,
            "cloud lockout clears by itself".to_string(),
        ),
    };
    paragraphs.push(catalogs.get(lang, message_key).to_string());
    let audited = acting.audit(portal, "unlock", outcome, &reason).await;
    if outcome == Outcome::Success {
        crate::security_contacts::tell(
            portal,
            &acting.policy,
            latchkey_notify::ContactAction::AccountUnlock,
            &subject,
            &acting.step.data,
        )
        .await;
    }
    // One verification, one change: the flow ends whatever the outcome.
    acting.finish(portal).await;
    if let Err(e) = audited {
        return crate::flow::ended_unavailable(portal, req, lang, &e);
    }
    crate::flow::result_page(portal, req, lang, "unlock_title", &paragraphs)
}

/// What the on-premises unlock came to.
enum OnPremises {
    /// (message key, audit outcome, audit reason).
    Answer(&'static str, Outcome, String),
    /// A fault before any job was queued: nothing happened.
    NotQueued,
    /// A fault after the job may have been queued.
    Unknown,
}

/// Unlock in on-premises AD through the gateway.
async fn on_premises(portal: &Portal, step: &Step) -> OnPremises {
    match jobs::connected(portal, JobKind::Unlock).await {
        Ok(true) => {}
        Ok(false) => {
            return OnPremises::Answer(
                "unlock_onprem_unavailable",
                Outcome::Denied,
                "on-premises unlock needs the gateway: none connected".into(),
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "unlock: cannot read the gateways");
            return OnPremises::NotQueued;
        }
    }
    // The on-premises account as Entra Connect synced it, read now (not from the flow), so a
    // rename since identification is followed.
    let user = match portal.services.directory.user(&step.flow.subject).await {
        Ok(u) => u,
        Err(e) => {
            tracing::error!(error = %e, "unlock: cannot read the user");
            return OnPremises::NotQueued;
        }
    };
    let Some(sam) = user.on_premises_sam_account_name.filter(|s| !s.is_empty()) else {
        return OnPremises::Answer(
            "unlock_onprem_failed",
            Outcome::Error,
            "synced user without onPremisesSamAccountName".into(),
        );
    };
    let request = jobs::Request {
        kind: JobKind::Unlock,
        subject: step.flow.subject,
        target: Target {
            sam_account_name: sam,
            domain: user.on_premises_domain_name,
            allow_privileged: crate::gateway::reset::allow_privileged(portal, &step.data),
        },
        new_password: None,
        must_change: false,
        correlation_id: step.data.correlation_id.clone(),
    };
    let (job, waited) = match jobs::run(portal, request).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "unlock: cannot queue the gateway job");
            return OnPremises::Unknown;
        }
    };
    let (key, outcome, reason) = match waited {
        Waited::Succeeded => (
            "unlock_onprem_done",
            Outcome::Success,
            format!("gateway job {job}: unlocked on-premises"),
        ),
        Waited::Failed { reason, detail } => (
            match reason {
                FailureReason::InsufficientRights | FailureReason::NotAllowed => {
                    "unlock_onprem_not_permitted"
                }
                _ => "unlock_onprem_failed",
            },
            if reason == FailureReason::DirectoryUnavailable {
                Outcome::Error
            } else {
                Outcome::Failure
            },
            format!("gateway job {job}: {}: {detail}", reason.as_str()),
        ),
        Waited::InProgress => (
            "unlock_onprem_pending",
            Outcome::Success,
            format!("gateway job {job}: queued, no result within the wait"),
        ),
        Waited::Expired => (
            "unlock_onprem_unavailable",
            Outcome::Error,
            format!("gateway job {job}: no gateway took it in time"),
        ),
    };
    OnPremises::Answer(key, outcome, reason)
}
