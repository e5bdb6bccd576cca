//! Email over SMTP with lettre: STARTTLS, implicit TLS, or plain text to a loopback relay only,
//! over pooled connections of our own ([`crate::smtp_pool`]: `TCP_NODELAY`, reuse).

use std::fmt;
use std::time::Duration;

use latchkey_types::{EmailAddress, Secret};
use lettre::Message;
use lettre::message::{Mailbox, MultiPart, header};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, TlsParameters};
use lettre::transport::smtp::extension::ClientId;

use crate::error::{DeliveryError, NotifyError};
use crate::net::is_loopback_host;
use crate::queue::BoxFuture;
use crate::smtp_pool::{Connector, Pool, Protection};
use crate::templates::RenderedEmail;

/// How the SMTP connection is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Connect in clear, then STARTTLS; refuse to continue without it. Default port 587.
    StartTls,
    /// TLS from the first byte ("SMTPS"). Default port 465.
    ImplicitTls,
    /// No TLS at all. Only for a relay on this machine (loopback); refused otherwise. Port 25.
    Plain,
}

impl SmtpSecurity {
    fn default_port(self) -> u16 {
        match self {
            Self::StartTls => 587,
            Self::ImplicitTls => 465,
            Self::Plain => 25,
        }
    }
}

/// SMTP settings. `password` comes from a file or the environment ([`crate::secret_from_file`],
/// [`crate::secret_from_env`]), never from the repository.
#[derive(Clone)]
pub struct SmtpConfig {
    pub host: String,
    /// `None`: the security mode's standard port.
    pub port: Option<u16>,
    pub security: SmtpSecurity,
    pub username: Option<String>,
    pub password: Option<Secret<String>>,
    /// The sender, e.g. `Contoso password reset <no-reply@contoso.com>`.
    pub from: String,
    /// Extra trusted CA certificates (PEM) besides the system's, for a relay with a private CA.
    pub extra_ca_pem: Option<Vec<u8>>,
    /// For connecting (TCP, greeting, TLS and authentication together), and for each command.
    pub timeout: Duration,
    /// Connections to the relay at most, which is also how many messages are sent at once (the
    /// send queue runs at least as many deliveries in parallel). 1 to [`MAX_CONNECTIONS`].
    pub max_connections: usize,
    /// A connection unused this long is closed rather than reused (relays drop idle sessions
    /// after a few minutes; one that did is noticed and replaced anyway).
    pub idle_timeout: Duration,
}

/// The most [`SmtpConfig::max_connections`] may be: relays limit connections per client
/// (Postfix to 50 by default), and more sessions would not make one relay take mail faster.
pub const MAX_CONNECTIONS: usize = 64;

impl fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("from", &self.from)
            .field("extra_ca_pem", &self.extra_ca_pem.as_ref().map(|_| "..."))
            .field("timeout", &self.timeout)
            .field("max_connections", &self.max_connections)
            .field("idle_timeout", &self.idle_timeout)
            .finish()
    }
}

impl SmtpConfig {
    /// STARTTLS on 587 with a 30-second timeout and no authentication; up to 8 connections,
    /// closed after 30 seconds unused.
    pub fn new(host: impl Into<String>, from: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            port: None,
            security: SmtpSecurity::StartTls,
            username: None,
            password: None,
            from: from.into(),
            extra_ca_pem: None,
            timeout: Duration::from_secs(30),
            max_connections: 8,
            idle_timeout: Duration::from_secs(30),
        }
    }
}

/// Something that delivers a rendered email: SMTP here; the demo mode's outbox elsewhere.
pub trait EmailTransport: Send + Sync + 'static {
    fn send<'a>(
        &'a self,
        to: &'a EmailAddress,
        email: &'a RenderedEmail,
    ) -> BoxFuture<'a, Result<(), DeliveryError>>;

    /// [`send`](Self::send) for a message the send queue took at `queued`; the queue calls this.
    /// A transport that measures delivery latency (the flow benchmark's) counts from there.
    fn send_queued<'a>(
        &'a self,
        to: &'a EmailAddress,
        email: &'a RenderedEmail,
        _queued: tokio::time::Instant,
    ) -> BoxFuture<'a, Result<(), DeliveryError>> {
        self.send(to, email)
    }

    /// How many messages this transport sends at once at most (an SMTP mailer: its
    /// connections). The send queue runs at least that many deliveries in parallel, so none of
    /// them sits unused. `None`: no limit of its own.
    fn parallel_sends(&self) -> Option<usize> {
        None
    }
}

/// Sends email through one SMTP relay (pooled connections).
pub struct SmtpMailer {
    pool: Pool,
    from: Mailbox,
}

impl fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("from", &self.from.email.to_string())
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

