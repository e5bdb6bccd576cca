//! Audit forwarding in the portal (`[forwarding]`): the configured SIEM outputs, one
//! [`Forwarder`] loop per output (crates/forward), and the audit observer that wakes them when
//! this instance writes an event. Every instance runs the loops; the store's lease lets one of
//! them deliver each output at a time.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use latchkey_forward::rfc5424::{Facility, Header};
use latchkey_forward::syslog::{SyslogConfig, SyslogOutput};
use latchkey_forward::webhook::{WebhookConfig, WebhookOutput};
use latchkey_forward::{Forwarder, Output, Settings as LoopSettings, TlsMaterial};
use latchkey_store::{AuditEvent, AuditObserver, ForwardStart, Store};
use latchkey_types::Secret;
use latchkey_verify::Clock;
use tokio::sync::{Notify, watch};

use crate::config::{ForwardFrom, ForwardingSettings, Settings};

/// The configured outputs' loops, not started yet.
pub struct Forwarding {
    forwarders: Vec<Arc<Forwarder>>,
}

fn read(path: &std::path::Path, key: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("key `{key}`: cannot read {}", path.display()))
}

fn syslog(
    s: &crate::config::ForwardSyslogSettings,
    source: &str,
) -> anyhow::Result<Arc<dyn Output>> {
    let key = |k: &str| format!("forwarding.syslog.{k}");
    let tls = TlsMaterial {
        ca_pem: s
            .ca_file
            .as_deref()
            .map(|p| read(p, &key("ca_file")))
            .transpose()?,
        client_cert_pem: s
            .client_cert_file
            .as_deref()
            .map(|p| read(p, &key("client_cert_file")))
            .transpose()?,
        client_key_pem: s
            .client_key_file
            .as_deref()
            .map(|p| read(p, &key("client_key_file")).map(Secret::new))
            .transpose()?,
    };
    let facility = match &s.facility {
        Some(f) => Facility::parse(f)
            .with_context(|| format!("key `forwarding.syslog.facility`: {f:?}"))?,
        None => Facility::AuthPriv,
    };
    let config = SyslogConfig {
        url: s.url.clone(),
        tls,
        header: Header {
            facility,
            hostname: source.to_string(),
            app_name: s.app_name.clone().unwrap_or_else(|| "latchkey".into()),
            sd_id: s.sd_id.clone().unwrap_or_else(|| "latchkey@32473".into()),
        },
        timeout: Duration::from_secs(10),
    };
    Ok(Arc::new(SyslogOutput::new(&config)?))
}

fn webhook(s: &crate::config::ForwardWebhookSettings) -> anyhow::Result<Arc<dyn Output>> {
    let bearer_token = s
        .bearer_token_file
        .as_deref()
        .map(|p| -> anyhow::Result<Secret<String>> {
            let bytes = read(p, "forwarding.webhook.bearer_token_file")?;
            let text = String::from_utf8(bytes)
                .ok()
                .map(|t| t.trim_end_matches(['\r', '\n']).to_string())
                .filter(|t| !t.is_empty())
                .with_context(|| {
                    format!(
                        "key `forwarding.webhook.bearer_token_file`: {} is empty or not text",
                        p.display()
                    )
                })?;
            Ok(Secret::new(text))
        })
        .transpose()?;
    let config = WebhookConfig {
        url: s.url.clone(),
        bearer_token,
        tls: TlsMaterial {
            ca_pem: s
                .ca_file
                .as_deref()
                .map(|p| read(p, "forwarding.webhook.ca_file"))
                .transpose()?,
            ..Default::default()
        },
        timeout: Duration::from_secs(10),
    };
    Ok(Arc::new(WebhookOutput::new(&config)?))
}

/// This process among the instances sharing the store: host, process id and a random part.
pub(crate) fn holder() -> anyhow::Result<String> {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into());
    let tag = latchkey_types::random::bytes::<4>()?;
    let tag: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("{host}/{}/{tag}", std::process::id()))
}

/// The deployment's name and the outputs `[forwarding]` configures.
struct Configured {
    source: String,
    outputs: Vec<Arc<dyn Output>>,
}

