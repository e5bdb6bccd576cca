//! JSON batching: the check right before a change reads the account and its groups in one
//! `$batch` request, with each part answered, refused and throttled on its own.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use latchkey_entra_sim::{Fault, FaultKind, Method, RecordedRequest, Sim};
use latchkey_graph::UserRef;
use latchkey_graph::observe::{Attempt, GraphObserver};
use latchkey_types::ObjectId;

use super::support::*;

/// The `$batch` requests sent (what the tenant's logs count as HTTP requests).
fn batches(sim: &Sim) -> Vec<RecordedRequest> {
    requests_to(sim, "/$batch")
}

/// A fault on the memberships read (`times` 0: for good).
fn on_memberships(kind: FaultKind, times: u32) -> Fault {
    Fault {
        method: Some(Method::GET),
        path_contains: "/transitiveMemberOf".into(),
        kind,
        times,
    }
}

/// The parts the batches carried whose path contains `needle`.
fn parts(sim: &Sim, needle: &str) -> Vec<RecordedRequest> {
    requests_to(sim, needle)
        .into_iter()
        .filter(|r| r.batch_part)
        .collect()
}

#[tokio::test]
async fn the_account_and_its_groups_come_in_one_request_as_they_would_alone() {
    let (sim, f) = start().await;
    let c = app_client(&sim, &f);
    let now = c.user_with_memberships(&oid(OBRIEN)).await.unwrap();
    let (user, memberships) = (now.user, now.memberships.unwrap());
    assert_eq!(batches(&sim).len(), 1);
    let user_part = parts(&sim, &format!("/users/{OBRIEN}"));
    assert_eq!(user_part.len(), 2, "the user and its memberships");
    assert!(
        user_part
            .iter()
            .all(|r| r.method == "GET" && r.status == 200)
    );
    assert!(
        user_part
            .iter()
            .any(|r| r.path.ends_with("/transitiveMemberOf")
                && r.query_param("$top").as_deref() == Some("999"))
    );

    let alone = c.get_user(&UserRef::Id(oid(OBRIEN))).await.unwrap();
    assert_eq!(user, alone);
    let mut expected = c.transitive_memberships(&oid(OBRIEN)).await.unwrap();
    let mut got = memberships;
    for m in [&mut expected, &mut got] {
        m.groups.sort_by_key(|g| g.id);
        m.roles.sort_by_key(|r| r.id);
    }
    assert_eq!(got, expected);
    assert!(
        got.is_member_of(&oid(GROUP_OUTER)),
        "nested groups: {got:?}"
    );
    assert!(!got.roles.is_empty(), "roles: {got:?}");
}

#[tokio::test]
async fn an_account_that_does_not_exist_is_not_found() {
    let (sim, f) = start().await;
    let c = app_client(&sim, &f);
    let e = c
        .user_with_memberships(&ObjectId::new_random())
        .await
        .unwrap_err();
    assert!(e.is_not_found(), "{e:?}");
    assert_eq!(
        batches(&sim).len(),
        1,
        "a 404 part is an answer, not retried"
    );
}

#[tokio::test]
async fn a_part_refused_for_good_is_that_parts_error() {
    let (sim, f) = start().await;
    let c = app_client(&sim, &f);
    c.token_claims().await.unwrap();
    // The user part succeeds, the memberships part is refused (as without the permission).
    sim.add_fault(on_memberships(FaultKind::Status(403), 1));
    let now = c.user_with_memberships(&oid(OBRIEN)).await.unwrap();
    assert_eq!(now.user.id, oid(OBRIEN));
    let e = now.memberships.unwrap_err();
    assert!(e.is_forbidden(), "{e:?}");
    assert_eq!(
        batches(&sim).len(),
        1,
        "a refusal is an answer, not retried"
    );
}

/// Graph may answer one part 404 for a moment (replica lag): with the account read, that is the
/// memberships' fault, never "the account does not exist".
#[tokio::test]
async fn a_memberships_part_not_found_is_not_a_missing_account() {
    let (sim, f) = start().await;
    let c = app_client(&sim, &f);
    c.token_claims().await.unwrap();
    sim.add_fault(on_memberships(FaultKind::Status(404), 1));
    let now = c.user_with_memberships(&oid(OBRIEN)).await.unwrap();
    assert_eq!(now.user.id, oid(OBRIEN));
    assert!(now.memberships.unwrap_err().is_not_found());
}

#[tokio::test]
async fn a_throttled_part_sends_the_batch_again_after_its_retry_after() {
    let (sim, f) = start().await;
    let c = app_client(&sim, &f);
    c.token_claims().await.unwrap();
    sim.add_fault(on_memberships(
        FaultKind::TooManyRequests {
            retry_after: Some("0.4".into()),
        },
        1,
    ));
    let t = Instant::now();
    let memberships = c
        .user_with_memberships(&oid(OBRIEN))
        .await
        .unwrap()
        .memberships
        .unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(400),
        "{:?}",
        t.elapsed()
    );
    assert!(memberships.is_member_of(&oid(GROUP_INNER)));
    let outer: Vec<u16> = batches(&sim).iter().map(|r| r.status).collect();
    assert_eq!(
        outer,
        vec![200, 200],
        "the batch itself succeeds both times"
    );
    let inner: Vec<u16> = parts(&sim, "/transitiveMemberOf")
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(inner, vec![429, 200]);
}

