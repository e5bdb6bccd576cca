//! The forwarding loop of one output: lease, read the next final events after the cursor,
//! deliver them, move the cursor; back off while the receiver is down. Nothing is dropped: an
//! outage only lets the backlog grow, and the loop catches up from the cursor afterwards.

use std::sync::Arc;
use std::time::Duration;

use latchkey_store::{AuditPosition, ForwardStart, Store};
use latchkey_verify::Clock;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use crate::Output;
use crate::error::ForwardError;

/// How often the backlog is counted, and where counting stops: a count walks the index over
/// the undelivered events, so a long outage must not make every count a long scan. The gauge
/// then reads the cap ("at least this many").
const BACKLOG_EVERY: Duration = Duration::from_secs(5);
const BACKLOG_CAP: u64 = 1_000_000;

/// Told what the loop does (metrics).
pub trait ForwardObserver: Send + Sync + 'static {
    /// A batch of `events` was delivered.
    fn delivered(&self, output: &'static str, events: u64);
    /// A delivery (or reading the trail) failed.
    fn failed(&self, output: &'static str);
    /// Events written but not delivered yet.
    fn backlog(&self, output: &'static str, events: u64);
}

/// How every output's loop runs.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The deployment's name, in every event (the idempotency key is `source` + `id`).
    pub source: String,
    /// This instance, unique among the instances sharing the store.
    pub holder: String,
    /// Where a new output starts.
    pub start: ForwardStart,
    /// Events per delivery (per webhook request, per syslog connection).
    pub batch_size: u32,
    /// How long a lease lasts without renewal (a dead instance is replaced after this).
    pub lease: Duration,
    /// How often an idle loop looks for events written by other instances (events written by
    /// this one wake it at once) and how often a waiting instance asks for the lease.
    pub poll: Duration,
    /// The longest pause between attempts while a receiver fails (doubling from one second).
    pub max_backoff: Duration,
    /// The longest one delivery may take (connect, send, confirmation), below the lease so a
    /// slow receiver never lets two instances deliver at once.
    pub delivery_timeout: Duration,
    /// After a new local event woke the loop, how long it gathers more before delivering: one
    /// delivery then carries what a burst wrote, not one event each.
    pub linger: Duration,
}

impl Settings {
    /// Defaults: 200 events per batch, 30 s lease, 1 s poll, 60 s longest backoff, 20 s per
    /// delivery, 50 ms linger.
    pub fn new(source: impl Into<String>, holder: impl Into<String>) -> Self {
        Self {
            source: source.into(),
            holder: holder.into(),
            start: ForwardStart::Now,
            batch_size: 200,
            lease: Duration::from_secs(30),
            poll: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            delivery_timeout: Duration::from_secs(20),
            linger: Duration::from_millis(50),
        }
    }
}

/// What one round did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Round {
    /// Another instance holds the output's lease.
    NotHolder,
    /// Nothing new.
    Idle,
    /// Delivered this many events; `more` when the batch was full (more may be waiting).
    Delivered { events: usize, more: bool },
    /// Delivered, but the lease was lost meanwhile: the new holder sends them again.
    LostLease,
}

/// One output's forwarding loop.
pub struct Forwarder {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    output: Arc<dyn Output>,
    settings: Settings,
    wake: Arc<Notify>,
    observer: Option<Arc<dyn ForwardObserver>>,
    /// While this instance holds the lease: the cursor as it moved, and when the lease was
    /// last renewed. The lease is renewed every quarter of its length, not every round (the
    /// cursor's fence, the holder check when it moves, stays every round).
    held: std::sync::Mutex<Option<(AuditPosition, Instant)>>,
}

