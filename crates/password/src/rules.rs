//! The checks a new password must pass before it is written, in the order a user is best served
//! by: the confirmation (cheap), the shipped common-password list, length and characters
//! (Entra's own rules), then the user's names and the policy's banned words, Microsoft's
//! banned-password score, Entra's character classes and a guessability estimate. Pure: the caller passes
//! the policy's rules, the user's names and the banned terms (tenant list and name included).
//! The breached-password lookup ([`crate::breached`]) is the one check with I/O and runs after
//! these pass.

use latchkey_policy::PasswordRules;
use latchkey_policy::model::MAX_PASSWORD_LENGTH;

use crate::banned::{BannedTerms, normalize};

/// Symbols Entra accepts in cloud passwords (concept-sspr-policy), besides letters, digits, space.
const ENTRA_SYMBOLS: &str = "@#$%^&*-_!+=[]{}|\\:',.?/`~\"();<> ";

/// Names shorter than this are not searched for: "Al" or "Li" would refuse half of all passwords.
const MIN_NAME_CHARS: usize = 3;

/// The guessability estimate sees at most this many characters: its pattern search grows
/// steeply with length (a crafted 256-character password took 12 s in a debug build, 0.6 s in
/// release; 32 characters take under 70 ms), and a password longer than this that passed every
/// other rule is strong by its length.
pub const MAX_ESTIMATED_CHARS: usize = 32;

/// What about a password made a guessability estimate refuse it; each has its own message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weakness {
    KeyboardPattern,
    Repeats,
    CommonPassword,
    Sequence,
    Dates,
    SingleWord,
    Names,
}

impl Weakness {
    /// The message key in `locales/*.toml`.
    pub fn message_key(self) -> &'static str {
        match self {
            Weakness::KeyboardPattern => "password_hint_keyboard",
            Weakness::Repeats => "password_hint_repeats",
            Weakness::CommonPassword => "password_hint_common",
            Weakness::Sequence => "password_hint_sequence",
            Weakness::Dates => "password_hint_dates",
            Weakness::SingleWord => "password_hint_word",
            Weakness::Names => "password_hint_names",
        }
    }

    fn from_zxcvbn(w: zxcvbn::feedback::Warning) -> Self {
        use zxcvbn::feedback::Warning as W;
        match w {
            W::StraightRowsOfKeysAreEasyToGuess | W::ShortKeyboardPatternsAreEasyToGuess => {
                Weakness::KeyboardPattern
            }
            W::RepeatsLikeAaaAreEasyToGuess | W::RepeatsLikeAbcAbcAreOnlySlightlyHarderToGuess => {
                Weakness::Repeats
            }
            W::ThisIsATop10Password
            | W::ThisIsATop100Password
            | W::ThisIsACommonPassword
            | W::ThisIsSimilarToACommonlyUsedPassword => Weakness::CommonPassword,
            W::SequencesLikeAbcAreEasyToGuess => Weakness::Sequence,
            W::RecentYearsAreEasyToGuess | W::DatesAreOftenEasyToGuess => Weakness::Dates,
            W::AWordByItselfIsEasyToGuess => Weakness::SingleWord,
            W::NamesAndSurnamesByThemselvesAreEasyToGuess
            | W::CommonNamesAndSurnamesAreEasyToGuess => Weakness::Names,
        }
    }
}

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
    /// Contains one of the user's names (Microsoft: substring matching of first and last name).
    ContainsName,
    /// Contains a word the policy bans outright.
    BannedWord,
    /// On the shipped list of the most common passwords.
    CommonList,
    /// Scores fewer than five points under Microsoft's banned-password rule.
    BannedTerms,
    /// Guessable by other patterns (zxcvbn score below 3), with what made it so when known.
    Guessable {
        weakness: Option<Weakness>,
    },
    /// Seen in known data breaches (the range lookup found it).
    Breached,
    /// The breached-password lookup could not answer and the configuration says to refuse then.
    BreachCheckUnavailable,
    /// Too many passwords are being checked at this moment: try again in a moment.
    Busy,
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
            Rejection::CommonList => "error_password_common_list",
            Rejection::BannedTerms => "error_password_banned_terms",
            Rejection::Guessable { .. } => "error_password_common",
            Rejection::Breached => "error_password_breached",
            Rejection::BreachCheckUnavailable => "error_password_breach_unavailable",
            Rejection::Busy => "error_password_busy",
        }
    }
}

