//! AD FS endpoints that users of federated domains need to finish a password change, probed over
//! HTTPS (rustls; the system trust store or `[federation] ca_file`) from where the gateway runs.
//!
//! Each endpoint is reported `enabled` (AD FS answered: 2xx, 3xx, 400, 401, 405), `disabled`
//! (404 or 503, which is what AD FS answers for a disabled endpoint) or `unreachable` (DNS,
//! TCP, TLS or timeout). A disabled or unreachable password-change page fails the check: users
//! whose password expired cannot finish a change there; the others warn.

use std::time::Duration;

use latchkey_ad::ldap::{TrustSource, client_config};

use super::{Check, Status};

/// The endpoints, and whether users cannot do without them.
pub const ENDPOINTS: [(&str, bool); 3] = [
    ("/adfs/portal/updatepassword/", true),
    ("/adfs/.well-known/openid-configuration", false),
    ("/adfs/ls/", false),
];

/// What one probe found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    Enabled(u16),
    Disabled(u16),
    Unreachable(String),
}

impl Probe {
    pub fn label(&self) -> String {
        match self {
            Probe::Enabled(s) => format!("enabled (HTTP {s})"),
            Probe::Disabled(s) => format!("disabled (HTTP {s})"),
            Probe::Unreachable(why) => format!("unreachable ({why})"),
        }
    }
}

/// `sts.contoso.com` or `https://sts.contoso.com[:port]` -> `https://host[:port]`.
fn base_url(host: &str) -> Result<String, String> {
    let h = host.trim().trim_end_matches('/');
    if let Some(rest) = h.strip_prefix("http://") {
        return Err(format!("{rest}: AD FS is probed over https only"));
    }
    let h = h.strip_prefix("https://").unwrap_or(h);
    if h.is_empty() || h.contains('/') {
        return Err(format!("{host:?} is not a host name"));
    }
    Ok(format!("https://{h}"))
}

/// Probes every endpoint of every host.
pub async fn probe(
    hosts: &[String],
    trust: &TrustSource,
) -> Result<Vec<(String, Vec<(String, Probe)>)>, String> {
    let tls = client_config(trust)
        .map_err(|e| e.to_string())?
        .ok_or("AD FS endpoints are always verified")?;
    let http = reqwest::Client::builder()
        .use_preconfigured_tls((*tls).clone())
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(15))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))?;
    let mut out = Vec::new();
    for host in hosts {
        let base = base_url(host)?;
        let mut results = Vec::new();
        for (path, _) in ENDPOINTS {
            let url = format!("{base}{path}");
            let p = match http.get(&url).send().await {
                Ok(r) => match r.status().as_u16() {
                    s @ (404 | 503) => Probe::Disabled(s),
                    s @ (200..=399 | 400 | 401 | 405) => Probe::Enabled(s),
                    s => Probe::Disabled(s),
                },
                Err(e) => Probe::Unreachable(reason(&e)),
            };
            results.push((url, p));
        }
        out.push((base, results));
    }
    Ok(out)
}

fn reason(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s = format!("{s}: {inner}");
        src = inner.source();
    }
    s.chars().take(200).collect()
}

/// The federated domains of the tenant and their AD FS host (from `passiveSignInUri`), read with
/// the app's credential: `GET /domains` (authenticationType Federated), then
/// `GET /domains/{id}/federationConfiguration` for each (both `Domain.Read.All`).
pub async fn federated_hosts(
    entra: &super::entra::EntraSettings,
) -> Result<Vec<(String, String)>, String> {
    let graph = entra.client().map_err(|e| e.to_string())?;
    let domains = graph.list_domains().await.map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for d in domains
        .iter()
        .filter(|d| d.authentication_type == latchkey_graph::DomainAuthenticationType::Federated)
    {
        let configs = graph
            .federation_configuration(&d.id)
            .await
            .map_err(|e| format!("{}: {e}", d.id))?;
        for f in configs {
            let host = f
                .passive_sign_in_uri
                .as_deref()
                .and_then(|u| u.strip_prefix("https://"))
                .and_then(|rest| rest.split('/').next())
                .filter(|h| !h.is_empty());
            if let Some(h) = host {
                out.push((d.id.clone(), h.to_string()));
            }
        }
    }
    Ok(out)
}

