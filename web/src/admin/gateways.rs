//! On-premises gateways in the admin console (`/admin/gateways`): the registered gateways with
//! their state (connected by the same rule the self-service flows use, [`CONNECTED_WINDOW`]),
//! registering one (its credential shown once, on the answer to the POST, never stored, logged
//! or audited: the store keeps its SHA-256 only, see [`crate::gateway::credential`]), and
//! revoking one after a confirmation page. Every POST is CSRF-checked and audited before the
//! answer; the CLI (`latchkey gateway ...`) does the same through the same code.

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, PRAGMA};
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_store::{Outcome, StoreError};
use serde::Deserialize;

use super::{admin_of, field, form_pairs, msg, page};
use crate::app::Portal;
use crate::console::ConsoleUser;
use crate::gateway::CONNECTED_WINDOW;
use crate::gateway::credential::{self, NameError, RegisterError};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/gateways", web::get().to(list))
        .route("/admin/gateways/register", web::post().to(register))
        .route("/admin/gateways/revoke", web::get().to(confirm_revoke))
        .route("/admin/gateways/revoke", web::post().to(revoke));
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
}

async fn list(
    req: HttpRequest,
    portal: web::Data<Portal>,
    query: web::Query<ListQuery>,
) -> HttpResponse {
    let (user, _admin) = match admin_of(&portal, &req) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let form = RegisterForm {
        name: "",
        allow_reset: false,
    };
    render_list(&portal, &req, &user, form, None, query.revoked.as_deref()).await
}

/// What the register form holds when the page is shown (again, after an error).
struct RegisterForm<'a> {
    name: &'a str,
    allow_reset: bool,
}

/// The list page, with the register form holding `form` and its error, if any.
async fn render_list(
    portal: &Portal,
    req: &HttpRequest,
    user: &ConsoleUser,
    form: RegisterForm<'_>,
    error: Option<String>,
    revoked: Option<&str>,
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
                "revoke_url": format!(
                    "/admin/gateways/revoke?name={}",
                    url::form_urlencoded::byte_serialize(g.name.as_bytes()).collect::<String>()
                ),
            })
        })
        .collect();
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
            "revoked": revoked,
            "window": CONNECTED_WINDOW.as_secs().to_string(),
        }),
    )
}

async fn register(req: HttpRequest, portal: web::Data<Portal>, body: web::Bytes) -> HttpResponse {
    let (user, _admin) = match admin_of(&portal, &req) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let pairs = form_pairs(&body);
    if !user.check_csrf(&portal, &req, field(&pairs, "csrf")) {
        return portal.error_page(&req, user.lang, StatusCode::FORBIDDEN, "error_csrf");
    }
    let name = field(&pairs, "name").trim().to_string();
    // Reset jobs carry users' new passwords: granted only by ticking the box.
    let allow_reset = field(&pairs, "allow_reset") == "1";
    let now = portal.services.clock.now();
    let (gateway, secret) =
        match credential::register(portal.services.store.as_ref(), &name, allow_reset, now).await {
            Ok(x) => x,
            Err(e) => {
                let key = match &e {
                    RegisterError::Name(NameError::Length) => "admin_gateways_name_length",
                    RegisterError::Name(NameError::Characters) => "admin_gateways_name_chars",
                    RegisterError::Store(StoreError::Invalid(_)) => "admin_gateways_name_taken",
                    _ => {
                        tracing::error!(error = %e, "admin: cannot register a gateway");
                        return portal.error_page(
                            &req,
                            user.lang,
                            StatusCode::SERVICE_UNAVAILABLE,
                            "error_generic",
                        );
                    }
                };
                let _ = user
                    .audit(
                        &portal,
                        "admin.gateway.register",
                        None,
                        Outcome::Failure,
                        Some(&e.to_string()),
                        serde_json::json!({ "gateway": name }),
                    )
                    .await;
                let form = RegisterForm {
                    name: &name,
                    allow_reset,
                };
                let mut r = render_list(
                    &portal,
                    &req,
                    &user,
                    form,
                    Some(msg(&portal, &user, key)),
                    None,
                )
                .await;
                if r.status() == StatusCode::OK {
                    *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
                }
                return r;
            }
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
        let _ = portal
            .services
            .store
            .revoke_gateway(&gateway.name, portal.services.clock.now())
            .await;
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

#[derive(Deserialize)]
struct RevokeQuery {
    name: Option<String>,
}

/// The confirmation page: revoking cannot be undone (a new registration issues a new credential).
async fn confirm_revoke(
    req: HttpRequest,
    portal: web::Data<Portal>,
    query: web::Query<RevokeQuery>,
) -> HttpResponse {
    let (user, _admin) = match admin_of(&portal, &req) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let name = query.name.as_deref().unwrap_or("").trim();
    let live = match portal.services.store.gateways().await {
        Ok(g) => g
            .into_iter()
            .any(|g| g.name == name && g.revoked_at.is_none()),
        Err(e) => {
            tracing::error!(error = %e, "admin: cannot list gateways");
            return portal.error_page(
                &req,
                user.lang,
                StatusCode::SERVICE_UNAVAILABLE,
                "error_generic",
            );
        }
    };
    if !live {
        return portal.error_page(
            &req,
            user.lang,
            StatusCode::NOT_FOUND,
            "admin_gateways_not_found",
        );
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

async fn revoke(req: HttpRequest, portal: web::Data<Portal>, body: web::Bytes) -> HttpResponse {
    let (user, _admin) = match admin_of(&portal, &req) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let pairs = form_pairs(&body);
    if !user.check_csrf(&portal, &req, field(&pairs, "csrf")) {
        return portal.error_page(&req, user.lang, StatusCode::FORBIDDEN, "error_csrf");
    }
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
    let to = format!(
        "/admin/gateways?revoked={}",
        url::form_urlencoded::byte_serialize(name.as_bytes()).collect::<String>()
    );
    HttpResponse::SeeOther()
        .insert_header(("Location", to))
        .finish()
}
