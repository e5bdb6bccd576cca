//! `[metrics]`: where Prometheus scrapes (crate::metrics).

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSettings {
    /// `GET /metrics` on this address (e.g. `127.0.0.1:9464`), its own listener, never the
    /// portal's public one. Off when absent.
    pub listen: Option<String>,
}
