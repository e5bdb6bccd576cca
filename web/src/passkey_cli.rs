//! `latchkey passkey provision|list|remove <user> --config FILE`: passkeys (FIDO2 security
//! keys) in Entra for a user, from a helpdesk desk or the portal host — for staff who get a key
//! on day one, or a user who lost every method and was verified in person. Microsoft's relying
//! party (`login.microsoft.com`) is not the portal's, so a browser cannot do this; a native
//! client talking CTAP2 to the key can (`latchkey_passkey`). Every change is audited in the
//! portal's audit trail (actor `admin:cli`, with the operating-system account and host that ran
//! it): a `started` event before Entra is asked, the outcome after. Accounts with directory roles
//! are refused unless `--allow-privileged` says the operator means it (the helpdesk console asks
//! a second member for them; a command line has no second member). docs/passkeys.md.

use std::path::Path;
use std::process::ExitCode;

use latchkey_graph::{Fido2Method, GraphClient};
use latchkey_passkey::PasskeyError;
use latchkey_store::Outcome;
use serde::Serialize;

use crate::cli_store;
use crate::config::Settings;

/// One Entra passkey as the command prints it.
#[derive(Debug, Serialize)]
pub struct PasskeyView {
    pub id: String,
    pub display_name: Option<String>,
    pub aaguid: Option<String>,
    /// From the shipped AAGUID table, else what Entra reports.
    pub model: Option<String>,
    pub created: Option<String>,
    pub passkey_type: Option<String>,
    pub attestation_level: Option<String>,
}

impl PasskeyView {
    fn of(m: &Fido2Method) -> Self {
        let known = m
            .aa_guid
            .as_deref()
            .and_then(latchkey_passkey::aaguid::model_name);
        Self {
            id: m.id.clone(),
            display_name: m.display_name.clone(),
            aaguid: m.aa_guid.clone(),
            model: known.map(str::to_string).or_else(|| m.model.clone()),
            created: m.created_date_time.and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            }),
            passkey_type: m.passkey_type.as_ref().map(|t| format!("{t:?}")),
            attestation_level: m.attestation_level.as_ref().map(|a| format!("{a:?}")),
        }
    }

    fn line(&self) -> String {
        format!(
            "{:<38} {:<32} {:<36} {}",
            self.id,
            self.display_name.as_deref().unwrap_or("-"),
            self.model.as_deref().unwrap_or("unknown model"),
            self.created.as_deref().unwrap_or("-"),
        )
    }
}

