//! Step 3 of self-service, for a fully verified flow: choose what to do, then set a new password.
//! The pages only: the claim, the checks, the write and the steps after it are
//! `latchkey_selfservice::reset` (docs/security.md, principles 7 and 8).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_policy::{Action, Policy};
use latchkey_selfservice::flow::{Current, FlowData};
use latchkey_selfservice::password::Rejection;
use latchkey_selfservice::reset::{self, ResetOutcome, WritePath};
use latchkey_selfservice::signout::SignOut;
use latchkey_types::Secret;
use serde::{Deserialize, Serialize};

use crate::act;
use crate::error::WebError;
use crate::extract::Posted;
use crate::flow;
use crate::flow::{RefusalPage as _, csrf_token};
use crate::i18n::Lang;
use crate::portal::Portal;
use crate::render::FieldError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/action", web::get().to(action))
        .route("/reset", web::get().to(form))
        .route("/reset", web::post().to(submit))
        .route("/reset/check", web::post().to(live_check));
}

/// The live, fully verified flow of this request that may still act; otherwise where to send
/// the browser: back to the methods while the flow is still being verified, to the start when
/// there is none, a 409 when its one change was already claimed.
pub async fn verified_flow(portal: &Portal, req: &HttpRequest) -> Result<Current, WebError> {
    let current = flow::live(portal, req).await?;
    if !current.is_complete() {
        return Err(WebError::SeeOther("/verify"));
    }
    if !current.flow.may_act() {
        let lang = flow::lang(req, Some((&current.flow, &current.data)));
        return Err(WebError::page(StatusCode::CONFLICT, "error_claimed", lang));
    }
    Ok(current)
}

#[derive(Serialize)]
struct ActionPage {
    csrf: String,
    name: String,
    can_reset: bool,
    can_unlock: bool,
    can_tap: bool,
}

