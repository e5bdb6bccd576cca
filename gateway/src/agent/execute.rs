//! Running one job against AD with the service account: find the account (exactly one match,
//! filter value escaped), then unlock (`lockoutTime: 0`) or reset (`unicodePwd` replaced over
//! TLS, `pwdLastSet: 0` when the user must change it, then unlocked). AD's error codes become a
//! [`FailureReason`]; nothing here logs or reports the password.

use latchkey_ad::ldap::{Directory, LdapError, Scope, escape_filter_value};
use latchkey_jobs::{FailureReason, JobKind, JobOffer, JobOutcome, JobReport, MAX_DETAIL};

use crate::config::AgentConfig;

/// Runs `offer` now (`now_ms`: Unix milliseconds) and says what happened.
pub async fn execute(cfg: &AgentConfig, offer: &JobOffer, now_ms: i64) -> JobReport {
    let fail = |reason: FailureReason, detail: String| JobReport {
        outcome: JobOutcome::Failed {
            reason,
            detail: detail.chars().take(MAX_DETAIL).collect(),
        },
        object_dn: None,
    };
    if now_ms > offer.not_after_ms {
        return fail(
            FailureReason::Expired,
            "received after its deadline; not started".into(),
        );
    }
    let allowed = match offer.kind {
        JobKind::Unlock => cfg.unlock,
        JobKind::Reset => cfg.reset,
    };
    if !allowed {
        return fail(
            FailureReason::NotAllowed,
            format!(
                "this gateway is not configured for {} jobs",
                offer.kind.as_str()
            ),
        );
    }
    if offer.kind == JobKind::Reset && offer.new_password.as_deref().is_none_or(str::is_empty) {
        return fail(FailureReason::Other, "reset job without a password".into());
    }
    let mut dir = match Directory::connect(&cfg.ldap).await {
        Ok(d) => d,
        Err(e) => return fail(FailureReason::DirectoryUnavailable, e.to_string()),
    };
    let report = match run(cfg, &mut dir, offer).await {
        Ok(dn) => JobReport {
            outcome: JobOutcome::Succeeded,
            object_dn: Some(dn),
        },
        Err((reason, detail, dn)) => {
            let mut r = fail(reason, detail);
            r.object_dn = dn;
            r
        }
    };
    dir.unbind().await;
    report
}

type Failure = (FailureReason, String, Option<String>);

async fn run(cfg: &AgentConfig, dir: &mut Directory, offer: &JobOffer) -> Result<String, Failure> {
    let base = match &cfg.base_dn {
        Some(b) => b.clone(),
        None => dir
            .root_dse()
            .await
            .map_err(|e| classify(&e, None))?
            .default_naming_context
            .ok_or((
                FailureReason::DirectoryUnavailable,
                "the DC's rootDSE names no defaultNamingContext".to_string(),
                None,
            ))?,
    };
    if let Some(domain) = &offer.target.domain {
        let served = if cfg.domains.is_empty() {
            vec![dns_name(&base)]
        } else {
            cfg.domains.clone()
        };
        if !served.iter().any(|d| d.eq_ignore_ascii_case(domain.trim())) {
            return Err((
                FailureReason::WrongDomain,
                format!(
                    "domain {domain:?} is not served by this gateway ({})",
                    served.join(", ")
                ),
                None,
            ));
        }
    }
    let sam = offer.target.sam_account_name.trim();
    if sam.is_empty() || sam.len() > 256 {
        return Err((FailureReason::NotFound, "empty account name".into(), None));
    }
    let filter = format!(
        "(&(objectCategory=person)(objectClass=user)(sAMAccountName={}))",
        escape_filter_value(sam)
    );
    let mut found = Vec::new();
    dir.search_paged(&base, Scope::Subtree, &filter, &["adminCount"], None, |e| {
        let admin_count = e.i64("adminCount");
        found.push((e.dn, admin_count));
        Ok(())
    })
    .await
    .map_err(|e| classify(&e, None))?;
    let dn = match found.len() {
        0 => {
            return Err((
                FailureReason::NotFound,
                format!("no user {sam:?} under {base}"),
                None,
            ));
        }
        1 => found.remove(0),
        n => {
            return Err((
                FailureReason::Ambiguous,
                format!("{n} users named {sam:?} under {base}"),
                None,
            ));
        }
    };
    let (dn, admin_count) = dn;
    if let Some(refused) = privileged_refusal(admin_count, offer.target.allow_privileged) {
        return Err((FailureReason::NotAllowed, refused.into(), Some(dn)));
    }
    let with_dn = |e: LdapError| classify(&e, Some(dn.clone()));
    match offer.kind {
        JobKind::Unlock => {
            dir.replace(&dn, "lockoutTime", &["0"])
                .await
                .map_err(with_dn)?;
        }
        JobKind::Reset => {
            let password = offer.new_password.as_deref().unwrap_or_default();
            dir.replace_binary(&dn, "unicodePwd", vec![unicode_pwd(password)])
                .await
                .map_err(with_dn)?;
            if offer.must_change || cfg.must_change_after_reset {
                dir.replace(&dn, "pwdLastSet", &["0"])
                    .await
                    .map_err(with_dn)?;
            }
            // A user who reset because they were locked out expects to sign in now. The reset
            // happened; a refused unlock is reported but does not undo it.
            if let Err(e) = dir.replace(&dn, "lockoutTime", &["0"]).await {
                tracing::warn!(job = %offer.id, error = %e, "reset done, unlock after it refused");
            }
        }
    }
    Ok(dn)
}