/// What a new password is checked against.
pub struct Candidate<'a> {
    pub password: &'a str,
    /// The confirmation; `None` checks the password alone (live feedback while typing).
    pub confirm: Option<&'a str>,
    pub rules: &'a PasswordRules,
    /// The user's names: display, given, surname, UPN local part, on-premises account name.
    pub user_names: &'a [&'a str],
    /// Global terms plus the tenant's list and name and the policy's banned words.
    pub banned: &'a BannedTerms,
}

/// Every check but the breached-password lookup.
pub fn check(c: &Candidate<'_>) -> Result<(), Rejection> {
    let password = c.password;
    // The confirmation first: cheap, and a mismatch would make any other verdict moot.
    if c.confirm.is_some_and(|confirm| confirm != password) {
        return Err(Rejection::Mismatch);
    }
    // Then: "one of the most common passwords" tells more than "too short" would.
    if crate::common::is_common(password) {
        return Err(Rejection::CommonList);
    }
    let len = password.chars().count();
    if len < c.rules.min_length {
        return Err(Rejection::TooShort {
            min: c.rules.min_length,
        });
    }
    if len > MAX_PASSWORD_LENGTH {
        return Err(Rejection::TooLong {
            max: MAX_PASSWORD_LENGTH,
        });
    }
    if !password
        .chars()
        .all(|ch| ch.is_ascii_alphanumeric() || ENTRA_SYMBOLS.contains(ch))
    {
        return Err(Rejection::Characters);
    }
    let normalized = normalize(password);
    let names = name_parts(c.user_names);
    if c.rules.forbid_user_names && names.iter().any(|n| normalized.contains(n.as_str())) {
        return Err(Rejection::ContainsName);
    }
    if c.rules
        .banned_words
        .iter()
        .map(|w| normalize(w))
        .any(|w| !w.is_empty() && normalized.contains(w.as_str()))
    {
        return Err(Rejection::BannedWord);
    }
    if c.banned.refuses(password) {
        return Err(Rejection::BannedTerms);
    }
    let classes = [
        password.chars().any(|ch| ch.is_ascii_lowercase()),
        password.chars().any(|ch| ch.is_ascii_uppercase()),
        password.chars().any(|ch| ch.is_ascii_digit()),
        password.chars().any(|ch| ENTRA_SYMBOLS.contains(ch)),
    ];
    if classes.iter().filter(|ch| **ch).count() < 3 {
        return Err(Rejection::Classes);
    }
    let inputs: Vec<&str> = names.iter().map(String::as_str).collect();
    let head: String = password.chars().take(MAX_ESTIMATED_CHARS).collect();
    let estimate = zxcvbn::zxcvbn(&head, &inputs);
    // Score 3: "safely unguessable: moderate protection from offline slow-hash scenario".
    if (estimate.score() as u8) < 3 {
        let weakness = estimate
            .feedback()
            .and_then(|f| f.warning())
            .map(Weakness::from_zxcvbn);
        return Err(Rejection::Guessable { weakness });
    }
    Ok(())
}

/// The user's names split into words, normalized, without the short ones.
fn name_parts(names: &[&str]) -> Vec<String> {
    names
        .iter()
        .flat_map(|n| n.split(|ch: char| !ch.is_alphanumeric()))
        .filter(|p| p.chars().count() >= MIN_NAME_CHARS)
        .map(normalize)
        .collect()
}
