//! The flow benchmark's mail mode (issue 14, "Mail at production speed").
//!
//! With `LATCHKEY_BENCH_SMTP=HOST:PORT` (a relay, e.g. `tests/mta/mta.sh up`: Postfix on
//! loopback) and `LATCHKEY_BENCH_SINK=127.0.0.1:PORT` (where that relay delivers), the portal's
//! emails leave through the real SMTP client (plain SMTP, loopback only) to the relay, which
//! queues each one on disk and relays it to a small SMTP server in this process ([`serve_sink`]);
//! each flow reads its code from what arrives there. `eval "$(tests/mta/mta.sh env)"` sets both.
//!
//! `LATCHKEY_BENCH_SMTP_CLIENT=lettre` sends through lettre's own pooled transport instead,
//! exactly as `SmtpMailer` did before it opened its own connections (no `TCP_NODELAY`, a NOOP
//! before each reuse, the queue's default 8 deliveries at once): the transport's "before". The
//! send queue is today's either way (codes first: with a slow transport the notices fall behind,
//! which the mails/flow column shows). `LATCHKEY_BENCH_SMTP_CONNECTIONS=N` sets
//! `[smtp] max_connections` (default 8).
//!
//! Measured per level: code-mail latency from the moment the send queue took the message to
//! the relay's 250 after DATA (through [`EmailTransport::send_queued`]), and mails accepted by
//! the relay per second.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use latchkey_notify::{
    BoxFuture, DeliveryError, EmailTransport, RenderedEmail, SmtpConfig, SmtpMailer, SmtpSecurity,
};
use latchkey_types::EmailAddress;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Which SMTP client sends.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// `latchkey_notify::SmtpMailer`: its own pool, `TCP_NODELAY`.
    Latchkey,
    /// lettre 0.11's `AsyncSmtpTransport` with its pool, as `SmtpMailer` used it before.
    LettreStock,
}

/// The mail mode's settings, from the environment.
pub struct Mail {
    pub relay: String,
    pub sink: SocketAddr,
    pub client: Client,
}

impl Mail {
    /// `None` without `LATCHKEY_BENCH_SMTP` (then emails go to an in-memory inbox).
    pub fn from_env() -> Option<Mail> {
        let relay = std::env::var("LATCHKEY_BENCH_SMTP").ok()?;
        let sink = std::env::var("LATCHKEY_BENCH_SINK")
            .expect("LATCHKEY_BENCH_SINK: where the relay delivers (tests/mta/mta.sh env)")
            .parse()
            .expect("LATCHKEY_BENCH_SINK is ADDRESS:PORT");
        let client = match std::env::var("LATCHKEY_BENCH_SMTP_CLIENT").as_deref() {
            Ok("lettre") => Client::LettreStock,
            Ok("latchkey") | Err(_) => Client::Latchkey,
            Ok(other) => panic!("LATCHKEY_BENCH_SMTP_CLIENT={other:?}: latchkey or lettre"),
        };
        Some(Mail {
            relay,
            sink,
            client,
        })
    }

    pub fn describe(&self) -> String {
        let client = match self.client {
            Client::Latchkey => "latchkey-notify's SmtpMailer (own pool, TCP_NODELAY)",
            Client::LettreStock => "lettre's stock pooled transport (the client before issue 14)",
        };
        format!(
            "emails through {client} to the relay at {}, which delivers to this process at {}",
            self.relay, self.sink
        )
    }

    /// The transport the portal sends through, wrapped to measure.
    pub fn transport(&self, stats: Arc<MailStats>) -> Arc<dyn EmailTransport> {
        let (host, port) = self.relay.rsplit_once(':').expect("relay is HOST:PORT");
        let port: u16 = port.parse().expect("relay port");
        let from = "Latchkey demo <no-reply@latchkey.test>";
        let inner: Arc<dyn EmailTransport> = match self.client {
            Client::Latchkey => {
                let mut c = SmtpConfig::new(host, from);
                c.port = Some(port);
                c.security = SmtpSecurity::Plain;
                if let Some(n) = std::env::var("LATCHKEY_BENCH_SMTP_CONNECTIONS")
                    .ok()
                    .and_then(|n| n.parse().ok())
                {
                    c.max_connections = n;
                }
                Arc::new(SmtpMailer::new(&c).expect("mailer"))
            }
            Client::LettreStock => Arc::new(LettreStock::new(host, port, from)),
        };
        Arc::new(Timed { inner, stats })
    }

    /// Starts the sink the relay delivers to; `deliver(recipient, code)` for each code mail.
    pub async fn start_sink(&self, deliver: Deliver) -> Arc<AtomicUsize> {
        let listener = TcpListener::bind(self.sink)
            .await
            .unwrap_or_else(|e| panic!("the sink cannot listen on {}: {e}", self.sink));
        let received = Arc::new(AtomicUsize::new(0));
        tokio::spawn(serve_sink(listener, deliver, Arc::clone(&received)));
        received
    }
}

/// What the sink does with each code mail: (recipient, code).
pub type Deliver = Arc<dyn Fn(String, String) + Send + Sync>;

