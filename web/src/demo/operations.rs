//! What a production deployment runs besides serving pages, for the demo's benchmark runs
//! ([`DemoOptions::operations`](super::DemoOptions)): metrics recorded (store calls, Graph
//! attempts, answers, audit events; not served) and every audit event forwarded to a webhook.
//! The flow benchmark measures the CPU they add per flow.

use std::sync::Arc;

use crate::config::Settings;
use crate::forwarding::{AuditObservers, Forwarding, Running};
use crate::metrics::Metrics;
use crate::portal::Portal;

/// Where the demo forwards its audit events.
#[derive(Debug, Clone)]
pub struct DemoOperations {
    /// `http://127.0.0.1:PORT/...`: a receiver on this host (plain HTTP only there).
    pub webhook_url: String,
}

impl DemoOperations {
    /// The configuration lines the demo adds for it.
    pub(super) fn config(&self) -> String {
        format!(
            "[forwarding]\nsource = \"demo\"\n[forwarding.webhook]\nurl = \"{}\"\n",
            self.webhook_url
        )
    }
}

/// Metrics that see every Graph attempt of `graph` (set before the client is shared).
pub(super) fn metrics(graph: &latchkey_graph::GraphClient) -> Arc<Metrics> {
    let m = Arc::new(Metrics::new());
    graph.observe(m.clone());
    m
}

/// Records into `metrics` and starts forwarding, as `latchkey serve` does.
pub(super) fn attach(
    portal: &mut Portal,
    settings: &Settings,
    metrics: Arc<Metrics>,
) -> anyhow::Result<Option<Running>> {
    let store = Arc::clone(&portal.services.store);
    let forwarding = Forwarding::from_settings(
        settings,
        Arc::clone(&store),
        Arc::clone(&portal.services.clock),
        Some(metrics.clone()),
    )?;
    let mut observers: Vec<Arc<dyn latchkey_store::AuditObserver>> = vec![metrics.clone()];
    anyhow::ensure!(
        store.observe_calls(metrics.clone()),
        "the store's call observer was set twice"
    );
    let running = forwarding.map(|f| {
        observers.push(f.observer());
        f.start()
    });
    anyhow::ensure!(
        store.observe_audit(Arc::new(AuditObservers(observers))),
        "the store's audit observer was set twice"
    );
    portal.parts.insert(metrics);
    Ok(running)
}
