//! Checks a new password before anything is sent to Graph, so the user learns *why* a password is
//! refused instead of getting Entra's generic complexity error. Pure: the caller passes the rules
//! (from the policy) and the user's names (from the directory).

use latchkey_policy::PasswordRules;
use latchkey_policy::model::MAX_PASSWORD_LENGTH;

/// Symbols Entra accepts in cloud passwords (concept-sspr-policy), besides letters, digits, space.
const ENTRA_SYMBOLS: &str = "@#$%^&*-_!+=[]{}|\\:',.?/`~\"();<> ";

/// Why a password was refused; each maps to one localized message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    Mismatch,
    TooShort {
        min: usize,
    },
    TooLong {
        max: usize,
    },
    /// Outside Entra's character set (Entra refuses non-ASCII in cloud passwords).
    Characters,
    /// Fewer than 3 of Entra's 4 character classes.
    Classes,
    ContainsName,
    BannedWord,
    /// Guessable: in a common-password dictionary or patterned. Carries zxcvbn's English warning.
    Common {
        warning: Option<String>,
    },
}

impl Rejection {
    /// The message key in `locales/*.toml`.
    pub fn message_key(&self) -> &'static str {
        match self {
            Rejection::Mismatch => "error_password_mismatch",
            Rejection::TooShort { .. } => "error_password_short",
            Rejection::TooLong { .. } => "error_password_long",
            Rejection::Characters => "error_password_characters",
            Rejection::Classes => "error_password_classes",
            Rejection::ContainsName => "error_password_names",
            Rejection::BannedWord => "error_password_banned",
            Rejection::Common { .. } => "error_password_common",
        }
    }
}

/// Checks `password` (and its confirmation) against the policy's rules, Entra's cloud rules and a
/// guessability estimate that includes the user's own names. Pass names, not addresses: the local
/// part of the UPN, given name, surname, display name, on-premises account name (a domain such as
/// `contoso` belongs in the policy's banned words instead).
pub fn check(
    password: &str,
    confirm: &str,
    rules: &PasswordRules,
    user_names: &[&str],
) -> Result<(), Rejection> {
    let len = password.chars().count();
    if len < rules.min_length {
        return Err(Rejection::TooShort {
            min: rules.min_length,
        });
    }
    if len > MAX_PASSWORD_LENGTH {
        return Err(Rejection::TooLong {
            max: MAX_PASSWORD_LENGTH,
        });
    }
    if !password
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || ENTRA_SYMBOLS.contains(c))
    {
        return Err(Rejection::Characters);
    }
    let classes = [
        password.chars().any(|c| c.is_ascii_lowercase()),
        password.chars().any(|c| c.is_ascii_uppercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| ENTRA_SYMBOLS.contains(c)),
    ];
    if classes.iter().filter(|c| **c).count() < 3 {
        return Err(Rejection::Classes);
    }
    let lower = password.to_lowercase();
    // Names shorter than 3 characters would reject half of all passwords ("Al", "Li").
    let names: Vec<String> = user_names
        .iter()
        .flat_map(|n| n.split(|c: char| !c.is_alphanumeric()))
        .filter(|p| p.chars().count() >= 3)
        .map(str::to_lowercase)
        .collect();
    if rules.forbid_user_names && names.iter().any(|n| lower.contains(n.as_str())) {
        return Err(Rejection::ContainsName);
    }
    if rules
        .banned_words
        .iter()
        .any(|w| !w.is_empty() && lower.contains(w.as_str()))
    {
        return Err(Rejection::BannedWord);
    }
    let inputs: Vec<&str> = names.iter().map(String::as_str).collect();
    let estimate = zxcvbn::zxcvbn(password, &inputs);
    // Score 3: "safely unguessable: moderate protection from offline slow-hash scenario".
    if (estimate.score() as u8) < 3 {
        let warning = estimate
            .feedback()
            .and_then(|f| f.warning())
            .map(|w| w.to_string());
        return Err(Rejection::Common { warning });
    }
    if password != confirm {
        return Err(Rejection::Mismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> PasswordRules {
        PasswordRules {
            min_length: 15,
            banned_words: vec!["contoso".into()],
            forbid_user_names: true,
        }
    }

    fn check1(p: &str) -> Result<(), Rejection> {
        check(p, p, &rules(), &["Adele Vance", "adele.vance"])
    }

    #[test]
    fn a_long_unguessable_passphrase_passes() {
        assert_eq!(check1("Correct-Horse-Battery-42"), Ok(()));
    }

    #[test]
    fn each_rule_has_its_reason() {
        assert_eq!(check1("Sh0rt!"), Err(Rejection::TooShort { min: 15 }));
        assert_eq!(
            check1(&"Aa1!".repeat(70)),
            Err(Rejection::TooLong { max: 256 })
        );
        assert_eq!(check1("Grüße-aus-Köln-2024"), Err(Rejection::Characters));
        assert_eq!(
            check1("only lower case words here"),
            Err(Rejection::Classes)
        );
        assert_eq!(
            check1("Vance-Family-Holiday-99"),
            Err(Rejection::ContainsName)
        );
        assert_eq!(
            check1("Welcome-To-Contoso-2024"),
            Err(Rejection::BannedWord)
        );
        assert!(matches!(
            check1("P@ssw0rd12345678"),
            Err(Rejection::Common { .. })
        ));
        assert!(matches!(
            check1("Summer2024Summer2024!"),
            Err(Rejection::Common { .. })
        ));
        assert_eq!(
            check(
                "Correct-Horse-Battery-42",
                "Correct-Horse-Battery-43",
                &rules(),
                &[]
            ),
            Err(Rejection::Mismatch)
        );
    }

    #[test]
    fn short_name_parts_do_not_reject_everything() {
        let r = check(
            "Tall-Ladder-Window-7",
            "Tall-Ladder-Window-7",
            &rules(),
            &["Al Li"],
        );
        assert_eq!(r, Ok(()));
    }
}
