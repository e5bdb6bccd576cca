//! Pre-filled reset links: issued by a helpdesk member, opened by the user.
//!
//! A link is `{public_url}/link/{token}`: the token is a store flow's bearer token (256 random
//! bits, only its SHA-256 stored) of purpose [`LINK_PURPOSE`], subject = the user, data = the
//! member who made it, living `[helpdesk] link_lifetime_minutes` (default
//! [`DEFAULT_LINK_LIFETIME`]: docs/security.md says 60 minutes by default, 24 hours at most). It is bound to the user and to the member, and single use: opening the
//! page (`GET`, which mail scanners also do) changes nothing; continuing (`POST /link`) ends
//! the link flow first, atomically (of two concurrent uses only one ends it), then starts a
//! self-service flow for that user exactly as the identify step would (same decision, same
//! decoy for an account that may not use self-service, same deadline). It is never a
//! verification: the user still proves who they are with their own methods. A password change
//! voids every open link of the user (it ends all their flows).

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_notify::{Notice, Notification, Recipient};
use latchkey_store::{
    EnrollmentState, Flow, FlowLifetime, FlowPurpose, FlowToken, NewFlow, Outcome,
};
use latchkey_types::{EmailAddress, MethodKind, ObjectId, Secret};
use serde::{Deserialize, Serialize};

use super::{Target, page};
use crate::console::ConsoleUser;
use crate::flow;
use crate::flow::RefusalPage as _;
use crate::portal::Portal;
use latchkey_selfservice::flow::Unrecorded as _;
use latchkey_selfservice::identify;

/// Purpose of a helpdesk link's flow.
pub const LINK_PURPOSE: FlowPurpose = FlowPurpose::HelpdeskLink;
/// How long a link works (docs/security.md: 60 minutes by default).
pub const DEFAULT_LINK_LIFETIME: Duration = Duration::from_secs(60 * 60);

/// How long a reset link works here (`[helpdesk] link_lifetime_minutes`), a part of the portal
/// ([`crate::portal::Portal::part`]); [`DEFAULT_LINK_LIFETIME`] when not set.
pub struct LinkLifetime(pub Duration);
/// The ceiling (docs/security.md: 24 hours at most).
pub const MAX_LINK_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/helpdesk/link", web::post().to(issue_link))
        .route("/link/{token}", web::get().to(open))
        // HEAD as GET (mail scanners probe links with it); opening changes nothing.
        .route("/link/{token}", web::head().to(open))
        .route("/link", web::post().to(continue_with));
}

/// What a link keeps (the user is the flow's subject).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LinkData {
    /// The member who issued it: object id and UPN.
    pub member: String,
    pub member_upn: String,
    /// The user's UPN at issue: what the identify step is pre-filled with.
    pub login: String,
    pub correlation_id: String,
}

#[derive(Deserialize)]
pub struct IssueForm {
    csrf: String,
    q: String,
    /// `copy` (shown once to the member) or `email` (sent to the user's known address).
    delivery: String,
}

/// The user's known email address: the directory mail, else the enrolled email.
async fn known_address(portal: &Portal, t: &Target) -> Option<EmailAddress> {
    if let Some(m) = &t.user.mail {
        return Some(m.clone());
    }
    let e = portal
        .services
        .store
        .enrollment(
            &t.user.id,
            MethodKind::Email.as_str(),
            EnrollmentState::Active,
        )
        .await
        .ok()
        .flatten()?;
    e.data["address"].as_str().and_then(|a| a.parse().ok())
}

/// Reset links emailed to one user, by all members together.
const EMAILED_LINKS_PER_USER: &[latchkey_store::Limit] = &[latchkey_store::Limit::new(
    5,
    std::time::Duration::from_secs(3600),
)];