async fn action(req: HttpRequest, portal: web::Data<Portal>) -> Result<HttpResponse, WebError> {
    let Current { flow, data, .. } = verified_flow(&portal, &req).await?;
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
    Ok(portal.render_in(&req, lang, "action.html", &page))
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

async fn form(req: HttpRequest, portal: web::Data<Portal>) -> Result<HttpResponse, WebError> {
    let Current { flow, data, .. } = verified_flow(&portal, &req).await?;
    let lang = flow::lang(&req, Some((&flow, &data)));
    let page = ResetPage {
        csrf: csrf_token(&portal, &flow),
        upn: data.account.clone(),
        min_length: min_length(&portal, &data),
        password_error: None,
        confirm_error: None,
        errors: vec![],
    };
    Ok(portal.render_in(&req, lang, "reset.html", &page))
}

#[derive(Deserialize)]
pub struct ResetForm {
    csrf: String,
    password: String,
    confirm: String,
}

crate::with_csrf!(ResetForm);

#[derive(Deserialize)]
pub struct CheckForm {
    csrf: String,
    password: String,
}

crate::with_csrf!(CheckForm);

/// The verdict the reset page shows next to the password field while it is typed.
#[derive(Serialize)]
struct LiveVerdict {
    ok: bool,
    /// Localized; empty when there is nothing to say (throttled, flow not allowed to act).
    message: String,
}

/// `POST /reset/check`: the server's rules applied to the password being typed (debounced by
/// the page's script). The same rules as the submit, so the page never says "fine" to a
/// password the submit refuses; the password is not logged or kept.
async fn live_check(
    portal: web::Data<Portal>,
    posted: Posted<CheckForm>,
) -> Result<HttpResponse, WebError> {
    use latchkey_selfservice::password::{PreviewError, preview};
    let Posted { step, form } = posted;
    let catalogs = portal.templates.catalogs();
    let verdict = match preview(&portal.services, &step.current, &form.password).await {
        Ok(()) => LiveVerdict {
            ok: true,
            message: catalogs.get(step.lang, "password_looks_good").to_string(),
        },
        Err(PreviewError::Rejected(why)) => {
            let set = portal.services.policies();
            let policy = step.data.policy.as_deref().and_then(|n| set.get(n));
            LiveVerdict {
                ok: false,
                message: policy
                    .map_or_else(String::new, |p| rejection_text(&portal, step.lang, &why, p)),
            }
        }
        Err(PreviewError::Throttled | PreviewError::NotAllowed) => LiveVerdict {
            ok: false,
            message: String::new(),
        },
    };
    Ok(HttpResponse::Ok().json(verdict))
}

async fn submit(
    req: HttpRequest,
    portal: web::Data<Portal>,
    posted: Posted<ResetForm>,
) -> Result<HttpResponse, WebError> {
    act::to_completion(submit_now(req, portal, posted)).await
}

async fn submit_now(
    req: HttpRequest,
    portal: web::Data<Portal>,
    posted: Posted<ResetForm>,
) -> Result<HttpResponse, WebError> {
    let Posted { step, form } = posted;
    let (acting, lang) = act::claim(&portal, step, Action::Reset).await?;
    let ResetForm {
        password, confirm, ..
    } = form;
    // What the form shows again if the password is refused (the claim is consumed below).
    let again = Again {
        csrf: csrf_token(&portal, &acting.current.flow),
        upn: acting.current.data.account.clone(),
        policy: acting.policy.clone(),
    };
    let outcome = reset::reset(&portal.services, acting, Secret::new(password), &confirm).await;
    let catalogs = portal.templates.catalogs();
    Ok(match outcome {
        ResetOutcome::Changed {
            path,
            sign_out,
            notified,
            risk_cleared,
        } => changed(&portal, &req, lang, path, sign_out, notified, risk_cleared),
        ResetOutcome::Rejected(why) => {
            let text = rejection_text(&portal, lang, &why, &again.policy);
            let on_confirm = matches!(why, Rejection::Mismatch);
            rejected(&portal, &req, lang, &again, text, on_confirm)
        }
        ResetOutcome::Throttled(refusal) => {
            let mut r = rejected(
                &portal,
                &req,
                lang,
                &again,
                refusal.message(&portal, lang),
                false,
            );
            *r.status_mut() = refusal.status();
            r
        }
        ResetOutcome::DirectoryRejected => {
            let text = catalogs.get(lang, "error_password_directory").to_string();
            rejected(&portal, &req, lang, &again, text, false)
        }
        ResetOutcome::Unknown { reference } => unknown(&portal, &req, lang, &reference),
        ResetOutcome::Pending => {
            let paragraphs = vec![catalogs.get(lang, "reset_onprem_pending").to_string()];
            let title = "reset_onprem_pending_title";
            flow::result_page(&portal, &req, lang, title, &paragraphs)
        }
        refused => return Err(refusal(refused, lang)),
    })
}

/// The error for a reset that did not change the password and shows no form again.
fn refusal(outcome: ResetOutcome, lang: Lang) -> WebError {
    let (status, key) = match &outcome {
        ResetOutcome::WritebackFailed => (StatusCode::BAD_GATEWAY, "reset_writeback_failed"),
        ResetOutcome::OnPremisesPolicy => (StatusCode::BAD_REQUEST, "reset_onprem_policy"),
        ResetOutcome::NoPath(_) => (StatusCode::CONFLICT, "unlock_onprem_unavailable"),
        ResetOutcome::OnPremisesFailed(_) => (StatusCode::BAD_GATEWAY, "reset_onprem_failed"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "error_generic"),
    };
    match outcome {
        // Released: the user may try again; the cookie stays.
        ResetOutcome::WritebackFailed | ResetOutcome::OnPremisesPolicy => {
            WebError::page(status, key, lang)
        }
        ResetOutcome::TryAgain(recorded) => WebError::try_again(lang, recorded),
        ResetOutcome::NoPath(recorded)
        | ResetOutcome::OnPremisesFailed(recorded)
        | ResetOutcome::Failed(recorded) => WebError::ended_recorded(recorded, status, key, lang),
        _ => WebError::ended(status, key, lang),
    }
}

/// What the reset form needs to be shown again after a refusal.
struct Again {
    csrf: String,
    upn: String,
    policy: Policy,
}

/// The reset form again, 400, with `message` on the password or confirmation field.
fn rejected(
    portal: &Portal,
    req: &HttpRequest,
    lang: Lang,
    again: &Again,
    message: String,
    on_confirm: bool,
) -> HttpResponse {
    let page = ResetPage {
        csrf: again.csrf.clone(),
        upn: again.upn.clone(),
        min_length: again.policy.password.min_length,
        password_error: (!on_confirm).then(|| message.clone()),
        confirm_error: on_confirm.then(|| message.clone()),
        errors: vec![FieldError {
            field: if on_confirm { "confirm" } else { "password" },
            message,
        }],
    };
    let mut r = portal.render_in(req, lang, "reset.html", &page);
    *r.status_mut() = StatusCode::BAD_REQUEST;
    r
}

/// The write may or may not have been applied: said plainly, 202, with the reference to quote.
fn unknown(portal: &Portal, req: &HttpRequest, lang: Lang, reference: &str) -> HttpResponse {
    let message = portal
        .templates
        .catalogs()
        .get(lang, "reset_unknown")
        .replace("{reference}", reference);
    let mut r = portal.render_in(
        req,
        lang,
        "error.html",
        &serde_json::json!({ "message": message }),
    );
    *r.status_mut() = StatusCode::ACCEPTED;
    crate::flow_cookie::with_cleared_cookie(portal, r)
}

/// The result page of a changed password: how to sign in next, what happened to other sessions,
/// whether the user was told.
fn changed(
    portal: &Portal,
    req: &HttpRequest,
    lang: Lang,
    path: WritePath,
    sign_out: Option<SignOut>,
    notified: bool,
    risk_cleared: bool,
) -> HttpResponse {
    let catalogs = portal.templates.catalogs();
    let signin = &portal.services.signin_url;
    let kiosk = crate::kiosk::active(portal, req);
    let (mut paragraphs, link) = match path {
        WritePath::Gateway => (
            vec![catalogs.get(lang, "reset_onprem_done").to_string()],
            None,
        ),
        // A kiosk has no browser to sign in with and nowhere else to go: how to sign in on
        // this screen (below) instead of the sign-in link.
        _ if kiosk.is_some() => (Vec::new(), None),
        WritePath::AppOnly | WritePath::Writeback => (
            vec![
                catalogs
                    .get(lang, "done_next_cloud")
                    .replace("{signin}", signin),
            ],
            Some(flow::NextLink {
                href: signin.clone(),
                label: catalogs.get(lang, "done_signin_button").to_string(),
            }),
        ),
    };
    match &kiosk {
        Some(kiosk) => {
            paragraphs.push(kiosk.signin_paragraph(portal, lang, crate::kiosk::Finished::Reset))
        }
        None => paragraphs.push(catalogs.get(lang, "done_next_windows").to_string()),
    }
    if path == WritePath::Writeback {
        paragraphs.push(catalogs.get(lang, "done_next_hybrid").to_string());
    }
    paragraphs.extend(sign_out.and_then(|s| flow::sign_out_paragraph(portal, lang, s)));
    if risk_cleared {
        paragraphs.push(catalogs.get(lang, "unlock_risk_cleared").to_string());
    }
    if notified {
        paragraphs.push(catalogs.get(lang, "done_notified").to_string());
    }
    flow::result_page_with(portal, req, lang, "done_title", &paragraphs, link)
}

/// The localized reason a password was refused, with its numbers filled in.
fn rejection_text(portal: &Portal, lang: Lang, why: &Rejection, policy: &Policy) -> String {
    let catalogs = portal.templates.catalogs();
    // What made a guessable password guessable, in the page's language.
    let hint = match why {
        Rejection::Guessable { weakness: Some(w) } => catalogs.get(lang, w.message_key()),
        _ => "",
    };
    catalogs
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
