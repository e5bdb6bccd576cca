//! The `Store` trait: the one seam between the portal's flows and the database.

use std::future::Future;
use std::pin::Pin;

use latchkey_types::ObjectId;
use time::OffsetDateTime;

use crate::audit::{AuditDayCount, AuditEvent, AuditId, AuditQuery, AuditRecord};
use crate::code::{CodeAttempt, CodeId, IssuedCode, NewCode};
use crate::enrollment::{EnrolledMethod, Enrollment, EnrollmentState, NewEnrollment};
use crate::error::StoreError;
use crate::flow::{Flow, FlowId, FlowStep, FlowToken, FlowUpdate, NewFlow, Verification};
use crate::forward::{AuditPosition, ForwardItem, ForwardStart};
use crate::gateway::{ClaimedJob, FinishOutcome, Gateway, Job, JobCount, NewJob};
use crate::mirror::{
    GroupKind, MirrorCollection, MirrorCounts, MirrorListedUser, MirrorPage, MirrorParent,
    MirrorSyncState, MirrorUser,
};
use crate::outbox::{NewNotice, NoticeOutcome, QueuedNotice};
use crate::passkey::{NewPasskey, Passkey, PasskeyAdded};
use crate::throttle::{Limit, ThrottleDecision, ThrottleKey};

/// The future every [`Store`] method returns: boxed, `Send`, borrowing its arguments.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Rows removed by [`Store::purge_expired`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PurgeReport {
    pub flows: u64,
    pub codes: u64,
    pub throttle_hits: u64,
    /// Gateway jobs that ended more than [`crate::JOB_RETENTION`] ago.
    pub jobs: u64,
}

/// Server-side state of the portal: flows, issued codes, throttles, enrollments, audit.
///
/// # Why boxed futures
/// The web layer holds one `Arc<dyn Store>` chosen at start-up (SQLite now, PostgreSQL later) so
/// handlers are not generic over the backend. `async fn` in traits (stable since Rust 1.75) is not
/// dyn-compatible, so each method returns a [`StoreFuture`]: what `#[async_trait]` would generate,
/// written out, without the macro. The cost is one allocation per call, nothing next to a query.
///
/// # Time
/// Every method that depends on time takes `now`; no implementation reads the clock. Tests move
/// time by passing a later `now`.
///
/// # Contract every backend keeps (the flows rely on it)
/// - **Atomic check-and-record**: [`Store::hit`], [`Store::take_code_attempt`],
///   [`Store::consume_code`], [`Store::record_verification`] and [`Store::mark_used`] each decide
///   and write in one atomic step; two concurrent callers can never both pass a check only one
///   of them should pass.
/// - **Bound state**: a flow's subject is set at creation and no method changes it.
/// - **Secrets**: enrollment secrets are encrypted before they reach the database and bound to
///   (table, subject, method); a row moved to another user or method fails to decrypt.
/// - **Append-only audit**: there is no method to change or delete an audit event.
pub trait Store:
    FlowStore
    + CodeStore
    + ThrottleStore
    + EnrollmentStore
    + PasskeyStore
    + AuditStore
    + GatewayStore
    + NoticeStore
    + ForwardStore
    + MirrorStore
{
    /// Deletes expired flows (with their codes), codes past expiry, throttle attempts older
    /// than their longest window, and gateway jobs that ended (finished, or past their deadline
    /// unfinished) more than [`crate::JOB_RETENTION`] ago. Correctness never depends on it
    /// (every read checks expiry); it keeps the database small. Run it every few minutes.
    fn purge_expired(&self, now: OffsetDateTime) -> StoreFuture<'_, PurgeReport>;

    /// Whether the database answers (readiness probes): one statement that reads the database
    /// (its schema version), changes nothing and does not wait for writes.
    fn ping(&self) -> StoreFuture<'_, ()>;

    /// Sets the observer told how long each call took (once; `false` if one is set already).
    fn observe_calls(&self, observer: std::sync::Arc<dyn crate::audit::CallObserver>) -> bool;
}

