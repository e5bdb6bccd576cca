//! The syslog output: RFC 5424 messages over RELP (acknowledged, [`crate::relp`]) or TLS
//! (RFC 5425), in clear over RELP, TCP (RFC 6587) or UDP (RFC 5426) only to a relay on this
//! host (loopback), since audit events would otherwise cross the network readable.
//!
//! # When a batch counts as delivered
//! - **RELP** (`relp+tls://`, `relp://`): when the receiver acknowledged every message (`200
//!   OK` per message, after it took it into its queue). The one transport where "delivered"
//!   means the receiver has it, whatever stands between.
//! - **TLS and TCP** (`tls://`, `tcp://`): syslog has no acknowledgement; a write that
//!   succeeded only means the bytes reached our socket buffer. Each batch is one connection:
//!   write every message, close our side (TLS close_notify, then FIN), and wait for the receiver
//!   to close its side, which a syslog server does only after reading everything before our
//!   close. A connection that breaks first sends the whole batch again. This cannot tell a
//!   receiver that read the batch from one that closed without keeping it (a TLS proxy whose
//!   backend is down, a receiver that refuses the sender's certificate after reading): there,
//!   only RELP or the webhook keeps the promise that nothing is lost.
//! - **UDP** (`udp://`): a datagram sent counts as delivered, unless the host says nobody
//!   listens on the port (the batch then stays queued); for a local relay that forwards
//!   reliably.
//!
//! Messages repeated after a failure carry the same audit id in their structured data: the
//! SIEM deduplicates on it.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::timeout;

use crate::error::ForwardError;
use crate::rfc5424::{Header, frame, message};
use crate::tls::TlsMaterial;
use crate::{BoxFuture, Output};
use latchkey_store::AuditRecord;

const NAME: &str = "syslog";

/// How the syslog receiver is reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transport {
    /// `tls://host[:6514]`
    Tls,
    /// `tcp://host[:514]`, loopback only.
    Tcp,
    /// `udp://host[:514]`, loopback only.
    Udp,
    /// `relp+tls://host[:2514]`: RELP (acknowledged) over TLS.
    RelpTls,
    /// `relp://host[:2514]`: RELP in clear, loopback only.
    Relp,
}

/// The syslog output's settings.
#[derive(Clone, Debug)]
pub struct SyslogConfig {
    /// `relp+tls://siem.example.com:2514`, `tls://siem.example.com:6514`, or to this host
    /// `relp://`, `tcp://`, `udp://`.
    pub url: String,
    pub tls: TlsMaterial,
    pub header: Header,
    /// Connecting, the TLS handshake, and each read or write.
    pub timeout: Duration,
}

/// Delivers batches to one syslog receiver.
pub struct SyslogOutput {
    transport: Transport,
    host: String,
    port: u16,
    header: Header,
    timeout: Duration,
    tls: Option<tokio_rustls::TlsConnector>,
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl SyslogOutput {
    /// Checks the settings (scheme, host, the loopback rule, TLS material).
    pub fn new(config: &SyslogConfig) -> Result<Self, ForwardError> {
        let bad = |m: String| ForwardError::Config(format!("syslog url {:?}: {m}", config.url));
        let url = url::Url::parse(&config.url).map_err(|e| bad(e.to_string()))?;
        let (transport, default_port) = match url.scheme() {
            "tls" => (Transport::Tls, 6514),
            "tcp" => (Transport::Tcp, 514),
            "udp" => (Transport::Udp, 514),
            "relp+tls" => (Transport::RelpTls, 2514),
            "relp" => (Transport::Relp, 2514),
            other => {
                return Err(bad(format!(
                    "scheme {other:?}: use relp+tls:// or tls://, or to this host relp://, \
                     tcp:// or udp://"
                )));
            }
        };
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("no host".into()))?
            .to_string();
        if !url.path().trim_start_matches('/').is_empty() || url.query().is_some() {
            return Err(bad("only scheme://host:port".into()));
        }
        let encrypted = matches!(transport, Transport::Tls | Transport::RelpTls);
        if !encrypted && !is_loopback(&host) {
            return Err(bad(
                "tcp://, udp:// and relp:// send audit events unencrypted: only to a relay on this \
                 host (127.0.0.1, ::1, localhost); use tls:// or relp+tls:// for a remote receiver"
                    .into(),
            ));
        }
        if !crate::rfc5424::valid_sd_id(&config.header.sd_id) {
            return Err(bad(format!(
                "sd_id {:?}: NAME@NUMBER (an enterprise number), 1-32 printable ASCII characters \
                 without '=', ']', '\"' or space",
                config.header.sd_id
            )));
        }
        let tls = match transport {
            Transport::Tls | Transport::RelpTls => Some(tokio_rustls::TlsConnector::from(
                Arc::new(config.tls.client_config()?),
            )),
            _ => None,
        };
        Ok(Self {
            transport,
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port: url.port().unwrap_or(default_port),
            header: config.header.clone(),
            timeout: config.timeout,
            tls,
        })
    }

