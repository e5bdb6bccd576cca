//! Enrollment at `/enroll`: a signed-in user (see [`crate::signin`]) registers, changes and
//! removes the methods the reset flow verifies with.
//!
//! This module holds what every enrollment request shares, so each method's module only has to
//! know its own method: the routes, the session context (signed in, policy allows `enroll`,
//! CSRF), the one-time message for the next page, the change notice to earlier channels, and the
//! method-independent actions (remove, re-confirm).
//!
//! - `page`: the overview page every answer comes back to.
//! - `channel`: email and text message (stage the address or number, send a code).
//! - `authenticator`: authenticator app (stage a seed, show it once as a QR code).
//! - `questions`: security questions.
//! - `confirm`: the code that turns a staged email, phone or authenticator active.
//! - `passkey`: passkeys (several per user, each named; the browser creates them).
//! - **Remove** (here): removes the active and pending enrollment of a method.
//!
//! Every change is audited before the answer, re-checks the policy (`enroll` action, allowed
//! methods) with fresh group membership right before the write, and is announced with
//! [`Notice::MethodsChanged`] to every channel known *before* the change (active email and phone
//! enrollments and the directory mail). Policies may require enrollment (the page says so
//! prominently while methods are missing) and re-confirmation after N days (the page asks "still
//! yours?" and [`Store::reconfirm_enrollment`](latchkey_store::Store::reconfirm_enrollment)
//! stamps them). Every POST carries a CSRF token bound to the session's stable id.

mod authenticator;
mod channel;
mod confirm;
mod page;
mod passkey;
mod questions;
mod remove;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_notify::{ChangeKind, MethodChange, Notice, Notification, Recipient};
use latchkey_policy::{Action, Policy};
use latchkey_store::{EnrollmentState, Flow, FlowToken, FlowUpdate, Outcome};
use latchkey_types::{EmailAddress, MethodKind};
use serde::Deserialize;

use crate::i18n::Lang;
use crate::portal::Portal;
use crate::signin::{self, Session};
use latchkey_selfservice::act::current_policy;
use latchkey_selfservice::after_change::known_channels;
use latchkey_selfservice::flow::Unrecorded as _;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(signin::configure)
        .route("/enroll", web::get().to(page::index))
        .route("/enroll/reconfirm", web::post().to(reconfirm))
        // Before `/enroll/{kind}…`, which would take these paths.
        .route("/enroll/passkey/begin", web::post().to(passkey::begin))
        .route("/enroll/passkey/remove", web::post().to(passkey::remove))
        .route("/enroll/passkey", web::post().to(passkey::created))
        .route("/enroll/{kind}", web::post().to(add))
        .route("/enroll/{kind}/confirm", web::post().to(confirm::confirm))
        .route("/enroll/{kind}/resend", web::post().to(channel::resend))
        .route("/enroll/{kind}/remove", web::post().to(remove::remove));
}

/// Methods that can be enrolled here with a code or seed to confirm, in page order.
const KINDS: [MethodKind; 3] = [MethodKind::Email, MethodKind::Sms, MethodKind::Totp];
/// Methods the page lists and can remove: [`KINDS`] and security questions.
const PAGE_KINDS: [MethodKind; 4] = [
    MethodKind::Email,
    MethodKind::Sms,
    MethodKind::Totp,
    MethodKind::Questions,
];

/// Everything a request inside a signed-in session needs.
struct Ctx {
    token: FlowToken,
    flow: Flow,
    session: Session,
    policy: Policy,
    lang: Lang,
}

impl Ctx {
    /// Whether the user has `kind` active right now (before a change: it decides "added" or
    /// "changed"/"removed"); a store error counts as no.
    async fn has_active(&self, portal: &Portal, kind: MethodKind) -> bool {
        portal
            .services
            .store
            .enrollment(&self.flow.subject, kind.as_str(), EnrollmentState::Active)
            .await
            .ok()
            .flatten()
            .is_some()
    }

    fn allows(&self, kind: MethodKind) -> bool {
        self.policy.methods.contains(&kind) && KINDS.contains(&kind)
    }

    /// Stores `session` as this session's data (the flash message, a passkey registration under
    /// way). The one place enrollment writes its session.
    async fn keep(
        &self,
        portal: &Portal,
        session: &crate::signin::Session,
    ) -> Result<(), latchkey_store::StoreError> {
        let data = serde_json::to_value(session).inspect_err(|e| {
            tracing::error!(error = %e, "enroll: the session does not serialise");
        });
        let update = FlowUpdate {
            step: None,
            data: data.ok(),
        };
        let now = portal.services.clock.now();
        portal
            .services
            .store
            .update_flow(&self.token, update, now)
            .await
            .map(|_| ())
    }

    /// Audits an enrollment event of this session's user.
    async fn audit(
        &self,
        portal: &Portal,
        event_type: &str,
        method: Option<MethodKind>,
        outcome: Outcome,
        reason: Option<&str>,
    ) -> Result<(), latchkey_store::StoreError> {
        let (correlation, subject) = (&self.session.correlation_id, Some(self.flow.subject));
        latchkey_selfservice::flow::audit(
            &portal.services,
            correlation,
            subject,
            event_type,
            method,
            outcome,
            reason,
        )
        .await
    }

