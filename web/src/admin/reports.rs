//! Reports in the admin console (`/admin/reports`): enrollment coverage per policy and per group,
//! the users who will be unable to reset, resets / unlocks / failures per day, and two CSV
//! exports (the users unable to reset, and the inventory of users, groups and methods).
//!
//! Every route is behind [`crate::console::gate`]; each handler asks for the admitted admin with
//! [`console::require`] as well (deny by default). Exports are audited (`admin.report.export`)
//! before the first byte is sent. What each part costs and how it is bounded is in
//! [`coverage`] and [`inventory`]; activity is counted in the database
//! ([`latchkey_store::Store::audit_daily_counts`]).

pub mod coverage;
pub mod coverage_mirror;
pub mod csv;
pub mod inventory;
pub mod inventory_mirror;
pub mod source;

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_store::{AuditDayCount, Outcome};
use serde::{Deserialize, Serialize};
use time::{Date, Duration, OffsetDateTime, Time};

use crate::console::ConsoleUser;
use crate::extract::{AdminConsole, Member};
use crate::portal::Portal;

/// The periods the activity table offers, in days.
pub const PERIODS: [u32; 3] = [7, 30, 90];
const DEFAULT_PERIOD: u32 = 30;
/// Rows of the "unable to reset" list shown on the page (all of them are in its CSV).
pub const UNABLE_SHOWN: usize = 200;

/// The reports' routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/reports", web::get().to(page))
        .route("/admin/reports/unable.csv", web::get().to(unable_csv))
        .route("/admin/reports/inventory.csv", web::get().to(inventory_csv));
}

/// Self-service activity on one UTC day.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct DayActivity {
    /// `YYYY-MM-DD`.
    pub day: String,
    /// Passwords reset (`reset`, success).
    pub resets: u64,
    /// Accounts unlocked (`unlock`, success).
    pub unlocks: u64,
    /// Wrong codes, answers or attributes (`verify`, failure).
    pub failed_verifications: u64,
    /// Resets and unlocks that did not happen (`reset` / `unlock`, failure or error).
    pub failed_actions: u64,
    /// Anything refused by policy or throttle (every type, denied).
    pub denied: u64,
}

/// The activity of the `days` UTC days up to and including `today`'s, newest first, every day
/// listed (zeros included), from the store's per-day counts.
pub fn activity(counts: &[AuditDayCount], today: Date, days: u32) -> Vec<DayActivity> {
    let mut out = Vec::with_capacity(days as usize);
    for back in 0..i64::from(days) {
        let day = today - Duration::days(back);
        let mut a = DayActivity {
            day: iso_date(day),
            ..DayActivity::default()
        };
        for c in counts.iter().filter(|c| c.day == day) {
            match (c.event_type.as_str(), c.outcome) {
                ("reset", Outcome::Success) => a.resets += c.count,
                ("unlock", Outcome::Success) => a.unlocks += c.count,
                ("verify", Outcome::Failure) => a.failed_verifications += c.count,
                ("reset" | "unlock", Outcome::Failure | Outcome::Error) => {
                    a.failed_actions += c.count
                }
                _ => {}
            }
            if c.outcome == Outcome::Denied {
                a.denied += c.count;
            }
        }
        out.push(a);
    }
    out
}

/// `YYYY-MM-DD`.
pub fn iso_date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// Midnight UTC starting `day`.
fn midnight(day: Date) -> OffsetDateTime {
    day.with_time(Time::MIDNIGHT).assume_utc()
}

#[derive(Deserialize)]
struct PageQuery {
    days: Option<String>,
}

async fn page(
    req: HttpRequest,
    portal: web::Data<Portal>,
    query: web::Query<PageQuery>,
    user: Member<AdminConsole>,
) -> HttpResponse {
    let days = query
        .days
        .as_deref()
        .and_then(|d| d.parse::<u32>().ok())
        .filter(|d| PERIODS.contains(d))
        .unwrap_or(DEFAULT_PERIOD);
    let s = &portal.services;
    let today = s.clock.now().date();
    let since = midnight(today - Duration::days(i64::from(days) - 1));
    let until = midnight(today + Duration::days(1));
    let activity = match s.store.audit_daily_counts(since, until, &[]).await {
        Ok(counts) => Some(activity(&counts, today, days)),
        Err(e) => {
            tracing::error!(error = %e, "reports: cannot count activity");
            None
        }
    };
    let coverage = match coverage_mirror::compute_best(s).await {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::error!(error = %e, "reports: cannot compute coverage");
            None
        }
    };
    let unable_total = coverage.as_ref().map_or(0, |c| c.unable.len());
    let unable_shown: Vec<_> = coverage
        .as_ref()
        .map(|c| c.unable.iter().take(UNABLE_SHOWN).cloned().collect())
        .unwrap_or_default();
    let totals = activity.as_ref().map(|rows| {
        rows.iter().fold(DayActivity::default(), |mut t, d| {
            t.resets += d.resets;
            t.unlocks += d.unlocks;
            t.failed_verifications += d.failed_verifications;
            t.failed_actions += d.failed_actions;
            t.denied += d.denied;
            t
        })
    });
    super::page(
        &portal,
        &req,
        &user,
        "admin_reports.html",
        "reports",
        serde_json::json!({
            "days": days,
            "periods": PERIODS,
            "activity": activity,
            "totals": totals,
            "coverage": coverage,
            "unable_shown": unable_shown,
            "unable_total": unable_total,
            "unable_more": unable_total > UNABLE_SHOWN,
            "max_users": coverage::MAX_USERS,
        }),
    )
}

