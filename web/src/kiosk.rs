//! Kiosk mode (docs/kiosk.md): the self-service flows on a shared PC or the Windows sign-in
//! screen's "Reset password" kiosk account. A browser enters it at `GET /kiosk`, which also
//! starts over: the flow of this browser ends, its language choice is forgotten, the first page
//! shows. Its pages then have no way out of the portal (no enrollment link, no sign-in link, no
//! web addresses in the text), a visible "Start over", larger targets, and they go back to
//! `/kiosk` by themselves when left alone — by script with a visible countdown, and by a
//! `<noscript>` meta refresh without it.
//!
//! Kiosk mode is presentation only: it grants nothing and every check of the flows applies as
//! anywhere else, so a browser that claims it (the cookie) changes nothing but its own pages.

use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::cookie::SameSite;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};

use crate::config::{KioskSettings, mentions_url};
use crate::error::WebError;
use crate::i18n::{CHOICE_COOKIE, Lang};
use crate::portal::Portal;
use crate::render::KioskView;

/// The visible countdown starts this many seconds before an idle kiosk page starts over.
const WARN_SECONDS: u32 = 20;

/// Where a kiosk starts (and starts over).
pub const START: &str = "/kiosk";

/// The marker cookie of a kiosk browser: a session cookie, gone when the kiosk's browser closes.
const COOKIE: &str = "latchkey-kiosk";

/// Paths that are not self-service: the consoles, enrollment (it signs in at Microsoft, which is
/// a way out) and the demo's pages. A kiosk browser is sent back to its start from them.
const NOT_FOR_KIOSKS: &[&str] = &["/admin", "/helpdesk", "/enroll", "/demo"];

/// Kiosk mode as configured (`[kiosk]`); a portal part when enabled.
#[derive(Debug)]
pub struct Kiosk {
    /// What its pages see (set on each kiosk request for the templates).
    view: Arc<KioskView>,
    /// The operator's own sentence about signing in on this screen, if any.
    signin_instructions: Option<String>,
}

impl Kiosk {
    /// Kiosk mode from `[kiosk]`, `None` when it is off. The footer's helpdesk text is kept only
    /// when it names no web address.
    pub fn from_settings(settings: &KioskSettings, brand_helpdesk: Option<&str>) -> Option<Self> {
        settings.enabled.then(|| {
            let helpdesk = settings.helpdesk.clone().or_else(|| {
                brand_helpdesk
                    .filter(|h| !mentions_url(h))
                    .map(str::to_string)
            });
            Self {
                view: Arc::new(KioskView {
                    idle: settings.idle_seconds,
                    done: settings.done_seconds,
                    warn: WARN_SECONDS.min(settings.idle_seconds),
                    helpdesk,
                }),
                signin_instructions: settings.signin_instructions.clone(),
            }
        })
    }

    /// What a final page says about signing in on this PC afterwards: the operator's sentence,
    /// else the built-in one for a new password or for an unlocked account.
    pub fn signin_paragraph(&self, portal: &Portal, lang: Lang, after: Finished) -> String {
        if let Some(text) = &self.signin_instructions {
            return text.clone();
        }
        let key = match after {
            Finished::Reset => "kiosk_signin",
            Finished::Unlock => "kiosk_signin_unlocked",
        };
        portal.templates.catalogs().get(lang, key).to_string()
    }
}

/// What a kiosk flow finished with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    /// A new password was set.
    Reset,
    /// The account was unlocked; the password is the old one.
    Unlock,
}

/// Kiosk mode, when this request renders a kiosk page.
pub fn active(portal: &Portal, req: &HttpRequest) -> Option<Arc<Kiosk>> {
    let marked = req.extensions().get::<Arc<KioskView>>().is_some();
    marked.then(|| portal.part::<Kiosk>()).flatten()
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(START, web::get().to(start));
}