/// Figures of one level, collected by [`Timed`].
#[derive(Default)]
pub struct MailStats {
    /// Code mails: (from the queue taking them, from the send starting) to the relay's 250.
    code: Mutex<Vec<(Duration, Duration)>>,
    /// Every mail the relay accepted.
    accepted: AtomicUsize,
    failed: AtomicUsize,
}

/// One level's mail figures.
pub struct MailLevel {
    /// Code mails, from the queue taking them to the relay's 250, sorted.
    pub latency: Vec<Duration>,
    /// Of that, the send itself (a connection, then the SMTP exchange), sorted.
    pub smtp: Vec<Duration>,
    pub accepted: usize,
    pub failed: usize,
}

impl MailStats {
    /// The figures since the last call.
    pub fn take(&self) -> MailLevel {
        let code = std::mem::take(&mut *self.code.lock().unwrap());
        let (mut latency, mut smtp): (Vec<_>, Vec<_>) = code.into_iter().unzip();
        latency.sort();
        smtp.sort();
        MailLevel {
            latency,
            smtp,
            accepted: self.accepted.swap(0, Ordering::Relaxed),
            failed: self.failed.swap(0, Ordering::Relaxed),
        }
    }
}

/// Measures each delivery of the transport it wraps.
struct Timed {
    inner: Arc<dyn EmailTransport>,
    stats: Arc<MailStats>,
}

impl EmailTransport for Timed {
    fn send<'a>(
        &'a self,
        to: &'a EmailAddress,
        email: &'a RenderedEmail,
    ) -> BoxFuture<'a, Result<(), DeliveryError>> {
        self.inner.send(to, email)
    }

    fn send_queued<'a>(
        &'a self,
        to: &'a EmailAddress,
        email: &'a RenderedEmail,
        queued: tokio::time::Instant,
    ) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            let start = tokio::time::Instant::now();
            let sent = self.inner.send(to, email).await;
            let (took, smtp) = (queued.elapsed(), start.elapsed());
            match &sent {
                Ok(()) => {
                    self.stats.accepted.fetch_add(1, Ordering::Relaxed);
                    if email.text.expose().contains("code is:") {
                        self.stats.code.lock().unwrap().push((took, smtp));
                    }
                }
                Err(_) => {
                    self.stats.failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            sent
        })
    }

    fn parallel_sends(&self) -> Option<usize> {
        self.inner.parallel_sends()
    }
}

/// lettre's pooled transport, built as `SmtpMailer::new` built it for plain SMTP before it
/// opened its own connections.
struct LettreStock {
    transport: lettre::AsyncSmtpTransport<lettre::Tokio1Executor>,
    from: lettre::message::Mailbox,
}

impl LettreStock {
    fn new(host: &str, port: u16, from: &str) -> Self {
        let transport =
            lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::builder_dangerous(host)
                .port(port)
                .timeout(Some(Duration::from_secs(30)))
                .build();
        Self {
            transport,
            from: from.parse().expect("mailbox"),
        }
    }
}

impl EmailTransport for LettreStock {
    fn send<'a>(
        &'a self,
        to: &'a EmailAddress,
        email: &'a RenderedEmail,
    ) -> BoxFuture<'a, Result<(), DeliveryError>> {
        use lettre::AsyncTransport;
        Box::pin(async move {
            let message = lettre::Message::builder()
                .from(self.from.clone())
                .to(to.as_str().parse().expect("recipient"))
                .subject(email.subject.clone())
                .multipart(lettre::message::MultiPart::alternative_plain_html(
                    email.text.expose().clone(),
                    email.html.expose().clone(),
                ))
                .expect("message");
            self.transport
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| DeliveryError::transient(format!("lettre: {e}")))
        })
    }
}

/// A minimal SMTP server: takes every message, hands each code to `deliver` by recipient.
async fn serve_sink(listener: TcpListener, deliver: Deliver, received: Arc<AtomicUsize>) {
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            return;
        };
        let _ = socket.set_nodelay(true);
        let (deliver, received) = (Arc::clone(&deliver), Arc::clone(&received));
        tokio::spawn(async move {
            let _ = session(socket, deliver, received).await;
        });
    }
}

async fn session(
    socket: TcpStream,
    deliver: Deliver,
    received: Arc<AtomicUsize>,
) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut read = BufReader::new(read);
    write.write_all(b"220 sink.latchkey.test ESMTP\r\n").await?;
    let (mut line, mut recipients) = (String::new(), Vec::new());
    loop {
        line.clear();
        if read.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-sink.latchkey.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n",
            "MAIL" | "RSET" => {
                recipients.clear();
                b"250 2.1.0 OK\r\n"
            }
            "RCPT" => {
                let to = line.split('<').nth(1).and_then(|r| r.split('>').next());
                recipients.push(to.unwrap_or_default().to_ascii_lowercase());
                b"250 2.1.5 OK\r\n"
            }
            "DATA" => {
                write.write_all(b"354 go on\r\n").await?;
                let mut body = String::new();
                loop {
                    line.clear();
                    if read.read_line(&mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" || line == ".\n" {
                        break;
                    }
                    body.push_str(&line);
                }
                received.fetch_add(1, Ordering::Relaxed);
                if let Some(code) = code_in(&body) {
                    for to in recipients.drain(..) {
                        deliver(to, code.clone());
                    }
                }
                b"250 2.0.0 OK\r\n"
            }
            "QUIT" => {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            }
            _ => b"250 OK\r\n",
        };
        write.write_all(reply).await?;
    }
}

