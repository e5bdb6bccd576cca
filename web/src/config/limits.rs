//! `[limits]`: the throttles' numbers (docs/security.md "Numbers"), each within safe bounds
//! (`latchkey_selfservice::flow::Limits::BOUNDS`): per-address limits may grow a lot — a whole
//! office behind one NAT address, or a shared kiosk, is one address — per-account limits only a
//! little, since they are what stops guessing.

use latchkey_selfservice::flow::Limits;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitSettings {
    pub starts_per_client: u32,
    pub verifications_per_client: u32,
    pub codes_per_hour: u32,
    pub codes_per_day: u32,
    pub failures_per_5_minutes: u32,
    pub failures_per_hour: u32,
}

impl Default for LimitSettings {
    fn default() -> Self {
        let d = Limits::default();
        Self {
            starts_per_client: d.starts_per_client,
            verifications_per_client: d.verifications_per_client,
            codes_per_hour: d.codes_per_hour,
            codes_per_day: d.codes_per_day,
            failures_per_5_minutes: d.failures_per_5_minutes,
            failures_per_hour: d.failures_per_hour,
        }
    }
}

impl LimitSettings {
    /// The limits, checked against their bounds.
    pub fn limits(&self) -> anyhow::Result<Limits> {
        let l = Limits {
            starts_per_client: self.starts_per_client,
            verifications_per_client: self.verifications_per_client,
            codes_per_hour: self.codes_per_hour,
            codes_per_day: self.codes_per_day,
            failures_per_5_minutes: self.failures_per_5_minutes,
            failures_per_hour: self.failures_per_hour,
        };
        l.check().map_err(|e| anyhow::anyhow!("key {e}"))?;
        Ok(l)
    }
}
