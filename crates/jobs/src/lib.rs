//! The job channel between the portal and the on-premises gateway (`latchkey-gateway run`).
//!
//! Only wire types and constants live here (no I/O), so both sides depend on this crate and
//! neither on the other. The gateway connects **out** to the portal over HTTPS and long-polls:
//!
//! | request | answer |
//! |---|---|
//! | `GET {portal}/gateway/v1/jobs/next?wait=S` with `Authorization: Bearer <credential>` and `X-Latchkey-Gateway-Capabilities: unlock[,reset]` | `200` + [`JobOffer`] when a job is (or becomes, within `S` seconds) due; `204` when none; `401` wrong credential; `429` too many requests |
//! | `POST {portal}/gateway/v1/jobs/{id}/result` with a [`JobReport`] body | `200` + [`Ack`] (also when the same result is reported again); `404` unknown job or not this gateway's; `409` job already finished with another outcome |
//!
//! Each poll also tells the portal the gateway is alive: the portal offers gateway unlock only
//! while a gateway polled recently. A job is handed out once (atomically claimed); a claimed job
//! that is never reported ends as expired, so a job never runs twice. Reset jobs carry the new
//! password only in the offer (TLS), never in a report.
#![cfg_attr(test, allow(clippy::disallowed_methods))] // unit tests read the system clock and randomness directly

use serde::{Deserialize, Serialize};

/// Path prefix of the gateway API on the portal.
pub const API_PREFIX: &str = "/gateway/v1";
/// The long-poll path (under the portal's base URL).
pub const NEXT_PATH: &str = "/gateway/v1/jobs/next";
/// Header in which the gateway lists what it may do (comma-separated [`JobKind`] names).
pub const CAPABILITIES_HEADER: &str = "x-latchkey-gateway-capabilities";
/// Longest long-poll the portal honours, in seconds.
pub const MAX_WAIT_SECONDS: u64 = 30;
/// Prefix of every gateway credential (`lkgw_<gateway id>.<secret>`), so a leaked one is
/// recognisable by secret scanners and in configuration files.
pub const CREDENTIAL_PREFIX: &str = "lkgw_";

/// The result path of one job.
pub fn result_path(job_id: &str) -> String {
    format!("{API_PREFIX}/jobs/{job_id}/result")
}

/// What a job does to an on-premises account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// `lockoutTime: 0` (clears the lockout and the bad-password count).
    Unlock,
    /// `unicodePwd` replaced over TLS, then `pwdLastSet` as the gateway's policy says.
    Reset,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Unlock => "unlock",
            JobKind::Reset => "reset",
        }
    }

    pub fn parse(s: &str) -> Option<JobKind> {
        match s.trim() {
            "unlock" => Some(JobKind::Unlock),
            "reset" => Some(JobKind::Reset),
            _ => None,
        }
    }

    /// Parses a capabilities header value; unknown names are ignored.
    pub fn parse_list(s: &str) -> Vec<JobKind> {
        let mut out = Vec::new();
        for k in s.split(',').filter_map(JobKind::parse) {
            if !out.contains(&k) {
                out.push(k);
            }
        }
        out
    }
}

/// Which on-premises account a job is about, as Entra knows it from synchronization
/// (`onPremisesSamAccountName`, `onPremisesDomainName`). The gateway looks the account up itself
/// (exactly one match, filter value escaped) and refuses domains it does not serve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub sam_account_name: String,
    /// DNS name of the account's domain, e.g. `corp.contoso.com`.
    pub domain: Option<String>,
    /// Whether the portal's policy that matched the user allows privileged accounts. The gateway
    /// refuses an account with `adminCount=1` unless this is set (absent: refused).
    #[serde(default)]
    pub allow_privileged: bool,
}

/// A job handed to the gateway.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobOffer {
    /// Opaque id; the report names it.
    pub id: String,
    pub kind: JobKind,
    pub target: Target,
    /// Unix milliseconds after which the gateway must not start the job (the portal stopped
    /// waiting and told the user so).
    pub not_after_ms: i64,
    /// Reset jobs only: the password the user chose. Never logged (`Debug` redacts it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_password: Option<String>,
    /// Reset jobs: whether the user must change the password at next logon (`pwdLastSet: 0`).
    #[serde(default)]
    pub must_change: bool,
    /// Correlates the portal's and the gateway's logs and audit events.
    pub correlation_id: String,
}

