//! The one error type of the HTTP edge: every answer a handler gives other than its own page.
//! Handlers return `Result<HttpResponse, WebError>` and use `?`; domain errors become a
//! [`WebError`] here, in one place (`From` impls and the `*_in` constructors), never by hand in a
//! handler. [`WebError`] implements actix's `ResponseError`; the page itself (the error template in
//! the request's language, with the request's CSP nonce) is rendered by [`render`], a middleware
//! that has the portal at hand, which `ResponseError::error_response` has not.

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderValue, LOCATION, RETRY_AFTER};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError, web};
use latchkey_selfservice::act::ClaimError;
use latchkey_store::StoreError;

use crate::i18n::Lang;
use crate::portal::Portal;

/// What went wrong, as the user is told.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// No live flow (never started, expired, ended): back to the start, the flow cookie cleared.
    #[error("no live flow")]
    Expired,
    /// A step not reached yet (a flow still being verified): 303 to that step.
    #[error("see {0}")]
    SeeOther(&'static str),
    /// The form's CSRF token is wrong or missing, or the POST is not from our pages (403).
    #[error("bad form token")]
    Csrf(Lang),
    /// Not for this user (a console route without the console's session).
    #[error("forbidden")]
    Forbidden,
    /// The store failed: 503 "try again shortly"; the user keeps their place (cookie kept).
    #[error("store: {1}")]
    Store(Lang, StoreError),
    /// A page with one message: `status`, the message key, the language; `ended`: the flow ended
    /// server-side, so its cookie is cleared.
    #[error("{key} ({status})")]
    Page {
        status: StatusCode,
        key: &'static str,
        lang: Lang,
        ended: bool,
    },
    /// Every hashing thread is busy: 503 with `Retry-After`.
    #[error("busy")]
    Busy(Lang),
}

impl WebError {
    /// A page with `key` and `status`; the flow goes on (its cookie is kept).
    pub fn page(status: StatusCode, key: &'static str, lang: Lang) -> Self {
        WebError::Page {
            status,
            key,
            lang,
            ended: false,
        }
    }

    /// A page with `key` and `status` for a flow that ended (its cookie is cleared).
    pub fn ended(status: StatusCode, key: &'static str, lang: Lang) -> Self {
        WebError::Page {
            status,
            key,
            lang,
            ended: true,
        }
    }

    /// The same error for a flow that ended: its cookie is cleared with the answer.
    pub fn ending(self) -> Self {
        match self {
            WebError::Page {
                status, key, lang, ..
            } => WebError::Page {
                status,
                key,
                lang,
                ended: true,
            },
            other => other,
        }
    }

    /// 503 "something went wrong, try again later" (logged where it happened).
    pub fn unavailable(lang: Lang) -> Self {
        Self::page(StatusCode::SERVICE_UNAVAILABLE, "error_generic", lang)
    }

    /// A store error after the flow ended (its one change was made or refused): 503, cookie
    /// cleared, nothing to come back to.
    pub fn ended_store(lang: Lang, e: &StoreError) -> Self {
        tracing::error!(error = %e, "store unavailable after a flow ended");
        Self::ended(StatusCode::SERVICE_UNAVAILABLE, "error_generic", lang)
    }

    /// The answer to a refused claim ([`latchkey_selfservice::act::claim`]).
    pub fn claim(e: ClaimError, lang: Lang) -> Self {
        match e {
            ClaimError::NotVerified => WebError::SeeOther("/verify"),
            ClaimError::AlreadyUsed => Self::page(StatusCode::CONFLICT, "error_claimed", lang),
            ClaimError::NotAllowed(Ok(())) => {
                Self::ended(StatusCode::FORBIDDEN, "unavailable_body", lang)
            }
            ClaimError::NotAllowed(Err(e)) => Self::ended_store(lang, &e),
            ClaimError::TryAgain(recorded) => Self::try_again(lang, recorded),
            ClaimError::Store(e) => WebError::Store(lang, e),
        }
    }

    /// After a claim was given back: 503 "nothing was changed, try again in a minute", or the
    /// store's outage page when even the record of it failed. The verification still holds.
    pub fn try_again(lang: Lang, recorded: Result<(), StoreError>) -> Self {
        match recorded {
            Ok(()) => Self::page(StatusCode::SERVICE_UNAVAILABLE, "error_retry", lang),
            Err(e) => WebError::Store(lang, e),
        }
    }

