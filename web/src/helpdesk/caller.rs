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

use std::time::Duration;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_notify::Notice;
use latchkey_store::{EnrollmentState, Flow, FlowLifetime, FlowToken, NewFlow, Outcome};
use latchkey_types::{MethodKind, ObjectId, Secret};
use latchkey_verify::CodePurpose;
use serde::{Deserialize, Serialize};

use super::{Target, see_other, user_path};
use crate::app::Portal;
use crate::console::ConsoleUser;
use crate::flow;
use crate::flow::RefusalPage as _;
use latchkey_selfservice::codes;
use latchkey_selfservice::flow::Unrecorded as _;

/// Purpose of a caller-verification case.
pub const CASE_PURPOSE: &str = "helpdesk-case";
/// How long a case lives (code sent → verified → acted): a few minutes, never extended.
pub const CASE_LIFETIME: Duration = Duration::from_secs(10 * 60);
const CASE_COOKIE: &str = "latchkey-helpdesk-case";
/// The verification recorded on a case.
const VERIFIED: &str = "caller";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/helpdesk/verify/start", web::post().to(start))
        .route("/helpdesk/verify", web::post().to(submit));
}

/// What a case keeps (the user is the flow's subject).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CaseData {
    /// The member's object id.
    pub member: String,
    /// The member's console session (its correlation id).
    pub session: String,
    /// The channel the code went to (`email`, `sms`).
    pub channel: String,
    /// Where, masked, for the page.
    pub sent_to: String,
}

/// A live case of this member, session and user.
pub struct Case {
    pub token: FlowToken,
    pub flow: Flow,
    pub data: CaseData,
}

impl Case {
    /// The caller read back the right code.
    pub fn verified(&self) -> bool {
        self.flow.verified.iter().any(|v| v == VERIFIED)
    }
}

fn cookie(portal: &Portal, value: String) -> Cookie<'static> {
    let mut c = Cookie::new(portal.services.cookies.name(CASE_COOKIE), value);
    c.set_path("/");
    c.set_http_only(true);
    c.set_secure(portal.services.cookies.secure);
    c.set_same_site(SameSite::Strict);
    c
}

/// The case of this request for `user`, if it belongs to this member and session.
pub async fn load(
    portal: &Portal,
    req: &HttpRequest,
    m: &ConsoleUser,
    user: &ObjectId,
) -> Option<Case> {
    let token = req
        .cookie(&portal.services.cookies.name(CASE_COOKIE))
        .and_then(|c| FlowToken::parse(c.value()))?;
    let flow = portal
        .services
        .store
        .flow(&token, portal.services.clock.now())
        .await
        .ok()
        .flatten()?;
    let data: CaseData = serde_json::from_value(flow.data.clone()).ok()?;
    let mine = flow.purpose == CASE_PURPOSE
        && flow.subject == *user
        && data.member == m.oid.to_string()
        && data.session == m.correlation_id;
    mine.then_some(Case { token, flow, data })
}

/// A verified case for `user`, or `None`.
pub async fn verified(
    portal: &Portal,
    req: &HttpRequest,
    m: &ConsoleUser,
    user: &ObjectId,
) -> Option<Case> {
    load(portal, req, m, user).await.filter(Case::verified)
}

/// Masks an address for the page: `a***@outlook.example`, `+1 42******09`.
pub fn mask(destination: &str) -> String {
    if let Some((local, domain)) = destination.split_once('@') {
        let first: String = local.chars().take(1).collect();
        return format!("{first}***@{domain}");
    }
    let chars: Vec<char> = destination.chars().collect();
    let n = chars.len();
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if i < 5 || i + 2 >= n || !c.is_ascii_digit() {
                *c
            } else {
                '*'
            }
        })
        .collect()
}

