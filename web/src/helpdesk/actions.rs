//! What a member may do for a verified caller, where the user's policy allows it: issue a
//! Temporary Access Pass (policy action `temporary_access_pass`), delete a lost authentication
//! method or require re-enrollment (policy action `enroll`, i.e. managing methods).
//!
//! Each POST passes, in order: the gate and CSRF, scope, a verified caller case of this member
//! and session for this user ([`super::caller`]), the policy evaluated now with this request's
//! membership, and for privileged targets (any directory role) a second member's approval.
//!
//! **Approvals** live in the append-only audit trail: a request is an event
//! `helpdesk.approval.requested` whose correlation id is the request id; another member's
//! `helpdesk.approval.granted` for it (never the requester's own) lets the requester do that one
//! action once within [`APPROVAL_WINDOW`]. "Once" is the store's atomic throttle with a limit of
//! one per request id (granting and using), so two concurrent uses cannot both pass.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_notify::{ChangeKind, MethodChange, Notice, Notification, Recipient};
use latchkey_policy::Action;
use latchkey_store::{
    AuditEvent, AuditQuery, AuditRecord, Limit, Outcome, ThrottleDecision, ThrottleKey,
};
use latchkey_types::ObjectId;
use serde::Deserialize;

use super::{Target, page, see_other, target, user_path};
use crate::console::ConsoleUser;
use crate::error::WebError;
use crate::extract::{HelpdeskConsole, Member, MemberForm};
use crate::portal::Portal;
use crate::tap;
use latchkey_selfservice::flow::Unrecorded as _;

/// How long an approval request (and a grant) stays usable.
pub const APPROVAL_WINDOW: Duration = Duration::from_secs(30 * 60);

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/helpdesk/tap", web::post().to(issue_tap))
        .route("/helpdesk/method/delete", web::post().to(delete_method))
        .route("/helpdesk/reenroll", web::post().to(reenroll))
        .route(
            "/helpdesk/approval/request",
            web::post().to(request_approval),
        )
        .route("/helpdesk/approvals", web::get().to(approvals))
        .route("/helpdesk/approval/approve", web::post().to(approve));
}

/// The action names used in approvals and audit details.
fn action_key(kind: &str, method: Option<(&str, &str)>) -> String {
    match method {
        Some((segment, id)) => format!("{kind}:{segment}:{id}"),
        None => kind.to_string(),
    }
}

/// An audit event by `m` under `correlation_id` (approvals use the request id).
async fn audit_as(
    portal: &Portal,
    m: &ConsoleUser,
    correlation_id: &str,
    event_type: &str,
    subject: ObjectId,
    outcome: Outcome,
    details: serde_json::Value,
) -> Result<(), latchkey_store::StoreError> {
    let mut d = match details {
        serde_json::Value::Object(o) => o,
        _ => serde_json::Map::new(),
    };
    d.insert("actor_upn".into(), m.upn.clone().into());
    d.insert("console".into(), "helpdesk".into());
    let event = AuditEvent {
        at: portal.services.clock.now(),
        correlation_id: correlation_id.to_string(),
        actor: m.oid.to_string(),
        subject: Some(subject),
        event_type: event_type.to_string(),
        method: None,
        outcome,
        reason: None,
        details: serde_json::Value::Object(d),
    };
    portal.services.store.append_audit(&event).await.map(|_| ())
}

/// Records one use of `(scope, id)` if none was recorded within the window: `true` once.
async fn once(portal: &Portal, scope: &str, id: &str) -> bool {
    let limit = [Limit::new(1, APPROVAL_WINDOW * 2)];
    matches!(
        portal
            .services
            .store
            .hit(
                &ThrottleKey::new(scope, id),
                &limit,
                portal.services.clock.now()
            )
            .await,
        Ok(ThrottleDecision::Allowed { .. })
    )
}

/// Finds and consumes a grant for `m` to do `action` on `user`; returns its request id.
async fn use_approval(
    portal: &Portal,
    m: &ConsoleUser,
    user: &ObjectId,
    action: &str,
) -> Option<String> {
    let now = portal.services.clock.now();
    let grants = portal
        .services
        .store
        .audit_events(&AuditQuery {
            subject: Some(*user),
            event_type: Some("helpdesk.approval.granted".into()),
            since: Some(now - APPROVAL_WINDOW),
            limit: 100,
            ..Default::default()
        })
        .await
        .ok()?;
    for g in grants {
        let d = &g.event.details;
        let mine = d["requested_by"].as_str() == Some(&m.oid.to_string())
            && d["action"].as_str() == Some(action)
            && g.event.actor != m.oid.to_string();
        if mine && once(portal, "helpdesk-approval-use", &g.event.correlation_id).await {
            return Some(g.event.correlation_id);
        }
    }
    None
}

