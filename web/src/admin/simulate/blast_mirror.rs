//! The blast radius read from the directory mirror while it is usable: the same population and
//! numbers as the Graph path ([`super::blast_radius`], the fallback), over every user, with no
//! bound and no per-user request.
//!
//! **Why this is fast.** Users stream from the store in pages of [`PAGE`], in id order; each
//! user's transitive groups and roles come from [`Nesting`] in memory. The effect of the change
//! depends only on which groups named by either set the user is in (and on privilege), so it is
//! computed once per such combination. Only the counts and the first [`MAX_LISTED`] names of
//! each direction (by UPN, as the Graph path lists them) are kept.
//!
//! Roles are known for every user here, so no look-up is made; `role_lookups` still counts the
//! users whose privilege decided the outcome, the ones the Graph path looks up, so that both
//! paths report the same numbers.

use std::collections::HashMap;
use std::sync::Arc;

use latchkey_graph::{GraphClient, GraphError};
use latchkey_mirror::{MirrorError, Nesting};
use latchkey_policy::PolicySet;
use latchkey_selfservice::SelfService;
use latchkey_store::{Store, StoreError};

use super::{Blast, Effect, MAX_LISTED, classify, outcome};
use crate::admin::reports::coverage_mirror::Relevant;
use crate::admin::reports::source;

/// Users read from the store at a time.
pub const PAGE: u32 = 5_000;

/// Why the blast radius could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum BlastError {
    #[error("directory: {0}")]
    Graph(#[from] GraphError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("mirror: {0}")]
    Mirror(#[from] MirrorError),
}

/// The blast radius from the mirror when it is usable, else from Graph; says which and how old.
pub async fn blast_radius(
    s: &SelfService,
    graph: &GraphClient,
    old: &PolicySet,
    new: &PolicySet,
) -> Result<Blast, BlastError> {
    let used = source::usable(s.mirror.as_ref()).await;
    let mut blast = match &used {
        Some(m) => from_mirror(m.mirror.store(), old, new, PAGE).await?,
        None => super::blast_radius(graph, old, new).await?,
    };
    (blast.source, blast.mirror_as_of, blast.mirror_age_seconds) =
        source::describe(used.as_ref(), s.clock.now());
    Ok(blast)
}

/// Compares `old` and `new` over the mirror's users of every group either names, reading
/// `page` users at a time.
pub async fn from_mirror(
    store: &Arc<dyn Store>,
    old: &PolicySet,
    new: &PolicySet,
    page: u32,
) -> Result<Blast, BlastError> {
    let relevant = Relevant::of(&[old, new]);
    let mut blast = Blast {
        groups: super::referenced([old, new]).len(),
        ..Blast::default()
    };
    let mut nesting = Nesting::load(store.as_ref()).await?;
    // Per combination of named groups: the effect if not privileged, and if privileged.
    let mut memo: HashMap<Vec<u32>, (Effect, Effect)> = HashMap::new();
    let mut pages = latchkey_mirror::UserPages::new(Arc::clone(store), page);
    while let Some(users) = pages.next().await? {
        for u in users {
            let (groups, roles) = nesting.resolve(&u.direct);
            let key = relevant.key(&groups);
            // In no named group: no policy applies before or after.
            if key.is_empty() {
                continue;
            }
            if !u.enabled {
                blast.disabled += 1;
                continue;
            }
            blast.users += 1;
            let (plain, privileged) = *memo.entry(key).or_insert_with_key(|k| {
                let g = relevant.groups(k);
                let change = |p: bool| classify(&outcome(old, &g, p), &outcome(new, &g, p));
                (change(false), change(true))
            });
            let effect = if plain == privileged {
                plain
            } else {
                blast.role_lookups += 1;
                if roles.is_empty() { plain } else { privileged }
            };
            match effect {
                Effect::Blocked => {
                    blast.blocked += 1;
                    keep_first(&mut blast.blocked_names, u.user_principal_name);
                }
                Effect::Admitted => {
                    blast.admitted += 1;
                    keep_first(&mut blast.admitted_names, u.user_principal_name);
                }
                Effect::Moved => blast.moved += 1,
                Effect::None => {}
            }
        }
    }
    Ok(blast)
}

/// Keeps `names` the [`MAX_LISTED`] first UPNs in order, as the Graph path lists them after
/// sorting every user (here without keeping every user).
fn keep_first(names: &mut Vec<String>, upn: String) {
    let at = names.partition_point(|n| *n <= upn);
    if at < MAX_LISTED {
        names.insert(at, upn);
        names.truncate(MAX_LISTED);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_first_keeps_the_smallest_names_in_order() {
        let mut names = Vec::new();
        for i in (0..200).rev() {
            keep_first(&mut names, format!("u{i:03}"));
        }
        assert_eq!(names.len(), MAX_LISTED);
        assert_eq!(names.first().map(String::as_str), Some("u000"));
        assert_eq!(names.last().map(String::as_str), Some("u049"));
    }
}
