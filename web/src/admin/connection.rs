//! The connection page: the tenant, the app credential in use and when it expires, the
//! delegated credential (hybrid writeback), the permission table of `latchkey check` (the same
//! code: [`crate::check::build_report`]) behind a "Test connection" button, and a time-boxed,
//! redacted HTTP debug log.
//!
//! Expiry dates: a certificate's comes from the certificate file itself (`notAfter`). A client
//! secret's cannot be read from the secret; reading it from the application object would need
//! `Application.Read.All`, a permission this product does not otherwise need, so the admin
//! states it in `[admin] secret_expires` (the date shown under "Certificates & secrets") and the
//! page says when it is not set.
//!
//! The test builds a fresh Graph client for every run, so it reflects the permissions granted
//! right now (the portal's own client may hold a token issued before a change).

use std::sync::Mutex;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_store::Outcome;
use serde::Serialize;
use time::OffsetDateTime;

use super::{Admin, AdminPage, AdminPost, field, page};
use crate::portal::Portal;

/// How long the HTTP debug log stays on after the admin switches it on.
pub const DEBUG_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Days before expiry from which the page warns.
const EXPIRY_WARNING_DAYS: i64 = 30;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/connection", web::get().to(show))
        .route("/admin/connection/test", web::post().to(test))
        .route("/admin/connection/debug", web::post().to(debug))
        .route("/admin/connection/delegate", web::post().to(delegate));
}

/// The last "Test connection" run.
#[derive(Serialize, Clone)]
pub struct TestRun {
    pub at: String,
    pub report: serde_json::Value,
    pub ok: bool,
    /// The delegated credential's user (UPN) as its current token says, or why unknown.
    pub delegated_user: Option<String>,
    pub delegated_error: Option<String>,
}

/// Connection-page state kept between requests.
#[derive(Default)]
pub struct ConnectionState {
    pub last_test: Mutex<Option<TestRun>>,
    /// The last delegated-credential set-up from this page: (user, when).
    pub delegated_setup: Mutex<Option<(String, String)>>,
    /// The delegated client that set-up put in force (replaces [`Admin::delegated`], which is
    /// the one the portal started with).
    pub installed: Mutex<Option<latchkey_graph::GraphClient>>,
}

/// The delegated client in force: the one set up from this page, else the start-up one.
fn delegated(admin: &Admin) -> Option<latchkey_graph::GraphClient> {
    let installed = admin
        .connection
        .installed
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    installed.or_else(|| admin.delegated.clone())
}

fn date(t: OffsetDateTime) -> String {
    let f = time::macros::format_description!("[year]-[month]-[day]");
    t.format(&f).unwrap_or_default()
}

fn date_time(t: OffsetDateTime) -> String {
    let f = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    t.to_offset(time::UtcOffset::UTC)
        .format(&f)
        .unwrap_or_default()
}

/// The certificate's `notAfter`, subject and SHA-1 thumbprint (what the portal shows), from the
/// PEM file.
fn certificate_info(path: &std::path::Path) -> Result<(OffsetDateTime, String), String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem)
        .map_err(|e| format!("{} is not a PEM certificate: {e}", path.display()))?;
    let cert = pem
        .parse_x509()
        .map_err(|e| format!("{} is not an X.509 certificate: {e}", path.display()))?;
    Ok((
        cert.validity().not_after.to_datetime(),
        cert.subject().to_string(),
    ))
}

/// Expiry as the page shows it: date, days left, and `ok` / `soon` / `expired`.
fn expiry(at: OffsetDateTime, now: OffsetDateTime) -> serde_json::Value {
    let days = (at - now).whole_days();
    let status = if at <= now {
        "expired"
    } else if days < EXPIRY_WARNING_DAYS {
        "soon"
    } else {
        "ok"
    };
    serde_json::json!({ "date": date(at), "days": days, "status": status })
}

