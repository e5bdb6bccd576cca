//! The HTTP side of the one change a verification authorizes (the claim itself, and every rule
//! of it, is `latchkey_selfservice::act`; docs/architecture.md, "The flow state machine").
//!
//! [`claim`] turns a POST into a claimed flow or the answer to send: back to the methods when
//! not verified yet, 409 when the verification was already used, 403 when the policy no longer
//! allows the action, 503 "nothing changed, try again" on a transient fault. [`to_completion`]
//! keeps a change running when the client hangs up.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use latchkey_policy::Action;
use latchkey_selfservice::act::{self, Acting, ClaimError, Recorded};

use crate::flow::{self, Step};
use crate::i18n::Lang;
use crate::portal::Portal;

/// A POST that acts on the account: the form's CSRF token right, the flow fully verified and
/// claimed for this one change, and the policy still allowing `action` with fresh membership.
/// Returns the claim and the page's language; the error is the response to send.
pub async fn claim(
    portal: &Portal,
    req: &HttpRequest,
    csrf: &str,
    action: Action,
) -> Result<(Acting, Lang), HttpResponse> {
    let Step { current, lang } = Step::post(portal, req, csrf).await?;
    match act::claim(&portal.services, current, action).await {
        Ok(acting) => Ok((acting, lang)),
        Err(ClaimError::NotVerified) => Err(flow::see_other("/verify")),
        Err(ClaimError::AlreadyUsed) => {
            Err(portal.error_page(req, lang, StatusCode::CONFLICT, "error_claimed"))
        }
        Err(ClaimError::NotAllowed(recorded)) => Err(match recorded {
            Ok(()) => flow::with_cleared_cookie(
                portal,
                portal.error_page(req, lang, StatusCode::FORBIDDEN, "unavailable_body"),
            ),
            Err(e) => flow::ended_unavailable(portal, req, lang, &e),
        }),
        Err(ClaimError::TryAgain(recorded)) => Err(try_again(portal, req, lang, recorded)),
        Err(ClaimError::Store(e)) => Err(flow::store_unavailable(portal, req, lang, &e)),
    }
}

/// The answer after a claim was given back: 503 "nothing was changed, try again in a minute" —
/// or the store's outage page when even the record of it failed. The cookie stays: the
/// verification still holds.
pub fn try_again(
    portal: &Portal,
    req: &HttpRequest,
    lang: Lang,
    recorded: Recorded,
) -> HttpResponse {
    match recorded {
        Ok(()) => portal.error_page(req, lang, StatusCode::SERVICE_UNAVAILABLE, "error_retry"),
        Err(e) => flow::store_unavailable(portal, req, lang, &e),
    }
}

/// The answer for a flow that ended without its change: the error page of `key` with
/// `status`, or the store's outage page when the record of it failed. The cookie is cleared.
pub fn ended(
    portal: &Portal,
    req: &HttpRequest,
    lang: Lang,
    recorded: Recorded,
    status: StatusCode,
    key: &str,
) -> HttpResponse {
    match recorded {
        Ok(()) => flow::with_cleared_cookie(portal, portal.error_page(req, lang, status, key)),
        Err(e) => flow::ended_unavailable(portal, req, lang, &e),
    }
}

/// Runs a handler that may change something on a task of its own, so that a client hanging up
/// (actix drops the request's future) cannot stop it between the change and the steps after it
/// (audit, notices, sign-out, ending the flow).
pub async fn to_completion<F>(handler: F) -> HttpResponse
where
    F: std::future::Future<Output = HttpResponse> + 'static,
{
    // The request's Graph budget goes along to the task.
    let deadline = latchkey_graph::deadline::current();
    match actix_web::rt::spawn(latchkey_graph::deadline::carry(deadline, handler)).await {
        Ok(response) => response,
        Err(e) => {
            tracing::error!(error = %e, "a change handler panicked");
            HttpResponse::InternalServerError().finish()
        }
    }
}
