//! Transitive membership, computed locally: Graph's delta queries report direct members only.
//! Entra allows nesting cycles (A in B in A); a walk expands each group once, so a cycle ends
//! it. There is no depth bound, as Graph's `transitiveMemberOf` has none: the mirror and the
//! live check before a change must agree on every nesting.

use std::collections::{HashMap, HashSet};

use latchkey_store::{GroupKind, MirrorParent, Store};
use latchkey_types::ObjectId;

use crate::error::MirrorError;

/// The groups and roles `member` is in, directly or through nested groups: one store query,
/// however deep the nesting (a store read per level cost 5 to 7 round trips on PostgreSQL).
pub(crate) async fn transitive(
    store: &dyn Store,
    member: ObjectId,
) -> Result<(HashSet<ObjectId>, HashSet<ObjectId>), MirrorError> {
    let mut groups = HashSet::new();
    let mut roles = HashSet::new();
    for (group, kind) in store.mirror_ancestors(&member).await? {
        match kind {
            GroupKind::Group => groups.insert(group),
            GroupKind::Role => roles.insert(group),
        };
    }
    Ok((groups, roles))
}

/// The nesting graph in memory (groups and roles only: a few entries per group), for reports
/// that resolve every user's transitive membership: each group's ancestors are computed once.
#[derive(Debug, Default)]
pub struct Nesting {
    parents: HashMap<ObjectId, Vec<(ObjectId, GroupKind)>>,
    kinds: HashMap<ObjectId, GroupKind>,
    memo: HashMap<ObjectId, std::sync::Arc<Ancestors>>,
}

/// A group's ancestors (itself included), split by kind.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Ancestors {
    pub groups: Vec<ObjectId>,
    pub roles: Vec<ObjectId>,
}

impl Nesting {
    pub async fn load(store: &dyn Store) -> Result<Nesting, MirrorError> {
        Ok(Nesting::from_edges(store.mirror_nesting().await?))
    }

    pub fn from_edges(edges: Vec<MirrorParent>) -> Nesting {
        let mut n = Nesting::default();
        for e in edges {
            n.kinds.insert(e.group, e.kind);
            n.parents
                .entry(e.member)
                .or_default()
                .push((e.group, e.kind));
        }
        n
    }

    /// The groups and roles a member of `direct` (with their kinds) is in, transitively.
    pub fn resolve(
        &mut self,
        direct: &[(ObjectId, GroupKind)],
    ) -> (HashSet<ObjectId>, HashSet<ObjectId>) {
        let mut groups = HashSet::new();
        let mut roles = HashSet::new();
        for (g, kind) in direct {
            match kind {
                GroupKind::Role => {
                    roles.insert(*g);
                }
                GroupKind::Group => {
                    let a = self.ancestors(*g);
                    groups.extend(a.groups.iter().copied());
                    roles.extend(a.roles.iter().copied());
                }
            }
        }
        (groups, roles)
    }

    /// The kind of a group or role the graph knows as a parent (`None`: a group without
    /// nested parents, or unknown).
    pub fn kind(&self, id: &ObjectId) -> Option<GroupKind> {
        self.kinds.get(id).copied()
    }

    fn ancestors(&mut self, group: ObjectId) -> std::sync::Arc<Ancestors> {
        if let Some(a) = self.memo.get(&group) {
            return a.clone();
        }
        // Breadth-first over the parents; cycles end at a group already seen.
        let mut seen: HashSet<ObjectId> = HashSet::from([group]);
        let mut out = Ancestors {
            groups: vec![group],
            roles: Vec::new(),
        };
        let mut frontier = vec![group];
        loop {
            let mut next = Vec::new();
            for g in &frontier {
                for (p, kind) in self.parents.get(g).map(Vec::as_slice).unwrap_or_default() {
                    if !seen.insert(*p) {
                        continue;
                    }
                    match kind {
                        GroupKind::Group => {
                            out.groups.push(*p);
                            next.push(*p);
                        }
                        GroupKind::Role => out.roles.push(*p),
                    }
                }
            }
            if next.is_empty() {
                break;
            }
            frontier = next;
        }
        let a = std::sync::Arc::new(out);
        self.memo.insert(group, a.clone());
        a
    }
}