    /// A flow that ended without its change: the page of `key` with `status`, or the store's
    /// outage page when the record of it failed.
    pub fn ended_recorded(
        recorded: Result<(), StoreError>,
        status: StatusCode,
        key: &'static str,
        lang: Lang,
    ) -> Self {
        match recorded {
            Ok(()) => Self::ended(status, key, lang),
            Err(e) => Self::ended_store(lang, &e),
        }
    }
}

/// How an error is shown, for [`render`]: the status line, and the page it asks for.
impl ResponseError for WebError {
    fn status_code(&self) -> StatusCode {
        match self {
            WebError::Expired | WebError::SeeOther(_) => StatusCode::SEE_OTHER,
            WebError::Csrf(_) | WebError::Forbidden => StatusCode::FORBIDDEN,
            WebError::Store(..) | WebError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            WebError::Page { status, .. } => *status,
        }
    }

    /// The bare answer: redirects are complete here; pages are filled in by [`render`].
    fn error_response(&self) -> HttpResponse<BoxBody> {
        let mut r = HttpResponse::new(self.status_code());
        let location = match self {
            WebError::Expired => Some("/"),
            WebError::SeeOther(path) => Some(*path),
            _ => None,
        };
        if let Some(path) = location {
            r.headers_mut()
                .insert(LOCATION, HeaderValue::from_static(path));
        }
        if matches!(self, WebError::Busy(_)) {
            r.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("5"));
        }
        if matches!(self, WebError::Forbidden) {
            // Deny by default, in as few words as possible: no page, no language.
            return HttpResponse::Forbidden()
                .content_type("text/plain; charset=utf-8")
                .body("forbidden");
        }
        r
    }
}

impl WebError {
    /// The language, message key and whether the flow cookie goes, of an error shown as a page.
    fn shown(&self) -> Option<(Lang, &'static str, bool)> {
        match self {
            WebError::Expired => None,
            WebError::SeeOther(_) => None,
            WebError::Forbidden => None,
            WebError::Csrf(lang) => Some((*lang, "error_csrf", false)),
            WebError::Store(lang, e) => {
                tracing::error!(error = %e, "store unavailable");
                Some((*lang, "error_store", false))
            }
            WebError::Busy(lang) => Some((*lang, "error_busy", false)),
            WebError::Page {
                key, lang, ended, ..
            } => Some((*lang, key, *ended)),
        }
    }

    /// Whether the answer clears the flow cookie.
    fn clears_flow(&self) -> bool {
        match self {
            WebError::Expired => true,
            WebError::Page { ended, .. } => *ended,
            _ => false,
        }
    }
}

/// A request the framework could not read for a page (a form that does not parse, too large, of
/// another content type): the page in the browser's language instead of the framework's text.
/// The gateway's JSON API keeps its plain answers.
fn unreadable_request<B>(res: &ServiceResponse<B>) -> Option<(Lang, &'static str, bool)> {
    if res.request().path().starts_with("/gateway/") {
        return None;
    }
    let key = match res.status() {
        StatusCode::PAYLOAD_TOO_LARGE => "error_form_large",
        StatusCode::BAD_REQUEST | StatusCode::UNSUPPORTED_MEDIA_TYPE => "error_form",
        _ => return None,
    };
    Some((crate::i18n::for_request(res.request(), None), key, false))
}

/// Middleware: renders every [`WebError`] a handler returned as the error page in its language
/// (with the request's CSP nonce, added by the headers middleware outside), and clears the flow
/// cookie when the flow ended. Anything else passes unchanged.
pub async fn render(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let res = next.call(req).await?;
    let Some(error) = res.response().error() else {
        return Ok(res.map_into_left_body());
    };
    let Some(portal) = res.request().app_data::<web::Data<Portal>>().cloned() else {
        return Ok(res.map_into_left_body());
    };
    let (status, clears, page) = match error.as_error::<WebError>() {
        Some(e) => (e.status_code(), e.clears_flow(), e.shown()),
        None => match unreadable_request(&res) {
            Some(shown) => (res.status(), false, Some(shown)),
            None => return Ok(res.map_into_left_body()),
        },
    };
    let retry_after = res.response().headers().get(RETRY_AFTER).cloned();
    let (req, res) = res.into_parts();
    let mut out = match page {
        Some((lang, key, _)) => portal.error_page(&req, lang, status, key),
        None => res.map_into_boxed_body(),
    };
    // What the bare answer said about when to come back stays on the page.
    if let Some(v) = retry_after {
        out.headers_mut().insert(RETRY_AFTER, v);
    }
    if clears {
        out = crate::flow_cookie::with_cleared_cookie(&portal, out);
    }
    Ok(ServiceResponse::new(req, out).map_into_right_body())
}
