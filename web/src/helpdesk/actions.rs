//! What a member may do for a verified caller, where the user's policy allows it: issue a
//! Temporary Access Pass (policy action `temporary_access_pass`), delete a lost authentication
//! method or require re-enrollment (policy action `enroll`, i.e. managing methods).
//!
//! Each POST passes, in order: the gate and CSRF, scope, a verified caller case of this member
//! and session for this user ([`super::caller`]), the policy evaluated now with this request's
//! membership, and for privileged targets (any directory role) a second member's approval
//! ([`super::approvals`]).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_notify::{ChangeKind, MethodChange, Notice, Notification, Recipient};
use latchkey_policy::Action;
use latchkey_store::Outcome;
use serde::Deserialize;

use super::approvals::{action_key, use_approval};
use super::{Target, page, see_other, user_path};
use crate::console::ConsoleUser;
use crate::error::WebError;
use crate::portal::Portal;
use crate::tap;
use latchkey_selfservice::flow::Unrecorded as _;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/helpdesk/tap", web::post().to(issue_tap))
        .route("/helpdesk/method/delete", web::post().to(delete_method))
        .route("/helpdesk/unlock", web::post().to(super::unlock::unlock))
        .route("/helpdesk/reenroll", web::post().to(reenroll));
}

/// The checks every action passes (see the module docs). `Ok` carries the approval used, if
/// the target is privileged.
pub(super) async fn acting(
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
    pub(super) csrf: String,
    pub(super) q: String,
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
    /// `yes` once the member confirmed on the confirmation page.
    #[serde(default)]
    confirmed: String,
}

/// "Delete this method?": nothing is deleted before the member confirms (the button on the
/// user page only leads here). Only the CSRF token is checked first; the confirmed request goes
/// through every check.
fn confirm_delete(portal: &Portal, req: &HttpRequest, form: &DeleteForm) -> HttpResponse {
    let m = match super::member_post(portal, req, &form.csrf) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let catalogs = portal.templates.catalogs();
    let kind = super::lookup::kind_of_segment(&form.segment);
    let key = format!("helpdesk_kind_{kind}");
    let label = catalogs.get(m.lang, &key);
    let page = serde_json::json!({
        "title": catalogs.get(m.lang, "helpdesk_delete_title").replace("{method}", label),
        "paragraphs": [catalogs.get(m.lang, "helpdesk_delete_body")],
        "action": "/helpdesk/method/delete",
        "csrf": form.csrf,
        "fields": [
            { "name": "q", "value": form.q },
            { "name": "segment", "value": form.segment },
            { "name": "id", "value": form.id },
            { "name": "confirmed", "value": "yes" },
        ],
        "confirm": catalogs.get(m.lang, "helpdesk_delete"),
        "cancel_href": format!(
            "/helpdesk/user?q={}",
            url::form_urlencoded::byte_serialize(form.q.as_bytes()).collect::<String>()
        ),
        "cancel": catalogs.get(m.lang, "helpdesk_back"),
    });
    portal.render_in(req, m.lang, "confirm.html", &page)
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
    if form.confirmed != "yes" {
        return confirm_delete(&portal, &req, &form);
    }
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
    // The user's portal passkeys go too: a fresh start leaves no way in behind.
    let keys = match s.store.passkeys(&user).await {
        Ok(k) => k,
        Err(e) => {
            tracing::error!(error = %e, "helpdesk: cannot read passkeys");
            return super::case::unavailable(&portal, &req, &m);
        }
    };
    for key in &keys {
        if let Err(e) = s.store.remove_passkey(&user, &key.credential_id).await {
            tracing::error!(error = %e, "helpdesk: cannot remove a passkey");
            return super::case::unavailable(&portal, &req, &m);
        }
    }
    if !keys.is_empty() {
        removed.push(latchkey_types::MethodKind::Passkey.as_str().to_string());
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