impl std::fmt::Debug for JobOffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobOffer")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("target", &self.target)
            .field("not_after_ms", &self.not_after_ms)
            .field(
                "new_password",
                &self.new_password.as_ref().map(|_| "[redacted]"),
            )
            .field("must_change", &self.must_change)
            .field("correlation_id", &self.correlation_id)
            .finish()
    }
}

/// Why a job did not succeed, in terms a user page and an admin can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    /// No account with that sAMAccountName in the gateway's scope.
    NotFound,
    /// Several accounts matched.
    Ambiguous,
    /// The account's domain is not one this gateway serves.
    WrongDomain,
    /// The service account lacks the right (`00002098`, `00000005`, LDAP 50).
    InsufficientRights,
    /// The new password breaks the domain's policy (`0000052D`: length, complexity, history,
    /// minimum age).
    PasswordPolicy,
    /// The job arrived after its deadline and was not started.
    Expired,
    /// This gateway is not configured for this kind of job, or the account is privileged
    /// (`adminCount=1`) and the policy does not allow privileged accounts.
    NotAllowed,
    /// The DC could not be reached or refused the bind.
    DirectoryUnavailable,
    /// Anything else (the detail says what).
    Other,
}

impl FailureReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::NotFound => "not_found",
            FailureReason::Ambiguous => "ambiguous",
            FailureReason::WrongDomain => "wrong_domain",
            FailureReason::InsufficientRights => "insufficient_rights",
            FailureReason::PasswordPolicy => "password_policy",
            FailureReason::Expired => "expired",
            FailureReason::NotAllowed => "not_allowed",
            FailureReason::DirectoryUnavailable => "directory_unavailable",
            FailureReason::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<FailureReason> {
        [
            FailureReason::NotFound,
            FailureReason::Ambiguous,
            FailureReason::WrongDomain,
            FailureReason::InsufficientRights,
            FailureReason::PasswordPolicy,
            FailureReason::Expired,
            FailureReason::NotAllowed,
            FailureReason::DirectoryUnavailable,
            FailureReason::Other,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum JobOutcome {
    Succeeded,
    Failed {
        reason: FailureReason,
        /// The directory's own words, for the audit trail (never a password). Bounded length.
        detail: String,
    },
}

/// The gateway's report of one job (`POST .../result`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobReport {
    pub outcome: JobOutcome,
    /// The DN the job acted on, when found (audit evidence).
    #[serde(default)]
    pub object_dn: Option<String>,
}

/// The portal's answer to a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    pub id: String,
    /// `true` when this report was recorded now; `false` when the same result was already known.
    pub recorded: bool,
}

/// Longest `detail` kept from a report.
pub const MAX_DETAIL: usize = 500;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offer_round_trips_and_debug_hides_the_password() {
        let o = JobOffer {
            id: "j1".into(),
            kind: JobKind::Reset,
            target: Target {
                sam_account_name: "cmendes".into(),
                domain: Some("corp.contoso.com".into()),
                allow_privileged: false,
            },
            not_after_ms: 1,
            new_password: Some("Sup3r-Secret!".into()),
            must_change: false,
            correlation_id: "c".into(),
        };
        let json = serde_json::to_string(&o).unwrap();
        assert!(json.contains("\"kind\":\"reset\""), "{json}");
        assert_eq!(serde_json::from_str::<JobOffer>(&json).unwrap(), o);
        assert!(!format!("{o:?}").contains("Sup3r"));
    }

    #[test]
    fn outcome_shapes_are_stable() {
        let r = JobReport {
            outcome: JobOutcome::Failed {
                reason: FailureReason::InsufficientRights,
                detail: "00002098".into(),
            },
            object_dn: None,
        };
        let v: serde_json::Value = serde_json::to_value(&r).unwrap();
        assert_eq!(v["outcome"]["status"], "failed");
        assert_eq!(v["outcome"]["reason"], "insufficient_rights");
        let ok: JobReport = serde_json::from_str(r#"{"outcome":{"status":"succeeded"}}"#).unwrap();
        assert_eq!(ok.outcome, JobOutcome::Succeeded);
        for r in ["not_found", "password_policy", "expired"] {
            assert_eq!(FailureReason::parse(r).unwrap().as_str(), r);
        }
        assert_eq!(
            JobKind::parse_list("unlock, reset,unlock,bogus"),
            vec![JobKind::Unlock, JobKind::Reset]
        );
    }
}
