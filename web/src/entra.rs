//! Builds the Graph client from the `[entra]` and `[graph]` tables.

use std::time::Duration;

use latchkey_graph::{
    AssertionAlgorithm, ClientCertificate, Credential as GraphCredential, GraphClient, GraphConfig,
};

use crate::config::{self, Credential, Settings};

/// Which kind of app credential the configuration uses, for reports.
pub fn credential_kind(settings: &Settings) -> &'static str {
    if settings.entra.certificate_file.is_some() {
        "certificate"
    } else {
        "client secret"
    }
}

/// The app-only Graph client for this configuration.
pub fn client(settings: &Settings) -> anyhow::Result<GraphClient> {
    GraphClient::new(graph_config(settings)?).map_err(|e| anyhow::anyhow!("[entra]: {e}"))
}

/// The connection settings (tenant, app credential, hosts) shared by the Graph client and the
/// portal's OpenID Connect sign-in.
pub fn graph_config(settings: &Settings) -> anyhow::Result<GraphConfig> {
    let credential = match settings.credential()? {
        Credential::Secret(secret) => GraphCredential::ClientSecret(secret),
        Credential::Certificate {
            certificate_pem,
            private_key_pem,
        } => {
            let algorithm = match settings.graph.assertion_algorithm {
                config::AssertionAlgorithm::Ps256 => AssertionAlgorithm::Ps256,
                config::AssertionAlgorithm::Rs256 => AssertionAlgorithm::Rs256,
            };
            let cert = ClientCertificate::from_pem(&certificate_pem, private_key_pem.expose())
                .map_err(|e| {
                    anyhow::anyhow!("keys `entra.certificate_file`/`entra.private_key_file`: {e}")
                })?;
            GraphCredential::Certificate(cert.with_algorithm(algorithm))
        }
    };
    let e = &settings.entra;
    let mut cfg = GraphConfig::new(e.tenant_id.trim(), e.client_id.trim(), credential);
    if let Some(host) = &e.authority_host {
        cfg.authority_host = host.trim_end_matches('/').to_string();
    }
    if let Some(url) = &e.graph_base_url {
        cfg.graph_base_url = url.trim_end_matches('/').to_string();
    }
    cfg.http_debug = settings.graph.http_debug;
    cfg.timeouts.request = Duration::from_secs(settings.graph.timeout_seconds.max(1));
    cfg.retry.max_attempts = settings.graph.max_attempts.max(1);
    Ok(cfg)
}
