//! On-premises gateways in the admin console (`/admin/gateways`): the registered gateways with
//! their state (connected by the same rule the self-service flows use, [`CONNECTED_WINDOW`]),
//! registering one (its credential shown once, on the answer to the POST, never stored, logged
//! or audited: the store keeps its SHA-256 only, see [`crate::gateway::credential`]), and
//! revoking one after a confirmation page, and changing what a live one may do (reset or not) on
//! its own page, which says plainly that reset jobs carry users' new passwords to that host.
//! Every POST is CSRF-checked and audited before the answer; the CLI (`latchkey gateway ...`)
//! does the same through the same code.

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, PRAGMA};
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_jobs::JobKind;
use latchkey_store::{Gateway, Outcome, StoreError};
use serde::Deserialize;

use super::{AdminPage, AdminPost, field, msg, page};
use crate::console::ConsoleUser;
use crate::gateway::CONNECTED_WINDOW;
use crate::gateway::credential::{self, NameError, RegisterError};
use crate::gateway::kinds;
use crate::i18n::Lang;
use crate::portal::Portal;
use latchkey_selfservice::flow::Unrecorded as _;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/gateways", web::get().to(list))
        .route("/admin/gateways/register", web::post().to(register))
        .route("/admin/gateways/revoke", web::get().to(confirm_revoke))
        .route("/admin/gateways/revoke", web::post().to(revoke))
        .route("/admin/gateways/kinds", web::get().to(edit_kinds))
        .route("/admin/gateways/kinds", web::post().to(set_kinds));
}

fn when(t: time::OffsetDateTime) -> String {
    let f = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    t.to_offset(time::UtcOffset::UTC)
        .format(&f)
        .unwrap_or_default()
}

#[derive(Deserialize)]
struct ListQuery {
    revoked: Option<String>,
    /// A gateway whose allowed kinds were just changed.
    changed: Option<String>,
}

async fn list(
    req: HttpRequest,
    portal: web::Data<Portal>,
    query: web::Query<ListQuery>,
    AdminPage { user, .. }: AdminPage,
) -> HttpResponse {
    let form = RegisterForm {
        name: "",
        allow_reset: false,
    };
    let notice = Notice {
        revoked: query.revoked.as_deref(),
        changed: query.changed.as_deref(),
    };
    render_list(&portal, &req, &user, form, None, notice).await
}

/// What the register form holds when the page is shown (again, after an error).
struct RegisterForm<'a> {
    name: &'a str,
    allow_reset: bool,
}

/// What the list page confirms after a redirect (a name from the query: shown escaped).
#[derive(Default)]
struct Notice<'a> {
    revoked: Option<&'a str>,
    changed: Option<&'a str>,
}

/// The list page, with the register form holding `form` and its error, if any.
async fn render_list(
    portal: &Portal,
    req: &HttpRequest,
    user: &ConsoleUser,
    form: RegisterForm<'_>,
    error: Option<String>,
    notice: Notice<'_>,
) -> HttpResponse {
    let gateways = match portal.services.store.gateways().await {
        Ok(g) => g,
        Err(e) => {
            tracing::error!(error = %e, "admin: cannot list gateways");
            return portal.error_page(
                req,
                user.lang,
                StatusCode::SERVICE_UNAVAILABLE,
                "error_generic",
            );
        }
    };
    let now = portal.services.clock.now();
    let rows: Vec<serde_json::Value> = gateways
        .iter()
        .map(|g| {
            let state = if g.revoked_at.is_some() {
                "revoked"
            } else if g.is_connected(now, CONNECTED_WINDOW) {
                "connected"
            } else {
                "not_connected"
            };
            serde_json::json!({
                "name": g.name,
                "created": when(g.created_at),
                "last_seen": g.last_seen_at.map(when),
                "revoked_at": g.revoked_at.map(when),
                "state": state,
                "capabilities": g.capabilities.join(", "),
                "allowed": g.allowed_kinds.join(", "),
                "revoke_url": format!("/admin/gateways/revoke?name={}", query_value(&g.name)),
                "kinds_url": format!("/admin/gateways/kinds?name={}", query_value(&g.name)),
            })
        })
        .collect();
    // The kinds the changed gateway has now, as the store says (not as the query says).
    let changed = notice.changed.and_then(|name| {
        gateways
            .iter()
            .find(|g| g.name == name && g.revoked_at.is_none())
            .map(|g| serde_json::json!({ "name": g.name, "allowed": g.allowed_kinds.join(", ") }))
    });
    page(
        portal,
        req,
        user,
        "admin_gateways.html",
        "gateways",
        serde_json::json!({
            "gateways": rows,
            "name": form.name,
            "allow_reset": form.allow_reset,
            "error": error,
            "revoked": notice.revoked,
            "changed": changed,
            "window": CONNECTED_WINDOW.as_secs().to_string(),
        }),
    )
}

