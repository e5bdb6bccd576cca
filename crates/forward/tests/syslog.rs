//! The syslog output against Debian's rsyslog: TLS (RFC 5425) with the receiver killed mid-stream
//! and started again, UDP to a loopback relay, and the settings it refuses.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use latchkey_forward::TlsMaterial;
use latchkey_forward::rfc5424::{Facility, Header};
use latchkey_forward::syslog::{SyslogConfig, SyslogOutput};

use crate::support::*;

fn rsyslogd() -> PathBuf {
    for p in ["/usr/sbin/rsyslogd", "/usr/bin/rsyslogd"] {
        if Path::new(p).exists() {
            return p.into();
        }
    }
    panic!("rsyslogd not found: run tests/run (installs rsyslog and rsyslog-gnutls)");
}

/// One rsyslogd with its own configuration: TLS on `tls_port`, UDP on `udp_port`, every message
/// written raw, one per line, to `out.log`. Direct queues and unbuffered writes: a message is in
/// the file before the next one is read, so killing the process loses nothing it accepted.
struct Rsyslog {
    dir: PathBuf,
    child: Option<Child>,
}

impl Rsyslog {
    fn start(dir: &Path, tls_port: u16, udp_port: u16) -> Self {
        Self::start_with_relp(dir, tls_port, udp_port, free_port(), free_port())
    }

