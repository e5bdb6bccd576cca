//! `latchkey check`: the connection test.
//!
//! What the app was granted is read from its own access token (`roles` = application permissions,
//! `wids` = directory role template ids of its service principal), which needs no permission of its
//! own; each capability with a cheap read is then confirmed by a real call against a random object
//! id: `404` proves the permission was accepted, `403` that it was not.

mod render;
mod requirements;
pub use render::render;
use requirements::{Probe, REQUIREMENTS, Requirement};
use std::path::Path;
use std::process::ExitCode;

use latchkey_graph::{GraphClient, GraphError};
use latchkey_types::ObjectId;
use serde::Serialize;

use crate::config::Settings;

/// Directory role template ids Latchkey cares about, with their display names.
pub const ROLE_NAMES: &[(&str, &str)] = &[
    (
        "62e90394-69f5-4237-9190-012177145e10",
        "Global Administrator",
    ),
    (
        "7be44c8a-adaf-4e2a-84d6-ab2649e08a13",
        "Privileged Authentication Administrator",
    ),
    (
        "e8611ab8-c189-46e8-94e1-60213ab1f814",
        "Privileged Role Administrator",
    ),
    ("fe930be7-5e62-47db-91af-98c3a49a38b1", "User Administrator"),
    (
        "c4e39bd9-1100-46d3-8c65-fb160da0071f",
        "Authentication Administrator",
    ),
    (
        "729827e3-9c14-49f7-bb1b-9608f156bbb8",
        "Helpdesk Administrator",
    ),
    (
        "966707d0-3269-4727-9be2-8c3a10f19b9d",
        "Password Administrator",
    ),
    (
        "fdd7a751-b60b-444a-984c-02652fe8fa1c",
        "Groups Administrator",
    ),
    (
        "194ae4cb-b126-40b2-bd5b-6091b380977d",
        "Security Administrator",
    ),
    ("f2ef992c-3afb-46b9-b7cf-a126ee74c451", "Global Reader"),
    ("88d8e3e3-8f55-4a1e-953a-9b9898b8876b", "Directory Readers"),
];

/// `wids` values that are not directory roles: the default user role, and the id Entra puts in
/// every app-only token. Shown nowhere, so the report lists only real role assignments.
const NOT_ROLES: &[&str] = &[
    "b79fbf4d-3ef9-4689-8143-76b194e85509",
    "0997a1d0-0d1d-4acb-b408-d5ca73121e90",
];

/// The name of a directory role template, or the id itself when it is not one we know.
pub fn role_name(template_id: &str) -> &str {
    ROLE_NAMES
        .iter()
        .find(|(id, _)| id.eq_ignore_ascii_case(template_id))
        .map_or(template_id, |(_, name)| name)
}

/// One row of the report.
#[derive(Debug, Serialize)]
pub struct Row {
    pub id: &'static str,
    pub operation: &'static str,
    pub required: bool,
    pub needed_permissions: Vec<&'static str>,
    pub needed_roles: Vec<&'static str>,
    pub granted_permissions: Vec<String>,
    pub granted_roles: Vec<String>,
    pub probe: String,
    /// `ok`, `missing`, or `warn` (granted but the confirming call failed for another reason).
    pub status: &'static str,
    pub fix: Option<String>,
}

/// The whole report (also the `--json` schema).
#[derive(Debug, Serialize)]
pub struct Report {
    pub tenant: String,
    pub client_id: String,
    pub credential: &'static str,
    pub token: Result<TokenSummary, String>,
    pub checks: Vec<Row>,
    /// Graph and token endpoint requests this check made.
    pub requests: u64,
    /// The SIEM outputs of `[forwarding]`, each reached without sending an event.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub forwarding: Vec<crate::forwarding::ProbeRow>,
    pub ok: bool,
}

#[derive(Debug, Serialize)]
pub struct TokenSummary {
    pub application_permissions: Vec<String>,
    pub directory_roles: Vec<String>,
}

