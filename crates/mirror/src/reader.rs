//! What every instance reads of the mirror, and whether it may.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use latchkey_graph::{DirectoryRoleRef, GroupRef, Memberships, User, accounts_in_domain};
use latchkey_store::{MirrorCollection, MirrorCounts, MirrorSyncState, MirrorUser, Store};
use latchkey_types::{ObjectId, SignInName};
use latchkey_verify::Clock;
use time::OffsetDateTime;

use crate::closure::transitive;
use crate::error::MirrorError;
use crate::keys::login_keys;

/// Most namesakes of an on-premises account name read (the live lookup reads one page of 999).
const MAX_NAMESAKES: u32 = 999;
/// The oldest registration report the portal believes (read every hour; a day of failures
/// and it is no longer used).
pub const REGISTRATIONS_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// How long a freshness answer is reused (one store read per second, not one per flow).
const FRESHNESS_TTL: Duration = Duration::from_secs(1);

/// Whether the mirror may answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Some collection has not completed its first full round.
    NotSynced,
    /// Every collection is synced, the oldest last round at `as_of`, longer ago than the bound.
    Lagging { as_of: OffsetDateTime },
    /// Every collection's last round completed within the bound; the oldest at `as_of`.
    Current { as_of: OffsetDateTime },
}

impl Freshness {
    pub fn usable(self) -> bool {
        matches!(self, Freshness::Current { .. })
    }

    /// How far behind the directory the mirror may be, at `now` (`None` before the first sync).
    pub fn lag(self, now: OffsetDateTime) -> Option<Duration> {
        match self {
            Freshness::NotSynced => None,
            Freshness::Lagging { as_of } | Freshness::Current { as_of } => {
                Some((now - as_of).try_into().unwrap_or(Duration::ZERO))
            }
        }
    }
}

/// The mirror's state for the admin console and the metrics.
#[derive(Debug, Clone)]
pub struct MirrorStatus {
    pub freshness: Freshness,
    pub collections: Vec<MirrorSyncState>,
    pub counts: MirrorCounts,
}

/// The mirror, read side.
pub struct Mirror {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    max_lag: Duration,
    cached: Mutex<Option<Cached>>,
}

/// One read of the sync state, reused for [`FRESHNESS_TTL`].
#[derive(Clone, Copy)]
struct Cached {
    read_at: OffsetDateTime,
    freshness: Freshness,
    /// When the registration report was last read whole.
    registrations_at: Option<OffsetDateTime>,
}

