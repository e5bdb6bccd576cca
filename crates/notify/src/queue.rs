//! The send queue: [`Notifier::enqueue`] renders and queues a notification and returns at once,
//! so an HTTP response neither waits for a send nor reveals whether one happened. A background
//! task delivers with retries and exponential backoff, reports every final outcome to a
//! [`DeliveryObserver`] (the portal audits it), and drains on shutdown within a grace period.
//!
//! Memory is bounded: the channel holds at most `capacity` messages and at most `concurrency`
//! are in delivery (or waiting for a retry) at once; a full queue is reported to the caller.
//! `concurrency` is raised to the email transport's own parallelism (an SMTP mailer's
//! connections, [`EmailTransport::parallel_sends`]) so the queue never leaves one unused.
//!
//! Two lanes: what a person is waiting for with the page open (a code, a reset link) is taken
//! before notices about something already done (password changed, ...), so under load a code
//! does not queue behind the notices of earlier resets.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use latchkey_types::{EmailAddress, ObjectId, Secret};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::email::EmailTransport;
use crate::error::{DeliveryError, NotifyError};
use crate::sms::SmsProvider;
use crate::templates::{Notice, RenderedEmail, Renderer};
use latchkey_types::PhoneNumber;

/// A boxed `Send` future, for the dyn-compatible traits of this crate.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where a notification goes. Always from the directory or enrolled data, never from a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recipient {
    Email(EmailAddress),
    Sms(PhoneNumber),
}

impl Recipient {
    /// For logs and reports: `j***@contoso.com`, `+41*******00`.
    pub fn masked(&self) -> String {
        match self {
            Recipient::Email(e) => e.masked(),
            Recipient::Sms(p) => p.masked(),
        }
    }
    pub fn channel(&self) -> Channel {
        match self {
            Recipient::Email(_) => Channel::Email,
            Recipient::Sms(_) => Channel::Sms,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Channel {
    Email,
    Sms,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
        }
    }
}

/// One message to send.
#[derive(Clone, Debug)]
pub struct Notification {
    pub recipient: Recipient,
    pub notice: Notice,
    /// BCP 47 tag (the user's `preferredLanguage`); English when absent or unsupported.
    pub lang: Option<String>,
    /// The request that caused it, carried into the delivery report and logs.
    pub correlation_id: String,
    /// The directory user it concerns, for the audit record.
    pub subject: Option<ObjectId>,
}

/// Identifies a queued notification in its delivery report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub u64);

/// How a delivery ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Delivered,
    /// Permanent failure, or retries exhausted. `reason` is safe to log and audit.
    Failed {
        reason: String,
        /// The last failure was temporary (the retries ran out): worth trying again later.
        retryable: bool,
    },
    /// Not delivered because the notifier shut down before it could finish.
    Abandoned,
}

/// The final word on one notification. Holds no body and no full address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryReport {
    pub id: MessageId,
    pub correlation_id: String,
    pub subject: Option<ObjectId>,
    pub channel: Channel,
    /// The notice kind: `code`, `password_changed`, `methods_changed`.
    pub kind: &'static str,
    pub recipient_masked: String,
    pub attempts: u32,
    pub outcome: DeliveryOutcome,
}

/// Receives every [`DeliveryReport`]. Awaited by the delivery task, so it may write the audit
/// record before the next message of that slot is taken.
pub trait DeliveryObserver: Send + Sync + 'static {
    fn report(&self, report: DeliveryReport) -> BoxFuture<'_, ()>;
}

/// Reports go into a channel (tests, or a portal task that audits them).
impl DeliveryObserver for mpsc::UnboundedSender<DeliveryReport> {
    fn report(&self, report: DeliveryReport) -> BoxFuture<'_, ()> {
        if self.send(report).is_err() {
            tracing::debug!("a delivery report was not taken: nobody listens any more");
        }
        Box::pin(std::future::ready(()))
    }
}

/// Retries for temporary failures: `initial_backoff`, doubling up to `max_backoff`.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Attempts including the first (1 = no retry).
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        // 2 s, 4 s, 8 s, 16 s: about half a minute, well inside a code's 10-minute lifetime.
        Self {
            max_attempts: 5,
            initial_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    fn backoff(&self, failed_attempts: u32) -> Duration {
        let factor = 2u32.saturating_pow(failed_attempts.saturating_sub(1));
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

#[derive(Clone, Copy, Debug)]
pub struct QueueConfig {
    /// Messages waiting for a delivery slot, in each lane.
    pub capacity: usize,
    /// Messages in delivery (including waiting for a retry) at once; at least the email
    /// transport's [`EmailTransport::parallel_sends`].
    pub concurrency: usize,
    pub retry: RetryPolicy,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            capacity: 1024,
            concurrency: 8,
            retry: RetryPolicy::default(),
        }
    }
}

/// The channels a notifier delivers through; either may be absent.
pub struct Channels {
    pub email: Option<Arc<dyn EmailTransport>>,
    pub sms: Option<Arc<dyn SmsProvider>>,
}

