//! The metrics read from the store on a timer rather than counted as they happen: gateways,
//! gateway jobs, the directory mirror (crate::metrics lists them).

use std::sync::Arc;

use crate::metrics::{GatewayLabels, JobLabels, KindLabels, Metrics, StateLabels};

const JOB_STATES: [latchkey_store::JobState; 5] = [
    latchkey_store::JobState::Queued,
    latchkey_store::JobState::Claimed,
    latchkey_store::JobState::Succeeded,
    latchkey_store::JobState::Failed,
    latchkey_store::JobState::Expired,
];

/// Keeps the gauges current: reads the registered gateways, counts their jobs and reads the
/// directory mirror's state every `every`.
pub fn spawn(
    metrics: Arc<Metrics>,
    store: Arc<dyn latchkey_store::Store>,
    clock: Arc<dyn latchkey_verify::Clock>,
    mirror: Option<Arc<latchkey_mirror::Mirror>>,
    every: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match store.gateways().await {
                Ok(gateways) => {
                    let now = clock.now();
                    let (mut connected, mut idle, mut revoked) = (0, 0, 0);
                    metrics.gateway_age.clear();
                    for g in &gateways {
                        if g.revoked_at.is_some() {
                            revoked += 1;
                            continue;
                        }
                        if g.is_connected(now, crate::gateway::CONNECTED_WINDOW) {
                            connected += 1;
                        } else {
                            idle += 1;
                        }
                        if let Some(seen) = g.last_seen_at {
                            metrics
                                .gateway_age
                                .get_or_create(&GatewayLabels {
                                    gateway: g.name.clone(),
                                })
                                .set((now - seen).whole_seconds());
                        }
                    }
                    for (state, n) in [
                        ("connected", connected),
                        ("not_connected", idle),
                        ("revoked", revoked),
                    ] {
                        metrics
                            .gateways
                            .get_or_create(&StateLabels {
                                state: state.to_string(),
                            })
                            .set(n);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "metrics: cannot read the gateways"),
            }
            match store.job_counts().await {
                Ok(counts) => {
                    // Every kind and state, 0 when there is none: a series never vanishes.
                    for kind in latchkey_store::JOB_KINDS {
                        for state in JOB_STATES {
                            metrics
                                .jobs
                                .get_or_create(&JobLabels {
                                    kind: (*kind).to_string(),
                                    state: state.as_str().to_string(),
                                })
                                .set(0);
                        }
                    }
                    for c in counts {
                        metrics
                            .jobs
                            .get_or_create(&JobLabels {
                                kind: c.kind.as_str().to_string(),
                                state: c.state.as_str().to_string(),
                            })
                            .set(i64::try_from(c.count).unwrap_or(i64::MAX));
                    }
                }
                Err(e) => tracing::warn!(error = %e, "metrics: cannot count the gateway jobs"),
            }
            if let Some(m) = &mirror {
                mirror_gauges(&metrics, m, clock.now()).await;
            }
            tokio::time::sleep(every).await;
        }
    })
}

async fn mirror_gauges(
    metrics: &Metrics,
    mirror: &latchkey_mirror::Mirror,
    now: time::OffsetDateTime,
) {
    match mirror.status().await {
        Ok(status) => {
            metrics
                .mirror_usable
                .set(i64::from(status.freshness.usable()));
            if let Some(lag) = status.freshness.lag(now) {
                metrics
                    .mirror_lag
                    .set(i64::try_from(lag.as_secs()).unwrap_or(i64::MAX));
            }
            let c = status.counts;
            for (kind, n) in [
                ("users", c.users),
                ("groups", c.groups),
                ("roles", c.roles),
                ("memberships", c.memberships),
            ] {
                metrics
                    .mirror_objects
                    .get_or_create(&KindLabels {
                        kind: kind.to_string(),
                    })
                    .set(i64::try_from(n).unwrap_or(i64::MAX));
            }
        }
        Err(e) => tracing::warn!(error = %e, "metrics: cannot read the directory mirror's state"),
    }
}
