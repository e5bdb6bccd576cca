//! Directory writes that delta queries must see: creating, editing, soft- and hard-deleting and
//! restoring users and groups, group membership and directory role changes. Every write goes
//! through here so the change log ([`super::changes`]) and the id index stay right.

use time::OffsetDateTime;
use uuid::Uuid;

use super::changes::Reason;
use super::{Group, Member, State, User};

/// A soft-deleted user: gone from every read, restorable with its memberships.
#[derive(Debug, Clone)]
pub struct DeletedUser {
    pub user: User,
    pub deleted: OffsetDateTime,
    /// Groups it was a direct member of.
    pub groups: Vec<Uuid>,
}

/// A soft-deleted group, with its members and the groups it was a member of.
#[derive(Debug, Clone)]
pub struct DeletedGroup {
    pub group: Group,
    pub deleted: OffsetDateTime,
    pub member_of: Vec<Uuid>,
}

/// Why a membership write was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberError {
    NoGroup,
    NoMember,
    AlreadyMember,
    NotMember,
}

impl State {
    /// Rebuilds the GUID → position index of `users` (after bulk changes).
    pub fn reindex_users(&mut self) {
        self.user_pos = self
            .users
            .iter()
            .enumerate()
            .map(|(i, u)| (u.id, i))
            .collect();
    }

    /// Position of a live user by GUID: the index when it is right, else a scan (a write that
    /// bypassed [`State::insert_user`] costs time, never a wrong answer).
    pub fn user_pos(&self, id: Uuid) -> Option<usize> {
        if let Some(&i) = self.user_pos.get(&id)
            && self.users.get(i).is_some_and(|u| u.id == id)
        {
            return Some(i);
        }
        self.users.iter().position(|u| u.id == id)
    }

    /// Adds a user (`POST /users`, churn, restore) and logs its creation.
    pub fn insert_user(&mut self, user: User) {
        let seq = self.changes.bump();
        self.changes.users.touch(&user.id, seq);
        for r in &user.roles {
            self.changes
                .roles
                .member(r, Member::User(user.id), true, seq);
        }
        self.user_pos.insert(user.id, self.users.len());
        self.users.push(user);
    }

    /// Logs a change of the user at `index` (a PATCH, a rename, enable/disable).
    pub fn touch_user(&mut self, index: usize) {
        let seq = self.changes.bump();
        let id = self.users[index].id;
        self.changes.users.touch(&id, seq);
    }

    /// `DELETE /users/{id}`: the user leaves every read and every group; delta reports it as
    /// removed with reason `changed` (restorable).
    pub fn soft_delete_user(&mut self, index: usize, now: OffsetDateTime) -> Uuid {
        let user = self.users.swap_remove(index);
        self.user_pos.remove(&user.id);
        if let Some(moved) = self.users.get(index) {
            self.user_pos.insert(moved.id, index);
        }
        let me = Member::User(user.id);
        let mut groups = Vec::new();
        for gi in 0..self.groups.len() {
            if self.groups[gi].members.contains(&me) {
                groups.push(self.groups[gi].id);
                self.groups[gi].members.retain(|m| *m != me);
                let seq = self.changes.bump();
                let gid = self.groups[gi].id;
                self.changes.groups.member(&gid, me, false, seq);
            }
        }
        for r in &user.roles {
            let seq = self.changes.bump();
            self.changes.roles.member(r, me, false, seq);
        }
        let seq = self.changes.bump();
        self.changes.users.remove(&user.id, Reason::Changed, seq);
        let id = user.id;
        self.deleted_users.insert(
            id,
            DeletedUser {
                user,
                deleted: now,
                groups,
            },
        );
        id
    }

    /// `POST /directory/deletedItems/{id}/restore` for a user: back with its memberships.
    pub fn restore_user(&mut self, id: Uuid) -> bool {
        let Some(d) = self.deleted_users.remove(&id) else {
            return false;
        };
        self.insert_user(d.user);
        for g in d.groups {
            let _ = self.add_member(g, Member::User(id));
        }
        true
    }

    /// `DELETE /groups/{id}`: soft delete; it also leaves the groups it was nested in.
    pub fn soft_delete_group(&mut self, id: Uuid, now: OffsetDateTime) -> bool {
        let Some(pos) = self.groups.iter().position(|g| g.id == id) else {
            return false;
        };
        let group = self.groups.remove(pos);
        let me = Member::Group(id);
        let mut member_of = Vec::new();
        for gi in 0..self.groups.len() {
            if self.groups[gi].members.contains(&me) {
                member_of.push(self.groups[gi].id);
                self.groups[gi].members.retain(|m| *m != me);
                let seq = self.changes.bump();
                let gid = self.groups[gi].id;
                self.changes.groups.member(&gid, me, false, seq);
            }
        }
        let seq = self.changes.bump();
        self.changes.groups.remove(&id, Reason::Changed, seq);
        self.deleted_groups.insert(
            id,
            DeletedGroup {
                group,
                deleted: now,
                member_of,
            },
        );
        true
    }

