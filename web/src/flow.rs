//! What every page of the self-service flow shares at the HTTP edge: the flow cookie, the page's
//! language, the CSRF-checked step ([`Step`]), and the pages for an expired flow, a store outage
//! and a throttle. The flow itself (its record, data, audit events and throttles) is
//! `latchkey_selfservice::flow`.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use latchkey_selfservice::flow::{Current, FlowData, Refusal};
use latchkey_selfservice::verify::{Verified, VerifyError};
use latchkey_store::{Flow, StoreError};
use latchkey_types::MethodKind;
use serde::Deserialize;

use crate::error::WebError;
use crate::flow_cookie::{flow_cookie, token, with_cleared_cookie};
use crate::i18n::Lang;
use crate::portal::Portal;

/// The language of a page: the switch's choice, else the browser's, else — only after a
/// verification, since using it earlier would reveal that the account exists — the directory's
/// preference.
pub fn lang(req: &HttpRequest, flow: Option<(&Flow, &FlowData)>) -> Lang {
    // The directory's preference counts only once the user proved who they are.
    let preferred = flow
        .filter(|(f, _)| !f.verified.is_empty())
        .and_then(|(_, d)| d.preferred_language.as_deref());
    crate::i18n::for_request(req, preferred)
}

/// The live flow of this request, with its data; `Ok(None)` when there is none. A store error
/// is an error, never "no flow": the user keeps the cookie and their place
/// ([`store_unavailable`]).
pub async fn load(portal: &Portal, req: &HttpRequest) -> Result<Option<Current>, StoreError> {
    match token(portal, req) {
        Some(token) => Current::load(&portal.services, token).await,
        None => Ok(None),
    }
}

/// The live flow of this request: [`WebError::Expired`] when there is none, the store's outage
/// page (the cookie kept) when it cannot be read.
pub async fn live(portal: &Portal, req: &HttpRequest) -> Result<Current, WebError> {
    match load(portal, req).await {
        Ok(Some(current)) => Ok(current),
        Ok(None) => Err(WebError::Expired),
        Err(e) => Err(WebError::Store(lang(req, None), e)),
    }
}

/// The client address as the throttles count it (the empty string when it cannot be told).
pub fn client(portal: &Portal, req: &HttpRequest) -> String {
    portal
        .services
        .proxies
        .client_ip(req)
        .map(|ip| ip.to_string())
        .unwrap_or_default()
}

/// A 303 to `path` (a local path: redirects never go elsewhere).
pub fn see_other(path: &'static str) -> HttpResponse {
    see_other_to(path)
}

/// [`see_other`] to a path built at run time (the caller checked it is local).
pub fn see_other_to(path: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("Location", path))
        .finish()
}

/// The page that ends a flow: `result.html` with the title of `title_key` and `paragraphs`, the
/// flow cookie removed.
pub fn result_page(
    portal: &Portal,
    req: &HttpRequest,
    lang: Lang,
    title_key: &str,
    paragraphs: &[String],
) -> HttpResponse {
    result_page_with(portal, req, lang, title_key, paragraphs, None)
}

/// A page of an ongoing flow (its cookie kept): `result.html` with the title of `title_key` and
/// an optional button to what comes next.
pub fn keep_page(
    portal: &Portal,
    req: &HttpRequest,
    lang: Lang,
    title_key: &str,
    paragraphs: &[String],
    link: Option<NextLink>,
) -> HttpResponse {
    result_html(portal, req, lang, (title_key, paragraphs, link), false)
}

/// `result.html`; `done` marks the final page of a flow, from which a kiosk goes back to its
/// start after `[kiosk] done_seconds` whatever the person does.
fn result_html(
    portal: &Portal,
    req: &HttpRequest,
    lang: Lang,
    (title_key, paragraphs, link): (&str, &[String], Option<NextLink>),
    done: bool,
) -> HttpResponse {
    let title = portal.templates.catalogs().get(lang, title_key);
    let mut page = serde_json::json!({ "title": title, "paragraphs": paragraphs, "link": link });
    if done {
        page["flow_done"] = true.into();
    }
    portal.render_in(req, lang, "result.html", &page)
}

/// Where a result page leads next: a button.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NextLink {
    pub href: String,
    pub label: String,
}

/// [`result_page`] with a button to what comes next (the sign-in page after a reset). The flow
/// has ended: its cookie is cleared.
pub fn result_page_with(
    portal: &Portal,
    req: &HttpRequest,
    lang: Lang,
    title_key: &str,
    paragraphs: &[String],
    link: Option<NextLink>,
) -> HttpResponse {
    let page = result_html(portal, req, lang, (title_key, paragraphs, link), true);
    with_cleared_cookie(portal, page)
}

/// A POST to a step of a live flow, CSRF-checked, with the page's language.
pub struct Step {
    pub current: Current,
    pub lang: Lang,
}

impl std::ops::Deref for Step {
    type Target = Current;

    fn deref(&self) -> &Current {
        &self.current
    }
}

impl Step {
    /// Loads the flow of this request and checks the form's CSRF token against it (handlers get
    /// this through the [`crate::extract::Posted`] extractor): back to the start when the flow
    /// is gone, 403 on a bad token, 503 when the store fails.
    pub async fn post(portal: &Portal, req: &HttpRequest, csrf: &str) -> Result<Step, WebError> {
        let current = live(portal, req).await?;
        let lang = lang(req, Some((&current.flow, &current.data)));
        if !portal
            .services
            .csrf
            .check(req, &current.flow.id.to_string(), csrf)
        {
            return Err(WebError::Csrf(lang));
        }
        Ok(Step { current, lang })
    }
}

