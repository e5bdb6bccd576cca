//! Deleting a policy in the admin console: a confirmation page (what goes, as a diff, and who
//! would be affected), then the POST. Like a save, the folder as it would be afterwards is
//! validated with `latchkey-policy` BEFORE anything changes on disk; the last policy cannot be
//! deleted (an empty set refuses everyone, silently); the confirmation carries the file's
//! version, so a file changed meanwhile is not touched (409). The block is removed from its
//! file (the file itself when no policy is left in it), the set is put in force, and the
//! deletion is audited with the diff before the answer.

use std::path::PathBuf;
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_policy::{PolicySet, parse_sources};
use latchkey_store::Outcome;
use serde::Deserialize;

use super::policies::{errors_text, read_sources, version_of, write_atomically};
use super::{Admin, AdminPage, AdminPost, field, msg, page};
use crate::console::ConsoleUser;
use crate::portal::Portal;
use latchkey_selfservice::flow::Unrecorded as _;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/policies/delete", web::get().to(confirm))
        .route("/admin/policies/delete", web::post().to(delete));
}

/// The folder without the policy, validated.
struct Plan {
    file: PathBuf,
    old_text: String,
    /// `None`: no policy is left in the file, so it is removed.
    new_text: Option<String>,
    set: PolicySet,
}

