//! The directory-attribute method: the user types facts the directory holds about them (employee
//! id and hire date), compared in constant time. Off unless a policy lists `attribute`. Decoy and
//! out-of-policy flows compare against nothing, so they always answer "wrong" after the same work.
//! The directory values wait in the flow sealed with the at-rest key ([`seal`]), never in clear.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use latchkey_graph::User;
use latchkey_store::{Flow, StoreError, aad};
use latchkey_types::{MethodKind, ObjectId, Secret};
use latchkey_verify::{
    AttributeError, AttributeKind, AttributeSpec, AttributeValue, DirectoryAttributes, Outcome as _,
};
use time::macros::format_description;

use crate::SelfService;
use crate::flow::{self, FlowData};

/// What kind of secret the cipher's errors name.
const WHAT: &str = "directory attributes";
/// The "table" part of the associated data (the sign-in attempt uses `flows.signin`).
const TABLE: &str = "flows.attributes";
/// The flow purpose the sealed values are bound to.
const PURPOSE: &str = latchkey_store::FlowPurpose::SelfService.as_str();

pub(crate) const EMPLOYEE_ID: &str = "employeeId";
pub(crate) const HIRE_DATE: &str = "employeeHireDate";

/// The attributes asked for: Entra's `employeeId` and `employeeHireDate`.
pub fn method() -> Result<DirectoryAttributes, AttributeError> {
    DirectoryAttributes::new(vec![
        AttributeSpec {
            name: EMPLOYEE_ID.into(),
            kind: AttributeKind::Text,
        },
        AttributeSpec {
            name: HIRE_DATE.into(),
            kind: AttributeKind::Date,
        },
    ])
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
pub fn seal(s: &SelfService, subject: &ObjectId, values: &BTreeMap<String, String>) -> String {
    let sealed = serde_json::to_vec(values)
        .map(Secret::new)
        .map_err(|_| StoreError::Encrypt { what: WHAT })
        .and_then(|plain| {
            s.cipher
                .seal(plain.expose(), &aad(TABLE, subject, PURPOSE), WHAT)
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
pub(crate) fn open(s: &SelfService, flow: &Flow, data: &FlowData) -> BTreeMap<String, String> {
    let aad = aad(TABLE, &flow.subject, flow.purpose.as_str());
    STANDARD
        .decode(data.attributes_sealed.as_bytes())
        .ok()
        .and_then(|blob| s.cipher.open(&blob, &aad, WHAT).ok())
        .and_then(|plain| serde_json::from_slice(plain.expose()).ok())
        .unwrap_or_default()
}

pub(crate) fn expected(values: &BTreeMap<String, String>) -> BTreeMap<String, AttributeValue> {
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

/// What the user typed for the attribute check, as the form has it.
pub struct AttributeAnswers {
    pub employee_id: Secret<String>,
    pub hire_date: Secret<String>,
}

impl AttributeAnswers {
    /// Bounded copies of what was typed (longer input is cut, never an error).
    pub fn new(employee_id: &str, hire_date: &str) -> Self {
        Self {
            employee_id: Secret::new(employee_id.chars().take(128).collect()),
            hire_date: Secret::new(hire_date.chars().take(32).collect()),
        }
    }
}

/// Compares `given` with the flow's sealed directory values. Decoys and flows whose policy does
/// not allow the method compare against nothing (after opening their sealed empty map: the same
/// work as a real flow). `Err` carries the reason for the audit trail.
pub(crate) fn check(
    s: &SelfService,
    current: &flow::Current,
    given: AttributeAnswers,
) -> Result<(), &'static str> {
    let (flow, data) = (&current.flow, &current.data);
    let allowed = !data.decoy && data.methods.contains(&MethodKind::Attribute);
    let values = open(s, flow, data);
    let want = if allowed {
        expected(&values)
    } else {
        BTreeMap::new()
    };
    let given: BTreeMap<String, Secret<String>> = [
        (EMPLOYEE_ID.to_string(), given.employee_id),
        (HIRE_DATE.to_string(), given.hire_date),
    ]
    .into_iter()
    .collect();
    let outcome = s.attributes.check(&want, &given);
    if outcome.is_accepted() {
        Ok(())
    } else {
        Err(outcome.reason())
    }
}