/// The HTTP debug switch: the time-boxed toggle ends lazily on the first look after its window
/// (by the portal's clock) and by a timer.
fn debug_state(admin: &Admin, now: OffsetDateTime) -> (bool, Option<String>) {
    let configured = admin.settings.graph.http_debug;
    let mut until = admin.debug_until.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(u) = *until
        && u <= now
    {
        *until = None;
        if !configured {
            admin.graph.set_http_debug(false);
        }
    }
    (admin.graph.http_debug(), until.map(date_time))
}

async fn show(
    req: HttpRequest,
    portal: web::Data<Portal>,
    AdminPage { user, admin }: AdminPage,
) -> HttpResponse {
    let now = portal.services.clock.now();
    let s = &admin.settings;
    let credential = if let Some(cert) = &s.entra.certificate_file {
        match certificate_info(cert) {
            Ok((not_after, subject)) => serde_json::json!({
                "kind": "certificate",
                "source": cert.display().to_string(),
                "subject": subject,
                "expiry": expiry(not_after, now),
            }),
            Err(e) => serde_json::json!({ "kind": "certificate", "error": e }),
        }
    } else {
        let expires = s
            .admin
            .as_ref()
            .and_then(|a| a.secret_expires.as_deref())
            .and_then(crate::config::parse_date)
            .map(|d| expiry(d.midnight().assume_utc(), now));
        serde_json::json!({
            "kind": "secret",
            "source": s.entra.client_secret_file.as_ref().map_or_else(
                || "inline / environment".to_string(),
                |f| f.display().to_string()
            ),
            "expiry": expires,
        })
    };
    let delegated_file = s.delegated.as_ref().map(|d| {
        let renewed = std::fs::metadata(&d.token_file)
            .and_then(|m| m.modified())
            .ok()
            .map(|t| date_time(OffsetDateTime::from(t)));
        serde_json::json!({ "file": d.token_file.display().to_string(), "renewed": renewed })
    });
    let (debug_on, debug_until) = debug_state(&admin, now);
    let setup = admin
        .connection
        .delegated_setup
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
        .map(|(user, at)| serde_json::json!({ "user": user, "at": at }));
    let last = admin
        .connection
        .last_test
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    page(
        &portal,
        &req,
        &user,
        "admin_connection.html",
        "connection",
        serde_json::json!({
            "tenant": s.entra.tenant_id,
            "client_id": s.entra.client_id,
            "authority_host": s.entra.authority_host.clone().unwrap_or_else(|| "https://login.microsoftonline.com".into()),
            "graph_base_url": s.entra.graph_base_url.clone().unwrap_or_else(|| "https://graph.microsoft.com/v1.0".into()),
            "credential": credential,
            "delegated": delegated(&admin).is_some(),
            "delegated_file": delegated_file,
            "delegated_setup": setup,
            "debug_on": debug_on,
            "debug_configured": s.graph.http_debug,
            "debug_until": debug_until,
            "debug_minutes": DEBUG_WINDOW.as_secs() / 60,
            "last": last,
        }),
    )
}