impl Forwarder {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        output: Arc<dyn Output>,
        settings: Settings,
    ) -> Self {
        Self {
            store,
            clock,
            output,
            settings,
            wake: Arc::new(Notify::new()),
            observer: None,
            held: std::sync::Mutex::new(None),
        }
    }

    pub fn observed(mut self, observer: Arc<dyn ForwardObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Notify it when an event was written on this instance: an idle loop delivers at once.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    pub fn output(&self) -> &'static str {
        self.output.name()
    }

    fn held(&self) -> Option<(AuditPosition, Instant)> {
        *self
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn set_held(&self, held: Option<(AuditPosition, Instant)>) {
        *self
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = held;
    }

    /// The cursor, renewing the lease when a quarter of it has passed (a delivery's deadline
    /// stays inside what is left); `None`: another instance holds it.
    async fn cursor(&self) -> Result<Option<AuditPosition>, ForwardError> {
        let s = &self.settings;
        if let Some((cursor, renewed)) = self.held()
            && renewed.elapsed() < s.lease / 4
        {
            return Ok(Some(cursor));
        }
        let renewed = Instant::now();
        let cursor = self
            .store
            .lease_forwarding(
                self.output.name(),
                &s.holder,
                s.start,
                self.clock.now(),
                s.lease,
            )
            .await?;
        self.set_held(cursor.map(|c| (c, renewed)));
        Ok(cursor)
    }

    /// One round: lease (renewed when due), read, deliver, advance.
    pub async fn round(&self) -> Result<Round, ForwardError> {
        let name = self.output.name();
        let s = &self.settings;
        let Some(cursor) = self.cursor().await? else {
            return Ok(Round::NotHolder);
        };
        let items = self.store.audit_after(cursor, s.batch_size).await?;
        let Some(last) = items.last().map(|i| i.position) else {
            return Ok(Round::Idle);
        };
        let records: Vec<_> = items.into_iter().map(|i| i.record).collect();
        match tokio::time::timeout(s.delivery_timeout, self.output.deliver(&records, &s.source))
            .await
        {
            Ok(delivered) => delivered?,
            Err(_) => {
                return Err(ForwardError::Transport {
                    output: name,
                    target: "delivery".into(),
                    cause: format!("not confirmed within {:?}", s.delivery_timeout),
                });
            }
        }
        let n = records.len();
        if let Some(o) = &self.observer {
            o.delivered(name, n as u64);
        }
        let moved = self
            .store
            .advance_forwarding(name, &s.holder, last, n as u64, self.clock.now())
            .await?;
        if let Some((_, renewed)) = self.held() {
            self.set_held(moved.then_some((last, renewed)));
        }
        Ok(if moved {
            Round::Delivered {
                events: n,
                more: n >= s.batch_size as usize,
            }
        } else {
            Round::LostLease
        })
    }

    async fn report_backlog(&self) {
        let Some(o) = &self.observer else { return };
        match self
            .store
            .forward_backlog(self.output.name(), BACKLOG_CAP)
            .await
        {
            Ok(Some(n)) => o.backlog(self.output.name(), n),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(output = self.output.name(), error = %e, "audit forwarding: cannot count the backlog")
            }
        }
    }

    /// Runs until `shutdown` turns true, then gives the lease up.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let name = self.output.name();
        let s = &self.settings;
        let mut failures: u32 = 0;
        let mut holding = false;
        let mut last_backlog: Option<Instant> = None;
        loop {
            let result = self.round().await;
            let wait = match &result {
                Ok(Round::Delivered { more: true, .. }) => Duration::ZERO,
                Ok(Round::Delivered { .. } | Round::Idle | Round::LostLease | Round::NotHolder) => {
                    s.poll
                }
                // The receiver's Retry-After, but never sooner than the backoff: a receiver
                // answering `Retry-After: 0` must not turn the loop into a spin.
                Err(ForwardError::Refused {
                    retry_after: Some(after),
                    ..
                }) => (*after).max(backoff(failures, s.max_backoff)),
                Err(_) => backoff(failures, s.max_backoff),
            };
            match &result {
                Ok(round) => {
                    if failures > 0 {
                        tracing::info!(
                            output = name,
                            failures,
                            "audit forwarding: delivering again"
                        );
                    }
                    failures = 0;
                    let now_holding = !matches!(round, Round::NotHolder | Round::LostLease);
                    if now_holding != holding {
                        tracing::info!(output = name, holder = %s.holder, holding = now_holding, "audit forwarding: lease");
                        holding = now_holding;
                    }
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    if let Some(o) = &self.observer {
                        o.failed(name);
                    }
                    tracing::warn!(output = name, error = %e, failures, retry_in_ms = wait.as_millis() as u64, "audit forwarding failed; the events stay queued");
                }
            }
            if last_backlog.is_none_or(|t| t.elapsed() >= BACKLOG_EVERY) {
                self.report_backlog().await;
                last_backlog = Some(Instant::now());
            }
            if wait.is_zero() {
                if *shutdown.borrow() {
                    break;
                }
                continue;
            }
            // A new local event ends the holder's idle wait early; a failing receiver is not
            // hurried, and an instance that does not hold the lease does not ask for it per
            // event.
            let wakeable = failures == 0 && holding;
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.wake.notified(), if wakeable => {
                    tokio::time::sleep(s.linger).await;
                }
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                break;
            }
        }
        if let Err(e) = self.store.release_forwarding(name, &s.holder).await {
            tracing::warn!(output = name, error = %e, "audit forwarding: cannot release the lease (another instance takes over when it runs out)");
        }
    }
}

/// 1 s, 2 s, 4 s, ... up to `max`.
fn backoff(failures: u32, max: Duration) -> Duration {
    let secs = 1u64 << failures.min(16);
    Duration::from_secs(secs).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_bound() {
        let max = Duration::from_secs(60);
        assert_eq!(backoff(0, max), Duration::from_secs(1));
        assert_eq!(backoff(1, max), Duration::from_secs(2));
        assert_eq!(backoff(5, max), Duration::from_secs(32));
        assert_eq!(backoff(6, max), max);
        assert_eq!(backoff(u32::MAX, max), max);
    }
}