/// Why a deletion cannot be done: a message for the admin.
fn plan(portal: &Portal, user: &ConsoleUser, admin: &Admin, name: &str) -> Result<Plan, String> {
    let sources = read_sources(&admin.policies_dir)
        .map_err(|e| format!("cannot read the policy folder: {e}"))?;
    let on_disk = parse_sources(&sources).map_err(|es| {
        es.iter()
            .map(|e| format!("the files on disk are invalid: {e}"))
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    let Some(p) = on_disk.get(name) else {
        return Err(msg(portal, user, "admin_policy_not_found"));
    };
    if on_disk.policies().len() <= 1 {
        return Err(msg(portal, user, "admin_policy_delete_last"));
    }
    let old_text = sources
        .iter()
        .find(|(f, _)| *f == p.file)
        .map(|(_, t)| t.clone())
        .unwrap_or_default();
    let text = super::policy_file::remove_block(&old_text, p.line)
        .ok_or_else(|| "the policy's block was not found".to_string())?;
    let new_text = super::policy_file::has_policies(&text).then_some(text);
    let mut next: Vec<(PathBuf, String)> =
        sources.into_iter().filter(|(f, _)| *f != p.file).collect();
    if let Some(t) = &new_text {
        next.push((p.file.clone(), t.clone()));
    }
    next.sort();
    let set = parse_sources(&next).map_err(|es| errors_text(&es))?;
    Ok(Plan {
        file: p.file.clone(),
        old_text,
        new_text,
        set,
    })
}

#[derive(Deserialize)]
struct Query {
    name: Option<String>,
}

async fn confirm(
    req: HttpRequest,
    portal: web::Data<Portal>,
    q: web::Query<Query>,
    AdminPage { user, admin }: AdminPage,
) -> HttpResponse {
    let name = q.name.as_deref().unwrap_or("").trim().to_string();
    let planned = plan(&portal, &user, &admin, &name);
    render(&portal, &req, &user, &admin, &name, planned, None).await
}

/// The confirmation page; `error` (with its status) instead of the button when the deletion
/// cannot be done.
async fn render(
    portal: &Portal,
    req: &HttpRequest,
    user: &ConsoleUser,
    admin: &Admin,
    name: &str,
    planned: Result<Plan, String>,
    conflict: Option<String>,
) -> HttpResponse {
    let (status, ctx) = match planned {
        Ok(p) => {
            let diff = super::policy_file::diff(&p.old_text, p.new_text.as_deref().unwrap_or(""));
            let current = portal.services.policies();
            let blast = super::simulate::blast_mirror::blast_radius(
                &portal.services,
                &admin.graph,
                &current,
                &p.set,
            );
            let blast = match blast.await {
                Ok(b) => serde_json::to_value(b).unwrap_or_default(),
                Err(e) => {
                    tracing::warn!(error = %e, "admin: blast radius failed");
                    serde_json::json!({ "error": msg(portal, user, "admin_graph_unavailable") })
                }
            };
            (
                if conflict.is_some() {
                    StatusCode::CONFLICT
                } else {
                    StatusCode::OK
                },
                serde_json::json!({
                    "name": name,
                    "diff": diff,
                    "blast": blast,
                    "version": version_of(&p.old_text),
                    "removes_file": p.new_text.is_none(),
                    "file": p.file.file_name().map(|f| f.to_string_lossy().into_owned()),
                    "error": conflict,
                }),
            )
        }
        Err(e) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            serde_json::json!({ "name": name, "error": e, "refused": true }),
        ),
    };
    let mut r = page(
        portal,
        req,
        user,
        "admin_policy_delete.html",
        "policies",
        ctx,
    );
    *r.status_mut() = status;
    r
}

/// Writes the planned change (the file without the policy, or no file), puts the new set in
/// force and audits it with the diff; the error page's status and message when it failed.
async fn apply(
    portal: &Portal,
    user: &ConsoleUser,
    name: &str,
    p: Plan,
) -> Result<(), (StatusCode, &'static str)> {
    let diff = super::policy_file::diff(&p.old_text, p.new_text.as_deref().unwrap_or(""));
    let file = p
        .file
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let written = match &p.new_text {
        Some(t) => write_atomically(&p.file, t),
        None => std::fs::remove_file(&p.file),
    };
    let event = "admin.policy.delete";
    if let Err(e) = written {
        tracing::error!(error = %e, file = %p.file.display(), "admin: cannot change a policy file");
        let reason = format!("cannot write {file}: {e}");
        let details = serde_json::json!({ "policy": name });
        let refused = user.audit(
            portal,
            event,
            None,
            Outcome::Failure,
            Some(&reason),
            details,
        );
        refused.await.or_log();
        return Err((StatusCode::INTERNAL_SERVER_ERROR, "admin_write_failed"));
    }
    if let Ok(mut current) = portal.services.policies.write() {
        *current = Arc::new(p.set);
    }
    let details = serde_json::json!({
        "policy": name,
        "file": file,
        "file_removed": p.new_text.is_none(),
        "diff": diff,
    });
    let audited = user.audit(portal, event, None, Outcome::Success, None, details);
    audited
        .await
        .map_err(|_| (StatusCode::SERVICE_UNAVAILABLE, "error_generic"))
}

async fn delete(
    req: HttpRequest,
    portal: web::Data<Portal>,
    AdminPost { user, admin, pairs }: AdminPost,
) -> HttpResponse {
    let name = field(&pairs, "name").trim().to_string();
    if field(&pairs, "confirm") != "yes" {
        let key = "admin_policy_delete_confirm_missing";
        return portal.error_page(&req, user.lang, StatusCode::BAD_REQUEST, key);
    }
    let version = field(&pairs, "version").trim();
    let _write = admin.write.lock().await;
    let refuse = |reason: String| {
        let (portal, user, name) = (&portal, &user, &name);
        async move {
            user.audit(
                portal,
                "admin.policy.delete",
                None,
                Outcome::Failure,
                Some(&reason),
                serde_json::json!({ "policy": name }),
            )
            .await
            .or_log();
        }
    };
    let p = match plan(&portal, &user, &admin, &name) {
        Ok(p) => p,
        Err(e) => {
            refuse(format!("nothing deleted: {e}")).await;
            return render(&portal, &req, &user, &admin, &name, Err(e), None).await;
        }
    };
    if version_of(&p.old_text) != version {
        refuse("the policy file changed since the confirmation was shown: nothing deleted".into())
            .await;
        let m = msg(&portal, &user, "admin_policy_delete_conflict");
        return render(&portal, &req, &user, &admin, &name, Ok(p), Some(m)).await;
    }
    if let Err((status, key)) = apply(&portal, &user, &name, p).await {
        return portal.error_page(&req, user.lang, status, key);
    }
    let to = format!(
        "/admin/policies?deleted={}",
        url::form_urlencoded::byte_serialize(name.as_bytes()).collect::<String>()
    );
    HttpResponse::SeeOther()
        .insert_header(("Location", to))
        .finish()
}
