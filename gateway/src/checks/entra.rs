//! `entra_writeback`: what Entra says about password writeback, when `[entra]` is configured
//! (the portal's table: tenant, app, secret or certificate, hosts).
//!
//! - `GET /directory/onPremisesSynchronization` → `features.passwordWritebackEnabled`. Microsoft
//!   documents this read as delegated-only (`OnPremDirectorySynchronization.Read.All`); with the
//!   app's own credential Graph answers 403, and the check says where to look instead (WARN).
//! - The synced users: `GET /users?$filter=onPremisesSyncEnabled eq true&$count=true&$select=id`
//!   with `ConsistencyLevel: eventual` (an advanced query), counted page by page.

use std::path::{Path, PathBuf};

use latchkey_graph::{ClientCertificate, Credential, GraphClient, GraphConfig, GraphError};
use latchkey_types::Secret;

use super::{Check, Status};

/// The `[entra]` keys the gateway uses (others in the portal's table are ignored).
#[derive(Clone, Debug, Default)]
pub struct EntraSettings {
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: Option<Secret<String>>,
    pub certificate: Option<(PathBuf, PathBuf)>,
    pub authority_host: Option<String>,
    pub graph_base_url: Option<String>,
}

impl EntraSettings {
    /// From the `[entra]` table; relative file paths are resolved against `dir`.
    pub fn from_table(t: &toml::Table, dir: &Path) -> Result<EntraSettings, String> {
        let s = |k: &str| t.get(k).and_then(|v| v.as_str()).map(str::to_string);
        let rel = |p: String| {
            let p = PathBuf::from(p);
            if p.is_relative() { dir.join(p) } else { p }
        };
        let tenant_id = s("tenant_id").ok_or("entra.tenant_id is required")?;
        let client_id = s("client_id").ok_or("entra.client_id is required")?;
        let client_secret = match (s("client_secret"), s("client_secret_file")) {
            (_, Some(f)) => {
                let f = rel(f);
                let text = std::fs::read_to_string(&f)
                    .map_err(|e| format!("entra.client_secret_file {}: {e}", f.display()))?;
                Some(Secret::new(text.trim_end_matches(['\r', '\n']).to_string()))
            }
            (Some(v), None) => Some(Secret::new(v)),
            (None, None) => None,
        };
        let certificate = match (s("certificate_file"), s("private_key_file")) {
            (Some(c), Some(k)) => Some((rel(c), rel(k))),
            (None, None) => None,
            _ => {
                return Err("entra.certificate_file and entra.private_key_file go together".into());
            }
        };
        if client_secret.is_none() && certificate.is_none() {
            return Err(
                "[entra] needs client_secret(_file) or certificate_file + private_key_file".into(),
            );
        }
        Ok(EntraSettings {
            tenant_id,
            client_id,
            client_secret,
            certificate,
            authority_host: s("authority_host"),
            graph_base_url: s("graph_base_url"),
        })
    }

    pub(crate) fn client(&self) -> Result<GraphClient, GraphError> {
        let credential = match (&self.certificate, &self.client_secret) {
            (Some((cert, key)), _) => {
                Credential::Certificate(ClientCertificate::from_pem_files(cert, key)?)
            }
            (None, Some(secret)) => Credential::ClientSecret(secret.clone()),
            (None, None) => return Err(GraphError::Config("no app credential".into())),
        };
        let mut cfg = GraphConfig::new(self.tenant_id.trim(), self.client_id.trim(), credential);
        if let Some(h) = &self.authority_host {
            cfg.authority_host = h.trim_end_matches('/').to_string();
        }
        if let Some(u) = &self.graph_base_url {
            cfg.graph_base_url = u.trim_end_matches('/').to_string();
        }
        cfg.retry.max_attempts = 2;
        GraphClient::new(cfg)
    }
}

/// The check, against the tenant now.
pub async fn check(entra: Option<&Result<EntraSettings, String>>) -> Check {
    let mut c = Check::new(
        "entra_writeback",
        "Password writeback enabled in Entra",
        Status::Pass,
    );
    let settings = match entra {
        None => {
            c.status = Status::Skip;
            c.evidence
                .push("not checked: no [entra] table in the configuration".into());
            return c;
        }
        Some(Err(why)) => {
            c.status = Status::Fail;
            c.evidence.push(format!("cannot check: {why}"));
            c.fix = Some("fix the [entra] table (as in the portal's configuration)".into());
            return c;
        }
        Some(Ok(s)) => s,
    };
    let graph = match settings.client() {
        Ok(g) => g,
        Err(e) => {
            c.status = Status::Fail;
            c.evidence
                .push(format!("cannot build the Graph client: {e}"));
            return c;
        }
    };
    match graph.on_premises_sync().await {
        Ok(Some(sync)) if sync.features.password_writeback_enabled => c
            .evidence
            .push("onPremisesSynchronization: passwordWritebackEnabled = true".into()),
        Ok(Some(_)) => {
            c.status = Status::Fail;
            c.evidence
                .push("onPremisesSynchronization: passwordWritebackEnabled = false".into());
            c.fix = Some(
                "turn on password writeback: Entra Connect > Configure > Customize \
                 synchronization options > Optional features > Password writeback (or Cloud \
                 Sync: the configuration's \"Enable password writeback\"), then Entra admin \
                 center > Protection > Password reset > On-premises integration"
                    .into(),
            );
        }
        Ok(None) => {
            c.status = Status::Fail;
            c.evidence.push(
                "the tenant has no on-premises synchronization object: nothing is synced from AD"
                    .into(),
            );
            c.fix = Some("install and configure Entra Connect or Cloud Sync first".into());
        }
        Err(e) if e.status() == Some(403) => {
            c.status = Status::Warn;
            c.evidence.push(format!(
                "onPremisesSynchronization not readable with the app's credential (HTTP {}): \
                 Microsoft grants this read only delegated (OnPremDirectorySynchronization.Read.All)",
                e.status().unwrap_or(403)
            ));
            c.fix = Some(
                "confirm in the Entra admin center > Protection > Password reset > On-premises \
                 integration that \"Enable password write back for synced users\" is on"
                    .into(),
            );
        }
        Err(e) => {
            c.status = Status::Fail;
            c.evidence
                .push(format!("cannot read onPremisesSynchronization: {e}"));
        }
    }
    let synced = graph
        .list_raw(
            "users?$filter=onPremisesSyncEnabled eq true&$count=true&$select=id&$top=999",
            &[("ConsistencyLevel", "eventual")],
        )
        .await;
    match synced {
        Ok(users) if users.is_empty() => {
            if c.status == Status::Pass {
                c.status = Status::Warn;
            }
            c.evidence
                .push("no synced users in the tenant (onPremisesSyncEnabled eq true)".into());
        }
        Ok(users) => c
            .evidence
            .push(format!("{} synced users in the tenant", users.len())),
        Err(e) => {
            if c.status == Status::Pass {
                c.status = Status::Warn;
            }
            c.evidence.push(format!(
                "cannot count the synced users (needs User.Read.All): {e}"
            ));
        }
    }
    c
}
