//! One time budget for all the Graph requests of one piece of work (a user's page request):
//! token acquisition, every request, every retry and wait, and long-running-operation polling
//! share one deadline. Without it a request's time is bounded only by attempts × timeout (with a
//! slow Graph, minutes for one page).
//!
//! The deadline lives in a tokio task-local: [`within`] sets it for a future, the client reads it
//! ([`left`]) before every attempt and caps the attempt's timeout by it. Work moved to another
//! task takes it along with [`carry`].

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

tokio::task_local! {
    static DEADLINE: Instant;
}

/// Runs `work` with at most `budget` for its Graph requests (or less, when an enclosing budget
/// ends sooner).
pub async fn within<F: Future>(budget: Duration, work: F) -> F::Output {
    let mine = Instant::now() + budget;
    let deadline = current().map_or(mine, |outer| outer.min(mine));
    DEADLINE.scope(deadline, work).await
}

/// Runs `work` with a budget of its own, whatever is left of an enclosing one: for what must
/// not be cut short once a change is under way (the write, reading back its outcome, the steps
/// after it).
pub async fn fresh<F: Future>(budget: Duration, work: F) -> F::Output {
    DEADLINE.scope(Instant::now() + budget, work).await
}

/// The deadline of the current task, if one was set.
pub fn current() -> Option<Instant> {
    DEADLINE.try_with(|d| *d).ok()
}

/// `work` under `deadline` (from [`current`] of the task that hands the work over).
pub async fn carry<F: Future>(deadline: Option<Instant>, work: F) -> F::Output {
    match deadline {
        Some(d) => DEADLINE.scope(d, work).await,
        None => work.await,
    }
}

/// Less than this left and no write is started: it would be cut off mid-flight and its outcome
/// be unknown, where not sending it is known.
pub const MIN_FOR_A_WRITE: Duration = Duration::from_secs(2);

/// Time left before the current deadline; `None` without one.
pub fn left() -> Option<Duration> {
    current().map(|d| d.saturating_duration_since(Instant::now()))
}
