//! Policy files reload on change. A changed folder is loaded as a whole; only a fully valid set
//! replaces the running one. An invalid edit leaves the last good set in force and says why (log
//! and audit trail), so a typo never switches self-service off or opens it wider.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use latchkey_policy::{PolicyError, PolicySet, load_dir};

use crate::services::Services;

/// What the folder looked like: each `*.toml` file with its modification time and size.
type Fingerprint = Vec<(PathBuf, Option<SystemTime>, u64)>;

/// Watches one policy folder by polling (no inotify dependency; policies change rarely and a
/// few seconds' delay is fine).
pub struct PolicyWatcher {
    dir: PathBuf,
    seen: Fingerprint,
}

impl PolicyWatcher {
    /// Starts from the folder as it is now (the set already loaded at start-up).
    pub fn new(dir: PathBuf) -> Self {
        let seen = fingerprint(&dir);
        Self { dir, seen }
    }

    /// `Ok(None)` when nothing changed, `Ok(Some(set))` for a new valid set, `Err` for a changed
    /// but invalid folder (the caller keeps its set; the same errors are not reported again until
    /// the files change once more).
    pub fn poll(&mut self) -> Result<Option<PolicySet>, Vec<PolicyError>> {
        let now = fingerprint(&self.dir);
        if now == self.seen {
            return Ok(None);
        }
        self.seen = now;
        load_dir(&self.dir).map(Some)
    }
}

fn fingerprint(dir: &std::path::Path) -> Fingerprint {
    let mut out: Fingerprint = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .map(|p| {
                    let meta = std::fs::metadata(&p).ok();
                    let modified = meta.as_ref().and_then(|m| m.modified().ok());
                    let len = meta.map_or(0, |m| m.len());
                    (p, modified, len)
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Polls `dir` every `every` and swaps valid sets into `services`.
pub fn spawn(
    services: Arc<Services>,
    dir: PathBuf,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    let mut watcher = PolicyWatcher::new(dir);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            match watcher.poll() {
                Ok(None) => {}
                Ok(Some(set)) => {
                    let n = set.policies().len();
                    if let Ok(mut current) = services.policies.write() {
                        *current = Arc::new(set);
                    }
                    tracing::info!(policies = n, "policy files changed: new set in force");
                    audit(
                        &services,
                        latchkey_store::Outcome::Success,
                        format!("{n} policies"),
                    )
                    .await;
                }
                Err(errors) => {
                    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
                    tracing::error!(errors = %text.join("; "), "policy files changed but are invalid: the previous set stays in force");
                    audit(&services, latchkey_store::Outcome::Error, text.join("; ")).await;
                }
            }
        }
    })
}

async fn audit(services: &Services, outcome: latchkey_store::Outcome, reason: String) {
    let correlation_id = match latchkey_types::ObjectId::random() {
        Ok(id) => id.to_string(),
        Err(e) => {
            tracing::error!(error = %e, "policy reload: cannot audit");
            return;
        }
    };
    let event = latchkey_store::AuditEvent {
        at: services.clock.now(),
        correlation_id,
        actor: "system".into(),
        subject: None,
        event_type: "policy.reload".into(),
        method: None,
        outcome,
        reason: Some(reason),
        details: serde_json::Value::Null,
    };
    if let Err(e) = services.store.append_audit(&event).await {
        tracing::error!(error = %e, "cannot audit a policy reload");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "[[policy]]\nname = \"A\"\npriority = 1\nactions = [\"reset\"]\nmethods = [\"email\"]\nmethods_required = 1\n";

    #[test]
    fn a_valid_change_is_loaded_an_invalid_one_is_reported_once_and_kept_out() {
        let dir = std::env::temp_dir().join(format!(
            "latchkey-reload-{}",
            latchkey_types::ObjectId::new_random()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.toml"), VALID).unwrap();
        let mut w = PolicyWatcher::new(dir.clone());
        assert!(matches!(w.poll(), Ok(None)), "nothing changed yet");

        std::fs::write(
            dir.join("b.toml"),
            VALID
                .replace("\"A\"", "\"B\"")
                .replace("priority = 1", "priority = 2"),
        )
        .unwrap();
        let set = w.poll().unwrap().expect("a new set");
        assert_eq!(set.policies().len(), 2);

        std::fs::write(dir.join("b.toml"), "[[policy]]\nname = \"B\"\nbroken").unwrap();
        let errors = w.poll().unwrap_err();
        assert!(errors[0].to_string().contains("b.toml"), "{errors:?}");
        assert!(
            matches!(w.poll(), Ok(None)),
            "the same broken state is reported once"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