    fn target(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    fn fail(&self, cause: impl std::fmt::Display) -> ForwardError {
        ForwardError::Transport {
            output: NAME,
            target: self.target(),
            cause: cause.to_string(),
        }
    }

    async fn within<T, E: std::fmt::Display>(
        &self,
        what: &str,
        f: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, ForwardError> {
        match timeout(self.timeout, f).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.fail(format!("{what}: {e}"))),
            Err(_) => Err(self.fail(format!("{what}: no answer within {:?}", self.timeout))),
        }
    }

    async fn connect(&self) -> Result<TcpStream, ForwardError> {
        let tcp = self
            .within(
                "connect",
                TcpStream::connect((self.host.as_str(), self.port)),
            )
            .await?;
        // One write per batch, and no Nagle delay on the last segment.
        tcp.set_nodelay(true).map_err(|e| self.fail(e))?;
        Ok(tcp)
    }

    async fn handshake(
        &self,
        connector: &tokio_rustls::TlsConnector,
        tcp: TcpStream,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, ForwardError> {
        let name =
            rustls_pki_types::ServerName::try_from(self.host.clone()).map_err(|e| self.fail(e))?;
        self.within("TLS handshake", connector.connect(name, tcp))
            .await
    }

    async fn send_stream(&self, frames: &[u8]) -> Result<(), ForwardError> {
        let tcp = self.connect().await?;
        match &self.tls {
            Some(connector) => {
                let stream = self.handshake(connector, tcp).await?;
                self.write_and_close(stream, frames).await
            }
            None => self.write_and_close(tcp, frames).await,
        }
    }

    async fn send_relp(&self, messages: &[String]) -> Result<(), ForwardError> {
        let tcp = self.connect().await?;
        match &self.tls {
            Some(connector) => {
                let stream = self.handshake(connector, tcp).await?;
                self.relp_session(stream, messages).await
            }
            None => self.relp_session(tcp, messages).await,
        }
    }

    async fn relp_probe(
        &self,
        stream: impl AsyncRead + AsyncWrite + Unpin,
    ) -> Result<(), ForwardError> {
        let session = self
            .within("RELP open", async {
                crate::relp::Session::open(stream)
                    .await
                    .map_err(|e| e.to_string())
            })
            .await?;
        self.within("RELP close", async {
            session.close().await.map_err(|e| e.to_string())
        })
        .await
    }

    async fn relp_session(
        &self,
        stream: impl AsyncRead + AsyncWrite + Unpin,
        messages: &[String],
    ) -> Result<(), ForwardError> {
        let relp = |e: crate::relp::RelpError| self.fail(format!("RELP: {e}"));
        let mut session = self
            .within("RELP open", async {
                crate::relp::Session::open(stream)
                    .await
                    .map_err(|e| e.to_string())
            })
            .await?;
        session.syslog(messages).await.map_err(relp)?;
        // Every message is acknowledged: delivered, whatever the close does (a receiver that
        // never answers it gets a moment, not the batch's deadline).
        match timeout(RELP_CLOSE_WAIT, session.close()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::debug!(error = %e, "RELP close"),
            Err(_) => tracing::debug!("RELP close: no answer"),
        }
        Ok(())
    }

    /// Writes, closes our side, and waits until the receiver closed its side (see the module
    /// documentation: that is the only sign it read the batch).
    async fn write_and_close(
        &self,
        mut stream: impl AsyncRead + AsyncWrite + Unpin,
        frames: &[u8],
    ) -> Result<(), ForwardError> {
        self.within("write", stream.write_all(frames)).await?;
        self.within("close", stream.shutdown()).await?;
        // One deadline for the whole wait: a receiver that trickles bytes cannot hold the
        // batch (and the lease) forever.
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut buf = [0u8; 256];
        loop {
            match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
                Ok(Ok(0)) => return Ok(()),
                Ok(Ok(_)) => continue,
                // A receiver that closes without TLS close_notify has still read our close.
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                Ok(Err(e)) => return Err(self.fail(format!("waiting for the receiver: {e}"))),
                Err(_) => {
                    return Err(self.fail(format!(
                        "the receiver did not confirm the batch within {:?}",
                        self.timeout
                    )));
                }
            }
        }
    }

