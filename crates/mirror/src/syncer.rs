//! The one syncer: rounds of delta queries under the store's lease.
//!
//! A round reads users, then groups, then directory roles, each from where its last page left
//! it: no link yet starts a full round; a nextLink resumes a round a crash or a lost lease cut
//! short; a deltaLink starts an incremental round. Every page is stored with the link after it
//! before the next is asked for. Graph's resync answer (410, `syncStateNotFound`) starts that
//! collection's full round again, as does a last full round older than
//! [`SyncerSettings::full_round_every`]; throttling is the Graph client's (429 and `Retry-After`
//! within its retry budget); any other error ends the round, is recorded for the console, and
//! the next round resumes from the last stored page.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use latchkey_graph::{DeltaCollection, DeltaCursor, GraphClient};
use latchkey_store::{MirrorCollection, MirrorLink, MirrorPage, Store};
use latchkey_verify::Clock;
use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::convert::{groups_page, users_page};
use crate::error::MirrorError;

/// How often the registration report is read again (it has no delta; Microsoft says it may lag
/// by hours anyway).
pub const REGISTRATIONS_EVERY: Duration = Duration::from_secs(3600);

/// Resync answers accepted in one collection's round before it gives up (each starts over).
const MAX_RESYNCS: u32 = 3;
/// How often an idle syncer looks for a "sync now" asked on another instance.
const POLL: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub struct SyncerSettings {
    /// Time between the starts of incremental rounds.
    pub interval: Duration,
    /// The sync lease's length; renewed every quarter of it.
    pub lease: Duration,
    /// This instance's name in the lease (unique per process).
    pub holder: String,
    /// Time between full rounds; `None`: only when Graph asks for one. A full round reads
    /// every object again and drops what it did not see, which bounds any drift.
    pub full_round_every: Option<Duration>,
}

/// What one round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoundReport {
    pub pages: u64,
    pub objects: u64,
    /// Collections whose round was a full one.
    pub full_rounds: Vec<MirrorCollection>,
    /// Resync answers Graph gave.
    pub resyncs: u32,
    /// The registration report was read in this round.
    pub registrations: bool,
}

pub struct Syncer {
    graph: GraphClient,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    settings: SyncerSettings,
    wake: Arc<Notify>,
}

/// The groups collection a delta query reads for `c` (users have their own call).
fn group_collection(c: MirrorCollection) -> Option<DeltaCollection> {
    match c {
        MirrorCollection::Groups => Some(DeltaCollection::Groups),
        MirrorCollection::DirectoryRoles => Some(DeltaCollection::DirectoryRoles),
        MirrorCollection::Users | MirrorCollection::RegistrationDetails => None,
    }
}

