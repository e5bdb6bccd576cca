//! `latchkey-gateway run`: the agent. It connects **out** to the portal (no inbound port on the
//! customer network), long-polls for jobs with its credential, runs each with the service
//! account and reports the result. Polls double as heartbeats: the portal offers on-premises
//! unlock only while a gateway polls.
//!
//! Errors never stop the loop except a refused credential (revoked or wrong: nothing will work
//! until an admin fixes it, so the process exits and the service manager shows it). Transport
//! errors back off exponentially up to a minute. Logs name jobs, kinds, accounts and outcomes,
//! never the password or the credential.

pub mod execute;

use std::future::Future;
use std::time::Duration;

use latchkey_jobs::{
    Ack, CAPABILITIES_HEADER, JobKind, JobOffer, JobOutcome, JobReport, NEXT_PATH,
};
use thiserror::Error;

use crate::config::AgentConfig;

const MAX_BACKOFF: Duration = Duration::from_secs(60);

#[derive(Debug, Error)]
pub enum AgentError {
    #[error(
        "the portal refused this gateway's credential (revoked or wrong): register it again with `latchkey gateway register` on the portal host"
    )]
    Unauthorized,
    #[error("configuration: {0}")]
    Config(String),
}

/// Why one exchange with the portal failed. Only [`ExchangeError::Unauthorized`] stops the agent;
/// the others are retried with backoff.
#[derive(Debug, Error)]
enum ExchangeError {
    /// 401/403: the credential is revoked or wrong.
    #[error("the portal refused the credential")]
    Unauthorized,
    /// No answer (connect, TLS, timeout), or an answer that could not be read.
    #[error("{step}: {message}")]
    Transport { step: &'static str, message: String },
    /// An answer the protocol does not expect.
    #[error("{step}: the portal answered {status}")]
    Status { step: &'static str, status: u16 },
}

impl ExchangeError {
    /// A transport error, without the URL (it names the portal; the message is cut short).
    fn transport(step: &'static str, e: &reqwest::Error) -> ExchangeError {
        ExchangeError::Transport {
            step,
            message: e.to_string().chars().take(300).collect(),
        }
    }
}

/// The portal client: base URL, credential, capabilities.
pub struct Portal {
    http: reqwest::Client,
    base: String,
    credential: latchkey_types::Secret<String>,
    capabilities: String,
    poll_seconds: u64,
}

enum Poll {
    Job(Box<JobOffer>),
    Nothing,
    RetryAfter(Duration),
}

impl Portal {
    pub fn new(cfg: &AgentConfig) -> Result<Portal, AgentError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(15))
            // The credential must never follow a redirect elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("latchkey-gateway/", env!("CARGO_PKG_VERSION")));
        if cfg.portal_url.starts_with("https://") {
            let tls = latchkey_ad::ldap::client_config(&cfg.portal_trust)
                .map_err(|e| AgentError::Config(e.to_string()))?
                .ok_or_else(|| AgentError::Config("the portal's TLS is always verified".into()))?;
            builder = builder.use_preconfigured_tls((*tls).clone());
        }
        let http = builder
            .build()
            .map_err(|e| AgentError::Config(format!("HTTP client: {e}")))?;
        let mut kinds = Vec::new();
        if cfg.unlock {
            kinds.push(JobKind::Unlock.as_str());
        }
        if cfg.reset {
            kinds.push(JobKind::Reset.as_str());
        }
        Ok(Portal {
            http,
            base: cfg.portal_url.clone(),
            credential: cfg.credential.clone(),
            capabilities: kinds.join(","),
            poll_seconds: cfg.poll_seconds,
        })
    }

