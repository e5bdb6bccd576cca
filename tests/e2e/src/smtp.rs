//! A real SMTP server for email tests: `smtp_sink.py` (Python aiosmtpd) in a child process.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context as _;
use serde::Deserialize;

use crate::process::{ChildGuard, TempDir, read_lines, wait_for_line};
use std::os::unix::process::CommandExt as _;

/// A message as the SMTP server received it.
#[derive(Debug, Clone, Deserialize)]
pub struct Email {
    /// Arrival order, from 1.
    pub seq: u64,
    /// Envelope sender (`MAIL FROM`).
    pub mail_from: String,
    /// Envelope recipients (`RCPT TO`).
    pub rcpt_tos: Vec<String>,
    /// Every header in order, values decoded (RFC 2047).
    pub headers: Vec<(String, String)>,
    pub subject: String,
    /// The decoded text/plain part.
    pub text: Option<String>,
    /// The decoded text/html part.
    pub html: Option<String>,
    /// The raw message (`.eml`) on disk.
    #[serde(skip)]
    pub raw_path: PathBuf,
}

impl Email {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The raw message as received.
    pub fn raw(&self) -> std::io::Result<Vec<u8>> {
        std::fs::read(&self.raw_path)
    }
}

/// The first run of 6 to 8 ASCII digits (not part of a longer run) in the text part.
pub fn extract_code(msg: &Email) -> Option<String> {
    let text = msg.text.as_deref()?;
    text.as_bytes()
        .split(|b| !b.is_ascii_digit())
        .find(|run| (6..=8).contains(&run.len()))
        .map(|run| String::from_utf8_lossy(run).into_owned())
}

/// An SMTP server on a free loopback port that keeps every message; killed on drop.
pub struct SmtpSink {
    port: u16,
    _child: ChildGuard,
    dir: TempDir,
    /// Messages [`SmtpSink::wait_for_message`] already returned.
    taken: Mutex<HashSet<u64>>,
}

impl SmtpSink {
    /// Starts `smtp_sink.py` (or `LATCHKEY_SMTP_SINK`) with `python3` (or `LATCHKEY_PYTHON`).
    pub async fn start() -> anyhow::Result<SmtpSink> {
        let python = crate::tool("LATCHKEY_PYTHON", "python3");
        let script = crate::tool(
            "LATCHKEY_SMTP_SINK",
            &crate::crate_dir().join("smtp_sink.py").to_string_lossy(),
        );
        let dir = TempDir::new("latchkey-e2e-smtp")?;
        let err_log = dir.path().join("sink.stderr");
        let mut child = Command::new(&python)
            .arg(&script)
            .arg("--dir")
            .arg(dir.path().join("messages"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&err_log)?)
            .process_group(0)
            .spawn()
            .with_context(|| {
                format!(
                    "cannot start {} {}: is Python 3 installed?",
                    python.display(),
                    script.display()
                )
            })?;
        let stdout = child.stdout.take().context("smtp sink stdout")?;
        let mut guard = ChildGuard::new(child);
        let port = match wait_for_line(read_lines(stdout), Duration::from_secs(20), |line| {
            line.strip_prefix("LISTENING ")
                .and_then(|rest| rest.rsplit(' ').next()?.parse::<u16>().ok())
        })
        .await
        {
            Ok((port, _rest)) => port,
            Err(seen) => {
                let stderr = std::fs::read_to_string(&err_log).unwrap_or_default();
                anyhow::bail!(
                    "the SMTP sink ({} {}) did not start (exit status {:?}):\n{}{}",
                    python.display(),
                    script.display(),
                    guard.exited(),
                    seen.join("\n"),
                    stderr
                );
            }
        };
        Ok(SmtpSink {
            port,
            _child: guard,
            dir,
            taken: Mutex::new(HashSet::new()),
        })
    }

    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Where the messages are stored (`NNNNNN.eml` + `NNNNNN.json`).
    pub fn dir(&self) -> PathBuf {
        self.dir.path().join("messages")
    }

    /// Every message received so far, in arrival order.
    pub fn messages(&self) -> anyhow::Result<Vec<Email>> {
        let dir = self.dir();
        let mut out = Vec::new();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
        };
        for entry in entries {
            let path = entry?.path();
            if path.extension().and_then(|e| e.to_str()) == Some("json") {
                out.push(read_message(&path)?);
            }
        }
        out.sort_by_key(|m| m.seq);
        Ok(out)
    }

    /// Waits for the oldest message to `to` (an envelope recipient, case-insensitive) that this
    /// method has not returned before, at most `timeout`.
    pub async fn wait_for_message(&self, to: &str, timeout: Duration) -> anyhow::Result<Email> {
        let result = crate::wait_until(&format!("an email to {to}"), timeout, || async {
            let mut taken = self.taken.lock().unwrap_or_else(|e| e.into_inner());
            let found = self.messages()?.into_iter().find(|m| {
                !taken.contains(&m.seq) && m.rcpt_tos.iter().any(|r| r.eq_ignore_ascii_case(to))
            });
            if let Some(m) = &found {
                taken.insert(m.seq);
            }
            Ok(found)
        })
        .await;
        result.with_context(|| {
            let got: Vec<String> = self
                .messages()
                .unwrap_or_default()
                .iter()
                .map(|m| format!("#{} to {:?}: {:?}", m.seq, m.rcpt_tos, m.subject))
                .collect();
            format!("messages the SMTP sink received: {got:?}")
        })
    }
}

fn read_message(path: &Path) -> anyhow::Result<Email> {
    let json =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut email: Email =
        serde_json::from_str(&json).with_context(|| format!("cannot parse {}", path.display()))?;
    email.raw_path = path.with_extension("eml");
    Ok(email)
}
