//! The consoles' OpenID Connect sign-in (one callback for both consoles, the console kept in the
//! server-side attempt) and sign-out. See the parent module for the whole picture.

use actix_web::cookie::SameSite;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_store::{AuditEvent, FlowLifetime, FlowToken, NewFlow, Outcome};
use latchkey_types::{ObjectId, Secret};
use serde::{Deserialize, Serialize};

use super::{
    CALLBACK_PATH, Console, Consoles, SESSION_ABSOLUTE, SESSION_IDLE, SIGNIN_COOKIE,
    SIGNIN_LIFETIME, SIGNIN_PURPOSE, Session, lang_of, removal, require, session_cookie,
};
use crate::portal::Portal;
use crate::signin::attempt::Attempt;
use crate::signin::callback::CallbackQuery;
use latchkey_selfservice::flow::Unrecorded as _;

/// What a console's attempt keeps besides its sealed secrets (nothing secret).
#[derive(Serialize, Deserialize)]
struct Target {
    console: Console,
    /// Set when an admin started the delegated-credential set-up from the connection page
    /// (their object id): the callback stores a refresh token instead of starting a session.
    #[serde(default)]
    delegated_by: Option<String>,
}

const SCOPES: [&str; 2] = ["openid", "profile"];

fn scopes() -> Vec<String> {
    SCOPES.iter().map(|s| s.to_string()).collect()
}

/// Starts a sign-in for `console`: stores the attempt, sets its cookie, redirects to the
/// authorize endpoint.
pub(super) async fn begin(
    portal: &Portal,
    req: &HttpRequest,
    consoles: &Consoles,
    console: Console,
) -> HttpResponse {
    begin_attempt(portal, req, consoles, console, None).await
}

/// Starts the delegated-credential sign-in for `admin` (the connection page's button): the same
/// attempt and callback, with the scopes of `latchkey delegate`.
pub async fn begin_delegated(
    portal: &Portal,
    req: &HttpRequest,
    admin: &crate::console::ConsoleUser,
) -> HttpResponse {
    let Some(consoles) = portal.part::<super::Consoles>() else {
        return portal.error_page(
            req,
            admin.lang,
            StatusCode::NOT_FOUND,
            "console_not_configured",
        );
    };
    begin_attempt(portal, req, &consoles, Console::Admin, Some(admin.oid)).await
}

async fn begin_attempt(
    portal: &Portal,
    req: &HttpRequest,
    consoles: &Consoles,
    console: Console,
    delegated_by: Option<ObjectId>,
) -> HttpResponse {
    let lang = lang_of(req, None);
    if let Some(r) = crate::signin::start::throttled(portal, req, lang).await {
        return r;
    }
    let Ok(attempt) = Attempt::new(Target {
        console,
        delegated_by: delegated_by.map(|a| a.to_string()),
    }) else {
        tracing::error!("console sign-in: no system randomness");
        return portal.error_page(req, lang, StatusCode::SERVICE_UNAVAILABLE, "error_generic");
    };
    let requested = if delegated_by.is_some() {
        crate::delegate::scopes()
    } else {
        scopes()
    };
    let started = consoles
        .signin
        .authorize(
            portal,
            req,
            &attempt,
            &requested,
            (SIGNIN_PURPOSE, SIGNIN_LIFETIME),
            "console",
        )
        .await;
    let Some((url, token)) = started else {
        return portal.error_page(req, lang, StatusCode::SERVICE_UNAVAILABLE, "error_generic");
    };
    let mut c =
        portal
            .services
            .cookies
            .cookie(SIGNIN_COOKIE, token.expose().to_string(), SameSite::Lax);
    c.set_max_age(actix_web::cookie::time::Duration::seconds(
        SIGNIN_LIFETIME.as_secs() as i64,
    ));
    let mut r = HttpResponse::SeeOther()
        .insert_header(("Location", url.to_string()))
        .finish();
    r = crate::portal::with_cookie(r, &c);
    r
}

/// Routes outside the guarded areas (the callback) and the sign-out of each console.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(CALLBACK_PATH, web::get().to(callback))
        .route("/admin/signout", web::post().to(signout_admin))
        .route("/helpdesk/signout", web::post().to(signout_helpdesk));
}

