//! Sign-in and access control for the consoles (`/admin`, `/helpdesk`).
//!
//! **Sign-in.** The same OpenID Connect client as `/enroll` ([`crate::signin::SignIn`]:
//! authorization code + PKCE, ID token validated against the tenant's keys), with ONE redirect
//! URI for both consoles: `{public_url}/console/callback`. The server-side attempt (a short-lived
//! store flow, purpose [`SIGNIN_PURPOSE`]) records which console started it, so the callback
//! knows where the user is going; nothing in the browser can change that. A successful sign-in
//! starts a console session: a store flow with the console's purpose (`admin`, `helpdesk`),
//! subject = the user's `oid`, [`SESSION_IDLE`] idle and [`SESSION_ABSOLUTE`] absolute lifetime,
//! under a fresh token in a `SameSite=Strict`, HttpOnly (`__Host-`, Secure behind HTTPS) cookie
//! per console. Sign-out (`POST /admin/signout`, `POST /helpdesk/signout`) ends it.
//!
//! **Access.** [`gate`] (middleware) looks at every request. Its path is normalized first
//! (percent-decoding, `\` as `/`, empty and `.` segments dropped, `..` resolved, case folded);
//! when the normalized path lies in a console area, a request whose raw path is not exactly the
//! canonical spelling is redirected to it (so `/Admin`, `//admin`, `/admin/../admin`, `%2e%2e`,
//! trailing slashes never reach a handler unguarded; console paths are therefore lower-case ASCII,
//! with variables in the query string), and a canonical request passes only with a
//! live session of that console whose user is, right now, a transitive member of the configured
//! group (`[admin] group` / `[helpdesk] group`), checked with Graph `checkMemberGroups`. The
//! answer is cached per (user, console) for at most [`MEMBERSHIP_CACHE`]: a member removed from
//! the group loses access on the first request after that. A failed check fails closed (503).
//! Unauthenticated GETs are sent to sign-in; other unauthenticated requests get 401.
//!
//! **API for console pages.** Handlers behind the gate call [`require`] (or [`user`]) to get the
//! [`ConsoleUser`] the gate admitted: who (oid, UPN, name), the page language, the CSRF token for
//! forms and [`ConsoleUser::check_csrf`] for POSTs, and [`ConsoleUser::audit`] for events with the
//! console user as actor. `[helpdesk] serves` is [`Consoles::serves`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, HttpRequest, HttpResponse, web};
use latchkey_graph::delegated::{self, Pkce};
use latchkey_store::{AuditEvent, FlowLifetime, FlowToken, NewFlow, Outcome};
use latchkey_types::{ObjectId, Secret};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::app::Portal;
use crate::flow::{self, limits};
use crate::i18n::{Lang, negotiate};
use crate::signin::SignIn;

/// Purpose of the short-lived flow that carries a console sign-in attempt.
pub const SIGNIN_PURPOSE: &str = "console-signin";
/// The one redirect URI path of both consoles.
pub const CALLBACK_PATH: &str = "/console/callback";
/// How long a membership answer is trusted before Graph is asked again.
pub const MEMBERSHIP_CACHE: Duration = Duration::from_secs(60);
/// A console session ends after this long without a request ...
pub const SESSION_IDLE: Duration = Duration::from_secs(15 * 60);
/// ... and this long after sign-in in any case.
pub const SESSION_ABSOLUTE: Duration = Duration::from_secs(8 * 60 * 60);
/// How long a user may take at the identity platform's sign-in page.
const SIGNIN_LIFETIME: Duration = Duration::from_secs(10 * 60);
const SIGNIN_COOKIE: &str = "latchkey-console-signin";

/// Which console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Console {
    Admin,
    Helpdesk,
}

