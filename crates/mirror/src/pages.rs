//! Every user of the mirror with its direct groups and roles, a page at a time, for reports
//! over the whole tenant: the next page is read on another task while the caller works on the
//! one it has (the store's read and the caller's evaluation then use both cores).

use std::sync::Arc;

use latchkey_store::{MirrorListedUser, Store, StoreError};
use tokio::task::JoinHandle;

use crate::error::MirrorError;

type Pending = JoinHandle<Result<Vec<MirrorListedUser>, StoreError>>;

pub struct UserPages {
    store: Arc<dyn Store>,
    size: u32,
    next: Option<Pending>,
}

impl UserPages {
    /// Starts reading the first page of `size` users.
    pub fn new(store: Arc<dyn Store>, size: u32) -> UserPages {
        let next = Some(read(Arc::clone(&store), None, size));
        UserPages { store, size, next }
    }

    /// The next page (never empty), `None` after the last.
    pub async fn next(&mut self) -> Result<Option<Vec<MirrorListedUser>>, MirrorError> {
        let Some(pending) = self.next.take() else {
            return Ok(None);
        };
        let users = pending.await.map_err(|_| MirrorError::Task)??;
        let Some(last) = users.last() else {
            return Ok(None);
        };
        self.next = Some(read(Arc::clone(&self.store), Some(last.id), self.size));
        Ok(Some(users))
    }
}

impl Drop for UserPages {
    fn drop(&mut self) {
        // A reader that stops early does not leave a read running for nobody.
        if let Some(p) = self.next.take() {
            p.abort();
        }
    }
}

fn read(store: Arc<dyn Store>, after: Option<latchkey_types::ObjectId>, size: u32) -> Pending {
    tokio::spawn(async move { store.mirror_users_page(after, size).await })
}