/// Why a job on this account is refused, if it is: AD marks members of protected groups
/// (Domain Admins, ...) with `adminCount=1`; self-service must not reset or unlock them unless the
/// matched policy explicitly allows privileged accounts (docs/security.md: privileged accounts are
/// excluded by default).
pub fn privileged_refusal(
    admin_count: Option<i64>,
    allow_privileged: bool,
) -> Option<&'static str> {
    (admin_count == Some(1) && !allow_privileged).then_some(
        "privileged account (adminCount=1), and the policy does not allow privileged accounts",
    )
}

/// `"password"` with its quotes, UTF-16LE: what AD wants in `unicodePwd`.
fn unicode_pwd(password: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 * password.len() + 4);
    for unit in "\""
        .encode_utf16()
        .chain(password.encode_utf16())
        .chain("\"".encode_utf16())
    {
        out.extend_from_slice(&unit.to_le_bytes());
    }
    out
}

/// `DC=corp,DC=contoso,DC=com` (or anything below it) -> `corp.contoso.com`.
pub fn dns_name(dn: &str) -> String {
    dn.split(',')
        .filter_map(|rdn| {
            let (k, v) = rdn.trim().split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case("dc")
                .then(|| v.trim().to_ascii_lowercase())
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// AD's answer as a reason: the Win32 code in the diagnostic text decides, the LDAP result code
/// when there is none.
pub fn classify(e: &LdapError, dn: Option<String>) -> Failure {
    let detail = e.to_string();
    let lower = detail.to_ascii_lowercase();
    let reason = match e {
        LdapError::Connect { .. } | LdapError::Bind { .. } | LdapError::Timeout { .. } => {
            FailureReason::DirectoryUnavailable
        }
        LdapError::Operation { code, .. } => {
            if lower.contains("0000052d") {
                FailureReason::PasswordPolicy
            } else if lower.contains("00002098") || lower.contains("00000005") || *code == 50 {
                FailureReason::InsufficientRights
            } else if *code == 32 {
                FailureReason::NotFound
            } else if matches!(*code, 51..=53 | 80 | 81) {
                FailureReason::DirectoryUnavailable
            } else {
                FailureReason::Other
            }
        }
        LdapError::Config(_) | LdapError::Protocol { .. } => FailureReason::Other,
    };
    (reason, detail, dn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn privileged_accounts_are_refused_unless_the_policy_allows_them() {
        assert!(privileged_refusal(Some(1), false).is_some());
        assert_eq!(privileged_refusal(Some(1), true), None);
        // adminCount absent or cleared (0): an ordinary account.
        assert_eq!(privileged_refusal(None, false), None);
        assert_eq!(privileged_refusal(Some(0), false), None);
    }

    fn op(code: u32, text: &str) -> LdapError {
        LdapError::Operation {
            op: "modify".into(),
            code,
            text: text.into(),
        }
    }

    #[test]
    fn ad_errors_become_plain_reasons() {
        let cases = [
            (
                op(19, "0000052D: Constraint violation - password too short"),
                FailureReason::PasswordPolicy,
            ),
            (
                op(50, "00002098: Object has no write property access"),
                FailureReason::InsufficientRights,
            ),
            (
                op(50, "insufficient access rights"),
                FailureReason::InsufficientRights,
            ),
            (
                op(
                    1,
                    "00000005: SecErr: DSID-031A1256, problem 4003 (INSUFF_ACCESS_RIGHTS)",
                ),
                FailureReason::InsufficientRights,
            ),
            (op(32, "0000208D: NameErr"), FailureReason::NotFound),
            (op(80, "other"), FailureReason::DirectoryUnavailable),
            (op(53, "unwilling"), FailureReason::DirectoryUnavailable),
            (op(17, "undefined attribute type"), FailureReason::Other),
        ];
        for (e, want) in cases {
            assert_eq!(classify(&e, None).0, want, "{e}");
        }
        let t = LdapError::Timeout {
            op: "x".into(),
            secs: 30,
        };
        assert_eq!(classify(&t, None).0, FailureReason::DirectoryUnavailable);
    }

    #[test]
    fn naming_context_to_dns_name_and_unicode_pwd() {
        assert_eq!(dns_name("DC=Lab,DC=test"), "lab.test");
        assert_eq!(
            dns_name("OU=x,DC=corp,DC=contoso,DC=com"),
            "corp.contoso.com"
        );
        assert_eq!(unicode_pwd("ab"), vec![b'"', 0, b'a', 0, b'b', 0, b'"', 0]);
    }
}
