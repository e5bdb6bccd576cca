//! SMTP connections for [`crate::SmtpMailer`]: opened by us and kept for reuse.
//!
//! We open the TCP connection ourselves (lettre builds its client on any tokio stream) for one
//! reason: `TCP_NODELAY`. lettre writes a message's body and its end marker (`\r\n.\r\n`) in two
//! writes and sets no socket option; with Nagle's algorithm on, the 5-byte marker waits until
//! the relay acknowledges the body, and a relay that delays its ACKs (Linux: 40 ms) stalls every
//! message for that long. Measured before this module: ~45 ms per code mail even at one client,
//! and a ceiling of ~175 mails/s with 8 connections.
//!
//! The pool: at most `max` sends at once, each on a connection of its own; a finished send
//! parks its connection (most recently used first), the next send takes it without a probe
//! (lettre's own pool sent a NOOP first: one more round trip per message). A connection the
//! relay closed while it was parked shows when its `MAIL FROM` fails; nothing of the message
//! has been sent then, so the send is tried once more on a fresh connection: it cannot deliver a
//! message twice. Any other failure drops the connection. Connections parked longer than the
//! idle timeout are closed instead of used (relays close idle sessions after a few minutes).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
#[allow(deprecated)] // lettre's TLS stream, see `TlsStream`
use lettre::transport::smtp::client::AsyncNetworkStream;
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::error::DeliveryError;

/// How a connection is made secure.
#[derive(Clone)]
pub(crate) enum Protection {
    /// Loopback relays only ([`crate::SmtpSecurity::Plain`]).
    None,
    /// `STARTTLS` right after the greeting; refused to continue without it.
    StartTls(TlsParameters),
    /// TLS from the first byte.
    Implicit(TlsParameters),
}

/// Opens authenticated, protected SMTP sessions to one relay.
pub(crate) struct Connector {
    pub host: String,
    pub port: u16,
    pub protection: Protection,
    pub hello: ClientId,
    pub credentials: Option<Credentials>,
}

impl Connector {
    async fn connect(&self) -> Result<AsyncSmtpConnection, DeliveryError> {
        let tcp = open_tcp(&self.host, self.port)
            .await
            .map_err(|_| DeliveryError::transient("SMTP connection failed"))?;
        let stream: Box<dyn AsyncTokioStream> = match &self.protection {
            Protection::Implicit(params) => {
                #[allow(deprecated)]
                let mut tls = AsyncNetworkStream::use_existing_tokio1(Box::new(tcp));
                tls.upgrade_tls(params.clone())
                    .await
                    .map_err(crate::email::classify)?;
                Box::new(TlsStream(tls))
            }
            Protection::None | Protection::StartTls(_) => Box::new(tcp),
        };
        let mut conn = AsyncSmtpConnection::connect_with_transport(stream, &self.hello)
            .await
            .map_err(crate::email::classify)?;
        if let Protection::StartTls(params) = &self.protection {
            conn.starttls(params.clone(), &self.hello)
                .await
                .map_err(crate::email::classify)?;
        }
        if let Some(credentials) = &self.credentials {
            conn.auth(DEFAULT_MECHANISMS, credentials)
                .await
                .map_err(crate::email::classify)?;
        }
        Ok(conn)
    }
}

/// Connects to the first address of `host` that answers, with `TCP_NODELAY` set (see the module
/// documentation for why).
pub(crate) async fn open_tcp(host: &str, port: u16) -> io::Result<TcpStream> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let mut last = None;
    for addr in tokio::net::lookup_host((host, port)).await? {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                stream.set_nodelay(true)?;
                return Ok(stream);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address")))
}

/// The pooled connections to one relay.
pub(crate) struct Pool {
    connector: Connector,
    /// One permit per send in progress, so at most `max` connections are open (in use and
    /// parked together: a send parks only the connection it used).
    sends: Semaphore,
    max: usize,
    /// Parked connections, the most recently used last.
    idle: Mutex<Vec<Parked>>,
    idle_timeout: Duration,
    /// For connecting (greeting, TLS and authentication together) and for each command.
    timeout: Duration,
}

