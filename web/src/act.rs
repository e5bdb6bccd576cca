//! The HTTP side of the one change a verification authorizes (the claim itself, and every rule
//! of it, is `latchkey_selfservice::act`; docs/architecture.md, "The flow state machine").
//!
//! [`claim`] turns a POST's step into a claimed flow or the error to answer with
//! ([`WebError::claim`]). [`to_completion`] keeps a change running when the client hangs up.

use actix_web::HttpResponse;
use latchkey_policy::Action;
use latchkey_selfservice::act::{self, Acting};

use crate::error::WebError;
use crate::flow::Step;
use crate::i18n::Lang;
use crate::portal::Portal;

/// A POST that acts on the account: the step's flow fully verified and claimed for this one
/// change, and the policy still allowing `action` with fresh membership. Returns the claim and
/// the page's language.
pub async fn claim(
    portal: &Portal,
    step: Step,
    action: Action,
) -> Result<(Acting, Lang), WebError> {
    let Step { current, lang } = step;
    match act::claim(&portal.services, current, action).await {
        Ok(acting) => Ok((acting, lang)),
        Err(e) => Err(WebError::claim(e, lang)),
    }
}

/// Runs a handler that may change something on a task of its own, so that a client hanging up
/// (actix drops the request's future) cannot stop it between the change and the steps after it
/// (audit, notices, sign-out, ending the flow).
pub async fn to_completion<F>(handler: F) -> Result<HttpResponse, WebError>
where
    F: std::future::Future<Output = Result<HttpResponse, WebError>> + 'static,
{
    // The request's Graph budget goes along to the task.
    let deadline = latchkey_graph::deadline::current();
    match actix_web::rt::spawn(latchkey_graph::deadline::carry(deadline, handler)).await {
        Ok(answer) => answer,
        Err(e) => {
            tracing::error!(error = %e, "a change handler panicked");
            Ok(HttpResponse::InternalServerError().finish())
        }
    }
}