impl Syncer {
    pub fn new(
        graph: GraphClient,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        settings: SyncerSettings,
    ) -> Syncer {
        Syncer {
            graph,
            store,
            clock,
            settings,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Wakes the syncer for a round now (the console's "sync now" on this instance; other
    /// instances see the request in the store).
    pub fn waker(&self) -> Arc<Notify> {
        Arc::clone(&self.wake)
    }

    /// Runs rounds until `shutdown` completes, then gives the lease up.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut last_start: Option<OffsetDateTime> = None;
        let mut renewed: Option<OffsetDateTime> = None;
        loop {
            let now = self.clock.now();
            let requested = match self.store.mirror_requested().await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "directory mirror: cannot read the sync state");
                    None
                }
            };
            let due = last_start.is_none_or(|t| {
                now - t >= self.settings.interval || requested.is_some_and(|r| r > t)
            });
            let renew_due = renewed.is_none_or(|t| now - t >= self.settings.lease / 4);
            if due || renew_due {
                match self
                    .store
                    .lease_mirror(&self.settings.holder, now, self.settings.lease)
                    .await
                {
                    Ok(true) => {
                        renewed = Some(now);
                        if due {
                            last_start = Some(now);
                            // A shutdown does not wait for a long round: a page is one
                            // transaction, so stopping between two (or in one, which then
                            // rolls back) loses nothing; the next holder resumes there.
                            tokio::select! {
                                () = self.logged_round() => {}
                                () = &mut shutdown => break,
                            }
                        }
                    }
                    Ok(false) => {
                        renewed = None;
                        if due {
                            // Another instance syncs; look again after an interval.
                            last_start = Some(now);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "directory mirror: cannot take the sync lease");
                    }
                }
            }
            tokio::select! {
                () = &mut shutdown => break,
                () = self.wake.notified() => last_start = None,
                () = tokio::time::sleep(POLL) => {}
            }
        }
        if let Err(e) = self.store.release_mirror(&self.settings.holder).await {
            tracing::warn!(error = %e, "directory mirror: cannot release the sync lease");
        }
    }

    async fn logged_round(&self) {
        match self.round().await {
            Ok(r) => tracing::debug!(
                pages = r.pages,
                objects = r.objects,
                resyncs = r.resyncs,
                "directory mirror: round complete"
            ),
            Err(MirrorError::LeaseLost) => {
                tracing::info!("directory mirror: another instance took the sync over");
            }
            Err(e) => tracing::warn!(error = %e, "directory mirror: round stopped"),
        }
    }

    /// One round of every collection, if this instance holds the lease (else
    /// [`MirrorError::LeaseLost`]). An error is recorded for its collection and ends the round.
    pub async fn round(&self) -> Result<RoundReport, MirrorError> {
        let mut report = RoundReport::default();
        for c in MirrorCollection::DELTA {
            if let Err(e) = self.collection_round(c, &mut report).await {
                if !matches!(e, MirrorError::LeaseLost) {
                    let text = e.to_string();
                    if let Err(store) = self
                        .store
                        .record_mirror_error(c, &text, self.clock.now())
                        .await
                    {
                        tracing::warn!(error = %store, "directory mirror: cannot record an error");
                    }
                }
                return Err(e);
            }
        }
        // The registration report is a hint the mirror works without: its failure (no licence,
        // no AuditLog.Read.All) is recorded for the console, and the round still succeeds.
        match self.registrations_round(&mut report).await {
            Ok(()) => {}
            Err(MirrorError::LeaseLost) => return Err(MirrorError::LeaseLost),
            Err(e) => {
                let c = MirrorCollection::RegistrationDetails;
                tracing::info!(error = %e, "directory mirror: the registration report could not be read");
                if let Err(store) = self
                    .store
                    .record_mirror_error(c, &e.to_string(), self.clock.now())
                    .await
                {
                    tracing::warn!(error = %store, "directory mirror: cannot record an error");
                }
            }
        }
        Ok(report)
    }

    /// Reads the registration report whole when it is due ([`REGISTRATIONS_EVERY`]), or goes
    /// on with a read a crash cut short.
    async fn registrations_round(&self, report: &mut RoundReport) -> Result<(), MirrorError> {
        let c = MirrorCollection::RegistrationDetails;
        let state = self.store.mirror_sync_state().await?;
        let state = state.into_iter().find(|s| s.collection == c);
        let now = self.clock.now();
        let mut next = match state.as_ref().and_then(|s| s.link.clone()) {
            Some(MirrorLink::More(l)) => self.graph.next_page(&l).ok(),
            _ => None,
        };
        let resuming = next.is_some();
        let last = state.as_ref().and_then(|s| s.last_round_at);
        // A failed read waits as long as a completed one before it is tried again.
        let tried = state
            .as_ref()
            .and_then(|s| s.last_error.as_ref().map(|(at, _)| *at));
        let latest = last.max(tried);
        if !resuming && latest.is_some_and(|t| now - t < REGISTRATIONS_EVERY) {
            return Ok(());
        }
        let mut begins = !resuming;
        let mut renewed = now;
        loop {
            let page = self.graph.registration_details_page(next.as_ref()).await?;
            let now = self.clock.now();
            if now - renewed >= self.settings.lease / 4 {
                if !self
                    .store
                    .lease_mirror(&self.settings.holder, now, self.settings.lease)
                    .await?
                {
                    return Err(MirrorError::LeaseLost);
                }
                renewed = now;
            }
            let stored = crate::convert::registrations_page(&page, begins);
            report.pages += 1;
            if !self
                .store
                .apply_mirror_page(&self.settings.holder, &stored, now)
                .await?
            {
                return Err(MirrorError::LeaseLost);
            }
            begins = false;
            match page.next {
                Some(n) => next = Some(n),
                None => {
                    report.registrations = true;
                    return Ok(());
                }
            }
        }
    }

    async fn collection_round(
        &self,
        c: MirrorCollection,
        report: &mut RoundReport,
    ) -> Result<(), MirrorError> {
        let (mut cursor, mut begins) = self.start_of(c).await?;
        let mut renewed = self.clock.now();
        let mut resyncs = 0;
        let mut restarted = false;
        if begins {
            report.full_rounds.push(c);
        }
        loop {
            let page = match self.fetch(c, &cursor, begins).await {
                Ok(p) => p,
                Err(MirrorError::Graph(e)) if e.is_sync_reset() => {
                    resyncs += 1;
                    report.resyncs += 1;
                    if resyncs > MAX_RESYNCS {
                        return Err(MirrorError::ResyncLoop(resyncs));
                    }
                    tracing::info!(
                        collection = c.as_str(),
                        "directory mirror: Graph asked for a resync; full round"
                    );
                    cursor = DeltaCursor::Start;
                    begins = true;
                    if !report.full_rounds.contains(&c) {
                        report.full_rounds.push(c);
                    }
                    continue;
                }
                // A link Graph no longer takes in some other way (a token it does not know
                // after a tenant or app change, a link that is not a delta link): once per
                // round, start the collection over rather than fail on it every round.
                Err(MirrorError::Graph(e))
                    if !restarted
                        && matches!(cursor, DeltaCursor::Link(_))
                        && !e.is_transient() =>
                {
                    tracing::warn!(
                        collection = c.as_str(),
                        error = %e,
                        "directory mirror: the stored link failed; full round"
                    );
                    restarted = true;
                    cursor = DeltaCursor::Start;
                    begins = true;
                    if !report.full_rounds.contains(&c) {
                        report.full_rounds.push(c);
                    }
                    continue;
                }
                Err(e) => return Err(e),
            };
            let now = self.clock.now();
            if now - renewed >= self.settings.lease / 4 {
                if !self
                    .store
                    .lease_mirror(&self.settings.holder, now, self.settings.lease)
                    .await?
                {
                    return Err(MirrorError::LeaseLost);
                }
                renewed = now;
            }
            report.pages += 1;
            report.objects += (page.users.len() + page.groups.len() + page.removed.len()) as u64;
            if !self
                .store
                .apply_mirror_page(&self.settings.holder, &page, now)
                .await?
            {
                return Err(MirrorError::LeaseLost);
            }
            begins = false;
            match page.link {
                MirrorLink::More(l) => cursor = DeltaCursor::Link(self.graph.delta_link(&l)?),
                MirrorLink::Done(_) => return Ok(()),
            }
        }
    }

    /// Where `c`'s round starts, and whether it starts a full round (a full round resumed
    /// from a stored next link does not): from the stored link (a nextLink
    /// resumes a round, a deltaLink starts an incremental one), from the start when there is
    /// none or the client refuses it (the Graph origin changed), or when the last full round
    /// is older than [`SyncerSettings::full_round_every`] (a round in progress is finished
    /// first).
    async fn start_of(&self, c: MirrorCollection) -> Result<(DeltaCursor, bool), MirrorError> {
        let state = self.store.mirror_sync_state().await?;
        let state = state.into_iter().find(|s| s.collection == c);
        let last_full = state.as_ref().and_then(|s| s.last_full_round_at);
        let link = state.and_then(|s| s.link);
        let now = self.clock.now();
        let periodic = matches!(link, Some(MirrorLink::Done(_)))
            && self
                .settings
                .full_round_every
                .is_some_and(|every| last_full.is_none_or(|t| now - t >= every));
        if periodic {
            tracing::info!(
                collection = c.as_str(),
                "directory mirror: periodic full round"
            );
        }
        let stored = match &link {
            _ if periodic => None,
            Some(MirrorLink::More(l) | MirrorLink::Done(l)) => self.graph.delta_link(l).ok(),
            None => None,
        };
        Ok(match stored {
            Some(l) => (DeltaCursor::Link(l), false),
            None => (DeltaCursor::Start, true),
        })
    }

    async fn fetch(
        &self,
        c: MirrorCollection,
        cursor: &DeltaCursor,
        begins: bool,
    ) -> Result<MirrorPage, MirrorError> {
        if c == MirrorCollection::Users {
            return users_page(&self.graph.users_delta(cursor).await?, begins);
        }
        match group_collection(c) {
            Some(dc) => Ok(groups_page(
                &self.graph.groups_delta(cursor, dc).await?,
                c,
                begins,
            )),
            // Not a delta collection: nothing to read this way (the registration report has
            // its own round).
            None => Err(MirrorError::NotDelta(c.as_str())),
        }
    }
}