async fn callback(
    req: HttpRequest,
    portal: web::Data<Portal>,
    query: web::Query<CallbackQuery>,
) -> HttpResponse {
    let lang = lang_of(&req, None);
    let Some(consoles) = portal.part::<super::Consoles>() else {
        return portal.error_page(&req, lang, StatusCode::NOT_FOUND, "console_not_configured");
    };
    let s = &portal.services;
    let now = s.clock.now();
    let (attempt, correlation_id): (Option<Attempt<Target>>, _) =
        Attempt::take_for_callback(&portal, &req, SIGNIN_COOKIE, SIGNIN_PURPOSE).await;
    let event_type = attempt.as_ref().map_or("console.signin".to_string(), |a| {
        format!("{}.signin", a.public.console.purpose())
    });
    let record = SignInRecord {
        correlation_id: &correlation_id,
        event_type,
        at: now,
    };
    let clear_attempt = removal(portal.services.cookies.cookie(
        SIGNIN_COOKIE,
        String::new(),
        SameSite::Lax,
    ));
    let fail = async |reason: String, subject: Option<ObjectId>| -> HttpResponse {
        let recorded = record.write(s, Outcome::Failure, subject, Some(&reason));
        let status = if recorded.await.is_err() {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::BAD_REQUEST
        };
        tracing::warn!(reason = %reason, "console: sign-in refused");
        let mut r = portal.error_page(&req, lang, status, "console_signin_failed");
        r = crate::portal::with_cookie(r, &clear_attempt);
        r
    };
    let Some(attempt) = attempt else {
        return fail("no sign-in in progress".into(), None).await;
    };
    let code = match query.code(&attempt) {
        Ok(code) => code,
        Err(r) => return fail(r.reason, r.subject).await,
    };
    if let Some(admin) = attempt.public.delegated_by.as_deref() {
        let Ok(admin) = admin.parse::<ObjectId>() else {
            return fail("bad attempt".into(), None).await;
        };
        // An admin signing in a delegated credential for writeback, not a console session.
        let signin = &consoles.signin;
        let (config, redirect) = (signin.provider().config(), signin.redirect_uri_for(&req));
        let code = Secret::new(code.to_string());
        let (verifier, cid) = (attempt.verifier(), &correlation_id);
        let finished = crate::admin::connection::finish_delegated(
            &portal, &req, config, redirect, verifier, &code, admin, cid,
        );
        return crate::portal::with_cookie(finished.await, &clear_attempt);
    }
    let signed_in = consoles
        .signin
        .signed_in(&portal, &req, &attempt, code, now, "console");
    let (claims, user) = match signed_in.await {
        Ok(x) => x,
        Err(r) => return fail(r.reason, r.subject).await,
    };
    let session = Session {
        correlation_id: correlation_id.clone(),
        upn: user.user_principal_name.as_str().to_string(),
        display_name: user.display_name.clone().or(claims.name.clone()),
        preferred_language: user.preferred_language.clone(),
    };
    let console = attempt.public.console;
    let Some(session_token) = store_session(&portal, console, claims.oid, &session).await else {
        return portal.error_page(&req, lang, StatusCode::SERVICE_UNAVAILABLE, "error_generic");
    };
    // Membership is not decided here: the gate checks it on every request, the first one
    // included (a non-member gets the 403 page there, and the denial is audited).
    let recorded = record.write(s, Outcome::Success, Some(claims.oid), None);
    if recorded.await.is_err() {
        s.store.end_flow(&session_token).await.or_log();
        return portal.error_page(&req, lang, StatusCode::SERVICE_UNAVAILABLE, "error_generic");
    }
    let lang = lang_of(&req, session.preferred_language.as_deref());
    // A Strict cookie set on a cross-site redirect chain is not sent on the next hop: move on
    // from our own origin (see signin.rs).
    let home = serde_json::json!({ "home": console.home() });
    let mut r = portal.render_in(&req, lang, "admin_signed_in.html", &home);
    r = crate::portal::with_cookie(r, &clear_attempt);
    let cookie = session_cookie(&portal, console, session_token.expose().to_string());
    crate::portal::with_cookie(r, &cookie)
}

/// Stores the console session of `subject`; `None` (logged) when the store failed.
async fn store_session(
    portal: &Portal,
    console: super::Console,
    subject: ObjectId,
    session: &Session,
) -> Option<FlowToken> {
    let s = &portal.services;
    let new = NewFlow {
        subject,
        purpose: console.session_purpose(),
        step: latchkey_store::FlowStep::Console,
        data: serde_json::to_value(session).unwrap_or_default(),
        lifetime: FlowLifetime {
            absolute: SESSION_ABSOLUTE,
            idle: SESSION_IDLE,
        },
    };
    match s.store.create_flow(new, s.clock.now()).await {
        Ok((token, _)) => Some(token),
        Err(e) => {
            tracing::error!(error = %e, "console: cannot create the session");
            None
        }
    }
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
        portal.services.store.end_flow(&t).await.or_log();
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
    r = crate::portal::with_cookie(r, &removal(session_cookie(&portal, console, String::new())));
    r
}

/// The audit events of one console sign-in (the same correlation id and event type for each).
struct SignInRecord<'a> {
    correlation_id: &'a str,
    event_type: String,
    at: time::OffsetDateTime,
}

impl SignInRecord<'_> {
    /// Records `outcome` for `subject` (`anonymous` when nobody is known yet).
    async fn write(
        &self,
        s: &crate::services::Services,
        outcome: Outcome,
        subject: Option<ObjectId>,
        reason: Option<&str>,
    ) -> Result<latchkey_store::AuditId, latchkey_store::StoreError> {
        let event = AuditEvent {
            at: self.at,
            correlation_id: self.correlation_id.to_string(),
            actor: subject.map_or_else(|| "anonymous".to_string(), |s| s.to_string()),
            subject,
            event_type: self.event_type.clone(),
            method: None,
            outcome,
            reason: reason.map(str::to_string),
            details: serde_json::Value::Null,
        };
        s.store.append_audit(&event).await
    }
}
