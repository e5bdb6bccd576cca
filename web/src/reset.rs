//! Step 3 of self-service, for a fully verified flow: choose what to do, then set a new password.
//!
//! The policy is evaluated again right before the write with fresh, fully paged group membership;
//! any error fails closed (security.md principle 7). After the change every open flow and code of
//! the user is voided and the user is told on every channel known before the change.

use std::collections::HashSet;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_notify::{ContactAction, Notice, Notification, Recipient};
use latchkey_policy::{Action, Policy, Subject, evaluate};
use latchkey_store::{EnrollmentState, Flow, Outcome};
use latchkey_types::{EmailAddress, MethodKind, ObjectId, Secret};
use serde::{Deserialize, Serialize};

use crate::app::Portal;
use crate::flow::{self, FlowData, Step};
use crate::i18n::Lang;
use crate::identify::FieldError;
use crate::password;
use crate::verification::csrf_token;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/action", web::get().to(action))
        .route("/reset", web::get().to(form))
        .route("/reset", web::post().to(submit));
}

/// The live, fully verified flow of this request; otherwise where to send the browser: back to
/// the methods while the flow is still being verified, to the start when there is none.
pub async fn verified_flow(
    portal: &Portal,
    req: &HttpRequest,
) -> Result<(Flow, FlowData), HttpResponse> {
    let Some((_, flow, data)) = flow::load(portal, req).await else {
        return Err(flow::expired(portal));
    };
    if flow::is_complete(&flow, &data) {
        Ok((flow, data))
    } else {
        Err(flow::see_other("/verify"))
    }
}

/// The policy that applies *now*, with fresh membership; `None` on any error or mismatch.
pub async fn current_policy(portal: &Portal, user: &ObjectId, action: Action) -> Option<Policy> {
    let memberships = portal.services.directory.memberships(user).await.ok()?;
    let groups: HashSet<ObjectId> = memberships.groups.iter().map(|g| g.id).collect();
    let set = portal.services.policies();
    let evaluation = evaluate(
        &set,
        Subject {
            groups: &groups,
            privileged: !memberships.roles.is_empty(),
        },
    );
    evaluation.policy.filter(|p| p.allows(action)).cloned()
}

/// A POST that acts on the account: the flow must be fully verified, the form's CSRF token right,
/// and the policy must still allow `action` with fresh membership (fail closed, audited).
pub async fn acting_step(
    portal: &Portal,
    req: &HttpRequest,
    csrf: &str,
    action: Action,
) -> Result<(Step, Policy), HttpResponse> {
    let step = Step::post(portal, req, csrf).await?;
    if !flow::is_complete(&step.flow, &step.data) {
        return Err(flow::see_other("/verify"));
    }
    match current_policy(portal, &step.flow.subject, action).await {
        Some(policy) => Ok((step, policy)),
        None => {
            let _ = step
                .audit(
                    portal,
                    action_name(action),
                    None,
                    Outcome::Denied,
                    Some("policy no longer allows it"),
                )
                .await;
            Err(portal.error_page(req, step.lang, StatusCode::FORBIDDEN, "unavailable_body"))
        }
    }
}

fn action_name(action: Action) -> &'static str {
    match action {
        Action::Reset => "reset",
        Action::Unlock => "unlock",
        Action::TemporaryAccessPass => "temporary_access_pass",
        Action::Enroll => "enroll",
    }
}

#[derive(Serialize)]
struct ActionPage {
    csrf: String,
    name: String,
    can_reset: bool,
    can_unlock: bool,
    can_tap: bool,
}

async fn action(req: HttpRequest, portal: web::Data<Portal>) -> HttpResponse {
    let (flow, data) = match verified_flow(&portal, &req).await {
        Ok(f) => f,
        Err(response) => return response,
    };
    let lang = flow::lang(&req, Some((&flow, &data)));
    let set = portal.services.policies();
    let policy = data.policy.as_deref().and_then(|n| set.get(n));
    let page = ActionPage {
        csrf: csrf_token(&portal, &flow),
        name: data
            .display_name
            .clone()
            .unwrap_or_else(|| data.account.clone()),
        can_reset: policy.is_some_and(|p| p.allows(Action::Reset)),
        can_unlock: policy.is_some_and(|p| p.allows(Action::Unlock)),
        can_tap: policy.is_some_and(|p| p.allows(Action::TemporaryAccessPass)),
    };
    portal.render_in(&req, lang, "action.html", &page)
}

#[derive(Serialize)]
struct ResetPage {
    csrf: String,
    upn: String,
    min_length: usize,
    password_error: Option<String>,
    confirm_error: Option<String>,
    errors: Vec<FieldError>,
}

fn min_length(portal: &Portal, data: &FlowData) -> usize {
    let set = portal.services.policies();
    data.policy
        .as_deref()
        .and_then(|n| set.get(n))
        .map_or(latchkey_policy::model::DEFAULT_MIN_PASSWORD_LENGTH, |p| {
            p.password.min_length
        })
}

