//! The mirror's one error type.

use latchkey_graph::GraphError;
use latchkey_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error("directory: {0}")]
    Graph(#[from] GraphError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// A stored user profile the mirror cannot read back (written by another version).
    #[error("mirror: a stored user profile does not parse: {0}")]
    Profile(String),
    /// Graph kept asking for a resync while a full round started over and over.
    #[error("mirror: Graph asked for a resync {0} times in one round")]
    ResyncLoop(u32),
    /// A collection without delta queries was asked for by delta.
    #[error("mirror: {0} is not read by delta query")]
    NotDelta(&'static str),
    /// A background read of the mirror stopped (its task panicked or was cancelled).
    #[error("mirror: a background read stopped")]
    Task,
    /// Another instance took the sync lease over while this one was writing.
    #[error("mirror: the sync lease was lost")]
    LeaseLost,
}
