//! Policies in the admin console: the running set in priority order, the edit form (new or
//! existing), preview (validation, blast radius, a user simulated under the draft, the diff) and
//! save, and enable/disable.
//!
//! A save validates the whole folder as it would be after the change with `latchkey-policy`
//! BEFORE anything is written; an invalid draft shows its errors next to the fields and changes
//! nothing on disk. A valid one is written atomically (temporary file in the same folder, fsync,
//! rename), audited with the diff (before the answer), and put in force at once; the folder's
//! hot reload (`reload.rs`) sees the same files. Only the edited `[[policy]]` block of a file
//! changes (see [`super::policy_file`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_policy::{PolicyError, PolicySet, parse_sources};
use latchkey_store::Outcome;
use serde::Deserialize;

use super::policy_file::{self, ACTIONS, Draft, METHODS};
use super::{Admin, AdminPage, AdminPost, field, msg, page};
use crate::console::ConsoleUser;
use crate::portal::Portal;
use latchkey_selfservice::flow::Unrecorded as _;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/policies", web::get().to(list))
        .route("/admin/policies/edit", web::get().to(edit))
        .route("/admin/policies/save", web::post().to(save))
        .route("/admin/policies/toggle", web::post().to(toggle));
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
struct Preview {
    errors: Vec<(Option<String>, String)>,
    blast: Option<serde_json::Value>,
    simulation: Option<serde_json::Value>,
    diff: Option<String>,
    simulate_user: String,
    warnings: Vec<String>,
    /// The file version the form is based on ([`version_of`]).
    version: String,
    /// The file changed since the form was rendered: the save was refused (409).
    conflict: bool,
}

