//! Finding a user and the user page: identity, account state, Latchkey enrollments, the policy
//! that applies and why, recent events, and what the member may do next.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_graph::{AuthMethod, PhoneType};
use latchkey_policy::{Action, Subject, evaluate};
use latchkey_store::{AuditQuery, EnrollmentState};
use serde::{Deserialize, Serialize};

use super::{Target, page, target};
use crate::console::ConsoleUser;
use crate::extract::{HelpdeskConsole, Member};
use crate::portal::Portal;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/helpdesk", web::get().to(home))
        .route("/helpdesk/user", web::get().to(user));
}

async fn home(
    req: HttpRequest,
    portal: web::Data<Portal>,
    m: Member<HelpdeskConsole>,
) -> HttpResponse {
    page(
        &portal,
        &req,
        &m,
        "helpdesk_index.html",
        serde_json::json!({ "q": "", "errors": [], "section": "search" }),
        StatusCode::OK,
    )
}

/// The search page with "no user you may serve matches": the same for unknown and out-of-scope.
pub fn not_found(portal: &Portal, req: &HttpRequest, m: &ConsoleUser, query: &str) -> HttpResponse {
    let msg = super::message(portal, m, "helpdesk_not_found", &[]);
    page(
        portal,
        req,
        m,
        "helpdesk_index.html",
        serde_json::json!({
            "section": "search",
            "q": query.chars().take(320).collect::<String>(),
            "q_error": msg,
            "errors": [{ "field": "q", "message": msg }],
        }),
        StatusCode::NOT_FOUND,
    )
}

#[derive(Deserialize)]
struct UserQuery {
    #[serde(default)]
    q: String,
}

async fn user(
    req: HttpRequest,
    portal: web::Data<Portal>,
    query: web::Query<UserQuery>,
    m: Member<HelpdeskConsole>,
) -> HttpResponse {
    // Not an address or id: a name, unless it names one account exactly (a bare account name).
    if super::search::is_name(&query.q) {
        match super::find(&portal, &query.q).await {
            Ok(Some(_)) => {}
            Ok(None) => return super::search::results(&portal, &req, &m, query.q.trim()).await,
            Err(e) => {
                tracing::error!(error = %e, "helpdesk: directory unavailable");
                return portal.error_page(
                    &req,
                    m.lang,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "error_generic",
                );
            }
        }
    }
    let t = match target(&portal, &req, &m, &query.q).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    if m.audit(
        &portal,
        "helpdesk.lookup",
        Some(t.user.id),
        latchkey_store::Outcome::Success,
        None,
        serde_json::Value::Null,
    )
    .await
    .is_err()
    {
        return super::case::unavailable(&portal, &req, &m);
    }
    render_user(&portal, &req, &m, &t, None, StatusCode::OK).await
}

/// Who the user is, for pages.
pub fn identity(t: &Target) -> serde_json::Value {
    let u = &t.user;
    serde_json::json!({
        "id": u.id.to_string(),
        "upn": u.user_principal_name.as_str(),
        "name": u.display_name.clone().unwrap_or_else(|| u.user_principal_name.as_str().to_string()),
        "mail": u.mail.as_ref().map(ToString::to_string),
    })
}

/// The friendly-name key part of a method collection (`phoneMethods` → `phone`).
pub fn kind_of_segment(segment: &str) -> &'static str {
    match segment {
        "phoneMethods" => "phone",
        "emailMethods" => "email",
        "microsoftAuthenticatorMethods" => "microsoftAuthenticator",
        "fido2Methods" => "fido2",
        "temporaryAccessPassMethods" => "temporaryAccessPass",
        "softwareOathMethods" => "softwareOath",
        "windowsHelloForBusinessMethods" => "windowsHelloForBusiness",
        "platformCredentialMethods" => "platformCredential",
        "externalAuthenticationMethods" => "external",
        _ => "unknown",
    }
}

#[derive(Serialize)]
struct MethodRow {
    kind: String,
    /// The friendly name ("Security key or passkey"), in the member's language.
    label: String,
    id: String,
    /// `type` for the delete form (the Graph collection segment).
    segment: Option<&'static str>,
    detail: String,
}

