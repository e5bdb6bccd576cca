//! The one change a verification authorizes (docs/architecture.md, "The flow state machine").
//!
//! A fully verified flow acts once. [`claim`] moves it from `Verified` (or `Retry`) to `Acting`
//! with one conditional update in the store *before* anything changes, so of concurrent requests
//! on one flow (same cookie, same CSRF token, any portal instance) exactly one goes on; the
//! others get a clear 409 and change nothing. An [`Acting`] flow leaves that step one way only:
//! - [`Acting::finish`]: the change happened, may have happened (outcome unknown), or was refused
//!   for good: the flow ends and can never act again;
//! - [`Acting::retry`]: the change certainly did not happen (a refused password, a transient
//!   fault before the write): back to `Retry`, claimable once more while the flow lives, so the
//!   user need not verify again.
//!
//! Both consume the [`Acting`], so a handler cannot settle a claim twice. A process that dies
//! while acting leaves the flow in `Acting` until it expires: it fails closed.

use std::collections::HashSet;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use latchkey_graph::GraphError;
use latchkey_policy::{Action, Policy, Subject, evaluate};
use latchkey_store::{Outcome, StoreError};
use latchkey_types::{MethodKind, ObjectId};

use crate::app::Portal;
use crate::app::Unrecorded as _;
use crate::flow::{self, Step};

/// A claimed flow: its one change is under way, allowed by `policy` (evaluated with fresh
/// membership right after the claim). Settle it with [`Acting::finish`] or [`Acting::retry`];
/// one dropped unsettled stays `Acting` until it expires (fails closed, but the user waits).
#[must_use = "a claim is settled with finish() or retry()"]
pub struct Acting {
    pub step: Step,
    pub policy: Policy,
}

/// The policy that applies *now*, with fresh membership: `Ok(None)` when no policy allows
/// `action` any more, `Err` when the directory could not be asked (that is not a refusal).
pub async fn current_policy(
    portal: &Portal,
    user: &ObjectId,
    action: Action,
) -> Result<Option<Policy>, GraphError> {
    let memberships = portal.services.directory.memberships(user).await?;
    let groups: HashSet<ObjectId> = memberships.groups.iter().map(|g| g.id).collect();
    let set = portal.services.policies();
    let evaluation = evaluate(
        &set,
        Subject {
            groups: &groups,
            privileged: !memberships.roles.is_empty(),
        },
    );
    Ok(evaluation.policy.filter(|p| p.allows(action)).cloned())
}

/// A POST that acts on the account: the form's CSRF token right, the flow fully verified and
/// claimed for this one change, and the policy still allowing `action` with fresh membership.
/// The error is the response to send; every refusal after the claim is audited, and the claim
/// is settled (ended on a refusal, given back on a transient fault).
pub async fn claim(
    portal: &Portal,
    req: &HttpRequest,
    csrf: &str,
    action: Action,
) -> Result<Acting, HttpResponse> {
    let step = Step::post(portal, req, csrf).await?;
    if !flow::is_complete(&step.flow, &step.data) {
        return Err(flow::see_other("/verify"));
    }
    let event = action.as_str();
    let now = portal.services.clock.now();
    match portal.services.store.claim_flow(&step.token, now).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            // Another request already acts on (or acted on) this verification. Recorded, so a
            // replayed or duplicated request shows in the audit trail; it changes nothing.
            let reason = Some("verification already used");
            step.audit(portal, event, None, Outcome::Denied, reason)
                .await
                .or_log();
            return Err(portal.error_page(req, step.lang, StatusCode::CONFLICT, "error_claimed"));
        }
        Err(e) => return Err(flow::store_unavailable(portal, req, step.lang, &e)),
    }
    match current_policy(portal, &step.flow.subject, action).await {
        Ok(Some(policy)) => Ok(Acting { step, policy }),
        Ok(None) => {
            let audited = step
                .audit(
                    portal,
                    event,
                    None,
                    Outcome::Denied,
                    Some("policy no longer allows it"),
                )
                .await;
            end_claim(portal, &step).await;
            let lang = step.lang;
            Err(match audited {
                Ok(()) => flow::with_cleared_cookie(
                    portal,
                    portal.error_page(req, lang, StatusCode::FORBIDDEN, "unavailable_body"),
                ),
                Err(e) => flow::ended_unavailable(portal, req, lang, &e),
            })
        }
        Err(e) => {
            // A fault, not a refusal: nothing changed, the verification still holds.
            tracing::warn!(error = %e, "the policy could not be re-checked before a change");
            let reason = format!(
                "policy re-check: directory unavailable ({})",
                e.code().unwrap_or("no answer")
            );
            let audited = step
                .audit(portal, event, None, Outcome::Error, Some(&reason))
                .await;
            Err(retry_page(portal, req, &step, audited).await)
        }
    }
}

