//! `POST /_sim/churn`: N random, realistic directory changes (deterministic from a seed), with a
//! summary of what changed so a test can check that a delta mirror caught every one of them.
//!
//! Kinds (weights in %): add a user to a group (25), remove one (15), rename a user (15),
//! disable/enable (10), soft-delete a user (10), create a user (15), move a group into another
//! group (10: it leaves one parent group, if it has one, and joins another).

use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use super::generate::{FIRST, LAST, Rng, lean_user};
use super::{Member, State, stable_uuid};

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct MembershipChange {
    pub group: String,
    pub member: String,
}

/// What one churn run did (ids as strings, as Graph prints them).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ChurnSummary {
    pub applied: usize,
    /// Users whose properties changed (renamed, disabled, enabled), each once.
    pub users_changed: Vec<String>,
    pub users_created: Vec<String>,
    pub users_deleted: Vec<String>,
    pub members_added: Vec<MembershipChange>,
    pub members_removed: Vec<MembershipChange>,
    /// Groups whose direct membership changed, each once.
    pub groups_changed: Vec<String>,
}

impl ChurnSummary {
    fn user_changed(&mut self, id: Uuid) {
        let id = id.to_string();
        if !self.users_changed.contains(&id) {
            self.users_changed.push(id);
        }
    }

    fn member(&mut self, group: Uuid, member: Member, added: bool) {
        let c = MembershipChange {
            group: group.to_string(),
            member: member.id().to_string(),
        };
        if added {
            self.members_added.push(c);
        } else {
            self.members_removed.push(c);
        }
        let g = group.to_string();
        if !self.groups_changed.contains(&g) {
            self.groups_changed.push(g);
        }
    }
}

impl State {
    /// Applies `count` random changes. Picks that cannot apply (an empty tenant, a user already
    /// in the group) are retried with another kind, a bounded number of times.
    pub fn churn(&mut self, count: usize, seed: u64, now: OffsetDateTime) -> ChurnSummary {
        let mut rng = Rng::new(seed.wrapping_mul(31).wrapping_add(self.changes.seq));
        let mut s = ChurnSummary::default();
        let mut attempts = 0;
        while s.applied < count && attempts < count * 20 + 20 {
            attempts += 1;
            if self.churn_one(&mut rng, &mut s, now) {
                s.applied += 1;
            }
        }
        s
    }

    fn churn_one(&mut self, rng: &mut Rng, s: &mut ChurnSummary, now: OffsetDateTime) -> bool {
        let roll = rng.below(100);
        let (nu, ng) = (self.users.len(), self.groups.len());
        match roll {
            0..25 if nu > 0 && ng > 0 => {
                let u = Member::User(self.users[rng.below(nu)].id);
                let g = self.groups[rng.below(ng)].id;
                let ok = self.add_member(g, u).is_ok();
                if ok {
                    s.member(g, u, true);
                }
                ok
            }
            25..40 if ng > 0 => {
                let gi = rng.below(ng);
                let users: Vec<Member> = self.groups[gi]
                    .members
                    .iter()
                    .filter(|m| matches!(m, Member::User(_)))
                    .copied()
                    .collect();
                if users.is_empty() {
                    return false;
                }
                let m = users[rng.below(users.len())];
                let g = self.groups[gi].id;
                let ok = self.remove_member(g, m).is_ok();
                if ok {
                    s.member(g, m, false);
                }
                ok
            }
            40..55 if nu > 0 => {
                let i = rng.below(nu);
                let u = &mut self.users[i];
                let given = u.given_name.clone().unwrap_or_default();
                let surname = *rng.pick(LAST);
                u.surname = Some(surname.to_owned());
                u.display_name = format!("{given} {surname}");
                let id = u.id;
                self.touch_user(i);
                s.user_changed(id);
                true
            }
            55..65 if nu > 0 => {
                let i = rng.below(nu);
                self.users[i].account_enabled = !self.users[i].account_enabled;
                let id = self.users[i].id;
                self.touch_user(i);
                s.user_changed(id);
                true
            }
            65..75 if nu > 1 => {
                let i = rng.below(nu);
                let id = self.soft_delete_user(i, now);
                s.users_changed.retain(|x| *x != id.to_string());
                s.users_deleted.push(id.to_string());
                true
            }
            75..90 => {
                let n = self.changes.seq;
                let first = *rng.pick(FIRST);
                let last = *rng.pick(LAST);
                let domain = self.tenant.initial_domain.clone();
                let upn = format!("{}.{}.c{n}@{domain}", first, last.replace('\'', ""))
                    .to_ascii_lowercase();
                if self.user_index(&upn).is_some() {
                    return false;
                }
                let id = stable_uuid(&format!("churn:{}:{upn}", self.tenant_id));
                let password = self
                    .users
                    .first()
                    .map(|u| u.password.clone())
                    .unwrap_or_else(|| latchkey_types::Secret::new("Generated-Passw0rd!".into()));
                self.insert_user(lean_user(id, upn, first, last, &password, now));
                s.users_created.push(id.to_string());
                if ng > 0 {
                    let g = self.groups[rng.below(ng)].id;
                    if self.add_member(g, Member::User(id)).is_ok() {
                        s.member(g, Member::User(id), true);
                    }
                }
                true
            }
            90..100 if ng > 2 => {
                let child = self.groups[rng.below(ng)].id;
                let target = self.groups[rng.below(ng)].id;
                let me = Member::Group(child);
                if child == target
                    || self
                        .groups
                        .iter()
                        .any(|g| g.id == target && g.members.contains(&me))
                {
                    return false;
                }
                if let Some(parent) = self
                    .groups
                    .iter()
                    .find(|g| g.members.contains(&me))
                    .map(|g| g.id)
                    && self.remove_member(parent, me).is_ok()
                {
                    s.member(parent, me, false);
                }
                let ok = self.add_member(target, me).is_ok();
                if ok {
                    s.member(target, me, true);
                }
                ok
            }
            _ => false,
        }
    }
}
