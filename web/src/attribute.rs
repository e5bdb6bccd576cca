//! The directory-attribute method: the user types facts the directory holds about them (employee
//! id and hire date), compared in constant time. Off unless a policy lists `attribute`. Decoy and
//! out-of-policy flows compare against nothing, so they always answer "wrong" after the same work.
//! The directory values wait in the flow sealed with the at-rest key ([`seal`]), never in clear.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use latchkey_graph::User;
use latchkey_store::{Flow, Outcome, StoreError, aad};
use latchkey_types::{MethodKind, ObjectId, Secret};
use latchkey_verify::{
    AttributeKind, AttributeSpec, AttributeValue, DirectoryAttributes, Outcome as _,
};
use serde::{Deserialize, Serialize};
use time::macros::format_description;

use crate::app::Portal;
use crate::app::Unrecorded as _;
use crate::flow::{self, FlowData, Step};
use crate::identify::FieldError;
use crate::services::Services;
use crate::verification::{csrf_token, succeed};

/// What kind of secret the cipher's errors name.
const WHAT: &str = "directory attributes";
/// The "table" part of the associated data (the sign-in attempt uses `flows.signin`).
const TABLE: &str = "flows.attributes";

const EMPLOYEE_ID: &str = "employeeId";
const HIRE_DATE: &str = "employeeHireDate";

/// The attributes asked for: Entra's `employeeId` and `employeeHireDate`.
pub fn method() -> anyhow::Result<DirectoryAttributes> {
    Ok(DirectoryAttributes::new(vec![
        AttributeSpec {
            name: EMPLOYEE_ID.into(),
            kind: AttributeKind::Text,
        },
        AttributeSpec {
            name: HIRE_DATE.into(),
            kind: AttributeKind::Date,
        },
    ])?)
}

/// The user's values as the flow keeps them (hire date as YYYY-MM-DD).
pub fn directory_values(user: &User) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(id) = &user.employee_id {
        out.insert(EMPLOYEE_ID.to_string(), id.clone());
    }
    if let Some(date) = user.employee_hire_date {
        let d = date.date();
        out.insert(
            HIRE_DATE.to_string(),
            format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day()),
        );
    }
    out
}

/// Seals `values` for a reset flow of `subject` (the user's object id, or a decoy's random
/// placeholder): the expected answers of a knowledge check are secrets at rest (docs/security.md), so
/// only the at-rest key's ciphertext goes into the flow's data. The associated data names the
/// subject and the self-service purpose, so a sealed value copied into another flow's row does
/// not open. Every flow seals (decoys an empty map) so identify does the same work for all.
/// Empty (never matches) if sealing fails.
pub fn seal(services: &Services, subject: &ObjectId, values: &BTreeMap<String, String>) -> String {
    let sealed = serde_json::to_vec(values)
        .map(Secret::new)
        .map_err(|_| StoreError::Encrypt { what: WHAT })
        .and_then(|plain| {
            services
                .cipher
                .seal(plain.expose(), &aad(TABLE, subject, flow::PURPOSE), WHAT)
        });
    match sealed {
        Ok(blob) => STANDARD.encode(blob),
        Err(e) => {
            tracing::error!(error = %e, "attribute: cannot seal the directory values");
            String::new()
        }
    }
}

/// The values [`seal`] sealed into `flow`'s data; empty if they do not open (tampered, moved
/// from another row, another key), so the check fails closed.
fn open(services: &Services, flow: &Flow, data: &FlowData) -> BTreeMap<String, String> {
    let aad = aad(TABLE, &flow.subject, &flow.purpose);
    STANDARD
        .decode(data.attributes_sealed.as_bytes())
        .ok()
        .and_then(|blob| services.cipher.open(&blob, &aad, WHAT).ok())
        .and_then(|plain| serde_json::from_slice(plain.expose()).ok())
        .unwrap_or_default()
}

fn expected(values: &BTreeMap<String, String>) -> BTreeMap<String, AttributeValue> {
    let mut out = BTreeMap::new();
    if let Some(id) = values.get(EMPLOYEE_ID) {
        out.insert(EMPLOYEE_ID.to_string(), AttributeValue::Text(id.clone()));
    }
    if let Some(date) = values
        .get(HIRE_DATE)
        .and_then(|d| time::Date::parse(d, format_description!("[year]-[month]-[day]")).ok())
    {
        out.insert(HIRE_DATE.to_string(), AttributeValue::Date(date));
    }
    out
}

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
    form: web::Form<AttributeForm>,
) -> HttpResponse {
    let step = match Step::post(&portal, &req, &form.csrf).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    let kind = MethodKind::Attribute;
    if !portal.services.offered_methods().contains(&kind) {
        return portal.error_page(&req, step.lang, StatusCode::NOT_FOUND, "error_not_found");
    }
    let failures = format!("fail:{kind}");
    if let Err(refusal) =
        flow::charge_attempt(&portal, &req, &failures, &step.data.throttle_key).await
    {
        let msg = refusal.message(&portal, step.lang);
        step.audit(
            &portal,
            "verify.throttled",
            Some(kind),
            Outcome::Denied,
            None,
        )
        .await
        .or_log();
        return page(&portal, &req, &step, Some(msg), refusal.status());
    }
    // Decoys and flows whose policy does not allow the method compare against nothing (after
    // opening their sealed empty map: the same work as a real flow).
    let allowed = !step.data.decoy && step.data.methods.contains(&kind);
    let values = open(&portal.services, &step.flow, &step.data);
    let want = if allowed {
        expected(&values)
    } else {
        BTreeMap::new()
    };
    let given: BTreeMap<String, Secret<String>> = [
        (
            EMPLOYEE_ID.to_string(),
            Secret::new(form.employee_id.chars().take(128).collect()),
        ),
        (
            HIRE_DATE.to_string(),
            Secret::new(form.hire_date.chars().take(32).collect()),
        ),
    ]
    .into_iter()
    .collect();
    let outcome = portal.services.attributes.check(&want, &given);
    if !outcome.is_accepted() {
        if step
            .audit(
                &portal,
                "verify",
                Some(kind),
                Outcome::Failure,
                Some(outcome.reason()),
            )
            .await
            .is_err()
        {
            return step.unavailable(&portal, &req);
        }
        let msg = portal
            .templates
            .catalogs()
            .get(step.lang, "error_attribute_wrong")
            .to_string();
        return page(&portal, &req, &step, Some(msg), StatusCode::BAD_REQUEST);
    }
    succeed(&portal, &req, &step, kind).await
}
