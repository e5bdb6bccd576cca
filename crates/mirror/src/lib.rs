//! The directory mirror (docs/directory-mirror.md): users, groups and directory roles of the
//! tenant, kept current with Microsoft Graph delta queries and stored in the store, so that
//! identification, the start-of-flow policy decision and the admin reports read the directory
//! without asking Graph.
//!
//! - [`Syncer`]: one instance at a time (a store lease) runs rounds: a full round first (paged,
//!   resumable: each page is stored with the link after it), then incremental rounds on an
//!   interval or when asked; Graph's resync answer, or a last full round older than the
//!   configured period, starts a full round again.
//! - [`Mirror`]: what every instance reads: the one user a typed account names, a user's
//!   transitive groups and roles (one recursive store query; cycles end, no depth bound), the
//!   sync state. It says when it may not be used (never completed, or lagging more than the
//!   bound): callers then read Graph live, as before the mirror.
//! - [`Nesting`]: the group graph in memory for reports over every user; [`UserPages`]: every
//!   user with its direct groups, the next page read while the caller works.
//!
//! The mirror may only ever *refuse* wrongly, never allow: every write is preceded by a live
//! membership check in the flows (latchkey-selfservice `act`).

mod closure;
mod convert;
mod error;
mod keys;
mod pages;
mod reader;
mod syncer;

pub use closure::Nesting;
pub use error::MirrorError;
pub use keys::{login_keys, user_keys};
pub use pages::UserPages;
pub use reader::{Freshness, Mirror, MirrorStatus, REGISTRATIONS_MAX_AGE};
pub use syncer::{REGISTRATIONS_EVERY, RoundReport, Syncer, SyncerSettings};
