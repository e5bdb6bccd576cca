//! LDAP errors, with AD's diagnostic codes turned into plain reasons.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum LdapError {
    #[error("LDAP configuration: {0}")]
    Config(String),
    #[error("cannot connect to {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("bind as {bind_dn} failed: {reason}")]
    Bind { bind_dn: String, reason: String },
    #[error("{op}: no answer within {secs} s")]
    Timeout { op: String, secs: u64 },
    #[error("{op}: LDAP result {code}: {text}")]
    Operation { op: String, code: u32, text: String },
    #[error("{op}: {reason}")]
    Protocol { op: String, reason: String },
}

impl LdapError {
    pub(crate) fn from_ldap3(op: &str, e: ldap3::LdapError) -> LdapError {
        match e {
            ldap3::LdapError::LdapResult { result } => LdapError::Operation {
                op: op.to_string(),
                code: result.rc,
                text: explain_ad_error(&result.text),
            },
            ldap3::LdapError::Timeout { .. } => LdapError::Timeout {
                op: op.to_string(),
                secs: 0,
            },
            other => LdapError::Protocol {
                op: op.to_string(),
                reason: other.to_string(),
            },
        }
    }

    /// The LDAP result code, when the server answered with one.
    pub fn result_code(&self) -> Option<u32> {
        match self {
            LdapError::Operation { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// Appends a plain-language reason to AD's diagnostic text when it carries a known code
/// (`data 52e` in bind errors, `0000052D`-style Win32 codes in others). The original text stays.
pub fn explain_ad_error(text: &str) -> String {
    let text = text.trim_end_matches('\0').trim();
    let lower = text.to_ascii_lowercase();
    let known: &[(&str, &str)] = &[
        ("data 52e", "wrong user name or password"),
        ("data 525", "the account does not exist"),
        ("data 530", "not permitted to log on at this time"),
        ("data 531", "not permitted to log on from this workstation"),
        ("data 532", "the password has expired"),
        ("data 533", "the account is disabled"),
        ("data 701", "the account has expired"),
        ("data 773", "the password must be changed before logging on"),
        ("data 775", "the account is locked out"),
        (
            "0000052d",
            "the password does not meet the domain's password policy (length, complexity, history or minimum age)",
        ),
        ("00000056", "the old password is wrong"),
        (
            "00002098",
            "insufficient access rights (the account lacks the right on this object)",
        ),
        ("00000005", "access denied"),
        ("00002020", "the operation needs an authenticated bind"),
    ];
    match known.iter().find(|(code, _)| lower.contains(code)) {
        Some((_, why)) if !text.is_empty() => format!("{why} ({text})"),
        Some((_, why)) => (*why).to_string(),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ad_codes_become_reasons() {
        let t = "80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error, data 775, v1db1\0";
        assert!(explain_ad_error(t).starts_with("the account is locked out ("));
        assert!(
            explain_ad_error("00002098: Object CN=x has no write property access")
                .starts_with("insufficient access")
        );
        assert_eq!(explain_ad_error("something else"), "something else");
    }
}