    /// The service-unavailable page in this session's language.
    fn unavailable(&self, portal: &Portal, req: &HttpRequest) -> HttpResponse {
        portal.error_page(
            req,
            self.lang,
            StatusCode::SERVICE_UNAVAILABLE,
            "error_generic",
        )
    }
}

/// A 303 to a local path.
fn see_other(path: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("Location", path.to_string()))
        .finish()
}

/// "Not available for your account": no policy, or a policy without `enroll`. Ends the session.
async fn unavailable(
    portal: &Portal,
    req: &HttpRequest,
    token: &FlowToken,
    flow: &Flow,
    session: &Session,
) -> HttpResponse {
    let lang = session.lang(req);
    latchkey_selfservice::flow::audit(
        &portal.services,
        &session.correlation_id,
        Some(flow.subject),
        "enroll.denied",
        None,
        Outcome::Denied,
        Some("no policy allows enrollment"),
    )
    .await
    .or_log();
    portal.services.store.end_flow(token).await.or_log();
    let catalogs = portal.templates.catalogs();
    // The signed-in user may know why: an account with a directory role is kept out of
    // self-service on purpose (docs/security.md), anyone else is simply not in scope.
    let privileged = portal
        .services
        .directory
        .memberships(&flow.subject)
        .await
        .is_ok_and(|m| !m.roles.is_empty());
    let why = if privileged {
        "enroll_unavailable_privileged"
    } else {
        "enroll_unavailable_body"
    };
    let contact = match portal.brand.helpdesk.as_deref() {
        Some(h) => catalogs
            .get(lang, "code_help_helpdesk")
            .replace("{helpdesk}", h),
        None => catalogs.get(lang, "code_help_helpdesk_none").to_string(),
    };
    let mut r = portal.render_in(
        req,
        lang,
        "result.html",
        &serde_json::json!({
            "title": catalogs.get(lang, "enroll_unavailable_title"),
            "paragraphs": [catalogs.get(lang, why), contact],
        }),
    );
    *r.status_mut() = StatusCode::FORBIDDEN;
    r = crate::portal::with_cookie(r, &signin::clear_session_cookie(portal));
    r
}

/// Loads the session and the policy that applies now. `Err` is the answer to send.
async fn context(portal: &Portal, req: &HttpRequest) -> Result<Ctx, HttpResponse> {
    let Some((token, flow, session)) = signin::load_session(portal, req).await else {
        // Signed out (or expired): start over at the page, which signs in again.
        let mut r = see_other("/enroll");
        r = crate::portal::with_cookie(r, &signin::clear_session_cookie(portal));
        return Err(r);
    };
    let lang = session.lang(req);
    // A directory fault shows the same page as a refusal here: enrollment changes nothing yet.
    match current_policy(&portal.services, &flow.subject, Action::Enroll)
        .await
        .ok()
        .flatten()
    {
        Some(policy) => Ok(Ctx {
            token,
            flow,
            session,
            policy,
            lang,
        }),
        None => Err(unavailable(portal, req, &token, &flow, &session).await),
    }
}

/// [`context`] for a POST: also checks the CSRF token (and Origin) first.
async fn post_context(portal: &Portal, req: &HttpRequest, csrf: &str) -> Result<Ctx, HttpResponse> {
    let Some((_, flow, session)) = signin::load_session(portal, req).await else {
        return context(portal, req).await;
    };
    if !portal.services.csrf.check(req, &flow.id.to_string(), csrf) {
        let lang = session.lang(req);
        return Err(portal.error_page(req, lang, StatusCode::FORBIDDEN, "error_csrf"));
    }
    context(portal, req).await
}

fn parse_kind(raw: &str) -> Option<MethodKind> {
    raw.parse::<MethodKind>().ok().filter(|k| KINDS.contains(k))
}

#[derive(Deserialize)]
pub struct AddForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    question_1: String,
    #[serde(default)]
    question_2: String,
    #[serde(default)]
    question_3: String,
    #[serde(default)]
    answer_1: String,
    #[serde(default)]
    answer_2: String,
    #[serde(default)]
    answer_3: String,
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// Stores a one-time message for the next page.
/// `notified`: a change notice went to at least one earlier channel (the page says so).
async fn set_flash(
    portal: &Portal,
    ctx: &Ctx,
    key: &str,
    kind: Option<MethodKind>,
    notified: bool,
) {
    let mut session = ctx.session.clone();
    session.flash = Some((
        key.to_string(),
        kind.map(|k| k.as_str().to_string()),
        notified,
    ));
    // A change just finished: a passkey registration still in this copy of the session is done
    // or abandoned, and must not be written back.
    session.passkey = None;
    if let Err(e) = ctx.keep(portal, &session).await {
        tracing::warn!(error = %e, "enroll: cannot store a message");
    }
}