/// The `adfs_endpoints` check: the configured hosts and, when `[entra]` is configured, the hosts
/// of the tenant's federated domains (`from_graph`), probed now.
pub async fn check(
    configured: &[String],
    from_graph: Option<Result<Vec<(String, String)>, String>>,
    trust: &TrustSource,
) -> Check {
    let mut c = Check::new(
        "adfs_endpoints",
        "AD FS endpoints for federated domains",
        Status::Pass,
    );
    let mut hosts: Vec<String> = configured.to_vec();
    let mut graph_warning = false;
    let graph_read = matches!(from_graph, Some(Ok(_)));
    match from_graph {
        None => {}
        Some(Ok(found)) => {
            if found.is_empty() {
                c.evidence
                    .push("Entra: no federated domains (all domains are managed)".into());
            }
            for (domain, host) in found {
                c.evidence
                    .push(format!("Entra: {domain} is federated with {host}"));
                if !hosts
                    .iter()
                    .any(|h| base_url(h).ok() == base_url(&host).ok())
                {
                    hosts.push(host);
                }
            }
        }
        Some(Err(why)) => {
            graph_warning = true;
            c.evidence.push(format!(
                "cannot read the federated domains from Entra (needs Domain.Read.All): {why}"
            ));
        }
    }
    if hosts.is_empty() {
        if graph_warning {
            c.status = Status::Warn;
            c.fix = Some(
                "grant the app Domain.Read.All, or list the AD FS hosts in [federation] adfs"
                    .into(),
            );
            return c;
        }
        if graph_read {
            // Entra says every domain is managed: no AD FS is involved in a password change.
            return c;
        }
        c.status = Status::Skip;
        c.evidence.push(
            "not checked: no AD FS hosts configured ([federation] adfs = [\"sts.contoso.com\"]); \
             managed (non-federated) domains need none"
                .into(),
        );
        return c;
    }
    if graph_warning {
        c.status = Status::Warn;
    }
    let probed = match probe(&hosts, trust).await {
        Ok(p) => p,
        Err(why) => {
            c.status = Status::Fail;
            c.evidence.push(format!("cannot probe: {why}"));
            c.fix = Some("fix [federation] in the configuration".into());
            return c;
        }
    };
    let mut fixes = Vec::new();
    for (_, results) in &probed {
        for ((url, p), (path, required)) in results.iter().zip(ENDPOINTS) {
            c.evidence.push(format!("{url}: {}", p.label()));
            let bad = !matches!(p, Probe::Enabled(_));
            if bad && required {
                c.status = Status::Fail;
            } else if bad && c.status == Status::Pass {
                c.status = Status::Warn;
            }
            match p {
                Probe::Disabled(_) => fixes.push(format!(
                    "Enable-AdfsEndpoint -TargetAddressPath \"{path}\"; Set-AdfsEndpoint \
                     -TargetAddressPath \"{path}\" -Proxy $true (then restart the AD FS service)"
                )),
                Probe::Unreachable(_) => fixes.push(format!(
                    "make {url} reachable from this host (DNS, firewall, certificate trusted: \
                     [federation] ca_file)"
                )),
                Probe::Enabled(_) => {}
            }
        }
    }
    if !fixes.is_empty() {
        fixes.dedup();
        c.fix = Some(fixes.join("; "));
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_become_https_base_urls() {
        assert_eq!(
            base_url("sts.contoso.com").unwrap(),
            "https://sts.contoso.com"
        );
        assert_eq!(
            base_url("https://127.0.0.1:8443/").unwrap(),
            "https://127.0.0.1:8443"
        );
        assert!(base_url("http://sts.contoso.com").is_err());
        assert!(base_url("sts.contoso.com/adfs").is_err());
    }
}
