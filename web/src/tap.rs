//! The pages of a Temporary Access Pass (issued by `latchkey_selfservice::tap`): to a fully
//! verified self-service user when the policy allows the `temporary_access_pass` action, and by
//! the helpdesk console after it verified a caller.
//!
//! The pass is shown once (the page is `no-store`, like every page), never logged, never stored,
//! never sent: Graph returns it only at creation. The policy is evaluated again with fresh
//! membership right before the write (docs/security.md, principle 7). The pass is one-time use, with
//! the tenant policy's default lifetime; a new pass replaces a valid one (Graph's rule). Every
//! channel known before is told a pass was issued, and the flow ends.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_graph::TemporaryAccessPass;
use latchkey_policy::Action;
use latchkey_selfservice::tap::{self, TapError, TapOutcome};
use serde::Serialize;

use crate::act;
use crate::flow;
use crate::flow::CsrfForm;
use crate::i18n::Lang;
use crate::portal::Portal;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/tap", web::post().to(submit));
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
    let action = Action::TemporaryAccessPass;
    let (acting, lang) = match act::claim(&portal, &req, &form.csrf, action).await {
        Ok(claimed) => claimed,
        Err(response) => return response,
    };
    let tap = match tap::tap(&portal.services, acting).await {
        TapOutcome::Issued(tap) => tap,
        TapOutcome::TryAgain(recorded) => return act::try_again(&portal, &req, lang, recorded),
        TapOutcome::Failed(e) => {
            let page = failure_page(&portal, &req, lang, &e);
            return flow::with_cleared_cookie(&portal, page);
        }
    };
    let view = TapView::of(&tap, portal.services.clock.now());
    let r = portal.render_in(
        &req,
        lang,
        "tap.html",
        &serde_json::json!({ "tap": view, "signin": portal.services.signin_url }),
    );
    flow::with_cleared_cookie(&portal, r)
}
