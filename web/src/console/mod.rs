//! Sign-in and access control for the consoles (`/admin`, `/helpdesk`).
//!
//! **Sign-in.** The same OpenID Connect client as `/enroll` ([`crate::signin::SignIn`]:
//! authorization code + PKCE, ID token validated against the tenant's keys), with ONE redirect
//! URI for both consoles: `{public_url}/console/callback`. The server-side attempt (a short-lived
//! store flow, purpose [`SIGNIN_PURPOSE`], its state, nonce and PKCE verifier sealed with the
//! at-rest key: [`crate::signin::attempt`]) records which console started it, so the callback
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
use latchkey_store::{AuditEvent, FlowPurpose, FlowToken, Outcome};
use latchkey_types::ObjectId;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::i18n::{Lang, negotiate};
use crate::portal::Portal;
use crate::signin::SignIn;
use path::could_be_console;
pub use path::normalize;

mod path;
mod signin;
use signin::begin;
pub use signin::{begin_delegated, configure};

/// Purpose of the short-lived flow that carries a console sign-in attempt.
pub const SIGNIN_PURPOSE: FlowPurpose = FlowPurpose::ConsoleSignIn;
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

    /// The purpose of this console's session flows.
    pub fn session_purpose(self) -> FlowPurpose {
        match self {
            Console::Admin => FlowPurpose::AdminSession,
            Console::Helpdesk => FlowPurpose::HelpdeskSession,
        }
    }

    /// The console's home path: `/admin`, `/helpdesk`.
    pub fn home(self) -> &'static str {
        match self {
            Console::Admin => "/admin",
            Console::Helpdesk => "/helpdesk",
        }
    }

    pub(crate) fn cookie(self) -> &'static str {
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
                .and_then(crate::config::parse_date),
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

    /// The consoles are also reached at `public_url` ([`SignIn::also_at`]).
    pub fn also_at(mut self, public_url: &str) -> anyhow::Result<Self> {
        self.signin = self.signin.also_at(public_url)?;
        Ok(self)
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
pub(crate) struct Session {
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
// The refusal is the response the handler sends as it is; boxing it would only add an
// allocation on that path.
#[allow(clippy::result_large_err)]
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

/// Middleware: guards the console areas (see the module docs).
pub async fn gate(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    // Fast path for the self-service pages (no allocation): a path that contains neither a
    // console name (in any case) nor an escape cannot normalize into a console area.
    if !could_be_console(req.path()) {
        return Ok(next.call(req).await?.map_into_left_body());
    }
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

pub(crate) fn lang_of(req: &HttpRequest, preferred: Option<&str>) -> Lang {
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
    let Some(consoles) = portal.part::<Consoles>() else {
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
            .filter(|f| f.purpose == console.session_purpose()),
        None => None,
    };
    let Some(flow) = flow else {
        if req.method() == Method::GET || req.method() == Method::HEAD {
            return Err(begin(portal, req, &consoles, console).await);
        }
        let mut r = portal.error_page(req, lang, StatusCode::UNAUTHORIZED, "console_signed_out");
        r = crate::portal::with_cookie(r, &removal(session_cookie(portal, console, String::new())));
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

pub(crate) fn session_cookie(portal: &Portal, console: Console, value: String) -> Cookie<'static> {
    portal
        .services
        .cookies
        .cookie(console.cookie(), value, SameSite::Strict)
}

pub(crate) fn removal(mut c: Cookie<'static>) -> Cookie<'static> {
    c.make_removal();
    c
}

/// A sign-in attempt, kept in the store (never in the browser).
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
        for raw in ["/ADMIN", "/%61dmin", "/x/HelpDesk", "\\admin"] {
            assert!(could_be_console(raw), "{raw}");
        }
        for raw in ["/", "/start", "/verify/email", "/enroll/callback", "/reset"] {
            assert!(!could_be_console(raw), "{raw}");
        }
    }
}
