//! The store's role traits on PostgreSQL: each method times itself (the call observer) and runs
//! its `*_impl` in the module of its table.

use latchkey_types::ObjectId;
use time::OffsetDateTime;

use super::PostgresStore;
use crate::audit::{AuditDayCount, AuditEvent, AuditId, AuditQuery, AuditRecord};
use crate::code::{CodeAttempt, CodeId, IssuedCode, NewCode};
use crate::enrollment::{EnrolledMethod, Enrollment, EnrollmentState, NewEnrollment};
use crate::flow::{Flow, FlowId, FlowStep, FlowToken, FlowUpdate, NewFlow, Verification};
use crate::gateway::{ClaimedJob, FinishOutcome, Gateway, Job, NewJob};
use crate::outbox::{NewNotice, NoticeOutcome, QueuedNotice};
use crate::store::{
    AuditStore, CodeStore, EnrollmentStore, FlowStore, GatewayStore, NoticeStore, PurgeReport,
    Store, StoreFuture, ThrottleStore,
};
use crate::throttle::{Limit, ThrottleDecision, ThrottleKey};

impl Store for PostgresStore {
    fn purge_expired(&self, now: OffsetDateTime) -> StoreFuture<'_, PurgeReport> {
        Box::pin(
            self.observer
                .timed("purge_expired", self.purge_expired_impl(now)),
        )
    }

    fn observe_calls(&self, observer: std::sync::Arc<dyn crate::audit::CallObserver>) -> bool {
        self.observer.set_calls(observer)
    }
    fn ping(&self) -> StoreFuture<'_, ()> {
        Box::pin(self.observer.timed("ping", async move {
            sqlx::query("SELECT 1").execute(&self.pool).await?;
            Ok(())
        }))
    }
}

impl FlowStore for PostgresStore {
    fn create_flow(&self, new: NewFlow, now: OffsetDateTime) -> StoreFuture<'_, (FlowToken, Flow)> {
        Box::pin(
            self.observer
                .timed("create_flow", self.create_flow_impl(new, now)),
        )
    }
    fn flow<'a>(
        &'a self,
        token: &'a FlowToken,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, Option<Flow>> {
        Box::pin(self.observer.timed("flow", self.flow_impl(token, now)))
    }
    fn update_flow<'a>(
        &'a self,
        token: &'a FlowToken,
        update: FlowUpdate,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, Option<Flow>> {
        Box::pin(
            self.observer
                .timed("update_flow", self.update_flow_impl(token, update, now)),
        )
    }
    fn record_verification<'a>(
        &'a self,
        token: &'a FlowToken,
        proof: Verification,
        next_step: FlowStep,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, Option<(FlowToken, Flow)>> {
        Box::pin(self.observer.timed(
            "record_verification",
            self.record_verification_impl(token, proof, next_step, now),
        ))
    }
    fn claim_flow<'a>(
        &'a self,
        token: &'a FlowToken,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, Option<Flow>> {
        Box::pin(
            self.observer
                .timed("claim_flow", self.claim_flow_impl(token, now)),
        )
    }
    fn release_flow<'a>(
        &'a self,
        token: &'a FlowToken,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, bool> {
        Box::pin(
            self.observer
                .timed("release_flow", self.release_flow_impl(token, now)),
        )
    }
    fn end_flow<'a>(&'a self, token: &'a FlowToken) -> StoreFuture<'a, bool> {
        Box::pin(self.observer.timed("end_flow", self.end_flow_impl(token)))
    }
    fn end_flows_of<'a>(&'a self, subject: &'a ObjectId) -> StoreFuture<'a, u64> {
        Box::pin(
            self.observer
                .timed("end_flows_of", self.end_flows_of_impl(subject)),
        )
    }
}

impl CodeStore for PostgresStore {
    fn issue_code(&self, new: NewCode, now: OffsetDateTime) -> StoreFuture<'_, IssuedCode> {
        Box::pin(
            self.observer
                .timed("issue_code", self.issue_code_impl(new, now)),
        )
    }
    fn take_code_attempt<'a>(
        &'a self,
        flow: &'a FlowId,
        method: &'a str,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, Option<CodeAttempt>> {
        Box::pin(self.observer.timed(
            "take_code_attempt",
            self.take_code_attempt_impl(flow, method, now),
        ))
    }
    fn consume_code(&self, id: CodeId, now: OffsetDateTime) -> StoreFuture<'_, bool> {
        Box::pin(
            self.observer
                .timed("consume_code", self.consume_code_impl(id, now)),
        )
    }
    fn void_codes_of<'a>(
        &'a self,
        subject: &'a ObjectId,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, u64> {
        Box::pin(
            self.observer
                .timed("void_codes_of", self.void_codes_of_impl(subject, now)),
        )
    }
}