impl Acting {
    /// Audits an event of this change. Callers act on the result: a change whose audit event
    /// cannot be written does not happen.
    pub async fn audit(
        &self,
        portal: &Portal,
        event: &str,
        outcome: Outcome,
        reason: &str,
    ) -> Result<(), StoreError> {
        self.audit_method(portal, event, None, outcome, reason)
            .await
    }

    /// [`Acting::audit`] naming a method.
    pub async fn audit_method(
        &self,
        portal: &Portal,
        event: &str,
        method: Option<MethodKind>,
        outcome: Outcome,
        reason: &str,
    ) -> Result<(), StoreError> {
        self.step
            .audit(portal, event, method, outcome, Some(reason))
            .await
    }

    /// The change happened, may have happened, or is refused for good: the flow ends, so it can
    /// never act again. If the store cannot end it, it stays `Acting` (still unable to act)
    /// until it expires.
    pub async fn finish(self, portal: &Portal) {
        end_claim(portal, &self.step).await;
    }

    /// The change certainly did not happen: the flow may act once more (`Retry`). If the store
    /// cannot release it, it stays `Acting` and the user starts again (fail closed).
    pub async fn retry(self, portal: &Portal) {
        release_claim(portal, &self.step).await;
    }

    /// Gives the claim back after a transient fault and answers 503 "nothing was changed, try
    /// again in a minute" — or the store's outage page when even the audit event failed.
    pub async fn retry_page(
        self,
        portal: &Portal,
        req: &HttpRequest,
        audited: Result<(), StoreError>,
    ) -> HttpResponse {
        retry_page(portal, req, &self.step, audited).await
    }
}

/// Runs a handler that may change something on a task of its own, so that a client hanging up
/// (actix drops the request's future) cannot stop it between the change and the steps after it
/// (audit, notices, sign-out, ending the flow).
pub async fn to_completion<F>(handler: F) -> HttpResponse
where
    F: std::future::Future<Output = HttpResponse> + 'static,
{
    // The request's Graph budget goes along to the task.
    let deadline = latchkey_graph::deadline::current();
    match actix_web::rt::spawn(latchkey_graph::deadline::carry(deadline, handler)).await {
        Ok(response) => response,
        Err(e) => {
            tracing::error!(error = %e, "a change handler panicked");
            HttpResponse::InternalServerError().finish()
        }
    }
}

async fn end_claim(portal: &Portal, step: &Step) {
    if let Err(e) = portal.services.store.end_flow(&step.token).await {
        tracing::error!(error = %e, "cannot end a flow after its change; it expires acting");
    }
}

async fn release_claim(portal: &Portal, step: &Step) {
    let now = portal.services.clock.now();
    match portal.services.store.release_flow(&step.token, now).await {
        Ok(true) => {}
        Ok(false) => tracing::warn!("a claimed flow was gone before it could be released"),
        Err(e) => tracing::error!(error = %e, "cannot release a claimed flow"),
    }
}

async fn retry_page(
    portal: &Portal,
    req: &HttpRequest,
    step: &Step,
    audited: Result<(), StoreError>,
) -> HttpResponse {
    release_claim(portal, step).await;
    match audited {
        Ok(()) => portal.error_page(
            req,
            step.lang,
            StatusCode::SERVICE_UNAVAILABLE,
            "error_retry",
        ),
        Err(e) => flow::store_unavailable(portal, req, step.lang, &e),
    }
}