/// The user's Entra passkeys with their models.
pub async fn list(config: &Path, who: &str, json: bool) -> anyhow::Result<ExitCode> {
    let graph = crate::entra::client(&Settings::load(config)?)?;
    let user = match latchkey_passkey::resolve_user(&graph, who).await {
        Ok(u) => u,
        Err(e) => return Ok(failed(who, &e)),
    };
    let methods = match graph.list_fido2_methods(&user.id).await {
        Ok(m) => m,
        Err(e) => return Ok(failed(who, &PasskeyError::from(e))),
    };
    let views: Vec<PasskeyView> = methods.iter().map(PasskeyView::of).collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&views)?);
    } else if views.is_empty() {
        println!("{} has no passkeys in Entra", user.user_principal_name);
    } else {
        for v in &views {
            println!("{}", v.line());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Who ran the command, for the audit trail: the operating-system account and host.
fn operator() -> serde_json::Value {
    let var = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
    };
    serde_json::json!({
        "os_user": var(&["USER", "LOGNAME", "USERNAME"]),
        "host": var(&["HOSTNAME", "COMPUTERNAME"]).or_else(|| {
            std::fs::read_to_string("/etc/hostname").ok().map(|h| h.trim().to_string())
        }),
    })
}

/// The audit details of a passkey command: what it was about, and who ran it.
fn details(mut about: serde_json::Value) -> serde_json::Value {
    if let Some(map) = about.as_object_mut() {
        map.insert("operator".into(), operator());
    }
    about
}

/// The user, refused when they hold a directory role and the operator did not say
/// `--allow-privileged` (or when their roles cannot be read). A refusal of a real user is
/// audited (`event`, denied).
async fn target(
    graph: &GraphClient,
    store: &dyn latchkey_store::Store,
    (who, event): (&str, &str),
    allow_privileged: bool,
) -> anyhow::Result<Result<latchkey_graph::User, ExitCode>> {
    let user = match latchkey_passkey::resolve_user(graph, who).await {
        Ok(u) => u,
        Err(e) => return Ok(Err(failed(who, &e))),
    };
    if !allow_privileged {
        let roles = match graph.directory_roles(&user.id).await {
            Ok(r) => r,
            Err(e) => return Ok(Err(failed(who, &PasskeyError::from(e)))),
        };
        if !roles.is_empty() {
            let reason = Some("privileged account without --allow-privileged");
            let about = details(serde_json::json!({}));
            let subject = Some(user.id);
            cli_store::audit(store, event, subject, Outcome::Denied, reason, about).await?;
            eprintln!(
                "{who} holds a directory role: passkeys of privileged accounts change only with \
                 --allow-privileged (and, in the helpdesk console, a second member's approval)"
            );
            return Ok(Err(ExitCode::from(1)));
        }
    }
    Ok(Ok(user))
}

/// Removes one of the user's Entra passkeys (by the id `list` prints). Audited.
pub async fn remove(
    config: &Path,
    who: &str,
    method_id: &str,
    allow_privileged: bool,
) -> anyhow::Result<ExitCode> {
    let graph = crate::entra::client(&Settings::load(config)?)?;
    let store = cli_store::open(config).await?;
    let event = "passkey.removed";
    let user = match target(&graph, store.as_ref(), (who, event), allow_privileged).await? {
        Ok(u) => u,
        Err(code) => return Ok(code),
    };
    let known = graph.list_fido2_methods(&user.id).await;
    let Some(method) = known
        .map_err(PasskeyError::from)
        .map(|m| {
            m.into_iter()
                .find(|m| m.id.eq_ignore_ascii_case(method_id.trim()))
        })
        .unwrap_or_else(|e| {
            eprintln!("{who}: {e}");
            None
        })
    else {
        let reason = Some("no such passkey of the user");
        let about = details(serde_json::json!({ "method_id": method_id }));
        let subject = Some(user.id);
        cli_store::audit(
            store.as_ref(),
            event,
            subject,
            Outcome::Denied,
            reason,
            about,
        )
        .await?;
        eprintln!("{who}: no passkey with the id {method_id:?} (latchkey passkey list {who})");
        return Ok(ExitCode::from(1));
    };
    let view = PasskeyView::of(&method);
    let about = details(serde_json::json!({
        "method_id": view.id, "aaguid": view.aaguid, "model": view.model,
    }));
    let store = store.as_ref();
    let subject = Some(user.id);
    cli_store::audit(store, event, subject, Outcome::Started, None, about.clone()).await?;
    if let Err(e) = graph.delete_fido2_method(&user.id, &method.id).await {
        let e = PasskeyError::from(e);
        let reason = Some(e.reason());
        cli_store::audit(store, event, subject, Outcome::Failure, reason, about).await?;
        return Ok(failed(who, &e));
    }
    cli_store::audit(store, event, subject, Outcome::Success, None, about).await?;
    println!("removed: {}", view.line());
    Ok(ExitCode::SUCCESS)
}

/// Provisions the security key plugged into this computer for the user. Audited, refusals too.
pub async fn provision(
    config: &Path,
    who: &str,
    name: Option<&str>,
    (json, allow_privileged): (bool, bool),
) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(config)?;
    let graph = crate::entra::client(&settings)?;
    let store = cli_store::open(config).await?;
    let event = "passkey.provisioned";
    let user = match target(&graph, store.as_ref(), (who, event), allow_privileged).await? {
        Ok(u) => u,
        Err(code) => return Ok(code),
    };
    let subject = Some(user.id);
    let started = details(serde_json::json!({ "name": name }));
    let store = store.as_ref();
    cli_store::audit(store, event, subject, Outcome::Started, None, started).await?;
    let outcome = with_device(&graph, &user.id, name).await;
    let (result, reason) = match &outcome {
        Ok(_) => (Outcome::Success, None),
        Err(e) => (Outcome::Failure, Some(e.reason())),
    };
    let about = details(match &outcome {
        Ok(p) => serde_json::json!({
            "method_id": p.method.id,
            "aaguid": p.aaguid.to_string(),
            "model": p.model,
            "attestation_verified": p.attestation_verified,
        }),
        Err(_) => serde_json::json!({}),
    });
    cli_store::audit(store, event, subject, result, reason, about).await?;
    match outcome {
        Ok(done) => {
            for w in &done.warnings {
                eprintln!("warning: {w}");
            }
            let view = PasskeyView::of(&done.method);
            if json {
                println!("{}", serde_json::to_string_pretty(&view)?);
            } else {
                println!(
                    "registered in Entra for {}: {}",
                    user.user_principal_name,
                    view.line()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Ok(failed(who, &e)),
    }
}

/// The refusal, said once on stderr; exit code 1.
fn failed(who: &str, e: &PasskeyError) -> ExitCode {
    eprintln!("{who}: {e}");
    ExitCode::from(1)
}

#[cfg(feature = "hid")]
async fn with_device(
    graph: &GraphClient,
    user: &latchkey_types::ObjectId,
    name: Option<&str>,
) -> Result<latchkey_passkey::registration::Provisioned, PasskeyError> {
    use latchkey_passkey::{Authenticator as _, HidAuthenticator, HidOptions, Pin};
    let opened = tokio::task::spawn_blocking(|| {
        let mut key = HidAuthenticator::open(&HidOptions::default())?;
        let info = key.info()?;
        Ok::<_, PasskeyError>((key, info))
    })
    .await
    .map_err(|e| PasskeyError::Device(e.to_string()))??;
    let (key, info) = opened;
    eprintln!("security key: {}", key.product());
    // A PIN is asked for only when the key has one and no built-in verification to use instead.
    let pin = if info.client_pin == Some(true) && info.built_in_uv != Some(true) {
        let typed =
            tokio::task::spawn_blocking(|| rpassword::prompt_password("Security key PIN: "))
                .await
                .map_err(|e| PasskeyError::Device(e.to_string()))?
                .map_err(|e| PasskeyError::Device(format!("cannot read the PIN: {e}")))?;
        Some(Pin::new(typed)?)
    } else {
        None
    };
    let clock = latchkey_graph::Clock::system();
    latchkey_passkey::provision(graph, user, name, pin, Box::new(key), &clock).await
}

#[cfg(not(feature = "hid"))]
async fn with_device(
    _graph: &GraphClient,
    _user: &latchkey_types::ObjectId,
    _name: Option<&str>,
) -> Result<latchkey_passkey::registration::Provisioned, PasskeyError> {
    Err(PasskeyError::Device(
        "this latchkey was built without USB security-key support: build it with \
         `cargo build --release -p latchkey --features hid` (needs libudev-dev and pkg-config)"
            .into(),
    ))
}