impl Console {
    /// The session purpose (and audit vocabulary): `admin`, `helpdesk`.
    pub fn purpose(self) -> &'static str {
        match self {
            Console::Admin => "admin",
            Console::Helpdesk => "helpdesk",
        }
    }

    /// The console's home path: `/admin`, `/helpdesk`.
    pub fn home(self) -> &'static str {
        match self {
            Console::Admin => "/admin",
            Console::Helpdesk => "/helpdesk",
        }
    }

    fn cookie(self) -> &'static str {
        match self {
            Console::Admin => "latchkey-admin",
            Console::Helpdesk => "latchkey-helpdesk",
        }
    }

    /// The console whose area the (normalized) path lies in.
    pub fn of_path(normalized: &str) -> Option<Console> {
        [Console::Admin, Console::Helpdesk].into_iter().find(|c| {
            normalized == c.home()
                || normalized
                    .strip_prefix(c.home())
                    .is_some_and(|r| r.starts_with('/'))
        })
    }
}

/// The consoles' configuration and membership cache (one per portal).
pub struct Consoles {
    signin: SignIn,
    admin_group: Option<ObjectId>,
    helpdesk_group: Option<ObjectId>,
    /// `[helpdesk] serves`: the groups whose members the helpdesk may serve.
    pub serves: Vec<ObjectId>,
    /// `[admin] secret_expires`: the client secret's expiry, as the admin configured it.
    pub secret_expires: Option<time::Date>,
    cache: Mutex<HashMap<(ObjectId, Console), (OffsetDateTime, bool)>>,
}

/// Parses `YYYY-MM-DD`.
pub fn parse_date(s: &str) -> Option<time::Date> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s.trim(), format).ok()
}

