//! `[directory]`: the directory mirror (docs/directory-mirror.md).

use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DirectorySettings {
    /// Keep a mirror of users, groups and directory roles with delta queries, and read it at
    /// identification and in reports. Off: every read goes to Graph.
    pub mirror: bool,
    /// Seconds between the starts of incremental rounds (10 s to 1 day).
    pub sync_interval_seconds: u64,
    /// The mirror is used only while its last round completed within this many seconds;
    /// beyond it (and before the first full round) the portal reads Graph live. At least two
    /// intervals.
    pub max_lag_seconds: u64,
}

impl Default for DirectorySettings {
    fn default() -> Self {
        DirectorySettings {
            mirror: true,
            sync_interval_seconds: 60,
            max_lag_seconds: 600,
        }
    }
}

impl DirectorySettings {
    /// The checked timings: (interval, max lag).
    pub fn timings(&self) -> Result<(Duration, Duration), String> {
        if !(10..=86_400).contains(&self.sync_interval_seconds) {
            return Err(format!(
                "[directory] sync_interval_seconds must be 10 to 86400, not {}",
                self.sync_interval_seconds
            ));
        }
        if self.max_lag_seconds < 2 * self.sync_interval_seconds {
            return Err(format!(
                "[directory] max_lag_seconds ({}) must be at least two intervals ({})",
                self.max_lag_seconds,
                2 * self.sync_interval_seconds
            ));
        }
        Ok((
            Duration::from_secs(self.sync_interval_seconds),
            Duration::from_secs(self.max_lag_seconds),
        ))
    }
}
