//! What every step of the self-service flow shares: the server-side flow record and its cookie,
//! the page context, audit events and throttles.
//!
//! The flow is fixed to one directory object at identification (docs/security.md, principle 4): its
//! subject never changes, and every later step reads the user from here, never from the request.
//! Unknown, disabled, unenrolled and out-of-scope accounts get a *decoy* flow that looks the same
//! from outside and can never be verified.

use std::time::Duration;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use latchkey_store::{
    AuditEvent, Flow, FlowStep, FlowToken, Limit, Outcome, StoreError, ThrottleDecision,
    ThrottleKey,
};
use latchkey_types::{MethodKind, ObjectId};
use serde::{Deserialize, Serialize};

use crate::app::Portal;
use crate::i18n::{Lang, negotiate};

/// Purpose stored with self-service flows.
pub const PURPOSE: &str = "self-service";
/// Flow steps (the state machine is [`FlowStep`]'s, docs/architecture.md).
pub const STEP_VERIFY: FlowStep = FlowStep::Verify;
pub const STEP_VERIFIED: FlowStep = FlowStep::Verified;

/// Flow state kept in the store (JSON), never in the browser.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FlowData {
    /// This flow can never be verified (no such account, or not eligible). Looks like any other.
    pub decoy: bool,
    /// What the user typed, to show back ("if alex@contoso.com has ..."). Not a directory value.
    pub account: String,
    /// Throttle key for per-account limits: the object id, or for decoys the typed account, so
    /// that an unknown account is throttled exactly like a real one.
    pub throttle_key: String,
    pub policy: Option<String>,
    pub required: usize,
    /// Methods the matched policy allows.
    pub methods: Vec<MethodKind>,
    pub display_name: Option<String>,
    /// The user's names as the directory has them (display, given, surname, UPN local part,
    /// on-premises account): a new password may not contain them. Kept here so the reset step
    /// needs no second read of the user.
    pub names: Vec<String>,
    /// The directory mail address: told about a change even when not enrolled.
    pub mail: Option<String>,
    /// Directory values for the attribute method (the answers to a knowledge check), sealed
    /// with the at-rest key and bound to this flow's subject ([`crate::attribute::seal`]); an
    /// empty map for decoys and policies without the method, sealed the same way.
    #[serde(default)]
    pub attributes_sealed: String,
    /// The directory's preferredLanguage; used only after the first verification succeeded.
    pub preferred_language: Option<String>,
    /// Password mastered on-premises (Entra Connect).
    pub synced: bool,
    /// `lastPasswordChangeDateTime` when the flow started: after a password write whose answer
    /// never came, a later value shows the write was applied.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub password_changed_at: Option<time::OffsetDateTime>,
    /// Correlates every audit event and message of this flow.
    pub correlation_id: String,
}

impl FlowData {
    pub fn from_flow(flow: &Flow) -> FlowData {
        serde_json::from_value(flow.data.clone()).unwrap_or_default()
    }
}

/// The verified methods of a flow, as kinds.
pub fn verified_kinds(flow: &Flow) -> Vec<MethodKind> {
    flow.verified
        .iter()
        .filter_map(|m| m.parse().ok())
        .collect()
}

/// Whether the flow has proven enough methods for its policy.
pub fn is_complete(flow: &Flow, data: &FlowData) -> bool {
    !data.decoy && latchkey_verify::requirement_met(data.required, &verified_kinds(flow))
}

/// The language of a page: before any verification only the browser's wish, afterwards the
/// directory's preference (using it earlier would reveal that the account exists).
pub fn lang(req: &HttpRequest, flow: Option<(&Flow, &FlowData)>) -> Lang {
    let accept = req
        .headers()
        .get("accept-language")
        .and_then(|v| v.to_str().ok());
    let preferred = flow
        .filter(|(f, _)| !f.verified.is_empty())
        .and_then(|(_, d)| d.preferred_language.as_deref());
    negotiate(preferred, accept)
}

