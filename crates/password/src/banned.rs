//! Microsoft Entra Password Protection's documented evaluation of banned passwords
//! (docs/passwords.md): the password and every term are *normalized* (lower case; `0`→`o`,
//! `1`→`l`, `$`→`s`, `@`→`a`), banned terms are found in the password — exactly, or *fuzzily*
//! within an edit distance of one —, and the password is *scored*: each banned term found is one
//! point, each other character one point, and fewer than [`MIN_POINTS`] is a refusal.
//!
//! The terms are Latchkey's global list (shipped, [`GLOBAL_TERMS`]; Microsoft's own is not
//! published), the calendar years 1950–2049, and whatever the caller adds: the tenant's custom
//! banned password list, the tenant's name, the policy's banned words.
//!
//! Where the documentation leaves room, the choice made here:
//! - Fuzzy matching applies to terms of five characters or more, so a fuzzy match always covers
//!   at least four characters (Microsoft's own floor for substring matching). A four-character
//!   term counts only where it appears exactly; "love" would otherwise match every "lov", "ove".
//! - The score is the smallest one any way of covering the password with terms gives (the
//!   strictest reading: an attacker guessing the password also picks the best split).
//! - Stricter than Microsoft: a run of three or more identical characters (`!!!!!!`, `aaaa`)
//!   scores one point, like a term: repeating a key adds length, not strength.

use std::collections::BTreeSet;

/// Fewest points a password must score (Microsoft: "at least five (5) points").
pub const MIN_POINTS: usize = 5;

/// Shortest term kept: Microsoft's custom list takes terms of four to sixteen characters.
pub const MIN_TERM_CHARS: usize = 4;
/// Longest term of a tenant's custom list (Microsoft's limit; longer entries are ignored).
pub const MAX_TERM_CHARS: usize = 16;
/// Terms this long or longer also match with one character changed, added or removed.
const FUZZY_FROM_CHARS: usize = 5;
/// A run of this many identical characters or more scores one point.
const MIN_RUN: usize = 3;

/// Latchkey's global banned terms (`data/global-banned.txt`): words and patterns that make up
/// most guessed passwords — "password" and its variants, keyboard rows and digit runs, seasons,
/// months and days (English and German), greetings, common first words of passwords.
pub const GLOBAL_TERMS: &str = include_str!("../data/global-banned.txt");

/// The normalized form Microsoft documents: lower case and four substitutions.
pub fn normalize(s: &str) -> String {
    s.chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            '0' => 'o',
            '1' => 'l',
            '$' => 's',
            '@' => 'a',
            other => other,
        })
        .collect()
}

/// The terms one evaluation scores against, normalized and without duplicates.
#[derive(Debug, Clone)]
pub struct BannedTerms {
    terms: Vec<Vec<char>>,
}

impl BannedTerms {
    /// The global terms and years plus `extra` (custom list entries, tenant name words, policy
    /// words). Entries shorter than [`MIN_TERM_CHARS`] or longer than [`MAX_TERM_CHARS`] are
    /// ignored, as Entra ignores them.
    pub fn global_with<'a>(extra: impl IntoIterator<Item = &'a str>) -> Self {
        let years = (1950..2050).map(|y| y.to_string());
        let global = GLOBAL_TERMS
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_string);
        let set: BTreeSet<String> = global
            .chain(years)
            .chain(extra.into_iter().map(str::to_string))
            .map(|t| normalize(t.trim()))
            .filter(|t| (MIN_TERM_CHARS..=MAX_TERM_CHARS).contains(&t.chars().count()))
            .collect();
        Self {
            terms: set.into_iter().map(|t| t.chars().collect()).collect(),
        }
    }

    /// How many terms there are (for the admin console and tests).
    pub fn len(&self) -> usize {
        self.terms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The password's points under the scoring rule: the fewest points any split of the
    /// normalized password into banned terms (one point each) and single characters (one point
    /// each) gives.
    pub fn points(&self, password: &str) -> usize {
        let p: Vec<char> = normalize(password).chars().collect();
        let n = p.len();
        // best[i]: the fewest points for p[i..].
        let mut best = vec![0usize; n + 1];
        for i in (0..n).rev() {
            let mut here = 1 + best[i + 1];
            let run = p[i..].iter().take_while(|c| **c == p[i]).count();
            if run >= MIN_RUN {
                here = here.min(1 + best[i + run]);
            }
            for term in &self.terms {
                for len in candidate_lengths(term.len(), n - i) {
                    if 1 + best[i + len] < here && matches(&p[i..i + len], term) {
                        here = 1 + best[i + len];
                    }
                }
            }
            best[i] = here;
        }
        best[0]
    }

    /// Whether the password scores too few points.
    pub fn refuses(&self, password: &str) -> bool {
        self.points(password) < MIN_POINTS
    }
}

/// Lengths of the password slices that may match a term of `term_len` characters.
fn candidate_lengths(term_len: usize, left: usize) -> impl Iterator<Item = usize> {
    let (lo, hi) = if term_len >= FUZZY_FROM_CHARS {
        (term_len - 1, term_len + 1)
    } else {
        (term_len, term_len)
    };
    (lo..=hi.min(left)).filter(|l| *l > 0)
}

/// Exactly equal, or — for terms of [`FUZZY_FROM_CHARS`] or more — one edit apart. A character
/// added at either end is not part of the match: the term itself matches there, and the added
/// character scores its own point (Microsoft's example scores "contosoblank12" 4, not 3 by
/// reading "blank1" as one fuzzy "blank").
fn matches(slice: &[char], term: &[char]) -> bool {
    if slice == term {
        return true;
    }
    if term.len() < FUZZY_FROM_CHARS {
        return false;
    }
    if slice.len() == term.len() + 1
        && (slice.first() != term.first() || slice.last() != term.last())
    {
        return false;
    }
    within_one_edit(slice, term)
}

/// Levenshtein distance ≤ 1 in one pass.
fn within_one_edit(a: &[char], b: &[char]) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    match long.len() - short.len() {
        0 => short.iter().zip(long).filter(|(x, y)| x != y).count() <= 1,
        1 => {
            let first_diff = short
                .iter()
                .zip(long)
                .position(|(x, y)| x != y)
                .unwrap_or(short.len());
            short[first_diff..] == long[first_diff + 1..]
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chars(s: &str) -> Vec<char> {
        s.chars().collect()
    }

    #[test]
    fn normalization_is_the_documented_one() {
        // Microsoft: "Bl@nK" normalizes to "blank"; "p0LL23fb" to "poll23fb".
        assert_eq!(normalize("Bl@nK"), "blank");
        assert_eq!(normalize("p0LL23fb"), "poll23fb");
        assert_eq!(normalize("$1"), "sl");
    }

    #[test]
    fn edit_distance_one_as_documented() {
        // Microsoft: with "abcdef" banned, 'abcdeg', 'abcdefg' and 'abcde' match.
        let t = chars("abcdef");
        // ('abcdefg' matches as "abcdef" plus one more character, see `matches`.)
        for p in ["abcdeg", "abcde", "abcdef", "xbcdef", "abdef", "abcXdef"] {
            assert!(matches(&chars(p), &t), "{p}");
        }
        for p in ["abcd", "abcdefgh", "bacdfe", "azcdeg", "abcdefg"] {
            assert!(!matches(&chars(p), &t), "{p}");
        }
    }

    #[test]
    fn short_terms_match_only_exactly() {
        let t = chars("love");
        assert!(matches(&chars("love"), &t));
        assert!(!matches(&chars("lov"), &t));
        assert!(!matches(&chars("live"), &t));
    }
}
