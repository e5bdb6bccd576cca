//! Change tracking for the delta queries (`/users/delta`, `/groups/delta`,
//! `/directoryRoles/delta`).
//!
//! One global sequence number counts every change. Each tracked object (user, group, activated
//! directory role) has exactly one entry in its kind's log, at the sequence of its latest change,
//! so "what changed after sequence S up to U" is a range of an ordered map, and a first round is
//! "every live object whose latest change is at or before U". A round fixes U when it starts:
//! objects that change while the client pages move past U and come in the next round, which is
//! the at-least-once, possibly-replayed behaviour Microsoft documents (delta-query-overview).
//! Removed objects keep a tombstone (reason + sequence); membership changes are kept per
//! container as (member, added|removed, sequence), so a later round can report the diff and a
//! first round can rebuild the member list as it was at U (stable paging of split groups).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::Hash;

use uuid::Uuid;

use super::Member;

/// Why an object is gone, as delta's `@removed.reason` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Soft-deleted (restorable): `"changed"`.
    Changed,
    /// Permanently deleted: `"deleted"`.
    Deleted,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Changed => "changed",
            Reason::Deleted => "deleted",
        }
    }
}

/// One membership change of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberChange {
    pub member: Member,
    pub added: bool,
    pub seq: u64,
}

/// The log of one kind of object, keyed by `K` (a GUID, or a role template id).
#[derive(Debug, Clone)]
pub struct Tracker<K> {
    log: BTreeMap<u64, K>,
    last: HashMap<K, u64>,
    removed: HashMap<K, Reason>,
    members: HashMap<K, Vec<MemberChange>>,
}

impl<K> Default for Tracker<K> {
    fn default() -> Self {
        Tracker {
            log: BTreeMap::new(),
            last: HashMap::new(),
            removed: HashMap::new(),
            members: HashMap::new(),
        }
    }
}

impl<K: Hash + Eq + Clone> Tracker<K> {
    /// Records a change of `k` (created, edited, restored) at `seq`.
    pub fn touch(&mut self, k: &K, seq: u64) {
        if let Some(old) = self.last.insert(k.clone(), seq) {
            self.log.remove(&old);
        }
        self.log.insert(seq, k.clone());
        self.removed.remove(k);
    }

    /// Records the removal of `k`.
    pub fn remove(&mut self, k: &K, reason: Reason, seq: u64) {
        self.touch(k, seq);
        self.removed.insert(k.clone(), reason);
    }

    /// Records a membership change of container `k` (which therefore changed too).
    pub fn member(&mut self, k: &K, member: Member, added: bool, seq: u64) {
        self.members
            .entry(k.clone())
            .or_default()
            .push(MemberChange { member, added, seq });
        self.touch(k, seq);
    }

    pub fn removed(&self, k: &K) -> Option<Reason> {
        self.removed.get(k).copied()
    }

    /// Entries with `from <= seq <= upto`, oldest first.
    pub fn range(&self, from: u64, upto: u64) -> impl Iterator<Item = (u64, &K)> {
        // BTreeMap::range panics on an inverted range: an empty round asks for one.
        (from <= upto)
            .then(|| self.log.range(from..=upto))
            .into_iter()
            .flatten()
            .map(|(s, k)| (*s, k))
    }

    /// The direct members of `k` as they were at `upto`, from its members now: later changes
    /// are undone newest first. Sorted, so a first round pages them in a stable order.
    pub fn members_as_of(&self, k: &K, now: &[Member], upto: u64) -> Vec<Member> {
        let mut set: HashSet<Member> = now.iter().copied().collect();
        if let Some(log) = self.members.get(k) {
            for c in log.iter().rev().take_while(|c| c.seq > upto) {
                if c.added {
                    set.remove(&c.member);
                } else {
                    set.insert(c.member);
                }
            }
        }
        let mut out: Vec<Member> = set.into_iter().collect();
        out.sort_by_key(|m| m.sort_key());
        out
    }

    /// Net membership changes of `k` with `since < seq <= upto`: the last change per member
    /// wins, in the order of those last changes.
    pub fn member_diff(&self, k: &K, since: u64, upto: u64) -> Vec<(Member, bool)> {
        let Some(log) = self.members.get(k) else {
            return Vec::new();
        };
        let start = log.partition_point(|c| c.seq <= since);
        let window: Vec<&MemberChange> =
            log[start..].iter().take_while(|c| c.seq <= upto).collect();
        let mut last: HashMap<Member, usize> = HashMap::new();
        for (i, c) in window.iter().enumerate() {
            last.insert(c.member, i);
        }
        window
            .iter()
            .enumerate()
            .filter(|(i, c)| last.get(&c.member) == Some(i))
            .map(|(_, c)| (c.member, c.added))
            .collect()
    }
}

impl Member {
    /// Users before groups, then by GUID.
    pub fn sort_key(&self) -> (u8, Uuid) {
        match self {
            Member::User(id) => (0, *id),
            Member::Group(id) => (1, *id),
        }
    }

    pub fn id(&self) -> Uuid {
        match self {
            Member::User(id) | Member::Group(id) => *id,
        }
    }
}

/// Every kind's log plus the global sequence and the token state.
#[derive(Debug, Clone)]
pub struct Changes {
    /// The latest sequence handed out (0 = nothing yet).
    pub seq: u64,
    pub users: Tracker<Uuid>,
    pub groups: Tracker<Uuid>,
    /// Keyed by role template id.
    pub roles: Tracker<String>,
    /// Bumped by `POST /_sim/delta/reset`: tokens of an older epoch need a resync.
    pub epoch: u64,
    /// HMAC key of the state tokens (random per simulator), so a tampered token is refused.
    pub key: [u8; 32],
}

impl Changes {
    pub fn new(key: [u8; 32]) -> Changes {
        Changes {
            seq: 0,
            users: Tracker::default(),
            groups: Tracker::default(),
            roles: Tracker::default(),
            epoch: 0,
            key,
        }
    }

    /// Hands out the next sequence number.
    pub fn bump(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_keeps_one_entry_per_object_and_rebuilds_old_membership() {
        let mut t: Tracker<Uuid> = Tracker::default();
        let g = Uuid::from_u128(1);
        let (a, b) = (
            Member::User(Uuid::from_u128(2)),
            Member::User(Uuid::from_u128(3)),
        );
        t.touch(&g, 1);
        t.member(&g, a, true, 2);
        t.member(&g, b, true, 3);
        t.member(&g, a, false, 4);
        assert_eq!(t.range(0, 10).count(), 1);
        assert_eq!(t.range(0, 10).next().map(|(s, _)| s), Some(4));
        // Now only b is a member; at sequence 2 only a was.
        assert_eq!(t.members_as_of(&g, &[b], 2), vec![a]);
        assert_eq!(t.member_diff(&g, 1, 4), vec![(b, true), (a, false)]);
        assert_eq!(t.member_diff(&g, 2, 3), vec![(b, true)]);
        t.remove(&g, Reason::Changed, 5);
        assert_eq!(t.removed(&g), Some(Reason::Changed));
    }
}