/// The configured outputs (`None` without any).
fn outputs(settings: &Settings) -> anyhow::Result<Option<Configured>> {
    let f: &ForwardingSettings = &settings.forwarding;
    if f.syslog.is_none() && f.webhook.is_none() {
        return Ok(None);
    }
    let source = match &f.source {
        Some(s) => s.clone(),
        None => url::Url::parse(&settings.portal.public_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_else(|| "latchkey".into()),
    };
    let mut outputs = Vec::new();
    if let Some(s) = &f.syslog {
        outputs.push(syslog(s, &source)?);
    }
    if let Some(w) = &f.webhook {
        outputs.push(webhook(w)?);
    }
    Ok(Some(Configured { source, outputs }))
}

/// One output reached by `latchkey check`.
#[derive(Debug, serde::Serialize)]
pub struct ProbeRow {
    pub output: &'static str,
    pub ok: bool,
    /// What was confirmed, or what failed.
    pub result: String,
}

/// Reaches every configured output without sending an event (`latchkey check`).
pub async fn probe(settings: &Settings) -> anyhow::Result<Vec<ProbeRow>> {
    let Some(Configured { source, outputs }) = outputs(settings)? else {
        return Ok(Vec::new());
    };
    let mut rows = Vec::new();
    for output in outputs {
        let result = tokio::time::timeout(Duration::from_secs(15), output.probe(&source)).await;
        let (ok, result) = match result {
            Ok(Ok(what)) => (true, what.to_string()),
            Ok(Err(e)) => (false, e.to_string()),
            Err(_) => (false, "no answer within 15 s".to_string()),
        };
        rows.push(ProbeRow {
            output: output.name(),
            ok,
            result,
        });
    }
    Ok(rows)
}

impl Forwarding {
    /// The outputs `[forwarding]` configures (`None` without any); refuses wrong settings.
    pub fn from_settings(
        settings: &Settings,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        metrics: Option<Arc<crate::metrics::Metrics>>,
    ) -> anyhow::Result<Option<Self>> {
        let Some(Configured { source, outputs }) = outputs(settings)? else {
            return Ok(None);
        };
        let f: &ForwardingSettings = &settings.forwarding;
        let mut loop_settings = LoopSettings::new(source, holder()?);
        loop_settings.start = match f.start {
            ForwardFrom::Now => ForwardStart::Now,
            ForwardFrom::Beginning => ForwardStart::Beginning,
        };
        if let Some(n) = f.batch_size {
            loop_settings.batch_size = n;
        }
        let forwarders = outputs
            .into_iter()
            .map(|output| {
                let mut f = Forwarder::new(
                    Arc::clone(&store),
                    Arc::clone(&clock),
                    output,
                    loop_settings.clone(),
                );
                if let Some(m) = &metrics {
                    f = f.observed(m.clone());
                }
                Arc::new(f)
            })
            .collect();
        Ok(Some(Self { forwarders }))
    }

    /// Wakes the loops when this instance stores an audit event.
    pub fn observer(&self) -> Arc<dyn AuditObserver> {
        Arc::new(Wake(self.forwarders.iter().map(|f| f.waker()).collect()))
    }

    pub fn outputs(&self) -> Vec<&'static str> {
        self.forwarders.iter().map(|f| f.output()).collect()
    }

    /// Starts every loop on the current runtime.
    pub fn start(&self) -> Running {
        let (stop, rx) = watch::channel(false);
        let tasks = self
            .forwarders
            .iter()
            .map(|f| tokio::spawn(Arc::clone(f).run(rx.clone())))
            .collect();
        Running { stop, tasks }
    }
}

/// The running loops.
pub struct Running {
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops the loops (a delivery in progress finishes, up to its timeout) and gives their
    /// leases up, so another instance takes over at once. One deadline for all of them; a loop
    /// still running after it is aborted (its lease then runs out by itself).
    pub async fn stop(self) {
        if self.stop.send(true).is_err() {
            tracing::debug!("audit forwarding: the loops had already stopped");
        }
        let deadline = tokio::time::Instant::now() + STOP_WAIT;
        for mut task in self.tasks {
            match tokio::time::timeout_at(deadline, &mut task).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "audit forwarding: a loop ended abnormally")
                }
                Err(_) => {
                    task.abort();
                    tracing::warn!(
                        "audit forwarding: a loop did not stop in time; its lease runs out by itself"
                    );
                }
            }
        }
    }
}

/// How long stopping waits for the loops: a delivery's own deadline and a margin.
const STOP_WAIT: Duration = Duration::from_secs(25);

struct Wake(Vec<Arc<Notify>>);

impl AuditObserver for Wake {
    fn appended(&self, _: &AuditEvent) {
        for n in &self.0 {
            n.notify_one();
        }
    }
}

/// Several observers behind the store's one observer slot (metrics, forwarding).
pub struct AuditObservers(pub Vec<Arc<dyn AuditObserver>>);

impl AuditObserver for AuditObservers {
    fn appended(&self, event: &AuditEvent) {
        for o in &self.0 {
            o.appended(event);
        }
    }
}
