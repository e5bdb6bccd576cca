//! A real SMTP server for email tests: the notify crate's `crates/notify/tests/smtp_sink.py`
//! (Python aiosmtpd) in a child process. It writes each message as `NNNN.eml` (raw) and
//! `NNNN.json` (envelope and decoded parts, written last by rename) into a folder.

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
    /// Arrival order, from 1 (the file name).
    #[serde(skip)]
    pub seq: u64,
    /// Envelope sender (`MAIL FROM`).
    pub mail_from: String,
    /// Envelope recipients (`RCPT TO`).
    pub rcpt_tos: Vec<String>,
    /// The decoded `Subject`.
    pub subject: String,
    /// The decoded text/plain part.
    pub text: Option<String>,
    /// The decoded text/html part.
    pub html: Option<String>,
    /// Every header in order, as sent (unfolded, not RFC 2047-decoded).
    #[serde(skip)]
    pub headers: Vec<(String, String)>,
    /// What else the sink recorded (decoded `from`/`to`, `tls`, `auth_login`, ...).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
    /// The raw message (`.eml`) on disk.
    #[serde(skip)]
    pub raw_path: PathBuf,
}

impl Email {
    /// The first header named `name` (case-insensitive), as sent.
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

/// The header block of a raw message: unfolded `(name, value)` pairs in order.
fn parse_headers(raw: &[u8]) -> Vec<(String, String)> {
    let raw = String::from_utf8_lossy(raw);
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in raw.lines() {
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = headers.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    headers
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
    /// Starts `crates/notify/tests/smtp_sink.py` (or `LATCHKEY_SMTP_SINK`) with `python3` (or
    /// `LATCHKEY_PYTHON`): plain SMTP, no authentication, on a free loopback port.
    pub async fn start() -> anyhow::Result<SmtpSink> {
        let python = crate::tool("LATCHKEY_PYTHON", "python3");
        let default_script = crate::crate_dir().join("../../crates/notify/tests/smtp_sink.py");
        let script = crate::tool("LATCHKEY_SMTP_SINK", &default_script.to_string_lossy());
        let dir = TempDir::new("latchkey-e2e-smtp")?;
        let messages = dir.path().join("messages");
        std::fs::create_dir_all(&messages)?;
        let err_log = dir.path().join("sink.stderr");
        let mut child = Command::new(&python)
            .arg(&script)
            .arg("--out")
            .arg(&messages)
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
            line.strip_prefix("READY ")
                .and_then(|port| port.trim().parse::<u16>().ok())
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

    /// Where the messages are stored (`NNNN.eml` + `NNNN.json`).
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
    email.seq = path
        .file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    email.raw_path = path.with_extension("eml");
    email.headers = parse_headers(&email.raw()?);
    Ok(email)
}
