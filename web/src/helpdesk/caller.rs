//! Verifying a caller: the member sends a code to one of the user's enrolled channels (email,
//! text message) and types what the caller reads back.
//!
//! The state is a *case*: a short-lived store flow (purpose [`CASE_PURPOSE`], subject = the
//! user, [`CASE_LIFETIME`]) whose data names the member and their console session; its token is
//! in a `SameSite=Strict`, HttpOnly cookie. The code is the portal's usual one (keyed hash,
//! single use, newest only, tries) bound to the case, the user, the channel and the purpose
//! [`CodePurpose::HelpdeskCaller`]; a right code marks the case verified in one atomic step
//! (the token rotates). Wrong codes are charged before they are checked, per client address and
//! per user, like self-service attempts. A case found under another member, session or user
//! counts as none.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_notify::Notice;
use latchkey_store::{EnrollmentState, FlowLifetime, FlowToken, NewFlow, Outcome};
use latchkey_types::{MethodKind, ObjectId, Secret};
use latchkey_verify::{CodePurpose, Destination};
use serde::Deserialize;

use super::case::{
    CASE_LIFETIME, CASE_PURPOSE, CaseData, VERIFIED, cookie, load, mask, unavailable,
};
use super::{Target, see_other, user_path};
use crate::console::ConsoleUser;
use crate::flow;
use crate::flow::RefusalPage as _;
use crate::portal::Portal;
use latchkey_selfservice::codes;
use latchkey_selfservice::flow::Unrecorded as _;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/helpdesk/verify/start", web::post().to(start))
        .route("/helpdesk/verify", web::post().to(submit));
}

#[derive(Deserialize)]
pub struct StartForm {
    csrf: String,
    q: String,
    channel: String,
}

async fn start(
    req: HttpRequest,
    portal: web::Data<Portal>,
    form: web::Form<StartForm>,
) -> HttpResponse {
    let (m, t) = match super::member_acting_on(
        &portal,
        &req,
        &form.csrf,
        &form.q,
        "helpdesk.caller.code_sent",
    )
    .await
    {
        Ok(x) => x,
        Err(r) => return r,
    };
    let user = t.user.id;
    let Some((kind, destination)) = enrolled_channel(&portal, &user, &form.channel).await else {
        let msg = super::message(&portal, &m, "helpdesk_error_channel", &[]);
        let status = StatusCode::BAD_REQUEST;
        return super::lookup::render_user(&portal, &req, &m, &t, Some(msg), status).await;
    };
    let scope = format!("helpdesk-send:{kind}");
    let limits = portal.services.limits.sends();
    let key = user.to_string();
    let sent = latchkey_selfservice::flow::hit(&portal.services, &scope, &key, &limits);
    if let Err(wait) = sent.await {
        let msg = wait.message(&portal, m.lang);
        return super::lookup::render_user(&portal, &req, &m, &t, Some(msg), wait.status()).await;
    }
    match open_case(&portal, &m, &t, kind, &destination).await {
        Some(token) => {
            let r = see_other(user_path(&user));
            crate::portal::with_cookie(r, &cookie(&portal, token.expose().to_string()))
        }
        None => unavailable(&portal, &req, &m),
    }
}

/// The user's active enrollment of the channel the member chose (email or text), with where
/// it sends codes.
async fn enrolled_channel(
    portal: &Portal,
    user: &ObjectId,
    channel: &str,
) -> Option<(MethodKind, Destination)> {
    let kind = channel
        .parse::<MethodKind>()
        .ok()
        .filter(|k| matches!(k, MethodKind::Email | MethodKind::Sms))?;
    let enrollment = portal
        .services
        .store
        .enrollment(user, kind.as_str(), EnrollmentState::Active)
        .await
        .ok()
        .flatten()?;
    codes::enrolled_destination(kind, &enrollment.data).map(|d| (kind, d))
}

/// Opens a case for this member and user and sends the caller code to `destination`, audited;
/// the case's token, or `None` (logged) when any step failed.
async fn open_case(
    portal: &Portal,
    m: &ConsoleUser,
    t: &Target,
    kind: MethodKind,
    destination: &Destination,
) -> Option<FlowToken> {
    let s = &portal.services;
    let user = t.user.id;
    let shown = match destination {
        Destination::Email(a) => mask(a.as_str()),
        Destination::Phone(p) => mask(&p.to_string()),
    };
    let data = CaseData {
        member: m.oid.to_string(),
        session: m.correlation_id.clone(),
        channel: kind.as_str().to_string(),
        sent_to: shown.clone(),
    };
    let new = NewFlow {
        subject: user,
        purpose: CASE_PURPOSE,
        step: latchkey_store::FlowStep::CodeSent,
        data: serde_json::to_value(&data).unwrap_or_default(),
        lifetime: FlowLifetime {
            absolute: CASE_LIFETIME,
            idle: CASE_LIFETIME,
        },
    };
    let (token, case_flow) = match s.store.create_flow(new, s.clock.now()).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "helpdesk: cannot create a case");
            return None;
        }
    };
    let issued = codes::issue_as(
        s,
        &case_flow,
        kind,
        CodePurpose::HelpdeskCaller,
        destination,
        true,
        t.user.preferred_language.clone(),
        &m.correlation_id,
        |code, valid_for| Notice::CallerCode { code, valid_for },
    )
    .await;
    if let Err(e) = issued {
        tracing::error!(error = %e, "helpdesk: caller code");
        return None;
    }
    let details = serde_json::json!({ "channel": kind.as_str(), "to": shown });
    let event = "helpdesk.caller.code_sent";
    let audited = m.audit(portal, event, Some(user), Outcome::Success, None, details);
    audited.await.ok().map(|()| token)
}

