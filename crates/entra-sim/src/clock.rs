//! The simulator's notion of "now".
//!
//! Everything time-dependent (token expiry, authorization-code lifetime, smart lockout, TAP
//! validity, the Identity Protection throttle) reads the time from a [`Clock`], never from
//! `OffsetDateTime::now_utc()` directly, so tests can move time forward instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use time::{Duration, OffsetDateTime};

/// Wall-clock time plus an adjustable offset. Cloning shares the offset.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    pub fn system() -> Self {
        Self::default()
    }

    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + Duration::milliseconds(self.offset_ms.load(Ordering::SeqCst))
    }

    /// Seconds since the Unix epoch, as used in JWT claims.
    pub fn unix(&self) -> i64 {
        self.now().unix_timestamp()
    }

    /// Moves the simulated time forward (or backward with a negative duration).
    pub fn advance(&self, by: Duration) {
        self.offset_ms
            .fetch_add(by.whole_milliseconds() as i64, Ordering::SeqCst);
    }
}

/// Timestamp formats used on the wire. Graph and the STS each have their own.
pub mod fmt {
    use time::OffsetDateTime;
    use time::macros::format_description;

    /// Graph `DateTimeOffset`: `2020-11-27T23:12:49Z` (whole seconds, as most directory
    /// properties are printed).
    pub fn graph(t: OffsetDateTime) -> String {
        t.format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
        ))
        .unwrap_or_default()
    }

    /// Graph `DateTimeOffset` with sub-second precision (`2022-06-02T16:21:09.765173Z`), as the
    /// authentication-methods and long-running-operation resources print them.
    pub fn graph_precise(t: OffsetDateTime) -> String {
        t.format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
        ))
        .unwrap_or_default()
    }

    /// `innerError.date` in directory errors: `2021-05-18T19:03:10` (no zone designator).
    pub fn inner_error(t: OffsetDateTime) -> String {
        t.format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]"
        ))
        .unwrap_or_default()
    }

    /// STS error timestamps: `2016-01-09 02:02:12Z`.
    pub fn sts(t: OffsetDateTime) -> String {
        t.format(format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second]Z"
        ))
        .unwrap_or_default()
    }

    /// RFC 7231 `Date` header.
    pub fn http_date(t: OffsetDateTime) -> String {
        t.format(format_description!(
            "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
        ))
        .unwrap_or_default()
    }

    /// Parses RFC 3339 (`2024-01-02T03:04:05Z`) or a bare date (`2024-01-02`, midnight UTC).
    pub fn parse(s: &str) -> Option<OffsetDateTime> {
        use time::format_description::well_known::Rfc3339;
        if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
            return Some(t);
        }
        let d = time::Date::parse(s, format_description!("[year]-[month]-[day]")).ok()?;
        Some(d.midnight().assume_utc())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advancing_moves_now_and_formats_are_stable() {
        let c = Clock::system();
        let before = c.now();
        c.advance(Duration::hours(2));
        assert!(c.now() - before >= Duration::hours(2));
        let t = fmt::parse("2016-01-09T02:02:12Z").unwrap();
        assert_eq!(fmt::sts(t), "2016-01-09 02:02:12Z");
        assert_eq!(fmt::graph(t), "2016-01-09T02:02:12Z");
        assert_eq!(fmt::inner_error(t), "2016-01-09T02:02:12");
        assert_eq!(fmt::graph_precise(t), "2016-01-09T02:02:12.000000Z");
        assert_eq!(fmt::http_date(t), "Sat, 09 Jan 2016 02:02:12 GMT");
        assert_eq!(
            fmt::parse("2024-03-01").map(fmt::graph).unwrap(),
            "2024-03-01T00:00:00Z"
        );
    }
}