    /// UDP has no acknowledgement; the socket is connected so that a relay that is not
    /// listening is noticed (the host answers "port unreachable", which the next send or the
    /// short wait after the batch reports as refused): the batch then stays queued.
    async fn send_datagrams(&self, messages: &[String]) -> Result<(), ForwardError> {
        let addr: SocketAddr = self
            .within(
                "resolve",
                tokio::net::lookup_host((self.host.as_str(), self.port)),
            )
            .await?
            .next()
            .ok_or_else(|| self.fail("no address"))?;
        let local: SocketAddr = if addr.is_ipv4() {
            ([127, 0, 0, 1], 0).into()
        } else {
            (std::net::Ipv6Addr::LOCALHOST, 0).into()
        };
        let socket = UdpSocket::bind(local).await.map_err(|e| self.fail(e))?;
        socket.connect(addr).await.map_err(|e| self.fail(e))?;
        let refused = |e: std::io::Error| {
            if e.kind() == std::io::ErrorKind::ConnectionRefused {
                self.fail(format!("the relay is not listening: {e}"))
            } else {
                self.fail(format!("send: {e}"))
            }
        };
        for m in messages {
            match timeout(self.timeout, socket.send(m.as_bytes())).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(refused(e)),
                Err(_) => return Err(self.fail("send: no progress")),
            }
        }
        // On loopback the refusal of the last datagram arrives within microseconds.
        let mut buf = [0u8; 1];
        match timeout(UDP_REFUSAL_WAIT, socket.recv(&mut buf)).await {
            Ok(Err(e)) => Err(refused(e)),
            Ok(Ok(_)) | Err(_) => Ok(()),
        }
    }
}

/// How long an acknowledged RELP batch waits for the answer to `close`.
const RELP_CLOSE_WAIT: Duration = Duration::from_secs(2);

/// How long a UDP batch waits for the relay's host to say nobody listens.
const UDP_REFUSAL_WAIT: Duration = Duration::from_millis(50);

impl Output for SyslogOutput {
    fn name(&self) -> &'static str {
        NAME
    }

    fn probe<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<&'static str, ForwardError>> {
        Box::pin(async move {
            if self.transport == Transport::Udp {
                return Ok("UDP: nothing to confirm without sending");
            }
            let tcp = self.connect().await?;
            let relp = matches!(self.transport, Transport::Relp | Transport::RelpTls);
            match (&self.tls, relp) {
                (Some(connector), true) => {
                    let stream = self.handshake(connector, tcp).await?;
                    self.relp_probe(stream).await?;
                    Ok("TLS and a RELP session accepted")
                }
                (None, true) => {
                    self.relp_probe(tcp).await?;
                    Ok("a RELP session accepted")
                }
                (Some(connector), false) => {
                    let mut stream = self.handshake(connector, tcp).await?;
                    self.within("close", stream.shutdown()).await?;
                    Ok("TLS handshake (the receiver's certificate verified)")
                }
                (None, false) => Ok("connected"),
            }
        })
    }

    fn deliver<'a>(
        &'a self,
        batch: &'a [AuditRecord],
        source: &'a str,
    ) -> BoxFuture<'a, Result<(), ForwardError>> {
        Box::pin(async move {
            let messages: Vec<String> = batch
                .iter()
                .map(|r| message(&self.header, r, source))
                .collect();
            match self.transport {
                Transport::Udp => self.send_datagrams(&messages).await,
                Transport::Relp | Transport::RelpTls => self.send_relp(&messages).await,
                Transport::Tls | Transport::Tcp => {
                    let frames: Vec<u8> = messages.iter().flat_map(|m| frame(m)).collect();
                    self.send_stream(&frames).await
                }
            }
        })
    }
}