impl ThrottleStore for PostgresStore {
    fn hit<'a>(
        &'a self,
        key: &'a ThrottleKey,
        limits: &'a [Limit],
        now: OffsetDateTime,
    ) -> StoreFuture<'a, ThrottleDecision> {
        Box::pin(async move {
            let decision = self
                .observer
                .timed("hit", self.hit_impl(key, limits, now))
                .await?;
            if matches!(decision, ThrottleDecision::Denied { .. }) {
                self.observer.throttled(&key.scope);
            }
            Ok(decision)
        })
    }
    fn reset<'a>(&'a self, key: &'a ThrottleKey) -> StoreFuture<'a, ()> {
        Box::pin(self.observer.timed("reset", self.reset_impl(key)))
    }
}

impl EnrollmentStore for PostgresStore {
    fn stage_enrollment(&self, new: NewEnrollment, now: OffsetDateTime) -> StoreFuture<'_, ()> {
        Box::pin(
            self.observer
                .timed("stage_enrollment", self.stage_enrollment_impl(new, now)),
        )
    }
    fn activate_enrollment<'a>(
        &'a self,
        subject: &'a ObjectId,
        method: &'a str,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, bool> {
        Box::pin(self.observer.timed(
            "activate_enrollment",
            self.activate_enrollment_impl(subject, method, now),
        ))
    }
    fn reconfirm_enrollment<'a>(
        &'a self,
        subject: &'a ObjectId,
        method: &'a str,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, bool> {
        Box::pin(self.observer.timed(
            "reconfirm_enrollment",
            self.reconfirm_enrollment_impl(subject, method, now),
        ))
    }
    fn enrollment<'a>(
        &'a self,
        subject: &'a ObjectId,
        method: &'a str,
        state: EnrollmentState,
    ) -> StoreFuture<'a, Option<Enrollment>> {
        Box::pin(
            self.observer
                .timed("enrollment", self.enrollment_impl(subject, method, state)),
        )
    }
    fn enrollments<'a>(&'a self, subject: &'a ObjectId) -> StoreFuture<'a, Vec<Enrollment>> {
        Box::pin(
            self.observer
                .timed("enrollments", self.enrollments_impl(subject)),
        )
    }
    fn enrolled_methods<'a>(
        &'a self,
        subjects: &'a [ObjectId],
    ) -> StoreFuture<'a, Vec<EnrolledMethod>> {
        Box::pin(
            self.observer
                .timed("enrolled_methods", self.enrolled_methods_impl(subjects)),
        )
    }
    fn remove_enrollment<'a>(
        &'a self,
        subject: &'a ObjectId,
        method: &'a str,
    ) -> StoreFuture<'a, u64> {
        Box::pin(self.observer.timed(
            "remove_enrollment",
            self.remove_enrollment_impl(subject, method),
        ))
    }
    fn remove_pending_enrollment<'a>(
        &'a self,
        subject: &'a ObjectId,
        method: &'a str,
    ) -> StoreFuture<'a, u64> {
        Box::pin(self.observer.timed(
            "remove_pending_enrollment",
            self.remove_pending_enrollment_impl(subject, method),
        ))
    }
    fn mark_used<'a>(
        &'a self,
        subject: &'a ObjectId,
        method: &'a str,
        step: Option<i64>,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, bool> {
        Box::pin(
            self.observer
                .timed("mark_used", self.mark_used_impl(subject, method, step, now)),
        )
    }
}

impl AuditStore for PostgresStore {
    fn append_audit<'a>(&'a self, event: &'a AuditEvent) -> StoreFuture<'a, AuditId> {
        Box::pin(self.observer.timed("append_audit", async move {
            let id = self.append_audit_impl(event).await?;
            self.observer.appended(event);
            Ok(id)
        }))
    }
    fn observe_audit(&self, observer: std::sync::Arc<dyn crate::audit::AuditObserver>) -> bool {
        self.observer.set(observer)
    }
    fn audit_events<'a>(&'a self, query: &'a AuditQuery) -> StoreFuture<'a, Vec<AuditRecord>> {
        Box::pin(
            self.observer
                .timed("audit_events", self.audit_events_impl(query)),
        )
    }
    fn audit_daily_counts<'a>(
        &'a self,
        since: OffsetDateTime,
        until: OffsetDateTime,
        event_types: &'a [&'a str],
    ) -> StoreFuture<'a, Vec<AuditDayCount>> {
        Box::pin(self.observer.timed(
            "audit_daily_counts",
            self.audit_daily_counts_impl(since, until, event_types),
        ))
    }
}