/// The digits after "code is:" in a message's text part (quoted-printable soft breaks undone).
fn code_in(body: &str) -> Option<String> {
    let text = body.replace("=\r\n", "");
    let rest = text.split("code is:").nth(1)?;
    let code: String = rest
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    (!code.is_empty()).then_some(code)
}

/// One level's line of the mail table.
pub struct Row<'a> {
    pub clients: usize,
    /// Completed flows.
    pub flows: usize,
    pub wall: Duration,
    pub mail: &'a MailLevel,
    /// From each flow's send-code request to its code in the sink, sorted.
    pub code_waits: &'a [Duration],
    /// Busy CPU-seconds of the whole machine, and of the portal's workers, over the level.
    pub machine_cpu: f64,
    pub portal_cpu: f64,
    /// CPU-seconds of the relay's processes over the level ([`relay_cpu`]).
    pub relay_cpu: f64,
}

/// CPU-seconds used so far by the processes of a Postfix relay on this machine (by their
/// names: its daemons are long-lived, so differences over a level are what it spent; one that
/// exited meanwhile is missed). Without Postfix: 0.
pub fn relay_cpu() -> f64 {
    const POSTFIX: [&str; 12] = [
        "master",
        "smtpd",
        "cleanup",
        "qmgr",
        "smtp",
        "trivial-rewrite",
        "anvil",
        "postlogd",
        "pickup",
        "bounce",
        "scache",
        "proxymap",
    ];
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    let mut ticks = 0u64;
    for e in dir.flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if !POSTFIX.contains(&&stat[open + 1..close]) {
            continue;
        }
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        for i in [11, 12] {
            ticks += fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    // USER_HZ is 100 on every Linux this runs on.
    ticks as f64 / 100.0
}

/// Prints the mail table (nothing without rows); returns its part of the run's summary line.
pub fn report(rows: &[Row], cpus: f64) -> String {
    let mut summary = String::new();
    if rows.is_empty() {
        return summary;
    }
    println!();
    println!(
        "Mail through the relay (code mail: from the send queue taking it to the relay's 250 after DATA):"
    );
    println!(
        "{:>7} | {:>8} | {:>17} {:>17} | {:>17} | {:>8} {:>10} {:>6} | {:>12} {:>8} {:>8}",
        "clients",
        "flows/s",
        "code mail p50/p99",
        "of which SMTP",
        "request->code",
        "mails/s",
        "mails/flow",
        "failed",
        "machine busy",
        "portal",
        "relay"
    );
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let p50_p99 = |v: &[Duration]| (ms(crate::pct(v, 50.0)), ms(crate::pct(v, 99.0)));
    for r in rows {
        let wall = r.wall.as_secs_f64();
        let busy = 100.0 * r.machine_cpu / (wall * cpus);
        let portal = 100.0 * r.portal_cpu / (wall * cpus);
        let relay = 100.0 * r.relay_cpu / (wall * cpus);
        let flows = r.flows as f64 / wall;
        let mails = r.mail.accepted as f64 / wall;
        let (p50, p99) = p50_p99(&r.mail.latency);
        let (s50, s99) = p50_p99(&r.mail.smtp);
        let (w50, w99) = p50_p99(r.code_waits);
        println!(
            "{:>7} | {:>8.1} | {:>17} {:>17} | {:>17} | {:>8.1} {:>10.2} {:>6} | {:>11.0}% {:>7.0}% {:>7.0}%",
            r.clients,
            flows,
            format!("{p50:.1}/{p99:.1} ms"),
            format!("{s50:.1}/{s99:.1} ms"),
            format!("{w50:.1}/{w99:.1} ms"),
            mails,
            r.mail.accepted as f64 / r.flows.max(1) as f64,
            r.mail.failed,
            busy,
            portal,
            relay,
        );
        summary.push_str(&format!(
            " [{} clients: {flows:.1} flows/s, code mail p50/p99 {p50:.1}/{p99:.1} ms, \
             request->code p50/p99 {w50:.1}/{w99:.1} ms, {mails:.1} mails/s, machine {busy:.0}% \
             busy (relay {relay:.0}%)]",
            r.clients
        ));
    }
    println!(
        "  (of which SMTP: a connection from the pool, then MAIL..DATA; request->code: from the"
    );
    println!(
        "   flow's POST /verify/email/start to its code in the sink, through the relay's queue;"
    );
    println!(
        "   mails/flow below the flows' ~3 (code, notices): notices left queued behind the codes;"
    );
    println!("   machine busy: all processes; relay: Postfix's processes, of the same CPUs)");
    summary
}