enum Payload {
    Email {
        to: EmailAddress,
        email: RenderedEmail,
    },
    Sms {
        to: PhoneNumber,
        body: Secret<String>,
    },
}

struct Job {
    id: MessageId,
    correlation_id: String,
    subject: Option<ObjectId>,
    kind: &'static str,
    recipient_masked: String,
    channel: Channel,
    payload: Payload,
    /// When [`Notifier::enqueue`] took it.
    queued: Instant,
}

/// The handle the portal enqueues with. Cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    /// Codes and links someone is waiting for ([`awaited`]).
    urgent: mpsc::Sender<Job>,
    /// Everything else.
    normal: mpsc::Sender<Job>,
    renderer: Arc<Renderer>,
    has_email: bool,
    has_sms: bool,
    next_id: Arc<AtomicU64>,
}

/// Owns the background task; [`NotifierHandle::shutdown`] drains it.
pub struct NotifierHandle {
    task: tokio::task::JoinHandle<()>,
    deadline: watch::Sender<Option<Instant>>,
}

impl Notifier {
    /// Starts the delivery task on the current tokio runtime.
    pub fn start(
        renderer: Renderer,
        channels: Channels,
        observer: Arc<dyn DeliveryObserver>,
        config: QueueConfig,
    ) -> (Notifier, NotifierHandle) {
        let (urgent, urgent_rx) = mpsc::channel(config.capacity.max(1));
        let (normal, normal_rx) = mpsc::channel(config.capacity.max(1));
        let transport_sends = channels
            .email
            .as_ref()
            .and_then(|e| e.parallel_sends())
            .unwrap_or(0);
        let (deadline_tx, deadline_rx) = watch::channel(None);
        let notifier = Notifier {
            urgent,
            normal,
            renderer: Arc::new(renderer),
            has_email: channels.email.is_some(),
            has_sms: channels.sms.is_some(),
            next_id: Arc::new(AtomicU64::new(1)),
        };
        let worker = Worker {
            channels,
            observer,
            retry: config.retry,
            concurrency: config.concurrency.max(transport_sends).max(1),
        };
        let lanes = Lanes {
            urgent: urgent_rx,
            normal: normal_rx,
        };
        let task = tokio::spawn(worker.run(lanes, deadline_rx));
        (
            notifier,
            NotifierHandle {
                task,
                deadline: deadline_tx,
            },
        )
    }

    /// Renders and queues a notification; returns at once. Errors: no channel for this
    /// recipient, a template bug, a full queue, or a stopped notifier. None of them should
    /// change what the user sees; audit them.
    pub fn enqueue(&self, n: Notification) -> Result<MessageId, NotifyError> {
        let channel = n.recipient.channel();
        let lang = n.lang.as_deref();
        let payload = match n.recipient.clone() {
            Recipient::Email(to) if self.has_email => Payload::Email {
                email: self.renderer.email(&n.notice, lang)?,
                to,
            },
            Recipient::Sms(to) if self.has_sms => Payload::Sms {
                body: self.renderer.sms(&n.notice, lang)?,
                to,
            },
            _ => return Err(NotifyError::ChannelUnavailable(channel.as_str())),
        };
        let id = MessageId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let lane = if awaited(&n.notice) {
            &self.urgent
        } else {
            &self.normal
        };
        let job = Job {
            id,
            correlation_id: n.correlation_id,
            subject: n.subject,
            kind: n.notice.kind(),
            recipient_masked: n.recipient.masked(),
            channel,
            payload,
            queued: Instant::now(),
        };
        lane.try_send(job).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => NotifyError::QueueFull,
            mpsc::error::TrySendError::Closed(_) => NotifyError::Stopped,
        })?;
        Ok(id)
    }
}

impl NotifierHandle {
    /// Stops taking new notifications, delivers what is queued (with retries) for at most
    /// `grace`, then abandons the rest (reported as [`DeliveryOutcome::Abandoned`]) and returns.
    pub async fn shutdown(self, grace: Duration) {
        // The worker reacts to the first change: it closes the intake and drains. Neither fails
        // unless the worker has already stopped, which is what this waits for anyway.
        if self.deadline.send(Some(Instant::now() + grace)).is_err() {
            tracing::debug!("the send queue had stopped before its shutdown");
        }
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "the send queue stopped abnormally");
        }
    }
}

struct Worker {
    channels: Channels,
    observer: Arc<dyn DeliveryObserver>,
    retry: RetryPolicy,
    concurrency: usize,
}

