//! The portal on the PostgreSQL store, as `latchkey serve` runs it from a configuration file
//! (`[store] database_url = "postgres://..."` with `password_file`), with two instances behind
//! one public URL: a complete reset whose steps alternate between the instances, because every
//! piece of state (flow, code, throttles, audit) is in the shared database.
//!
//! Needs `LATCHKEY_TEST_POSTGRES_URL` (tests/run starts the cluster); fails without it.

use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use latchkey_entra_sim::{Fixture, SignInOutcome};
use latchkey_store::{AuditQuery, Cipher, EncryptionKey, NewEnrollment, Outcome};
use latchkey_types::ObjectId;
use sqlx::Connection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;
use crate::portal::Browser;

const ADELE: &str = "adele.vance@contoso.com";
const ADELE_PHONE: &str = "+41 44 668 18 00";

fn postgres_url() -> String {
    std::env::var("LATCHKEY_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "LATCHKEY_TEST_POSTGRES_URL is not set: run tests/run (starts PostgreSQL), or \
             `bash tests/postgres/pg.sh install up` and `eval \"$(bash tests/postgres/pg.sh env)\"`"
        )
    })
}

/// A local SMS webhook provider that keeps every message body it is sent.
struct SmsHook {
    url: String,
    bodies: Arc<Mutex<Vec<serde_json::Value>>>,
    /// While set, every text is refused (503) and not kept: a provider outage.
    refuse: Arc<std::sync::atomic::AtomicBool>,
}