impl SmtpMailer {
    /// Validates the settings and builds the transport (no connection yet).
    pub fn new(config: &SmtpConfig) -> Result<Self, NotifyError> {
        let cfg = |m: String| NotifyError::Config(m);
        if config.host.trim().is_empty() {
            return Err(cfg("smtp.host is empty".into()));
        }
        if config.security == SmtpSecurity::Plain && !is_loopback_host(&config.host) {
            return Err(cfg(format!(
                "smtp: plain (unencrypted) SMTP is allowed only to a loopback relay, not to {:?}; \
                 use starttls or tls",
                config.host
            )));
        }
        if config.username.is_some() != config.password.is_some() {
            return Err(cfg(
                "smtp: set both username and password, or neither".into()
            ));
        }
        if !(1..=MAX_CONNECTIONS).contains(&config.max_connections) {
            return Err(cfg(format!(
                "smtp.max_connections must be 1 to {MAX_CONNECTIONS}, not {}",
                config.max_connections
            )));
        }
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|_| cfg(format!("smtp.from is not a mailbox: {:?}", config.from)))?;

        let protection = match config.security {
            SmtpSecurity::Plain => Protection::None,
            SmtpSecurity::StartTls | SmtpSecurity::ImplicitTls => {
                let mut params = TlsParameters::builder(config.host.clone());
                if let Some(pem) = &config.extra_ca_pem {
                    let cert = Certificate::from_pem(pem)
                        .map_err(|e| cfg(format!("smtp: extra CA certificate: {e}")))?;
                    params = params.add_root_certificate(cert);
                }
                let params = params
                    .build_rustls()
                    .map_err(|e| cfg(format!("smtp: TLS settings: {e}")))?;
                if config.security == SmtpSecurity::StartTls {
                    Protection::StartTls(params)
                } else {
                    Protection::Implicit(params)
                }
            }
        };
        let credentials = match (&config.username, &config.password) {
            (Some(user), Some(password)) => {
                Some(Credentials::new(user.clone(), password.expose().clone()))
            }
            _ => None,
        };
        let connector = Connector {
            host: config.host.clone(),
            port: config.port.unwrap_or(config.security.default_port()),
            protection,
            // The machine's name, as lettre's transport said it.
            hello: ClientId::default(),
            credentials,
        };
        Ok(Self {
            pool: Pool::new(
                connector,
                config.max_connections,
                config.idle_timeout,
                config.timeout,
            ),
            from,
        })
    }

    async fn send_now(
        &self,
        to: &EmailAddress,
        email: &RenderedEmail,
    ) -> Result<(), DeliveryError> {
        let to_box: Mailbox = to
            .as_str()
            .parse()
            .map_err(|_| DeliveryError::permanent("recipient is not a valid mailbox"))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to_box)
            .subject(email.subject.clone())
            // RFC 3834: tells auto-responders not to answer.
            .header(AutoSubmitted)
            .multipart(MultiPart::alternative_plain_html(
                email.text.expose().clone(),
                email.html.expose().clone(),
            ))
            .map_err(|e| DeliveryError::permanent(format!("cannot build the message: {e}")))?;
        self.pool
            .send(message.envelope(), &message.formatted())
            .await
    }
}

impl EmailTransport for SmtpMailer {
    fn send<'a>(
        &'a self,
        to: &'a EmailAddress,
        email: &'a RenderedEmail,
    ) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(self.send_now(to, email))
    }

    fn parallel_sends(&self) -> Option<usize> {
        Some(self.pool.max())
    }
}

/// Maps lettre's error to a retry decision and a reason that never quotes the server's text
/// (which can echo the recipient address).
pub(crate) fn classify(e: lettre::transport::smtp::Error) -> DeliveryError {
    if let Some(code) = e.status() {
        if e.is_permanent() {
            return DeliveryError::permanent(format!("SMTP server refused the message ({code})"));
        }
        return DeliveryError::transient(format!("SMTP server deferred the message ({code})"));
    }
    if e.is_timeout() {
        DeliveryError::transient("SMTP timeout")
    } else if e.is_tls() || caused_by_tls(&e) {
        DeliveryError::transient("SMTP TLS failure (certificate or handshake)")
    } else if e.is_client() {
        DeliveryError::permanent("SMTP client error")
    } else {
        DeliveryError::transient("SMTP connection failed")
    }
}

/// A handshake failure (e.g. an untrusted certificate) reaches us as a connection error
/// wrapping rustls' error in an `io::Error`; `io::Error::source` skips the wrapped error itself,
/// hence the explicit `get_ref`.
fn caused_by_tls(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(e);
    while let Some(err) = current {
        if err.is::<rustls::Error>() {
            return true;
        }
        if err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .is_some_and(|inner| inner.is::<rustls::Error>())
        {
            return true;
        }
        current = err.source();
    }
    false
}

/// `Auto-Submitted: auto-generated`.
#[derive(Clone)]
struct AutoSubmitted;

impl header::Header for AutoSubmitted {
    fn name() -> header::HeaderName {
        header::HeaderName::new_from_ascii_str("Auto-Submitted")
    }
    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self)
    }
    fn display(&self) -> header::HeaderValue {
        header::HeaderValue::new(Self::name(), "auto-generated".to_string())
    }
}