/// Middleware: marks the requests of a kiosk browser (its cookie, or the kiosk's start itself)
/// so their pages render as kiosk pages, sends such a browser back to its start from the pages
/// that are not self-service, and forbids storing any of its answers.
pub async fn mark(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let kiosk = req
        .app_data::<web::Data<Portal>>()
        .and_then(|p| Some((p.part::<Kiosk>()?, p.services.cookies.name(COOKIE))));
    let Some((kiosk, cookie)) = kiosk else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    // The path as the router sees it: `/%65nroll` is `/enroll`.
    let path = percent_encoding::percent_decode_str(req.path())
        .decode_utf8_lossy()
        .to_ascii_lowercase();
    let machine = path.starts_with("/gateway/");
    let marked = req.cookie(&cookie).is_some_and(|c| c.value() == "1");
    if machine || (path != START && !marked) {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    if NOT_FOR_KIOSKS.iter().any(|p| path.starts_with(p)) {
        let (req, _) = req.into_parts();
        let res = crate::flow::see_other(START);
        return Ok(ServiceResponse::new(req, res).map_into_right_body());
    }
    req.extensions_mut().insert(Arc::clone(&kiosk.view));
    let mut res = next.call(req).await?;
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res.map_into_left_body())
}

/// `GET /kiosk`: starts (over). A browser that still has a flow or a language choice has them
/// taken away — the flow ends server-side too, so nothing of the last person's flow can be
/// picked up again with its cookie — and comes back here to a clean first page.
///
/// Only a navigation the browser itself started (the kiosk's launch, a typed address: `Sec-Fetch-
/// Site: none`) or one from the portal's own pages (`same-origin`: "Start over", the idle
/// reset) makes a browser a kiosk or ends its flow: a link on another site leads to the ordinary
/// first page, so no site can turn someone's browser into a kiosk or end their flow.
async fn start(req: HttpRequest, portal: web::Data<Portal>) -> Result<HttpResponse, WebError> {
    let lang = crate::flow::lang(&req, None);
    if portal.part::<Kiosk>().is_none() {
        return Err(WebError::page(
            StatusCode::NOT_FOUND,
            "error_not_found",
            lang,
        ));
    }
    let fetch_site = req
        .headers()
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok());
    if fetch_site.is_some_and(|site| !matches!(site, "none" | "same-origin")) {
        return Ok(crate::flow::see_other("/"));
    }
    let marker = (portal.services.cookies).cookie(COOKIE, "1".into(), SameSite::Strict);
    let language = (portal.services.cookies).cookie(CHOICE_COOKIE, String::new(), SameSite::Lax);
    let flow = crate::flow_cookie::token(&portal, &req);
    let enrollment = crate::signin::load_session(&portal, &req).await;
    // Once redirected here (`?again`), the start page shows even if a cookie would not go
    // away (one set for another path, say): never a redirect loop.
    let again = req.query_string() == "again";
    let clean = flow.is_none() && enrollment.is_none() && req.cookie(language.name()).is_none();
    if !clean {
        // Not ended, not started over: the store's outage page (the cookies kept), and the
        // page's own idle reset tries again.
        for token in flow.iter().chain(enrollment.as_ref().map(|(t, ..)| t)) {
            portal
                .services
                .store
                .end_flow(token)
                .await
                .map_err(|e| WebError::Store(lang, e))?;
        }
    }
    let page = if clean || again {
        crate::identify::index(req, portal.clone()).await
    } else {
        crate::flow::see_other("/kiosk?again")
    };
    // Whatever the last person left: their flow, an enrollment session or sign-in, the language.
    let mut page = crate::flow_cookie::with_cleared_cookie(&portal, page);
    let mut forget_language = language;
    forget_language.make_removal();
    for cookie in [
        forget_language,
        crate::signin::clear_session_cookie(&portal),
        crate::signin::clear_attempt_cookie(&portal),
        marker,
    ] {
        page = crate::portal::with_cookie(page, &cookie);
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_helpdesk_text_with_a_web_address_stays_off_kiosk_pages() {
        let on = KioskSettings {
            enabled: true,
            ..KioskSettings::default()
        };
        let k = Kiosk::from_settings(&on, Some("https://help.contoso.com")).unwrap();
        assert_eq!(k.view.helpdesk, None);
        let k = Kiosk::from_settings(&on, Some("x1234")).unwrap();
        assert_eq!(k.view.helpdesk.as_deref(), Some("x1234"));
        assert_eq!((k.view.idle, k.view.done, k.view.warn), (120, 30, 20));
        assert!(Kiosk::from_settings(&KioskSettings::default(), None).is_none());
    }
}