/// Self-service flows and their one-change claim (crate::flow). A role of [`Store`]; see its contract.
pub trait FlowStore: Send + Sync + 'static {
    /// Creates a flow for `new.subject` and returns its first bearer token.
    fn create_flow(&self, new: NewFlow, now: OffsetDateTime) -> StoreFuture<'_, (FlowToken, Flow)>;

    /// The live flow for `token`, or `None` when unknown, past its absolute lifetime or idle for
    /// longer than its idle lifetime. Finding a flow refreshes its idle deadline (a backend may
    /// skip the write when the flow was seen a few seconds ago: the deadline then comes that much
    /// early, never late).
    fn flow<'a>(
        &'a self,
        token: &'a FlowToken,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, Option<Flow>>;

    /// Changes a live flow's step and/or data without rotating the token. `None` as for
    /// [`Store::flow`].
    fn update_flow<'a>(
        &'a self,
        token: &'a FlowToken,
        update: FlowUpdate,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, Option<Flow>>;

    /// Records `proof`, moves to `next_step` and replaces the token, in one atomic step:
    /// the old token stops working, and of two concurrent calls with the same token only one
    /// succeeds. Returns the new token, or `None` when the flow is not live (or the token was
    /// already rotated), or is [`FlowStep::Acting`] (a verification never re-opens a claimed
    /// flow). `next_step` [`FlowStep::Acting`] is refused ([`StoreError::Invalid`]).
    fn record_verification<'a>(
        &'a self,
        token: &'a FlowToken,
        proof: Verification,
        next_step: FlowStep,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, Option<(FlowToken, Flow)>>;

    /// Claims a live flow for one change: its step goes from [`FlowStep::Verified`] or
    /// [`FlowStep::Retry`] to [`FlowStep::Acting`] in one conditional update. Of concurrent
    /// claims of one flow (from any instance) exactly one gets the flow; the others, and any
    /// claim of a flow that is not in a step that may act, get `None`. Call it before anything
    /// changes; afterwards end the flow (done, or failed) or, only when the change certainly did
    /// not happen, [`Store::release_flow`] it.
    fn claim_flow<'a>(
        &'a self,
        token: &'a FlowToken,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, Option<Flow>>;

    /// Gives a claimed flow back after a change that certainly did not happen (a transient
    /// fault, a refused password): [`FlowStep::Acting`] to [`FlowStep::Retry`], so the user may
    /// try again without verifying again while the flow lives. `false` when the flow is not live
    /// or not acting.
    fn release_flow<'a>(
        &'a self,
        token: &'a FlowToken,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, bool>;

    /// Ends a flow (finished or abandoned); its codes go with it. `true` if it existed.
    fn end_flow<'a>(&'a self, token: &'a FlowToken) -> StoreFuture<'a, bool>;

    /// Ends every flow of `subject` (after a password or method change); returns how many.
    fn end_flows_of<'a>(&'a self, subject: &'a ObjectId) -> StoreFuture<'a, u64>;
}

/// Issued one-time codes. A role of [`Store`]; see its contract.
pub trait CodeStore: Send + Sync + 'static {
    /// Stores a newly issued code and voids every older open code of the same subject and
    /// method (newest only), atomically.
    fn issue_code(&self, new: NewCode, now: OffsetDateTime) -> StoreFuture<'_, IssuedCode>;

    /// Charges one try against the newest open code of (`flow`, `method`) and returns it for
    /// comparison; `None` when there is no such code, it expired, was consumed or voided, or has
    /// no tries left. The try is charged before the caller compares, so concurrent guesses can
    /// never exceed the tries. On a match the caller must then call [`Store::consume_code`].
    fn take_code_attempt<'a>(
        &'a self,
        flow: &'a FlowId,
        method: &'a str,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, Option<CodeAttempt>>;

    /// Marks a code used. `true` only for the one call that consumed it while it was still open
    /// and unexpired: a code succeeds once.
    fn consume_code(&self, id: CodeId, now: OffsetDateTime) -> StoreFuture<'_, bool>;

    /// Voids every open code of `subject` (after a change); returns how many.
    fn void_codes_of<'a>(
        &'a self,
        subject: &'a ObjectId,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, u64>;
}