/// The checks every action passes (see the module docs). `Ok` carries the approval used, if
/// the target is privileged.
async fn acting(
    portal: &Portal,
    req: &HttpRequest,
    csrf: &str,
    q: &str,
    policy_action: Action,
    action: &str,
) -> Result<(ConsoleUser, Target, Option<String>), HttpResponse> {
    let event = format!("helpdesk.{}", action.split(':').next().unwrap_or(action));
    let (m, t) = super::member_acting_on(portal, req, csrf, q, &event).await?;
    let deny = async |key: &str, reason: &str, status: StatusCode| {
        m.audit(
            portal,
            &format!("helpdesk.{}", action.split(':').next().unwrap_or(action)),
            Some(t.user.id),
            Outcome::Denied,
            Some(reason),
            serde_json::json!({ "action": action }),
        )
        .await
        .or_log();
        let msg = super::message(portal, &m, key, &[]);
        super::lookup::render_user(portal, req, &m, &t, Some(msg), status).await
    };
    if super::case::verified(portal, req, &m, &t.user.id)
        .await
        .is_none()
    {
        return Err(deny(
            "helpdesk_error_not_verified",
            "caller not verified",
            StatusCode::FORBIDDEN,
        )
        .await);
    }
    if t.policy_allowing(portal, policy_action).is_none() {
        return Err(deny(
            "helpdesk_error_policy",
            "the user's policy does not allow it",
            StatusCode::FORBIDDEN,
        )
        .await);
    }
    let approval = if t.privileged() {
        match use_approval(portal, &m, &t.user.id, action).await {
            Some(id) => Some(id),
            None => {
                m.audit(
                    portal,
                    "helpdesk.approval.needed",
                    Some(t.user.id),
                    Outcome::Denied,
                    Some("privileged target"),
                    serde_json::json!({ "action": action }),
                )
                .await
                .or_log();
                return Err(page(
                    portal,
                    req,
                    &m,
                    "helpdesk_approval.html",
                    serde_json::json!({
                        "target": super::lookup::identity(&t),
                        "action": action,
                    }),
                    StatusCode::FORBIDDEN,
                ));
            }
        }
    } else {
        None
    };
    Ok((m, t, approval))
}

#[derive(Deserialize)]
pub struct TargetForm {
    csrf: String,
    q: String,
}

/// `POST /helpdesk/tap`.
async fn issue_tap(
    req: HttpRequest,
    portal: web::Data<Portal>,
    form: web::Form<TargetForm>,
) -> Result<HttpResponse, WebError> {
    let (m, t, approval) = match acting(
        &portal,
        &req,
        &form.csrf,
        &form.q,
        Action::TemporaryAccessPass,
        "tap",
    )
    .await
    {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let user = t.user.id;
    let channels = latchkey_selfservice::after_change::known_channels(
        &portal.services,
        &user,
        t.user.mail.as_ref(),
    )
    .await;
    let tap = match latchkey_selfservice::tap::issue(&portal.services, &user).await {
        Ok(tap) => tap,
        Err(e) => {
            m.audit(
                &portal,
                "helpdesk.tap",
                Some(user),
                Outcome::Error,
                Some(&e.reason()),
                serde_json::json!({ "approval": approval }),
            )
            .await
            .or_log();
            return Err(tap::failure(&e, m.lang));
        }
    };
    let view = tap::TapView::of(&tap, portal.services.clock.now());
    if m.audit(
        &portal,
        "helpdesk.tap",
        Some(user),
        Outcome::Success,
        Some(&format!("one-time, {} minutes", view.minutes)),
        serde_json::json!({ "approval": approval }),
    )
    .await
    .is_err()
    {
        tracing::error!("helpdesk: TAP issued but the audit event could not be written");
    }
    latchkey_selfservice::tap::notify(
        &portal.services,
        &user,
        channels,
        t.user.preferred_language.clone(),
        &m.correlation_id,
    )
    .await;
    tell_contacts_of_tap(&portal, &m, &t).await;
    Ok(page(
        &portal,
        &req,
        &m,
        "helpdesk_tap.html",
        serde_json::json!({ "target": super::lookup::identity(&t), "tap": view }),
        StatusCode::OK,
    ))
}

/// The security contacts of the user's policy hear of a pass the helpdesk issued, as of a
/// self-service one, naming the member who issued it (never the pass). The policy is the one
/// that allowed the action in [`acting`], evaluated again on this request's memberships.
async fn tell_contacts_of_tap(portal: &Portal, m: &ConsoleUser, t: &Target) {
    let Some(policy) = t.policy_allowing(portal, Action::TemporaryAccessPass) else {
        return;
    };
    let user = t
        .user
        .display_name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| t.user.user_principal_name.to_string());
    let by = match m.display_name.as_deref().filter(|n| !n.trim().is_empty()) {
        Some(name) => format!("{name} ({})", m.upn),
        None => m.upn.clone(),
    };
    latchkey_selfservice::security_contacts::tell_about(
        &portal.services,
        &policy,
        latchkey_selfservice::security_contacts::Told {
            action: latchkey_notify::ContactAction::TemporaryAccessPass,
            subject: &t.user.id,
            user: &user,
            correlation_id: &m.correlation_id,
            by: Some(by),
        },
    )
    .await;
}