/// One row per Graph authentication method (phone numbers and addresses masked), with its
/// friendly name from `label` (given the kind, e.g. `fido2`).
pub fn method_rows(
    methods: &[AuthMethod],
    label: impl Fn(&str) -> String,
) -> Vec<serde_json::Value> {
    methods
        .iter()
        .map(|m| {
            let (kind, detail) = match m {
                AuthMethod::Password(_) => ("password", String::new()),
                AuthMethod::Phone(p) => (
                    "phone",
                    format!(
                        "{} ({})",
                        super::case::mask(&p.phone_number),
                        label(match p.phone_type {
                            Some(PhoneType::Mobile) => "phone_mobile",
                            Some(PhoneType::AlternateMobile) => "phone_alternate",
                            Some(PhoneType::Office) => "phone_office",
                            _ => "phone",
                        })
                    ),
                ),
                AuthMethod::Email(e) => ("email", super::case::mask(&e.email_address)),
                AuthMethod::MicrosoftAuthenticator(a) => (
                    "microsoftAuthenticator",
                    a.display_name.clone().unwrap_or_default(),
                ),
                AuthMethod::Fido2(f) => ("fido2", fido2_detail(f)),
                AuthMethod::TemporaryAccessPass(_) => ("temporaryAccessPass", String::new()),
                AuthMethod::SoftwareOath(_) => ("softwareOath", String::new()),
                AuthMethod::WindowsHelloForBusiness(w) => (
                    "windowsHelloForBusiness",
                    w.display_name.clone().unwrap_or_default(),
                ),
                AuthMethod::PlatformCredential(p) => (
                    "platformCredential",
                    p.display_name.clone().unwrap_or_default(),
                ),
                AuthMethod::External(e) => ("external", e.display_name.clone().unwrap_or_default()),
                AuthMethod::Unknown { .. } => ("unknown", String::new()),
            };
            serde_json::to_value(MethodRow {
                label: label(kind),
                kind: kind.to_string(),
                id: m.id().unwrap_or_default().to_string(),
                segment: m.delete_segment(),
                detail,
            })
            .unwrap_or_default()
        })
        .collect()
}

/// A passkey's name and its model: from the shipped AAGUID table, else what Entra reports
/// (the helpdesk tells "YubiKey 5 NFC" from "iCloud Keychain" when a caller says which one is
/// lost).
fn fido2_detail(f: &latchkey_graph::Fido2Method) -> String {
    let name = f.display_name.clone().unwrap_or_default();
    let model = f
        .aa_guid
        .as_deref()
        .and_then(latchkey_passkey::aaguid::model_name)
        .map(str::to_string)
        .or_else(|| f.model.clone().filter(|m| !m.is_empty()));
    match model {
        Some(m) if name.is_empty() => m,
        Some(m) => format!("{name} ({m})"),
        None => name,
    }
}

/// The policy-file name of an action (`admin_action_*` labels).
fn action_key(a: Action) -> &'static str {
    match a {
        Action::Reset => "reset",
        Action::Unlock => "unlock",
        Action::TemporaryAccessPass => "temporary_access_pass",
        Action::Enroll => "enroll",
    }
}

fn date(t: time::OffsetDateTime) -> String {
    let f = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    t.to_offset(time::UtcOffset::UTC)
        .format(&f)
        .unwrap_or_default()
}

/// The policy that applies to the user now, with its labels, and how it was chosen.
fn policy_view(
    portal: &Portal,
    m: &ConsoleUser,
    t: &Target,
) -> (Option<serde_json::Value>, String) {
    let groups = t.memberships.groups.iter().map(|g| g.id).collect();
    let set = portal.services.policies();
    let evaluation = evaluate(
        &set,
        Subject {
            groups: &groups,
            privileged: t.privileged(),
        },
    );
    // Labels shared with the admin console's policy pages.
    let catalogs = portal.templates.catalogs();
    let label =
        |prefix: &str, name: &str| catalogs.get(m.lang, &format!("{prefix}{name}")).to_string();
    let policy = evaluation.policy.map(|p| {
        serde_json::json!({
            "name": p.name,
            "actions": p.actions.iter().map(|a| label("admin_action_", action_key(*a))).collect::<Vec<_>>(),
            "methods": p.methods.iter().map(|k| label("admin_method_", k.as_str())).collect::<Vec<_>>(),
            "required": p.methods_required,
        })
    });
    (policy, evaluation.explain())
}

