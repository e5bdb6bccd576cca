//! Reset of a synced user's password through the on-premises gateway, for portals without the
//! delegated writeback credential (`latchkey delegate`): when a gateway that may reset
//! (`[jobs] reset = true`) is connected, the password the user chose (already checked against
//! the policy) goes to it in a reset job; the page reports what AD said. The password lives in
//! the store only sealed, until the gateway takes it; it is never logged or audited.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use latchkey_jobs::{FailureReason, JobKind, Target};
use latchkey_store::Outcome;
use latchkey_types::{EmailAddress, Secret};

use super::jobs::{self, Waited};
use crate::app::Portal;
use crate::flow::{self, Step};

/// The response for this reset when a reset-capable gateway is connected; `None` when none is
/// (the caller then says that synced users cannot reset here).
pub async fn submit(
    portal: &Portal,
    req: &HttpRequest,
    step: &Step,
    password: &str,
) -> Option<HttpResponse> {
    match jobs::connected(portal, JobKind::Reset).await {
        Ok(true) => {}
        Ok(false) => return None,
        Err(e) => {
            tracing::error!(error = %e, "reset: cannot read the gateways");
            return Some(step.unavailable(portal, req));
        }
    }
    let (flow, data, lang) = (&step.flow, &step.data, step.lang);
    let fail = |status: StatusCode, key: &str| portal.error_page(req, lang, status, key);
    let user = match portal.services.directory.user(&flow.subject).await {
        Ok(u) => u,
        Err(e) => {
            tracing::error!(error = %e, "reset: cannot read the user");
            return Some(step.unavailable(portal, req));
        }
    };
    let Some(sam) = user.on_premises_sam_account_name.filter(|s| !s.is_empty()) else {
        let _ = step
            .audit(
                portal,
                "reset",
                None,
                Outcome::Error,
                Some("synced user without onPremisesSamAccountName"),
            )
            .await;
        return Some(fail(StatusCode::BAD_GATEWAY, "reset_onprem_failed"));
    };
    // Channels known before the change, to tell the user afterwards.
    let mail = data
        .mail
        .as_deref()
        .and_then(|m| m.parse::<EmailAddress>().ok());
    let channels = crate::reset::known_channels(portal, &flow.subject, mail.as_ref()).await;
    let request = jobs::Request {
        kind: JobKind::Reset,
        subject: flow.subject,
        target: Target {
            sam_account_name: sam,
            domain: user.on_premises_domain_name,
        },
        new_password: Some(Secret::new(password.to_string())),
        must_change: false,
        correlation_id: data.correlation_id.clone(),
    };
    let (job, waited) = match jobs::run(portal, request).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "reset: cannot queue the gateway job");
            return Some(step.unavailable(portal, req));
        }
    };
    let audit = |outcome: Outcome, reason: String| async move {
        step.audit(portal, "reset", None, outcome, Some(&reason))
            .await
    };
    let catalogs = portal.templates.catalogs();
    Some(match waited {
        Waited::Succeeded => {
            let audited = audit(
                Outcome::Success,
                format!("on-premises gateway job {job}: password set in AD"),
            )
            .await;
            if audited.is_err() {
                tracing::error!("reset: password changed but the audit event could not be written");
            }
            let notified = !channels.is_empty();
            // The policy that allowed this reset (matched at the start, re-checked by the caller);
            // if it has since vanished from the set, the safe default: sign out everywhere.
            let revoke = data
                .policy
                .as_deref()
                .and_then(|n| portal.services.policies().get(n).map(|p| p.revoke_sessions))
                .unwrap_or(true);
            let sign_out = crate::reset::after_change(portal, flow, data, channels, revoke).await;
            let mut paragraphs = vec![
                catalogs.get(lang, "reset_onprem_done").to_string(),
                catalogs.get(lang, "done_next_windows").to_string(),
            ];
            paragraphs.extend(sign_out.paragraph(portal, lang));
            if notified {
                paragraphs.push(catalogs.get(lang, "done_notified").to_string());
            }
            let title = catalogs.get(lang, "done_title");
            let mut r = portal.render_in(
                req,
                lang,
                "result.html",
                &serde_json::json!({ "title": title, "paragraphs": paragraphs }),
            );
            let _ = r.add_cookie(&flow::clear_flow_cookie(portal));
            r
        }
        Waited::Failed { reason, detail } => {
            let _ = audit(
                if reason == FailureReason::DirectoryUnavailable {
                    Outcome::Error
                } else {
                    Outcome::Failure
                },
                format!(
                    "on-premises gateway job {job}: {}: {detail}",
                    reason.as_str()
                ),
            )
            .await;
            match reason {
                FailureReason::PasswordPolicy => {
                    fail(StatusCode::BAD_REQUEST, "reset_onprem_policy")
                }
                _ => fail(StatusCode::BAD_GATEWAY, "reset_onprem_failed"),
            }
        }
        Waited::InProgress => {
            let _ = audit(
                Outcome::Success,
                format!("on-premises gateway job {job}: queued, no result within the wait"),
            )
            .await;
            let paragraphs = vec![catalogs.get(lang, "reset_onprem_pending").to_string()];
            portal.render_in(
                req,
                lang,
                "result.html",
                &serde_json::json!({
                    "title": catalogs.get(lang, "reset_onprem_pending_title"),
                    "paragraphs": paragraphs
                }),
            )
        }
        Waited::Expired => {
            let _ = audit(
                Outcome::Error,
                format!("on-premises gateway job {job}: no gateway took it in time"),
            )
            .await;
            fail(StatusCode::BAD_GATEWAY, "reset_onprem_failed")
        }
    })
}