/// The flow cookie: HttpOnly, SameSite=Strict, Secure and `__Host-` behind HTTPS, no Max-Age
/// (the server decides when a flow ends).
pub fn flow_cookie(portal: &Portal, token: &FlowToken) -> Cookie<'static> {
    base_cookie(portal, token.expose().to_string())
}

/// A cookie that removes the flow cookie.
pub fn clear_flow_cookie(portal: &Portal) -> Cookie<'static> {
    let mut c = base_cookie(portal, String::new());
    c.make_removal();
    c
}

fn base_cookie(portal: &Portal, value: String) -> Cookie<'static> {
    let mut c = Cookie::new(portal.services.cookies.name("latchkey-flow"), value);
    c.set_path("/");
    c.set_http_only(true);
    c.set_secure(portal.services.cookies.secure);
    c.set_same_site(SameSite::Strict);
    c
}

/// The flow token from the request's cookie, if well-formed.
pub fn token(portal: &Portal, req: &HttpRequest) -> Option<FlowToken> {
    req.cookie(&portal.services.cookies.name("latchkey-flow"))
        .and_then(|c| FlowToken::parse(c.value()))
}

/// The live flow of this request, with its data; `Ok(None)` when there is none. A store error
/// is an error, never "no flow": the user keeps the cookie and their place
/// ([`store_unavailable`]).
pub async fn load(
    portal: &Portal,
    req: &HttpRequest,
) -> Result<Option<(FlowToken, Flow, FlowData)>, StoreError> {
    let Some(token) = token(portal, req) else {
        return Ok(None);
    };
    let now = portal.services.clock.now();
    let Some(flow) = portal.services.store.flow(&token, now).await? else {
        return Ok(None);
    };
    if flow.purpose != PURPOSE {
        return Ok(None);
    }
    let data = FlowData::from_flow(&flow);
    Ok(Some((token, flow, data)))
}

/// The page for a store outage: 503 "try again in a moment", the flow cookie untouched.
pub fn store_unavailable(
    portal: &Portal,
    req: &HttpRequest,
    lang: Lang,
    e: &StoreError,
) -> HttpResponse {
    tracing::error!(error = %e, "store unavailable");
    portal.error_page(req, lang, StatusCode::SERVICE_UNAVAILABLE, "error_store")
}

/// A 303 to `path` (a local path: redirects never go elsewhere).
pub fn see_other(path: &'static str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("Location", path))
        .finish()
}

/// Where to go when a step is requested without a live flow: back to the start.
pub fn expired(portal: &Portal) -> HttpResponse {
    with_cleared_cookie(portal, see_other("/"))
}

/// The page for a store error after the flow ended (its one change was made or refused): 503,
/// the cookie cleared (nothing is kept to come back to).
pub fn ended_unavailable(
    portal: &Portal,
    req: &HttpRequest,
    lang: Lang,
    e: &StoreError,
) -> HttpResponse {
    tracing::error!(error = %e, "store unavailable after a flow ended");
    let page = portal.error_page(req, lang, StatusCode::SERVICE_UNAVAILABLE, "error_generic");
    with_cleared_cookie(portal, page)
}

/// The page that ends a flow: `result.html` with the title of `title_key` and `paragraphs`, the
/// flow cookie removed.
pub fn result_page(
    portal: &Portal,
    req: &HttpRequest,
    lang: Lang,
    title_key: &str,
    paragraphs: &[String],
) -> HttpResponse {
    let title = portal.templates.catalogs().get(lang, title_key);
    let page = portal.render_in(
        req,
        lang,
        "result.html",
        &serde_json::json!({ "title": title, "paragraphs": paragraphs }),
    );
    with_cleared_cookie(portal, page)
}

