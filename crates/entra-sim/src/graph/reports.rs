//! `/reports/authenticationMethods/userRegistrationDetails`: which methods each user registered,
//! for the whole tenant in one paged read (authenticationmethodsroot-list-userregistrationdetails).
//! Application or delegated `AuditLog.Read.All`; the tenant must hold Entra ID P1 or P2, else 403
//! `Authentication_RequestFromNonPremiumTenantOrB2CTenant` (the code Graph returns, as reported
//! in microsoft-graph-docs-contrib#8777). Disabled users are not listed ("doesn't work for
//! disabled users").

use actix_web::http::StatusCode;
use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{Map, Value, json};

use super::auth::{Caller, Perms};
use super::error::{GraphError, GraphResult};
use crate::app::Shared;
use crate::clock::fmt;
use crate::odata::{ODataQuery, paging};
use crate::state::User;
use crate::state::methods::PhoneType;

const REPORTS_READ: Perms = Perms {
    app: &["AuditLog.Read.All"],
    delegated: &["AuditLog.Read.All"],
};

/// Entries per page when the client asks for no `$top` (Microsoft does not document the report's
/// page size; this simulator's assumption).
const PAGE: usize = 1000;

/// `methodsRegistered` as the report names a user's methods.
fn methods_registered(u: &User) -> Vec<&'static str> {
    let m = &u.methods;
    let mut out = Vec::new();
    for p in &m.phones {
        out.push(match p.phone_type {
            PhoneType::Mobile => "mobilePhone",
            PhoneType::AlternateMobile => "alternateMobilePhone",
            PhoneType::Office => "officePhone",
        });
    }
    if m.email.is_some() {
        out.push("email");
    }
    if !m.microsoft_authenticator.is_empty() {
        out.push("microsoftAuthenticatorPush");
    }
    if !m.software_oath.is_empty() {
        out.push("softwareOneTimePasscode");
    }
    if !m.fido2.is_empty() {
        out.push("passKeyDeviceBound");
    }
    if !m.windows_hello_for_business.is_empty() {
        out.push("windowsHelloForBusiness");
    }
    if m.temporary_access_pass.is_some() {
        out.push("temporaryAccessPass");
    }
    out
}

fn entry(u: &User, updated: &str) -> Value {
    let methods = methods_registered(u);
    let sspr = methods.iter().any(|m| {
        matches!(
            *m,
            "mobilePhone" | "alternateMobilePhone" | "email" | "officePhone"
        )
    });
    json!({
        "id": u.id.to_string(),
        "userPrincipalName": u.upn,
        "userDisplayName": u.display_name,
        "userType": if u.user_type.eq_ignore_ascii_case("guest") { "guest" } else { "member" },
        "isAdmin": !u.roles.is_empty(),
        "isSsprRegistered": sspr,
        "isSsprEnabled": true,
        "isSsprCapable": sspr,
        "isMfaRegistered": !methods.is_empty(),
        "isMfaCapable": !methods.is_empty(),
        "isPasswordlessCapable": methods.iter().any(|m| matches!(*m, "passKeyDeviceBound" | "windowsHelloForBusiness")),
        "lastUpdatedDateTime": updated,
        "methodsRegistered": methods,
        "isSystemPreferredAuthenticationMethodEnabled": true,
        "systemPreferredAuthenticationMethods": [],
        "userPreferredMethodForSecondaryAuthentication": "",
    })
}

pub async fn user_registration_details(
    req: HttpRequest,
    shared: Data<Shared>,
    caller: Caller,
) -> GraphResult {
    caller.require(REPORTS_READ)?;
    let state = shared.state();
    if !state.tenant.premium {
        return Err(GraphError::new(
            StatusCode::FORBIDDEN,
            "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
            "Tenant is not a B2C tenant and doesn't have premium license",
        ));
    }
    let mut q = ODataQuery::from_request(&req)?;
    if q.top.is_none() {
        q.top = Some(PAGE);
    }
    // Page over indices, then render only the page: a 50,000-user tenant is read in 50 requests
    // without rendering every user 50 times.
    let listed: Vec<usize> = (0..state.users.len())
        .filter(|&i| state.users[i].account_enabled)
        .collect();
    let indices: Vec<Value> = listed.iter().map(|&i| json!(i)).collect();
    let path = "/reports/authenticationMethods/userRegistrationDetails";
    let (page, next) = paging::page(indices, &q, &shared.graph_base(), path)?;
    let updated = fmt::graph_precise(shared.clock.now());
    let items: Vec<Value> = page
        .iter()
        .filter_map(Value::as_u64)
        .filter_map(|i| state.users.get(usize::try_from(i).ok()?))
        .map(|u| entry(u, &updated))
        .collect();
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        json!(format!(
            "{}#reports/authenticationMethods/userRegistrationDetails",
            shared.metadata()
        )),
    );
    if let Some(n) = next {
        body.insert("@odata.nextLink".into(), json!(n));
    }
    body.insert("value".into(), Value::Array(items));
    Ok(HttpResponse::Ok().json(body))
}