/// The gateways page again with why a registration was refused (422), audited; or the generic
/// error page for a store fault.
async fn refused(
    portal: &Portal,
    req: &HttpRequest,
    user: &ConsoleUser,
    name: &str,
    allow_reset: bool,
    e: &RegisterError,
) -> HttpResponse {
    let key = match e {
        RegisterError::Name(NameError::Length) => "admin_gateways_name_length",
        RegisterError::Name(NameError::Characters) => "admin_gateways_name_chars",
        RegisterError::Store(StoreError::Invalid(_)) => "admin_gateways_name_taken",
        _ => {
            tracing::error!(error = %e, "admin: cannot register a gateway");
            let status = StatusCode::SERVICE_UNAVAILABLE;
            return portal.error_page(req, user.lang, status, "error_generic");
        }
    };
    let details = serde_json::json!({ "gateway": name });
    let reason = e.to_string();
    let event = "admin.gateway.register";
    let audited = user.audit(
        portal,
        event,
        None,
        Outcome::Failure,
        Some(&reason),
        details,
    );
    audited.await.or_log();
    let form = RegisterForm { name, allow_reset };
    let message = Some(msg(portal, user, key));
    let mut r = render_list(portal, req, user, form, message, Notice::default()).await;
    if r.status() == StatusCode::OK {
        *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    r
}

async fn register(
    req: HttpRequest,
    portal: web::Data<Portal>,
    AdminPost { user, pairs, .. }: AdminPost,
) -> HttpResponse {
    let name = field(&pairs, "name").trim().to_string();
    // Reset jobs carry users' new passwords: granted only by ticking the box.
    let allow_reset = field(&pairs, "allow_reset") == "1";
    let now = portal.services.clock.now();
    let (gateway, secret) =
        match credential::register(portal.services.store.as_ref(), &name, allow_reset, now).await {
            Ok(x) => x,
            Err(e) => return refused(&portal, &req, &user, &name, allow_reset, &e).await,
        };
    // Audited before the credential is shown; if the trail cannot take the event, the
    // credential is withdrawn rather than handed out unrecorded.
    if user
        .audit(
            &portal,
            "admin.gateway.register",
            None,
            Outcome::Success,
            None,
            serde_json::json!({
                "gateway": gateway.name,
                "gateway_id": gateway.id,
                "allowed": gateway.allowed_kinds,
            }),
        )
        .await
        .is_err()
    {
        portal
            .services
            .store
            .revoke_gateway(&gateway.name, portal.services.clock.now())
            .await
            .or_log();
        return portal.error_page(
            &req,
            user.lang,
            StatusCode::SERVICE_UNAVAILABLE,
            "error_generic",
        );
    }
    let mut r = page(
        &portal,
        &req,
        &user,
        "admin_gateway_issued.html",
        "gateways",
        serde_json::json!({
            "gateway": gateway.name,
            "credential": secret.expose(),
        }),
    );
    // The credential is on this page only: never cached, by the browser or anything between.
    r.headers_mut().insert(
        CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-store"),
    );
    r.headers_mut().insert(
        PRAGMA,
        actix_web::http::header::HeaderValue::from_static("no-cache"),
    );
    r
}

/// The live (not revoked) gateway named `name`, or the page to answer instead: 404 when there is
/// none, 503 when the store cannot list them.
async fn live_gateway(
    portal: &Portal,
    req: &HttpRequest,
    lang: Lang,
    name: &str,
) -> Result<Gateway, HttpResponse> {
    let found = match portal.services.store.gateways().await {
        Ok(g) => g
            .into_iter()
            .find(|g| g.name == name && g.revoked_at.is_none()),
        Err(e) => {
            tracing::error!(error = %e, "admin: cannot list gateways");
            return Err(portal.error_page(
                req,
                lang,
                StatusCode::SERVICE_UNAVAILABLE,
                "error_generic",
            ));
        }
    };
    found.ok_or_else(|| {
        portal.error_page(req, lang, StatusCode::NOT_FOUND, "admin_gateways_not_found")
    })
}

/// `?name=` of the pages about one gateway.
#[derive(Deserialize)]
struct NameQuery {
    name: Option<String>,
}

/// The confirmation page: revoking cannot be undone (a new registration issues a new credential).
async fn confirm_revoke(
    req: HttpRequest,
    portal: web::Data<Portal>,
    query: web::Query<NameQuery>,
    AdminPage { user, .. }: AdminPage,
) -> HttpResponse {
    let name = query.name.as_deref().unwrap_or("").trim();
    if let Err(r) = live_gateway(&portal, &req, user.lang, name).await {
        return r;
    }
    page(
        &portal,
        &req,
        &user,
        "admin_gateway_revoke.html",
        "gateways",
        serde_json::json!({ "gateway": name }),
    )
}

async fn revoke(
    req: HttpRequest,
    portal: web::Data<Portal>,
    AdminPost { user, pairs, .. }: AdminPost,
) -> HttpResponse {
    let name = field(&pairs, "name").trim().to_string();
    // Only the confirmation page's form carries this.
    if field(&pairs, "confirm") != "yes" {
        return portal.error_page(
            &req,
            user.lang,
            StatusCode::BAD_REQUEST,
            "admin_gateways_confirm_missing",
        );
    }
    let revoked = match portal
        .services
        .store
        .revoke_gateway(&name, portal.services.clock.now())
        .await
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "admin: cannot revoke a gateway");
            return portal.error_page(
                &req,
                user.lang,
                StatusCode::SERVICE_UNAVAILABLE,
                "error_generic",
            );
        }
    };
    let (outcome, reason) = if revoked {
        (Outcome::Success, None)
    } else {
        (Outcome::Failure, Some("no live gateway with this name"))
    };
    let audited = user
        .audit(
            &portal,
            "admin.gateway.revoke",
            None,
            outcome,
            reason,
            serde_json::json!({ "gateway": name }),
        )
        .await;
    if audited.is_err() {
        return portal.error_page(
            &req,
            user.lang,
            StatusCode::SERVICE_UNAVAILABLE,
            "error_generic",
        );
    }
    if !revoked {
        return portal.error_page(
            &req,
            user.lang,
            StatusCode::NOT_FOUND,
            "admin_gateways_not_found",
        );
    }
    let to = format!("/admin/gateways?revoked={}", query_value(&name));
    HttpResponse::SeeOther()
        .insert_header(("Location", to))
        .finish()
}

