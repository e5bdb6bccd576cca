//! Passkeys at `/enroll`: name one (`POST /enroll/passkey/begin`), let the browser create it
//! (the page's script, then `POST /enroll/passkey`), remove one after a confirmation
//! (`POST /enroll/passkey/remove`). Registration is checked by
//! `latchkey_selfservice::passkey::register` against the challenge this session holds, which the
//! answer takes first: one prompt, one registration. Every change is audited and told to the
//! channels known before it, like any other method.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_notify::ChangeKind;
use latchkey_selfservice::passkey::{self, RegisterError, RegistrationAnswer};
use latchkey_store::{Outcome, Passkey};
use latchkey_types::MethodKind;
use serde::{Deserialize, Serialize};

use super::page::Problems;
use super::{Ctx, changed, channels_before, post_context, see_other};
use crate::portal::Portal;

const KIND: MethodKind = MethodKind::Passkey;

/// Whether this session may register passkeys: the policy lists them and the portal has a
/// relying party (a public URL with a host name).
pub(super) fn allowed(portal: &Portal, ctx: &Ctx) -> bool {
    ctx.policy.methods.contains(&KIND) && portal.services.passkeys.is_some()
}

/// The session of a passkey POST that may register: CSRF checked, the policy offering
/// passkeys. `Err` is the answer to send.
async fn registering(portal: &Portal, req: &HttpRequest, csrf: &str) -> Result<Ctx, HttpResponse> {
    let ctx = post_context(portal, req, csrf).await?;
    if !allowed(portal, &ctx) {
        return Err(portal.error_page(req, ctx.lang, StatusCode::NOT_FOUND, "error_not_found"));
    }
    Ok(ctx)
}

/// One registered passkey as the overview lists it.
#[derive(Serialize)]
pub(super) struct PasskeyRow {
    /// Base64url credential id: what the remove form posts.
    id: String,
    name: String,
    detail: String,
}

/// The overview's passkey rows (oldest first).
pub(super) fn rows(portal: &Portal, ctx: &Ctx, keys: &[Passkey]) -> Vec<PasskeyRow> {
    let catalogs = portal.templates.catalogs();
    let date = |t: time::OffsetDateTime| super::page::date(t);
    keys.iter()
        .map(|k| {
            let added = catalogs
                .get(ctx.lang, "enroll_passkey_added_on")
                .replace("{date}", &date(k.created_at));
            let used = match k.last_used_at {
                Some(t) => catalogs
                    .get(ctx.lang, "enroll_passkey_used_on")
                    .replace("{date}", &date(t)),
                None => catalogs
                    .get(ctx.lang, "enroll_passkey_never_used")
                    .to_string(),
            };
            PasskeyRow {
                id: latchkey_webauthn::CredentialId(k.credential_id.clone()).to_base64url(),
                name: k.name.clone(),
                detail: format!("{added} · {used}"),
            }
        })
        .collect()
}

#[derive(Deserialize)]
pub struct BeginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
}

/// `POST /enroll/passkey/begin`: checks the name, keeps a new challenge with the session and
/// shows the page whose button asks the browser to create the passkey.
pub(super) async fn begin(
    req: HttpRequest,
    portal: web::Data<Portal>,
    form: web::Form<BeginForm>,
) -> HttpResponse {
    let ctx = match registering(&portal, &req, &form.csrf).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let name = form.name.trim();
    if passkey::check_name(name).is_err() {
        return problem(&portal, &req, &ctx, "enroll_passkey_name_invalid", name).await;
    }
    let s = &portal.services;
    let display = ctx.session.display_name.clone().unwrap_or_default();
    let who = (
        ctx.session.upn.as_str(),
        display.as_str(),
        portal.brand.name.as_str(),
    );
    let created = passkey::creation_options(s, &ctx.flow.subject, name, who).await;
    let (options, pending) = match created {
        Ok(x) => x,
        Err(e) => {
            tracing::error!(error = %e, "enroll: passkey options");
            return ctx.unavailable(&portal, &req);
        }
    };
    let mut session = ctx.session.clone();
    session.passkey = Some(pending);
    if ctx.keep(&portal, &session).await.is_err() {
        return ctx.unavailable(&portal, &req);
    }
    let page = serde_json::json!({
        "csrf": s.csrf.token(&ctx.flow.id.to_string()),
        "name": name,
        "options": crate::passkey::options_json("create", options),
    });
    portal.render_in(&req, ctx.lang, "enroll_passkey.html", &page)
}

#[derive(Deserialize)]
pub struct CreatedForm {
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    answer: RegistrationAnswer,
}

