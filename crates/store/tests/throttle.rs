use std::sync::Arc;

use latchkey_store::{Limit, Store, ThrottleDecision, ThrottleKey};

use crate::backends::backend_tests;
use crate::support::{mins, secs, t0, user};

const FIVE_AN_HOUR: Limit = Limit::new(5, std::time::Duration::from_secs(3600));

async fn fifty_concurrent_hits_on_a_limit_of_five_allow_exactly_five(store: Arc<dyn Store>) {
    let key = ThrottleKey::new("send:email", user());
    let mut tasks = Vec::new();
    for i in 0..50u64 {
        let (store, key) = (store.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            // Slightly different times, all inside the window.
            store
                .hit(
                    &key,
                    &[FIVE_AN_HOUR],
                    t0() + std::time::Duration::from_millis(i),
                )
                .await
                .unwrap()
        }));
    }
    let mut allowed = 0;
    for t in tasks {
        if t.await.unwrap().is_allowed() {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 5);
}

async fn the_window_slides_and_retry_after_is_exact(store: Arc<dyn Store>) {
    let key = ThrottleKey::new("send:sms", user());
    // Attempts at 0, 10, 20, 30, 40 minutes.
    for (i, left) in (0..5).zip([4, 3, 2, 1, 0]) {
        let d = store
            .hit(&key, &[FIVE_AN_HOUR], t0() + mins(10 * i))
            .await
            .unwrap();
        assert_eq!(d, ThrottleDecision::Allowed { remaining: left });
    }
    // At 50 minutes the first one (at 0) leaves the window in 10 minutes.
    let d = store
        .hit(&key, &[FIVE_AN_HOUR], t0() + mins(50))
        .await
        .unwrap();
    assert_eq!(
        d,
        ThrottleDecision::Denied {
            retry_after: mins(10)
        }
    );
    // Denied attempts are not recorded: exactly at 60 minutes one more fits ...
    assert!(
        store
            .hit(&key, &[FIVE_AN_HOUR], t0() + mins(60))
            .await
            .unwrap()
            .is_allowed()
    );
    // ... and then the next slot opens when the attempt at 10 minutes ages out.
    let d = store
        .hit(&key, &[FIVE_AN_HOUR], t0() + mins(61))
        .await
        .unwrap();
    assert_eq!(
        d,
        ThrottleDecision::Denied {
            retry_after: mins(9)
        }
    );
}

async fn several_limits_are_checked_together(store: Arc<dyn Store>) {
    let key = ThrottleKey::new("send:email", user());
    let limits = [Limit::new(2, mins(60)), Limit::new(3, mins(24 * 60))];
    assert!(store.hit(&key, &limits, t0()).await.unwrap().is_allowed());
    assert!(
        store
            .hit(&key, &limits, t0() + mins(1))
            .await
            .unwrap()
            .is_allowed()
    );
    // Hourly limit reached.
    let d = store.hit(&key, &limits, t0() + mins(2)).await.unwrap();
    assert_eq!(
        d,
        ThrottleDecision::Denied {
            retry_after: mins(58)
        }
    );
    // Next hour: the third is allowed, then the daily limit denies.
    assert!(
        store
            .hit(&key, &limits, t0() + mins(70))
            .await
            .unwrap()
            .is_allowed()
    );
    let d = store.hit(&key, &limits, t0() + mins(140)).await.unwrap();
    assert_eq!(
        d,
        ThrottleDecision::Denied {
            retry_after: mins(24 * 60 - 140)
        }
    );
}

async fn keys_are_independent_and_reset_clears_one(store: Arc<dyn Store>) {
    let who = user();
    let email = ThrottleKey::new("send:email", who);
    let sms = ThrottleKey::new("send:sms", who);
    let ip = ThrottleKey::new("ip:start", "192.0.2.7");
    let one = [Limit::new(1, mins(10))];
    assert!(store.hit(&email, &one, t0()).await.unwrap().is_allowed());
    assert!(!store.hit(&email, &one, t0()).await.unwrap().is_allowed());
    assert!(store.hit(&sms, &one, t0()).await.unwrap().is_allowed());
    assert!(store.hit(&ip, &one, t0()).await.unwrap().is_allowed());
    store.reset(&email).await.unwrap();
    assert!(
        store
            .hit(&email, &one, t0() + secs(1))
            .await
            .unwrap()
            .is_allowed()
    );
    assert!(
        !store
            .hit(&sms, &one, t0() + secs(1))
            .await
            .unwrap()
            .is_allowed()
    );
}

async fn purge_forgets_attempts_older_than_their_longest_window(store: Arc<dyn Store>) {
    let key = ThrottleKey::new("verify:totp", user());
    store
        .hit(&key, &[Limit::new(5, mins(10))], t0())
        .await
        .unwrap();
    store
        .hit(&key, &[Limit::new(5, mins(10))], t0() + mins(5))
        .await
        .unwrap();
    let report = store.purge_expired(t0() + mins(12)).await.unwrap();
    assert_eq!(report.throttle_hits, 1);
}

async fn bad_limits_are_refused(store: Arc<dyn Store>) {
    let key = ThrottleKey::new("x", "y");
    assert!(store.hit(&key, &[], t0()).await.is_err());
    assert!(
        store
            .hit(&key, &[Limit::new(0, mins(1))], t0())
            .await
            .is_err()
    );
    assert!(
        store
            .hit(&key, &[Limit::new(1, secs(0))], t0())
            .await
            .is_err()
    );
}

/// Collects what the call observer hears.
#[derive(Default)]
struct Calls(
    std::sync::Mutex<Vec<(String, bool)>>,
    std::sync::Mutex<Vec<String>>,
);

impl latchkey_store::CallObserver for Calls {
    fn call(&self, operation: &'static str, _: std::time::Duration, ok: bool) {
        self.0.lock().unwrap().push((operation.to_string(), ok));
    }
    fn throttled(&self, scope: &str) {
        self.1.lock().unwrap().push(scope.to_string());
    }
}

async fn every_call_is_timed_and_refusals_name_their_throttle(store: Arc<dyn Store>) {
    let calls = Arc::new(Calls::default());
    assert!(store.observe_calls(calls.clone()));
    assert!(!store.observe_calls(calls.clone()), "set once");
    let key = ThrottleKey::new("verify:client", "203.0.113.9");
    let one = [Limit::new(1, mins(10))];
    assert!(store.hit(&key, &one, t0()).await.unwrap().is_allowed());
    assert!(
        !store
            .hit(&key, &one, t0() + secs(1))
            .await
            .unwrap()
            .is_allowed()
    );
    assert!(
        store.hit(&key, &[], t0()).await.is_err(),
        "no limits: refused"
    );
    assert_eq!(
        *calls.0.lock().unwrap(),
        [
            ("hit".to_string(), true),
            ("hit".into(), true),
            ("hit".into(), false)
        ]
    );
    assert_eq!(
        *calls.1.lock().unwrap(),
        ["verify:client"],
        "the scope, never the key"
    );
}

backend_tests!(
    every_call_is_timed_and_refusals_name_their_throttle,
    fifty_concurrent_hits_on_a_limit_of_five_allow_exactly_five,
    the_window_slides_and_retry_after_is_exact,
    several_limits_are_checked_together,
    keys_are_independent_and_reset_clears_one,
    purge_forgets_attempts_older_than_their_longest_window,
    bad_limits_are_refused,
);
