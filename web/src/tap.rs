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
use crate::error::WebError;
use crate::extract::Posted;
use crate::flow::{CsrfForm, Step};
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
    /// The pass in groups of four characters, for reading it out or typing it.
    pub groups: Vec<String>,
    pub valid_from: String,
    pub minutes: String,
    pub once: bool,
}

impl TapView {
    pub fn of(tap: &TemporaryAccessPass, now: time::OffsetDateTime) -> TapView {
        let start = tap.start_date_time.unwrap_or(now);
        let f = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
        let chars: Vec<char> = tap.pass.expose().chars().collect();
        TapView {
            pass: tap.pass.expose().clone(),
            groups: chars.chunks(4).map(|c| c.iter().collect()).collect(),
            valid_from: start
                .to_offset(time::UtcOffset::UTC)
                .format(&f)
                .unwrap_or_default(),
            minutes: tap.lifetime_in_minutes.unwrap_or(60).to_string(),
            once: tap.is_usable_once.unwrap_or(true),
        }
    }
}

/// The answer for a pass that could not be issued.
pub fn failure(e: &TapError, lang: Lang) -> WebError {
    match e {
        TapError::Refused(_) => WebError::page(StatusCode::CONFLICT, "tap_refused", lang),
        TapError::Unavailable(_) => WebError::unavailable(lang),
    }
}

/// `POST /tap`: a fully verified flow whose policy (re-evaluated now) allows the action.
async fn submit(
    req: HttpRequest,
    portal: web::Data<Portal>,
    posted: Posted<CsrfForm>,
) -> Result<HttpResponse, WebError> {
    act::to_completion(submit_now(req, portal, posted.step)).await
}

async fn submit_now(
    req: HttpRequest,
    portal: web::Data<Portal>,
    step: Step,
) -> Result<HttpResponse, WebError> {
    let (acting, lang) = act::claim(&portal, step, Action::TemporaryAccessPass).await?;
    let tap = match tap::tap(&portal.services, acting).await {
        TapOutcome::Issued(tap) => tap,
        TapOutcome::TryAgain(recorded) => return Err(WebError::try_again(lang, recorded)),
        TapOutcome::Failed(e) => return Err(failure(&e, lang).ending()),
    };
    let view = TapView::of(&tap, portal.services.clock.now());
    let r = portal.render_in(
        &req,
        lang,
        "tap.html",
        // The flow's final page: a kiosk starts over after `[kiosk] done_seconds`, touched or not,
        // so the pass does not stay on a shared screen.
        &serde_json::json!({
            "tap": view, "signin": portal.services.signin_url, "flow_done": true,
        }),
    );
    Ok(crate::flow_cookie::with_cleared_cookie(&portal, r))
}