/// `value` encoded for a query string.
fn query_value(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// The page that changes what a live gateway may do: one checkbox (reset or not; unlock always),
/// with what granting reset means, ticked as the gateway is now.
async fn edit_kinds(
    req: HttpRequest,
    portal: web::Data<Portal>,
    query: web::Query<NameQuery>,
    AdminPage { user, .. }: AdminPage,
) -> HttpResponse {
    let name = query.name.as_deref().unwrap_or("").trim();
    let gateway = match live_gateway(&portal, &req, user.lang, name).await {
        Ok(g) => g,
        Err(r) => return r,
    };
    page(
        &portal,
        &req,
        &user,
        "admin_gateway_kinds.html",
        "gateways",
        serde_json::json!({
            "gateway": gateway.name,
            "allowed": gateway.allowed_kinds.join(", "),
            "allow_reset": gateway.allowed_kinds.iter().any(|k| k == JobKind::Reset.as_str()),
        }),
    )
}

/// `POST /admin/gateways/kinds`: sets the live gateway's kinds to unlock plus reset when the box
/// is ticked. Audited (`admin.gateway.kinds`: the admin as actor, the kinds before and after)
/// before the answer; if the trail cannot take the event the change is undone.
async fn set_kinds(
    req: HttpRequest,
    portal: web::Data<Portal>,
    AdminPost { user, pairs, .. }: AdminPost,
) -> HttpResponse {
    let name = field(&pairs, "name").trim().to_string();
    // An unticked box sends nothing: reset is taken away unless it is explicitly ticked.
    let allow_reset = field(&pairs, "allow_reset") == "1";
    let store = portal.services.store.as_ref();
    let changed = match kinds::set(store, &name, allow_reset).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "admin: cannot change a gateway's kinds");
            return portal.error_page(
                &req,
                user.lang,
                StatusCode::SERVICE_UNAVAILABLE,
                "error_generic",
            );
        }
    };
    let Some(change) = changed else {
        user.audit(
            &portal,
            "admin.gateway.kinds",
            None,
            Outcome::Failure,
            Some("no live gateway with this name"),
            serde_json::json!({ "gateway": name, "after": kinds::allowed(allow_reset) }),
        )
        .await
        .or_log();
        return portal.error_page(
            &req,
            user.lang,
            StatusCode::NOT_FOUND,
            "admin_gateways_not_found",
        );
    };
    let audited = user
        .audit(
            &portal,
            "admin.gateway.kinds",
            None,
            Outcome::Success,
            None,
            serde_json::json!({
                "gateway": name,
                "before": change.before,
                "after": change.after,
                "grants_reset": change.grants_reset(),
            }),
        )
        .await;
    if audited.is_err() {
        if let Err(e) = change.undo(store, &name).await {
            tracing::error!(error = %e, "admin: cannot undo an unaudited gateway kinds change");
        }
        return portal.error_page(
            &req,
            user.lang,
            StatusCode::SERVICE_UNAVAILABLE,
            "error_generic",
        );
    }
    HttpResponse::SeeOther()
        .insert_header((
            "Location",
            format!("/admin/gateways?changed={}", query_value(&name)),
        ))
        .finish()
}
