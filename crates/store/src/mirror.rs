//! The directory mirror's tables (docs/directory-mirror.md): users, groups and directory roles
//! with their direct members, as Microsoft Graph delta queries report them, and per tracked
//! collection where its rounds stand. One instance syncs at a time (a lease); every instance
//! reads. The store keeps what it is given: the mirror crate decides what a user's sign-in keys
//! are and what its profile holds (an opaque text here).
//!
//! **Full rounds and what they did not see.** A collection has a generation. The first page of
//! a full round (the first sync, or a resync Graph asked for) starts a new generation; every
//! object and membership a page writes is stamped with the current one; the page that completes
//! a full round deletes what is stamped older — objects deleted while the mirror could not
//! follow. Pages are applied in one transaction each, together with the link the round goes on
//! from, so a crash resumes at the page after the last one applied.

use latchkey_types::ObjectId;
use time::OffsetDateTime;

use crate::error::{Result, StoreError};

/// A collection the mirror tracks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MirrorCollection {
    Users,
    Groups,
    DirectoryRoles,
    /// Microsoft's registration report (`userRegistrationDetails`): no delta query, so every
    /// round of it is a full one; which methods each user registered in Entra.
    RegistrationDetails,
}

impl MirrorCollection {
    pub const ALL: [MirrorCollection; 4] = [
        Self::Users,
        Self::Groups,
        Self::DirectoryRoles,
        Self::RegistrationDetails,
    ];
    /// The collections delta queries track: the mirror is usable when all of them are synced.
    pub const DELTA: [MirrorCollection; 3] = [Self::Users, Self::Groups, Self::DirectoryRoles];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Users => "users",
            Self::Groups => "groups",
            Self::DirectoryRoles => "directoryRoles",
            Self::RegistrationDetails => "registrationDetails",
        }
    }

    pub fn parse(text: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == text)
            .ok_or(StoreError::Corrupt {
                table: "mirror_sync",
                column: "collection",
            })
    }

    /// The kind of the groups this collection holds (`None` for the others).
    pub fn group_kind(self) -> Option<GroupKind> {
        match self {
            Self::Users | Self::RegistrationDetails => None,
            Self::Groups => Some(GroupKind::Group),
            Self::DirectoryRoles => Some(GroupKind::Role),
        }
    }
}

/// A group, or a directory role (whose members are privileged).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupKind {
    Group,
    Role,
}

impl GroupKind {
    pub(crate) fn as_i64(self) -> i64 {
        match self {
            Self::Group => 0,
            Self::Role => 1,
        }
    }
    pub(crate) fn from_i64(v: i64) -> Result<Self> {
        match v {
            0 => Ok(Self::Group),
            1 => Ok(Self::Role),
            _ => Err(StoreError::Corrupt {
                table: "mirror_groups",
                column: "kind",
            }),
        }
    }
}

/// What kind of object a membership names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemberType {
    User,
    Group,
    Other,
}

impl MemberType {
    pub(crate) fn as_i64(self) -> i64 {
        match self {
            Self::User => 0,
            Self::Group => 1,
            Self::Other => 2,
        }
    }
}

/// A user as the mirror keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorUser {
    pub id: ObjectId,
    pub user_principal_name: String,
    pub display_name: Option<String>,
    /// `accountEnabled` is not `false`.
    pub enabled: bool,
    /// `onPremisesSyncEnabled` is `true`.
    pub synced: bool,
    /// The exact, canonical keys identification looks the user up by (chosen by the mirror
    /// crate); several users may share one.
    pub keys: Vec<String>,
    /// The mirror crate's serialized user (opaque to the store).
    pub profile: String,
}

/// A group or directory role. `display_name` `None` keeps the stored one (later pages of a
/// large group carry only members).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorGroup {
    pub id: ObjectId,
    pub display_name: Option<String>,
    pub role_template_id: Option<ObjectId>,
}

/// One membership change of a page, applied in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberEdit {
    pub group: ObjectId,
    pub member: ObjectId,
    pub member_type: MemberType,
    pub removed: bool,
}

