//! Removing a method at `/enroll`: an active one only after a confirmation page; a pending
//! change is cancelled on its own (the active method stays).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_types::MethodKind;
use serde::Deserialize;

use super::{ChangeKind, Ctx, PAGE_KINDS, changed, channels_before, post_context, see_other};
use crate::portal::Portal;

#[derive(Deserialize)]
pub struct RemoveForm {
    #[serde(default)]
    csrf: String,
    /// `yes` once the user confirmed removing an active method.
    #[serde(default)]
    confirmed: String,
    /// `yes`: cancel the pending change only (the active method stays).
    #[serde(default)]
    pending: String,
}

/// "Remove your email code?": an active method is removed only after this page's button.
fn confirm_removal(
    portal: &Portal,
    req: &HttpRequest,
    ctx: &Ctx,
    kind: MethodKind,
) -> HttpResponse {
    let catalogs = portal.templates.catalogs();
    let lang = ctx.lang;
    let method = catalogs
        .get(lang, &format!("enroll_method_{}", kind.as_str()))
        .to_string();
    let page = serde_json::json!({
        "title": catalogs.get(lang, "enroll_remove_title").replace("{method}", &method),
        "paragraphs": [catalogs.get(lang, "enroll_remove_body")],
        "action": format!("/enroll/{}/remove", kind.as_str()),
        "csrf": portal.services.csrf.token(&ctx.flow.id.to_string()),
        "fields": [{ "name": "confirmed", "value": "yes" }],
        "confirm": catalogs.get(lang, "enroll_remove_confirm"),
        "cancel_href": "/enroll",
        "cancel": catalogs.get(lang, "enroll_remove_cancel"),
    });
    portal.render_in(req, lang, "confirm.html", &page)
}

/// `POST /enroll/{kind}/remove`: removes the method (active and pending); an active one only
/// once confirmed.
pub(super) async fn remove(
    req: HttpRequest,
    portal: web::Data<Portal>,
    path: web::Path<String>,
    form: web::Form<RemoveForm>,
) -> HttpResponse {
    let ctx = match post_context(&portal, &req, &form.csrf).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let Some(kind) = path
        .parse::<MethodKind>()
        .ok()
        .filter(|k| PAGE_KINDS.contains(k))
    else {
        return portal.error_page(&req, ctx.lang, StatusCode::NOT_FOUND, "error_not_found");
    };
    let s = &portal.services;
    let subject = ctx.flow.subject;
    if form.pending == "yes" {
        return match s
            .store
            .remove_pending_enrollment(&subject, kind.as_str())
            .await
        {
            Ok(0) => see_other("/enroll"),
            Ok(_) => {
                let reason = "pending change cancelled";
                changed(&portal, &req, &ctx, kind, "enroll.remove", reason, None).await
            }
            Err(e) => {
                tracing::error!(error = %e, "enroll: cannot cancel");
                ctx.unavailable(&portal, &req)
            }
        };
    }
    let had_active = ctx.has_active(&portal, kind).await;
    if had_active && form.confirmed != "yes" {
        return confirm_removal(&portal, &req, &ctx, kind);
    }
    let channels = channels_before(&portal, &ctx).await;
    let removed = match s.store.remove_enrollment(&subject, kind.as_str()).await {
        Ok(n) => n,
        Err(e) => {
            tracing::error!(error = %e, "enroll: cannot remove");
            return ctx.unavailable(&portal, &req);
        }
    };
    if removed == 0 {
        return see_other("/enroll");
    }
    let reason = if had_active { "active" } else { "pending only" };
    let told = had_active.then_some((channels, ChangeKind::Removed, "enroll_flash_removed"));
    changed(&portal, &req, &ctx, kind, "enroll.remove", reason, told).await
}
