//! Finding a user and the user page: identity, account state, Latchkey enrollments, the policy
//! that applies and why, recent events, and what the member may do next.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_graph::AuthMethod;
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

#[derive(Serialize)]
struct MethodRow {
    kind: String,
    id: String,
    /// `type` for the delete form (the Graph collection segment).
    segment: Option<&'static str>,
    detail: String,
}

/// One row per Graph authentication method (phone numbers and addresses masked).
pub fn method_rows(methods: &[AuthMethod]) -> Vec<serde_json::Value> {
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
                        p.phone_type
                            .map(|t| format!("{t:?}").to_lowercase())
                            .unwrap_or_default()
                    ),
                ),
                AuthMethod::Email(e) => ("email", super::case::mask(&e.email_address)),
                AuthMethod::MicrosoftAuthenticator(a) => (
                    "microsoftAuthenticator",
                    a.display_name.clone().unwrap_or_default(),
                ),
                AuthMethod::Fido2(f) => ("fido2", f.display_name.clone().unwrap_or_default()),
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
                kind: kind.to_string(),
                id: m.id().unwrap_or_default().to_string(),
                segment: m.delete_segment(),
                detail,
            })
            .unwrap_or_default()
        })
        .collect()
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
    let now = s.clock.now();
    let groups = t.memberships.groups.iter().map(|g| g.id).collect();
    let set = s.policies();
    let evaluation = evaluate(
        &set,
        Subject {
            groups: &groups,
            privileged: t.privileged(),
        },
    );
    // Labels shared with the admin console's policy pages.
    let catalogs = portal.templates.catalogs();
    let method_label = |kind: &str| {
        catalogs
            .get(m.lang, &format!("admin_method_{kind}"))
            .to_string()
    };
    let policy = evaluation.policy.map(|p| {
        serde_json::json!({
            "name": p.name,
            "actions": p.actions.iter().map(|a| catalogs.get(m.lang, &format!("admin_action_{}", action_key(*a))).to_string()).collect::<Vec<_>>(),
            "methods": p.methods.iter().map(|k| method_label(k.as_str())).collect::<Vec<_>>(),
            "required": p.methods_required,
        })
    });
    let explain = evaluation.explain();
    // Identity Protection is throttled hard and needs P2: not knowing is shown as such.
    let at_risk = s.directory.is_at_risk(&u.id).await.ok();
    let password_age = u
        .last_password_change_date_time
        .map(|t| (now - t).whole_days().max(0).to_string());
    let enrollments: Vec<serde_json::Value> = s
        .store
        .enrollments(&u.id)
        .await
        .unwrap_or_default()
        .iter()
        .map(|e| {
            serde_json::json!({
                "method": method_label(&e.method),
                "active": e.state == EnrollmentState::Active,
                "confirmed": e.confirmed_at.map(date),
            })
        })
        .collect();
    let events: Vec<serde_json::Value> = s
        .store
        .audit_events(&AuditQuery {
            subject: Some(u.id),
            limit: 15,
            ..Default::default()
        })
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
    let case = super::case::load(portal, req, m, &u.id).await;
    let verified = case.as_ref().is_some_and(super::case::Case::verified);
    let channels: Vec<serde_json::Value> = super::case::channels(portal, &u.id)
        .await
        .into_iter()
        .map(|(k, to)| serde_json::json!({ "kind": k.as_str(), "to": to }))
        .collect();
    let methods = if verified {
        match s.directory.auth_methods(&u.id).await {
            Ok(list) => Some(method_rows(&list)),
            Err(e) => {
                tracing::warn!(error = %e, "helpdesk: cannot list methods");
                None
            }
        }
    } else {
        None
    };
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
    page(
        portal,
        req,
        m,
        "helpdesk_user.html",
        serde_json::json!({
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
            "case": case.as_ref().map(|c| serde_json::json!({
                "channel": c.data.channel,
                "sent_to": c.data.sent_to,
                "verified": c.verified(),
            })),
            "verified": verified,
            "channels": channels,
            "methods": methods,
            "can_tap": t.policy_allowing(portal, Action::TemporaryAccessPass).is_some(),
            "can_manage": t.policy_allowing(portal, Action::Enroll).is_some(),
            "errors": errors,
        }),
        status,
    )
}