/// Where a round goes on after a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MirrorLink {
    /// More pages in this round (a nextLink).
    More(String),
    /// The round is complete; the next starts here (a deltaLink).
    Done(String),
}

/// One delta page, applied atomically with the link after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorPage {
    pub collection: MirrorCollection,
    /// The first page of a full round: a new generation starts before this page is applied.
    pub begins_full_round: bool,
    /// Users created or changed (users collection).
    pub users: Vec<MirrorUser>,
    /// Groups or roles created or changed (their collection).
    pub groups: Vec<MirrorGroup>,
    pub members: Vec<MemberEdit>,
    /// Objects that left the collection (`@removed`).
    pub removed: Vec<ObjectId>,
    /// Registration details: each user's registered method names, as Microsoft lists them
    /// (`mobilePhone`, `email`, ...).
    pub registrations: Vec<(ObjectId, Vec<String>)>,
    pub link: MirrorLink,
}

/// Where one collection's sync stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorSyncState {
    pub collection: MirrorCollection,
    /// The link to go on from (a nextLink inside a round, a deltaLink between rounds); `None`
    /// before the first page.
    pub link: Option<MirrorLink>,
    /// The round in progress (or the last one) is a full round.
    pub full_round: bool,
    /// When the last round of any kind completed.
    pub last_round_at: Option<OffsetDateTime>,
    /// When the last full round completed (the mirror is usable from then on).
    pub last_full_round_at: Option<OffsetDateTime>,
    /// Pages applied in the round in progress.
    pub pages_in_round: u64,
    /// The last error a round met, and when; cleared by the next completed round.
    pub last_error: Option<(OffsetDateTime, String)>,
}

/// How much the mirror holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MirrorCounts {
    pub users: u64,
    pub groups: u64,
    pub roles: u64,
    pub memberships: u64,
}

/// A user of a report page with its direct groups and roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorListedUser {
    pub id: ObjectId,
    pub user_principal_name: String,
    pub display_name: Option<String>,
    pub enabled: bool,
    pub synced: bool,
    /// Groups and roles the user is a direct member of.
    pub direct: Vec<(ObjectId, GroupKind)>,
}

/// A direct membership of a group or role in another group (nesting), for local transitive
/// closure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MirrorParent {
    pub member: ObjectId,
    pub group: ObjectId,
    pub kind: GroupKind,
}

/// The longest error text kept in the sync state.
pub(crate) const MAX_ERROR: usize = 500;

pub(crate) fn clip_error(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .take(MAX_ERROR)
        .collect()
}

/// Stored registered-method names (comma-separated; Microsoft's names have no comma).
pub(crate) fn split_methods(text: &str) -> Vec<String> {
    text.split(',')
        .filter(|m| !m.is_empty())
        .map(str::to_string)
        .collect()
}

/// [`crate::MirrorStore::mirror_ancestors`]: a walk up the membership edges. `UNION` (not
/// `UNION ALL`) queues a group only the first time it is reached, on both backends, so each
/// group is expanded once: a cycle ends there, and the work is one index lookup per ancestor
/// however the groups nest. No depth bound, as Graph's `transitiveMemberOf` has none.
macro_rules! ancestors_sql {
    ($member:literal) => {
        concat!(
            "WITH RECURSIVE up(group_id, group_kind) AS ( ",
            "SELECT group_id, group_kind FROM mirror_members WHERE member_id = ",
            $member,
            " UNION ",
            "SELECT m.group_id, m.group_kind ",
            "FROM up JOIN mirror_members m ON m.member_id = up.group_id ",
            // Only groups are followed (0 is GroupKind::Group), never roles.
            "WHERE up.group_kind = 0",
            " ) SELECT group_id, group_kind FROM up"
        )
    };
}
pub(crate) const ANCESTORS_POSTGRES: &str = ancestors_sql!("$1");
pub(crate) const ANCESTORS_SQLITE: &str = ancestors_sql!("?1");
