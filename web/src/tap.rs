//! Temporary Access Pass: issued to a fully verified self-service user when the policy allows the
//! `temporary_access_pass` action, and by the helpdesk console after it verified a caller.
//!
//! The pass is shown once (the page is `no-store`, like every page), never logged, never stored,
//! never sent: Graph returns it only at creation. The policy is evaluated again with fresh
//! membership right before the write (docs/security.md, principle 7). The pass is one-time use, with
//! the tenant policy's default lifetime; a new pass replaces a valid one (Graph's rule). Every
//! channel known before is told a pass was issued, and the flow ends.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_graph::{GraphError, TapRequest, TemporaryAccessPass};
use latchkey_notify::{Notice, Notification, Recipient};
use latchkey_policy::Action;
use latchkey_store::Outcome;
use latchkey_types::{EmailAddress, ObjectId};
use serde::Serialize;

use crate::act;
use crate::after_change::known_channels;
use crate::app::Portal;
use crate::flow;
use crate::i18n::Lang;
use crate::verification::CsrfForm;

/// The audit event of a self-service pass.
const EVENT: &str = "temporary_access_pass";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/tap", web::post().to(submit));
}

/// Why a pass could not be issued (the reason goes to the audit trail, never the pass).
#[derive(Debug, thiserror::Error)]
pub enum TapError {
    /// The tenant refused it: the TAP method is disabled or does not target the user, or the
    /// app lacks the permission.
    #[error("the tenant refused a Temporary Access Pass ({0})")]
    Refused(String),
    #[error("Graph is unavailable: {0}")]
    Unavailable(#[from] GraphError),
}

impl TapError {
    /// A short reason for the audit trail.
    pub fn reason(&self) -> String {
        match self {
            TapError::Refused(why) => format!("refused: {why}"),
            TapError::Unavailable(e) => format!("graph: {}", e.code().unwrap_or("unavailable")),
        }
    }
}

/// Issues a one-time pass for `user` with the tenant's default lifetime.
pub async fn issue(portal: &Portal, user: &ObjectId) -> Result<TemporaryAccessPass, TapError> {
    let request = TapRequest {
        is_usable_once: Some(true),
        ..TapRequest::default()
    };
    match portal
        .services
        .directory
        .create_temporary_access_pass(user, &request)
        .await
    {
        Ok(tap) => Ok(tap),
        // 400: disabled by policy / lifetime or usage not allowed; 403: not permitted.
        Err(e) if matches!(e.status(), Some(400 | 403)) => Err(TapError::Refused(
            e.code().unwrap_or("refused").chars().take(80).collect(),
        )),
        Err(e) => Err(TapError::Unavailable(e)),
    }
}

/// Tells every channel in `channels` that a pass was issued (stored first: see crate::notices).
pub async fn notify(
    portal: &Portal,
    user: &ObjectId,
    channels: Vec<Recipient>,
    lang: Option<String>,
    correlation_id: &str,
) {
    let now = portal.services.clock.now();
    for recipient in channels {
        let n = Notification {
            recipient,
            notice: Notice::TemporaryAccessPassIssued { at: now },
            lang: lang.clone(),
            correlation_id: correlation_id.to_string(),
            subject: Some(*user),
        };
        portal.services.outbox.send(n).await;
    }
}

/// What the page shows about a new pass.
#[derive(Serialize)]
pub struct TapView {
    /// The pass itself: rendered once into this page, nowhere else.
    pub pass: String,
    pub valid_from: String,
    pub minutes: String,
    pub once: bool,
}

impl TapView {
    pub fn of(tap: &TemporaryAccessPass, now: time::OffsetDateTime) -> TapView {
        let start = tap.start_date_time.unwrap_or(now);
        let f = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
        TapView {
            pass: tap.pass.expose().clone(),
            valid_from: start
                .to_offset(time::UtcOffset::UTC)
                .format(&f)
                .unwrap_or_default(),
            minutes: tap.lifetime_in_minutes.unwrap_or(60).to_string(),
            once: tap.is_usable_once.unwrap_or(true),
        }
    }
}

/// The localized error page for a pass that could not be issued.
pub fn failure_page(portal: &Portal, req: &HttpRequest, lang: Lang, e: &TapError) -> HttpResponse {
    match e {
        TapError::Refused(_) => portal.error_page(req, lang, StatusCode::CONFLICT, "tap_refused"),
        TapError::Unavailable(_) => {
            portal.error_page(req, lang, StatusCode::SERVICE_UNAVAILABLE, "error_generic")
        }
    }
}

/// `POST /tap`: a fully verified flow whose policy (re-evaluated now) allows the action.
async fn submit(
    req: HttpRequest,
    portal: web::Data<Portal>,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    act::to_completion(submit_now(req, portal, form.into_inner())).await
}

async fn submit_now(req: HttpRequest, portal: web::Data<Portal>, form: CsrfForm) -> HttpResponse {
    let acting = match act::claim(&portal, &req, &form.csrf, Action::TemporaryAccessPass).await {
        Ok(a) => a,
        Err(response) => return response,
    };
    // Once claimed, the change and the steps after it get a Graph budget of their own: they
    // must not be cut short by what the checks before them spent.
    let budget = portal.services.graph_budget;
    latchkey_graph::deadline::fresh(budget, issue_claimed(&portal, &req, acting)).await
}

/// [`submit_now`] once the flow is claimed.
async fn issue_claimed(portal: &Portal, req: &HttpRequest, acting: act::Acting) -> HttpResponse {
    let (user, lang) = (acting.step.flow.subject, acting.step.lang);
    let mail = acting
        .step
        .data
        .mail
        .as_deref()
        .and_then(|m| m.parse::<EmailAddress>().ok());
    let channels = known_channels(portal, &user, mail.as_ref()).await;
    let started = acting
        .audit(portal, EVENT, Outcome::Started, "one-time pass requested")
        .await;
    if started.is_err() {
        return acting.retry_page(portal, req, started).await;
    }
    let tap = match issue(portal, &user).await {
        Ok(t) => t,
        Err(e) => {
            if !matches!(e, TapError::Refused(_)) {
                tracing::error!(error = %e, "self-service TAP");
            }
            let audited = acting
                .audit(portal, EVENT, Outcome::Error, &e.reason())
                .await;
            return match e {
                // Graph said it made no pass (throttled, unavailable, never reached): the user
                // may try again without verifying again.
                TapError::Unavailable(ref g) if g.not_applied() => {
                    acting.retry_page(portal, req, audited).await
                }
                // No answer: a pass may exist that nobody saw. This verification is spent (a
                // retry could become a different change); the attempt is on record.
                TapError::Unavailable(_) | TapError::Refused(_) => {
                    acting.finish(portal).await;
                    flow::with_cleared_cookie(portal, failure_page(portal, req, lang, &e))
                }
            };
        }
    };
    let view = TapView::of(&tap, portal.services.clock.now());
    let reason = format!("one-time, {} minutes", view.minutes);
    if let Err(e) = acting.audit(portal, EVENT, Outcome::Success, &reason).await {
        // The `started` event is on record; the pass exists, so the user gets it.
        tracing::error!(error = %e, "TAP issued but the success event could not be written");
    }
    notify(
        portal,
        &user,
        channels,
        acting.step.data.preferred_language.clone(),
        &acting.step.data.correlation_id,
    )
    .await;
    crate::security_contacts::tell(
        portal,
        &acting.policy,
        latchkey_notify::ContactAction::TemporaryAccessPass,
        &user,
        &acting.step.data,
    )
    .await;
    // The flow is done: its token and codes go.
    acting.finish(portal).await;
    let r = portal.render_in(
        req,
        lang,
        "tap.html",
        &serde_json::json!({ "tap": view, "signin": portal.services.signin_url }),
    );
    flow::with_cleared_cookie(portal, r)
}