#[tokio::test]
async fn a_part_unavailable_past_the_budget_fails_the_batch() {
    let (sim, f) = start().await;
    let c = app_client(&sim, &f);
    c.token_claims().await.unwrap();
    sim.add_fault(on_memberships(FaultKind::Status(503), 100));
    let e = c.user_with_memberships(&oid(OBRIEN)).await.unwrap_err();
    assert_eq!(e.status(), Some(503), "{e:?}");
    assert!(batches(&sim).len() > 1, "retried within the budget");
}

/// Graph may answer a batch sent with a rejected token with 200 and every part 401: the client
/// drops that token and sends the batch once more, as for a request alone.
#[tokio::test]
async fn every_part_refused_401_fetches_a_new_token_and_sends_again() {
    let (sim, f) = start().await;
    let c = app_client(&sim, &f);
    c.token_claims().await.unwrap();
    // Both parts' paths hold the user's id: the first batch's two parts are 401.
    sim.add_fault(Fault {
        method: Some(Method::GET),
        path_contains: OBRIEN.into(),
        kind: FaultKind::Status(401),
        times: 2,
    });
    let now = c.user_with_memberships(&oid(OBRIEN)).await.unwrap();
    assert!(now.memberships.is_ok());
    assert_eq!(batches(&sim).len(), 2);
    assert_eq!(
        requests_to(&sim, "/oauth2/v2.0/token").len(),
        2,
        "the rejected token was dropped and a new one fetched"
    );
}

#[derive(Default)]
struct Seen(Mutex<Vec<(String, Option<u16>)>>);

impl GraphObserver for Seen {
    fn attempt(&self, a: &Attempt<'_>) {
        self.0
            .lock()
            .unwrap()
            .push((a.operation.to_string(), a.status));
    }
}

/// Metrics see each part as the request it is against the tenant's limits: a throttled part is
/// a 429 there, not hidden in the batch's 200.
#[tokio::test]
async fn the_observer_sees_every_part_with_its_own_status() {
    let (sim, f) = start().await;
    let c = app_client(&sim, &f);
    c.token_claims().await.unwrap();
    let seen = Arc::new(Seen::default());
    assert!(c.observe(seen.clone()));
    sim.add_fault(on_memberships(
        FaultKind::TooManyRequests {
            retry_after: Some("0.1".into()),
        },
        1,
    ));
    c.user_with_memberships(&oid(OBRIEN)).await.unwrap();
    let seen = seen.0.lock().unwrap().clone();
    let count = |op: &str, status: u16| {
        seen.iter()
            .filter(|(o, s)| o == op && *s == Some(status))
            .count()
    };
    assert_eq!(count("POST /$batch", 200), 2, "{seen:?}");
    assert_eq!(
        count("GET /users/{id}/transitiveMemberOf", 429),
        1,
        "{seen:?}"
    );
    assert_eq!(
        count("GET /users/{id}/transitiveMemberOf", 200),
        1,
        "{seen:?}"
    );
    assert_eq!(count("GET /users/{id}", 200), 2, "{seen:?}");
}

/// A user in more groups than one page holds: the batch carries the first page, the rest is
/// read on with its next link (sent alone).
#[tokio::test]
async fn memberships_past_one_page_are_read_on_after_the_batch() {
    let mut f = fixture();
    let upn = f
        .users
        .iter()
        .find(|u| u.id.as_deref() == Some(OBRIEN))
        .unwrap()
        .upn
        .clone();
    // A chain of 1,000 groups: O'Brien in Chain 0, Chain 0 in Chain 1, and so on.
    for i in 0..1000 {
        let member = if i == 0 {
            upn.clone()
        } else {
            format!("Chain {}", i - 1)
        };
        f.groups.push(group(
            &format!("0e000000-0000-4000-8000-{i:012}"),
            &format!("Chain {i}"),
            &[member.as_str()],
        ));
    }
    let (sim, f) = start_with(f).await;
    let c = app_client(&sim, &f);
    let now = c.user_with_memberships(&oid(OBRIEN)).await.unwrap();
    let memberships = now.memberships.unwrap();
    for i in [0, 998, 999] {
        let id = oid(&format!("0e000000-0000-4000-8000-{i:012}"));
        assert!(memberships.is_member_of(&id), "Chain {i}");
    }
    let reads = requests_to(&sim, "/transitiveMemberOf");
    assert_eq!(
        reads.len(),
        2,
        "the first page in the batch, the second alone"
    );
    assert!(reads[0].batch_part && !reads[1].batch_part);
}