#[derive(Deserialize)]
pub struct DeleteForm {
    csrf: String,
    q: String,
    /// The Graph collection (`phoneMethods`, `fido2Methods`, ...).
    segment: String,
    id: String,
}

async fn tell_removed(
    portal: &Portal,
    t: &Target,
    channels: Vec<Recipient>,
    method: &str,
    cid: &str,
) {
    let now = portal.services.clock.now();
    for recipient in channels {
        let n = Notification {
            recipient,
            notice: Notice::MethodsChanged {
                at: now,
                changes: vec![MethodChange {
                    method: method.to_string(),
                    change: ChangeKind::Removed,
                }],
            },
            lang: t.user.preferred_language.clone(),
            correlation_id: cid.to_string(),
            subject: Some(t.user.id),
        };
        portal.services.outbox.send(n).await;
    }
}

/// `POST /helpdesk/method/delete`: deletes one of the user's Entra authentication methods.
async fn delete_method(
    req: HttpRequest,
    portal: web::Data<Portal>,
    form: web::Form<DeleteForm>,
) -> HttpResponse {
    let action = action_key(
        "method.delete",
        Some((form.segment.as_str(), form.id.as_str())),
    );
    let (m, t, approval) =
        match acting(&portal, &req, &form.csrf, &form.q, Action::Enroll, &action).await {
            Ok(x) => x,
            Err(r) => return r,
        };
    let user = t.user.id;
    let dir = &portal.services.directory;
    let methods = match dir.auth_methods(&user).await {
        Ok(list) => list,
        Err(e) => {
            tracing::error!(error = %e, "helpdesk: cannot list methods");
            return super::case::unavailable(&portal, &req, &m);
        }
    };
    let Some(method) = methods
        .into_iter()
        .find(|x| x.id() == Some(form.id.as_str()) && x.delete_segment() == Some(&form.segment))
    else {
        let msg = super::message(&portal, &m, "helpdesk_error_method", &[]);
        return super::lookup::render_user(&portal, &req, &m, &t, Some(msg), StatusCode::NOT_FOUND)
            .await;
    };
    let channels = latchkey_selfservice::after_change::known_channels(
        &portal.services,
        &user,
        t.user.mail.as_ref(),
    )
    .await;
    let details = serde_json::json!({
        "type": method.odata_type(),
        "method_id": form.id,
        "approval": approval,
    });
    if let Err(e) = dir.delete_auth_method(&user, &method).await {
        let code = e.code().unwrap_or("error").to_string();
        m.audit(
            &portal,
            "helpdesk.method.delete",
            Some(user),
            Outcome::Failure,
            Some(&code),
            details,
        )
        .await
        .or_log();
        let msg = super::message(&portal, &m, "helpdesk_error_delete", &[("code", &code)]);
        let status = if e.status() == Some(400) {
            StatusCode::CONFLICT
        } else {
            StatusCode::BAD_GATEWAY
        };
        return super::lookup::render_user(&portal, &req, &m, &t, Some(msg), status).await;
    }
    if m.audit(
        &portal,
        "helpdesk.method.delete",
        Some(user),
        Outcome::Success,
        None,
        details,
    )
    .await
    .is_err()
    {
        return super::case::unavailable(&portal, &req, &m);
    }
    tell_removed(&portal, &t, channels, &form.segment, &m.correlation_id).await;
    see_other(user_path(&user))
}