/// `response` with the flow cookie removed (the flow ended server-side).
pub fn with_cleared_cookie(portal: &Portal, mut response: HttpResponse) -> HttpResponse {
    if let Err(e) = response.add_cookie(&clear_flow_cookie(portal)) {
        // Only an invalid header value fails here; the flow is gone server-side anyway.
        tracing::error!(error = %e, "cannot clear the flow cookie");
    }
    response
}

/// A POST to a step of a live flow, CSRF-checked.
pub struct Step {
    pub token: FlowToken,
    pub flow: Flow,
    pub data: FlowData,
    pub lang: Lang,
}

impl Step {
    /// Loads the flow of this request and checks the form's CSRF token against it. The error is
    /// the response to send: back to the start when the flow is gone, 403 on a bad token.
    pub async fn post(
        portal: &Portal,
        req: &HttpRequest,
        csrf: &str,
    ) -> Result<Step, HttpResponse> {
        let (token, flow, data) = match load(portal, req).await {
            Ok(Some(loaded)) => loaded,
            Ok(None) => return Err(expired(portal)),
            Err(e) => return Err(store_unavailable(portal, req, lang(req, None), &e)),
        };
        let lang = lang(req, Some((&flow, &data)));
        if !portal.services.csrf.check(req, &flow.id.to_string(), csrf) {
            return Err(portal.error_page(req, lang, StatusCode::FORBIDDEN, "error_csrf"));
        }
        Ok(Step {
            token,
            flow,
            data,
            lang,
        })
    }

    /// Audits an event of this flow (decoy flows are recorded without a subject: it is random).
    pub async fn audit(
        &self,
        portal: &Portal,
        event_type: &str,
        method: Option<MethodKind>,
        outcome: Outcome,
        reason: Option<&str>,
    ) -> Result<(), latchkey_store::StoreError> {
        let subject = (!self.data.decoy).then_some(self.flow.subject);
        audit(
            portal,
            &self.data.correlation_id,
            subject,
            event_type,
            method,
            outcome,
            reason,
        )
        .await
    }

    /// The service-unavailable page in this flow's language.
    pub fn unavailable(&self, portal: &Portal, req: &HttpRequest) -> HttpResponse {
        portal.error_page(
            req,
            self.lang,
            StatusCode::SERVICE_UNAVAILABLE,
            "error_generic",
        )
    }
}

/// Records an audit event. Called before the response is sent; a failure to record fails the
/// request (an unaudited reset must not happen).
pub async fn audit(
    portal: &Portal,
    correlation_id: &str,
    subject: Option<ObjectId>,
    event_type: &str,
    method: Option<MethodKind>,
    outcome: Outcome,
    reason: Option<&str>,
) -> Result<(), latchkey_store::StoreError> {
    let event = AuditEvent {
        at: portal.services.clock.now(),
        correlation_id: correlation_id.to_string(),
        actor: "self".into(),
        subject,
        event_type: event_type.to_string(),
        method: method.map(|m| m.as_str().to_string()),
        outcome,
        reason: reason.map(str::to_string),
        details: serde_json::Value::Null,
    };
    portal.services.store.append_audit(&event).await.map(|_| ())
}

/// Throttle limits (docs/security.md "Numbers").
pub mod limits {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);
    const DAY: Duration = Duration::from_secs(86_400);

    /// Flow starts per client address.
    pub const STARTS_PER_CLIENT: &[Limit] = &[Limit::new(20, Duration::from_secs(600))];
    /// Verification attempts per client address.
    pub const VERIFICATIONS_PER_CLIENT: &[Limit] = &[Limit::new(60, HOUR)];
    /// Codes sent per account and channel.
    pub const SENDS_PER_ACCOUNT: &[Limit] = &[Limit::new(5, HOUR), Limit::new(10, DAY)];
    /// Failed verifications per account and method since the last success: a short burst, 5 an
    /// hour, and 100 in a row (about ten years' window: only a success or the helpdesk resets it).
    pub const FAILURES_PER_ACCOUNT: &[Limit] = &[
        Limit::new(3, Duration::from_secs(5 * 60)),
        Limit::new(5, HOUR),
        Limit::new(100, Duration::from_secs(3650 * 86_400)),
    ];
}