/// The channels a code can go to: the user's active email and text-message enrollments.
pub async fn channels(portal: &Portal, user: &ObjectId) -> Vec<(MethodKind, String)> {
    let mut out = Vec::new();
    for kind in [MethodKind::Email, MethodKind::Sms] {
        let e = portal
            .services
            .store
            .enrollment(user, kind.as_str(), EnrollmentState::Active)
            .await
            .ok()
            .flatten();
        if let Some(d) = e.and_then(|e| codes::enrolled_destination(kind, &e.data)) {
            let text = match &d {
                latchkey_verify::Destination::Email(a) => a.to_string(),
                latchkey_verify::Destination::Phone(p) => p.to_string(),
            };
            out.push((kind, mask(&text)));
        }
    }
    out
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
    let kind = form
        .channel
        .parse::<MethodKind>()
        .ok()
        .filter(|k| matches!(k, MethodKind::Email | MethodKind::Sms));
    let enrolled = match kind {
        Some(k) => portal
            .services
            .store
            .enrollment(&user, k.as_str(), EnrollmentState::Active)
            .await
            .ok()
            .flatten()
            .and_then(|e| codes::enrolled_destination(k, &e.data))
            .map(|d| (k, d)),
        None => None,
    };
    let Some((kind, destination)) = enrolled else {
        let msg = super::message(&portal, &m, "helpdesk_error_channel", &[]);
        return super::lookup::render_user(
            &portal,
            &req,
            &m,
            &t,
            Some(msg),
            StatusCode::BAD_REQUEST,
        )
        .await;
    };
    let scope = format!("helpdesk-send:{kind}");
    if let Err(wait) = latchkey_selfservice::flow::hit(
        &portal.services,
        &scope,
        &user.to_string(),
        latchkey_selfservice::flow::limits::SENDS_PER_ACCOUNT,
    )
    .await
    {
        let msg = wait.message(&portal, m.lang);
        return super::lookup::render_user(&portal, &req, &m, &t, Some(msg), wait.status()).await;
    }
    let shown = match &destination {
        latchkey_verify::Destination::Email(a) => mask(a.as_str()),
        latchkey_verify::Destination::Phone(p) => mask(&p.to_string()),
    };
    let data = CaseData {
        member: m.oid.to_string(),
        session: m.correlation_id.clone(),
        channel: kind.as_str().to_string(),
        sent_to: shown.clone(),
    };
    let now = portal.services.clock.now();
    let created = portal
        .services
        .store
        .create_flow(
            NewFlow {
                subject: user,
                purpose: CASE_PURPOSE.into(),
                step: latchkey_store::FlowStep::CodeSent,
                data: serde_json::to_value(&data).unwrap_or_default(),
                lifetime: FlowLifetime {
                    absolute: CASE_LIFETIME,
                    idle: CASE_LIFETIME,
                },
            },
            now,
        )
        .await;
    let (token, case_flow) = match created {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "helpdesk: cannot create a case");
            return unavailable(&portal, &req, &m);
        }
    };
    let issued = codes::issue_as(
        &portal.services,
        &case_flow,
        kind,
        CodePurpose::HelpdeskCaller,
        &destination,
        true,
        t.user.preferred_language.clone(),
        &m.correlation_id,
        |code, valid_for| Notice::CallerCode { code, valid_for },
    )
    .await;
    if let Err(e) = issued {
        tracing::error!(error = %e, "helpdesk: caller code");
        return unavailable(&portal, &req, &m);
    }
    if m.audit(
        &portal,
        "helpdesk.caller.code_sent",
        Some(user),
        Outcome::Success,
        None,
        serde_json::json!({ "channel": kind.as_str(), "to": shown }),
    )
    .await
    .is_err()
    {
        return unavailable(&portal, &req, &m);
    }
    let mut r = see_other(user_path(&user));
    r = crate::app::with_cookie(r, &cookie(&portal, token.expose().to_string()));
    r
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
    if latchkey_verify::normalize_typed_code(typed.expose()).is_empty() {
        let msg = super::message(&portal, &m, "error_code_missing", &[]);
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
    let now = portal.services.clock.now();
    let rotated = portal
        .services
        .store
        .record_verification(
            &case.token,
            VERIFIED,
            latchkey_store::FlowStep::Verified,
            now,
        )
        .await;
    let Ok(Some((token, _))) = rotated else {
        return see_other(user_path(&user));
    };
    latchkey_selfservice::flow::reset_throttle(
        &portal.services,
        "fail:helpdesk-caller",
        &user.to_string(),
    )
    .await;
    if m.audit(
        &portal,
        "helpdesk.caller.verify",
        Some(user),
        Outcome::Success,
        None,
        serde_json::json!({ "channel": kind.as_str() }),
    )
    .await
    .is_err()
    {
        return unavailable(&portal, &req, &m);
    }
    let mut r = see_other(user_path(&user));
    r = crate::app::with_cookie(r, &cookie(&portal, token.expose().to_string()));
    r
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

pub fn unavailable(portal: &Portal, req: &HttpRequest, m: &ConsoleUser) -> HttpResponse {
    portal.error_page(
        req,
        m.lang,
        StatusCode::SERVICE_UNAVAILABLE,
        "error_generic",
    )
}

#[cfg(test)]
mod tests {
    use super::mask;

    #[test]
    fn addresses_are_masked_for_the_page() {
        assert_eq!(mask("adele.vance@outlook.example"), "a***@outlook.example");
        assert_eq!(mask("+1 4255550109"), "+1 42******09");
        assert_eq!(mask("+45 20123456"), "+45 2*****56");
    }
}