pub async fn run(config: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(config)?;
    let client = crate::entra::client(&settings)?;
    let mut report = build_report(&settings, &client).await;
    report.forwarding = crate::forwarding::probe(&settings).await?;
    report.ok = report.ok && report.forwarding.iter().all(|r| r.ok);
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Acquires a token, reads its grants, probes each capability.
pub async fn build_report(settings: &Settings, client: &GraphClient) -> Report {
    let mut report = Report {
        tenant: settings.entra.tenant_id.clone(),
        client_id: settings.entra.client_id.clone(),
        credential: crate::entra::credential_kind(settings),
        token: Err(String::new()),
        checks: Vec::new(),
        requests: 0,
        forwarding: Vec::new(),
        ok: false,
    };
    let claims = match client.token_claims().await {
        Ok(c) => c,
        Err(e) => {
            report.token = Err(format!("{e}\n  fix: {}", token_fix(&e, settings)));
            report.requests = client.request_count();
            return report;
        }
    };
    report.token = Ok(TokenSummary {
        application_permissions: claims.roles.clone(),
        directory_roles: claims
            .wids
            .iter()
            .filter(|w| !NOT_ROLES.iter().any(|n| n.eq_ignore_ascii_case(w)))
            .map(|w| role_name(w).to_string())
            .collect(),
    });
    for req in REQUIREMENTS {
        let required = req.feature.is_none_or(|f| f(settings));
        let granted_permissions: Vec<String> = claims
            .roles
            .iter()
            .filter(|r| req.permissions.iter().any(|p| p.eq_ignore_ascii_case(r)))
            .cloned()
            .collect();
        let granted_roles: Vec<String> = claims
            .wids
            .iter()
            .filter(|w| req.roles.iter().any(|r| r.eq_ignore_ascii_case(w)))
            .map(|w| role_name(w).to_string())
            .collect();
        let has_permission = !granted_permissions.is_empty();
        let has_role = req.roles.is_empty() || !granted_roles.is_empty();
        // Probe only what the token says is granted: a probe of a missing permission only adds a
        // request that is bound to fail.
        let probe = if has_permission {
            probe(client, req.probe).await
        } else {
            ProbeResult::Skipped
        };
        let status = match (has_permission && has_role, &probe) {
            (false, _) | (true, ProbeResult::Denied | ProbeResult::Misconfigured(_)) => "missing",
            (true, ProbeResult::Failed(_)) => "warn",
            _ => "ok",
        };
        let fix = (status != "ok").then(|| {
            fix_for(
                req,
                has_permission,
                has_role,
                &probe,
                &settings.entra.client_id,
            )
        });
        report.checks.push(Row {
            id: req.id,
            operation: req.operation,
            required,
            needed_permissions: req.permissions.to_vec(),
            needed_roles: req.roles.iter().map(|r| role_name(r)).collect(),
            granted_permissions,
            granted_roles,
            probe: probe.describe(),
            status,
            fix,
        });
    }
    report.requests = client.request_count();
    report.ok = report
        .checks
        .iter()
        .all(|r| !r.required || r.status != "missing");
    report
}

enum ProbeResult {
    Skipped,
    NotApplicable,
    Ok,
    Denied,
    Failed(String),
    /// The call worked, and shows a tenant setting that stops the feature (what to change).
    Misconfigured(String),
}

impl ProbeResult {
    fn describe(&self) -> String {
        match self {
            ProbeResult::Skipped => "not tried (not granted)".into(),
            ProbeResult::NotApplicable => "no read-only probe".into(),
            ProbeResult::Ok => "confirmed".into(),
            ProbeResult::Denied => "refused (403)".into(),
            ProbeResult::Failed(e) => format!("failed: {e}"),
            ProbeResult::Misconfigured(what) => format!("tenant setting: {what}"),
        }
    }
}

async fn probe(client: &GraphClient, probe: Probe) -> ProbeResult {
    // A random id exists nowhere: Graph checks the permission first, then answers 404.
    let nobody = match ObjectId::random() {
        Ok(id) => id,
        Err(e) => return ProbeResult::Failed(e.to_string()),
    };
    let outcome: Result<(), GraphError> = match probe {
        Probe::None => return ProbeResult::NotApplicable,
        Probe::FindUser => client
            .find_user("latchkey-connection-check@example.invalid")
            .await
            .map(|_| ()),
        Probe::Memberships => client.transitive_memberships(&nobody).await.map(|_| ()),
        Probe::AuthMethods => client.list_auth_methods(&nobody).await.map(|_| ()),
        Probe::RiskyUser => client.get_risky_user(&nobody).await.map(|_| ()),
        Probe::Domains => client.list_domains().await.map(|_| ()),
        Probe::Organization => client.organization().await.map(|_| ()),
        Probe::PasswordRules => client.password_rule_settings().await.map(|_| ()),
        Probe::Fido2Policy => return fido2_policy(client).await,
        Probe::DirectoryRolesDelta => client
            .groups_delta(
                &latchkey_graph::DeltaCursor::Start,
                latchkey_graph::DeltaCollection::DirectoryRoles,
            )
            .await
            .map(|_| ()),
    };
    match outcome {
        Ok(()) => ProbeResult::Ok,
        Err(e) if e.is_not_found() || matches!(e, GraphError::NotFound { .. }) => ProbeResult::Ok,
        Err(e) if e.is_forbidden() => ProbeResult::Denied,
        Err(e) => ProbeResult::Failed(e.to_string()),
    }
}

/// Reads the tenant's passkey (FIDO2) method policy: Microsoft's provisioning API works only with
/// the method on and "Allow self-service set up" on (a documented known issue).
async fn fido2_policy(client: &GraphClient) -> ProbeResult {
    const WHERE: &str = "Entra admin center > Protection > Authentication methods > Policies > \
                         Passkey (FIDO2)";
    match client.fido2_configuration().await {
        Ok(c) if !c.enabled => ProbeResult::Misconfigured(format!(
            "the Passkey (FIDO2) method is off: {WHERE} > Enable and target (Enable = on)"
        )),
        Ok(c) if !c.self_service_registration_allowed => ProbeResult::Misconfigured(format!(
            "\"Allow self-service set up\" is off, and Microsoft's passkey provisioning API refuses \
             every request then: {WHERE} > Configure > Allow self-service set up = Yes"
        )),
        Ok(_) => ProbeResult::Ok,
        Err(e) if e.is_forbidden() => ProbeResult::Denied,
        Err(e) => ProbeResult::Failed(e.to_string()),
    }
}

fn fix_for(
    req: &Requirement,
    has_permission: bool,
    has_role: bool,
    probe: &ProbeResult,
    client_id: &str,
) -> String {
    let mut steps = Vec::new();
    if !has_permission || matches!(probe, ProbeResult::Denied) {
        steps.push(format!(
            "Entra admin center > App registrations > app {client_id} > API permissions > Add a permission > \
             Microsoft Graph > Application permissions > {}, then \"Grant admin consent\"",
            req.permissions[0]
        ));
    }
    if !has_role {
        steps.push(format!(
            "Entra admin center > Roles and administrators > {} > Add assignments > select the app's \
             enterprise application (service principal)",
            role_name(req.roles[0])
        ));
    }
    if let ProbeResult::Failed(e) = probe {
        steps.push(format!("the permission is granted but the confirming call failed ({e}); run again with [graph] http_debug = true"));
    }
    if let ProbeResult::Misconfigured(fix) = probe {
        steps.push(fix.clone());
    }
    format!("{} (needed because {})", steps.join("; and "), req.why)
}

fn token_fix(e: &GraphError, settings: &Settings) -> String {
    let GraphError::Token(t) = e.root() else {
        return format!(
            "could not reach the token endpoint: check `entra.authority_host` ({}) and the network",
            settings
                .entra
                .authority_host
                .as_deref()
                .unwrap_or(latchkey_graph::DEFAULT_AUTHORITY_HOST)
        );
    };
    let client_id = &settings.entra.client_id;
    if t.has_code(7000215) || t.has_code(7000222) {
        format!(
            "the client secret of app {client_id} is wrong or expired: create a new one (App registrations > Certificates & secrets) and put it in `entra.client_secret_file`"
        )
    } else if t.has_code(700016) {
        format!(
            "no app {client_id} in tenant {}: check `entra.client_id` and `entra.tenant_id`",
            settings.entra.tenant_id
        )
    } else if t.has_code(90002) {
        format!(
            "tenant {} does not exist: check `entra.tenant_id`",
            settings.entra.tenant_id
        )
    } else if t.has_code(700027) || t.has_code(700024) {
        format!(
            "upload the certificate in `entra.certificate_file` to app {client_id} (App registrations > Certificates & secrets > Certificates) and check the key matches it"
        )
    } else if t.has_code(7000218) {
        "configure a credential: `entra.client_secret_file` or `entra.certificate_file` + `entra.private_key_file`".into()
    } else {
        format!(
            "the token endpoint refused the app's credential ({}); see the AADSTS code in Microsoft's error reference",
            t.error
        )
    }
}