/// `POST /helpdesk/link`: issues a link for a user the member may serve.
async fn issue_link(
    req: HttpRequest,
    portal: web::Data<Portal>,
    form: web::Form<IssueForm>,
) -> HttpResponse {
    let (m, t) =
        match super::member_acting_on(&portal, &req, &form.csrf, &form.q, "helpdesk.link.issued")
            .await
        {
            Ok(x) => x,
            Err(r) => return r,
        };
    let refuse = async |key: &str, status: StatusCode| {
        let msg = super::message(&portal, &m, key, &[]);
        super::lookup::render_user(&portal, &req, &m, &t, Some(msg), status).await
    };
    let by_email = match form.delivery.as_str() {
        "email" => true,
        "copy" => false,
        _ => return refuse("helpdesk_error_delivery", StatusCode::BAD_REQUEST).await,
    };
    let address = if by_email {
        match known_address(&portal, &t).await {
            Some(a) => Some(a),
            None => return refuse("helpdesk_error_no_address", StatusCode::CONFLICT).await,
        }
    } else {
        None
    };
    // Emailed links land in the user's mailbox: cap them per user, whichever member sends them,
    // so the console cannot be used to flood someone's inbox.
    if by_email && !within_email_cap(&portal, &m, &t).await {
        let status = StatusCode::TOO_MANY_REQUESTS;
        return refuse("helpdesk_error_link_throttled", status).await;
    }
    let lifetime = portal
        .part::<LinkLifetime>()
        .map_or(DEFAULT_LINK_LIFETIME, |l| l.0)
        .min(MAX_LINK_LIFETIME);
    let delivery = if by_email { "email" } else { "copy" };
    let Some((url, data)) = store_link(&portal, &m, &t, lifetime, delivery).await else {
        return super::case::unavailable(&portal, &req, &m);
    };
    tell_user(&portal, &t, address.as_ref(), &url, lifetime, &data).await;
    let minutes = (lifetime.as_secs() / 60).to_string();
    page(
        &portal,
        &req,
        &m,
        "helpdesk_link.html",
        serde_json::json!({
            "target": super::lookup::identity(&t),
            "link": if by_email { None } else { Some(url.expose().clone()) },
            "emailed_to": address.map(|a| super::case::mask(a.as_str())),
            "minutes": minutes,
        }),
        StatusCode::OK,
    )
}

/// Counts one emailed link for the user; `false` (audited) when the cap is reached.
async fn within_email_cap(portal: &Portal, m: &ConsoleUser, t: &Target) -> bool {
    let s = &portal.services;
    let key = t.user.id.to_string();
    let counted =
        latchkey_selfservice::flow::hit(s, "helpdesk-link-email", &key, EMAILED_LINKS_PER_USER);
    if counted.await.is_ok() {
        return true;
    }
    m.audit(
        portal,
        "helpdesk.link.issued",
        Some(t.user.id),
        Outcome::Denied,
        Some("too many emailed links for this user"),
        serde_json::json!({ "delivery": "email" }),
    )
    .await
    .or_log();
    false
}

/// Stores the link flow and audits its issue; the link's URL and data, or `None` (logged) when
/// either failed (then no link exists).
async fn store_link(
    portal: &Portal,
    m: &ConsoleUser,
    t: &Target,
    lifetime: Duration,
    delivery: &str,
) -> Option<(Secret<String>, LinkData)> {
    let s = &portal.services;
    let Ok(correlation_id) = ObjectId::random() else {
        tracing::error!("link: no system randomness");
        return None;
    };
    let data = LinkData {
        member: m.oid.to_string(),
        member_upn: m.upn.clone(),
        login: t.user.user_principal_name.as_str().to_ascii_lowercase(),
        correlation_id: correlation_id.to_string(),
    };
    let new = NewFlow {
        subject: t.user.id,
        purpose: LINK_PURPOSE,
        step: latchkey_store::FlowStep::Issued,
        data: serde_json::to_value(&data).unwrap_or_default(),
        lifetime: FlowLifetime {
            absolute: lifetime,
            idle: lifetime,
        },
    };
    let (token, link_flow) = match s.store.create_flow(new, s.clock.now()).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "helpdesk: cannot store a link");
            return None;
        }
    };
    let details = serde_json::json!({
        "delivery": delivery,
        "link": link_flow.id.to_string(),
        "expires_at": link_flow.expires_at.unix_timestamp(),
    });
    let event = "helpdesk.link.issued";
    let audited = m.audit(
        portal,
        event,
        Some(t.user.id),
        Outcome::Success,
        None,
        details,
    );
    if audited.await.is_err() {
        // Not on record: the link must not work.
        s.store.end_flow(&token).await.or_log();
        return None;
    }
    let url = Secret::new(format!("{}/link/{}", s.csrf.origin(), token.expose()));
    Some((url, data))
}

/// The link to `address` (when emailed), and to every other channel known the notice that a
/// link was issued.
async fn tell_user(
    portal: &Portal,
    t: &Target,
    address: Option<&EmailAddress>,
    url: &Secret<String>,
    lifetime: Duration,
    data: &LinkData,
) {
    let s = &portal.services;
    let notification = |recipient, notice| Notification {
        recipient,
        notice,
        lang: t.user.preferred_language.clone(),
        correlation_id: data.correlation_id.clone(),
        subject: Some(t.user.id),
    };
    let mut told =
        latchkey_selfservice::after_change::known_channels(s, &t.user.id, t.user.mail.as_ref())
            .await;
    if let Some(a) = address {
        let notice = Notice::ResetLink {
            link: url.clone(),
            valid_for: lifetime,
        };
        if let Err(e) = s
            .notifier
            .enqueue(notification(Recipient::Email(a.clone()), notice))
        {
            tracing::error!(error = %e, "cannot queue a reset link");
        }
        told.retain(|r| *r != Recipient::Email(a.clone()));
    }
    let at = s.clock.now();
    for recipient in told {
        let notice = Notice::ResetLinkIssued { at };
        s.outbox.send(notification(recipient, notice)).await;
    }
}