/// Throttle counters. A role of [`Store`]; see its contract.
pub trait ThrottleStore: Send + Sync + 'static {
    /// Checks every limit for `key` and, when all allow one more attempt, records it — one
    /// atomic step. Each limit is a sliding window: allowed when fewer than `max` attempts were
    /// recorded in `(now - window, now]`. Denied attempts are not recorded. `retry_after` is the
    /// longest wait among the limits that deny. An empty `limits` slice is refused.
    ///
    /// Use several limits on one key for "5 an hour and 10 a day", so both are checked together.
    fn hit<'a>(
        &'a self,
        key: &'a ThrottleKey,
        limits: &'a [Limit],
        now: OffsetDateTime,
    ) -> StoreFuture<'a, ThrottleDecision>;

    /// Forgets every recorded attempt for `key` (e.g. a failure streak after a success).
    fn reset<'a>(&'a self, key: &'a ThrottleKey) -> StoreFuture<'a, ()>;
}

/// Enrolled verification methods (secrets sealed). A role of [`Store`]; see its contract.
pub trait EnrollmentStore: Send + Sync + 'static {
    /// Stores a pending enrollment (replacing an earlier pending one of the same method). The
    /// active enrollment, if any, is untouched until [`Store::activate_enrollment`].
    fn stage_enrollment(&self, new: NewEnrollment, now: OffsetDateTime) -> StoreFuture<'_, ()>;

    /// Makes the pending enrollment of (`subject`, `method`) active, replacing the active one,
    /// and stamps `confirmed_at`. `false` when nothing was pending.
    fn activate_enrollment<'a>(
        &'a self,
        subject: &'a ObjectId,
        method: &'a str,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, bool>;

    /// Re-confirmation of an active enrollment ("still your phone?"): stamps `confirmed_at`.
    fn reconfirm_enrollment<'a>(
        &'a self,
        subject: &'a ObjectId,
        method: &'a str,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, bool>;

    /// One enrollment, secret decrypted.
    fn enrollment<'a>(
        &'a self,
        subject: &'a ObjectId,
        method: &'a str,
        state: EnrollmentState,
    ) -> StoreFuture<'a, Option<Enrollment>>;

    /// All enrollments of a user (active and pending), ordered by method then state.
    fn enrollments<'a>(&'a self, subject: &'a ObjectId) -> StoreFuture<'a, Vec<Enrollment>>;

    /// The methods (active and pending) of every one of `subjects`, without their data or
    /// secrets (nothing is decrypted): what reports count, a few queries for a whole batch
    /// (backends split long lists). A user's passkeys are one row, method `passkey`, active,
    /// confirmed when the first was registered. Ordered by subject, method, state.
    fn enrolled_methods<'a>(
        &'a self,
        subjects: &'a [ObjectId],
    ) -> StoreFuture<'a, Vec<EnrolledMethod>>;

    /// Removes a method (active and pending); returns how many rows went.
    fn remove_enrollment<'a>(
        &'a self,
        subject: &'a ObjectId,
        method: &'a str,
    ) -> StoreFuture<'a, u64>;

    /// Removes only the pending enrollment of a method (a change the user cancels, or one whose
    /// code could not be sent); the active one stays. Returns how many rows went.
    fn remove_pending_enrollment<'a>(
        &'a self,
        subject: &'a ObjectId,
        method: &'a str,
    ) -> StoreFuture<'a, u64>;

    /// Records a successful use of the active enrollment. With `step` (TOTP), atomically accepts
    /// it only if it is greater than every step accepted before: `false` means replay (or no
    /// active enrollment) and nothing changed.
    fn mark_used<'a>(
        &'a self,
        subject: &'a ObjectId,
        method: &'a str,
        step: Option<i64>,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, bool>;
}

/// Passkeys registered for the portal. A role of [`Store`]; see its contract and
/// [`crate::passkey`].
pub trait PasskeyStore: Send + Sync + 'static {
    /// Registers a passkey unless its credential id is registered already (to anyone) or the
    /// user has `max_per_user` passkeys: decided and written in one statement, so concurrent
    /// registrations never exceed the limit.
    fn add_passkey(
        &self,
        new: NewPasskey,
        max_per_user: u32,
        now: OffsetDateTime,
    ) -> StoreFuture<'_, PasskeyAdded>;

    /// A user's passkeys, oldest first.
    fn passkeys<'a>(&'a self, subject: &'a ObjectId) -> StoreFuture<'a, Vec<Passkey>>;

    /// The passkey with this credential id, whoever it belongs to.
    fn passkey<'a>(&'a self, credential_id: &'a [u8]) -> StoreFuture<'a, Option<Passkey>>;

    /// Records a verified assertion: sets the counter to `new_count` only if it still is
    /// `seen_count` (compare-and-set: of two concurrent uses of one counter value one wins),
    /// stamps the last use. `false`: someone else moved the counter first, nothing changed.
    fn use_passkey<'a>(
        &'a self,
        credential_id: &'a [u8],
        seen_count: u32,
        new_count: u32,
        backed_up: bool,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, bool>;

    /// Removes one of the user's passkeys; `false` when the user has no such passkey.
    fn remove_passkey<'a>(
        &'a self,
        subject: &'a ObjectId,
        credential_id: &'a [u8],
    ) -> StoreFuture<'a, bool>;
}

