//! Policies in the admin console: the running set in priority order, the edit form (new or
//! existing) and its preview (validation, blast radius, a user simulated under the draft, the
//! diff). Saving and enabling/disabling are [`super::policy_save`]; the folder's hot reload
//! (`reload.rs`) sees the same files.

use std::path::{Path, PathBuf};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::policy_file::{ACTIONS, Draft, METHODS, SOURCES};
use super::{AdminPage, msg, page};
use crate::console::ConsoleUser;
use crate::portal::Portal;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/policies", web::get().to(list))
        .route("/admin/policies/edit", web::get().to(edit));
}

/// A folder's policy errors in one line (for the audit trail and the admin's page).
pub(super) fn errors_text(errors: &[latchkey_policy::PolicyError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Every `*.toml` file of the folder with its text, sorted (what `load_dir` reads).
pub(super) fn read_sources(dir: &Path) -> std::io::Result<Vec<(PathBuf, String)>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|f| std::fs::read_to_string(&f).map(|t| (f, t)))
        .collect()
}

/// Writes `text` to `path` atomically: a temporary file beside it (not `*.toml`, so the reload
/// never reads it half-written), fsync, rename over the target.
pub(super) fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("policy");
    let suffix = latchkey_types::random::uuid().map_err(std::io::Error::other)?;
    let tmp = dir.join(format!(".{name}.{}.tmp", suffix.simple()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // The folder's entry is made durable where the platform allows; the file already is.
        if let Ok(d) = std::fs::File::open(dir)
            && let Err(e) = d.sync_all()
        {
            tracing::debug!(error = %e, "cannot sync the policy folder");
        }
        Ok(())
    })();
    if result.is_err()
        && let Err(e) = std::fs::remove_file(&tmp)
    {
        tracing::warn!(error = %e, file = %tmp.display(), "cannot remove a temporary policy file");
    }
    result
}

