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
    /// Days between full rounds (1 to 365; 0: only when Graph asks for one). A full round reads
    /// everything again and drops what it did not see, so whatever drift the incremental
    /// rounds let in lasts this long at most.
    pub full_round_days: u64,
}

impl Default for DirectorySettings {
    fn default() -> Self {
        DirectorySettings {
            mirror: true,
            sync_interval_seconds: 60,
            max_lag_seconds: 600,
            full_round_days: 7,
        }
    }
}

impl DirectorySettings {
    /// Time between full rounds; `None`: only when Graph asks for one.
    pub fn full_round_every(&self) -> Result<Option<Duration>, String> {
        match self.full_round_days {
            0 => Ok(None),
            d @ 1..=365 => Ok(Some(Duration::from_secs(d * 86_400))),
            d => Err(format!(
                "[directory] full_round_days must be 0 (never) to 365, not {d}"
            )),
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_rounds_come_weekly_by_default_and_the_bounds_hold() {
        let days = |d: u64| DirectorySettings {
            full_round_days: d,
            ..Default::default()
        };
        assert_eq!(
            DirectorySettings::default().full_round_every(),
            Ok(Some(Duration::from_secs(7 * 86_400)))
        );
        assert_eq!(days(0).full_round_every(), Ok(None));
        assert_eq!(
            days(365).full_round_every(),
            Ok(Some(Duration::from_secs(365 * 86_400)))
        );
        assert!(days(366).full_round_every().is_err());
    }
}