impl Mirror {
    /// `max_lag`: the mirror is used only while every collection's last round completed within
    /// it.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, max_lag: Duration) -> Mirror {
        Mirror {
            store,
            clock,
            max_lag,
            cached: Mutex::new(None),
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Whether the mirror may answer now (a fresh store read at most once a second).
    pub async fn freshness(&self) -> Result<Freshness, MirrorError> {
        Ok(self.state().await?.freshness)
    }

    /// The sync state as the readers need it: a store read at most once a second.
    async fn state(&self) -> Result<Cached, MirrorError> {
        let now = self.clock.now();
        if let Some(c) = *self.cached.lock().unwrap_or_else(PoisonError::into_inner)
            && now >= c.read_at
            && now - c.read_at < FRESHNESS_TTL
        {
            return Ok(c);
        }
        let state = self.store.mirror_sync_state().await?;
        let c = Cached {
            read_at: now,
            freshness: freshness_of(&state, now, self.max_lag),
            registrations_at: state
                .iter()
                .find(|s| s.collection == MirrorCollection::RegistrationDetails)
                .and_then(|s| s.last_full_round_at),
        };
        *self.cached.lock().unwrap_or_else(PoisonError::into_inner) = Some(c);
        Ok(c)
    }

    /// Forgets the cached freshness (after a round this instance ran).
    pub fn touch(&self) {
        *self.cached.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    pub async fn status(&self) -> Result<MirrorStatus, MirrorError> {
        let collections = self.store.mirror_sync_state().await?;
        let freshness = freshness_of(&collections, self.clock.now(), self.max_lag);
        Ok(MirrorStatus {
            freshness,
            collections,
            counts: self.store.mirror_counts().await?,
        })
    }

    /// The one user `login` names, as the live lookup would find them; `None` when none or
    /// several match.
    pub async fn find_user(&self, login: &SignInName) -> Result<Option<User>, MirrorError> {
        let keys = login_keys(login);
        if let Some(address) = &keys.address {
            let found = self.store.mirror_find_users(address, 2).await?;
            match found.len() {
                0 => {}
                1 => return found.first().map(profile).transpose(),
                _ => return Ok(None),
            }
        }
        let Some((domain, key)) = &keys.account else {
            return Ok(None);
        };
        let namesakes = self.store.mirror_find_users(key, MAX_NAMESAKES).await?;
        let parsed = namesakes
            .iter()
            .map(profile)
            .collect::<Result<Vec<_>, _>>()?;
        let mut users = accounts_in_domain(domain.as_deref(), parsed);
        users.dedup_by_key(|u| u.id);
        Ok(match users.len() {
            1 => users.pop(),
            _ => None,
        })
    }

    /// The method names Microsoft's registration report lists for the user (`mobilePhone`,
    /// `email`, ...), when the mirror read that report within [`REGISTRATIONS_MAX_AGE`]; `None`
    /// when it cannot say (not read, too old, or the user is not in it).
    pub async fn registered_methods(
        &self,
        id: &ObjectId,
    ) -> Result<Option<Vec<String>>, MirrorError> {
        if !self.registrations_recent().await? {
            return Ok(None);
        }
        Ok(self.store.mirror_registration(id).await?)
    }

    /// Every user the mirrored registration report lists with a method (reports over the
    /// tenant), when it is recent ([`REGISTRATIONS_MAX_AGE`]); `None` otherwise.
    pub async fn registrations(&self) -> Result<Option<Vec<(ObjectId, Vec<String>)>>, MirrorError> {
        if !self.registrations_recent().await? {
            return Ok(None);
        }
        Ok(Some(self.store.mirror_registrations().await?))
    }

    async fn registrations_recent(&self) -> Result<bool, MirrorError> {
        let now = self.clock.now();
        Ok(self
            .state()
            .await?
            .registrations_at
            .is_some_and(|at| now - at <= REGISTRATIONS_MAX_AGE))
    }

    pub async fn user(&self, id: &ObjectId) -> Result<Option<User>, MirrorError> {
        self.store
            .mirror_user(id)
            .await?
            .as_ref()
            .map(profile)
            .transpose()
    }

    /// The user's transitive groups and directory roles (ids only, as policies need them).
    pub async fn memberships(&self, id: &ObjectId) -> Result<Memberships, MirrorError> {
        let (groups, roles) = transitive(self.store.as_ref(), *id).await?;
        Ok(Memberships {
            groups: sorted(groups)
                .into_iter()
                .map(|id| GroupRef {
                    id,
                    display_name: None,
                })
                .collect(),
            roles: sorted(roles)
                .into_iter()
                .map(|id| DirectoryRoleRef {
                    id,
                    display_name: None,
                    role_template_id: None,
                })
                .collect(),
            other: Vec::new(),
        })
    }
}

fn sorted(set: HashSet<ObjectId>) -> Vec<ObjectId> {
    let mut v: Vec<ObjectId> = set.into_iter().collect();
    v.sort();
    v
}

fn profile(u: &MirrorUser) -> Result<User, MirrorError> {
    serde_json::from_str(&u.profile).map_err(|e| MirrorError::Profile(e.to_string()))
}

/// Usable when every collection completed a full round and its last round is within `max_lag`.
pub(crate) fn freshness_of(
    state: &[MirrorSyncState],
    now: OffsetDateTime,
    max_lag: Duration,
) -> Freshness {
    let mut oldest: Option<OffsetDateTime> = None;
    for c in MirrorCollection::DELTA {
        let Some(s) = state.iter().find(|s| s.collection == c) else {
            return Freshness::NotSynced;
        };
        let (Some(_), Some(last)) = (s.last_full_round_at, s.last_round_at) else {
            return Freshness::NotSynced;
        };
        oldest = Some(oldest.map_or(last, |o| o.min(last)));
    }
    let Some(as_of) = oldest else {
        return Freshness::NotSynced;
    };
    if now - as_of <= max_lag {
        Freshness::Current { as_of }
    } else {
        Freshness::Lagging { as_of }
    }
}