async fn form(req: HttpRequest, portal: web::Data<Portal>) -> HttpResponse {
    let (flow, data) = match verified_flow(&portal, &req).await {
        Ok(f) => f,
        Err(response) => return response,
    };
    let lang = flow::lang(&req, Some((&flow, &data)));
    let page = ResetPage {
        csrf: csrf_token(&portal, &flow),
        upn: data.account.clone(),
        min_length: min_length(&portal, &data),
        password_error: None,
        confirm_error: None,
        errors: vec![],
    };
    portal.render_in(&req, lang, "reset.html", &page)
}

#[derive(Deserialize)]
pub struct ResetForm {
    csrf: String,
    password: String,
    confirm: String,
}

async fn submit(
    req: HttpRequest,
    portal: web::Data<Portal>,
    form: web::Form<ResetForm>,
) -> HttpResponse {
    let (step, policy) = match acting_step(&portal, &req, &form.csrf, Action::Reset).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    let (flow, data, lang) = (&step.flow, &step.data, step.lang);
    let catalogs = portal.templates.catalogs();
    let rejected = |message: String, on_confirm: bool| {
        let page = ResetPage {
            csrf: csrf_token(&portal, flow),
            upn: data.account.clone(),
            min_length: policy.password.min_length,
            password_error: (!on_confirm).then(|| message.clone()),
            confirm_error: on_confirm.then(|| message.clone()),
            errors: vec![FieldError {
                field: if on_confirm { "confirm" } else { "password" },
                message,
            }],
        };
        let mut r = portal.render_in(&req, lang, "reset.html", &page);
        *r.status_mut() = StatusCode::BAD_REQUEST;
        r
    };
    let names: Vec<&str> = data.names.iter().map(String::as_str).collect();
    if let Err(why) = password::check(&form.password, &form.confirm, &policy.password, &names) {
        let _ = step
            .audit(
                &portal,
                "reset",
                None,
                Outcome::Failure,
                Some(why.message_key()),
            )
            .await;
        let text = rejection_text(&portal, lang, &why, &policy);
        return rejected(text, matches!(why, password::Rejection::Mismatch));
    }
    // Graph refuses passwordProfile for on-premises-mastered users: they go through the
    // delegated resetPassword (written back to AD), when the portal holds that credential.
    let writeback = if data.synced {
        match portal.services.writeback() {
            Some(w) => Some(w),
            None => {
                // No delegated credential: a connected gateway that may reset does it in AD.
                if let Some(r) =
                    crate::gateway::reset::submit(&portal, &req, &step, &form.password).await
                {
                    return r;
                }
                let _ = step
                    .audit(
                        &portal,
                        "reset",
                        None,
                        Outcome::Denied,
                        Some("synced user: no writeback path configured"),
                    )
                    .await;
                return portal.error_page(
                    &req,
                    lang,
                    StatusCode::CONFLICT,
                    "unlock_onprem_unavailable",
                );
            }
        }
    } else {
        None
    };
    let path = if writeback.is_some() {
        "delegated resetPassword (writeback)"
    } else {
        "app-only passwordProfile"
    };
    // Channels known before the change, to tell the user afterwards.
    let mail = data
        .mail
        .as_deref()
        .and_then(|m| m.parse::<EmailAddress>().ok());
    let channels = known_channels(&portal, &flow.subject, mail.as_ref()).await;
    let secret = Secret::new(form.into_inner().password);
    let result = match &writeback {
        Some(w) => w.reset_password_writeback(&flow.subject, &secret).await,
        None => {
            portal
                .services
                .directory
                .set_password(&flow.subject, &secret)
                .await
        }
    };
    if let Err(e) = result {
        if let latchkey_graph::GraphError::ResetFailed { status_detail, .. } = e.root() {
            // The directory refused the writeback (e.g. writeback off, or the on-premises
            // password policy): the detail goes to the audit trail, the user gets a clear page.
            let detail: String = status_detail
                .as_deref()
                .unwrap_or("no detail")
                .chars()
                .filter(|c| !c.is_control())
                .take(300)
                .collect();
            let _ = step
                .audit(
                    &portal,
                    "reset",
                    None,
                    Outcome::Failure,
                    Some(&format!("{path}: operation failed: {detail}")),
                )
                .await;
            tracing::warn!("reset: resetPassword operation failed");
            return portal.error_page(
                &req,
                lang,
                StatusCode::BAD_GATEWAY,
                "reset_writeback_failed",
            );
        }
        let reason = format!("{path}: {}", e.code().unwrap_or("graph error"));
        let _ = step
            .audit(&portal, "reset", None, Outcome::Error, Some(&reason))
            .await;
        if e.status() == Some(400) {
            return rejected(
                catalogs.get(lang, "error_password_directory").to_string(),
                false,
            );
        }
        tracing::error!(error = %e, "reset: Graph refused the password change");
        return step.unavailable(&portal, &req);
    }
    if step
        .audit(&portal, "reset", None, Outcome::Success, Some(path))
        .await
        .is_err()
    {
        tracing::error!("reset: password changed but the audit event could not be written");
    }
    let notified = !channels.is_empty();
    let sign_out = after_change(&portal, flow, data, channels, policy.revoke_sessions).await;
    crate::security_contacts::tell(
        &portal,
        &policy,
        ContactAction::PasswordReset,
        &flow.subject,
        data,
    );
    let mut paragraphs = vec![
        catalogs
            .get(lang, "done_next_cloud")
            .replace("{signin}", &portal.services.signin_url),
        catalogs.get(lang, "done_next_windows").to_string(),
    ];
    if writeback.is_some() {
        paragraphs.push(catalogs.get(lang, "done_next_hybrid").to_string());
    }
    paragraphs.extend(sign_out.paragraph(&portal, lang));
    if notified {
        paragraphs.push(catalogs.get(lang, "done_notified").to_string());
    }
    let title = catalogs.get(lang, "done_title");
    let mut r = portal.render_in(
        &req,
        lang,
        "result.html",
        &serde_json::json!({ "title": title, "paragraphs": paragraphs }),
    );
    let _ = r.add_cookie(&flow::clear_flow_cookie(&portal));
    r
}

