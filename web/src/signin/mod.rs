//! Sign-in with Entra for the enrollment pages: OpenID Connect authorization code flow with PKCE
//! against the tenant (or the simulator), with the portal's own app credential.
//!
//! 1. `GET /enroll` without a session calls [`begin`]: a fresh `state`, `nonce` and PKCE verifier
//!    are kept server-side in a short-lived store flow (purpose [`PURPOSE`]) whose token is in the
//!    sign-in cookie, and the browser goes to the tenant's authorize endpoint (`openid profile`).
//! 2. `GET /enroll/callback` ends that flow (single use, whatever happens next), checks `state`,
//!    redeems the code (PKCE verifier, app credential), and validates the ID token itself
//!    ([`latchkey_graph::oidc`]: RS256 against the tenant's JWKS, issuer, audience, expiry,
//!    nonce, tenant). The user is the token's `oid`.
//! 3. A new enrollment session starts (purpose [`SESSION_PURPOSE`], subject = `oid`, 15 minutes
//!    absolute, 5 idle) under a new token in the session cookie: nothing from before sign-in is
//!    carried over.
//!
//! Cookies: the sign-in cookie must come back on the identity platform's cross-site redirect, so
//! it is `SameSite=Lax` (HttpOnly, `__Host-`/Secure behind HTTPS, 10 minutes, single use, only
//! read by the callback, which `state` protects). The session cookie is `SameSite=Strict` like
//! the reset flow's; because a Strict cookie set during a cross-site redirect chain is not sent
//! on the next hop, the callback answers with a small page that moves on to `/enroll` from our
//! own origin (a zero-delay refresh plus a link) instead of a redirect.
//!
//! What stays server-side in the sign-in flow (`state`, `nonce`, PKCE verifier) is sealed with
//! the at-rest key ([`attempt`], shared with the consoles) and useless once the flow ends: the
//! authorization code is bound to the verifier and is single use.

pub mod attempt;
pub mod callback;
pub mod start;

use std::time::Duration;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_graph::GraphConfig;
use latchkey_graph::oidc::OidcProvider;
use latchkey_store::{Flow, FlowLifetime, FlowPurpose, FlowToken, NewFlow, Outcome};
use latchkey_types::ObjectId;

use self::attempt::Attempt;
use self::callback::CallbackQuery;
use serde::{Deserialize, Serialize};

use crate::flow;
use crate::i18n::Lang;
use crate::portal::Portal;
use latchkey_selfservice::flow::Unrecorded as _;

/// Purpose of the short-lived flow that carries a sign-in attempt.
pub const PURPOSE: FlowPurpose = FlowPurpose::EnrollSignIn;
/// Purpose of an enrollment session.
pub const SESSION_PURPOSE: FlowPurpose = FlowPurpose::Enrollment;
/// Scopes requested: an ID token with the user's names; nothing else.
const SCOPES: [&str; 2] = ["openid", "profile"];
/// How long a user may take at the identity platform's sign-in page.
const SIGNIN_LIFETIME: Duration = Duration::from_secs(10 * 60);

/// The portal's OpenID Connect client: the tenant as provider, our redirect URI.
pub struct SignIn {
    provider: OidcProvider,
    redirect_uri: String,
    /// Other addresses of the same portal, as (`host[:port]`, redirect URI): a sign-in begun
    /// at one comes back to it, where its cookies are ([`SignIn::also_at`]).
    aliases: Vec<(String, String)>,
}

impl SignIn {
    /// `public_url` is the portal's public URL; the redirect URI is `{public_url}/enroll/callback`
    /// (register it as a Web platform redirect URI of the app).
    pub fn new(config: GraphConfig, public_url: &str) -> anyhow::Result<Self> {
        Self::with_callback(config, public_url, "/enroll/callback")
    }

    /// The same client with another redirect path (the consoles use `/console/callback`).
    pub fn with_callback(
        config: GraphConfig,
        public_url: &str,
        path: &str,
    ) -> anyhow::Result<Self> {
        let redirect_uri = format!("{}{path}", public_url.trim_end_matches('/'));
        let provider = OidcProvider::new(config).map_err(|e| anyhow::anyhow!("[entra]: {e}"))?;
        Ok(Self {
            provider,
            redirect_uri,
            aliases: Vec::new(),
        })
    }

    /// The same portal is also reached at `public_url` (the demo: `http://localhost:PORT`, where
    /// passkeys work, beside `http://127.0.0.1:PORT`). Register its redirect URI too.
    pub fn also_at(mut self, public_url: &str) -> anyhow::Result<Self> {
        let url = url::Url::parse(public_url)?;
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => anyhow::bail!("{public_url} has no host"),
        };
        let path = url::Url::parse(&self.redirect_uri)?.path().to_string();
        let uri = format!("{}{path}", public_url.trim_end_matches('/'));
        self.aliases.push((host, uri));
        Ok(self)
    }

    /// The redirect URI of the public URL (what `latchkey check` and the logs show).
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// The redirect URI for a sign-in begun (or ending) with `req`: the alias whose host the
    /// request was sent to, else the public URL's. The Host header only chooses among the
    /// configured addresses.
    pub fn redirect_uri_for(&self, req: &HttpRequest) -> &str {
        let host = req.connection_info().host().to_ascii_lowercase();
        self.aliases
            .iter()
            .find(|(h, _)| *h == host)
            .map_or(self.redirect_uri.as_str(), |(_, uri)| uri.as_str())
    }

    /// The tenant as OpenID provider (authorize URL, code redemption, ID token validation).
    pub fn provider(&self) -> &OidcProvider {
        &self.provider
    }
}

