//! `latchkey gateway register NAME | list | allow NAME --allow KIND | revoke NAME --config FILE`:
//! run on the portal host
//! (it opens the portal's store with its key). `register` prints the credential once; only its
//! hash is kept, so a lost credential is replaced by revoking and registering again.

use std::path::Path;
use std::process::ExitCode;

use latchkey_store::{Outcome, Store};

use crate::cli_store::{now, open};

async fn audit(store: &dyn Store, event_type: &str, name: &str) -> anyhow::Result<()> {
    audit_details(store, event_type, serde_json::json!({ "gateway": name })).await
}

async fn audit_details(
    store: &dyn Store,
    event_type: &str,
    details: serde_json::Value,
) -> anyhow::Result<()> {
    crate::cli_store::audit(store, event_type, None, Outcome::Success, None, details).await
}

/// Registers a gateway and prints its credential (once); it may unlock, and reset only when
/// `allow_reset` (`--allow reset`).
pub async fn register(config: &Path, name: &str, allow_reset: bool) -> anyhow::Result<ExitCode> {
    let store = open(config).await?;
    let (g, text) = super::credential::register(store.as_ref(), name, allow_reset, now()).await?;
    audit(store.as_ref(), "gateway.registered", &g.name).await?;
    eprintln!(
        "Registered gateway {:?}, allowed: {}. Its credential is shown once; put it in the\n\
         gateway host's credential file (chmod 600) named by [portal] credential_file:",
        g.name,
        g.allowed_kinds.join(", ")
    );
    println!("{}", text.expose());
    Ok(ExitCode::SUCCESS)
}

/// Lists gateways: name, last poll, what they may do (allowed) and declared (can), revoked.
pub async fn list(config: &Path) -> anyhow::Result<ExitCode> {
    let store = open(config).await?;
    let now = now();
    let rows = store.gateways().await?;
    if rows.is_empty() {
        println!("no gateways registered (latchkey gateway register NAME)");
    }
    for g in rows {
        let state = if g.revoked_at.is_some() {
            "revoked"
        } else if g.is_connected(now, super::CONNECTED_WINDOW) {
            "connected"
        } else {
            "not connected"
        };
        let seen = g.last_seen_at.map_or_else(
            || "never".to_string(),
            |t| format!("{} s ago", (now - t).whole_seconds()),
        );
        println!(
            "{:<24} {:<14} last poll: {:<12} allowed: {:<14} can: {}",
            g.name,
            state,
            seen,
            g.allowed_kinds.join(", "),
            if g.capabilities.is_empty() {
                "-".to_string()
            } else {
                g.capabilities.join(", ")
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Revokes a gateway's credential (its polls are refused from now on).
pub async fn revoke(config: &Path, name: &str) -> anyhow::Result<ExitCode> {
    let store = open(config).await?;
    if store.revoke_gateway(name, now()).await? {
        audit(store.as_ref(), "gateway.revoked", name).await?;
        println!("revoked gateway {name:?}");
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("no live gateway named {name:?}");
        Ok(ExitCode::from(1))
    }
}

/// Sets what the live gateway `name` may do, keeping its credential: unlock always, reset only
/// when `allow_reset` (`--allow unlock` takes reset away, `--allow reset` grants it). Audited
/// (`gateway.kinds_changed`, with the kinds before and after) before it reports success.
pub async fn allow(config: &Path, name: &str, allow_reset: bool) -> anyhow::Result<ExitCode> {
    let store = open(config).await?;
    let Some(change) = super::kinds::set(store.as_ref(), name, allow_reset).await? else {
        eprintln!("no live gateway named {name:?} (a revoked gateway cannot be changed)");
        return Ok(ExitCode::from(1));
    };
    let name = name.trim();
    let audited = audit_details(
        store.as_ref(),
        "gateway.kinds_changed",
        serde_json::json!({
            "gateway": name,
            "before": change.before,
            "after": change.after,
        }),
    )
    .await;
    if let Err(e) = audited {
        if let Err(undo) = change.undo(store.as_ref(), name).await {
            eprintln!("could not undo the change either: {undo}");
        }
        return Err(e);
    }
    println!(
        "gateway {name:?} may now: {} (was: {})",
        change.after.join(", "),
        change.before.join(", ")
    );
    if change.grants_reset() {
        eprintln!(
            "Reset granted: reset jobs carry users' new passwords to that gateway's host. Its \
             credential is unchanged; the next poll already gets reset jobs."
        );
    }
    Ok(ExitCode::SUCCESS)
}