/// `POST /helpdesk/reenroll`: removes the user's Latchkey enrollments (every method must be
/// enrolled and confirmed again at `/enroll`), ends the user's open flows and links, tells the
/// user on the channels known before.
async fn reenroll(
    req: HttpRequest,
    portal: web::Data<Portal>,
    form: web::Form<TargetForm>,
) -> HttpResponse {
    let (m, t, approval) = match acting(
        &portal,
        &req,
        &form.csrf,
        &form.q,
        Action::Enroll,
        "reenroll",
    )
    .await
    {
        Ok(x) => x,
        Err(r) => return r,
    };
    let user = t.user.id;
    let s = &portal.services;
    let channels = latchkey_selfservice::after_change::known_channels(
        &portal.services,
        &user,
        t.user.mail.as_ref(),
    )
    .await;
    let mut removed: Vec<String> = Vec::new();
    for e in s.store.enrollments(&user).await.unwrap_or_default() {
        if !removed.contains(&e.method) {
            removed.push(e.method.clone());
        }
    }
    for method in &removed {
        if let Err(e) = s.store.remove_enrollment(&user, method).await {
            tracing::error!(error = %e, "helpdesk: cannot remove an enrollment");
            return super::case::unavailable(&portal, &req, &m);
        }
    }
    let now = s.clock.now();
    s.store.void_codes_of(&user, now).await.or_log();
    // Ends the user's flows, links and this caller case: a fresh start for everyone.
    s.store.end_flows_of(&user).await.or_log();
    if m.audit(
        &portal,
        "helpdesk.reenroll",
        Some(user),
        Outcome::Success,
        None,
        serde_json::json!({ "removed": removed, "approval": approval }),
    )
    .await
    .is_err()
    {
        return super::case::unavailable(&portal, &req, &m);
    }
    for method in &removed {
        tell_removed(&portal, &t, channels.clone(), method, &m.correlation_id).await;
    }
    see_other(user_path(&user))
}

#[derive(Deserialize)]
pub struct RequestForm {
    csrf: String,
    q: String,
    action: String,
}

/// `POST /helpdesk/approval/request`: asks another member to approve an action on a
/// privileged user (the requester must have verified the caller).
async fn request_approval(
    req: HttpRequest,
    portal: web::Data<Portal>,
    form: web::Form<RequestForm>,
) -> HttpResponse {
    let (m, t) = match super::member_target(&portal, &req, &form.csrf, &form.q).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let known = form.action == "tap"
        || form.action == "reenroll"
        || form.action.starts_with("method.delete:");
    if !known || form.action.len() > 200 {
        return portal.error_page(&req, m.lang, StatusCode::BAD_REQUEST, "error_generic");
    }
    if super::case::verified(&portal, &req, &m, &t.user.id)
        .await
        .is_none()
    {
        let msg = super::message(&portal, &m, "helpdesk_error_not_verified", &[]);
        return super::lookup::render_user(&portal, &req, &m, &t, Some(msg), StatusCode::FORBIDDEN)
            .await;
    }
    let request = match ObjectId::random() {
        Ok(id) => id.to_string(),
        Err(e) => {
            tracing::error!(error = %e, "helpdesk: no randomness for a request id");
            return portal.error_page(
                &req,
                m.lang,
                StatusCode::SERVICE_UNAVAILABLE,
                "error_generic",
            );
        }
    };
    if audit_as(
        &portal,
        &m,
        &request,
        "helpdesk.approval.requested",
        t.user.id,
        Outcome::Success,
        serde_json::json!({ "action": form.action, "request": request }),
    )
    .await
    .is_err()
    {
        return super::case::unavailable(&portal, &req, &m);
    }
    page(
        &portal,
        &req,
        &m,
        "helpdesk_approval.html",
        serde_json::json!({
            "target": super::lookup::identity(&t),
            "action": form.action,
            "requested": true,
        }),
        StatusCode::OK,
    )
}