/// An enrollment session's data (the subject, the signed-in user, is the flow's subject).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Session {
    pub correlation_id: String,
    pub upn: String,
    pub display_name: Option<String>,
    /// The directory mail at sign-in: told about every change.
    pub mail: Option<String>,
    pub preferred_language: Option<String>,
    /// A one-time message for the next page: (message key, method kind, earlier channels told).
    #[serde(default)]
    pub flash: Option<(String, Option<String>, bool)>,
    /// The passkey being registered (its challenge is taken by the browser's answer).
    #[serde(default)]
    pub passkey: Option<latchkey_selfservice::passkey::PendingRegistration>,
}

impl Session {
    pub fn from_flow(flow: &Flow) -> Session {
        serde_json::from_value(flow.data.clone()).unwrap_or_default()
    }

    /// The signed-in user's language: their choice, the browser's, then the directory's.
    pub fn lang(&self, req: &HttpRequest) -> Lang {
        crate::i18n::for_request(req, self.preferred_language.as_deref())
    }
}

fn removal(mut c: Cookie<'static>) -> Cookie<'static> {
    c.make_removal();
    c
}

/// The enrollment session cookie (Strict, no Max-Age: the server decides when a session ends).
pub fn session_cookie(portal: &Portal, token: &FlowToken) -> Cookie<'static> {
    portal.services.cookies.cookie(
        "latchkey-enroll",
        token.expose().to_string(),
        SameSite::Strict,
    )
}

/// A cookie that removes the session cookie.
pub fn clear_session_cookie(portal: &Portal) -> Cookie<'static> {
    removal(
        portal
            .services
            .cookies
            .cookie("latchkey-enroll", String::new(), SameSite::Strict),
    )
}

fn attempt_cookie(portal: &Portal, token: &FlowToken) -> Cookie<'static> {
    let mut c = portal.services.cookies.cookie(
        "latchkey-signin",
        token.expose().to_string(),
        SameSite::Lax,
    );
    c.set_max_age(actix_web::cookie::time::Duration::seconds(
        SIGNIN_LIFETIME.as_secs() as i64,
    ));
    c
}

/// A cookie that removes the sign-in attempt's cookie.
pub fn clear_attempt_cookie(portal: &Portal) -> Cookie<'static> {
    removal(
        portal
            .services
            .cookies
            .cookie("latchkey-signin", String::new(), SameSite::Lax),
    )
}

/// The live enrollment session of this request.
pub async fn load_session(
    portal: &Portal,
    req: &HttpRequest,
) -> Option<(FlowToken, Flow, Session)> {
    let token = req
        .cookie(&portal.services.cookies.name("latchkey-enroll"))
        .and_then(|c| FlowToken::parse(c.value()))?;
    let flow = portal
        .services
        .store
        .flow(&token, portal.services.clock.now())
        .await
        .ok()
        .flatten()?;
    if flow.purpose != SESSION_PURPOSE {
        return None;
    }
    let session = Session::from_flow(&flow);
    Some((token, flow, session))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/enroll/callback", web::get().to(callback))
        .route("/enroll/signout", web::post().to(signout));
}

/// Starts a sign-in: stores the attempt, sets its cookie, redirects to the authorize endpoint.
pub async fn begin(portal: &Portal, req: &HttpRequest, signin: &SignIn) -> HttpResponse {
    let lang = flow::lang(req, None);
    if let Some(r) = start::throttled(portal, req, lang).await {
        return r;
    }
    let scopes: Vec<String> = SCOPES.iter().map(|s| s.to_string()).collect();
    // The enrollment attempt keeps nothing besides its secrets and correlation id.
    let Ok(attempt) = Attempt::new(()) else {
        tracing::error!("enroll sign-in: no system randomness");
        return portal.error_page(req, lang, StatusCode::SERVICE_UNAVAILABLE, "error_generic");
    };
    let started = signin
        .authorize(
            portal,
            req,
            &attempt,
            &scopes,
            (PURPOSE, SIGNIN_LIFETIME),
            "enroll",
        )
        .await;
    let Some((url, token)) = started else {
        return portal.error_page(req, lang, StatusCode::SERVICE_UNAVAILABLE, "error_generic");
    };
    let mut r = HttpResponse::SeeOther()
        .insert_header(("Location", url.to_string()))
        .finish();
    r = crate::portal::with_cookie(r, &attempt_cookie(portal, &token));
    r
}

