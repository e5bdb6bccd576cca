//! The passkey prompt of a reset or unlock flow: `POST /verify/passkey/start` shows it (a new
//! challenge each time), `POST /verify/passkey` checks the answer. The page is the same for every
//! account: the browser is asked with an empty allow-list, so it offers whatever passkeys it has
//! for the portal, and nothing on the page depends on whether the account has one.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_selfservice::passkey::{self, AssertionAnswer};
use latchkey_selfservice::verify::VerifyError;
use serde::{Deserialize, Serialize};

use crate::error::WebError;
use crate::extract::Posted;
use crate::flow::{self, Step, csrf_token, not_verified, verified};
use crate::portal::Portal;
use crate::render::FieldError;

#[derive(Serialize)]
struct PasskeyPage {
    csrf: String,
    options: String,
    step: String,
    total: String,
    field_error: Option<String>,
    errors: Vec<FieldError>,
}

/// A fresh challenge for the prompt (kept with the flow; an earlier one stops working).
async fn options(
    portal: &Portal,
    step: &Step,
) -> Result<latchkey_selfservice::passkey::AssertionOptions, WebError> {
    match passkey::assertion_options(&portal.services, step).await {
        Ok(o) => Ok(o),
        Err(VerifyError::Store(e)) => Err(WebError::Store(step.lang, e)),
        Err(e) => {
            tracing::error!(error = %e, "passkey prompt");
            Err(WebError::unavailable(step.lang))
        }
    }
}

fn render(
    portal: &Portal,
    req: &HttpRequest,
    step: &Step,
    options: latchkey_selfservice::passkey::AssertionOptions,
    error: Option<String>,
    status: StatusCode,
) -> HttpResponse {
    let (current, total) = crate::verification::step_numbers(&step.flow, &step.data);
    let errors = error
        .iter()
        .map(|m| FieldError {
            field: "passkey-button",
            message: m.clone(),
        })
        .collect();
    let page = PasskeyPage {
        csrf: csrf_token(portal, &step.flow),
        options: super::options_json("get", options),
        step: current,
        total,
        field_error: error,
        errors,
    };
    let mut r = portal.render_in(req, step.lang, "verify_passkey.html", &page);
    *r.status_mut() = status;
    r
}

/// The prompt (`POST /verify/passkey/start`).
pub async fn page(
    portal: &Portal,
    req: &HttpRequest,
    step: &Step,
) -> Result<HttpResponse, WebError> {
    let options = options(portal, step).await?;
    Ok(render(portal, req, step, options, None, StatusCode::OK))
}

crate::with_csrf!(PasskeyForm);

#[derive(Deserialize)]
pub struct PasskeyForm {
    csrf: String,
    #[serde(flatten)]
    answer: AssertionAnswer,
}

/// `POST /verify/passkey`: one answer, charged and audited like a typed code.
pub async fn submit(
    req: HttpRequest,
    portal: web::Data<Portal>,
    posted: Posted<PasskeyForm>,
) -> Result<HttpResponse, WebError> {
    let Posted { step, form } = posted;
    crate::verification::offered_kind(&portal, "passkey", step.lang)?;
    let client = flow::client(&portal, &req);
    let checked = passkey::check_assertion(&portal.services, &step, &form.answer, &client).await;
    match checked {
        Ok(v) => Ok(verified(&portal, v)),
        Err(e) => {
            // A malformed answer is no answer a browser gives: "no passkey was used" (the typed
            // codes' "not a code" message would not fit).
            let e = match e {
                VerifyError::Malformed => VerifyError::Missing,
                e => e,
            };
            // Shown again with a new challenge: the old one was taken by this answer.
            let options = options(&portal, &step).await?;
            let again = |m, status| render(&portal, &req, &step, options, Some(m), status);
            let (wrong, missing) = ("error_passkey_wrong", "error_passkey_missing");
            not_verified(&portal, &step, e, again, wrong, missing)
        }
    }
}