/// The append-only audit trail. A role of [`Store`]; see its contract.
pub trait AuditStore: Send + Sync + 'static {
    /// Appends an event. Call it before sending the response that the event is about.
    fn append_audit<'a>(&'a self, event: &'a AuditEvent) -> StoreFuture<'a, AuditId>;

    /// Tells `observer` about every event appended from now on (one observer, set at start;
    /// `false` when one is set already).
    fn observe_audit(&self, observer: std::sync::Arc<dyn crate::audit::AuditObserver>) -> bool;

    /// Events matching `query`, newest first.
    fn audit_events<'a>(&'a self, query: &'a AuditQuery) -> StoreFuture<'a, Vec<AuditRecord>>;

    /// Events in `[since, until)` counted per UTC day, event type and outcome (days without
    /// events are absent), ordered by day, type, outcome. `event_types` empty: every type.
    /// Computed in the database: nothing but the counts is read.
    fn audit_daily_counts<'a>(
        &'a self,
        since: OffsetDateTime,
        until: OffsetDateTime,
        event_types: &'a [&'a str],
    ) -> StoreFuture<'a, Vec<AuditDayCount>>;
}

/// On-premises gateways and their job queue. A role of [`Store`]; see its contract.
pub trait GatewayStore: Send + Sync + 'static {
    /// Registers a gateway under `name` (unique among live gateways) with the SHA-256 of its
    /// credential's secret, allowed to run jobs of `allowed_kinds` only (see
    /// [`crate::gateway::JOB_KINDS`]). Refused ([`StoreError::Invalid`]) when the name is taken
    /// or a kind is unknown.
    fn register_gateway<'a>(
        &'a self,
        name: &'a str,
        credential_hash: &'a [u8],
        allowed_kinds: &'a [String],
        now: OffsetDateTime,
    ) -> StoreFuture<'a, Gateway>;

    /// The live (not revoked) gateway `id` when `credential_hash` matches its stored hash
    /// (compared in constant time); `None` otherwise.
    fn authenticate_gateway<'a>(
        &'a self,
        id: &'a str,
        credential_hash: &'a [u8],
    ) -> StoreFuture<'a, Option<Gateway>>;

    /// Every gateway, revoked ones included, by name.
    fn gateways(&self) -> StoreFuture<'_, Vec<Gateway>>;

    /// Revokes the live gateway `name`: its credential stops working at once. `false` when none.
    fn revoke_gateway<'a>(&'a self, name: &'a str, now: OffsetDateTime) -> StoreFuture<'a, bool>;

    /// Records a poll of gateway `id` and the job kinds it declared.
    fn gateway_seen<'a>(
        &'a self,
        id: &'a str,
        capabilities: &'a [String],
        now: OffsetDateTime,
    ) -> StoreFuture<'a, ()>;

    /// Queues a job; its secret (if any) is sealed with the store key.
    fn enqueue_job(&self, new: NewJob, now: OffsetDateTime) -> StoreFuture<'_, Job>;

    /// Hands the oldest queued, unexpired job of one of `kinds` that the gateway is also allowed
    /// ([`Gateway::allowed_kinds`]; the store enforces it) to `gateway_id`, atomically: of
    /// concurrent claimants exactly one gets a given job, and a job is handed out once. The
    /// secret is returned here and deleted from the store.
    fn claim_job<'a>(
        &'a self,
        gateway_id: &'a str,
        kinds: &'a [String],
        now: OffsetDateTime,
    ) -> StoreFuture<'a, Option<ClaimedJob>>;

    /// Records the gateway's report of a job it claimed. Reporting the same result again is
    /// harmless ([`FinishOutcome::AlreadyRecorded`]).
    fn finish_job<'a>(
        &'a self,
        id: &'a str,
        gateway_id: &'a str,
        succeeded: bool,
        result: &'a serde_json::Value,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, FinishOutcome>;

    /// One job (without its secret); a queued job past its deadline reads as expired.
    fn job<'a>(&'a self, id: &'a str, now: OffsetDateTime) -> StoreFuture<'a, Option<Job>>;

    /// Marks queued jobs past their deadline (and claimed jobs long past it) expired and deletes
    /// their secrets; returns how many changed.
    fn expire_jobs(&self, now: OffsetDateTime) -> StoreFuture<'_, u64>;

    /// How many jobs of each kind are in each state (jobs are kept for
    /// [`crate::JOB_RETENTION`] after they end), for metrics.
    fn job_counts(&self) -> StoreFuture<'_, Vec<JobCount>>;

    /// Claims the steps after a succeeded job's change (a reset: void codes and flows, notify,
    /// sign out, audit) for the caller: one conditional update that marks the job, `true` only
    /// for the caller whose update marked it. Of concurrent claimants exactly one gets `true`;
    /// an unknown or not succeeded job, or one already claimed: `false`.
    fn claim_after_change<'a>(&'a self, id: &'a str, now: OffsetDateTime) -> StoreFuture<'a, bool>;

    /// Replaces the allowed job kinds of the live (not revoked) gateway `name`, atomically;
    /// its credential stays the same and the next claim already follows the new kinds. Returns
    /// the kinds it had before, `None` when there is no live gateway of that name (a revoked one
    /// cannot be changed). Refused ([`StoreError::Invalid`]) when a kind is unknown or none is
    /// given. Which kinds must stay allowed (unlock) is the caller's policy, not the store's.
    fn set_gateway_kinds<'a>(
        &'a self,
        name: &'a str,
        allowed_kinds: &'a [String],
    ) -> StoreFuture<'a, Option<Vec<String>>>;
}

