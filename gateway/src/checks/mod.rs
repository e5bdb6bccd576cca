//! The writeback preflight: gather the domain's facts over LDAP once ([`gather`]), then judge
//! each requirement from them. Each check yields a status, the evidence it is based on (which
//! ACE, on which object) and the fix.

pub mod adfs;
pub mod certificate;
pub mod entra;
pub mod gather;
pub mod policy;
pub mod protected;
pub mod rights;

use latchkey_ad::Ace;
use serde::Serialize;

use crate::config::CheckConfig;
pub use gather::{GatherError, Snapshot};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    Warn,
    Skip,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Warn => "WARN",
            Status::Skip => "SKIP",
        }
    }
}

/// One requirement's verdict (an item of the JSON `checks` array).
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    /// Stable identifier (see the README's list).
    pub id: &'static str,
    pub title: String,
    pub status: Status,
    /// Facts the status rests on, one per line.
    pub evidence: Vec<String>,
    /// What to do, in words; `None` when nothing is to be done.
    pub fix: Option<String>,
    /// The exact grants that would fix it (the fix script and `--apply-fix` use them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub grants: Vec<Grant>,
}

impl Check {
    pub fn new(id: &'static str, title: &str, status: Status) -> Check {
        Check {
            id,
            title: title.to_string(),
            status,
            evidence: Vec::new(),
            fix: None,
            grants: Vec::new(),
        }
    }
}

/// One missing right, as a grant on one object.
#[derive(Clone, Debug, Serialize)]
pub struct Grant {
    /// The object the ACE goes on.
    pub object_dn: String,
    /// The ACE in SDDL (trustee = the connector's SID).
    pub ace_sddl: String,
    /// The dsacls command that adds it.
    pub dsacls: String,
    /// Why, in one line (the script's comment).
    pub comment: String,
    #[serde(skip)]
    pub ace: Option<Ace>,
}

/// All checks of one domain.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub dc: String,
    pub domain: String,
    pub base_dn: String,
    pub connector: Option<ConnectorInfo>,
    pub checks: Vec<Check>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ConnectorInfo {
    pub sam_account_name: String,
    pub dn: String,
    pub sid: String,
    /// How it was found: `configured` or `discovered`.
    pub source: String,
    pub group_count: usize,
}

impl Report {
    /// 0 when nothing failed, 1 when a check failed.
    pub fn exit_code(&self) -> u8 {
        u8::from(self.checks.iter().any(|c| c.status == Status::Fail))
    }

    pub fn check(&self, id: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.id == id)
    }
}

/// Connects, gathers and judges. An error means the domain could not be checked (exit code 2).
pub async fn run(config: &CheckConfig) -> Result<Report, GatherError> {
    let snapshot = gather::gather(config).await?;
    let mut report = judge(&snapshot, config);
    // The AD FS probes are I/O too: they replace the placeholder judge() puts in their slot.
    let from_graph = match &config.entra {
        Some(Ok(entra)) => Some(adfs::federated_hosts(entra).await),
        _ => None,
    };
    let adfs = adfs::check(&config.adfs_hosts, from_graph, &config.adfs_trust).await;
    if let Some(slot) = report.checks.iter_mut().find(|c| c.id == "adfs_endpoints") {
        *slot = adfs;
    }
    let entra = entra::check(config.entra.as_ref()).await;
    if let Some(slot) = report.checks.iter_mut().find(|c| c.id == "entra_writeback") {
        *slot = entra;
    }
    Ok(report)
}

/// The checks, in the documented order, from gathered facts (no I/O).
pub fn judge(s: &Snapshot, config: &CheckConfig) -> Report {
    let mut checks = vec![s.connector_check()];
    checks.extend(rights::user_rights(s));
    checks.push(rights::unexpire_password(s));
    checks.push(protected::protected_accounts(s));
    checks.extend(policy::checks(s));
    checks.push(certificate::ldaps_certificate(s));
    checks.push(adfs_endpoints(config));
    checks.push(entra_writeback(config));
    Report {
        schema_version: 1,
        dc: s.url.clone(),
        domain: s.domain_dn.clone(),
        base_dn: s.base_dn.clone(),
        connector: Some(s.connector.info()),
        checks,
    }
}

fn adfs_endpoints(config: &CheckConfig) -> Check {
    let mut c = Check::new(
        "adfs_endpoints",
        "AD FS endpoints for federated domains",
        Status::Skip,
    );
    c.evidence.push(if config.adfs_hosts.is_empty() {
        "not checked: no AD FS hosts configured ([federation] adfs)".into()
    } else {
        "probed when the check runs".into()
    });
    c
}

fn entra_writeback(config: &CheckConfig) -> Check {
    let mut c = Check::new(
        "entra_writeback",
        "Password writeback enabled in Entra",
        Status::Skip,
    );
    c.evidence.push(if config.entra_configured {
        "checked against Graph when the check runs".into()
    } else {
        "not checked: no [entra] table in the configuration".into()
    });
    c
}