impl Worker {
    async fn run(self, mut rx: Lanes, mut deadline: watch::Receiver<Option<Instant>>) {
        let me = Arc::new(self);
        let slots = Arc::new(Semaphore::new(me.concurrency));
        let mut tasks = JoinSet::new();
        // Watch for shutdown until it comes or the handle is dropped without one (then the
        // worker runs until every Notifier clone is gone and the channels close by themselves).
        let mut watching = true;
        loop {
            // Take a slot first, so the backlog stays in the bounded channel.
            let Ok(permit) = slots.clone().acquire_owned().await else {
                break;
            };
            let job = tokio::select! {
                job = rx.recv() => job,
                changed = deadline.changed(), if watching => {
                    watching = false;
                    if changed.is_ok() {
                        // Shutdown: refuse new work, drain what is queued.
                        rx.close();
                    }
                    continue;
                }
            };
            let Some(job) = job else { break };
            let (me, deadline) = (me.clone(), deadline.clone());
            tasks.spawn(async move {
                let report = me.deliver(job, deadline).await;
                me.log(&report);
                me.observer.report(report).await;
                drop(permit);
            });
            while tasks.try_join_next().is_some() {}
        }
        while tasks.join_next().await.is_some() {}
    }

    async fn deliver(
        &self,
        job: Job,
        mut deadline: watch::Receiver<Option<Instant>>,
    ) -> DeliveryReport {
        let mut attempts = 0;
        let outcome = loop {
            attempts += 1;
            let result = tokio::select! {
                r = self.attempt(&job) => r,
                _ = hard_stop(&mut deadline) => break DeliveryOutcome::Abandoned,
            };
            match result {
                Ok(()) => break DeliveryOutcome::Delivered,
                Err(e) if !e.retryable || attempts >= self.retry.max_attempts => {
                    break DeliveryOutcome::Failed {
                        reason: e.reason,
                        retryable: e.retryable,
                    };
                }
                Err(e) => {
                    let wait = self.retry.backoff(attempts);
                    tracing::warn!(
                        id = job.id.0,
                        correlation_id = %job.correlation_id,
                        channel = job.channel.as_str(),
                        to = %job.recipient_masked,
                        attempt = attempts,
                        retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                        reason = %e.reason,
                        "notification attempt failed; will retry"
                    );
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = hard_stop(&mut deadline) => break DeliveryOutcome::Abandoned,
                    }
                }
            }
        };
        DeliveryReport {
            id: job.id,
            correlation_id: job.correlation_id,
            subject: job.subject,
            channel: job.channel,
            kind: job.kind,
            recipient_masked: job.recipient_masked,
            attempts,
            outcome,
        }
    }

    async fn attempt(&self, job: &Job) -> Result<(), DeliveryError> {
        match (&job.payload, &self.channels.email, &self.channels.sms) {
            (Payload::Email { to, email }, Some(t), _) => {
                t.send_queued(to, email, job.queued).await
            }
            (Payload::Sms { to, body }, _, Some(p)) => p.send(to, body).await,
            // enqueue only accepts payloads for configured channels.
            _ => Err(DeliveryError::permanent("channel not configured")),
        }
    }

    fn log(&self, r: &DeliveryReport) {
        match &r.outcome {
            DeliveryOutcome::Delivered => tracing::info!(
                id = r.id.0, correlation_id = %r.correlation_id, channel = r.channel.as_str(),
                kind = r.kind, to = %r.recipient_masked, attempts = r.attempts,
                "notification delivered"
            ),
            DeliveryOutcome::Failed { reason, .. } => tracing::warn!(
                id = r.id.0, correlation_id = %r.correlation_id, channel = r.channel.as_str(),
                kind = r.kind, to = %r.recipient_masked, attempts = r.attempts, reason = %reason,
                "notification failed"
            ),
            DeliveryOutcome::Abandoned => tracing::warn!(
                id = r.id.0, correlation_id = %r.correlation_id, channel = r.channel.as_str(),
                kind = r.kind, to = %r.recipient_masked, attempts = r.attempts,
                "notification abandoned at shutdown"
            ),
        }
    }
}

/// A person is waiting for it with the page open: a code, a helpdesk caller's code, a reset link.
fn awaited(notice: &Notice) -> bool {
    matches!(
        notice,
        Notice::Code { .. } | Notice::CallerCode { .. } | Notice::ResetLink { .. }
    )
}

/// The queue's two channels, read urgent first.
struct Lanes {
    urgent: mpsc::Receiver<Job>,
    normal: mpsc::Receiver<Job>,
}

impl Lanes {
    /// The next job, an urgent one when there is any; `None` once both lanes are closed and
    /// empty. Cancel-safe (as `mpsc::Receiver::recv`).
    async fn recv(&mut self) -> Option<Job> {
        tokio::select! {
            biased;
            Some(job) = self.urgent.recv() => Some(job),
            Some(job) = self.normal.recv() => Some(job),
            else => None,
        }
    }

    /// Refuses new jobs; the queued ones are still received.
    fn close(&mut self) {
        self.urgent.close();
        self.normal.close();
    }
}

/// Resolves when the shutdown grace period is over; never before shutdown was asked for.
async fn hard_stop(deadline: &mut watch::Receiver<Option<Instant>>) {
    loop {
        let current = *deadline.borrow_and_update();
        if let Some(at) = current {
            tokio::time::sleep_until(at).await;
            return;
        }
        if deadline.changed().await.is_err() {
            // The handle is gone without a shutdown: no deadline will ever come.
            std::future::pending::<()>().await;
        }
    }
}
