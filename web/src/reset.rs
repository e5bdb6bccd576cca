//! Step 3 of self-service, for a fully verified flow: choose what to do, then set a new password.
//!
//! The flow is claimed for this one change and the policy evaluated again with fresh, fully
//! paged group membership (`act.rs`; docs/security.md, principle 7). After the change the one
//! after-change step runs (`after_change.rs`).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_notify::{ContactAction, Recipient};
use latchkey_policy::{Action, Policy};
use latchkey_store::{Flow, Outcome};
use latchkey_types::{EmailAddress, Secret};
use serde::{Deserialize, Serialize};

use crate::act::{self, Acting};
use crate::after_change::{after_change, known_channels};
use crate::app::Portal;
use crate::flow::{self, FlowData};
use crate::i18n::Lang;
use crate::identify::FieldError;
use crate::password;
use crate::verification::csrf_token;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/action", web::get().to(action))
        .route("/reset", web::get().to(form))
        .route("/reset", web::post().to(submit));
}

/// The live, fully verified flow of this request that may still act; otherwise where to send
/// the browser: back to the methods while the flow is still being verified, to the start when
/// there is none, a 409 when its one change was already claimed.
pub async fn verified_flow(
    portal: &Portal,
    req: &HttpRequest,
) -> Result<(Flow, FlowData), HttpResponse> {
    let (flow, data) = match flow::load(portal, req).await {
        Ok(Some((_, flow, data))) => (flow, data),
        Ok(None) => return Err(flow::expired(portal)),
        Err(e) => {
            return Err(flow::store_unavailable(
                portal,
                req,
                flow::lang(req, None),
                &e,
            ));
        }
    };
    if !flow::is_complete(&flow, &data) {
        return Err(flow::see_other("/verify"));
    }
    if !flow.may_act() {
        let lang = flow::lang(req, Some((&flow, &data)));
        return Err(portal.error_page(req, lang, StatusCode::CONFLICT, "error_claimed"));
    }
    Ok((flow, data))
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
    act::to_completion(submit_now(req, portal, form.into_inner())).await
}

async fn submit_now(req: HttpRequest, portal: web::Data<Portal>, form: ResetForm) -> HttpResponse {
    let acting = match act::claim(&portal, &req, &form.csrf, Action::Reset).await {
        Ok(a) => a,
        Err(response) => return response,
    };
    let ResetForm {
        password, confirm, ..
    } = form;
    let names: Vec<&str> = acting.step.data.names.iter().map(String::as_str).collect();
    if let Err(why) = password::check(&password, &confirm, &acting.policy.password, &names) {
        let audited = acting
            .audit(&portal, "reset", Outcome::Failure, why.message_key())
            .await;
        if audited.is_err() {
            return acting.retry_page(&portal, &req, audited).await;
        }
        let text = rejection_text(&portal, acting.step.lang, &why, &acting.policy);
        let page = rejected(
            &portal,
            &req,
            &acting,
            text,
            matches!(why, password::Rejection::Mismatch),
        );
        acting.retry(&portal).await;
        return page;
    }
    let secret = Secret::new(password);
    // Graph refuses passwordProfile for on-premises-mastered users: they go through the
    // delegated resetPassword (written back to AD) when the portal holds that credential, else
    // through a connected gateway that may reset.
    let path = if !acting.step.data.synced {
        WritePath::AppOnly
    } else if let Some(w) = portal.services.writeback() {
        WritePath::Writeback(w)
    } else {
        let through_gateway = crate::gateway::reset::submit(&portal, &req, acting, &secret);
        return latchkey_graph::deadline::fresh(portal.services.graph_budget, through_gateway)
            .await;
    };
    // Once the password passed every check, the write, reading back its outcome and the steps
    // after it get a Graph budget of their own: what the checks spent must not cut them short.
    let write = change(&portal, &req, acting, path, secret);
    latchkey_graph::deadline::fresh(portal.services.graph_budget, write).await
}

/// How a cloud password change is written.
enum WritePath {
    /// `PATCH /users/{id}` passwordProfile with the app's own permission.
    AppOnly,
    /// The delegated `resetPassword`, which Entra writes back to on-premises AD.
    Writeback(std::sync::Arc<dyn crate::directory::Directory>),
}