impl Consoles {
    /// `public_url` is the portal's public URL: the redirect URI is
    /// `{public_url}/console/callback`. A console without a group is not served.
    pub fn new(
        config: latchkey_graph::GraphConfig,
        public_url: &str,
        admin: Option<&crate::config::AdminSettings>,
        helpdesk: Option<&crate::config::HelpdeskSettings>,
    ) -> anyhow::Result<Self> {
        let id = |s: &str, key: &str| {
            s.trim()
                .parse::<ObjectId>()
                .map_err(|_| anyhow::anyhow!("key `{key}` is not a group object id"))
        };
        Ok(Self {
            signin: SignIn::with_callback(config, public_url, CALLBACK_PATH)?,
            admin_group: admin.map(|a| id(&a.group, "admin.group")).transpose()?,
            helpdesk_group: helpdesk
                .map(|h| id(&h.group, "helpdesk.group"))
                .transpose()?,
            serves: helpdesk
                .map(|h| {
                    h.serves
                        .iter()
                        .map(|g| id(g, "helpdesk.serves"))
                        .collect::<anyhow::Result<Vec<_>>>()
                })
                .transpose()?
                .unwrap_or_default(),
            secret_expires: admin
                .and_then(|a| a.secret_expires.as_deref())
                .and_then(parse_date),
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The group whose members may use `console`; `None`: the console is off.
    pub fn group(&self, console: Console) -> Option<ObjectId> {
        match console {
            Console::Admin => self.admin_group,
            Console::Helpdesk => self.helpdesk_group,
        }
    }

    /// The redirect URI to register for the consoles.
    pub fn redirect_uri(&self) -> &str {
        self.signin.redirect_uri()
    }

    /// Is `oid` a transitive member of `console`'s group? Fresh from Graph unless answered
    /// within [`MEMBERSHIP_CACHE`].
    async fn is_member(
        &self,
        portal: &Portal,
        oid: &ObjectId,
        console: Console,
    ) -> Result<bool, latchkey_graph::GraphError> {
        let Some(group) = self.group(console) else {
            return Ok(false);
        };
        let now = portal.services.clock.now();
        if let Ok(cache) = self.cache.lock()
            && let Some((at, member)) = cache.get(&(*oid, console))
            && now - *at < MEMBERSHIP_CACHE
            && now >= *at
        {
            return Ok(*member);
        }
        let found = portal
            .services
            .directory
            .check_member_groups(oid, std::slice::from_ref(&group))
            .await?;
        let member = found.contains(&group);
        if let Ok(mut cache) = self.cache.lock() {
            // Bounded: entries older than the window are useless; drop them as we go.
            cache.retain(|_, (at, _)| now - *at < MEMBERSHIP_CACHE);
            cache.insert((*oid, console), (now, member));
        }
        Ok(member)
    }
}

/// What a console session keeps server-side (the subject is the flow's).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Session {
    correlation_id: String,
    upn: String,
    display_name: Option<String>,
    preferred_language: Option<String>,
}

/// The signed-in console user the gate admitted for this request.
#[derive(Debug, Clone)]
pub struct ConsoleUser {
    pub console: Console,
    pub oid: ObjectId,
    pub upn: String,
    pub display_name: Option<String>,
    /// The page language: the directory's preference, then the browser's.
    pub lang: Lang,
    /// The CSRF token for this session's forms (field name `csrf`).
    pub csrf: String,
    /// Correlates every event of this session in the audit trail.
    pub correlation_id: String,
    session_id: String,
}

impl ConsoleUser {
    /// Checks a POST's CSRF token (and Origin / Fetch Metadata) against this session.
    pub fn check_csrf(&self, portal: &Portal, req: &HttpRequest, token: &str) -> bool {
        portal.services.csrf.check(req, &self.session_id, token)
    }

    /// Appends an audit event with this console user as the actor (`actor` = object id;
    /// `details.actor_upn`, `details.console` for humans).
    pub async fn audit(
        &self,
        portal: &Portal,
        event_type: &str,
        subject: Option<ObjectId>,
        outcome: Outcome,
        reason: Option<&str>,
        details: serde_json::Value,
    ) -> Result<(), latchkey_store::StoreError> {
        let mut d = match details {
            serde_json::Value::Object(m) => m,
            serde_json::Value::Null => serde_json::Map::new(),
            other => {
                let mut m = serde_json::Map::new();
                m.insert("value".into(), other);
                m
            }
        };
        d.insert("actor_upn".into(), self.upn.clone().into());
        d.insert("console".into(), self.console.purpose().into());
        let event = AuditEvent {
            at: portal.services.clock.now(),
            correlation_id: self.correlation_id.clone(),
            actor: self.oid.to_string(),
            subject,
            event_type: event_type.to_string(),
            method: None,
            outcome,
            reason: reason.map(str::to_string),
            details: serde_json::Value::Object(d),
        };
        portal.services.store.append_audit(&event).await.map(|_| ())
    }

    /// The values every console page needs: `user` (name, UPN), `csrf`, `console`.
    pub fn context(&self) -> serde_json::Value {
        serde_json::json!({
            "console_user": {
                "upn": self.upn,
                "name": self.display_name.clone().unwrap_or_else(|| self.upn.clone()),
            },
            "csrf": self.csrf,
            "console": self.console.purpose(),
        })
    }
}

/// The console user the gate admitted for this request. Handlers of console routes call this
/// first; `Err` is the response to send (the gate did not run or admitted another console:
/// deny by default).
pub fn require(req: &HttpRequest, console: Console) -> Result<ConsoleUser, HttpResponse> {
    match user(req) {
        Some(u) if u.console == console => Ok(u),
        _ => Err(HttpResponse::Forbidden()
            .content_type("text/plain; charset=utf-8")
            .body("forbidden")),
    }
}

/// The console user admitted by the gate, if any.
pub fn user(req: &HttpRequest) -> Option<ConsoleUser> {
    req.extensions().get::<ConsoleUser>().cloned()
}

/// The path as the gate judges it: percent-decoded, `\` read as `/`, empty and `.` segments
/// dropped, `..` resolved, lower-cased, no trailing slash (`/` for the root).
pub fn normalize(raw: &str) -> String {
    // Decode repeatedly so `%252e` cannot hide a dot behind a second encoding.
    let mut path = raw.to_string();
    for _ in 0..3 {
        let decoded = percent_decode(&path);
        if decoded == path {
            break;
        }
        path = decoded;
    }
    let path = path.replace('\\', "/").to_lowercase();
    let mut out: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Middleware: guards the console areas (see the module docs).
pub async fn gate(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let raw = req.path().to_string();
    let normalized = normalize(&raw);
    let Some(console) = Console::of_path(&normalized) else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let Some(portal) = req.app_data::<web::Data<Portal>>().cloned() else {
        return Ok(req
            .into_response(HttpResponse::NotFound().finish())
            .map_into_right_body());
    };
    if raw != normalized {
        // Console paths are lower-case ASCII (variables go in the query string): anything else
        // is not ours to redirect to.
        if !normalized
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"/-_.".contains(&b))
        {
            return Ok(req
                .into_response(HttpResponse::NotFound().finish())
                .map_into_right_body());
        }
        // A non-canonical spelling of a console path: only ever sent to the canonical one.
        let mut location = normalized.clone();
        if let Some(q) = req.uri().query() {
            location.push('?');
            location.push_str(q);
        }
        let r = HttpResponse::PermanentRedirect()
            .insert_header(("Location", location))
            .finish();
        return Ok(req.into_response(r).map_into_right_body());
    }
    // Borrowed, not cloned: the request must be uniquely owned again when it moves on.
    let admitted = admit(&portal, req.request(), console).await;
    match admitted {
        Ok(user) => {
            req.extensions_mut().insert(user);
            Ok(next.call(req).await?.map_into_left_body())
        }
        Err(r) => Ok(req.into_response(r).map_into_right_body()),
    }
}

fn lang_of(req: &HttpRequest, preferred: Option<&str>) -> Lang {
    let accept = req
        .headers()
        .get("accept-language")
        .and_then(|v| v.to_str().ok());
    negotiate(preferred, accept)
}

/// Session + fresh membership, or the response that refuses.
async fn admit(
    portal: &Portal,
    req: &HttpRequest,
    console: Console,
) -> Result<ConsoleUser, HttpResponse> {
    let lang = lang_of(req, None);
    let Some(consoles) = portal.consoles.clone() else {
        return Err(portal.error_page(req, lang, StatusCode::NOT_FOUND, "console_not_configured"));
    };
    if consoles.group(console).is_none() {
        return Err(portal.error_page(req, lang, StatusCode::NOT_FOUND, "console_not_configured"));
    }
    let s = &portal.services;
    let now = s.clock.now();
    let token = req
        .cookie(&s.cookies.name(console.cookie()))
        .and_then(|c| FlowToken::parse(c.value()));
    let flow = match &token {
        Some(t) => s
            .store
            .flow(t, now)
            .await
            .ok()
            .flatten()
            .filter(|f| f.purpose == console.purpose()),
        None => None,
    };
    let Some(flow) = flow else {
        if req.method() == Method::GET || req.method() == Method::HEAD {
            return Err(begin(portal, req, &consoles, console).await);
        }
        let mut r = portal.error_page(req, lang, StatusCode::UNAUTHORIZED, "console_signed_out");
        let _ = r.add_cookie(&removal(session_cookie(portal, console, String::new())));
        return Err(r);
    };
    let session: Session = serde_json::from_value(flow.data.clone()).unwrap_or_default();
    let lang = lang_of(req, session.preferred_language.as_deref());
    match consoles.is_member(portal, &flow.subject, console).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(console = console.purpose(), user = %flow.subject, "console: not a member of the console's group");
            let event = AuditEvent {
                at: now,
                correlation_id: session.correlation_id.clone(),
                actor: flow.subject.to_string(),
                subject: Some(flow.subject),
                event_type: format!("{}.denied", console.purpose()),
                method: None,
                outcome: Outcome::Failure,
                reason: Some("not a member of the console's group".into()),
                details: serde_json::json!({ "path": req.path() }),
            };
            let status = if s.store.append_audit(&event).await.is_err() {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::FORBIDDEN
            };
            return Err(portal.error_page(req, lang, status, "console_forbidden"));
        }
        Err(e) => {
            tracing::error!(error = %e, "console: cannot check group membership");
            return Err(portal.error_page(
                req,
                lang,
                StatusCode::SERVICE_UNAVAILABLE,
                "console_unavailable",
            ));
        }
    }
    let session_id = flow.id.to_string();
    Ok(ConsoleUser {
        console,
        oid: flow.subject,
        upn: session.upn,
        display_name: session.display_name,
        lang,
        csrf: s.csrf.token(&session_id),
        correlation_id: session.correlation_id,
        session_id,
    })
}