struct Parked {
    conn: AsyncSmtpConnection,
    since: Instant,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("host", &self.connector.host)
            .field("port", &self.connector.port)
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

/// A transaction that failed, and whether a fresh connection may be tried.
struct Failed {
    error: DeliveryError,
    /// The relay refused or dropped the session at `MAIL FROM`: nothing of the message went out.
    at_mail_from: bool,
}

impl Pool {
    pub fn new(
        connector: Connector,
        max: usize,
        idle_timeout: Duration,
        timeout: Duration,
    ) -> Self {
        Self {
            connector,
            sends: Semaphore::new(max),
            max,
            idle: Mutex::new(Vec::with_capacity(max)),
            idle_timeout,
            timeout,
        }
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// Sends one message; returns once the relay accepted it (the reply after `DATA`).
    pub async fn send(&self, envelope: &Envelope, body: &[u8]) -> Result<(), DeliveryError> {
        // The semaphore is never closed; a closed one would only mean "no send any more".
        let _permit = self
            .sends
            .acquire()
            .await
            .map_err(|_| DeliveryError::transient("the SMTP mailer is closed"))?;
        let parked = self.take_parked();
        let reused = parked.is_some();
        let mut conn = match parked {
            Some(conn) => conn,
            None => self.connect().await?,
        };
        match transaction(&mut conn, envelope, body, self.timeout).await {
            Ok(()) => {
                self.park(conn);
                return Ok(());
            }
            // A parked connection the relay has closed meanwhile (idle timeout, restart).
            Err(f) if reused && f.at_mail_from => drop(conn),
            Err(f) => return Err(f.error),
        }
        let mut conn = self.connect().await?;
        transaction(&mut conn, envelope, body, self.timeout)
            .await
            .map_err(|f| f.error)?;
        self.park(conn);
        Ok(())
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, DeliveryError> {
        tokio::time::timeout(self.timeout, self.connector.connect())
            .await
            .map_err(|_| DeliveryError::transient("SMTP timeout"))?
    }

    /// The most recently parked connection, unless it has been idle too long (then every parked
    /// one has, and all are closed).
    fn take_parked(&self) -> Option<AsyncSmtpConnection> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let parked = idle.pop()?;
        if parked.since.elapsed() < self.idle_timeout {
            return Some(parked.conn);
        }
        // Dropped without QUIT: closing the socket ends the session just as well, at no wait.
        idle.clear();
        None
    }

    fn park(&self, conn: AsyncSmtpConnection) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        // The least recently used ones age out here when load drops.
        let timeout = self.idle_timeout;
        idle.retain(|p| p.since.elapsed() < timeout);
        idle.push(Parked {
            conn,
            since: Instant::now(),
        });
    }
}

/// One message on an open session: `MAIL FROM`, `RCPT TO` for each recipient, `DATA`, the
/// message. Each step has `timeout`.
async fn transaction(
    conn: &mut AsyncSmtpConnection,
    envelope: &Envelope,
    body: &[u8],
    timeout: Duration,
) -> Result<(), Failed> {
    let later = |error| Failed {
        error,
        at_mail_from: false,
    };
    // What lettre's own `send` does: SMTPUTF8 for non-ASCII addresses, 8BITMIME for a non-ASCII
    // body, refused when the relay lacks them.
    let mut params = Vec::new();
    let info = conn.server_info();
    let non_ascii = envelope
        .from()
        .into_iter()
        .chain(envelope.to())
        .any(|a| !AsRef::<str>::as_ref(a).is_ascii());
    if non_ascii {
        if !info.supports_feature(Extension::SmtpUtfEight) {
            return Err(later(DeliveryError::permanent(
                "the SMTP server does not take non-ASCII addresses (no SMTPUTF8)",
            )));
        }
        params.push(MailParameter::SmtpUtfEight);
    }
    if !body.is_ascii() {
        if !info.supports_feature(Extension::EightBitMime) {
            return Err(later(DeliveryError::permanent(
                "the SMTP server does not take 8-bit messages (no 8BITMIME)",
            )));
        }
        params.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    step(
        timeout,
        conn.command(Mail::new(envelope.from().cloned(), params)),
    )
    .await
    .map_err(|error| Failed {
        error,
        at_mail_from: true,
    })?;
    for to in envelope.to() {
        step(timeout, conn.command(Rcpt::new(to.clone(), Vec::new())))
            .await
            .map_err(later)?;
    }
    step(timeout, conn.command(Data)).await.map_err(later)?;
    step(timeout, conn.message(body)).await.map_err(later)?;
    Ok(())
}

async fn step<T>(
    timeout: Duration,
    f: impl Future<Output = Result<T, lettre::transport::smtp::Error>>,
) -> Result<T, DeliveryError> {
    match tokio::time::timeout(timeout, f).await {
        Ok(r) => r.map_err(crate::email::classify),
        Err(_) => Err(DeliveryError::transient("SMTP timeout")),
    }
}

/// lettre's TLS stream (over our TCP stream) as a stream lettre's client can run on. For
/// implicit TLS the handshake comes before the greeting, and lettre only starts a client on a
/// stream that is ready for it; with this adapter the TLS settings (roots, extra CA, versions)
/// stay lettre's, the same as for STARTTLS.
#[allow(deprecated)]
#[derive(Debug)]
struct TlsStream(AsyncNetworkStream);

impl AsyncRead for TlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = ready!(futures_io::AsyncRead::poll_read(
            Pin::new(&mut self.0),
            cx,
            buf.initialize_unfilled()
        ))?;
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for TlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        futures_io::AsyncWrite::poll_write(Pin::new(&mut self.0), cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        futures_io::AsyncWrite::poll_flush(Pin::new(&mut self.0), cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        futures_io::AsyncWrite::poll_close(Pin::new(&mut self.0), cx)
    }
}

impl AsyncTokioStream for TlsStream {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.peer_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn connections_are_opened_without_nagle() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        for host in ["127.0.0.1", "localhost"] {
            let stream = open_tcp(host, port).await.unwrap();
            assert!(stream.nodelay().unwrap(), "{host}");
        }
    }

    #[tokio::test]
    async fn no_listener_is_an_error() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        assert!(open_tcp("127.0.0.1", port).await.is_err());
    }
}