/// The localized reason a password was refused, with its numbers filled in.
fn rejection_text(
    portal: &Portal,
    lang: Lang,
    why: &password::Rejection,
    policy: &Policy,
) -> String {
    // zxcvbn explains in English only; other languages get the general message.
    let hint = match why {
        password::Rejection::Common { warning: Some(w) } if lang == Lang::En => w.as_str(),
        _ => "",
    };
    portal
        .templates
        .catalogs()
        .get(lang, why.message_key())
        .replace("{min}", &policy.password.min_length.to_string())
        .replace(
            "{max}",
            &latchkey_policy::model::MAX_PASSWORD_LENGTH.to_string(),
        )
        .replace("{hint}", hint)
        .trim()
        .to_string()
}

/// Every address the user had before the change: enrolled email and phone, and the directory mail.
pub async fn known_channels(
    portal: &Portal,
    user: &ObjectId,
    mail: Option<&EmailAddress>,
) -> Vec<Recipient> {
    let mut out: Vec<Recipient> = Vec::new();
    if let Some(m) = mail {
        out.push(Recipient::Email(m.clone()));
    }
    if let Ok(list) = portal.services.store.enrollments(user).await {
        for e in list.iter().filter(|e| e.state == EnrollmentState::Active) {
            let r = e
                .method
                .parse::<MethodKind>()
                .ok()
                .and_then(|kind| crate::codes::enrolled_destination(kind, &e.data))
                .map(|d| crate::codes::recipient(&d));
            if let Some(r) = r
                && !out.contains(&r)
            {
                out.push(r);
            }
        }
    }
    out
}

/// After a password change: void every open flow and code of the user, notify every channel, and
/// sign the user out everywhere when `revoke_sessions` (the policy's setting) is on.
pub async fn after_change(
    portal: &Portal,
    flow: &Flow,
    data: &FlowData,
    channels: Vec<Recipient>,
    revoke_sessions: bool,
) -> crate::signout::SignOut {
    after_change_of(
        portal,
        &flow.subject,
        &data.correlation_id,
        data.preferred_language.clone(),
        channels,
        revoke_sessions,
    )
    .await
}

/// [`after_change`] without a flow at hand: for a change the on-premises gateway reported after
/// the page had stopped waiting (the job carries the subject, correlation id and what to do).
pub async fn after_change_of(
    portal: &Portal,
    subject: &ObjectId,
    correlation_id: &str,
    lang: Option<String>,
    channels: Vec<Recipient>,
    revoke_sessions: bool,
) -> crate::signout::SignOut {
    let s = &portal.services;
    let now = s.clock.now();
    if let Err(e) = s.store.void_codes_of(subject, now).await {
        tracing::error!(error = %e, "cannot void codes after a change");
    }
    if let Err(e) = s.store.end_flows_of(subject).await {
        tracing::error!(error = %e, "cannot end flows after a change");
    }
    for recipient in channels {
        let n = Notification {
            recipient,
            notice: Notice::PasswordChanged { at: now },
            lang: lang.clone(),
            correlation_id: correlation_id.to_string(),
            subject: Some(*subject),
        };
        if let Err(e) = s.notifier.enqueue(n) {
            tracing::error!(error = %e, "cannot queue a change notice");
        }
    }
    crate::signout::revoke(portal, subject, correlation_id, revoke_sessions).await
}