fn cookie(
    portal: &Portal,
    base: &'static str,
    value: String,
    same_site: SameSite,
) -> Cookie<'static> {
    let mut c = Cookie::new(portal.services.cookies.name(base), value);
    c.set_path("/");
    c.set_http_only(true);
    c.set_secure(portal.services.cookies.secure);
    c.set_same_site(same_site);
    c
}

fn session_cookie(portal: &Portal, console: Console, value: String) -> Cookie<'static> {
    cookie(portal, console.cookie(), value, SameSite::Strict)
}

fn removal(mut c: Cookie<'static>) -> Cookie<'static> {
    c.make_removal();
    c
}

/// A sign-in attempt, kept in the store (never in the browser).
#[derive(Serialize, Deserialize)]
struct Attempt {
    console: Console,
    state: String,
    nonce: String,
    verifier: String,
    correlation_id: String,
}

const SCOPES: [&str; 2] = ["openid", "profile"];

fn scopes() -> Vec<String> {
    SCOPES.iter().map(|s| s.to_string()).collect()
}

/// Starts a sign-in for `console`: stores the attempt, sets its cookie, redirects to the
/// authorize endpoint.
async fn begin(
    portal: &Portal,
    req: &HttpRequest,
    consoles: &Consoles,
    console: Console,
) -> HttpResponse {
    let lang = lang_of(req, None);
    let client = portal
        .services
        .proxies
        .client_ip(req)
        .map(|ip| ip.to_string())
        .unwrap_or_default();
    if let Err(wait) = flow::hit(portal, "signin:client", &client, limits::STARTS_PER_CLIENT).await
    {
        let mut r = portal.render_in(
            req,
            lang,
            "error.html",
            &serde_json::json!({ "message": flow::throttled_message(portal, lang, wait) }),
        );
        *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        return r;
    }
    let pkce = Pkce::generate();
    let attempt = Attempt {
        console,
        state: delegated::new_state(),
        nonce: delegated::new_nonce(),
        verifier: pkce.verifier().expose().clone(),
        correlation_id: ObjectId::new_random().to_string(),
    };
    let url = match delegated::authorize_url(
        consoles.signin.provider().config(),
        consoles.signin.redirect_uri(),
        &scopes(),
        &pkce,
        &attempt.state,
        &attempt.nonce,
    ) {
        Ok(u) => u,
        Err(e) => {
            tracing::error!(error = %e, "console: cannot build the authorize URL");
            return portal.error_page(req, lang, StatusCode::SERVICE_UNAVAILABLE, "error_generic");
        }
    };
    let new = NewFlow {
        // Nobody is known yet: a placeholder subject that matches no user.
        subject: ObjectId::new_random(),
        purpose: SIGNIN_PURPOSE.into(),
        step: "authorize".into(),
        data: serde_json::to_value(&attempt).unwrap_or_default(),
        lifetime: FlowLifetime {
            absolute: SIGNIN_LIFETIME,
            idle: SIGNIN_LIFETIME,
        },
    };
    let now = portal.services.clock.now();
    let token = match portal.services.store.create_flow(new, now).await {
        Ok((t, _)) => t,
        Err(e) => {
            tracing::error!(error = %e, "console: cannot store the sign-in attempt");
            return portal.error_page(req, lang, StatusCode::SERVICE_UNAVAILABLE, "error_generic");
        }
    };
    let mut c = cookie(
        portal,
        SIGNIN_COOKIE,
        token.expose().to_string(),
        SameSite::Lax,
    );
    c.set_max_age(actix_web::cookie::time::Duration::seconds(
        SIGNIN_LIFETIME.as_secs() as i64,
    ));
    let mut r = HttpResponse::SeeOther()
        .insert_header(("Location", url.to_string()))
        .finish();
    let _ = r.add_cookie(&c);
    r
}

/// Routes outside the guarded areas (the callback) and the sign-out of each console.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(CALLBACK_PATH, web::get().to(callback))
        .route("/admin/signout", web::post().to(signout_admin))
        .route("/helpdesk/signout", web::post().to(signout_helpdesk));
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

fn ct_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn callback(
    req: HttpRequest,
    portal: web::Data<Portal>,
    query: web::Query<CallbackQuery>,
) -> HttpResponse {
    let lang = lang_of(&req, None);
    let Some(consoles) = portal.consoles.clone() else {
        return portal.error_page(&req, lang, StatusCode::NOT_FOUND, "console_not_configured");
    };
    let s = &portal.services;
    let now = s.clock.now();
    // The attempt is single use: it ends here whatever the outcome.
    let token = req
        .cookie(&s.cookies.name(SIGNIN_COOKIE))
        .and_then(|c| FlowToken::parse(c.value()));
    let mut attempt_flow = None;
    if let Some(t) = &token {
        attempt_flow = s
            .store
            .flow(t, now)
            .await
            .ok()
            .flatten()
            .filter(|f| f.purpose == SIGNIN_PURPOSE);
        let _ = s.store.end_flow(t).await;
    }
    let attempt: Option<Attempt> = attempt_flow
        .as_ref()
        .and_then(|f| serde_json::from_value(f.data.clone()).ok());
    let correlation_id = attempt.as_ref().map_or_else(
        || ObjectId::new_random().to_string(),
        |a| a.correlation_id.clone(),
    );
    let event_type = attempt.as_ref().map_or("console.signin".to_string(), |a| {
        format!("{}.signin", a.console.purpose())
    });
    let audit = async |outcome: Outcome, subject: Option<ObjectId>, reason: Option<&str>| {
        let event = AuditEvent {
            at: now,
            correlation_id: correlation_id.clone(),
            actor: subject.map_or_else(|| "anonymous".to_string(), |s| s.to_string()),
            subject,
            event_type: event_type.clone(),
            method: None,
            outcome,
            reason: reason.map(str::to_string),
            details: serde_json::Value::Null,
        };
        s.store.append_audit(&event).await
    };
    let clear_attempt = removal(cookie(&portal, SIGNIN_COOKIE, String::new(), SameSite::Lax));
    let fail = async |reason: String, subject: Option<ObjectId>| -> HttpResponse {
        let status = if audit(Outcome::Failure, subject, Some(&reason))
            .await
            .is_err()
        {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::BAD_REQUEST
        };
        tracing::warn!(reason = %reason, "console: sign-in refused");
        let mut r = portal.error_page(&req, lang, status, "console_signin_failed");
        let _ = r.add_cookie(&clear_attempt);
        r
    };
    let Some(attempt) = attempt else {
        return fail("no sign-in in progress".into(), None).await;
    };
    if let Some(error) = &query.error {
        let code: String = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        return fail(format!("identity platform answered {code}"), None).await;
    }
    if !query
        .state
        .as_deref()
        .is_some_and(|st| ct_eq(st, &attempt.state))
    {
        return fail("state does not match".into(), None).await;
    }
    let Some(code) = query.code.as_deref().filter(|c| !c.is_empty()) else {
        return fail("no authorization code".into(), None).await;
    };
    let tokens = match delegated::redeem_code(
        consoles.signin.provider().config(),
        &Secret::new(code.to_string()),
        consoles.signin.redirect_uri(),
        &Secret::new(attempt.verifier.clone()),
        &scopes(),
    )
    .await
    {
        Ok(t) => t,
        Err(e) => return fail(format!("code redemption failed: {e}"), None).await,
    };
    let Some(id_token) = tokens.id_token else {
        return fail("no ID token".into(), None).await;
    };
    let claims = match consoles
        .signin
        .provider()
        .validate(id_token.expose(), &attempt.nonce, now)
        .await
    {
        Ok(c) => c,
        Err(e) => return fail(format!("ID token refused: {e}"), None).await,
    };
    let user = match s.directory.user(&claims.oid).await {
        Ok(u) => u,
        Err(e) => {
            tracing::error!(error = %e, "console: cannot read the signed-in user");
            return fail("directory unavailable".into(), Some(claims.oid)).await;
        }
    };
    let session = Session {
        correlation_id: correlation_id.clone(),
        upn: user.user_principal_name.as_str().to_string(),
        display_name: user.display_name.clone().or(claims.name.clone()),
        preferred_language: user.preferred_language.clone(),
    };
    let console = attempt.console;
    let new = NewFlow {
        subject: claims.oid,
        purpose: console.purpose().into(),
        step: "console".into(),
        data: serde_json::to_value(&session).unwrap_or_default(),
        lifetime: FlowLifetime {
            absolute: SESSION_ABSOLUTE,
            idle: SESSION_IDLE,
        },
    };
    let session_token = match s.store.create_flow(new, now).await {
        Ok((t, _)) => t,
        Err(e) => {
            tracing::error!(error = %e, "console: cannot create the session");
            return portal.error_page(&req, lang, StatusCode::SERVICE_UNAVAILABLE, "error_generic");
        }
    };
    // Membership is not decided here: the gate checks it on every request, the first one
    // included (a non-member gets the 403 page there, and the denial is audited).
    if audit(Outcome::Success, Some(claims.oid), None)
        .await
        .is_err()
    {
        let _ = s.store.end_flow(&session_token).await;
        return portal.error_page(&req, lang, StatusCode::SERVICE_UNAVAILABLE, "error_generic");
    }
    let lang = lang_of(&req, session.preferred_language.as_deref());
    // A Strict cookie set on a cross-site redirect chain is not sent on the next hop: move on
    // from our own origin (see signin.rs).
    let mut r = portal.render_in(
        &req,
        lang,
        "admin_signed_in.html",
        &serde_json::json!({ "home": console.home() }),
    );
    let _ = r.add_cookie(&clear_attempt);
    let _ = r.add_cookie(&session_cookie(
        &portal,
        console,
        session_token.expose().to_string(),
    ));
    r
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn signout_admin(
    req: HttpRequest,
    portal: web::Data<Portal>,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    signout(req, portal, form, Console::Admin).await
}

async fn signout_helpdesk(
    req: HttpRequest,
    portal: web::Data<Portal>,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    signout(req, portal, form, Console::Helpdesk).await
}

async fn signout(
    req: HttpRequest,
    portal: web::Data<Portal>,
    form: web::Form<CsrfForm>,
    console: Console,
) -> HttpResponse {
    let user = match require(&req, console) {
        Ok(u) => u,
        Err(r) => return r,
    };
    if !user.check_csrf(&portal, &req, &form.csrf) {
        return portal.error_page(&req, user.lang, StatusCode::FORBIDDEN, "error_csrf");
    }
    if let Some(t) = req
        .cookie(&portal.services.cookies.name(console.cookie()))
        .and_then(|c| FlowToken::parse(c.value()))
    {
        let _ = portal.services.store.end_flow(&t).await;
    }
    let event = format!("{}.signout", console.purpose());
    if user
        .audit(
            &portal,
            &event,
            Some(user.oid),
            Outcome::Success,
            None,
            serde_json::Value::Null,
        )
        .await
        .is_err()
    {
        return portal.error_page(
            &req,
            user.lang,
            StatusCode::SERVICE_UNAVAILABLE,
            "error_generic",
        );
    }
    let catalogs = portal.templates.catalogs();
    let mut r = portal.render_in(
        &req,
        user.lang,
        "result.html",
        &serde_json::json!({
            "title": catalogs.get(user.lang, "console_signed_out_title"),
            "paragraphs": [catalogs.get(user.lang, "console_signed_out_body")],
        }),
    );
    let _ = r.add_cookie(&removal(session_cookie(&portal, console, String::new())));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tricks_normalize_to_the_console_area() {
        for raw in [
            "/admin",
            "/Admin",
            "//admin",
            "/admin/",
            "/admin/../admin",
            "/x/../admin",
            "/%61dmin",
            "/admin/%2e%2e/admin",
            "/admin/%252e%252e/admin",
            "/.//admin/.",
            "\\admin",
        ] {
            assert_eq!(normalize(raw), "/admin", "{raw}");
            assert_eq!(Console::of_path(&normalize(raw)), Some(Console::Admin));
        }
        assert_eq!(normalize("/admin/policies/"), "/admin/policies");
        assert_eq!(Console::of_path("/administrator"), None);
        assert_eq!(Console::of_path("/helpdesk/x"), Some(Console::Helpdesk));
        assert_eq!(Console::of_path("/"), None);
        assert_eq!(normalize("/admin/../"), "/");
    }
}