/// `POST /enroll/passkey`: the browser's answer. The session's challenge is taken before the
/// answer is checked; a refusal is audited and shown on the overview.
pub(super) async fn created(
    req: HttpRequest,
    portal: web::Data<Portal>,
    form: web::Form<CreatedForm>,
) -> HttpResponse {
    let ctx = match registering(&portal, &req, &form.csrf).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let mut session = ctx.session.clone();
    let taken = session.passkey.take();
    if taken.is_some() && ctx.keep(&portal, &session).await.is_err() {
        return ctx.unavailable(&portal, &req);
    }
    let name = taken.as_ref().map(|p| p.name.clone()).unwrap_or_default();
    let channels = channels_before(&portal, &ctx).await;
    let s = &portal.services;
    match passkey::register(s, &ctx.flow.subject, taken, &form.answer).await {
        Ok(_) => {
            let told = Some((channels, ChangeKind::Added, "enroll_flash_added"));
            changed(&portal, &req, &ctx, KIND, "enroll.activate", "added", told).await
        }
        Err(RegisterError::Store(e)) => {
            tracing::error!(error = %e, "enroll: cannot store a passkey");
            ctx.unavailable(&portal, &req)
        }
        Err(e) => {
            let reason = refusal_reason(&e);
            let audited = ctx
                .audit(
                    &portal,
                    "enroll.passkey",
                    Some(KIND),
                    Outcome::Failure,
                    Some(&reason),
                )
                .await;
            if audited.is_err() {
                return ctx.unavailable(&portal, &req);
            }
            let key = match e {
                RegisterError::Duplicate => "enroll_passkey_duplicate",
                RegisterError::Full => "enroll_passkey_full",
                RegisterError::Name => "enroll_passkey_name_invalid",
                RegisterError::Expired => "enroll_passkey_expired",
                _ => "enroll_passkey_refused",
            };
            problem(&portal, &req, &ctx, key, &name).await
        }
    }
}

/// A secret-free reason for the audit trail.
fn refusal_reason(e: &RegisterError) -> String {
    match e {
        RegisterError::Refused(w) => format!("refused: {}", w.reason()),
        other => other.to_string(),
    }
}

/// The overview again, with a passkey problem next to the name field.
async fn problem(
    portal: &Portal,
    req: &HttpRequest,
    ctx: &Ctx,
    key: &str,
    name: &str,
) -> HttpResponse {
    let message = portal.templates.catalogs().get(ctx.lang, key).to_string();
    let problems = Problems {
        passkey: Some((name.chars().take(200).collect(), message)),
        ..Problems::default()
    };
    super::page::render(portal, req, ctx, problems, None, StatusCode::BAD_REQUEST).await
}

#[derive(Deserialize)]
pub struct RemoveForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    id: String,
    /// `yes` once the user confirmed.
    #[serde(default)]
    confirmed: String,
}

/// `POST /enroll/passkey/remove`: "Remove this passkey?", then removes it.
pub(super) async fn remove(
    req: HttpRequest,
    portal: web::Data<Portal>,
    form: web::Form<RemoveForm>,
) -> HttpResponse {
    let ctx = match post_context(&portal, &req, &form.csrf).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let s = &portal.services;
    let subject = ctx.flow.subject;
    let id = latchkey_webauthn::decode_base64_lenient(&form.id).unwrap_or_default();
    let keys = match s.store.passkeys(&subject).await {
        Ok(k) => k,
        Err(e) => {
            tracing::error!(error = %e, "enroll: cannot read passkeys");
            return ctx.unavailable(&portal, &req);
        }
    };
    let Some(key) = keys.iter().find(|k| k.credential_id == id) else {
        // Not one of the user's passkeys (another user's, or gone): nothing to remove, but a
        // forged id is worth a line in the trail.
        let reason = Some("not a passkey of this user");
        let audited = ctx
            .audit(
                &portal,
                "enroll.remove",
                Some(KIND),
                Outcome::Denied,
                reason,
            )
            .await;
        if audited.is_err() {
            return ctx.unavailable(&portal, &req);
        }
        return see_other("/enroll");
    };
    if form.confirmed != "yes" {
        return confirm_removal(&portal, &req, &ctx, &form.id, &key.name);
    }
    let channels = channels_before(&portal, &ctx).await;
    match s.store.remove_passkey(&subject, &id).await {
        Ok(true) => {
            let told = Some((channels, ChangeKind::Removed, "enroll_flash_removed"));
            changed(&portal, &req, &ctx, KIND, "enroll.remove", "active", told).await
        }
        Ok(false) => see_other("/enroll"),
        Err(e) => {
            tracing::error!(error = %e, "enroll: cannot remove a passkey");
            ctx.unavailable(&portal, &req)
        }
    }
}

fn confirm_removal(
    portal: &Portal,
    req: &HttpRequest,
    ctx: &Ctx,
    id: &str,
    name: &str,
) -> HttpResponse {
    let catalogs = portal.templates.catalogs();
    let lang = ctx.lang;
    let page = serde_json::json!({
        "title": catalogs.get(lang, "enroll_passkey_remove_title").replace("{name}", name),
        "paragraphs": [catalogs.get(lang, "enroll_passkey_remove_body")],
        "action": "/enroll/passkey/remove",
        "csrf": portal.services.csrf.token(&ctx.flow.id.to_string()),
        "fields": [{ "name": "confirmed", "value": "yes" }, { "name": "id", "value": id }],
        "confirm": catalogs.get(lang, "enroll_remove_confirm"),
        "cancel_href": "/enroll",
        "cancel": catalogs.get(lang, "enroll_remove_cancel"),
    });
    portal.render_in(req, lang, "confirm.html", &page)
}