/// The live link for `token`, if any.
async fn live_link(portal: &Portal, token: &FlowToken) -> Option<(Flow, LinkData)> {
    let flow = portal
        .services
        .store
        .flow(token, portal.services.clock.now())
        .await
        .ok()
        .flatten()
        .filter(|f| f.purpose == LINK_PURPOSE)?;
    let data = serde_json::from_value(flow.data.clone()).ok()?;
    Some((flow, data))
}

fn csrf_session(flow: &Flow) -> String {
    format!("link\0{}", flow.id)
}

/// The page for a link that does not work (unknown, used, expired): 410, with the way to start.
fn gone(portal: &Portal, req: &HttpRequest) -> HttpResponse {
    let lang = flow::lang(req, None);
    portal.error_page(req, lang, StatusCode::GONE, "link_invalid")
}

/// `GET /link/{token}`: shows whose password the link is for and a button to continue. Changes
/// nothing (mail scanners open links too).
async fn open(
    req: HttpRequest,
    portal: web::Data<Portal>,
    path: web::Path<String>,
) -> HttpResponse {
    let Some(token) = FlowToken::parse(&path) else {
        return gone(&portal, &req);
    };
    let Some((flow, data)) = live_link(&portal, &token).await else {
        return gone(&portal, &req);
    };
    let lang = flow::lang(&req, None);
    portal.render_in(
        &req,
        lang,
        "link.html",
        &serde_json::json!({
            "csrf": portal.services.csrf.token(&csrf_session(&flow)),
            "token": token.expose(),
            "login": data.login,
        }),
    )
}

#[derive(Deserialize)]
pub struct ContinueForm {
    csrf: String,
    token: String,
}

/// `POST /link`: uses the link up, then starts the self-service flow for its user.
async fn continue_with(
    req: HttpRequest,
    portal: web::Data<Portal>,
    form: web::Form<ContinueForm>,
) -> HttpResponse {
    let lang = flow::lang(&req, None);
    let Some(token) = FlowToken::parse(form.token.trim()) else {
        return gone(&portal, &req);
    };
    let Some((link_flow, data)) = live_link(&portal, &token).await else {
        return gone(&portal, &req);
    };
    if !portal
        .services
        .csrf
        .check(&req, &csrf_session(&link_flow), &form.csrf)
    {
        return portal.error_page(&req, lang, StatusCode::FORBIDDEN, "error_csrf");
    }
    if let Err(wait) = flow::hit_client(
        &portal,
        &req,
        "start:client",
        &portal.services.limits.starts(),
    )
    .await
    {
        let mut r = portal.render_in(
            &req,
            lang,
            "error.html",
            &serde_json::json!({ "message": wait.message(&portal, lang) }),
        );
        *r.status_mut() = wait.status();
        return r;
    }
    // Single use: only the one request that ends the link goes on.
    match portal.services.store.end_flow(&token).await {
        Ok(true) => {}
        Ok(false) => return gone(&portal, &req),
        Err(e) => {
            tracing::error!(error = %e, "link: cannot end the link");
            return portal.error_page(&req, lang, StatusCode::SERVICE_UNAVAILABLE, "error_generic");
        }
    }
    let s = &portal.services;
    // The same decision as the identify step, within the same deadline; bound to the user: a
    // UPN now naming someone else (renamed accounts) gets a decoy flow.
    let planned = identify::within_deadline(s.deadline, identify::plan(s, &data.login)).await;
    let mut plan = match planned.and_then(|p| p.bind_to(&link_flow.subject)) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "link: directory unavailable");
            return portal.error_page(&req, lang, StatusCode::SERVICE_UNAVAILABLE, "error_generic");
        }
    };
    plan.data.language = Some(lang.tag().to_string());
    let details = serde_json::json!({
        "link": link_flow.id.to_string(),
        "issued_by": data.member,
        "issued_by_upn": data.member_upn,
        "link_correlation_id": data.correlation_id,
    });
    let event = "helpdesk.link.used";
    let token = match identify::create(s, plan, event, details, Some(link_flow.subject)).await {
        Ok(token) => token,
        Err(e) => {
            tracing::error!(error = %e, "link: cannot create the flow");
            return portal.error_page(&req, lang, StatusCode::SERVICE_UNAVAILABLE, "error_generic");
        }
    };
    let mut resp = flow::see_other("/verify");
    resp = crate::portal::with_cookie(resp, &crate::flow_cookie::flow_cookie(&portal, &token));
    resp
}