/// The user's Latchkey enrollments and latest audit events, for the page.
async fn history(
    portal: &Portal,
    m: &ConsoleUser,
    t: &Target,
) -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
    let s = &portal.services;
    let catalogs = portal.templates.catalogs();
    let mut enrollments: Vec<serde_json::Value> = s
        .store
        .enrollments(&t.user.id)
        .await
        .unwrap_or_default()
        .iter()
        .map(|e| {
            serde_json::json!({
                "method": catalogs.get(m.lang, &format!("admin_method_{}", e.method)),
                "active": e.state == EnrollmentState::Active,
                "confirmed": e.confirmed_at.map(date),
            })
        })
        .collect();
    // Portal passkeys, one row each with the name the user gave it.
    let passkey = catalogs.get(m.lang, "admin_method_passkey");
    for k in s.store.passkeys(&t.user.id).await.unwrap_or_default() {
        enrollments.push(serde_json::json!({
            "method": format!("{passkey}: {}", k.name),
            "active": true,
            "confirmed": Some(date(k.created_at)),
        }));
    }
    let query = AuditQuery {
        subject: Some(t.user.id),
        limit: 15,
        ..Default::default()
    };
    let events = s
        .store
        .audit_events(&query)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|r| {
            let e = r.event;
            serde_json::json!({
                "at": date(e.at),
                "type": e.event_type,
                "outcome": format!("{:?}", e.outcome).to_lowercase(),
                "actor": e.details.get("actor_upn").and_then(|v| v.as_str()).map_or(e.actor.clone(), str::to_string),
                "reason": e.reason,
            })
        })
        .collect();
    (enrollments, events)
}

/// The caller case of this member for the user, the channels a code can go to, and (once the
/// caller is verified) the user's registered methods.
async fn caller_view(
    portal: &Portal,
    req: &HttpRequest,
    m: &ConsoleUser,
    t: &Target,
) -> serde_json::Value {
    let u = &t.user;
    let case = super::case::load(portal, req, m, &u.id).await;
    let verified = case.as_ref().is_some_and(super::case::Case::verified);
    let channels: Vec<serde_json::Value> = super::case::channels(portal, &u.id)
        .await
        .into_iter()
        .map(|(k, to)| serde_json::json!({ "kind": k.as_str(), "to": to }))
        .collect();
    let methods = if verified {
        match portal.services.directory.auth_methods(&u.id).await {
            Ok(list) => {
                let catalogs = portal.templates.catalogs();
                let label = |kind: &str| {
                    catalogs
                        .get(m.lang, &format!("helpdesk_kind_{kind}"))
                        .to_string()
                };
                Some(method_rows(&list, label))
            }
            Err(e) => {
                tracing::warn!(error = %e, "helpdesk: cannot list methods");
                None
            }
        }
    } else {
        None
    };
    serde_json::json!({
        "case": case.as_ref().map(|c| serde_json::json!({
            "channel": c.data.channel,
            "sent_to": c.data.sent_to,
            "verified": c.verified(),
        })),
        "verified": verified,
        "channels": channels,
        "methods": methods,
    })
}

/// The user page, with an optional error (from a form on it) and status.
pub async fn render_user(
    portal: &Portal,
    req: &HttpRequest,
    m: &ConsoleUser,
    t: &Target,
    error: Option<String>,
    status: StatusCode,
) -> HttpResponse {
    let s = &portal.services;
    let u = &t.user;
    let (policy, explain) = policy_view(portal, m, t);
    // Identity Protection is throttled hard and needs P2: not knowing is shown as such.
    let at_risk = s.directory.is_at_risk(&u.id).await.ok();
    let password_age = u
        .last_password_change_date_time
        .map(|when| (s.clock.now() - when).whole_days().max(0).to_string());
    let (enrollments, events) = history(portal, m, t).await;
    let roles: Vec<String> = t
        .memberships
        .roles
        .iter()
        .map(|r| r.display_name.clone().unwrap_or_else(|| r.id.to_string()))
        .collect();
    let errors: Vec<serde_json::Value> = error
        .iter()
        .map(|e| serde_json::json!({ "field": "actions", "message": e }))
        .collect();
    let mut context = serde_json::json!({
        "target": identity(t),
        "enabled": u.account_enabled,
        "synced": u.on_premises_sync_enabled == Some(true),
        "at_risk": at_risk,
        "password_age": password_age,
        "roles": roles,
        "privileged": t.privileged(),
        "policy": policy,
        "explain": explain,
        "enrollments": enrollments,
        "events": events,
        "can_tap": t.policy_allowing(portal, Action::TemporaryAccessPass).is_some(),
        "can_manage": t.policy_allowing(portal, Action::Enroll).is_some(),
        // On-premises accounts only: a cloud account's smart lockout ends by itself.
        "can_unlock": u.on_premises_sync_enabled == Some(true)
            && t.policy_allowing(portal, Action::Unlock).is_some(),
        "errors": errors,
    });
    if let (Some(c), serde_json::Value::Object(caller)) = (
        context.as_object_mut(),
        caller_view(portal, req, m, t).await,
    ) {
        c.extend(caller);
    }
    page(portal, req, m, "helpdesk_user.html", context, status)
}
