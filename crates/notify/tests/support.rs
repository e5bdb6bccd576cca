//! Test infrastructure: the SMTP sink process, a recording HTTP server, temp folders, logs.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use latchkey_notify::{Branding, Renderer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

pub fn renderer() -> Renderer {
    Renderer::new(Branding {
        product_name: "Contoso password reset".into(),
        helpdesk: Some("the IT service desk (+41 44 668 18 00)".into()),
        portal_url: Some("https://reset.contoso.com/".parse().unwrap()),
    })
    .unwrap()
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!(
            "latchkey-notify-{tag}-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---- the SMTP sink -------------------------------------------------------------------------

/// How the sink listens.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum SinkTls {
    None,
    StartTls,
    Implicit,
}

/// A running `smtp_sink.py` (aiosmtpd). Killed on drop.
pub struct SmtpSink {
    child: Child,
    pub port: u16,
    out: TempDir,
}

impl SmtpSink {
    pub fn start(tls: SinkTls, auth: Option<(&str, &str)>, fail_first: u32) -> Self {
        Self::start_with_idle_timeout(tls, auth, fail_first, None)
    }

    /// [`start`](Self::start), closing connections idle for `idle_timeout` seconds.
    pub fn start_with_idle_timeout(
        tls: SinkTls,
        auth: Option<(&str, &str)>,
        fail_first: u32,
        idle_timeout: Option<f64>,
    ) -> Self {
        let python = std::env::var("LATCHKEY_PYTHON").unwrap_or_else(|_| "python3".into());
        // A missing server is a failure, never a skip.
        let probe = Command::new(&python)
            .args(["-c", "import aiosmtpd"])
            .output();
        match probe {
            Ok(o) if o.status.success() => {}
            Ok(o) => panic!(
                "the SMTP tests need Python's aiosmtpd, which is not installed for {python}: \
                 run `{python} -m pip install aiosmtpd` (tests/run does this). {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            Err(e) => {
                panic!("the SMTP tests need {python} with aiosmtpd: cannot run {python}: {e}")
            }
        }
        let out = TempDir::new("smtp");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp_sink.py");
        let mut cmd = Command::new(&python);
        cmd.arg(script).arg("--out").arg(out.path());
        cmd.arg("--connections")
            .arg(out.path().join("connections.json"));
        cmd.args(["--fail-first", &fail_first.to_string()]);
        if let Some(s) = idle_timeout {
            cmd.args(["--idle-timeout", &s.to_string()]);
        }
        if tls != SinkTls::None {
            cmd.arg("--tls-cert").arg(fixture("server.pem"));
            cmd.arg("--tls-key").arg(fixture("server.key"));
            cmd.arg(if tls == SinkTls::StartTls {
                "--starttls"
            } else {
                "--implicit-tls"
            });
        }
        match auth {
            Some((u, p)) => cmd.env("SMTP_SINK_AUTH", format!("{u}:{p}")),
            None => cmd.env_remove("SMTP_SINK_AUTH"),
        };
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the SMTP sink with {python}: {e}"));
        let mut line = String::new();
        let stdout = child.stdout.take().unwrap();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let Some(port) = line
            .trim()
            .strip_prefix("READY ")
            .and_then(|p| p.parse().ok())
        else {
            let mut err = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            let _ = child.kill();
            panic!("the SMTP sink did not start: {line:?} {err}");
        };
        Self { child, port, out }
    }

    /// The messages received so far, waiting until there are at least `n` (or panicking).
    pub async fn messages(&self, n: usize) -> Vec<serde_json::Value> {
        let start = Instant::now();
        loop {
            let mut files: Vec<PathBuf> = std::fs::read_dir(self.out.path())
                .unwrap()
                .map(|e| e.unwrap().path())
                // NNNN.json, not connections.json
                .filter(|p| p.extension().is_some_and(|e| e == "json"))
                .filter(|p| {
                    p.file_stem()
                        .and_then(|s| s.to_str())
                        .is_some_and(|s| s.bytes().all(|b| b.is_ascii_digit()))
                })
                .collect();
            if files.len() >= n {
                files.sort();
                return files
                    .iter()
                    .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
                    .collect();
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "only {} of {n} messages arrived",
                files.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl SmtpSink {
    /// Connections (opened, closed) so far, once `ready` accepts them (or panicking after 10 s).
    pub async fn connections(&self, ready: impl Fn(u64, u64) -> bool) -> (u64, u64) {
        let start = Instant::now();
        loop {
            let path = self.out.path().join("connections.json");
            let counts: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
            let (opened, closed) = (
                counts["opened"].as_u64().unwrap(),
                counts["closed"].as_u64().unwrap(),
            );
            if ready(opened, closed) {
                return (opened, closed);
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "connections: {opened} opened, {closed} closed"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---- a recording HTTP server ------------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn form(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(&self.body)
            .into_owned()
            .collect()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A scripted answer.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    pub fn new(status: u16, body: &str) -> Self {
        Self {
            status,
            body: body.into(),
            delay: Duration::ZERO,
        }
    }
    pub fn delayed(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }
}

/// A tiny HTTP/1.1 server on 127.0.0.1 that records every request and answers from a script
/// (then with the default reply once the script is used up). One request per connection.
pub struct HttpRecorder {
    pub base: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
    script: Arc<Mutex<VecDeque<Reply>>>,
    task: tokio::task::JoinHandle<()>,
}

impl HttpRecorder {
    pub async fn start(default: Reply, script: Vec<Reply>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let (req2, script2) = (requests.clone(), script.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let (requests, script, default) = (req2.clone(), script2.clone(), default.clone());
                tokio::spawn(async move {
                    let Some(req) = read_request(&mut sock).await else {
                        return;
                    };
                    requests.lock().unwrap().push(req);
                    let reply = script.lock().unwrap().pop_front().unwrap_or(default);
                    tokio::time::sleep(reply.delay).await;
                    let head = format!(
                        "HTTP/1.1 {} Test\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        reply.status,
                        reply.body.len()
                    );
                    let _ = sock.write_all(head.as_bytes()).await;
                    let _ = sock.write_all(reply.body.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        Self {
            base,
            requests,
            script,
            task,
        }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    pub fn push_script(&self, reply: Reply) {
        self.script.lock().unwrap().push_back(reply);
    }
}

impl Drop for HttpRecorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn read_request(sock: &mut tokio::net::TcpStream) -> Option<Recorded> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, path) = (first.next()?.to_string(), first.next()?.to_string());
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Recorded {
        method,
        path,
        headers,
        body,
    })
}

// ---- captured logs --------------------------------------------------------------------------

/// Every log line (all levels, all targets) of the whole test process from the first call on.
/// Global on purpose: a thread-local subscriber misses events whose callsite interest another
/// test thread cached first, and a global one also checks every other test's logs for leaks.
pub struct LogCapture {
    buf: Arc<Mutex<Vec<u8>>>,
}

impl LogCapture {
    pub fn global() -> Self {
        static BUF: std::sync::OnceLock<Arc<Mutex<Vec<u8>>>> = std::sync::OnceLock::new();
        let buf = BUF
            .get_or_init(|| {
                let buf = Arc::new(Mutex::new(Vec::new()));
                let writer = buf.clone();
                let subscriber = tracing_subscriber::fmt()
                    .with_max_level(tracing::Level::TRACE)
                    .with_ansi(false)
                    .with_writer(move || CaptureWriter(writer.clone()))
                    .finish();
                tracing::subscriber::set_global_default(subscriber)
                    .expect("no other global subscriber in this test binary");
                buf
            })
            .clone();
        Self { buf }
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf.lock().unwrap()).to_string()
    }
}

struct CaptureWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for CaptureWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
