//! `/admin/directory`: the directory mirror's state (last round, lag, objects, errors, per
//! collection) and "sync now" (docs/directory-mirror.md).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_mirror::{Freshness, MirrorStatus};
use latchkey_store::{MirrorLink, Outcome};
use serde_json::json;
use time::OffsetDateTime;

use super::{AdminPage, AdminPost, page};
use crate::mirror::DirectoryMirror;
use crate::portal::Portal;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/directory", web::get().to(show))
        .route("/admin/directory/sync", web::post().to(sync_now));
}

#[derive(serde::Deserialize)]
struct ShowQuery {
    #[serde(default)]
    requested: Option<String>,
}

fn when(t: Option<OffsetDateTime>) -> Option<String> {
    t.and_then(|t| {
        t.format(&time::format_description::well_known::Rfc3339)
            .ok()
    })
}

/// The page's view of the status: plain strings and numbers.
fn view(status: &MirrorStatus, now: OffsetDateTime) -> serde_json::Value {
    let state = match status.freshness {
        Freshness::NotSynced => "not_synced",
        Freshness::Lagging { .. } => "lagging",
        Freshness::Current { .. } => "current",
    };
    let collections: Vec<serde_json::Value> = status
        .collections
        .iter()
        .map(|c| {
            json!({
                "name": c.collection.as_str(),
                "phase": match (&c.link, c.full_round) {
                    (Some(MirrorLink::More(_)), true) => "full_round",
                    (Some(MirrorLink::More(_)), false) => "round",
                    (Some(MirrorLink::Done(_)), _) => "idle",
                    (None, _) => "not_started",
                },
                "pages": c.pages_in_round.to_string(),
                "last_round": when(c.last_round_at),
                "last_full_round": when(c.last_full_round_at),
                "error": c.last_error.as_ref().map(|(_, e)| e.clone()),
                "error_at": when(c.last_error.as_ref().map(|(at, _)| *at)),
            })
        })
        .collect();
    json!({
        "state": state,
        // Strings: the template puts them into messages (Tera's `replace` takes text).
        "lag_seconds": status.freshness.lag(now).map(|d| d.as_secs().to_string()),
        "users": status.counts.users.to_string(),
        "groups": status.counts.groups.to_string(),
        "roles": status.counts.roles.to_string(),
        "memberships": status.counts.memberships.to_string(),
        "collections": collections,
    })
}

async fn show(
    req: HttpRequest,
    portal: web::Data<Portal>,
    query: web::Query<ShowQuery>,
    AdminPage { user, .. }: AdminPage,
) -> HttpResponse {
    let Some(mirror) = portal.part::<DirectoryMirror>() else {
        return page(
            &portal,
            &req,
            &user,
            "admin_directory.html",
            "directory",
            json!({ "off": true }),
        );
    };
    let status = match mirror.mirror.status().await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "admin: cannot read the directory mirror's state");
            return portal.error_page(
                &req,
                user.lang,
                StatusCode::SERVICE_UNAVAILABLE,
                "error_generic",
            );
        }
    };
    let mut extra = view(&status, portal.services.clock.now());
    if let Some(o) = extra.as_object_mut() {
        o.insert("requested".into(), query.requested.is_some().into());
    }
    page(
        &portal,
        &req,
        &user,
        "admin_directory.html",
        "directory",
        extra,
    )
}

async fn sync_now(
    req: HttpRequest,
    portal: web::Data<Portal>,
    AdminPost { user, .. }: AdminPost,
) -> HttpResponse {
    let Some(mirror) = portal.part::<DirectoryMirror>() else {
        return portal.error_page(
            &req,
            user.lang,
            StatusCode::NOT_FOUND,
            "admin_directory_off",
        );
    };
    let requested = mirror.sync_now().await;
    let outcome = if requested.is_ok() {
        Outcome::Success
    } else {
        Outcome::Error
    };
    let audited = user
        .audit(
            &portal,
            "admin.directory.sync",
            None,
            outcome,
            None,
            json!({}),
        )
        .await;
    if let Err(e) = &requested {
        tracing::error!(error = %e, "admin: cannot ask for a directory sync");
    }
    if requested.is_err() || audited.is_err() {
        return portal.error_page(
            &req,
            user.lang,
            StatusCode::SERVICE_UNAVAILABLE,
            "error_generic",
        );
    }
    HttpResponse::SeeOther()
        .insert_header(("Location", "/admin/directory?requested=1"))
        .finish()
}