/// Audits an export before it is sent; `Err` is the response when that fails.
async fn audit_export(
    portal: &Portal,
    req: &HttpRequest,
    user: &ConsoleUser,
    what: &str,
) -> Result<(), HttpResponse> {
    user.audit(
        portal,
        "admin.report.export",
        None,
        Outcome::Success,
        None,
        serde_json::json!({ "report": what }),
    )
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "reports: cannot audit an export");
        portal.error_page(
            req,
            user.lang,
            StatusCode::SERVICE_UNAVAILABLE,
            "error_generic",
        )
    })
}

fn file_name(portal: &Portal, what: &str) -> String {
    let day = portal.services.clock.now().date();
    format!(
        "latchkey-{what}-{:04}{:02}{:02}.csv",
        day.year(),
        u8::from(day.month()),
        day.day()
    )
}

/// The header of the "unable to reset" export.
pub const UNABLE_COLUMNS: [&str; 6] = [
    "object_id",
    "user_principal_name",
    "display_name",
    "policy",
    "methods_required",
    "methods_enrolled",
];

async fn unable_csv(
    req: HttpRequest,
    portal: web::Data<Portal>,
    user: Member<AdminConsole>,
) -> HttpResponse {
    let s = &portal.services;
    let coverage = match coverage_mirror::compute_best(s).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "reports: cannot compute coverage");
            return portal.error_page(
                &req,
                user.lang,
                StatusCode::SERVICE_UNAVAILABLE,
                "reports_coverage_unavailable",
            );
        }
    };
    if let Err(r) = audit_export(&portal, &req, &user, "unable").await {
        return r;
    }
    let mut body = String::from(csv::BOM);
    csv::push_row(&mut body, &UNABLE_COLUMNS);
    for u in &coverage.unable {
        csv::push_row(
            &mut body,
            &[
                u.id.as_str(),
                &u.upn,
                &u.display_name,
                &u.policy,
                &u.required.to_string(),
                &u.enrolled.join("; "),
            ],
        );
    }
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{}\"", file_name(&portal, "unable")),
        ))
        .body(body)
}

async fn inventory_csv(
    req: HttpRequest,
    portal: web::Data<Portal>,
    user: Member<AdminConsole>,
) -> HttpResponse {
    if let Err(r) = audit_export(&portal, &req, &user, "inventory").await {
        return r;
    }
    let s = &portal.services;
    let (directory, store, set) = (Arc::clone(&s.directory), Arc::clone(&s.store), s.policies());
    // The mirror while it is usable (every user, no Graph request per user for memberships).
    let used = source::usable(s.mirror.as_ref()).await;
    csv::stream(&file_name(&portal, "inventory"), move |sink| async move {
        match used {
            Some(m) => inventory_mirror::produce(m, directory, set, sink).await,
            None => inventory::produce(directory, store, set, sink).await,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activity_lists_every_day_newest_first_and_sorts_counts_into_columns() {
        let today = time::macros::date!(2026 - 11 - 22);
        let c = |d: Date, t: &str, o: Outcome, n: u64| AuditDayCount {
            day: d,
            event_type: t.into(),
            outcome: o,
            count: n,
        };
        let yesterday = today - Duration::days(1);
        let counts = [
            c(yesterday, "reset", Outcome::Success, 2),
            c(yesterday, "reset", Outcome::Error, 1),
            c(yesterday, "verify", Outcome::Failure, 4),
            c(yesterday, "throttle", Outcome::Denied, 3),
            c(today, "unlock", Outcome::Success, 1),
            c(today, "unlock", Outcome::Failure, 1),
            c(today, "verify", Outcome::Success, 9),
        ];
        let rows = activity(&counts, today, 3);
        assert_eq!(
            rows.iter().map(|r| r.day.as_str()).collect::<Vec<_>>(),
            ["2026-11-22", "2026-11-21", "2026-11-20"]
        );
        assert_eq!(
            rows[0],
            DayActivity {
                day: "2026-11-22".into(),
                unlocks: 1,
                failed_actions: 1,
                ..Default::default()
            }
        );
        assert_eq!(
            rows[1],
            DayActivity {
                day: "2026-11-21".into(),
                resets: 2,
                failed_actions: 1,
                failed_verifications: 4,
                denied: 3,
                ..Default::default()
            }
        );
        assert_eq!(rows[2].resets + rows[2].denied, 0);
    }
}
