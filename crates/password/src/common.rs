//! The shipped list of the most common passwords (`data/common-passwords.txt`, Openwall's
//! public-domain `password.lst`): a new password equal to one of them, ignoring case, is refused
//! with its own message, whatever else it scores.

use std::collections::HashSet;
use std::sync::OnceLock;

const LIST: &str = include_str!("../data/common-passwords.txt");

fn list() -> &'static HashSet<String> {
    static SET: OnceLock<HashSet<String>> = OnceLock::new();
    SET.get_or_init(|| {
        LIST.lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_lowercase)
            .collect()
    })
}

/// Whether `password` is on the list (case-insensitive).
pub fn is_common(password: &str) -> bool {
    list().contains(&password.to_lowercase())
}

/// How many passwords the list holds.
pub fn len() -> usize {
    list().len()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_list_is_loaded_and_case_insensitive() {
        assert!(super::len() > 3000);
        assert!(super::is_common("password1"));
        assert!(super::is_common("BASEBALL"));
        assert!(!super::is_common("Correct-Horse-Battery-42"));
    }
}
