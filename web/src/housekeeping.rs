//! Background upkeep of the store while the portal runs: expired flows, codes and throttle
//! attempts are deleted every few minutes ([`latchkey_store::Store::purge_expired`]).
//!
//! Correctness never depends on it (every read checks expiry); it keeps the tables, and so every
//! lookup and throttle count, small. Throttle checks no longer prune their own key on every
//! attempt (that was a second statement holding the write lock on every hit).

use std::sync::Arc;
use std::time::Duration;

use latchkey_store::Store;
use latchkey_verify::Clock;

/// How often expired rows are deleted.
pub const PURGE_EVERY: Duration = Duration::from_secs(300);

/// Starts the purge loop (first run after one period). Abort the handle to stop it.
pub fn spawn(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(PURGE_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick completes at once: skip it, nothing has expired at start-up.
        every.tick().await;
        loop {
            every.tick().await;
            match store.purge_expired(clock.now()).await {
                Ok(r) => tracing::debug!(
                    flows = r.flows,
                    codes = r.codes,
                    throttle_hits = r.throttle_hits,
                    jobs = r.jobs,
                    "purged expired rows"
                ),
                Err(e) => tracing::warn!(error = %e, "could not purge expired rows"),
            }
        }
    })
}
