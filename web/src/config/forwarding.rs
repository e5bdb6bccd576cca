//! `[forwarding]`: audit events to SIEM outputs (crates/forward, web/src/forwarding.rs).

use std::path::PathBuf;

use serde::Deserialize;

/// Where a new output starts the first time it runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ForwardFrom {
    /// Events written from then on.
    #[default]
    Now,
    /// The whole trail, oldest first.
    Beginning,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ForwardingSettings {
    /// The deployment's name in every event (`source`, syslog HOSTNAME); default: the host of
    /// `portal.public_url`. With the audit id, the idempotency key.
    pub source: Option<String>,
    pub start: ForwardFrom,
    /// Events per delivery (1 to 1000; default 200).
    pub batch_size: Option<u32>,
    pub syslog: Option<SyslogSettings>,
    pub webhook: Option<WebhookSettings>,
}

/// `[forwarding.syslog]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogSettings {
    /// `relp+tls://siem.contoso.com:2514` (acknowledged) or `tls://siem.contoso.com:6514`;
    /// `relp://`, `tcp://` and `udp://` only to a relay on this host.
    pub url: String,
    /// Trust only this CA (PEM) for the receiver; default: the system's roots.
    pub ca_file: Option<PathBuf>,
    /// A client certificate (PEM chain) and its key, for receivers that authenticate senders.
    pub client_cert_file: Option<PathBuf>,
    pub client_key_file: Option<PathBuf>,
    /// `authpriv` (default), `auth`, `audit`, `daemon`, `user`, `local0` ... `local7`.
    pub facility: Option<String>,
    /// APP-NAME (default `latchkey`).
    pub app_name: Option<String>,
    /// The structured data id (default `latchkey@32473`).
    pub sd_id: Option<String>,
}

/// `[forwarding.webhook]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// `https://...`; `http://` only to a receiver on this host.
    pub url: String,
    /// A file holding the bearer token (sent as `Authorization: Bearer ...`).
    pub bearer_token_file: Option<PathBuf>,
    /// Trust only this CA (PEM) for the receiver; default: the system's roots.
    pub ca_file: Option<PathBuf>,
}

impl ForwardingSettings {
    pub(super) fn paths(&mut self) -> Vec<&mut PathBuf> {
        let mut out = Vec::new();
        if let Some(s) = &mut self.syslog {
            out.extend(
                [
                    &mut s.ca_file,
                    &mut s.client_cert_file,
                    &mut s.client_key_file,
                ]
                .into_iter()
                .flatten(),
            );
        }
        if let Some(w) = &mut self.webhook {
            out.extend(
                [&mut w.bearer_token_file, &mut w.ca_file]
                    .into_iter()
                    .flatten(),
            );
        }
        out
    }

    pub(super) fn validate(&self) -> anyhow::Result<()> {
        if let Some(n) = self.batch_size {
            anyhow::ensure!(
                (1..=1000).contains(&n),
                "key `forwarding.batch_size`: 1 to 1000"
            );
        }
        let printable = |v: &str, max: usize| {
            !v.is_empty() && v.len() <= max && v.bytes().all(|b| (33..=126).contains(&b))
        };
        if let Some(source) = &self.source {
            anyhow::ensure!(
                printable(source, 255),
                "key `forwarding.source`: 1 to 255 printable ASCII characters, no space (it is \
                 the syslog HOSTNAME)"
            );
        }
        if let Some(s) = &self.syslog {
            if let Some(a) = &s.app_name {
                anyhow::ensure!(
                    printable(a, 48),
                    "key `forwarding.syslog.app_name`: 1 to 48 printable ASCII characters, no space"
                );
            }
            if let Some(f) = &s.facility {
                anyhow::ensure!(
                    latchkey_forward::rfc5424::Facility::parse(f).is_some(),
                    "key `forwarding.syslog.facility`: {f:?} is not one of authpriv, auth, audit, \
                     daemon, user, local0 ... local7"
                );
            }
            anyhow::ensure!(
                s.client_cert_file.is_some() == s.client_key_file.is_some(),
                "keys `forwarding.syslog.client_cert_file` and `client_key_file` go together"
            );
        }
        Ok(())
    }
}