impl GatewayStore for PostgresStore {
    fn register_gateway<'a>(
        &'a self,
        name: &'a str,
        credential_hash: &'a [u8],
        allowed_kinds: &'a [String],
        now: OffsetDateTime,
    ) -> StoreFuture<'a, Gateway> {
        Box::pin(self.observer.timed(
            "register_gateway",
            self.register_gateway_impl(name, credential_hash, allowed_kinds, now),
        ))
    }
    fn authenticate_gateway<'a>(
        &'a self,
        id: &'a str,
        credential_hash: &'a [u8],
    ) -> StoreFuture<'a, Option<Gateway>> {
        Box::pin(self.observer.timed(
            "authenticate_gateway",
            self.authenticate_gateway_impl(id, credential_hash),
        ))
    }
    fn gateways(&self) -> StoreFuture<'_, Vec<Gateway>> {
        Box::pin(self.observer.timed("gateways", self.gateways_impl()))
    }
    fn revoke_gateway<'a>(&'a self, name: &'a str, now: OffsetDateTime) -> StoreFuture<'a, bool> {
        Box::pin(
            self.observer
                .timed("revoke_gateway", self.revoke_gateway_impl(name, now)),
        )
    }
    fn gateway_seen<'a>(
        &'a self,
        id: &'a str,
        capabilities: &'a [String],
        now: OffsetDateTime,
    ) -> StoreFuture<'a, ()> {
        Box::pin(self.observer.timed(
            "gateway_seen",
            self.gateway_seen_impl(id, capabilities, now),
        ))
    }
    fn enqueue_job(&self, new: NewJob, now: OffsetDateTime) -> StoreFuture<'_, Job> {
        Box::pin(
            self.observer
                .timed("enqueue_job", self.enqueue_job_impl(new, now)),
        )
    }
    fn claim_job<'a>(
        &'a self,
        gateway_id: &'a str,
        kinds: &'a [String],
        now: OffsetDateTime,
    ) -> StoreFuture<'a, Option<ClaimedJob>> {
        Box::pin(
            self.observer
                .timed("claim_job", self.claim_job_impl(gateway_id, kinds, now)),
        )
    }
    fn finish_job<'a>(
        &'a self,
        id: &'a str,
        gateway_id: &'a str,
        succeeded: bool,
        result: &'a serde_json::Value,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, FinishOutcome> {
        Box::pin(self.observer.timed(
            "finish_job",
            self.finish_job_impl(id, gateway_id, succeeded, result, now),
        ))
    }
    fn job<'a>(&'a self, id: &'a str, now: OffsetDateTime) -> StoreFuture<'a, Option<Job>> {
        Box::pin(self.observer.timed("job", self.job_impl(id, now)))
    }
    fn job_counts(&self) -> StoreFuture<'_, Vec<crate::gateway::JobCount>> {
        Box::pin(self.observer.timed("job_counts", self.job_counts_impl()))
    }
    fn expire_jobs(&self, now: OffsetDateTime) -> StoreFuture<'_, u64> {
        Box::pin(
            self.observer
                .timed("expire_jobs", self.expire_jobs_impl(now)),
        )
    }
    fn claim_after_change<'a>(&'a self, id: &'a str, now: OffsetDateTime) -> StoreFuture<'a, bool> {
        Box::pin(
            self.observer
                .timed("claim_after_change", self.claim_after_change_impl(id, now)),
        )
    }
    fn set_gateway_kinds<'a>(
        &'a self,
        name: &'a str,
        allowed_kinds: &'a [String],
    ) -> StoreFuture<'a, Option<Vec<String>>> {
        Box::pin(self.observer.timed(
            "set_gateway_kinds",
            self.set_gateway_kinds_impl(name, allowed_kinds),
        ))
    }
}

impl NoticeStore for PostgresStore {
    fn enqueue_notice(&self, new: NewNotice, now: OffsetDateTime) -> StoreFuture<'_, String> {
        Box::pin(
            self.observer
                .timed("enqueue_notice", self.enqueue_notice_impl(new, now)),
        )
    }
    fn claim_notices(
        &self,
        now: OffsetDateTime,
        lease: std::time::Duration,
        max: u32,
    ) -> StoreFuture<'_, Vec<QueuedNotice>> {
        Box::pin(
            self.observer
                .timed("claim_notices", self.claim_notices_impl(now, lease, max)),
        )
    }
    fn finish_notice<'a>(&'a self, id: &'a str, outcome: NoticeOutcome) -> StoreFuture<'a, bool> {
        Box::pin(
            self.observer
                .timed("finish_notice", self.finish_notice_impl(id, outcome)),
        )
    }
}