#[derive(Deserialize)]
pub struct CodeForm {
    csrf: String,
    q: String,
    code: String,
}

async fn submit(
    req: HttpRequest,
    portal: web::Data<Portal>,
    form: web::Form<CodeForm>,
) -> HttpResponse {
    let (m, t) = match super::member_target(&portal, &req, &form.csrf, &form.q).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let user = t.user.id;
    let Some(case) = load(&portal, &req, &m, &user).await else {
        let msg = super::message(&portal, &m, "helpdesk_error_no_case", &[]);
        return super::lookup::render_user(&portal, &req, &m, &t, Some(msg), StatusCode::CONFLICT)
            .await;
    };
    if case.verified() {
        return see_other(user_path(&user));
    }
    let typed = Secret::new(form.code.chars().take(64).collect::<String>());
    if let Err(e) = latchkey_selfservice::verify::code_shape(&typed) {
        let key = match e {
            latchkey_selfservice::verify::VerifyError::Malformed => "error_code_format",
            _ => "error_code_missing",
        };
        let msg = super::message(&portal, &m, key, &[]);
        return render_error(&portal, &req, &m, &t, msg, StatusCode::BAD_REQUEST).await;
    }
    // Charged before the check: per client address and per user, like self-service attempts.
    if let Err(refusal) =
        flow::charge(&portal, &req, "fail:helpdesk-caller", &user.to_string()).await
    {
        let msg = refusal.message(&portal, m.lang);
        m.audit(
            &portal,
            "helpdesk.caller.throttled",
            Some(user),
            Outcome::Denied,
            None,
            serde_json::Value::Null,
        )
        .await
        .or_log();
        return render_error(&portal, &req, &m, &t, msg, refusal.status()).await;
    }
    let kind = case
        .data
        .channel
        .parse::<MethodKind>()
        .unwrap_or(MethodKind::Email);
    let accepted = codes::check(
        &portal.services,
        &case.flow,
        kind,
        CodePurpose::HelpdeskCaller,
        None,
        &typed,
    )
    .await;
    if !accepted {
        if m.audit(
            &portal,
            "helpdesk.caller.verify",
            Some(user),
            Outcome::Failure,
            Some("wrong or expired code"),
            serde_json::json!({ "channel": kind.as_str() }),
        )
        .await
        .is_err()
        {
            return unavailable(&portal, &req, &m);
        }
        let msg = super::message(&portal, &m, "error_code_wrong", &[]);
        return render_error(&portal, &req, &m, &t, msg, StatusCode::BAD_REQUEST).await;
    }
    match record_verified(&portal, &m, &case, kind).await {
        Ok(Some(token)) => {
            let r = see_other(user_path(&user));
            crate::portal::with_cookie(r, &cookie(&portal, token.expose().to_string()))
        }
        // Another request verified the case first: its cookie holds the new token.
        Ok(None) => see_other(user_path(&user)),
        Err(()) => unavailable(&portal, &req, &m),
    }
}

/// Marks the case verified (rotating its token), forgets the failed tries and audits the
/// success. `Ok(None)`: the token was rotated by another request first; `Err`: the success could
/// not be recorded.
async fn record_verified(
    portal: &Portal,
    m: &ConsoleUser,
    case: &super::case::Case,
    kind: MethodKind,
) -> Result<Option<FlowToken>, ()> {
    let s = &portal.services;
    let user = case.flow.subject;
    let next = latchkey_store::FlowStep::Verified;
    let rotated = s
        .store
        .record_verification(&case.token, VERIFIED, next, s.clock.now());
    let Ok(Some((token, _))) = rotated.await else {
        return Ok(None);
    };
    let key = user.to_string();
    latchkey_selfservice::flow::reset_throttle(s, "fail:helpdesk-caller", &key).await;
    let details = serde_json::json!({ "channel": kind.as_str() });
    let event = "helpdesk.caller.verify";
    let audited = m.audit(portal, event, Some(user), Outcome::Success, None, details);
    audited.await.map(|()| Some(token)).map_err(|_| ())
}

async fn render_error(
    portal: &Portal,
    req: &HttpRequest,
    m: &ConsoleUser,
    t: &Target,
    msg: String,
    status: StatusCode,
) -> HttpResponse {
    super::lookup::render_user(portal, req, m, t, Some(msg), status).await
}
