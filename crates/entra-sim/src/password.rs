//! Entra's cloud password policy (concept-sspr-policy.md, graph.md §3) and the banned-password
//! check as Microsoft describes it ("evaluate-password" scoring), plus the generator for
//! system-generated passwords returned by `resetPassword`.

use ring::rand::{SecureRandom, SystemRandom};

use crate::fixture::PasswordPolicyFixture;

/// Symbols Entra counts as the fourth character class (space included).
const SYMBOLS: &str = "@#$%^&*-_!+=[]{}|\\:',.?/`~\"();<> ";

/// Why a password was refused. Graph itself reports every case with the same message; the
/// variant only helps tests and the `statusDetail` of a failed reset operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyViolation {
    #[error("the password must be between {min} and {max} characters")]
    Length { min: usize, max: usize },
    #[error("the password may only contain ASCII characters")]
    NotAscii,
    #[error("the password must contain {required} of: lowercase, uppercase, digit, symbol")]
    Complexity { required: usize },
    #[error("the password contains a banned word")]
    Banned,
}

/// Checks a new password against the tenant's cloud policy.
pub fn check(policy: &PasswordPolicyFixture, password: &str) -> Result<(), PolicyViolation> {
    let len = password.chars().count();
    if len < policy.min_length || len > policy.max_length {
        return Err(PolicyViolation::Length {
            min: policy.min_length,
            max: policy.max_length,
        });
    }
    if !password.is_ascii() {
        return Err(PolicyViolation::NotAscii);
    }
    let classes = [
        password.chars().any(|c| c.is_ascii_lowercase()),
        password.chars().any(|c| c.is_ascii_uppercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| SYMBOLS.contains(c)),
    ];
    if classes.iter().filter(|c| **c).count() < policy.required_classes {
        return Err(PolicyViolation::Complexity {
            required: policy.required_classes,
        });
    }
    if banned_score(&policy.banned_words, password) < 5 {
        return Err(PolicyViolation::Banned);
    }
    Ok(())
}

/// Microsoft's documented scoring: normalise (lower-case, common substitutions), then every banned
/// word found counts one point and every remaining character counts one point; a password needs at
/// least five points. (Fuzzy edit-distance matching is not simulated.)
fn banned_score(banned: &[String], password: &str) -> usize {
    let mut rest: String = password
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            '0' => 'o',
            '1' | '!' => 'l',
            '$' | '5' => 's',
            '@' | '4' => 'a',
            '3' => 'e',
            '7' => 't',
            c => c,
        })
        .collect();
    let mut points = 0;
    let mut words: Vec<String> = banned
        .iter()
        .map(|w| w.to_ascii_lowercase())
        .filter(|w| !w.is_empty())
        .collect();
    // Longest first so "contoso" wins over "con".
    words.sort_by_key(|w| std::cmp::Reverse(w.len()));
    for w in &words {
        while let Some(pos) = rest.find(w.as_str()) {
            rest.replace_range(pos..pos + w.len(), "\u{0}");
            points += 1;
        }
    }
    points + rest.chars().filter(|c| *c != '\u{0}').count()
}

/// A system-generated password in the shape of the documented example (`Cuyo5459`):
/// consonant-vowel-consonant-vowel, capitalised, then four digits. Meets the default policy.
pub fn generate() -> String {
    const CONSONANTS: &[u8] = b"bcdfghjklmnprstvwxz";
    const VOWELS: &[u8] = b"aeiou";
    let mut bytes = [0u8; 8];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("system randomness is available");
    let pick = |set: &[u8], b: u8| set[b as usize % set.len()] as char;
    let mut s = String::new();
    s.push(pick(CONSONANTS, bytes[0]).to_ascii_uppercase());
    s.push(pick(VOWELS, bytes[1]));
    s.push(pick(CONSONANTS, bytes[2]));
    s.push(pick(VOWELS, bytes[3]));
    for b in &bytes[4..] {
        s.push(char::from(b'0' + b % 10));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> PasswordPolicyFixture {
        PasswordPolicyFixture {
            banned_words: vec!["contoso".into(), "password".into()],
            ..PasswordPolicyFixture::default()
        }
    }

    #[test]
    fn entra_rules() {
        let p = policy();
        assert_eq!(check(&p, "xWwvJ]6NMw+bWH-d"), Ok(()));
        assert_eq!(
            check(&p, "Ab1!"),
            Err(PolicyViolation::Length { min: 8, max: 256 })
        );
        assert_eq!(
            check(&p, "alllowercase1"),
            Err(PolicyViolation::Complexity { required: 3 })
        );
        assert_eq!(check(&p, "Lower case 1"), Ok(()), "space is a symbol");
        assert_eq!(check(&p, "Pässwörd123"), Err(PolicyViolation::NotAscii));
        assert_eq!(
            check(&p, "Contoso123!"),
            Ok(()),
            "1 banned word + 4 chars = 5 points"
        );
        assert_eq!(check(&p, "C0nt0so12!"), Err(PolicyViolation::Banned));
        assert_eq!(check(&p, "P@ssw0rd2024"), Ok(()));
        assert_eq!(check(&p, "P@ssw0rd!"), Err(PolicyViolation::Banned));
        assert!(check(&p, &"Aa1!".repeat(65)).is_err());
    }

    #[test]
    fn generated_passwords_comply() {
        for _ in 0..50 {
            let pw = generate();
            assert_eq!(pw.len(), 8);
            assert_eq!(check(&policy(), &pw), Ok(()), "{pw}");
        }
    }
}