/// The notice outbox (crate::outbox). A role of [`Store`]; see its contract.
pub trait NoticeStore: Send + Sync + 'static {
    /// Stores a notice for delivery, due at once; its payload is sealed. Returns its id.
    fn enqueue_notice(&self, new: NewNotice, now: OffsetDateTime) -> StoreFuture<'_, String>;

    /// Claims up to `max` due notices (oldest first) for `lease`: they are not handed out again
    /// before the lease ends, unless finished. Of concurrent claimants (any instance) each gets
    /// different notices. A notice whose lease ran out (its deliverer died) is due again.
    fn claim_notices(
        &self,
        now: OffsetDateTime,
        lease: std::time::Duration,
        max: u32,
    ) -> StoreFuture<'_, Vec<QueuedNotice>>;

    /// Ends a claimed notice's delivery: [`NoticeOutcome::Done`] deletes it, `RetryAt` makes it
    /// due again then. `false` when there is no such notice (already finished).
    fn finish_notice<'a>(&'a self, id: &'a str, outcome: NoticeOutcome) -> StoreFuture<'a, bool>;
}

/// Audit forwarding to SIEM outputs (crate::forward): per output a cursor and a lease. A role of
/// [`Store`].
pub trait ForwardStore: Send + Sync + 'static {
    /// Takes or renews `output`'s lease for `holder` until `now + ttl` and returns the output's
    /// cursor; `None` while another holder's lease runs. The first lease of an output places
    /// its cursor at `start`.
    fn lease_forwarding<'a>(
        &'a self,
        output: &'a str,
        holder: &'a str,
        start: ForwardStart,
        now: OffsetDateTime,
        ttl: std::time::Duration,
    ) -> StoreFuture<'a, Option<AuditPosition>>;

    /// At most `max` final events after `after`, in position order (see crate::forward).
    fn audit_after(&self, after: AuditPosition, max: u32) -> StoreFuture<'_, Vec<ForwardItem>>;

    /// Moves `output`'s cursor forward to `to` (counting `delivered` more events) if `holder`
    /// still holds its lease; `false` (nothing changed) when another instance took it over.
    fn advance_forwarding<'a>(
        &'a self,
        output: &'a str,
        holder: &'a str,
        to: AuditPosition,
        delivered: u64,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, bool>;

    /// Gives `output`'s lease up (at shutdown), so another instance takes over at once.
    fn release_forwarding<'a>(&'a self, output: &'a str, holder: &'a str) -> StoreFuture<'a, ()>;

    /// Events not yet delivered to `output` (written after its cursor), counted up to `cap`;
    /// `None` before the output's first lease.
    fn forward_backlog<'a>(&'a self, output: &'a str, cap: u64) -> StoreFuture<'a, Option<u64>>;
}

