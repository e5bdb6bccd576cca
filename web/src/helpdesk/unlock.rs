//! `POST /helpdesk/unlock`: a verified caller's on-premises account unlocked through the
//! gateway, as self-service does it (`latchkey_selfservice::unlock::unlock_on_premises`).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_policy::Action;
use latchkey_store::Outcome;

use super::actions::{TargetForm, acting};
use super::page;
use crate::portal::Portal;

/// `POST /helpdesk/unlock`: a verified caller's on-premises account unlocked through the
/// gateway (synced users; a cloud account's smart lockout ends by itself).
pub(super) async fn unlock(
    req: HttpRequest,
    portal: web::Data<Portal>,
    form: web::Form<TargetForm>,
) -> HttpResponse {
    use latchkey_selfservice::unlock::{OnPremises, UnlockResult, unlock_on_premises};
    let (m, t, approval) =
        match acting(&portal, &req, &form.csrf, &form.q, Action::Unlock, "unlock").await {
            Ok(x) => x,
            Err(r) => return r,
        };
    let user = t.user.id;
    if t.user.on_premises_sync_enabled != Some(true) {
        let msg = super::message(&portal, &m, "helpdesk_unlock_cloud", &[]);
        return super::lookup::render_user(&portal, &req, &m, &t, Some(msg), StatusCode::CONFLICT)
            .await;
    }
    let allow_privileged = t
        .policy_allowing(&portal, Action::Unlock)
        .is_some_and(|p| p.allow_privileged);
    let s = &portal.services;
    let answer = unlock_on_premises(s, &t.user, allow_privileged, m.correlation_id.clone()).await;
    let (result, outcome, reason) = match answer {
        OnPremises::Answer(result, outcome, reason) => (Some(result), outcome, reason),
        OnPremises::NotQueued => (None, Outcome::Error, "gateway: nothing queued".to_string()),
        OnPremises::Unknown => (
            None,
            Outcome::Error,
            "gateway job: state unknown".to_string(),
        ),
    };
    let details = serde_json::json!({ "approval": approval });
    let audited = m
        .audit(
            &portal,
            "helpdesk.unlock",
            Some(user),
            outcome,
            Some(&reason),
            details,
        )
        .await;
    if audited.is_err() {
        tracing::error!("helpdesk: unlock audit event could not be written");
    }
    let key = match result {
        Some(UnlockResult::OnPremisesDone) => "unlock_onprem_done",
        Some(UnlockResult::OnPremisesPending) => "unlock_onprem_pending",
        Some(UnlockResult::OnPremisesUnavailable) => "helpdesk_unlock_no_gateway",
        Some(UnlockResult::OnPremisesNotPermitted) => "unlock_onprem_not_permitted",
        Some(UnlockResult::OnPremisesFailed | UnlockResult::Cloud) => "unlock_onprem_failed",
        None => "error_generic",
    };
    let status = match result {
        Some(UnlockResult::OnPremisesDone | UnlockResult::OnPremisesPending) => StatusCode::OK,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    let catalogs = portal.templates.catalogs();
    page(
        &portal,
        &req,
        &m,
        "helpdesk_done.html",
        serde_json::json!({
            "title": catalogs.get(m.lang, "helpdesk_unlock_title"),
            "target": super::lookup::identity(&t),
            "paragraphs": [catalogs.get(m.lang, key)],
        }),
        status,
    )
}
