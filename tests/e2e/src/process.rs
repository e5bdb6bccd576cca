//! Child processes that die with their owner, and temporary folders that go with it.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// A child process, started in its own process group, killed (the whole group: chromedriver's
/// Chromium too) and reaped on drop.
pub(crate) struct ChildGuard {
    child: Child,
    /// Kept open so a child that watches its stdin (the SMTP sink) exits when this process dies,
    /// even without a drop.
    _stdin: Option<ChildStdin>,
}

impl ChildGuard {
    /// `command` must have been configured with `process_group(0)`.
    pub(crate) fn new(mut child: Child) -> Self {
        let stdin = child.stdin.take();
        Self {
            child,
            _stdin: stdin,
        }
    }

    /// `Some(status)` once the child has exited.
    pub(crate) fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        // The group first (its leader's id is the group id), then the leader itself in case
        // `kill` is missing; then reap it so no zombie is left behind.
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(std::process::Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads `stream` line by line on a thread and sends each line to the receiver; once the receiver
/// is dropped the rest is read and discarded, so the child never blocks on a full pipe.
pub(crate) fn read_lines(stream: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    rx
}

/// Waits (off the async executor) for the first line for which `parse` returns `Some`, at most
/// `timeout`. Returns the lines seen before, for the error message, when it does not come.
pub(crate) async fn wait_for_line<T: Send + 'static>(
    lines: mpsc::Receiver<String>,
    timeout: Duration,
    parse: impl Fn(&str) -> Option<T> + Send + 'static,
) -> Result<(T, mpsc::Receiver<String>), Vec<String>> {
    tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => match parse(&line) {
                    Some(value) => return Ok((value, lines)),
                    None => seen.push(line),
                },
                Err(_) => return Err(seen),
            }
        }
    })
    .await
    .unwrap_or_else(|e| Err(vec![format!("waiting thread failed: {e}")]))
}

/// A fresh folder under the system temp dir, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(prefix: &str) -> std::io::Result<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "{prefix}-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path)?;
        Ok(Self(path))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
