//! The directory-attribute method's page: the user types facts the directory holds about them
//! (employee id and hire date). The check is `latchkey_selfservice::attribute`'s: compared in
//! constant time against values sealed in the flow; decoy and out-of-policy flows compare against
//! nothing, so they always answer "wrong" after the same work.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_selfservice::attribute::AttributeAnswers;
use latchkey_selfservice::verify;
use latchkey_types::MethodKind;
use serde::{Deserialize, Serialize};

use crate::error::WebError;
use crate::extract::Posted;
use crate::flow::{self, Step};
use crate::flow::{csrf_token, not_verified, verified};
use crate::portal::Portal;
use crate::render::FieldError;

#[derive(Serialize)]
struct AttributePage {
    csrf: String,
    step: String,
    total: String,
    field_error: Option<String>,
    errors: Vec<FieldError>,
}

/// The form asking for the attributes.
pub fn page(
    portal: &Portal,
    req: &HttpRequest,
    step: &Step,
    error: Option<String>,
    status: StatusCode,
) -> HttpResponse {
    let done = step.flow.verified.len();
    let total = if done == 0 {
        String::new()
    } else {
        step.data.required.to_string()
    };
    let errors = error
        .iter()
        .map(|m| FieldError {
            field: "employee-id",
            message: m.clone(),
        })
        .collect();
    let page = AttributePage {
        csrf: csrf_token(portal, &step.flow),
        step: (done + 1).to_string(),
        total,
        field_error: error,
        errors,
    };
    let mut r = portal.render_in(req, step.lang, "verify_attribute.html", &page);
    *r.status_mut() = status;
    r
}

crate::with_csrf!(AttributeForm);

#[derive(Deserialize)]
pub struct AttributeForm {
    csrf: String,
    #[serde(default)]
    employee_id: String,
    #[serde(default)]
    hire_date: String,
}

/// `POST /verify/attribute`.
pub async fn submit(
    req: HttpRequest,
    portal: web::Data<Portal>,
    posted: Posted<AttributeForm>,
) -> Result<HttpResponse, WebError> {
    let Posted { step, form } = posted;
    if !portal
        .services
        .offered_methods()
        .contains(&MethodKind::Attribute)
    {
        return Err(WebError::page(
            StatusCode::NOT_FOUND,
            "error_not_found",
            step.lang,
        ));
    }
    let client = flow::client(&portal, &req);
    let given = AttributeAnswers::new(&form.employee_id, &form.hire_date);
    match verify::check_attribute(&portal.services, &step, given, &client).await {
        Ok(v) => Ok(verified(&portal, v)),
        Err(e) => {
            let again = |msg, status| page(&portal, &req, &step, Some(msg), status);
            let wrong = "error_attribute_wrong";
            not_verified(&portal, &step, e, again, wrong, wrong)
        }
    }
}