/// The version an edit form carries: SHA-256 (hex) of the policy file's text when the form was
/// rendered. A save whose file no longer has this version is refused (another admin, or an
/// edit on disk, changed it meanwhile), so nobody overwrites a change they never saw.
pub(crate) fn version_of(text: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, text.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn groups_label(groups: &[latchkey_policy::GroupRef]) -> Vec<String> {
    groups.iter().map(|g| g.label()).collect()
}

#[derive(Deserialize)]
struct ListQuery {
    saved: Option<String>,
    deleted: Option<String>,
}

async fn list(
    req: HttpRequest,
    portal: web::Data<Portal>,
    query: web::Query<ListQuery>,
    AdminPage { user, admin }: AdminPage,
) -> HttpResponse {
    let set = portal.services.policies();
    let rows: Vec<serde_json::Value> = set
        .policies()
        .iter()
        .map(|p| {
            serde_json::json!({
                "name": p.name,
                "edit_url": format!(
                    "/admin/policies/edit?name={}",
                    url::form_urlencoded::byte_serialize(p.name.as_bytes()).collect::<String>()
                ),
                "description": p.description,
                "priority": p.priority,
                "enabled": p.enabled,
                "applies_to": groups_label(&p.applies_to),
                "excludes": groups_label(&p.excludes),
                "actions": p.actions.iter().map(crate::policy_cli::action_name).collect::<Vec<_>>(),
                "methods": p.methods.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
                "methods_required": p.methods_required,
                "allow_privileged": p.allow_privileged,
                "warnings": loosened(&portal, &user, p),
                "file": p.file.file_name().map(|f| f.to_string_lossy().into_owned()),
                "line": p.line,
            })
        })
        .collect();
    // The files as they are now: when they do not validate, the running set is the last good
    // one, and the admin must know.
    let disk_errors: Vec<String> = match latchkey_policy::load_dir(&admin.policies_dir) {
        Ok(on_disk) if on_disk == *set => Vec::new(),
        Ok(_) => vec![msg(&portal, &user, "admin_policies_pending_reload")],
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    };
    page(
        &portal,
        &req,
        &user,
        "admin_policies.html",
        "policies",
        serde_json::json!({
            "policies": rows,
            "disk_errors": disk_errors,
            "saved": query.saved,
            "deleted": query.deleted,
            "dir": admin.policies_dir.display().to_string(),
        }),
    )
}

#[derive(Deserialize)]
struct EditQuery {
    name: Option<String>,
}

async fn edit(
    req: HttpRequest,
    portal: web::Data<Portal>,
    query: web::Query<EditQuery>,
    AdminPage { user, .. }: AdminPage,
) -> HttpResponse {
    let set = portal.services.policies();
    let (draft, original, version) = match query.name.as_deref().filter(|n| !n.is_empty()) {
        Some(name) => match set.get(name) {
            Some(p) => (
                Draft::from_policy(p),
                Some(p.name.clone()),
                // Unreadable now: an empty version, which no save matches (refused, not lost).
                std::fs::read_to_string(&p.file)
                    .map(|t| version_of(&t))
                    .unwrap_or_default(),
            ),
            None => {
                return portal.error_page(
                    &req,
                    user.lang,
                    StatusCode::NOT_FOUND,
                    "admin_policy_not_found",
                );
            }
        },
        None => (Draft::new_policy(), None, String::new()),
    };
    let preview = Preview {
        version,
        ..Preview::default()
    };
    render_form(&portal, &req, &user, &draft, original.as_deref(), preview)
}

/// What a preview or a refused save adds to the form.
#[derive(Default)]
pub(super) struct Preview {
    pub errors: Vec<(Option<String>, String)>,
    pub blast: Option<serde_json::Value>,
    pub simulation: Option<serde_json::Value>,
    pub diff: Option<String>,
    pub simulate_user: String,
    pub warnings: Vec<String>,
    /// The file version the form is based on ([`version_of`]).
    pub version: String,
    /// The file changed since the form was rendered: the save was refused (409).
    pub conflict: bool,
}

pub(super) fn render_form(
    portal: &Portal,
    req: &HttpRequest,
    user: &ConsoleUser,
    draft: &Draft,
    original: Option<&str>,
    preview: Preview,
) -> HttpResponse {
    let field_errors: serde_json::Map<String, serde_json::Value> = preview
        .errors
        .iter()
        .filter_map(|(f, m)| f.as_ref().map(|f| (f.clone(), m.clone().into())))
        .collect();
    let summary: Vec<serde_json::Value> = preview
        .errors
        .iter()
        .map(|(f, m)| serde_json::json!({ "field": f, "message": m }))
        .collect();
    let mut r = page(
        portal,
        req,
        user,
        "admin_policy_edit.html",
        "policies",
        serde_json::json!({
            "draft": draft,
            "original": original,
            "action_options": options(portal, user, "admin_action_", &ACTIONS, &draft.actions),
            "method_options": options(portal, user, "admin_method_", &METHODS, &draft.methods),
            "source_options": options(portal, user, "admin_source_", &SOURCES, &draft.sources),
            "errors": summary,
            "field_errors": field_errors,
            "blast": preview.blast,
            "simulation": preview.simulation,
            "diff": preview.diff,
            "warnings": preview.warnings,
            "simulate_user": preview.simulate_user,
            "version": preview.version,
            "delete_url": original.map(|o| format!(
                "/admin/policies/delete?name={}",
                url::form_urlencoded::byte_serialize(o.as_bytes()).collect::<String>()
            )),
            "conflict": preview.conflict,
        }),
    );
    if preview.conflict {
        *r.status_mut() = StatusCode::CONFLICT;
    } else if !preview.errors.is_empty() {
        *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    r
}

/// Where a policy is looser than the shipped security bar (docs/security.md: such a setting needs a
/// visible warning and an audit event): fewer than 2 methods, a minimum password length under
/// the default, privileged accounts in scope.
pub(super) fn loosened(
    portal: &Portal,
    user: &ConsoleUser,
    p: &latchkey_policy::Policy,
) -> Vec<String> {
    let mut out = Vec::new();
    if p.methods_required < 2 {
        out.push(msg(portal, user, "admin_warn_one_method"));
    }
    if p.password.min_length < latchkey_policy::model::DEFAULT_MIN_PASSWORD_LENGTH {
        out.push(
            msg(portal, user, "admin_warn_short_password")
                .replace("{n}", &p.password.min_length.to_string()),
        );
    }
    if p.allow_privileged {
        out.push(msg(portal, user, "admin_warn_privileged"));
    }
    if p.sources.contains(&latchkey_policy::MethodSource::Profile) {
        out.push(msg(portal, user, "admin_warn_profile_source"));
    }
    out
}

/// Checkbox options with localized labels (`{prefix}{value}`).
fn options(
    portal: &Portal,
    user: &ConsoleUser,
    prefix: &str,
    all: &[&str],
    checked: &[String],
) -> Vec<serde_json::Value> {
    // The checked ones first, in the draft's order (it is the order users are offered them).
    let mut order: Vec<&str> = checked
        .iter()
        .filter_map(|c| all.iter().find(|a| *a == c).copied())
        .collect();
    order.extend(all.iter().filter(|a| !checked.iter().any(|c| c == *a)));
    order
        .into_iter()
        .map(|v| {
            serde_json::json!({
                "value": v,
                "label": msg(portal, user, &format!("{prefix}{v}")),
                "checked": checked.iter().any(|c| c == v),
            })
        })
        .collect()
}

/// The group lines of a draft with every well-formed id checked in the tenant and missing names
/// filled in; an error message naming the ids that are not groups there. Lines whose id is not
/// a GUID are left for the policy crate to report.
pub(super) async fn resolve_groups(
    portal: &Portal,
    user: &ConsoleUser,
    graph: &latchkey_graph::GraphClient,
    text: &str,
) -> Result<String, String> {
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (id, name) = match line.split_once(char::is_whitespace) {
            Some((id, name)) => (id, Some(name.trim().to_string())),
            None => (line, None),
        };
        let Ok(oid) = id.parse::<latchkey_types::ObjectId>() else {
            out.push(line.to_string());
            continue;
        };
        match graph.group_display_name(&oid).await {
            Ok(found) => match name.filter(|n| !n.is_empty()).or(found) {
                Some(n) => out.push(format!("{oid} {n}")),
                None => out.push(oid.to_string()),
            },
            Err(e) if e.is_not_found() => missing.push(id.to_string()),
            Err(e) => {
                tracing::warn!(error = %e, "admin: cannot check a policy group");
                return Err(msg(portal, user, "admin_graph_unavailable"));
            }
        }
    }
    if missing.is_empty() {
        Ok(out.join("\n"))
    } else {
        Err(msg(portal, user, "admin_policy_no_such_group").replace("{ids}", &missing.join(", ")))
    }
}
