//! Graph's delta pages as the store's mirror pages.

use latchkey_graph::{
    DeltaGroup, DeltaItem, DeltaNext, DeltaPage, MemberKind, Page, RegistrationDetails, User,
};
use latchkey_store::{
    MemberEdit, MemberType, MirrorCollection, MirrorGroup, MirrorLink, MirrorPage, MirrorUser,
};

use crate::error::MirrorError;
use crate::keys::user_keys;

fn link(next: &DeltaNext) -> MirrorLink {
    match next {
        DeltaNext::More(l) => MirrorLink::More(l.as_str().to_string()),
        DeltaNext::Done(l) => MirrorLink::Done(l.as_str().to_string()),
    }
}

fn empty(collection: MirrorCollection, begins: bool, next: &DeltaNext) -> MirrorPage {
    MirrorPage {
        collection,
        begins_full_round: begins,
        users: Vec::new(),
        groups: Vec::new(),
        members: Vec::new(),
        removed: Vec::new(),
        registrations: Vec::new(),
        link: link(next),
    }
}

/// The user as the mirror stores it: its keys, and Graph's JSON of it as the profile.
pub(crate) fn mirror_user(user: &User) -> Result<MirrorUser, MirrorError> {
    Ok(MirrorUser {
        id: user.id,
        user_principal_name: user.user_principal_name.as_str().to_string(),
        display_name: user.display_name.clone(),
        enabled: user.account_enabled != Some(false),
        synced: user.is_synced(),
        keys: user_keys(user),
        profile: serde_json::to_string(user).map_err(|e| MirrorError::Profile(e.to_string()))?,
    })
}

pub(crate) fn users_page(page: &DeltaPage<User>, begins: bool) -> Result<MirrorPage, MirrorError> {
    let mut out = empty(MirrorCollection::Users, begins, &page.next);
    for item in &page.items {
        match item {
            DeltaItem::Present(u) => out.users.push(mirror_user(u)?),
            DeltaItem::Removed { id, .. } => out.removed.push(*id),
        }
    }
    Ok(out)
}

pub(crate) fn groups_page(
    page: &DeltaPage<DeltaGroup>,
    collection: MirrorCollection,
    begins: bool,
) -> MirrorPage {
    let mut out = empty(collection, begins, &page.next);
    for item in &page.items {
        match item {
            DeltaItem::Present(g) => {
                out.groups.push(MirrorGroup {
                    id: g.id,
                    display_name: g.display_name.clone(),
                    role_template_id: g.role_template_id,
                });
                out.members.extend(g.members.iter().map(|m| MemberEdit {
                    group: g.id,
                    member: m.id,
                    member_type: match m.kind {
                        MemberKind::User => MemberType::User,
                        MemberKind::Group => MemberType::Group,
                        MemberKind::Other => MemberType::Other,
                    },
                    removed: m.removed,
                }));
            }
            DeltaItem::Removed { id, .. } => out.removed.push(*id),
        }
    }
    out
}

/// A page of the registration report. The report has no delta: its last page completes a full
/// round (an empty link: the next round starts from the first page).
pub(crate) fn registrations_page(page: &Page<RegistrationDetails>, begins: bool) -> MirrorPage {
    MirrorPage {
        collection: MirrorCollection::RegistrationDetails,
        begins_full_round: begins,
        users: Vec::new(),
        groups: Vec::new(),
        members: Vec::new(),
        removed: Vec::new(),
        registrations: page
            .items
            .iter()
            .map(|r| (r.id, r.methods_registered.clone()))
            .collect(),
        link: match &page.next {
            Some(n) => MirrorLink::More(n.as_str().to_string()),
            None => MirrorLink::Done(String::new()),
        },
    }
}