/// The directory mirror (crate::mirror): one syncer writes pages under a lease, every instance
/// reads. A role of [`Store`].
pub trait MirrorStore: Send + Sync + 'static {
    /// Takes or renews the sync lease for `holder` until `now + ttl`; `false` while another
    /// holder's lease runs.
    fn lease_mirror<'a>(
        &'a self,
        holder: &'a str,
        now: OffsetDateTime,
        ttl: std::time::Duration,
    ) -> StoreFuture<'a, bool>;

    /// Gives the lease up (at shutdown), so another instance takes over at once.
    fn release_mirror<'a>(&'a self, holder: &'a str) -> StoreFuture<'a, ()>;

    /// Applies one delta page and records the link after it, in one transaction, if `holder`
    /// holds the lease; `false` (nothing changed) otherwise. A page that completes a full round
    /// deletes what that round did not see.
    fn apply_mirror_page<'a>(
        &'a self,
        holder: &'a str,
        page: &'a MirrorPage,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, bool>;

    /// Records why a round of `collection` stopped (kept until a round completes).
    fn record_mirror_error<'a>(
        &'a self,
        collection: MirrorCollection,
        error: &'a str,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, ()>;

    /// Where each collection's sync stands (collections never synced are absent).
    fn mirror_sync_state(&self) -> StoreFuture<'_, Vec<MirrorSyncState>>;

    /// Asks the syncer (whichever instance holds the lease) for a round now.
    fn request_mirror_sync(&self, now: OffsetDateTime) -> StoreFuture<'_, ()>;

    /// When a round was last asked for.
    fn mirror_requested(&self) -> StoreFuture<'_, Option<OffsetDateTime>>;

    /// At most `max` users with identification key `key`, in id order.
    fn mirror_find_users<'a>(&'a self, key: &'a str, max: u32) -> StoreFuture<'a, Vec<MirrorUser>>;

    fn mirror_user<'a>(&'a self, id: &'a ObjectId) -> StoreFuture<'a, Option<MirrorUser>>;

    /// The groups and roles `members` are direct members of.
    fn mirror_parents<'a>(&'a self, members: &'a [ObjectId]) -> StoreFuture<'a, Vec<MirrorParent>>;

    /// The groups and roles `member` is in, directly or through nested groups, each once with
    /// its kind: one query (a recursive one), however deep the nesting. Each group is expanded
    /// once (a cycle ends there); roles are not followed.
    fn mirror_ancestors<'a>(
        &'a self,
        member: &'a ObjectId,
    ) -> StoreFuture<'a, Vec<(ObjectId, GroupKind)>>;

    /// Every group's and role's direct membership in a group or role (the nesting graph).
    fn mirror_nesting(&self) -> StoreFuture<'_, Vec<MirrorParent>>;

    /// At most `limit` users after `after` in id order, each with its direct groups and roles.
    fn mirror_users_page(
        &self,
        after: Option<ObjectId>,
        limit: u32,
    ) -> StoreFuture<'_, Vec<MirrorListedUser>>;

    /// Names and kinds of the groups and roles among `ids` that the mirror has.
    fn mirror_group_names<'a>(
        &'a self,
        ids: &'a [ObjectId],
    ) -> StoreFuture<'a, Vec<(ObjectId, Option<String>, GroupKind)>>;

    fn mirror_counts(&self) -> StoreFuture<'_, MirrorCounts>;

    /// Every user the registration report lists with a method, and the method names.
    fn mirror_registrations(&self) -> StoreFuture<'_, Vec<(ObjectId, Vec<String>)>>;

    /// The method names the registration report lists for `user` (`None`: not in it).
    fn mirror_registration<'a>(
        &'a self,
        user: &'a ObjectId,
    ) -> StoreFuture<'a, Option<Vec<String>>>;
}
