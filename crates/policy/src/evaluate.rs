//! Which policy applies to a user, and why.
//!
//! The caller passes the user's *transitive* group ids (nested membership counts) and whether the
//! account is privileged; this module only decides. It is called at flow start and again right
//! before the write, and any error the caller meets while gathering the input must fail closed
//! (no evaluation, no self-service).

use std::collections::HashSet;

use latchkey_types::ObjectId;

use crate::model::{GroupRef, Policy, PolicySet};

/// What evaluation needs to know about a user.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// Every group the user is a member of, directly or through nesting.
    pub groups: &'a HashSet<ObjectId>,
    /// Holds a directory role, or is adminCount=1 on-premises.
    pub privileged: bool,
}

/// Why a policy did not match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    Disabled,
    /// The user is in an excluded group.
    Excluded(GroupRef),
    /// The user is in none of the policy's groups.
    NotInScope,
    /// The user is privileged and the policy does not name privileged accounts.
    Privileged,
}

/// The outcome with its reasons.
#[derive(Debug, Clone)]
pub struct Evaluation<'a> {
    /// The policy that applies; `None` means no self-service for this user.
    pub policy: Option<&'a Policy>,
    /// The group through which it matched.
    pub via: Option<&'a GroupRef>,
    /// Policies considered before the match (or all of them), with why each was skipped.
    pub skipped: Vec<(&'a Policy, Skip)>,
}

impl Evaluation<'_> {
    /// One line for admins, helpdesk and the audit trail.
    pub fn explain(&self) -> String {
        let mut parts = Vec::new();
        match (self.policy, self.via) {
            (Some(p), Some(g)) => {
                parts.push(format!("matched '{}' via group {}", p.name, g.label()))
            }
            (Some(p), None) => parts.push(format!("matched '{}'", p.name)),
            (None, _) => parts.push("no policy applies: no self-service".to_string()),
        }
        for (p, why) in &self.skipped {
            let why = match why {
                Skip::Disabled => "disabled".to_string(),
                Skip::Excluded(g) => format!("excluded by group {}", g.label()),
                Skip::NotInScope => "not a member of its groups".to_string(),
                Skip::Privileged => {
                    "privileged account, and the policy does not allow privileged accounts"
                        .to_string()
                }
            };
            parts.push(format!("'{}' skipped: {why}", p.name));
        }
        parts.join("; ")
    }
}

/// The first enabled policy, by priority, whose groups contain the user and whose excludes do not.
pub fn evaluate<'a>(set: &'a PolicySet, subject: Subject<'_>) -> Evaluation<'a> {
    let mut skipped = Vec::new();
    for policy in set.policies() {
        let skip = if !policy.enabled {
            Some(Skip::Disabled)
        } else if let Some(g) = policy
            .excludes
            .iter()
            .find(|g| subject.groups.contains(&g.id))
        {
            Some(Skip::Excluded(g.clone()))
        } else if let Some(g) = policy
            .applies_to
            .iter()
            .find(|g| subject.groups.contains(&g.id))
        {
            if subject.privileged && !policy.allow_privileged {
                Some(Skip::Privileged)
            } else {
                return Evaluation {
                    policy: Some(policy),
                    via: Some(g),
                    skipped,
                };
            }
        } else {
            Some(Skip::NotInScope)
        };
        if let Some(s) = skip {
            skipped.push((policy, s));
        }
    }
    Evaluation {
        policy: None,
        via: None,
        skipped,
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::load::parse_sources;

    const ALL: &str = "a0000000-0000-0000-0000-000000000001";
    const CONTRACTORS: &str = "a0000000-0000-0000-0000-000000000002";
    const ADMINS: &str = "a0000000-0000-0000-0000-000000000003";

    fn set() -> PolicySet {
        let text = format!(
            r#"
[[policy]]
name = "Admins"
priority = 1
applies_to = [{{ id = "{ADMINS}", name = "IT admins" }}]
actions = ["reset"]
methods = ["totp", "email"]
methods_required = 2
allow_privileged = true

[[policy]]
name = "Staff"
priority = 10
applies_to = [{{ id = "{ALL}", name = "All employees" }}]
excludes = [{{ id = "{CONTRACTORS}", name = "Contractors" }}]
actions = ["reset", "unlock"]
methods = ["email", "sms"]
methods_required = 1

[[policy]]
name = "Old"
priority = 5
enabled = false
applies_to = [{{ id = "{ALL}" }}]
actions = ["reset"]
methods = ["email"]
methods_required = 1
"#
        );
        parse_sources(&[(PathBuf::from("p.toml"), text)]).unwrap()
    }

    fn groups(ids: &[&str]) -> HashSet<ObjectId> {
        ids.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn first_matching_policy_by_priority_wins_and_disabled_ones_are_skipped() {
        let set = set();
        let g = groups(&[ALL]);
        let e = evaluate(
            &set,
            Subject {
                groups: &g,
                privileged: false,
            },
        );
        assert_eq!(e.policy.unwrap().name, "Staff");
        assert_eq!(
            e.explain(),
            "matched 'Staff' via group All employees; 'Admins' skipped: not a member of its groups; 'Old' skipped: disabled"
        );
    }

    #[test]
    fn excludes_win_over_applies_to() {
        let set = set();
        let g = groups(&[ALL, CONTRACTORS]);
        let e = evaluate(
            &set,
            Subject {
                groups: &g,
                privileged: false,
            },
        );
        assert!(e.policy.is_none());
        assert!(
            e.explain()
                .contains("'Staff' skipped: excluded by group Contractors"),
            "{}",
            e.explain()
        );
    }

    #[test]
    fn privileged_users_need_a_policy_that_names_them() {
        let set = set();
        let g = groups(&[ALL]);
        let e = evaluate(
            &set,
            Subject {
                groups: &g,
                privileged: true,
            },
        );
        assert!(
            e.policy.is_none(),
            "a privileged user matched a policy that does not allow them"
        );
        assert!(
            e.skipped
                .iter()
                .any(|(p, s)| p.name == "Staff" && *s == Skip::Privileged)
        );

        let g = groups(&[ALL, ADMINS]);
        let e = evaluate(
            &set,
            Subject {
                groups: &g,
                privileged: true,
            },
        );
        assert_eq!(e.policy.unwrap().name, "Admins");
    }

    #[test]
    fn nobody_matches_an_empty_membership() {
        let set = set();
        let g = HashSet::new();
        assert!(
            evaluate(
                &set,
                Subject {
                    groups: &g,
                    privileged: false
                }
            )
            .policy
            .is_none()
        );
    }
}