impl WritePath {
    fn label(&self) -> &'static str {
        match self {
            WritePath::AppOnly => "app-only passwordProfile",
            WritePath::Writeback(_) => "delegated resetPassword (writeback)",
        }
    }
}

/// The reset form again, 400, with `message` on the password or confirmation field.
fn rejected(
    portal: &Portal,
    req: &HttpRequest,
    acting: &Acting,
    message: String,
    on_confirm: bool,
) -> HttpResponse {
    let page = ResetPage {
        csrf: csrf_token(portal, &acting.step.flow),
        upn: acting.step.data.account.clone(),
        min_length: acting.policy.password.min_length,
        password_error: (!on_confirm).then(|| message.clone()),
        confirm_error: on_confirm.then(|| message.clone()),
        errors: vec![FieldError {
            field: if on_confirm { "confirm" } else { "password" },
            message,
        }],
    };
    let mut r = portal.render_in(req, acting.step.lang, "reset.html", &page);
    *r.status_mut() = StatusCode::BAD_REQUEST;
    r
}

/// Writes the new password. The intent is on record before the write (an audit event that
/// outlives a crash or an outage midway), the write is never repeated blindly, and an answer
/// that never came is resolved by reading the user back.
async fn change(
    portal: &Portal,
    req: &HttpRequest,
    acting: Acting,
    path: WritePath,
    secret: Secret<String>,
) -> HttpResponse {
    let subject = acting.step.flow.subject;
    // Channels known before the change, to tell the user afterwards.
    let mail = acting
        .step
        .data
        .mail
        .as_deref()
        .and_then(|m| m.parse::<EmailAddress>().ok());
    let channels = known_channels(portal, &subject, mail.as_ref()).await;
    let started = acting
        .audit(portal, "reset", Outcome::Started, path.label())
        .await;
    if started.is_err() {
        return acting.retry_page(portal, req, started).await;
    }
    let result = match &path {
        WritePath::Writeback(w) => w.reset_password_writeback(&subject, &secret).await,
        WritePath::AppOnly => {
            portal
                .services
                .directory
                .set_password(&subject, &secret)
                .await
        }
    };
    drop(secret);
    let reason = match result {
        Ok(()) => path.label().to_string(),
        Err(e) if e.outcome_unknown() => match applied_after_all(portal, &acting).await {
            Some(true) => format!("{}: confirmed by a read after no answer", path.label()),
            _ => return unknown_outcome(portal, req, acting, &path, &e).await,
        },
        Err(e) => return write_failed(portal, req, acting, &path, &e).await,
    };
    let writeback = matches!(path, WritePath::Writeback(_));
    succeeded(portal, req, acting, channels, &reason, writeback).await
}

/// After a write whose answer never came: whether the user's `lastPasswordChangeDateTime` moved
/// past the value seen when the flow started. `None` when that cannot be told.
async fn applied_after_all(portal: &Portal, acting: &Acting) -> Option<bool> {
    let before = acting.step.data.password_changed_at?;
    let user = portal
        .services
        .directory
        .user(&acting.step.flow.subject)
        .await
        .ok()?;
    Some(user.last_password_change_date_time? > before)
}

/// The write may or may not have been applied, and a read could not confirm it: said plainly,
/// recorded as unknown, and the flow ends (a second write could be a second change).
async fn unknown_outcome(
    portal: &Portal,
    req: &HttpRequest,
    acting: Acting,
    path: &WritePath,
    e: &latchkey_graph::GraphError,
) -> HttpResponse {
    tracing::error!(error = %e, "reset: no answer to the password write; outcome unknown");
    let reason = format!(
        "{}: outcome unknown (no answer from the directory)",
        path.label()
    );
    // The `started` event already records the attempt if this one cannot be written.
    if let Err(audit_error) = acting.audit(portal, "reset", Outcome::Error, &reason).await {
        tracing::error!(error = %audit_error, "reset: cannot audit an unknown outcome");
    }
    let lang = acting.step.lang;
    let reference = acting.step.data.correlation_id.clone();
    acting.finish(portal).await;
    let message = portal
        .templates
        .catalogs()
        .get(lang, "reset_unknown")
        .replace("{reference}", &reference);
    let mut r = portal.render_in(
        req,
        lang,
        "error.html",
        &serde_json::json!({ "message": message }),
    );
    *r.status_mut() = StatusCode::ACCEPTED;
    flow::with_cleared_cookie(portal, r)
}

