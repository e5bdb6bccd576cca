//! The directory mirror's tables: pages applied under the lease, rounds that resume, full rounds
//! that delete what they did not see, and the reads identification and reports use.

use std::sync::Arc;

use latchkey_store::{
    GroupKind, MemberEdit, MemberType, MirrorCollection, MirrorGroup, MirrorLink, MirrorPage,
    MirrorUser, Store,
};
use latchkey_types::ObjectId;

use crate::backends::backend_tests;
use crate::support::{mins, secs, t0};

fn id(n: u8) -> ObjectId {
    format!("00000000-0000-4000-8000-0000000000{n:02x}")
        .parse()
        .unwrap()
}

fn user(n: u8, keys: &[&str]) -> MirrorUser {
    MirrorUser {
        id: id(n),
        user_principal_name: format!("u{n}@contoso.com"),
        display_name: Some(format!("User {n}")),
        enabled: true,
        synced: false,
        keys: keys.iter().map(|k| k.to_string()).collect(),
        profile: format!("{{\"n\":{n}}}"),
    }
}

fn group(n: u8, name: Option<&str>) -> MirrorGroup {
    MirrorGroup {
        id: id(n),
        display_name: name.map(str::to_string),
        role_template_id: None,
    }
}

fn add(group: u8, member: u8, member_type: MemberType) -> MemberEdit {
    MemberEdit {
        group: id(group),
        member: id(member),
        member_type,
        removed: false,
    }
}

fn page(collection: MirrorCollection, begins: bool, link: MirrorLink) -> MirrorPage {
    MirrorPage {
        collection,
        begins_full_round: begins,
        users: Vec::new(),
        groups: Vec::new(),
        members: Vec::new(),
        removed: Vec::new(),
        registrations: Vec::new(),
        link,
    }
}

fn more(s: &str) -> MirrorLink {
    MirrorLink::More(s.into())
}
fn done(s: &str) -> MirrorLink {
    MirrorLink::Done(s.into())
}

async fn holder_applies(store: &Arc<dyn Store>, p: &MirrorPage) {
    assert!(store.apply_mirror_page("a", p, t0()).await.unwrap());
}

async fn rounds_resume_and_incremental_rounds_merge(store: Arc<dyn Store>) {
    assert!(store.lease_mirror("a", t0(), secs(30)).await.unwrap());
    // A full round of users over two pages.
    let mut p1 = page(MirrorCollection::Users, true, more("next-1"));
    p1.users = vec![
        user(1, &["addr:alice@contoso.com"]),
        user(2, &["addr:bob@contoso.com"]),
    ];
    holder_applies(&store, &p1).await;
    let state = store.mirror_sync_state().await.unwrap();
    assert_eq!(state.len(), 1);
    assert_eq!(state[0].link, Some(more("next-1")));
    assert!(state[0].full_round);
    assert_eq!(state[0].pages_in_round, 1);
    assert_eq!(state[0].last_full_round_at, None, "not complete yet");
    let mut p2 = page(MirrorCollection::Users, false, done("delta-1"));
    p2.users = vec![user(3, &["addr:carol@contoso.com", "sam:carol"])];
    holder_applies(&store, &p2).await;
    let state = &store.mirror_sync_state().await.unwrap()[0];
    assert_eq!(state.link, Some(done("delta-1")));
    assert_eq!(state.pages_in_round, 2);
    assert_eq!(state.last_full_round_at, Some(t0()));

    // Groups with nested members.
    let mut g = page(MirrorCollection::Groups, true, done("gdelta-1"));
    g.groups = vec![group(10, Some("Staff")), group(11, Some("Sales"))];
    g.members = vec![
        add(10, 1, MemberType::User),
        add(10, 11, MemberType::Group),
        add(11, 2, MemberType::User),
    ];
    holder_applies(&store, &g).await;

    // An incremental round: bob changes his address, carol is removed, alice leaves Staff.
    let mut inc = page(MirrorCollection::Users, false, done("delta-2"));
    inc.users = vec![user(2, &["addr:robert@contoso.com"])];
    inc.removed = vec![id(3)];
    holder_applies(&store, &inc).await;
    let mut ginc = page(MirrorCollection::Groups, false, done("gdelta-2"));
    ginc.members = vec![MemberEdit {
        removed: true,
        ..add(10, 1, MemberType::User)
    }];
    ginc.groups = vec![group(10, None)];
    holder_applies(&store, &ginc).await;

    let found = store
        .mirror_find_users("addr:alice@contoso.com", 2)
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].profile, "{\"n\":1}");
    assert!(
        store
            .mirror_find_users("addr:bob@contoso.com", 2)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .mirror_find_users("addr:robert@contoso.com", 2)
            .await
            .unwrap()[0]
            .id,
        id(2)
    );
    assert!(
        store
            .mirror_find_users("sam:carol", 2)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.mirror_user(&id(3)).await.unwrap().is_none());
    let parents = store.mirror_parents(&[id(1), id(2), id(11)]).await.unwrap();
    let mut pairs: Vec<(ObjectId, ObjectId)> =
        parents.iter().map(|p| (p.member, p.group)).collect();
    pairs.sort();
    assert_eq!(pairs, vec![(id(2), id(11)), (id(11), id(10))]);
    let nesting = store.mirror_nesting().await.unwrap();
    assert_eq!(nesting.len(), 1);
    assert_eq!(
        (nesting[0].member, nesting[0].group, nesting[0].kind),
        (id(11), id(10), GroupKind::Group)
    );
    // The name survives a page without one.
    let names = store.mirror_group_names(&[id(10), id(99)]).await.unwrap();
    assert_eq!(
        names,
        vec![(id(10), Some("Staff".to_string()), GroupKind::Group)]
    );

    let listed = store.mirror_users_page(None, 10).await.unwrap();
    assert_eq!(
        listed.iter().map(|u| u.id).collect::<Vec<_>>(),
        vec![id(1), id(2)]
    );
    assert!(listed[0].direct.is_empty());
    assert_eq!(listed[1].direct, vec![(id(11), GroupKind::Group)]);
    let next = store.mirror_users_page(Some(id(1)), 10).await.unwrap();
    assert_eq!(next.len(), 1);
    let counts = store.mirror_counts().await.unwrap();
    assert_eq!(
        (
            counts.users,
            counts.groups,
            counts.roles,
            counts.memberships
        ),
        (2, 2, 0, 2)
    );
}