    /// Also RELP: in clear on `relp_port`, over TLS (client certificates required, as imrelp
    /// does with certificates) on `relp_tls_port`.
    fn start_with_relp(
        dir: &Path,
        tls_port: u16,
        udp_port: u16,
        relp_port: u16,
        relp_tls_port: u16,
    ) -> Self {
        let d = dir.display();
        std::fs::write(
            dir.join("rsyslog.conf"),
            format!(
                r#"global(workDirectory="{d}" maxMessageSize="64k"
  DefaultNetstreamDriver="gtls"
  DefaultNetstreamDriverCAFile="{d}/ca.pem"
  DefaultNetstreamDriverCertFile="{d}/server.pem"
  DefaultNetstreamDriverKeyFile="{d}/server.key")
module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="anon")
module(load="imudp")
module(load="imrelp")
template(name="raw" type="string" string="%rawmsg%\n")
ruleset(name="siem" queue.type="Direct") {{
  action(type="omfile" file="{d}/out.log" template="raw" flushOnTXEnd="on" asyncWriting="off")
}}
input(type="imtcp" port="{tls_port}" address="127.0.0.1" ruleset="siem")
input(type="imudp" port="{udp_port}" address="127.0.0.1" ruleset="siem")
input(type="imrelp" port="{relp_port}" address="127.0.0.1" ruleset="siem")
input(type="imrelp" port="{relp_tls_port}" address="127.0.0.1" ruleset="siem" tls="on"
  tls.caCert="{d}/ca.pem" tls.myCert="{d}/server.pem" tls.myPrivKey="{d}/server.key"
  tls.authMode="certvalid")
"#
            ),
        )
        .unwrap();
        let mut r = Rsyslog {
            dir: dir.to_path_buf(),
            child: None,
        };
        r.up(tls_port);
        r
    }

    fn up(&mut self, tls_port: u16) {
        let _ = std::fs::remove_file(self.dir.join("rsyslogd.pid"));
        let child = Command::new(rsyslogd())
            .arg("-n")
            .arg("-f")
            .arg(self.dir.join("rsyslog.conf"))
            .arg("-i")
            .arg(self.dir.join("rsyslogd.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("rsyslogd starts");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", tls_port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "rsyslogd did not listen on {tls_port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: no shutdown, no flushing.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("out.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The audit ids in the file, in the order written.
    fn ids(&self) -> Vec<i64> {
        self.lines()
            .iter()
            .filter_map(|l| {
                let rest = l.split_once(" id=\"")?.1;
                rest.split_once('"')?.0.parse().ok()
            })
            .collect()
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        self.kill();
    }
}

fn config(url: String, dir: &Path) -> SyslogConfig {
    SyslogConfig {
        url,
        tls: TlsMaterial {
            ca_pem: Some(std::fs::read(dir.join("ca.pem")).unwrap()),
            ..Default::default()
        },
        header: Header {
            facility: Facility::AuthPriv,
            hostname: "sspr.contoso.test".into(),
            app_name: "latchkey".into(),
            sd_id: "latchkey@32473".into(),
        },
        timeout: Duration::from_secs(5),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_syslog_survives_a_receiver_killed_mid_stream_and_loses_nothing() {
    let dir = TempDir::new("syslog-tls");
    make_certs(&dir.0);
    let (tls_port, udp_port) = (free_port(), free_port());
    let mut rsyslog = Rsyslog::start(&dir.0, tls_port, udp_port);
    let store = sqlite(&dir.0).await;
    let output = Arc::new(
        SyslogOutput::new(&config(format!("tls://localhost:{tls_port}"), &dir.0)).unwrap(),
    );
    let running = start(store.clone(), output, settings("instance-1"));
    // Events keep coming while the receiver dies and comes back (a writer 5 ms apart).
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for n in 0..300 {
                ids.extend(append(&store, n..n + 1, "a").await);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            ids
        })
    };
    wait_for(30, "the first events", || rsyslog.ids().len() >= 40).await;
    rsyslog.kill();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let backlog = store
        .forward_backlog("syslog", 10_000)
        .await
        .unwrap()
        .unwrap();
    assert!(
        backlog > 0,
        "events written while the receiver is down wait"
    );
    rsyslog.up(tls_port);
    let written = writer.await.unwrap();
    wait_for(60, "every event", || {
        let got: std::collections::BTreeSet<i64> = rsyslog.ids().into_iter().collect();
        written.iter().all(|id| got.contains(id))
    })
    .await;
    running.stop().await;

    let (order, repeats) = first_arrivals(&rsyslog.ids());
    assert_eq!(
        order, written,
        "every event once, in audit order (first arrivals)"
    );
    eprintln!(
        "syslog/TLS: {} events, {repeats} sent again after the outage (backlog {backlog} at its peak)",
        written.len()
    );
    assert_eq!(
        store.forward_backlog("syslog", 10_000).await.unwrap(),
        Some(0)
    );

    // The messages are RFC 5424 with the event as JSON.
    let line = &rsyslog.lines()[0];
    assert!(
        line.starts_with("<84>1 ") || line.starts_with("<85>1 "),
        "authpriv with warning/notice: {line}"
    );
    assert!(line.contains(" sspr.contoso.test latchkey - verify [latchkey@32473 id=\""));
    let json: serde_json::Value =
        serde_json::from_str(line.split_once('\u{feff}').unwrap().1).unwrap();
    assert_eq!(json["source"], "sspr.contoso.test");
    assert_eq!(json["details"]["writer"], "a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_syslog_reaches_a_loopback_relay() {
    let dir = TempDir::new("syslog-udp");
    make_certs(&dir.0);
    let (tls_port, udp_port) = (free_port(), free_port());
    let rsyslog = Rsyslog::start(&dir.0, tls_port, udp_port);
    let store = sqlite(&dir.0).await;
    let written = append(&store, 0..60, "u").await;
    let output = Arc::new(
        SyslogOutput::new(&config(format!("udp://127.0.0.1:{udp_port}"), &dir.0)).unwrap(),
    );
    let running = start(store.clone(), output, settings("instance-1"));
    wait_for(30, "every datagram", || {
        rsyslog.ids().len() >= written.len()
    })
    .await;
    running.stop().await;
    assert_eq!(rsyslog.ids(), written);
}

/// A local relay that is down: the host says nobody listens, the batch stays queued, and it is
/// delivered once the relay is up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_to_a_relay_that_is_down_keeps_the_events() {
    let dir = TempDir::new("syslog-udp-down");
    make_certs(&dir.0);
    let (tls_port, udp_port) = (free_port(), free_port());
    let store = sqlite(&dir.0).await;
    let written = append(&store, 0..10, "d").await;
    let output = Arc::new(
        SyslogOutput::new(&config(format!("udp://127.0.0.1:{udp_port}"), &dir.0)).unwrap(),
    );
    use latchkey_forward::Output as _;
    let records: Vec<_> = store
        .audit_after(latchkey_store::AuditPosition::START, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.record)
        .collect();
    let err = output.deliver(&records, "s").await.unwrap_err().to_string();
    assert!(err.contains("not listening"), "{err}");
    let running = start(store.clone(), output, settings("instance-1"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        store.forward_backlog("syslog", 100).await.unwrap(),
        Some(10)
    );
    let rsyslog = Rsyslog::start(&dir.0, tls_port, udp_port);
    wait_for(30, "every datagram", || {
        rsyslog.ids().len() >= written.len()
    })
    .await;
    running.stop().await;
    let (order, _) = first_arrivals(&rsyslog.ids());
    assert_eq!(order, written);
}

/// RELP: every message acknowledged by rsyslog's imrelp, in clear to this host and over TLS
/// with a client certificate; a receiver killed mid-stream loses nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relp_delivers_acknowledged_messages_in_clear_and_over_tls() {
    let dir = TempDir::new("syslog-relp");
    make_certs(&dir.0);
    let (tls_port, udp_port, relp_port, relp_tls_port) =
        (free_port(), free_port(), free_port(), free_port());
    let mut rsyslog =
        Rsyslog::start_with_relp(&dir.0, tls_port, udp_port, relp_port, relp_tls_port);
    let store = sqlite(&dir.0).await;
    let written = append(&store, 0..50, "r").await;
    let plain = Arc::new(
        SyslogOutput::new(&config(format!("relp://127.0.0.1:{relp_port}"), &dir.0)).unwrap(),
    );
    // `latchkey check`'s probe: a session opened and closed, no message sent.
    use latchkey_forward::Output as _;
    assert_eq!(plain.probe("s").await.unwrap(), "a RELP session accepted");
    let running = start(store.clone(), plain, settings("instance-1"));
    wait_for(30, "RELP in clear", || rsyslog.ids().len() >= written.len()).await;
    running.stop().await;
    assert_eq!(rsyslog.ids(), written);

    // Over TLS, with the receiver killed while events keep coming.
    let mut tls_config = config(format!("relp+tls://localhost:{relp_tls_port}"), &dir.0);
    tls_config.tls.client_cert_pem = Some(std::fs::read(dir.0.join("client.pem")).unwrap());
    tls_config.tls.client_key_pem = Some(latchkey_types::Secret::new(
        std::fs::read(dir.0.join("client.key")).unwrap(),
    ));
    let output = Arc::new(SyslogOutput::new(&tls_config).unwrap());
    assert_eq!(
        output.probe("s").await.unwrap(),
        "TLS and a RELP session accepted"
    );
    let before = rsyslog.ids().len();
    assert_eq!(before, written.len(), "the probes sent nothing");
    // The output's cursor is the same ("syslog"): it goes on after the plain run.
    let running = start(store.clone(), output, settings("instance-1"));
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for n in 0..200 {
                ids.extend(append(&store, n..n + 1, "t").await);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            ids
        })
    };
    wait_for(30, "RELP over TLS", || rsyslog.ids().len() >= before + 30).await;
    rsyslog.kill();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    rsyslog.up(tls_port);
    let late = writer.await.unwrap();
    wait_for(60, "every event over RELP/TLS", || {
        let got: std::collections::BTreeSet<i64> = rsyslog.ids().into_iter().collect();
        late.iter().all(|id| got.contains(id))
    })
    .await;
    running.stop().await;
    let (order, repeats) = first_arrivals(&rsyslog.ids()[before..]);
    assert_eq!(order, late, "every event, in order");
    eprintln!(
        "RELP/TLS: {} events, {repeats} sent again after the outage",
        late.len()
    );
}