/// The open requests of the last [`APPROVAL_WINDOW`] (not yet granted).
async fn open_requests(portal: &Portal) -> Vec<AuditRecord> {
    let now = portal.services.clock.now();
    let s = &portal.services;
    let query = |event_type: &str| AuditQuery {
        event_type: Some(event_type.into()),
        since: Some(now - APPROVAL_WINDOW),
        limit: 500,
        ..Default::default()
    };
    let requested = s
        .store
        .audit_events(&query("helpdesk.approval.requested"))
        .await
        .unwrap_or_default();
    let granted: Vec<String> = s
        .store
        .audit_events(&query("helpdesk.approval.granted"))
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|g| g.event.correlation_id)
        .collect();
    requested
        .into_iter()
        .filter(|r| !granted.contains(&r.event.correlation_id))
        .collect()
}

/// `GET /helpdesk/approvals`: requests waiting for a second member.
async fn approvals(
    req: HttpRequest,
    portal: web::Data<Portal>,
    m: Member<HelpdeskConsole>,
) -> HttpResponse {
    let rows: Vec<serde_json::Value> = open_requests(&portal)
        .await
        .into_iter()
        .map(|r| {
            let e = r.event;
            serde_json::json!({
                "request": e.correlation_id,
                "subject": e.subject.map(|s| s.to_string()),
                "action": e.details["action"],
                "by": e.details["actor_upn"],
                "own": e.actor == m.oid.to_string(),
            })
        })
        .collect();
    page(
        &portal,
        &req,
        &m,
        "helpdesk_approvals.html",
        serde_json::json!({ "requests": rows, "section": "approvals" }),
        StatusCode::OK,
    )
}

crate::with_csrf!(ApproveForm);

#[derive(Deserialize)]
pub struct ApproveForm {
    csrf: String,
    request: String,
}

/// `POST /helpdesk/approval/approve`: another member grants a request (never their own).
async fn approve(
    req: HttpRequest,
    portal: web::Data<Portal>,
    posted: MemberForm<HelpdeskConsole, ApproveForm>,
) -> HttpResponse {
    let MemberForm { member: m, form } = posted;
    let request = form.request.trim();
    let Some(found) = open_requests(&portal)
        .await
        .into_iter()
        .find(|r| r.event.correlation_id == request)
    else {
        return portal.error_page(
            &req,
            m.lang,
            StatusCode::NOT_FOUND,
            "helpdesk_approval_gone",
        );
    };
    let e = found.event;
    let Some(subject) = e.subject else {
        return portal.error_page(
            &req,
            m.lang,
            StatusCode::NOT_FOUND,
            "helpdesk_approval_gone",
        );
    };
    if e.actor == m.oid.to_string() {
        audit_as(
            &portal,
            &m,
            request,
            "helpdesk.approval.refused",
            subject,
            Outcome::Denied,
            serde_json::json!({ "reason": "own request" }),
        )
        .await
        .or_log();
        return portal.error_page(&req, m.lang, StatusCode::FORBIDDEN, "helpdesk_approval_own");
    }
    // Nor for the approver's own account: a privileged member must not wave through a pass
    // (or a method delete) issued to themselves, whoever asked for it.
    if subject == m.oid {
        audit_as(
            &portal,
            &m,
            request,
            "helpdesk.approval.refused",
            subject,
            Outcome::Denied,
            serde_json::json!({ "reason": "own account" }),
        )
        .await
        .or_log();
        return portal.error_page(
            &req,
            m.lang,
            StatusCode::FORBIDDEN,
            "helpdesk_approval_own_account",
        );
    }
    // The approver must be allowed to serve the user too.
    if let Err(r) = target(&portal, &req, &m, &subject.to_string()).await {
        return r;
    }
    if !once(&portal, "helpdesk-approval-grant", request).await {
        return portal.error_page(
            &req,
            m.lang,
            StatusCode::NOT_FOUND,
            "helpdesk_approval_gone",
        );
    }
    if audit_as(
        &portal,
        &m,
        request,
        "helpdesk.approval.granted",
        subject,
        Outcome::Success,
        serde_json::json!({
            "action": e.details["action"],
            "requested_by": e.actor,
            "request": request,
        }),
    )
    .await
    .is_err()
    {
        return super::case::unavailable(&portal, &req, &m);
    }
    see_other("/helpdesk/approvals".to_string())
}
