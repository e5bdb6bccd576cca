//! Saving a policy from the admin console, and enabling or disabling one. A save validates the
//! whole folder as it would be after the change with `latchkey-policy` BEFORE anything is
//! written; an invalid draft shows its errors next to the fields and changes nothing on disk. A
//! valid one is written atomically (temporary file in the same folder, fsync, rename), audited
//! with the diff (before the answer), and put in force at once. Only the edited `[[policy]]`
//! block of a file changes (see [`super::policy_file`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_policy::{PolicyError, PolicySet, parse_sources};
use latchkey_store::Outcome;

use super::policies::{
    Preview, errors_text, loosened, read_sources, render_form, resolve_groups, version_of,
    write_atomically,
};
use super::policy_file::{self, Draft};
use super::{Admin, AdminPost, field, msg};
use crate::console::ConsoleUser;
use crate::portal::Portal;
use latchkey_selfservice::flow::Unrecorded as _;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/policies/save", web::post().to(save))
        .route("/admin/policies/toggle", web::post().to(toggle));
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

/// Every group of the draft must exist in the tenant (a well-formed but wrong id would match
/// nobody, silently); names left out are filled in from the directory. The errors, by field.
async fn resolve_draft_groups(
    portal: &Portal,
    user: &ConsoleUser,
    admin: &Admin,
    draft: &mut Draft,
) -> Vec<(Option<String>, String)> {
    let mut errors = Vec::new();
    for (name, text) in [
        ("applies_to", &mut draft.applies_to),
        ("excludes", &mut draft.excludes),
    ] {
        match resolve_groups(portal, user, &admin.graph, text).await {
            Ok(t) => *text = t,
            Err(m) => errors.push((Some(name.to_string()), m)),
        }
    }
    errors
}

/// What the draft would do, without writing it: the blast radius, a user simulated under it,
/// the diff, what it loosens.
#[allow(clippy::too_many_arguments)] // the form's parts, each shown back as it came
async fn preview(
    portal: &Portal,
    user: &ConsoleUser,
    admin: &Admin,
    c: &Candidate,
    draft: &Draft,
    diff: String,
    simulate_user: String,
    version: String,
) -> Preview {
    let current = portal.services.policies();
    let services = &portal.services;
    let blast =
        super::simulate::blast_mirror::blast_radius(services, &admin.graph, &current, &c.set);
    let blast = blast.await;
    let blast = match blast {
        Ok(b) => serde_json::to_value(b).unwrap_or_default(),
        Err(e) => {
            tracing::warn!(error = %e, "admin: blast radius failed");
            serde_json::json!({ "error": msg(portal, user, "admin_graph_unavailable") })
        }
    };
    let simulation = if simulate_user.is_empty() {
        None
    } else {
        let graph = &admin.graph;
        let compared =
            super::simulate::compare(portal, user, graph, &current, &c.set, &simulate_user);
        Some(compared.await)
    };
    Preview {
        blast: Some(blast),
        simulation,
        diff: Some(diff),
        warnings: c
            .set
            .get(draft.name.trim())
            .map(|p| loosened(portal, user, p))
            .unwrap_or_default(),
        simulate_user,
        version,
        ..Preview::default()
    }
}

/// Records a save that wrote nothing, and why.
async fn refused(portal: &Portal, user: &ConsoleUser, draft: &Draft, why: &str) {
    let details = serde_json::json!({ "policy": draft.name });
    let event = "admin.policy.save";
    let audited = user.audit(portal, event, None, Outcome::Failure, Some(why), details);
    audited.await.or_log();
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
    let group_errors = resolve_draft_groups(&portal, &user, &admin, &mut draft).await;
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
                refused(&portal, &user, &draft, "invalid draft: nothing written").await;
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
        let why = "the policy file changed since the form was opened: nothing written";
        refused(&portal, &user, &draft, why).await;
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
        let preview = preview(
            &portal,
            &user,
            &admin,
            &c,
            &draft,
            diff,
            simulate_user,
            version,
        );
        return render_form(&portal, &req, &user, &draft, original, preview.await);
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
        let set = parse_sources(&next).map_err(|es| errors_text(&es))?;
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