impl SmsHook {
    async fn start() -> SmsHook {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/sms", listener.local_addr().unwrap());
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let refuse = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let keep = Arc::clone(&bodies);
        let refusing = Arc::clone(&refuse);
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let keep = Arc::clone(&keep);
                let refusing = Arc::clone(&refusing);
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    // Headers, then Content-Length bytes of JSON.
                    let body = loop {
                        let n = conn.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        let text = String::from_utf8_lossy(&buf).to_string();
                        if let Some((head, rest)) = text.split_once("\r\n\r\n") {
                            let len = head
                                .lines()
                                .find_map(|l| {
                                    let (k, v) = l.split_once(':')?;
                                    k.eq_ignore_ascii_case("content-length")
                                        .then(|| v.trim().parse::<usize>().ok())?
                                })
                                .unwrap_or(0);
                            if rest.len() >= len {
                                break rest[..len].to_string();
                            }
                        }
                    };
                    if refusing.load(std::sync::atomic::Ordering::SeqCst) {
                        let _ = conn
                            .write_all(
                                b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                            )
                            .await;
                        return;
                    }
                    if let Ok(v) = serde_json::from_str(&body) {
                        keep.lock().unwrap().push(v);
                    }
                    let _ = conn
                        .write_all(
                            b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        )
                        .await;
                });
            }
        });
        SmsHook {
            url,
            bodies,
            refuse,
        }
    }

    /// How many texts arrived so far.
    fn count(&self) -> usize {
        self.bodies.lock().unwrap().len()
    }

    /// The code in the newest text to `to` (sends are queued: waits a little).
    async fn code_for(&self, to: &str) -> String {
        self.code_after(to, 0).await
    }

    /// The code in the newest text to `to` among those after the first `seen` (a code asked for
    /// now, not an earlier one; notices in between carry no code).
    async fn code_after(&self, to: &str, seen: usize) -> String {
        for _ in 0..100 {
            let bodies = self.bodies.lock().unwrap().clone();
            let found = bodies.iter().skip(seen).rev().find_map(|m| {
                (m["to"] == to)
                    .then(|| {
                        m["body"]
                            .as_str()
                            .unwrap_or_default()
                            .split(|c: char| !c.is_ascii_digit())
                            .find(|s| s.len() >= 6)
                            .unwrap_or_default()
                            .to_string()
                    })
                    .filter(|c| !c.is_empty())
            });
            if let Some(code) = found {
                return code;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no text message to {to}");
    }
}

struct Instance(Child);

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_healthy(port: u16) {
    let http = reqwest::Client::new();
    for _ in 0..200 {
        if let Ok(r) = http
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("latchkey serve on port {port} did not come up");
}

/// Two `latchkey serve` instances behind one public URL, sharing a PostgreSQL schema of their
/// own; Adele has a phone enrolled and the "Staff" policy allows `actions` with one text code.
struct TwoInstances {
    sim: latchkey_entra_sim::Sim,
    hook: SmsHook,
    seed: std::sync::Arc<dyn latchkey_store::Store>,
    adele: ObjectId,
    public: String,
    ports: (u16, u16),
    admin: sqlx::PgConnection,
    schema: String,
    instances: Vec<Instance>,
    _dir: TempDir,
}

impl TwoInstances {
    async fn start(actions: &str) -> TwoInstances {
        let _ = rustls::crypto::ring::default_provider().install_default();
        // The demo tenant (Adele, the SSPR Enabled group), with the test app registered beside the
        // demo's own (config_for signs in as the test app).
        let mut fixture = Fixture::demo();
        let mut app = fixture.apps[0].clone();
        app.client_id = TEST_CLIENT_ID.into();
        app.client_secrets = vec![TEST_SECRET.into()];
        app.service_principal_id = None;
        fixture.apps.push(app);
        let sim = sim(fixture).await;
        let dir = TempDir::new();

        // A schema of our own in the test database; the portal reaches it through `search_path`.
        let base = postgres_url();
        let schema = format!(
            "web_{}",
            ObjectId::new_random().to_string().replace('-', "")
        );
        let mut admin = sqlx::PgConnection::connect(&base).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut admin)
            .await
            .unwrap();
        // The password goes in a file (`store.password_file`), not in the URL of the config.
        let mut url = url::Url::parse(&base).unwrap();
        let password = url.password().expect("test URL has a password").to_string();
        url.set_password(None).unwrap();
        url.query_pairs_mut()
            .append_pair("options[search_path]", &schema);
        dir.write("db-password", &format!("{password}\n"));

        // Adele has a phone enrolled: seeded straight into the shared database with the portal's key.
        let key = EncryptionKey::load_or_create(&dir.0.join("latchkey.key")).unwrap();
        let seed = latchkey_store::open_with(
            url.as_str(),
            Some(latchkey_types::Secret::new(password.clone())),
            Cipher::new(&key),
        )
        .await
        .unwrap();
        let adele: ObjectId = sim.tenant().user_id(ADELE).unwrap().parse().unwrap();
        let now = time::OffsetDateTime::now_utc();
        seed.stage_enrollment(
            NewEnrollment {
                subject: adele,
                method: "sms".into(),
                data: serde_json::json!({ "phone": ADELE_PHONE }),
                secret: None,
            },
            now,
        )
        .await
        .unwrap();
        assert!(seed.activate_enrollment(&adele, "sms", now).await.unwrap());

        let group = sim.tenant().group_id("SSPR Enabled").unwrap();
        std::fs::create_dir_all(dir.0.join("policies")).unwrap();
        dir.write(
            "policies/staff.toml",
            &format!(
                "[[policy]]\nname = \"Staff\"\npriority = 10\n\
                 applies_to = [{{ id = \"{group}\", name = \"SSPR Enabled\" }}]\n\
                 actions = [{actions}]\nmethods = [\"sms\"]\nmethods_required = 1\n"
            ),
        );
        dir.write("hook-token", "hook-token\n");
        let hook = SmsHook::start().await;

        // Two instances, one public URL (the load balancer's), one database, one key.
        let (port_a, port_b) = (free_port(), free_port());
        let public = format!("http://127.0.0.1:{port_a}");
        let mut instances = Vec::new();
        for port in [port_a, port_b] {
            let cfg = config_for(
                &sim,
                &dir,
                &format!(
                    "[server]\nlisten = \"127.0.0.1:{port}\"\n\
                     [portal]\npublic_url = \"{public}\"\nresponse_deadline_ms = 50\n\
                 notice_lease_seconds = 2\n\
                     [store]\ndatabase_url = \"{url}\"\npassword_file = \"db-password\"\n\
                     key_file = \"latchkey.key\"\n\
                     [policies]\ndir = \"policies\"\n\
                     [sms]\nprovider = \"webhook\"\nurl = \"{}\"\nsecret_file = \"hook-token\"\n",
                    hook.url
                ),
            );
            let cfg = std::fs::rename(&cfg, dir.0.join(format!("latchkey-{port}.toml")))
                .map(|()| dir.0.join(format!("latchkey-{port}.toml")))
                .unwrap();
            instances.push(Instance(
                Command::new(env!("CARGO_BIN_EXE_latchkey"))
                    .args(["serve", "--config", cfg.to_str().unwrap()])
                    .env_remove("LATCHKEY_LOG")
                    .env_remove("PGPASSWORD")
                    .spawn()
                    .unwrap(),
            ));
        }
        wait_healthy(port_a).await;
        wait_healthy(port_b).await;
        TwoInstances {
            sim,
            hook,
            seed,
            adele,
            public,
            ports: (port_a, port_b),
            admin,
            schema,
            instances,
            _dir: dir,
        }
    }

    fn at(&self, port: u16) -> String {
        format!("http://127.0.0.1:{port}")
    }

    /// Adele verified with a text code (asked on A, answered on B): the browser at /action.
    async fn verified(&self) -> Browser {
        let mut b = Browser::at(&self.public);
        b.base = self.at(self.ports.0);
        assert_eq!(b.identify(ADELE).await.status, 303);
        b.base = self.at(self.ports.1);
        let seen = self.hook.count();
        let asked = b.ask_code("sms").await;
        assert!(asked.status < 400, "{} {}", asked.status, asked.body);
        let code = self.hook.code_after("+41446681800", seen).await;
        assert_eq!(
            b.submit_code("sms", &code).await.location.as_deref(),
            Some("/action")
        );
        b
    }

    async fn stop(mut self) {
        self.instances.clear();
        drop(self.seed);
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA {} CASCADE",
            self.schema
        )))
        .execute(&mut self.admin)
        .await
        .unwrap();
        self.admin.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reset_completes_across_two_instances_sharing_one_postgres_store() {
    let p = TwoInstances::start("\"reset\"").await;
    let (sim, hook, seed, adele, public) = (&p.sim, &p.hook, &p.seed, p.adele, &p.public);
    let (port_a, port_b) = p.ports;
    let at = |port: u16| p.at(port);

    let mut b = Browser::at(public);
    // Identify on A ...
    b.base = at(port_a);
    assert_eq!(b.identify(ADELE).await.status, 303);
    // ... ask for the code on B ...
    b.base = at(port_b);
    let asked = b.ask_code("sms").await;
    assert!(asked.status < 400, "{} {}", asked.status, asked.body);
    let code = hook.code_for("+41446681800").await;
    // ... a wrong guess on A and the right code on B: the tries and the code are shared.
    b.base = at(port_a);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    assert_ne!(
        b.submit_code("sms", wrong).await.location.as_deref(),
        Some("/action")
    );
    b.base = at(port_b);
    assert_eq!(
        b.submit_code("sms", &code).await.location.as_deref(),
        Some("/action")
    );
    // The used code does not work again, on either instance.
    b.base = at(port_a);
    assert_ne!(
        b.submit_code("sms", &code).await.location.as_deref(),
        Some("/action")
    );
    // Reset on A.
    let form = b.get("/reset").await;
    assert_eq!(form.status, 200, "{}", form.body);
    let new = "Quiet-Maple-Harbour-77";
    let done = b
        .post(
            "/reset",
            &[("csrf", &form.csrf()), ("password", new), ("confirm", new)],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("Your password has been changed"));
    assert_eq!(sim.sign_in(ADELE, new), SignInOutcome::Success);
    // The flow is over on B too.
    b.base = at(port_b);
    assert_eq!(b.get("/reset").await.location.as_deref(), Some("/"));

    // The audit trail is in PostgreSQL, written by the instances.
    let trail = seed
        .audit_events(&AuditQuery {
            subject: Some(adele),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert!(
        trail
            .iter()
            .any(|r| r.event.event_type == "reset" && r.event.outcome == Outcome::Success),
        "{:?}",
        trail
            .iter()
            .map(|r| &r.event.event_type)
            .collect::<Vec<_>>()
    );
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_password_file_without_a_postgres_url_is_a_named_configuration_error() {
    let dir = TempDir::new();
    dir.write("secret.txt", "x");
    let cfg = dir.write(
        "latchkey.toml",
        "[entra]\ntenant_id = \"contoso.onmicrosoft.com\"\n\
         client_id = \"11111111-1111-1111-1111-111111111111\"\nclient_secret_file = \"secret.txt\"\n\
         [store]\nurl = \"sqlite://latchkey.db\"\npassword_file = \"db-password\"\n",
    );
    let out = latchkey(&["check", "--config", cfg.to_str().unwrap()], &[]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("latchkey.toml") && err.contains("store.password_file"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn one_verification_makes_one_change_across_two_instances_under_a_burst() {
    use crate::burst::{audited, burst, form, one_winner};
    let p = TwoInstances::start("\"reset\", \"unlock\", \"temporary_access_pass\"").await;
    let (a, b) = (p.at(p.ports.0), p.at(p.ports.1));
    // Half the burst to each instance: the claim is in the shared database.
    let bases: Vec<String> = (0..8)
        .map(|i| if i % 2 == 0 { a.clone() } else { b.clone() })
        .collect();
    let writes = |method: &str, end: &str| {
        p.sim
            .requests()
            .iter()
            .filter(|r| r.method == method && r.path.ends_with(end))
            .count()
    };

    // Reset.
    let mut browser = p.verified().await;
    let csrf = browser.get("/reset").await.csrf();
    let new = "Quiet-Maple-Harbour-77";
    let answers = burst(
        &bases,
        &browser,
        "/reset",
        &form(&csrf, &[("password", new), ("confirm", new)]),
    )
    .await;
    one_winner(&answers, "Your password has been changed");
    assert_eq!(writes("PATCH", &format!("/users/{}", p.adele)), 1);
    assert_eq!(audited(&*p.seed, "reset", Outcome::Success).await, 1);
    assert_eq!(p.sim.sign_in(ADELE, new), SignInOutcome::Success);

    // Unlock: a cloud account changes only when a risk flag is dismissed (smart lockout ends by
    // itself), so Adele is at risk.
    assert!(p.sim.tenant().set_risk(ADELE, "high", "atRisk"));
    let mut browser = p.verified().await;
    let csrf = browser.get("/action").await.csrf();
    let answers = burst(&bases, &browser, "/unlock", &form(&csrf, &[])).await;
    one_winner(&answers, "flagged as at risk");
    assert_eq!(audited(&*p.seed, "risk.dismiss", Outcome::Success).await, 1);

    // Temporary Access Pass.
    let mut browser = p.verified().await;
    let csrf = browser.get("/action").await.csrf();
    let answers = burst(&bases, &browser, "/tap", &form(&csrf, &[])).await;
    one_winner(&answers, "id=\"tap-pass\"");
    assert_eq!(writes("POST", "/temporaryAccessPassMethods"), 1);
    assert_eq!(
        audited(&*p.seed, "temporary_access_pass", Outcome::Success).await,
        1
    );
    p.stop().await;
}

impl TwoInstances {
    /// Makes every statement on `table` fail (renamed away), as an outage of that part of the
    /// database would; [`TwoInstances::repair`] puts it back.
    async fn break_table(&mut self, table: &str) {
        let sql = format!("ALTER TABLE {}.{table} RENAME TO {table}_down", self.schema);
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut self.admin)
            .await
            .unwrap();
    }

    async fn repair(&mut self, table: &str) {
        let sql = format!("ALTER TABLE {}.{table}_down RENAME TO {table}", self.schema);
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut self.admin)
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_outage_is_a_503_that_keeps_the_users_place_and_never_pretends() {
    let mut p = TwoInstances::start("\"reset\"").await;
    let a = p.at(p.ports.0);
    let unavailable = "briefly unavailable";

    // Loading the flow fails: 503, the cookie stays, and the flow goes on once the store is back.
    let mut b = Browser::at(&p.public);
    b.base = a.clone();
    assert_eq!(b.identify(ADELE).await.status, 303);
    p.break_table("flows").await;
    let down = b.get("/verify").await;
    p.repair("flows").await;
    assert_eq!(down.status, 503, "{}", down.body);
    assert!(down.body.contains(unavailable), "{}", down.body);
    assert!(b.has_cookie("latchkey-flow"), "the user's place is kept");
    assert_eq!(b.get("/verify").await.status, 200);

    // The throttle cannot count: an outage, not "too many attempts".
    let mut c = Browser::at(&p.public);
    c.base = a.clone();
    p.break_table("throttle_hits").await;
    let refused = c.identify(ADELE).await;
    p.repair("throttle_hits").await;
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(refused.body.contains(unavailable), "{}", refused.body);
    assert!(
        !refused.body.contains("Too many attempts"),
        "{}",
        refused.body
    );

    // Enrollments cannot be read: an honest error, never a decoy flow that "sent a code".
    let mut d = Browser::at(&p.public);
    d.base = a.clone();
    p.break_table("enrollments").await;
    let refused = d.identify(ADELE).await;
    p.repair("enrollments").await;
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(!d.has_cookie("latchkey-flow"), "no flow was made");

    // The audit trail goes down during the password write: the change is made and said, and the
    // `started` record written before the write is there (its outcome unknown to the trail).
    let mut e = p.verified().await;
    let csrf = e.get("/reset").await.csrf();
    p.sim.add_fault(latchkey_entra_sim::Fault {
        method: Some(latchkey_entra_sim::Method::PATCH),
        path_contains: format!("/users/{}", p.adele),
        kind: latchkey_entra_sim::FaultKind::Latency(Duration::from_millis(1500)),
        times: 1,
    });
    let new = "Quiet-Maple-Harbour-77";
    let post = tokio::spawn(async move {
        e.post(
            "/reset",
            &[("csrf", &csrf), ("password", new), ("confirm", new)],
        )
        .await
    });
    // Once the `started` record is in (the PATCH is then under way, held 1.5 s), the audit
    // trail goes down.
    let mut begun = false;
    for _ in 0..100 {
        let trail = p
            .seed
            .audit_events(&AuditQuery {
                subject: Some(p.adele),
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        if trail
            .iter()
            .any(|r| r.event.event_type == "reset" && r.event.outcome == Outcome::Started)
        {
            begun = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(begun, "the change never started");
    p.break_table("audit_events").await;
    let done = post.await.unwrap();
    p.repair("audit_events").await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("Your password has been changed"));
    assert_eq!(p.sim.sign_in(ADELE, new), SignInOutcome::Success);
    let trail = p
        .seed
        .audit_events(&AuditQuery {
            subject: Some(p.adele),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let reset: Vec<Outcome> = trail
        .iter()
        .filter(|r| r.event.event_type == "reset")
        .map(|r| r.event.outcome)
        .collect();
    assert_eq!(reset, [Outcome::Started], "{reset:?}");
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_change_notice_survives_the_instance_that_made_the_change_being_killed() {
    let mut p = TwoInstances::start("\"reset\"").await;
    let mut b = p.verified().await;
    // The text provider is down when the password changes on A ...
    p.hook
        .refuse
        .store(true, std::sync::atomic::Ordering::SeqCst);
    b.base = p.at(p.ports.0);
    let csrf = b.get("/reset").await.csrf();
    let new = "Quiet-Maple-Harbour-77";
    let done = b
        .post(
            "/reset",
            &[("csrf", &csrf), ("password", new), ("confirm", new)],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    // ... and A is killed (SIGKILL: no shutdown, no drain) while its send queue retries.
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(p.instances.remove(0));
    let told = |bodies: &[serde_json::Value]| {
        bodies.iter().any(|m| {
            m["body"]
                .as_str()
                .is_some_and(|t| t.contains("password was changed"))
        })
    };
    assert!(
        !told(&p.hook.bodies.lock().unwrap()),
        "not delivered before the kill"
    );
    // Once the provider is back, the surviving instance delivers the stored notice.
    p.hook
        .refuse
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let mut delivered = false;
    for _ in 0..100 {
        if told(&p.hook.bodies.lock().unwrap()) {
            delivered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(delivered, "the notice was lost with the instance");
    p.stop().await;
}