/// How a throttle's refusal is answered: 429 for a throttle, 503 for an outage, and what the user
/// reads in the page's language.
pub trait RefusalPage {
    fn status(self) -> StatusCode;
    fn message(self, portal: &Portal, lang: Lang) -> String;
}

impl RefusalPage for Refusal {
    fn status(self) -> StatusCode {
        match self {
            Refusal::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
            Refusal::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn message(self, portal: &Portal, lang: Lang) -> String {
        match self {
            Refusal::Throttled(wait) => throttled_message(portal, lang, wait),
            Refusal::Unavailable => portal
                .templates
                .catalogs()
                .get(lang, "error_store")
                .to_string(),
        }
    }
}

/// A throttle check of this request's client address (the identify step's start limit, the
/// helpdesk link's): `Err` is the refusal to answer with.
pub async fn hit_client(
    portal: &Portal,
    req: &HttpRequest,
    scope: &str,
    limits: &[latchkey_store::Limit],
) -> Result<(), Refusal> {
    latchkey_selfservice::flow::hit(&portal.services, scope, &client(portal, req), limits)
        .await
        .map(|_| ())
}

/// "Too many attempts, wait N minutes" in the page's language ("a minute" for one).
fn throttled_message(portal: &Portal, lang: Lang, wait: Duration) -> String {
    let minutes = wait.as_secs().div_ceil(60).max(1);
    portal
        .templates
        .catalogs()
        .plural(lang, "error_throttled", minutes)
}

/// The label of a method on buttons.
pub fn method_label(portal: &Portal, lang: Lang, kind: MethodKind) -> String {
    let key = match kind {
        MethodKind::Email => "method_email",
        MethodKind::Sms => "method_sms",
        MethodKind::Totp => "method_totp",
        MethodKind::Questions => "method_questions",
        MethodKind::Attribute => "method_attribute",
        MethodKind::Passkey => "method_passkey",
    };
    portal.templates.catalogs().get(lang, key).to_string()
}

/// The result page's sentence about the user's other sessions, if there is one to say.
pub fn sign_out_paragraph(
    portal: &Portal,
    lang: Lang,
    sign_out: latchkey_selfservice::signout::SignOut,
) -> Option<String> {
    use latchkey_selfservice::signout::SignOut;
    let key = match sign_out {
        SignOut::Revoked => "done_sessions_revoked",
        SignOut::Failed => "done_sessions_not_revoked",
        SignOut::Skipped => return None,
    };
    Some(portal.templates.catalogs().get(lang, key).to_string())
}

/// Charges one verification attempt of this request's client and of `account_key` under
/// `failure_scope` before the answer is checked (`latchkey_selfservice::flow::charge_attempt`).
pub async fn charge(
    portal: &Portal,
    req: &HttpRequest,
    failure_scope: &str,
    account_key: &str,
) -> Result<(), Refusal> {
    let client = client(portal, req);
    latchkey_selfservice::flow::charge_attempt(
        &portal.services,
        &client,
        failure_scope,
        account_key,
    )
    .await
    .map(|_| ())
}

/// A form with nothing but its CSRF token.
#[derive(Deserialize)]
pub struct CsrfForm {
    pub csrf: String,
}

crate::with_csrf!(CsrfForm);

/// The CSRF token of a flow: bound to its stable id, so it survives token rotation.
pub fn csrf_token(portal: &Portal, flow: &Flow) -> String {
    portal.services.csrf.token(&flow.id.to_string())
}

/// The answer to a method that did not succeed: the method's page again with the reason (a
/// throttle, a wrong answer, nothing typed), or the error for what went wrong around it.
pub fn not_verified(
    portal: &Portal,
    step: &Step,
    e: VerifyError,
    again: impl FnOnce(String, StatusCode) -> HttpResponse,
    wrong_key: &str,
    missing_key: &str,
) -> Result<HttpResponse, WebError> {
    let catalogs = portal.templates.catalogs();
    let lang = step.lang;
    Ok(match e {
        VerifyError::Missing => again(
            catalogs.get(lang, missing_key).to_string(),
            StatusCode::BAD_REQUEST,
        ),
        VerifyError::Malformed => again(
            catalogs.get(lang, "error_code_format").to_string(),
            StatusCode::BAD_REQUEST,
        ),
        VerifyError::Refused(refusal) => again(refusal.message(portal, lang), refusal.status()),
        VerifyError::Wrong { tries_left } => {
            let left = match tries_left {
                0 => catalogs.get(lang, "tries_left_none").to_string(),
                n => catalogs.plural(lang, "tries_left", u64::from(n)),
            };
            again(
                format!("{} {left}", catalogs.get(lang, wrong_key)),
                StatusCode::BAD_REQUEST,
            )
        }
        VerifyError::Busy => return Err(WebError::Busy(lang)),
        VerifyError::Gone => return Err(WebError::Expired),
        VerifyError::Store(e) => return Err(WebError::Store(lang, e)),
        VerifyError::Fault(_) => return Err(WebError::unavailable(lang)),
    })
}

/// Where a method that succeeded leads: the next method, or the actions once verified enough;
/// with the flow's new token.
pub fn verified(portal: &Portal, v: Verified) -> HttpResponse {
    let resp = see_other(if v.complete { "/action" } else { "/verify" });
    crate::portal::with_cookie(resp, &flow_cookie(portal, &v.token))
}