    async fn next(&self) -> Result<Poll, ExchangeError> {
        let resp = self
            .http
            .get(format!(
                "{}{NEXT_PATH}?wait={}",
                self.base, self.poll_seconds
            ))
            .bearer_auth(self.credential.expose())
            .header(CAPABILITIES_HEADER, &self.capabilities)
            .timeout(Duration::from_secs(self.poll_seconds + 20))
            .send()
            .await
            .map_err(|e| ExchangeError::transport("poll", &e))?;
        match resp.status().as_u16() {
            200 => resp
                .json::<JobOffer>()
                .await
                .map(|o| Poll::Job(Box::new(o)))
                .map_err(|e| ExchangeError::transport("poll: unreadable job", &e)),
            204 => Ok(Poll::Nothing),
            401 | 403 => Err(ExchangeError::Unauthorized),
            429 => Ok(Poll::RetryAfter(retry_after(&resp))),
            status => Err(ExchangeError::Status {
                step: "poll",
                status,
            }),
        }
    }

    async fn report(&self, id: &str, report: &JobReport) -> Result<Ack, ExchangeError> {
        let resp = self
            .http
            .post(format!("{}{}", self.base, latchkey_jobs::result_path(id)))
            .bearer_auth(self.credential.expose())
            .json(report)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .map_err(|e| ExchangeError::transport("report", &e))?;
        match resp.status().as_u16() {
            200 => resp
                .json::<Ack>()
                .await
                .map_err(|e| ExchangeError::transport("report", &e)),
            401 | 403 => Err(ExchangeError::Unauthorized),
            status => Err(ExchangeError::Status {
                step: "report",
                status,
            }),
        }
    }
}

fn retry_after(resp: &reqwest::Response) -> Duration {
    resp.headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(Duration::from_secs(30), |s| {
            Duration::from_secs(s.clamp(1, 600))
        })
}

/// The agent's one clock: job offers carry deadlines in wall-clock milliseconds.
#[allow(clippy::disallowed_methods)] // the agent's clock seam
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Runs jobs until `stop` completes (checked between jobs: a job that started is finished and
/// reported first) or the credential is refused.
pub async fn run(cfg: AgentConfig, stop: impl Future<Output = ()>) -> Result<(), AgentError> {
    let portal = Portal::new(&cfg)?;
    tracing::info!(portal = %cfg.portal_url, can = %portal.capabilities, "gateway agent started");
    tokio::pin!(stop);
    let mut backoff = Duration::from_secs(1);
    loop {
        let polled = tokio::select! {
            () = &mut stop => break,
            p = portal.next() => p,
        };
        match polled {
            Ok(Poll::Job(offer)) => {
                backoff = Duration::from_secs(1);
                handle(&cfg, &portal, &offer).await;
            }
            Ok(Poll::Nothing) => backoff = Duration::from_secs(1),
            Ok(Poll::RetryAfter(wait)) => {
                tracing::warn!(seconds = wait.as_secs(), "the portal asks to slow down");
                tokio::select! {
                    () = &mut stop => break,
                    () = tokio::time::sleep(wait) => {}
                }
            }
            Err(ExchangeError::Unauthorized) => {
                tracing::error!("{}", AgentError::Unauthorized);
                return Err(AgentError::Unauthorized);
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in = backoff.as_secs(), "cannot reach the portal");
                tokio::select! {
                    () = &mut stop => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
    tracing::info!("gateway agent stopped");
    Ok(())
}

/// Runs one job and reports it (a few tries: the report is idempotent on the portal).
async fn handle(cfg: &AgentConfig, portal: &Portal, offer: &JobOffer) {
    let account = &offer.target.sam_account_name;
    tracing::info!(job = %offer.id, kind = offer.kind.as_str(), %account,
        correlation_id = %offer.correlation_id, "job received");
    let report = execute::execute(cfg, offer, now_ms()).await;
    match &report.outcome {
        JobOutcome::Succeeded => tracing::info!(job = %offer.id, kind = offer.kind.as_str(),
            %account, dn = report.object_dn.as_deref().unwrap_or(""), "job succeeded"),
        JobOutcome::Failed { reason, detail } => tracing::warn!(job = %offer.id,
            kind = offer.kind.as_str(), %account, reason = reason.as_str(), %detail, "job failed"),
    }
    let mut wait = Duration::from_secs(1);
    for attempt in 1..=5 {
        match portal.report(&offer.id, &report).await {
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(job = %offer.id, attempt, error = %e, "cannot report the result");
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
        }
    }
    tracing::error!(job = %offer.id, "result not reported; the portal will show the job as expired");
}