/// Why a throttled attempt may not go on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Too many attempts: wait this long.
    Throttled(Duration),
    /// The store could not count the attempt: denied (fail closed), but it is an outage, not
    /// the user's fault, and is said so.
    Unavailable,
}

impl Refusal {
    /// 429 for a throttle, 503 for an outage.
    pub fn status(self) -> StatusCode {
        match self {
            Refusal::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
            Refusal::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// What the user reads, in the page's language.
    pub fn message(self, portal: &Portal, lang: Lang) -> String {
        match self {
            Refusal::Throttled(wait) => throttled_message(portal, lang, wait),
            Refusal::Unavailable => portal
                .templates
                .catalogs()
                .get(lang, "error_store")
                .to_string(),
        }
    }
}

/// Checks and records one attempt against `limits` for `(scope, key)`. A store error denies
/// (fail closed) as [`Refusal::Unavailable`].
pub async fn hit(portal: &Portal, scope: &str, key: &str, limits: &[Limit]) -> Result<(), Refusal> {
    let k = ThrottleKey::new(scope, key);
    match portal
        .services
        .store
        .hit(&k, limits, portal.services.clock.now())
        .await
    {
        Ok(ThrottleDecision::Allowed { .. }) => Ok(()),
        Ok(ThrottleDecision::Denied { retry_after }) => Err(Refusal::Throttled(retry_after)),
        Err(e) => {
            tracing::error!(error = %e, scope, "throttle check failed; denying");
            Err(Refusal::Unavailable)
        }
    }
}

/// Charges one verification attempt *before* the answer is checked, so a guess costs an attempt
/// whatever its result: per client address, and per account under `failure_scope` (reset after a
/// success). `Err` says why not: too many attempts, or the store could not count it.
pub async fn charge_attempt(
    portal: &Portal,
    req: &HttpRequest,
    failure_scope: &str,
    account_key: &str,
) -> Result<(), Refusal> {
    let client = portal
        .services
        .proxies
        .client_ip(req)
        .map(|ip| ip.to_string())
        .unwrap_or_default();
    hit(
        portal,
        "verify:client",
        &client,
        limits::VERIFICATIONS_PER_CLIENT,
    )
    .await?;
    hit(
        portal,
        failure_scope,
        account_key,
        limits::FAILURES_PER_ACCOUNT,
    )
    .await
}

/// Forgets the attempts of `(scope, key)` (after a success).
pub async fn reset_throttle(portal: &Portal, scope: &str, key: &str) {
    if let Err(e) = portal
        .services
        .store
        .reset(&ThrottleKey::new(scope, key))
        .await
    {
        tracing::warn!(error = %e, scope, "could not reset a throttle");
    }
}

/// "Too many attempts, wait N minutes" in the page's language ("a minute" for one).
fn throttled_message(portal: &Portal, lang: Lang, wait: Duration) -> String {
    let minutes = wait.as_secs().div_ceil(60).max(1);
    let catalogs = portal.templates.catalogs();
    if minutes == 1 {
        return catalogs.get(lang, "error_throttled_one").to_string();
    }
    catalogs
        .get(lang, "error_throttled")
        .replace("{minutes}", &minutes.to_string())
}

/// The label of a method on buttons.
pub fn method_label(portal: &Portal, lang: Lang, kind: MethodKind) -> String {
    let key = match kind {
        MethodKind::Email => "method_email",
        MethodKind::Sms => "method_sms",
        MethodKind::Totp => "method_totp",
        MethodKind::Questions => "method_questions",
        MethodKind::Attribute => "method_attribute",
    };
    portal.templates.catalogs().get(lang, key).to_string()
}
