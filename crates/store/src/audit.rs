//! Audit events: append-only, UTC, one per security event (start, send, verify, throttle, reset,
//! unlock, enrollment change, helpdesk link, denial, ...).

use latchkey_types::ObjectId;
use time::OffsetDateTime;

/// How an audited operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    Success,
    /// The user's attempt failed (wrong code, ...).
    Failure,
    /// Refused by policy or throttle.
    Denied,
    /// Our side or a dependency failed.
    Error,
    /// A change is about to be made (written before the write, so it is durable first): the
    /// event with its outcome follows under the same correlation id. A `started` event with no
    /// follower is a change whose outcome is unknown (the process or the store failed midway).
    Started,
}

impl Outcome {
    /// Every outcome, in the order reports show them.
    pub const ALL: [Outcome; 5] = [
        Outcome::Success,
        Outcome::Failure,
        Outcome::Denied,
        Outcome::Error,
        Outcome::Started,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Denied => "denied",
            Self::Error => "error",
            Self::Started => "started",
        }
    }
    /// The inverse of [`Outcome::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "success" => Self::Success,
            "failure" => Self::Failure,
            "denied" => Self::Denied,
            "error" => Self::Error,
            "started" => Self::Started,
            _ => return None,
        })
    }
}

/// One security event. Nothing secret goes in here: no code, password, answer, token; phone
/// numbers and emails masked in `details`.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditEvent {
    pub at: OffsetDateTime,
    /// The request's correlation id (also in every log line of that request).
    pub correlation_id: String,
    /// Who acted: `"anonymous"`, `"user:<object id>"`, `"helpdesk:<object id>"`, `"system"`.
    pub actor: String,
    /// The directory user the event is about, when known.
    pub subject: Option<ObjectId>,
    /// E.g. `"flow.start"`, `"code.send"`, `"verify"`, `"throttle"`, `"password.reset"`.
    pub event_type: String,
    pub method: Option<String>,
    pub outcome: Outcome,
    pub reason: Option<String>,
    /// Any extra JSON (flow id, masked destination, Graph request id, ...).
    pub details: serde_json::Value,
}

/// Row id of an audit event; increases with insertion order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AuditId(pub i64);

/// A stored event with its id.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditRecord {
    pub id: AuditId,
    pub event: AuditEvent,
}

/// Filters for [`crate::Store::audit_events`]; all optional, combined with AND. Results come
/// newest first; page with `before` = the last id of the previous page (keyset paging: ids grow
/// with insertion, so a page boundary never skips or repeats an event appended meanwhile).
#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    pub subject: Option<ObjectId>,
    pub event_type: Option<String>,
    /// Any of these actors (exact match, e.g. `"helpdesk:<object id>"`); empty: every actor.
    pub actors: Vec<String>,
    pub outcome: Option<Outcome>,
    pub correlation_id: Option<String>,
    /// Inclusive.
    pub since: Option<OffsetDateTime>,
    /// Exclusive.
    pub until: Option<OffsetDateTime>,
    /// Only ids strictly below this one (the next, older page).
    pub before: Option<AuditId>,
    /// Only ids strictly above this one: the page just newer than a given id (still returned
    /// newest first). Used to page back; combined with `before` both bounds apply.
    pub after: Option<AuditId>,
    /// At most this many (capped at [`AuditQuery::MAX_LIMIT`]; 0 means the cap).
    pub limit: u32,
}

impl AuditQuery {
    pub const MAX_LIMIT: u32 = 1000;
}

/// How many events of one type and outcome happened on one UTC day
/// ([`crate::Store::audit_daily_counts`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditDayCount {
    /// The UTC calendar day.
    pub day: time::Date,
    pub event_type: String,
    pub outcome: Outcome,
    pub count: u64,
}

/// Told about every audit event once it is stored (metrics count them): called after the insert
/// succeeded, on the caller's task, so it must be quick and must not fail.
pub trait AuditObserver: Send + Sync + 'static {
    fn appended(&self, event: &AuditEvent);
}

/// Told how long every store call took (metrics): operation = the [`crate::Store`] method's
/// name, a fixed set. Called on the caller's task after the call; must be quick.
pub trait CallObserver: Send + Sync + 'static {
    fn call(&self, operation: &'static str, elapsed: std::time::Duration, ok: bool);
    /// A throttle refused an attempt: `scope` is the throttle's kind (`verify:client`,
    /// `send:email`, ...: names from the code, never an account or address).
    fn throttled(&self, scope: &str);
}

type Slot<T> = std::sync::Arc<std::sync::OnceLock<std::sync::Arc<T>>>;

/// The observers a backend keeps (each set once, at start).
#[derive(Default, Clone)]
pub(crate) struct ObserverSlot {
    audit: Slot<dyn AuditObserver>,
    calls: Slot<dyn CallObserver>,
}

impl ObserverSlot {
    pub(crate) fn set(&self, observer: std::sync::Arc<dyn AuditObserver>) -> bool {
        self.audit.set(observer).is_ok()
    }
    pub(crate) fn set_calls(&self, observer: std::sync::Arc<dyn CallObserver>) -> bool {
        self.calls.set(observer).is_ok()
    }
    pub(crate) fn appended(&self, event: &AuditEvent) {
        if let Some(o) = self.audit.get() {
            o.appended(event);
        }
    }
    pub(crate) fn throttled(&self, scope: &str) {
        if let Some(o) = self.calls.get() {
            o.throttled(scope);
        }
    }
    /// Runs a store call, timing it when a call observer is set.
    pub(crate) async fn timed<T>(
        &self,
        operation: &'static str,
        call: impl std::future::Future<Output = crate::Result<T>>,
    ) -> crate::Result<T> {
        let Some(o) = self.calls.get() else {
            return call.await;
        };
        let started = std::time::Instant::now();
        let result = call.await;
        o.call(operation, started.elapsed(), result.is_ok());
        result
    }
}

impl std::fmt::Debug for ObserverSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObserverSlot")
            .field("audit", &self.audit.get().is_some())
            .field("calls", &self.calls.get().is_some())
            .finish()
    }
}