async fn a_full_round_deletes_what_it_did_not_see(store: Arc<dyn Store>) {
    assert!(store.lease_mirror("a", t0(), secs(30)).await.unwrap());
    let mut first = page(MirrorCollection::Users, true, done("d1"));
    first.users = vec![user(1, &["k1"]), user(2, &["k2"])];
    holder_applies(&store, &first).await;
    let mut g = page(MirrorCollection::Groups, true, done("g1"));
    g.groups = vec![group(10, Some("A")), group(11, Some("B"))];
    g.members = vec![
        add(10, 1, MemberType::User),
        add(10, 2, MemberType::User),
        add(11, 1, MemberType::User),
    ];
    holder_applies(&store, &g).await;
    // A role round too: its sweep must not touch groups.
    let mut r = page(MirrorCollection::DirectoryRoles, true, done("r1"));
    r.groups = vec![group(20, Some("Global Administrator"))];
    r.members = vec![add(20, 2, MemberType::User)];
    holder_applies(&store, &r).await;

    // Graph asked for a resync: a new full round over two pages that no longer lists user 2,
    // group 11, or user 2's membership of group 10.
    let mut again = page(MirrorCollection::Users, true, more("n"));
    again.users = vec![user(1, &["k1"])];
    holder_applies(&store, &again).await;
    assert!(
        store.mirror_user(&id(2)).await.unwrap().is_some(),
        "kept until the round ends"
    );
    holder_applies(&store, &page(MirrorCollection::Users, false, done("d2"))).await;
    assert!(store.mirror_user(&id(2)).await.unwrap().is_none());
    assert!(store.mirror_find_users("k2", 2).await.unwrap().is_empty());
    let mut g2 = page(MirrorCollection::Groups, true, done("g2"));
    g2.groups = vec![group(10, Some("A"))];
    g2.members = vec![add(10, 1, MemberType::User)];
    holder_applies(&store, &g2).await;
    let names = store
        .mirror_group_names(&[id(10), id(11), id(20)])
        .await
        .unwrap();
    assert_eq!(names.len(), 2, "group 11 swept, the role kept: {names:?}");
    let parents = store.mirror_parents(&[id(1), id(2)]).await.unwrap();
    let mut pairs: Vec<(ObjectId, ObjectId)> =
        parents.iter().map(|p| (p.member, p.group)).collect();
    pairs.sort();
    assert_eq!(pairs, vec![(id(1), id(10)), (id(2), id(20))]);
    // An incremental round after it is not full: it sweeps nothing.
    let inc = page(MirrorCollection::Users, false, done("d3"));
    holder_applies(&store, &inc).await;
    assert!(store.mirror_user(&id(1)).await.unwrap().is_some());
    let state = store.mirror_sync_state().await.unwrap();
    let users = state
        .iter()
        .find(|s| s.collection == MirrorCollection::Users)
        .unwrap();
    assert!(!users.full_round);
}