#[tokio::test]
async fn syslog_settings_that_would_leak_or_break_are_refused() {
    let dir = TempDir::new("syslog-config");
    make_certs(&dir.0);
    for (url, why) in [
        ("udp://siem.contoso.com:514", "this host"),
        ("relp://siem.contoso.com:2514", "this host"),
        ("tcp://10.0.0.5:514", "this host"),
        ("http://siem.contoso.com", "scheme"),
        ("tls://", "host"),
        ("tls://siem.contoso.com:6514/path", "scheme://host:port"),
    ] {
        let err = SyslogOutput::new(&config(url.into(), &dir.0))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains(why), "{url}: {err}");
    }
    let mut bad = config("tls://siem.contoso.com".into(), &dir.0);
    bad.header.sd_id = "latch key".into();
    assert!(SyslogOutput::new(&bad).is_err());
    let mut no_ca = config("tls://siem.contoso.com".into(), &dir.0);
    no_ca.tls.ca_pem = Some(b"not a certificate".to_vec());
    assert!(SyslogOutput::new(&no_ca).is_err());
    assert!(SyslogOutput::new(&config("tcp://[::1]:514".into(), &dir.0)).is_ok());
    assert!(SyslogOutput::new(&config("tls://siem.contoso.com".into(), &dir.0)).is_ok());
    assert!(SyslogOutput::new(&config("relp+tls://siem.contoso.com".into(), &dir.0)).is_ok());
}
