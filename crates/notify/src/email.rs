//! Email over SMTP with lettre: STARTTLS, implicit TLS, or plain text to a loopback relay only.

use std::fmt;
use std::time::Duration;

use latchkey_types::{EmailAddress, Secret};
use lettre::message::{Mailbox, MultiPart, header};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::error::{DeliveryError, NotifyError};
use crate::net::is_loopback_host;
use crate::queue::BoxFuture;
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
    /// Per SMTP command.
    pub timeout: Duration,
}

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
            .finish()
    }
}

impl SmtpConfig {
    /// STARTTLS on 587 with a 30-second timeout and no authentication.
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
}

/// Sends email through one SMTP relay (pooled connections).
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("from", &self.from.email.to_string())
            .finish_non_exhaustive()
    }
}

impl SmtpMailer {
    /// Validates the settings and builds the transport (no connection yet).
    ///
    /// Must be called inside a tokio runtime, and the mailer dropped inside one: lettre's
    /// connection pool spawns its cleanup task there (outside, it would panic on drop).
    pub fn new(config: &SmtpConfig) -> Result<Self, NotifyError> {
        let cfg = |m: String| NotifyError::Config(m);
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(cfg(
                "smtp: the mailer must be created inside a tokio runtime".into(),
            ));
        }
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
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|_| cfg(format!("smtp.from is not a mailbox: {:?}", config.from)))?;

        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(config.host.as_str())
                .port(config.port.unwrap_or(config.security.default_port()))
                .timeout(Some(config.timeout));
        let tls = match config.security {
            SmtpSecurity::Plain => Tls::None,
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
                    Tls::Required(params)
                } else {
                    Tls::Wrapper(params)
                }
            }
        };
        builder = builder.tls(tls);
        if let (Some(user), Some(password)) = (&config.username, &config.password) {
            builder =
                builder.credentials(Credentials::new(user.clone(), password.expose().clone()));
        }
        Ok(Self {
            transport: builder.build(),
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
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(classify)
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
}

/// Maps lettre's error to a retry decision and a reason that never quotes the server's text
/// (which can echo the recipient address).
fn classify(e: lettre::transport::smtp::Error) -> DeliveryError {
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