async fn only_the_lease_holder_writes(store: Arc<dyn Store>) {
    assert!(store.lease_mirror("a", t0(), secs(30)).await.unwrap());
    assert!(
        !store
            .lease_mirror("b", t0() + secs(10), secs(30))
            .await
            .unwrap()
    );
    let mut p = page(MirrorCollection::Users, true, done("d"));
    p.users = vec![user(1, &["k"])];
    assert!(!store.apply_mirror_page("b", &p, t0()).await.unwrap());
    assert!(
        store.mirror_user(&id(1)).await.unwrap().is_none(),
        "nothing changed"
    );
    assert!(store.mirror_sync_state().await.unwrap().is_empty());
    // The lease runs out: b takes it, a is fenced.
    assert!(
        store
            .lease_mirror("b", t0() + mins(1), secs(30))
            .await
            .unwrap()
    );
    assert!(
        !store
            .apply_mirror_page("a", &p, t0() + mins(1))
            .await
            .unwrap()
    );
    assert!(
        store
            .apply_mirror_page("b", &p, t0() + mins(1))
            .await
            .unwrap()
    );
    // A released lease is taken at once.
    store.release_mirror("b").await.unwrap();
    assert!(
        store
            .lease_mirror("a", t0() + mins(1), secs(30))
            .await
            .unwrap()
    );
}

async fn errors_and_requests_are_recorded(store: Arc<dyn Store>) {
    assert_eq!(store.mirror_requested().await.unwrap(), None);
    store.request_mirror_sync(t0()).await.unwrap();
    assert_eq!(store.mirror_requested().await.unwrap(), Some(t0()));
    assert!(store.lease_mirror("a", t0(), secs(30)).await.unwrap());
    assert_eq!(
        store.mirror_requested().await.unwrap(),
        Some(t0()),
        "the lease keeps it"
    );
    let long = "x\n".repeat(2000);
    store
        .record_mirror_error(MirrorCollection::Groups, &long, t0())
        .await
        .unwrap();
    let state = store.mirror_sync_state().await.unwrap();
    let (at, text) = state[0].last_error.clone().unwrap();
    assert_eq!(at, t0());
    assert!(text.len() <= 500 && !text.contains('\n'));
    // A page inside a round keeps the error; the page that completes the round clears it.
    holder_applies(&store, &page(MirrorCollection::Groups, true, more("n"))).await;
    assert!(
        store.mirror_sync_state().await.unwrap()[0]
            .last_error
            .is_some()
    );
    holder_applies(&store, &page(MirrorCollection::Groups, false, done("d"))).await;
    assert!(
        store.mirror_sync_state().await.unwrap()[0]
            .last_error
            .is_none()
    );
}

async fn a_removed_group_takes_its_memberships(store: Arc<dyn Store>) {
    assert!(store.lease_mirror("a", t0(), secs(30)).await.unwrap());
    let mut g = page(MirrorCollection::Groups, true, done("g1"));
    g.groups = vec![group(10, Some("A")), group(11, Some("B"))];
    g.members = vec![add(10, 11, MemberType::Group), add(11, 1, MemberType::User)];
    holder_applies(&store, &g).await;
    let mut inc = page(MirrorCollection::Groups, false, done("g2"));
    inc.removed = vec![id(11)];
    holder_applies(&store, &inc).await;
    assert!(
        store
            .mirror_parents(&[id(1), id(11)])
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.mirror_counts().await.unwrap().memberships, 0);
}

