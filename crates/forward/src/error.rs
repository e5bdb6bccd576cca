//! The forwarding error type. Messages name the output and what failed, never an event's
//! content or the bearer token.

/// What configuring or delivering to an output can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// The output's settings are wrong (refused at start).
    #[error("audit forwarding: {0}")]
    Config(String),
    /// The receiver could not be reached or the connection broke.
    #[error("{output}: {target}: {cause}")]
    Transport {
        output: &'static str,
        target: String,
        cause: String,
    },
    /// The receiver answered, but did not take the batch.
    #[error("{output}: {target} answered HTTP {status}")]
    Refused {
        output: &'static str,
        target: String,
        status: u16,
        /// `Retry-After`, when the receiver gave one.
        retry_after: Option<std::time::Duration>,
    },
    /// Reading the audit trail or the cursor failed.
    #[error(transparent)]
    Store(#[from] latchkey_store::StoreError),
}