async fn test(
    req: HttpRequest,
    portal: web::Data<Portal>,
    AdminPost { user, admin, .. }: AdminPost,
) -> HttpResponse {
    let report = match crate::entra::client(&admin.settings) {
        Ok(client) => {
            client.set_http_debug(admin.graph.http_debug());
            crate::check::build_report(&admin.settings, &client).await
        }
        Err(e) => {
            tracing::error!(error = %e, "admin: cannot build a Graph client for the test");
            return portal.error_page(
                &req,
                user.lang,
                StatusCode::SERVICE_UNAVAILABLE,
                "error_generic",
            );
        }
    };
    let (delegated_user, delegated_error) = match &delegated(&admin) {
        None => (None, None),
        Some(d) => match d.token_claims().await {
            Ok(c) => (c.upn.or(c.oid), None),
            Err(e) => (None, Some(e.to_string())),
        },
    };
    let run = TestRun {
        at: date_time(portal.services.clock.now()),
        report: serde_json::to_value(&report).unwrap_or_default(),
        ok: report.ok,
        delegated_user,
        delegated_error,
    };
    let missing: Vec<&str> = report
        .checks
        .iter()
        .filter(|r| r.status == "missing")
        .map(|r| r.id)
        .collect();
    if user
        .audit(
            &portal,
            "admin.connection.test",
            None,
            if report.ok {
                Outcome::Success
            } else {
                Outcome::Failure
            },
            (!missing.is_empty())
                .then(|| format!("missing: {}", missing.join(", ")))
                .as_deref(),
            serde_json::json!({ "requests": report.requests }),
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
    *admin
        .connection
        .last_test
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = Some(run);
    HttpResponse::SeeOther()
        .insert_header(("Location", "/admin/connection#test"))
        .finish()
}

async fn debug(
    req: HttpRequest,
    portal: web::Data<Portal>,
    AdminPost { user, admin, pairs }: AdminPost,
) -> HttpResponse {
    let on = field(&pairs, "enable") == "true";
    let now = portal.services.clock.now();
    let until = now + DEBUG_WINDOW;
    {
        let mut slot = admin.debug_until.lock().unwrap_or_else(|p| p.into_inner());
        *slot = on.then_some(until);
    }
    admin
        .graph
        .set_http_debug(on || admin.settings.graph.http_debug);
    if on {
        // The window also ends without anyone looking at the page.
        let admin = std::sync::Arc::clone(&admin);
        let clock = std::sync::Arc::clone(&portal.services.clock);
        tokio::spawn(async move {
            tokio::time::sleep(DEBUG_WINDOW).await;
            let _ = debug_state(&admin, clock.now());
        });
    }
    if user
        .audit(
            &portal,
            "admin.connection.debug",
            None,
            Outcome::Success,
            None,
            serde_json::json!({ "on": on, "until": on.then(|| date_time(until)) }),
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
    HttpResponse::SeeOther()
        .insert_header(("Location", "/admin/connection#debug"))
        .finish()
}

/// Starts the delegated-credential sign-in (`offline_access` + `UserAuthenticationMethod.ReadWrite.All`,
/// as `latchkey delegate` does) through the consoles' callback.
async fn delegate(
    req: HttpRequest,
    portal: web::Data<Portal>,
    AdminPost { user, admin, .. }: AdminPost,
) -> HttpResponse {
    if admin.settings.delegated.is_none() {
        return portal.error_page(
            &req,
            user.lang,
            StatusCode::CONFLICT,
            "admin_connection_delegated_none",
        );
    }
    crate::console::begin_delegated(&portal, &req, &user).await
}

/// Redeems the authorization code for the delegated credential: its refresh token and who
/// signed in, or why not (no refresh token, the permission not granted).
async fn redeem(
    config: &latchkey_graph::GraphConfig,
    code: &latchkey_types::Secret<String>,
    redirect_uri: &str,
    verifier: &latchkey_types::Secret<String>,
) -> Result<(latchkey_types::Secret<String>, String), String> {
    let scopes = crate::delegate::scopes();
    let tokens =
        latchkey_graph::delegated::redeem_code(config, code, redirect_uri, verifier, &scopes)
            .await
            .map_err(|e| format!("code redemption failed: {e}"))?;
    let Some(refresh_token) = tokens.refresh_token.clone() else {
        return Err("no refresh token (was offline_access granted?)".into());
    };
    if !tokens
        .scopes()
        .iter()
        .any(|s| s.ends_with("UserAuthenticationMethod.ReadWrite.All"))
    {
        return Err(format!(
            "UserAuthenticationMethod.ReadWrite.All was not granted (granted: {})",
            tokens.scope
        ));
    }
    let who = latchkey_graph::TokenClaims::decode_unverified(tokens.access_token.expose())
        .and_then(|c| c.upn.or(c.oid))
        .unwrap_or_default();
    Ok((refresh_token, who))
}

/// Puts the new delegated client in force for resets and shows it on the connection page.
fn install(portal: &Portal, admin: &Admin, client: latchkey_graph::GraphClient, who: &str) {
    portal
        .services
        .set_writeback(std::sync::Arc::new(client.clone()));
    *admin
        .connection
        .installed
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = Some(client);
    let at = date_time(portal.services.clock.now());
    *admin
        .connection
        .delegated_setup
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = Some((who.to_string(), at));
}

/// The callback's end of the delegated set-up: redeems the code, checks the grant, stores the
/// refresh token encrypted in `[delegated] token_file` (as `latchkey delegate`), builds the
/// delegated client from that file the way `latchkey serve` does ([`crate::delegate::client`])
/// and puts it in force for resets at once (no restart), audits.
#[allow(clippy::too_many_arguments)]
pub async fn finish_delegated(
    portal: &Portal,
    req: &HttpRequest,
    config: &latchkey_graph::GraphConfig,
    redirect_uri: &str,
    verifier: &latchkey_types::Secret<String>,
    code: &latchkey_types::Secret<String>,
    admin_oid: latchkey_types::ObjectId,
    correlation_id: &str,
) -> HttpResponse {
    let lang = crate::i18n::for_request(req, None);
    let audit = async |outcome: Outcome, reason: Option<&str>, details: serde_json::Value| {
        let event = latchkey_store::AuditEvent {
            at: portal.services.clock.now(),
            correlation_id: correlation_id.to_string(),
            actor: admin_oid.to_string(),
            subject: None,
            event_type: "admin.delegated.setup".into(),
            method: None,
            outcome,
            reason: reason.map(str::to_string),
            details,
        };
        portal.services.store.append_audit(&event).await.map(|_| ())
    };
    let Some(admin) = portal.part::<Admin>() else {
        return portal.error_page(req, lang, StatusCode::NOT_FOUND, "console_not_configured");
    };
    let fail = async |reason: String| {
        tracing::warn!(reason = %reason, "admin: delegated set-up failed");
        let status = if audit(Outcome::Failure, Some(&reason), serde_json::Value::Null)
            .await
            .is_err()
        {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::BAD_REQUEST
        };
        portal.error_page(req, lang, status, "admin_delegated_failed")
    };
    let file = match crate::delegate::TokenFile::of(&admin.settings) {
        Ok(Some(f)) => f,
        Ok(None) => return fail("no [delegated] table".into()).await,
        Err(e) => return fail(format!("{e:#}")).await,
    };
    let (refresh_token, who) = match redeem(config, code, redirect_uri, verifier).await {
        Ok(x) => x,
        Err(reason) => return fail(reason).await,
    };
    if let Err(e) = file.save(&refresh_token) {
        return fail(format!("cannot write the token file: {e:#}")).await;
    }
    let client = match crate::delegate::client(&admin.settings) {
        Ok(Some(c)) => c,
        Ok(None) => return fail("the token file vanished after it was written".into()).await,
        Err(e) => return fail(format!("cannot build the delegated client: {e:#}")).await,
    };
    install(portal, &admin, client, &who);
    if audit(
        Outcome::Success,
        None,
        serde_json::json!({
            "delegated_user": who,
            "file": file.path().display().to_string(),
            "in_force": true,
        }),
    )
    .await
    .is_err()
    {
        return portal.error_page(req, lang, StatusCode::SERVICE_UNAVAILABLE, "error_generic");
    }
    let catalogs = portal.templates.catalogs();
    portal.render_in(
        req,
        lang,
        "admin_signed_in.html",
        &serde_json::json!({
            "home": "/admin/connection#credentials",
            "title": catalogs.get(lang, "admin_delegated_saved_title"),
            "message": catalogs.get(lang, "admin_delegated_saved").replace("{user}", &who),
        }),
    )
}
