//! What a person types as their account name, parsed into the forms people use
//! (docs/methods.md, "Sign in the way users type"): an address (`name@domain`: a UPN, a mail
//! address, or an on-premises `sAMAccountName@dns-domain`), `DOMAIN\name`, or a bare `name`.
//! Compatibility-normalized (NFKC: full-width letters become ASCII) and compared without case,
//! as Active Directory compares account names.

use std::fmt;
use std::str::FromStr;

use unicode_normalization::UnicodeNormalization;

use crate::{EmailAddress, ParseError};

/// The longest `sAMAccountName` Active Directory accepts for users (20 characters).
pub const MAX_SAM_ACCOUNT_NAME: usize = 20;
/// Characters Active Directory refuses in a `sAMAccountName` (and `@`, which makes an address).
const SAM_FORBIDDEN: &str = "\"/\\[]:;|=,+*?<>@";

/// A typed account name.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum SignInName {
    /// `name@domain`: a UPN, mail or other address — or an on-premises account name with its
    /// DNS domain (`cmendes@corp.contoso.com`).
    Address(EmailAddress),
    /// `DOMAIN\name` (`domain` set: NetBIOS or DNS name) or a bare `name`.
    Account {
        domain: Option<String>,
        name: String,
    },
}

impl SignInName {
    /// For an address whose local part could be an account name: that account in the address's
    /// domain (`cmendes@corp.contoso.com` → `corp.contoso.com\cmendes`).
    pub fn as_account(&self) -> Option<(String, String)> {
        match self {
            SignInName::Address(a) => {
                let (local, domain) = a.as_str().rsplit_once('@')?;
                valid_sam(local).then(|| (domain.to_string(), local.to_string()))
            }
            SignInName::Account { .. } => None,
        }
    }
}

fn valid_sam(s: &str) -> bool {
    let n = s.chars().count();
    (1..=MAX_SAM_ACCOUNT_NAME).contains(&n)
        && !s.ends_with('.')
        && s.chars()
            .all(|c| !c.is_control() && !c.is_whitespace() && !SAM_FORBIDDEN.contains(c))
}

fn valid_domain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

impl FromStr for SignInName {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s: String = s.trim().nfkc().collect::<String>().to_lowercase();
        if let Some((domain, name)) = s.split_once('\\') {
            if valid_domain(domain) && valid_sam(name) {
                return Ok(SignInName::Account {
                    domain: Some(domain.to_string()),
                    name: name.to_string(),
                });
            }
            return Err(ParseError::SignInName);
        }
        if s.contains('@') {
            return s
                .parse::<EmailAddress>()
                .map(SignInName::Address)
                .map_err(|_| ParseError::SignInName);
        }
        if valid_sam(&s) {
            return Ok(SignInName::Account {
                domain: None,
                name: s,
            });
        }
        Err(ParseError::SignInName)
    }
}

impl fmt::Display for SignInName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignInName::Address(a) => write!(f, "{a}"),
            SignInName::Account {
                domain: Some(d),
                name,
            } => write!(f, "{d}\\{name}"),
            SignInName::Account { domain: None, name } => f.write_str(name),
        }
    }
}

impl fmt::Debug for SignInName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SignInName({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<SignInName, ParseError> {
        s.parse()
    }

    #[test]
    fn the_forms_people_type() {
        assert_eq!(
            parse(" Carla.Mendes@Contoso.com ").unwrap(),
            SignInName::Address("carla.mendes@contoso.com".parse().unwrap())
        );
        assert_eq!(
            parse("CORP\\CMendes").unwrap(),
            SignInName::Account {
                domain: Some("corp".into()),
                name: "cmendes".into()
            }
        );
        assert_eq!(
            parse("cmendes").unwrap(),
            SignInName::Account {
                domain: None,
                name: "cmendes".into()
            }
        );
        // Full-width letters, as an East Asian keyboard types them, are the same account.
        assert_eq!(parse("ｃｍｅｎｄｅｓ").unwrap(), parse("cmendes").unwrap());
        assert_eq!(
            parse("cmendes@corp.contoso.com").unwrap().as_account(),
            Some(("corp.contoso.com".into(), "cmendes".into()))
        );
    }

    #[test]
    fn what_no_account_can_be_is_refused() {
        for bad in [
            "",
            "a\\",
            "\\b",
            "a\\b\\c",
            "way-too-long-an-account-name",
            "semi;colon",
            "with space",
            "dom ain\\x",
            "x@",
            "trailing.",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