fn render_form(
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
fn loosened(portal: &Portal, user: &ConsoleUser, p: &latchkey_policy::Policy) -> Vec<String> {
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
async fn resolve_groups(
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

/// The form field an error of the policy crate belongs to, when it is about the edited block.
fn field_of(e: &PolicyError, target: &Path, text: &str) -> Option<String> {
    if e.file != target {
        return None;
    }
    let raw = match &e.field {
        Some(f) => f
            .split_once("].")
            .map_or(f.as_str(), |(_, r)| r)
            .to_string(),
        // A parse error (unknown method, bad type): the key on the reported line.
        None => text
            .lines()
            .nth(e.line.saturating_sub(1))?
            .split('=')
            .next()?
            .trim()
            .to_string(),
    };
    let key = raw
        .trim_start_matches("password.")
        .trim_start_matches("enrollment.")
        .trim_start_matches("notifications.");
    let key = key.split(['[', '.']).next().unwrap_or(key);
    let known = [
        "name",
        "description",
        "priority",
        "applies_to",
        "excludes",
        "actions",
        "methods",
        "methods_required",
        "allow_privileged",
        "reconfirm_after_days",
        "min_length",
        "banned_words",
        "security_contacts",
    ];
    known.contains(&key).then(|| key.to_string())
}

/// A file name for a new policy: its name, lower-case, `[a-z0-9-]`, not taken.
fn new_file_name(dir: &Path, name: &str) -> PathBuf {
    let mut slug: String = name
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    slug = slug.trim_matches('-').to_string();
    if slug.is_empty() {
        slug = "policy".into();
    }
    slug.truncate(60);
    let mut path = dir.join(format!("{slug}.toml"));
    let mut n = 2;
    while path.exists() {
        path = dir.join(format!("{slug}-{n}.toml"));
        n += 1;
    }
    path
}

/// The folder after the change, validated: (target file, its new text, its old text, new set).
struct Candidate {
    file: PathBuf,
    text: String,
    old_text: String,
    set: PolicySet,
}

/// Builds the folder as it would be with `draft` in place of `original` (or added) and
/// validates it; errors as (form field, message).
fn candidate(
    admin: &Admin,
    draft: &Draft,
    original: Option<&str>,
) -> Result<Candidate, Vec<(Option<String>, String)>> {
    let general = |m: String| vec![(None, m)];
    let sources = read_sources(&admin.policies_dir)
        .map_err(|e| general(format!("cannot read the policy folder: {e}")))?;
    let block = draft.to_toml().map_err(|es| {
        es.into_iter()
            .map(|(f, m)| (Some(f), m))
            .collect::<Vec<_>>()
    })?;
    let (file, old_text, text) = match original {
        Some(name) => {
            let on_disk = parse_sources(&sources).map_err(|es| {
                es.iter()
                    .map(|e| (None, format!("the files on disk are invalid: {e}")))
                    .collect::<Vec<_>>()
            })?;
            let Some(p) = on_disk.get(name) else {
                return Err(general(format!(
                    "'{name}' is no longer in the policy files"
                )));
            };
            let old = sources
                .iter()
                .find(|(f, _)| *f == p.file)
                .map(|(_, t)| t.clone())
                .unwrap_or_default();
            let new = policy_file::replace_block(&old, p.line, &block)
                .ok_or_else(|| general("the policy's block was not found".into()))?;
            (p.file.clone(), old, new)
        }
        None => (
            new_file_name(&admin.policies_dir, &draft.name),
            String::new(),
            block,
        ),
    };
    let mut next: Vec<(PathBuf, String)> =
        sources.into_iter().filter(|(f, _)| *f != file).collect();
    next.push((file.clone(), text.clone()));
    next.sort();
    let set = parse_sources(&next).map_err(|es| {
        es.iter()
            .map(|e| {
                let f = field_of(e, &file, &text);
                let m = match &f {
                    Some(_) => e.message.clone(),
                    None => e.to_string(),
                };
                (f, m)
            })
            .collect::<Vec<_>>()
    })?;
    Ok(Candidate {
        file,
        text,
        old_text,
        set,
    })
}

async fn save(
    req: HttpRequest,
    portal: web::Data<Portal>,
    AdminPost { user, admin, pairs }: AdminPost,
) -> HttpResponse {
    let mut draft = Draft::from_form(&pairs);
    let original = Some(field(&pairs, "original").trim()).filter(|o| !o.is_empty());
    let preview_only = field(&pairs, "op") != "save";
    let simulate_user = field(&pairs, "simulate_user").trim().to_string();
    let version = field(&pairs, "version").trim().to_string();
    // Every group must exist in the tenant (a well-formed but wrong id would match nobody,
    // silently); names left out are filled in from the directory.
    let mut group_errors = Vec::new();
    for (name, text) in [
        ("applies_to", &mut draft.applies_to),
        ("excludes", &mut draft.excludes),
    ] {
        match resolve_groups(&portal, &user, &admin.graph, text).await {
            Ok(t) => *text = t,
            Err(m) => group_errors.push((Some(name.to_string()), m)),
        }
    }
    let _write = admin.write.lock().await;
    let checked = if group_errors.is_empty() {
        candidate(&admin, &draft, original)
    } else {
        Err(group_errors)
    };
    let c = match checked {
        Ok(c) => c,
        Err(errors) => {
            if !preview_only {
                user.audit(
                    &portal,
                    "admin.policy.save",
                    None,
                    Outcome::Failure,
                    Some("invalid draft: nothing written"),
                    serde_json::json!({ "policy": draft.name }),
                )
                .await
                .or_log();
            }
            let preview = Preview {
                errors,
                simulate_user,
                version,
                ..Preview::default()
            };
            return render_form(&portal, &req, &user, &draft, original, preview);
        }
    };
    let diff = policy_file::diff(&c.old_text, &c.text);
    // Checked under the write lock, against the text the save would replace.
    if !preview_only && original.is_some() && version_of(&c.old_text) != version {
        user.audit(
            &portal,
            "admin.policy.save",
            None,
            Outcome::Failure,
            Some("the policy file changed since the form was opened: nothing written"),
            serde_json::json!({ "policy": draft.name }),
        )
        .await
        .or_log();
        // The form keeps the admin's draft; it now carries the current version, so saving
        // again (after reading what changed) is a deliberate choice. The diff shows what that
        // save would do to the file as it is now.
        let preview = Preview {
            errors: vec![(None, msg(&portal, &user, "admin_policy_conflict"))],
            diff: Some(diff),
            simulate_user,
            version: version_of(&c.old_text),
            conflict: true,
            ..Preview::default()
        };
        return render_form(&portal, &req, &user, &draft, original, preview);
    }
    if preview_only {
        let current = portal.services.policies();
        let blast = super::simulate::blast_radius(&admin.graph, &current, &c.set).await;
        let blast = match blast {
            Ok(b) => serde_json::to_value(b).unwrap_or_default(),
            Err(e) => {
                tracing::warn!(error = %e, "admin: blast radius failed");
                serde_json::json!({ "error": msg(&portal, &user, "admin_graph_unavailable") })
            }
        };
        let simulation = if simulate_user.is_empty() {
            None
        } else {
            Some(
                super::simulate::compare(
                    &portal,
                    &user,
                    &admin.graph,
                    &current,
                    &c.set,
                    &simulate_user,
                )
                .await,
            )
        };
        let preview = Preview {
            blast: Some(blast),
            simulation,
            diff: Some(diff),
            warnings: c
                .set
                .get(draft.name.trim())
                .map(|p| loosened(&portal, &user, p))
                .unwrap_or_default(),
            simulate_user,
            version,
            ..Preview::default()
        };
        return render_form(&portal, &req, &user, &draft, original, preview);
    }
    write_and_apply(
        &portal,
        &req,
        &user,
        c,
        &diff,
        "admin.policy.save",
        &draft.name,
    )
    .await
}

/// Writes the candidate file, puts the set in force, audits; the answer redirects to the list.
async fn write_and_apply(
    portal: &Portal,
    req: &HttpRequest,
    user: &ConsoleUser,
    c: Candidate,
    diff: &str,
    event: &str,
    policy: &str,
) -> HttpResponse {
    let warnings: Vec<String> = c.set.get(policy).map_or_else(Vec::new, |p| {
        let mut w = Vec::new();
        if p.methods_required < 2 {
            w.push(format!("methods_required = {}", p.methods_required));
        }
        if p.password.min_length < latchkey_policy::model::DEFAULT_MIN_PASSWORD_LENGTH {
            w.push(format!("password.min_length = {}", p.password.min_length));
        }
        if p.allow_privileged {
            w.push("allow_privileged = true".into());
        }
        w
    });
    let file = c
        .file
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Err(e) = write_atomically(&c.file, &c.text) {
        tracing::error!(error = %e, file = %c.file.display(), "admin: cannot write a policy file");
        user.audit(
            portal,
            event,
            None,
            Outcome::Error,
            Some(&format!("cannot write {file}: {e}")),
            serde_json::json!({ "policy": policy, "file": file }),
        )
        .await
        .or_log();
        return portal.error_page(
            req,
            user.lang,
            StatusCode::INTERNAL_SERVER_ERROR,
            "admin_write_failed",
        );
    }
    if let Ok(mut current) = portal.services.policies.write() {
        *current = Arc::new(c.set);
    }
    if user
        .audit(
            portal,
            event,
            None,
            Outcome::Success,
            None,
            serde_json::json!({
                "policy": policy,
                "file": file,
                "diff": diff,
                "below_security_defaults": warnings,
            }),
        )
        .await
        .is_err()
    {
        return portal.error_page(
            req,
            user.lang,
            StatusCode::SERVICE_UNAVAILABLE,
            "error_generic",
        );
    }
    let to = format!(
        "/admin/policies?saved={}",
        url::form_urlencoded::byte_serialize(policy.as_bytes()).collect::<String>()
    );
    HttpResponse::SeeOther()
        .insert_header(("Location", to))
        .finish()
}

async fn toggle(
    req: HttpRequest,
    portal: web::Data<Portal>,
    AdminPost { user, admin, pairs }: AdminPost,
) -> HttpResponse {
    let name = field(&pairs, "name").to_string();
    let enable = field(&pairs, "enabled") == "true";
    let _write = admin.write.lock().await;
    let result = (|| -> Result<Candidate, String> {
        let sources = read_sources(&admin.policies_dir).map_err(|e| e.to_string())?;
        let on_disk = parse_sources(&sources).map_err(|es| {
            es.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        })?;
        let p = on_disk
            .get(&name)
            .ok_or_else(|| format!("'{name}' is not in the policy files"))?;
        let old = sources
            .iter()
            .find(|(f, _)| *f == p.file)
            .map(|(_, t)| t.clone())
            .unwrap_or_default();
        let text = policy_file::set_enabled(&old, p.line, enable)
            .ok_or_else(|| "the policy's block was not found".to_string())?;
        let next: Vec<(PathBuf, String)> = sources
            .iter()
            .map(|(f, t)| {
                if *f == p.file {
                    (f.clone(), text.clone())
                } else {
                    (f.clone(), t.clone())
                }
            })
            .collect();
        let set = parse_sources(&next).map_err(|es| {
            es.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        })?;
        Ok(Candidate {
            file: p.file.clone(),
            text,
            old_text: old,
            set,
        })
    })();
    let c = match result {
        Ok(c) => c,
        Err(reason) => {
            user.audit(
                &portal,
                "admin.policy.toggle",
                None,
                Outcome::Failure,
                Some(&reason),
                serde_json::json!({ "policy": name }),
            )
            .await
            .or_log();
            let mut r = portal.render_in(
                &req,
                user.lang,
                "error.html",
                &serde_json::json!({ "message": reason }),
            );
            *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            return r;
        }
    };
    let diff = policy_file::diff(&c.old_text, &c.text);
    write_and_apply(&portal, &req, &user, c, &diff, "admin.policy.toggle", &name).await
}
