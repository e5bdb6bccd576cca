//! Identification keys: what a typed account is looked up by. The same rules as the live
//! lookup (latchkey-graph `find_user`, `find_user_by_account`): an address matches a user's UPN,
//! mail, other mails or SMTP proxy addresses; an account name matches the on-premises
//! `samAccountName` (its domain is checked on the candidates). Graph compares them without
//! regard to case, so keys are lower case.

use latchkey_graph::User;
use latchkey_types::SignInName;

/// `a:` + an address the user can be found by.
const ADDRESS: &str = "a:";
/// `s:` + the on-premises account name.
const ACCOUNT: &str = "s:";

/// Every key `user` is found by, without duplicates.
pub fn user_keys(user: &User) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    let mut push = |k: String| {
        if !keys.contains(&k) {
            keys.push(k);
        }
    };
    push(format!(
        "{ADDRESS}{}",
        user.user_principal_name.as_str().to_lowercase()
    ));
    if let Some(mail) = &user.mail {
        push(format!("{ADDRESS}{}", mail.as_str().to_lowercase()));
    }
    for m in &user.other_mails {
        push(format!("{ADDRESS}{}", m.as_str().to_lowercase()));
    }
    for m in user.smtp_addresses() {
        push(format!("{ADDRESS}{}", m.as_str().to_lowercase()));
    }
    if let Some(sam) = &user.on_premises_sam_account_name
        && !sam.is_empty()
    {
        push(format!("{ACCOUNT}{}", sam.to_lowercase()));
    }
    keys
}

/// How a typed account is looked up: first `address` (when it is one); when that finds nobody,
/// `account` (its name, with the domain to check on the candidates).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginKeys {
    pub address: Option<String>,
    pub account: Option<(Option<String>, String)>,
}

/// The keys a canonical sign-in name is looked up by.
pub fn login_keys(login: &SignInName) -> LoginKeys {
    match login {
        SignInName::Address(a) => LoginKeys {
            address: Some(format!("{ADDRESS}{}", a.as_str().to_lowercase())),
            account: login
                .as_account()
                .map(|(domain, name)| (Some(domain), format!("{ACCOUNT}{}", name.to_lowercase()))),
        },
        SignInName::Account { domain, name } => LoginKeys {
            address: None,
            account: Some((domain.clone(), format!("{ACCOUNT}{}", name.to_lowercase()))),
        },
    }
}