    /// `DELETE /directory/deletedItems/{id}`: gone for good (delta reason `deleted`).
    pub fn purge(&mut self, id: Uuid) -> bool {
        if self.deleted_users.remove(&id).is_some() {
            let seq = self.changes.bump();
            self.changes.users.remove(&id, Reason::Deleted, seq);
            true
        } else if self.deleted_groups.remove(&id).is_some() {
            let seq = self.changes.bump();
            self.changes.groups.remove(&id, Reason::Deleted, seq);
            true
        } else {
            false
        }
    }

    /// Whether `m` is a live user or group.
    pub fn member_exists(&self, m: Member) -> bool {
        match m {
            Member::User(id) => self.user_pos(id).is_some(),
            Member::Group(id) => self.groups.iter().any(|g| g.id == id),
        }
    }

    /// A live directory object by GUID, as a member reference.
    pub fn directory_object(&self, id: Uuid) -> Option<Member> {
        if self.user_pos(id).is_some() {
            Some(Member::User(id))
        } else if self.groups.iter().any(|g| g.id == id) {
            Some(Member::Group(id))
        } else {
            None
        }
    }

    /// `POST /groups/{id}/members/$ref`.
    pub fn add_member(&mut self, group: Uuid, m: Member) -> Result<(), MemberError> {
        if !self.member_exists(m) {
            return Err(MemberError::NoMember);
        }
        let g = self
            .groups
            .iter_mut()
            .find(|g| g.id == group)
            .ok_or(MemberError::NoGroup)?;
        if g.members.contains(&m) {
            return Err(MemberError::AlreadyMember);
        }
        g.members.push(m);
        let seq = self.changes.bump();
        self.changes.groups.member(&group, m, true, seq);
        Ok(())
    }

    /// `DELETE /groups/{id}/members/{member}/$ref`.
    pub fn remove_member(&mut self, group: Uuid, m: Member) -> Result<(), MemberError> {
        let g = self
            .groups
            .iter_mut()
            .find(|g| g.id == group)
            .ok_or(MemberError::NoGroup)?;
        let before = g.members.len();
        g.members.retain(|x| *x != m);
        if g.members.len() == before {
            return Err(MemberError::NotMember);
        }
        let seq = self.changes.bump();
        self.changes.groups.member(&group, m, false, seq);
        Ok(())
    }

    /// Replaces a user's directory roles (template ids), logging each role's member change.
    pub fn set_user_roles(&mut self, index: usize, roles: std::collections::BTreeSet<String>) {
        let id = self.users[index].id;
        let old = std::mem::replace(&mut self.users[index].roles, roles.clone());
        for r in old.difference(&roles) {
            let seq = self.changes.bump();
            self.changes.roles.member(r, Member::User(id), false, seq);
        }
        for r in roles.difference(&old) {
            let seq = self.changes.bump();
            self.changes.roles.member(r, Member::User(id), true, seq);
        }
    }

    /// Activated directory roles (template ids): Global Administrator (always activated, as in
    /// every tenant), every role a user or service principal holds, and any role that ever had
    /// a member (a role stays activated when its last member leaves).
    pub fn activated_roles(&self) -> Vec<String> {
        let mut set: std::collections::BTreeSet<String> =
            std::collections::BTreeSet::from([crate::roles::GLOBAL_ADMINISTRATOR.to_owned()]);
        for u in &self.users {
            set.extend(u.roles.iter().cloned());
        }
        for a in &self.apps {
            set.extend(a.roles.iter().cloned());
        }
        for (_, r) in self.changes.roles.range(0, u64::MAX) {
            set.insert(r.clone());
        }
        set.into_iter().collect()
    }

    /// Seeds the change log from the built tenant: every object is "created" once, in order.
    pub fn seed_changes(&mut self) {
        let ids: Vec<Uuid> = self.users.iter().map(|u| u.id).collect();
        for id in ids {
            let seq = self.changes.bump();
            self.changes.users.touch(&id, seq);
        }
        let gids: Vec<Uuid> = self.groups.iter().map(|g| g.id).collect();
        for id in gids {
            let seq = self.changes.bump();
            self.changes.groups.touch(&id, seq);
        }
        for r in self.activated_roles() {
            let seq = self.changes.bump();
            self.changes.roles.touch(&r, seq);
        }
        self.reindex_users();
    }
}