/// The registration report is read whole every time: its rounds are full rounds of their own,
/// and completing one touches nothing but registrations.
async fn registration_rounds_replace_registrations_only(store: Arc<dyn Store>) {
    assert!(store.lease_mirror("a", t0(), secs(30)).await.unwrap());
    let mut users = page(MirrorCollection::Users, true, done("d1"));
    users.users = vec![user(1, &["k1"]), user(2, &["k2"])];
    holder_applies(&store, &users).await;
    let methods = |m: &[&str]| m.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let mut r = page(MirrorCollection::RegistrationDetails, true, more("r-next"));
    r.registrations = vec![(id(1), methods(&["mobilePhone", "email"]))];
    holder_applies(&store, &r).await;
    let mut r2 = page(MirrorCollection::RegistrationDetails, false, done(""));
    r2.registrations = vec![(id(2), methods(&[]))];
    holder_applies(&store, &r2).await;
    assert_eq!(
        store.mirror_registration(&id(1)).await.unwrap(),
        Some(methods(&["mobilePhone", "email"]))
    );
    assert_eq!(
        store.mirror_registration(&id(2)).await.unwrap(),
        Some(vec![])
    );
    assert_eq!(store.mirror_registration(&id(3)).await.unwrap(), None);
    // Reports read the users with a method (user 2 has none).
    assert_eq!(
        store.mirror_registrations().await.unwrap(),
        vec![(id(1), methods(&["mobilePhone", "email"]))]
    );
    // The next read no longer lists user 1: gone from the registrations, and no user is.
    let mut again = page(MirrorCollection::RegistrationDetails, true, done(""));
    again.registrations = vec![(id(2), methods(&["email"]))];
    holder_applies(&store, &again).await;
    assert_eq!(store.mirror_registration(&id(1)).await.unwrap(), None);
    assert_eq!(
        store.mirror_registration(&id(2)).await.unwrap(),
        Some(methods(&["email"]))
    );
    assert!(store.mirror_user(&id(1)).await.unwrap().is_some());
    assert_eq!(store.mirror_counts().await.unwrap().users, 2);
}

/// One recursive query walks the nesting: every level however deep, a cycle that ends, a group
/// in itself, roles not followed (not even when a role is, oddly, listed as a member).
async fn ancestors_walk_nesting_in_one_query(store: Arc<dyn Store>) {
    assert!(store.lease_mirror("a", t0(), secs(30)).await.unwrap());
    // User 1 in 10; 10 in 11; 11 in 12; 12 in 10 (a cycle); 11 in itself; user 1 also in 13;
    // 13 holds role 20; role 20 "in" group 14 (never followed); user 2 in nothing; user 3 at
    // the bottom of a chain 100 groups deep (100 in 101 in ... in 199).
    let mut g = page(MirrorCollection::Groups, true, done("g1"));
    g.groups = (10..=14).chain(100..=199).map(|n| group(n, None)).collect();
    g.members = vec![
        add(10, 1, MemberType::User),
        add(11, 10, MemberType::Group),
        add(12, 11, MemberType::Group),
        add(10, 12, MemberType::Group),
        add(11, 11, MemberType::Group),
        add(13, 1, MemberType::User),
        add(14, 20, MemberType::Group),
        add(100, 3, MemberType::User),
    ];
    g.members
        .extend((100..199).map(|n| add(n + 1, n, MemberType::Group)));
    holder_applies(&store, &g).await;
    let mut r = page(MirrorCollection::DirectoryRoles, true, done("r1"));
    r.groups = vec![group(20, Some("Helpdesk Administrator"))];
    r.members = vec![add(20, 13, MemberType::Group)];
    holder_applies(&store, &r).await;

    let sorted = |mut v: Vec<(ObjectId, GroupKind)>| {
        v.sort_by_key(|(g, _)| *g);
        v
    };
    assert_eq!(
        sorted(store.mirror_ancestors(&id(1)).await.unwrap()),
        vec![
            (id(10), GroupKind::Group),
            (id(11), GroupKind::Group),
            (id(12), GroupKind::Group),
            (id(13), GroupKind::Group),
            (id(20), GroupKind::Role),
        ],
        "each once, the cycle ended"
    );
    assert_eq!(
        sorted(store.mirror_ancestors(&id(3)).await.unwrap()),
        (100..=199)
            .map(|n| (id(n), GroupKind::Group))
            .collect::<Vec<_>>(),
        "no depth bound"
    );
    assert!(store.mirror_ancestors(&id(2)).await.unwrap().is_empty());
}

backend_tests!(
    registration_rounds_replace_registrations_only,
    rounds_resume_and_incremental_rounds_merge,
    a_full_round_deletes_what_it_did_not_see,
    only_the_lease_holder_writes,
    errors_and_requests_are_recorded,
    a_removed_group_takes_its_memberships,
    ancestors_walk_nesting_in_one_query,
);
