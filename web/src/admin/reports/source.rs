//! Where a report over every user reads the directory: the mirror (docs/directory-mirror.md)
//! while it is usable — synced and not lagging — else Microsoft Graph live, as before the mirror.
//! Pages say which, and for the mirror how old it is, because the two can differ by whatever
//! changed in the directory since the mirror's last round.

use std::sync::Arc;

use latchkey_mirror::{Freshness, Mirror};
use serde::Serialize;
use time::OffsetDateTime;

/// Which source a report read.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    #[default]
    Graph,
    Mirror,
}

/// The mirror a report may read now, with the time its oldest collection was last synced.
pub struct UsableMirror {
    pub mirror: Arc<Mirror>,
    pub as_of: OffsetDateTime,
}

/// The mirror when it may be used; `None` (read Graph) when it is off, not synced, lagging, or
/// its state cannot be read: a report is still worth having from Graph then.
pub async fn usable(mirror: Option<&Arc<Mirror>>) -> Option<UsableMirror> {
    let mirror = mirror?;
    match mirror.freshness().await {
        Ok(Freshness::Current { as_of }) => Some(UsableMirror {
            mirror: Arc::clone(mirror),
            as_of,
        }),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(error = %e, "reports: cannot read the mirror's state; reading Graph");
            None
        }
    }
}

/// What a page shows of the source: `(source, as of, age in seconds)`.
pub fn describe(
    used: Option<&UsableMirror>,
    now: OffsetDateTime,
) -> (Source, Option<String>, Option<u64>) {
    match used {
        None => (Source::Graph, None, None),
        Some(m) => (
            Source::Mirror,
            Some(timestamp(m.as_of)),
            Some(u64::try_from((now - m.as_of).whole_seconds()).unwrap_or(0)),
        ),
    }
}

/// `YYYY-MM-DD HH:MM:SS` in UTC.
fn timestamp(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}