/// `POST /enroll/{kind}`: add or change a method (email and phone: stage and send a code;
/// authenticator: stage a new seed and show it).
async fn add(
    req: HttpRequest,
    portal: web::Data<Portal>,
    path: web::Path<String>,
    form: web::Form<AddForm>,
) -> HttpResponse {
    let ctx = match post_context(&portal, &req, &form.csrf).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if path.as_str() == MethodKind::Questions.as_str()
        && ctx.policy.methods.contains(&MethodKind::Questions)
    {
        return questions::add_questions(&portal, &req, &ctx, &form).await;
    }
    let Some(kind) = parse_kind(&path).filter(|k| ctx.allows(*k)) else {
        return portal.error_page(&req, ctx.lang, StatusCode::NOT_FOUND, "error_not_found");
    };
    if kind == MethodKind::Totp {
        return authenticator::begin_totp(&portal, &req, &ctx).await;
    }
    channel::add(&portal, &req, &ctx, kind, &form).await
}

/// Tells every channel known before a change about it (queued).
async fn announce(
    portal: &Portal,
    ctx: &Ctx,
    channels: Vec<Recipient>,
    kind: MethodKind,
    change: ChangeKind,
) {
    let now = portal.services.clock.now();
    for recipient in channels {
        let n = Notification {
            recipient,
            notice: Notice::MethodsChanged {
                at: now,
                changes: vec![MethodChange {
                    method: kind.as_str().to_string(),
                    change,
                }],
            },
            lang: ctx.session.preferred_language.clone(),
            correlation_id: ctx.session.correlation_id.clone(),
            subject: Some(ctx.flow.subject),
        };
        portal.services.outbox.send(n).await;
    }
}

/// The end of every successful change of a method: the audit event (written before answering),
/// then, where `told` says so, the notice to the channels known before and the overview's flash
/// message; back to the overview. One place so every change is audited, told and shown alike.
async fn changed(
    portal: &Portal,
    req: &HttpRequest,
    ctx: &Ctx,
    kind: MethodKind,
    event: &str,
    reason: &str,
    told: Option<(Vec<Recipient>, ChangeKind, &str)>,
) -> HttpResponse {
    if ctx
        .audit(portal, event, Some(kind), Outcome::Success, Some(reason))
        .await
        .is_err()
    {
        return ctx.unavailable(portal, req);
    }
    if let Some((channels, change, flash)) = told {
        let notified = !channels.is_empty();
        announce(portal, ctx, channels, kind, change).await;
        set_flash(portal, ctx, flash, Some(kind), notified).await;
    }
    see_other("/enroll")
}

/// A method became active (a confirmed code or saved questions): `enroll.activate`, "added" or
/// "changed" after whether one was active before, told and shown like every change.
async fn activated(
    portal: &Portal,
    req: &HttpRequest,
    ctx: &Ctx,
    kind: MethodKind,
    had_active: bool,
    channels: Vec<Recipient>,
) -> HttpResponse {
    let (change, reason, flash) = if had_active {
        (ChangeKind::Changed, "changed", "enroll_flash_changed")
    } else {
        (ChangeKind::Added, "added", "enroll_flash_added")
    };
    let told = Some((channels, change, flash));
    changed(portal, req, ctx, kind, "enroll.activate", reason, told).await
}

/// Every channel the user had before a change: active email and phone, and the directory mail.
async fn channels_before(portal: &Portal, ctx: &Ctx) -> Vec<Recipient> {
    let mail = ctx
        .session
        .mail
        .as_deref()
        .and_then(|m| m.parse::<EmailAddress>().ok());
    known_channels(&portal.services, &ctx.flow.subject, mail.as_ref()).await
}

/// `POST /enroll/reconfirm`: "yes, these are still mine" for every active method.
async fn reconfirm(
    req: HttpRequest,
    portal: web::Data<Portal>,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    let ctx = match post_context(&portal, &req, &form.csrf).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let s = &portal.services;
    let subject = ctx.flow.subject;
    let now = s.clock.now();
    let active: Vec<String> = match s.store.enrollments(&subject).await {
        Ok(list) => list
            .into_iter()
            .filter(|e| e.state == EnrollmentState::Active)
            .map(|e| e.method)
            .collect(),
        Err(e) => {
            tracing::error!(error = %e, "enroll: cannot read enrollments");
            return ctx.unavailable(&portal, &req);
        }
    };
    for method in &active {
        if let Err(e) = s.store.reconfirm_enrollment(&subject, method, now).await {
            tracing::error!(error = %e, "enroll: cannot re-confirm");
            return ctx.unavailable(&portal, &req);
        }
    }
    if ctx
        .audit(
            &portal,
            "enroll.reconfirm",
            None,
            Outcome::Success,
            Some(&active.join(",")),
        )
        .await
        .is_err()
    {
        return ctx.unavailable(&portal, &req);
    }
    set_flash(&portal, &ctx, "enroll_flash_reconfirmed", None, false).await;
    see_other("/enroll")
}
