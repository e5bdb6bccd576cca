//! The directory mirror in the portal (`[directory]`, docs/directory-mirror.md): the reader the
//! flows and reports use, and the syncer task every instance runs (one of them holds the lease
//! and syncs; the others stand by).

use std::sync::{Arc, Mutex, PoisonError};

use latchkey_graph::GraphClient;
use latchkey_mirror::{Mirror, Syncer, SyncerSettings};
use latchkey_store::Store;
use latchkey_verify::Clock;
use tokio::sync::{Notify, watch};

use crate::config::DirectorySettings;

/// How long the sync lease lasts; the syncer renews it every quarter.
const LEASE: std::time::Duration = std::time::Duration::from_secs(30);

/// The mirror of this portal: its reader, and its syncer until started.
pub struct DirectoryMirror {
    pub mirror: Arc<Mirror>,
    syncer: Mutex<Option<Syncer>>,
    wake: Arc<Notify>,
    clock: Arc<dyn Clock>,
}

impl DirectoryMirror {
    /// The mirror `[directory]` asks for (`None` when it is off).
    pub fn from_settings(
        settings: &DirectorySettings,
        graph: GraphClient,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Option<DirectoryMirror>> {
        if !settings.mirror {
            return Ok(None);
        }
        let (interval, max_lag) = settings.timings().map_err(anyhow::Error::msg)?;
        let mirror = Arc::new(Mirror::new(Arc::clone(&store), Arc::clone(&clock), max_lag));
        let syncer = Syncer::new(
            graph,
            store,
            Arc::clone(&clock),
            SyncerSettings {
                interval,
                lease: LEASE,
                holder: crate::forwarding::holder()?,
                full_round_every: settings.full_round_every().map_err(anyhow::Error::msg)?,
            },
        );
        let wake = syncer.waker();
        Ok(Some(DirectoryMirror {
            mirror,
            syncer: Mutex::new(Some(syncer)),
            wake,
            clock,
        }))
    }

    /// Starts the syncer task (once; `None` the second time).
    pub fn start(&self) -> Option<RunningSyncer> {
        let syncer = self
            .syncer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()?;
        let (stop, mut rx) = watch::channel(false);
        let task = tokio::spawn(syncer.run(async move {
            // A dropped sender stops the loop too.
            while !*rx.borrow() {
                if rx.changed().await.is_err() {
                    break;
                }
            }
        }));
        Some(RunningSyncer { stop, task })
    }

    /// "Sync now": recorded in the store (the instance holding the lease runs a round within
    /// seconds) and this instance's syncer woken.
    pub async fn sync_now(&self) -> Result<(), latchkey_store::StoreError> {
        self.mirror
            .store()
            .request_mirror_sync(self.clock.now())
            .await?;
        self.wake.notify_one();
        Ok(())
    }
}

/// The running syncer.
pub struct RunningSyncer {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningSyncer {
    /// Stops after the page in progress and gives the lease up.
    pub async fn stop(self) {
        if self.stop.send(true).is_err() {
            tracing::debug!("directory mirror: the syncer had already stopped");
        }
        match tokio::time::timeout(std::time::Duration::from_secs(10), self.task).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "directory mirror: the syncer failed"),
            Err(_) => tracing::warn!("directory mirror: the syncer did not stop in time"),
        }
    }
}