/// The directory answered with an error: nothing was changed.
async fn write_failed(
    portal: &Portal,
    req: &HttpRequest,
    acting: Acting,
    path: &WritePath,
    e: &latchkey_graph::GraphError,
) -> HttpResponse {
    let lang = acting.step.lang;
    if let latchkey_graph::GraphError::ResetFailed { status_detail, .. } = e.root() {
        // The directory refused the writeback (e.g. writeback off, or the on-premises password
        // policy): the detail goes to the audit trail, the user gets a clear page.
        let detail: String = status_detail
            .as_deref()
            .unwrap_or("no detail")
            .chars()
            .filter(|c| !c.is_control())
            .take(300)
            .collect();
        let reason = format!("{}: operation failed: {detail}", path.label());
        let audited = acting
            .audit(portal, "reset", Outcome::Failure, &reason)
            .await;
        tracing::warn!("reset: resetPassword operation failed");
        if audited.is_err() {
            return acting.retry_page(portal, req, audited).await;
        }
        acting.retry(portal).await;
        return portal.error_page(req, lang, StatusCode::BAD_GATEWAY, "reset_writeback_failed");
    }
    let reason = format!("{}: {}", path.label(), e.code().unwrap_or("graph error"));
    let audited = acting.audit(portal, "reset", Outcome::Error, &reason).await;
    if audited.is_err() || e.is_transient() {
        tracing::warn!(error = %e, "reset: the directory could not take the password now");
        return acting.retry_page(portal, req, audited).await;
    }
    if e.status() == Some(400) {
        let text = portal
            .templates
            .catalogs()
            .get(lang, "error_password_directory")
            .to_string();
        let page = rejected(portal, req, &acting, text, false);
        acting.retry(portal).await;
        return page;
    }
    tracing::error!(error = %e, "reset: Graph refused the password change");
    acting.finish(portal).await;
    portal.error_page(req, lang, StatusCode::SERVICE_UNAVAILABLE, "error_generic")
}

/// The password is changed: audited, then the one after-change step, then the result page.
async fn succeeded(
    portal: &Portal,
    req: &HttpRequest,
    acting: Acting,
    channels: Vec<Recipient>,
    reason: &str,
    writeback: bool,
) -> HttpResponse {
    if let Err(e) = acting
        .audit(portal, "reset", Outcome::Success, reason)
        .await
    {
        // The `started` event is on record; the change cannot be undone, so go on.
        tracing::error!(error = %e, "reset: password changed but the success event could not be written");
    }
    let lang = acting.step.lang;
    let notified = !channels.is_empty();
    let (flow, data) = (&acting.step.flow, &acting.step.data);
    // Every notice is stored before the sign-out's Graph call, so none waits on it.
    crate::security_contacts::tell(
        portal,
        &acting.policy,
        ContactAction::PasswordReset,
        &flow.subject,
        data,
    )
    .await;
    let sign_out = after_change(portal, flow, data, channels, acting.policy.revoke_sessions).await;
    // after_change ended every flow of the user, this one included.
    acting.finish(portal).await;
    let catalogs = portal.templates.catalogs();
    let mut paragraphs = vec![
        catalogs
            .get(lang, "done_next_cloud")
            .replace("{signin}", &portal.services.signin_url),
        catalogs.get(lang, "done_next_windows").to_string(),
    ];
    if writeback {
        paragraphs.push(catalogs.get(lang, "done_next_hybrid").to_string());
    }
    paragraphs.extend(sign_out.paragraph(portal, lang));
    if notified {
        paragraphs.push(catalogs.get(lang, "done_notified").to_string());
    }
    flow::result_page(portal, req, lang, "done_title", &paragraphs)
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
