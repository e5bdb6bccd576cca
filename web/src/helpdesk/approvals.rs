//! **Approvals** for actions on privileged users. They live in the append-only audit trail: a
//! request is an event `helpdesk.approval.requested` whose correlation id is the request id;
//! another member's `helpdesk.approval.granted` for it (never the requester's own) lets the
//! requester do that one action once within [`APPROVAL_WINDOW`]. "Once" is the store's atomic
//! throttle with a limit of one per request id (granting and using), so two concurrent uses
//! cannot both pass.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_store::{
    AuditEvent, AuditQuery, AuditRecord, Limit, Outcome, ThrottleDecision, ThrottleKey,
};
use latchkey_types::ObjectId;
use serde::Deserialize;

use super::{page, see_other, target};
use crate::console::ConsoleUser;
use crate::extract::{HelpdeskConsole, Member, MemberForm};
use crate::portal::Portal;
use latchkey_selfservice::flow::Unrecorded as _;

/// How long an approval request (and a grant) stays usable.
pub const APPROVAL_WINDOW: Duration = Duration::from_secs(30 * 60);

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/helpdesk/approval/request",
        web::post().to(request_approval),
    )
    .route("/helpdesk/approvals", web::get().to(approvals))
    .route("/helpdesk/approval/approve", web::post().to(approve));
}

/// The action names used in approvals and audit details.
pub(super) fn action_key(kind: &str, method: Option<(&str, &str)>) -> String {
    match method {
        Some((segment, id)) => format!("{kind}:{segment}:{id}"),
        None => kind.to_string(),
    }
}

/// An audit event by `m` under `correlation_id` (approvals use the request id).
pub(super) async fn audit_as(
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
pub(super) async fn use_approval(
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
        || form.action == "unlock"
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
    let gone = || {
        portal.error_page(
            &req,
            m.lang,
            StatusCode::NOT_FOUND,
            "helpdesk_approval_gone",
        )
    };
    let found = open_requests(&portal)
        .await
        .into_iter()
        .find(|r| r.event.correlation_id == request);
    let Some((e, subject)) = found.and_then(|f| f.event.subject.map(|s| (f.event, s))) else {
        return gone();
    };
    // Not the requester's own request; nor for the approver's own account: a privileged member
    // must not wave through a pass (or a method delete) issued to themselves, whoever asked.
    let own = if e.actor == m.oid.to_string() {
        Some(("own request", "helpdesk_approval_own"))
    } else if subject == m.oid {
        Some(("own account", "helpdesk_approval_own_account"))
    } else {
        None
    };
    if let Some((reason, key)) = own {
        let details = serde_json::json!({ "reason": reason });
        let event = "helpdesk.approval.refused";
        audit_as(
            &portal,
            &m,
            request,
            event,
            subject,
            Outcome::Denied,
            details,
        )
        .await
        .or_log();
        return portal.error_page(&req, m.lang, StatusCode::FORBIDDEN, key);
    }
    // The approver must be allowed to serve the user too.
    if let Err(r) = target(&portal, &req, &m, &subject.to_string()).await {
        return r;
    }
    if !once(&portal, "helpdesk-approval-grant", request).await {
        return gone();
    }
    let details = serde_json::json!({
        "action": e.details["action"],
        "requested_by": e.actor,
        "request": request,
    });
    let event = "helpdesk.approval.granted";
    let granted = audit_as(
        &portal,
        &m,
        request,
        event,
        subject,
        Outcome::Success,
        details,
    );
    if granted.await.is_err() {
        return super::case::unavailable(&portal, &req, &m);
    }
    see_other("/helpdesk/approvals".to_string())
}
