//! What every handler shares: the tenant state, the signing key, the clock, faults and the
//! request record. Lives in `web::Data<Shared>`; `Sim` keeps another `Arc` to it.

use std::sync::{Mutex, MutexGuard};

use crate::clock::Clock;
use crate::faults::Faults;
use crate::recording::Recorder;
use crate::state::State;
use crate::tokens::Keys;

#[derive(Debug)]
pub struct Shared {
    state: Mutex<State>,
    pub keys: Keys,
    pub clock: Clock,
    /// `http://127.0.0.1:PORT`: the authority host and the Graph host at once.
    pub base_url: String,
    pub faults: Faults,
    pub recorder: Recorder,
    /// Sends the parts of a `$batch` to this simulator over HTTP ([`crate::graph::batch`]).
    pub batch_client: reqwest::Client,
    /// Made at start, never shown: `$batch` parts carry it in
    /// [`crate::graph::batch::PART_HEADER`], so the recorder can tell them from what a client
    /// sent, and a client cannot pass its own request off as a part.
    pub batch_secret: String,
}

impl Shared {
    pub fn new(
        state: State,
        keys: Keys,
        clock: Clock,
        base_url: String,
        batch_client: reqwest::Client,
    ) -> Shared {
        Shared {
            state: Mutex::new(state),
            keys,
            clock,
            base_url,
            faults: Faults::default(),
            recorder: Recorder::default(),
            batch_client,
            batch_secret: uuid::Uuid::new_v4().to_string(),
        }
    }

    /// The tenant state. A panic in a handler must not take the simulator down for the rest of
    /// a test run, so a poisoned lock is recovered.
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn graph_base(&self) -> String {
        format!("{}/v1.0", self.base_url)
    }

    /// `@odata.context` prefix.
    pub fn metadata(&self) -> String {
        format!("{}/v1.0/$metadata", self.base_url)
    }
}