/// Stores the enrollment session of `subject` and audits the sign-in; `None` (logged) when
/// either failed (then no session exists).
async fn open_session(portal: &Portal, subject: ObjectId, session: &Session) -> Option<FlowToken> {
    let s = &portal.services;
    let new = NewFlow {
        subject,
        purpose: SESSION_PURPOSE,
        step: latchkey_store::FlowStep::Manage,
        data: serde_json::to_value(session).unwrap_or_default(),
        lifetime: FlowLifetime::default(),
    };
    let token = match s.store.create_flow(new, s.clock.now()).await {
        Ok((t, _)) => t,
        Err(e) => {
            tracing::error!(error = %e, "enroll: cannot create the session");
            return None;
        }
    };
    let cid = &session.correlation_id;
    let event = "enroll.signin";
    let audited = latchkey_selfservice::flow::audit(
        s,
        cid,
        Some(subject),
        event,
        None,
        Outcome::Success,
        None,
    );
    if audited.await.is_err() {
        s.store.end_flow(&token).await.or_log();
        return None;
    }
    Some(token)
}

async fn callback(
    req: HttpRequest,
    portal: web::Data<Portal>,
    query: web::Query<CallbackQuery>,
) -> HttpResponse {
    let lang = flow::lang(&req, None);
    let Some(signin) = portal.part::<crate::signin::SignIn>() else {
        return portal.error_page(&req, lang, StatusCode::NOT_FOUND, "enroll_not_configured");
    };
    let s = &portal.services;
    let now = s.clock.now();
    let (attempt, correlation_id): (Option<Attempt<()>>, _) =
        Attempt::take_for_callback(&portal, &req, "latchkey-signin", PURPOSE).await;
    let fail = async |reason: String, subject: Option<ObjectId>| -> HttpResponse {
        let status = if latchkey_selfservice::flow::audit(
            &portal.services,
            &correlation_id,
            subject,
            "enroll.signin",
            None,
            Outcome::Failure,
            Some(&reason),
        )
        .await
        .is_err()
        {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::BAD_REQUEST
        };
        tracing::warn!(reason = %reason, "enroll: sign-in refused");
        let mut r = portal.error_page(&req, lang, status, "enroll_signin_failed");
        r = crate::portal::with_cookie(r, &clear_attempt_cookie(&portal));
        r
    };
    let Some(attempt) = attempt else {
        return fail("no sign-in in progress".into(), None).await;
    };
    let signed_in = match query.code(&attempt) {
        Ok(code) => {
            signin
                .signed_in(&portal, &req, &attempt, code, now, "enroll")
                .await
        }
        Err(r) => Err(r),
    };
    let (claims, user) = match signed_in {
        Ok(x) => x,
        Err(r) => return fail(r.reason, r.subject).await,
    };
    let session = Session {
        correlation_id: correlation_id.clone(),
        upn: user.user_principal_name.as_str().to_string(),
        display_name: user.display_name.clone().or(claims.name.clone()),
        mail: user.mail.as_ref().map(|m| m.as_str().to_string()),
        preferred_language: user.preferred_language.clone(),
        flash: None,
        passkey: None,
    };
    let Some(session_token) = open_session(&portal, claims.oid, &session).await else {
        return portal.error_page(&req, lang, StatusCode::SERVICE_UNAVAILABLE, "error_generic");
    };
    let lang = session.lang(&req);
    let mut r = portal.render_in(&req, lang, "enroll_signed_in.html", &serde_json::json!({}));
    r = crate::portal::with_cookie(r, &clear_attempt_cookie(&portal));
    r = crate::portal::with_cookie(r, &session_cookie(&portal, &session_token));
    r
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn signout(
    req: HttpRequest,
    portal: web::Data<Portal>,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    let Some((token, flow, session)) = load_session(&portal, &req).await else {
        let mut r = HttpResponse::SeeOther()
            .insert_header(("Location", "/"))
            .finish();
        r = crate::portal::with_cookie(r, &clear_session_cookie(&portal));
        return r;
    };
    let lang = session.lang(&req);
    if !portal
        .services
        .csrf
        .check(&req, &flow.id.to_string(), &form.csrf)
    {
        return portal.error_page(&req, lang, StatusCode::FORBIDDEN, "error_csrf");
    }
    portal.services.store.end_flow(&token).await.or_log();
    if latchkey_selfservice::flow::audit(
        &portal.services,
        &session.correlation_id,
        Some(flow.subject),
        "enroll.signout",
        None,
        Outcome::Success,
        None,
    )
    .await
    .is_err()
    {
        return portal.error_page(&req, lang, StatusCode::SERVICE_UNAVAILABLE, "error_generic");
    }
    let catalogs = portal.templates.catalogs();
    let mut r = portal.render_in(
        &req,
        lang,
        "result.html",
        &serde_json::json!({
            "title": catalogs.get(lang, "enroll_signed_out_title"),
            "paragraphs": [catalogs.get(lang, "enroll_signed_out_body")],
        }),
    );
    r = crate::portal::with_cookie(r, &clear_session_cookie(&portal));
    r
}
