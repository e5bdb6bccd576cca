//! Errors of this crate. None carries a message body, a code, a password or a full address.

/// Configuration, template and enqueue errors (caller-facing, synchronous).
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// A setting is wrong; the message names it and the fix.
    #[error("notification settings: {0}")]
    Config(String),
    /// A template failed to render (a bug in a template or in the context built for it).
    #[error("template {name}: {message}")]
    Template { name: String, message: String },
    /// The notification's recipient cannot receive on the configured channels (e.g. an SMS with
    /// no SMS provider configured).
    #[error("no {0} channel is configured")]
    ChannelUnavailable(&'static str),
    /// The send queue is full; the notification was not queued. Callers audit and move on: the
    /// HTTP response must not depend on it.
    #[error("the send queue is full")]
    QueueFull,
    /// The notifier is shutting down or stopped.
    #[error("the notifier is stopped")]
    Stopped,
}

/// Why one delivery attempt failed. `reason` is safe to log and audit: it never contains the
/// message, the code, credentials or a full recipient address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct DeliveryError {
    /// Worth trying again later (network trouble, timeouts, 4xx SMTP replies, HTTP 429/5xx).
    pub retryable: bool,
    pub reason: String,
}

impl DeliveryError {
    pub fn transient(reason: impl Into<String>) -> Self {
        Self {
            retryable: true,
            reason: reason.into(),
        }
    }
    pub fn permanent(reason: impl Into<String>) -> Self {
        Self {
            retryable: false,
            reason: reason.into(),
        }
    }
}
