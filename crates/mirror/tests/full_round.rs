//! The periodic full round (`SyncerSettings::full_round_every`).

use std::sync::Arc;
use std::time::Duration;

use latchkey_mirror::{Syncer, SyncerSettings};
use latchkey_store::MirrorCollection;
use latchkey_types::ObjectId;
use latchkey_verify::{Clock, ManualClock};

use super::bench;

/// Every `full_round_every` a round is a full one, which drops what the incremental rounds let
/// drift (here: a user the tenant never had, stored behind the syncer's back).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_periodic_full_round_drops_drift() {
    let b = bench(60, 6, 20).await;
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let syncer = Syncer::new(
        b.graph.clone(),
        Arc::clone(&b.store),
        clock.clone(),
        SyncerSettings {
            interval: Duration::from_secs(60),
            lease: Duration::from_secs(30),
            holder: "a".into(),
            full_round_every: Some(Duration::from_secs(7 * 86_400)),
        },
    );
    let lease = || async {
        assert!(
            b.store
                .lease_mirror("a", clock.now(), Duration::from_secs(30))
                .await
                .unwrap()
        );
    };
    lease().await;
    assert_eq!(syncer.round().await.unwrap().full_rounds.len(), 3);

    // Drift: a user stored with the users' current delta link kept, as a lost `@removed`
    // would leave one.
    let state = b.store.mirror_sync_state().await.unwrap();
    let link = state
        .into_iter()
        .find(|s| s.collection == MirrorCollection::Users)
        .and_then(|s| s.link)
        .unwrap();
    let ghost: ObjectId = "0d000000-0000-4000-8000-000000000001".parse().unwrap();
    let drift = latchkey_store::MirrorPage {
        collection: MirrorCollection::Users,
        begins_full_round: false,
        users: vec![latchkey_store::MirrorUser {
            id: ghost,
            user_principal_name: "ghost@contoso.com".into(),
            display_name: None,
            enabled: true,
            synced: false,
            keys: vec!["addr:ghost@contoso.com".into()],
            profile: "{}".into(),
        }],
        groups: vec![],
        members: vec![],
        removed: vec![],
        registrations: vec![],
        link,
    };
    assert!(
        b.store
            .apply_mirror_page("a", &drift, clock.now())
            .await
            .unwrap()
    );

    // Six days on: incremental rounds, the drift stays.
    clock.advance(time::Duration::days(6));
    lease().await;
    let report = syncer.round().await.unwrap();
    assert!(report.full_rounds.is_empty(), "{report:?}");
    assert!(b.store.mirror_user(&ghost).await.unwrap().is_some());

    // A week after the last full round: a full round of every collection, the drift gone.
    clock.advance(time::Duration::days(1));
    lease().await;
    let report = syncer.round().await.unwrap();
    assert_eq!(report.full_rounds.len(), 3, "{report:?}");
    assert!(b.store.mirror_user(&ghost).await.unwrap().is_none());
    b.same_users(&b.mirror()).await;
    // And the next round is incremental again.
    let report = syncer.round().await.unwrap();
    assert!(report.full_rounds.is_empty(), "{report:?}");
}
