//! The directory mirror on a large simulated tenant (issue 15): `cargo bench -p latchkey-mirror
//! --bench sync` (release; prints a report, asserts nothing).
//!
//! The simulated tenant (the demo tenant plus `LATCHKEY_BENCH_USERS` generated users, default
//! 500,000, in `LATCHKEY_BENCH_GROUPS` groups, default 20,000) runs in a child process (this
//! same program, re-started with `LATCHKEY_MIRROR_BENCH_SIM=1`), so this process's memory is
//! the portal side's alone. The store is a SQLite file in a temporary folder, or PostgreSQL
//! with `LATCHKEY_BENCH_POSTGRES_URL` (a fresh schema is the caller's business).
//!
//! Printed: the initial full round (wall time, pages, Graph requests, the most requests in any
//! 10 s, against Graph's identity throttle of 8,000 resource units per 10 s per app for a tenant
//! over 500 users, one unit per delta page), the process's memory before, after and at its
//! peak, per user; the store's size; an incremental round after 1,000 changes; and lookups as
//! identification does them (find by UPN, transitive memberships), p50/p99.
#![allow(clippy::disallowed_methods)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::let_underscore_must_use,
    clippy::print_stdout
)]

use std::io::{BufRead, BufReader, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use latchkey_entra_sim::fixture::GenerateFixture;
use latchkey_entra_sim::{Fixture, Sim};
use latchkey_graph::observe::{Attempt, GraphObserver};
use latchkey_graph::{Credential, GraphClient, GraphConfig};
use latchkey_mirror::{Mirror, Syncer, SyncerSettings};
use latchkey_store::{Cipher, EncryptionKey, Store};
use latchkey_types::{Secret, SignInName};
use latchkey_verify::{Clock, SystemClock};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `VmRSS` and `VmHWM` of this process, in KiB.
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (kb("VmRSS:"), kb("VmHWM:"))
}

/// When each Graph attempt ended (the throttle counts requests in sliding windows).
#[derive(Default)]
struct Times(Mutex<Vec<Instant>>);

impl GraphObserver for Times {
    fn attempt(&self, _: &Attempt<'_>) {
        self.0.lock().unwrap().push(Instant::now());
    }
}

impl Times {
    fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }
    fn max_in(&self, window: Duration) -> usize {
        let t = self.0.lock().unwrap();
        let mut best = 0;
        let mut start = 0;
        for end in 0..t.len() {
            while t[end] - t[start] > window {
                start += 1;
            }
            best = best.max(end - start + 1);
        }
        best
    }
}

fn main() {
    let users = env_or("LATCHKEY_BENCH_USERS", 500_000);
    let groups = env_or("LATCHKEY_BENCH_GROUPS", 20_000);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if std::env::var_os("LATCHKEY_MIRROR_BENCH_SIM").is_some() {
        rt.block_on(serve_tenant(users, groups));
    } else {
        rt.block_on(run(users, groups));
    }
}

/// Child mode: the tenant, until stdin closes.
async fn serve_tenant(users: usize, groups: usize) {
    let mut fixture = Fixture::demo();
    fixture.generate = Some(GenerateFixture {
        users,
        groups,
        seed: 1,
        ..GenerateFixture::default()
    });
    let sim = Sim::start_on(fixture, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("the simulated tenant starts");
    println!(
        "READY {} {} {}",
        sim.base_url(),
        sim.graph_base_url(),
        sim.tenant_id()
    );
    std::io::stdout().flush().unwrap();
    tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        while std::io::stdin().read_line(&mut line).unwrap_or(0) > 0 {
            line.clear();
        }
    })
    .await
    .unwrap();
}

async fn open_store(dir: &std::path::Path) -> (Arc<dyn Store>, String) {
    let key = EncryptionKey::generate().unwrap();
    match std::env::var("LATCHKEY_BENCH_POSTGRES_URL") {
        Ok(url) => (
            latchkey_store::open(&url, Cipher::new(&key)).await.unwrap(),
            "PostgreSQL".into(),
        ),
        Err(_) => {
            let path = dir.join("mirror.db");
            let url = format!("sqlite://{}", path.display());
            (
                latchkey_store::open(&url, Cipher::new(&key)).await.unwrap(),
                format!("SQLite file {}", path.display()),
            )
        }
    }
}

fn dir_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

async fn run(users: usize, groups: usize) {
    println!("# directory mirror: {users} generated users, {groups} generated groups");
    let started = Instant::now();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .env("LATCHKEY_MIRROR_BENCH_SIM", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let parts: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(parts.first(), Some(&"READY"), "{line}");
    println!(
        "tenant generated in its own process in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let mut config = GraphConfig::new(
        parts[3],
        "22222222-2222-2222-2222-222222222222",
        Credential::ClientSecret(Secret::new("demo-secret-value".into())),
    );
    config.authority_host = parts[1].trim_end_matches('/').to_string();
    config.graph_base_url = parts[2].trim_end_matches('/').to_string();
    config.timeouts.request = Duration::from_secs(60);
    let graph = GraphClient::new(config).unwrap();
    let times = Arc::new(Times::default());
    graph.observe(times.clone());
    let dir = std::env::temp_dir().join(format!("latchkey-mirror-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (store, where_) = open_store(&dir).await;
    println!("store: {where_}");
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    assert!(
        store
            .lease_mirror("bench", clock.now(), Duration::from_secs(3600))
            .await
            .unwrap()
    );
    let syncer = Syncer::new(
        graph.clone(),
        Arc::clone(&store),
        Arc::clone(&clock),
        SyncerSettings {
            interval: Duration::from_secs(60),
            lease: Duration::from_secs(3600),
            holder: "bench".into(),
            full_round_every: None,
        },
    );

    let (rss0, _) = memory();
    let t = Instant::now();
    let report = syncer.round().await.unwrap();
    let full = t.elapsed();
    let (rss1, peak) = memory();
    let counts = store.mirror_counts().await.unwrap();
    println!(
        "\n## initial full round\n{:.1} s wall, {} pages, {} Graph requests (incl. token), at most {} in any 10 s \
         (Graph's identity limit for a tenant over 500 users: 8,000 resource units per 10 s per app; \
         a delta page costs 1)",
        full.as_secs_f64(),
        report.pages,
        times.count(),
        times.max_in(Duration::from_secs(10))
    );
    println!(
        "mirror: {} users, {} groups, {} roles, {} direct memberships",
        counts.users, counts.groups, counts.roles, counts.memberships
    );
    let per_user = |kb: u64| kb as f64 * 1024.0 / counts.users.max(1) as f64;
    println!(
        "memory of this process: {:.1} MiB before, {:.1} MiB after (+{:.0} bytes per user), \
         peak {:.1} MiB ({:.0} bytes per user)",
        rss0 as f64 / 1024.0,
        rss1 as f64 / 1024.0,
        per_user(rss1.saturating_sub(rss0)),
        peak as f64 / 1024.0,
        per_user(peak)
    );
    if where_.starts_with("SQLite") {
        let size = dir_size(&dir);
        println!(
            "store on disk: {:.1} MiB ({:.0} bytes per user, database and WAL)",
            size as f64 / 1048576.0,
            size as f64 / counts.users.max(1) as f64
        );
    }

    // Churn, then an incremental round.
    let http = reqwest::Client::new();
    let churn: serde_json::Value = http
        .post(format!("{}/_sim/churn", parts[1].trim_end_matches('/')))
        .json(&serde_json::json!({ "count": 1000, "seed": 5 }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let before = times.count();
    let t = Instant::now();
    let report = syncer.round().await.unwrap();
    println!(
        "\n## incremental round after {} changes\n{:.2} s wall, {} pages, {} Graph requests",
        churn["applied"],
        t.elapsed().as_secs_f64(),
        report.pages,
        times.count() - before
    );

    // Every user with its direct groups, as the reports read them; a sample of UPNs.
    let t = Instant::now();
    let mut after = None;
    let mut listed = 0usize;
    let mut sample: Vec<String> = Vec::new();
    loop {
        let page = store.mirror_users_page(after, 5000).await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        for u in &page {
            if listed.is_multiple_of(97) {
                sample.push(u.user_principal_name.clone());
            }
            listed += 1;
        }
    }
    println!(
        "\n## every user with direct groups, pages of 5,000\n{listed} users in {:.2} s",
        t.elapsed().as_secs_f64()
    );

    // Identification's reads: find by UPN, then transitive memberships.
    let mirror = Mirror::new(
        Arc::clone(&store),
        Arc::clone(&clock),
        Duration::from_secs(600),
    );
    let mut find = Vec::new();
    let mut member = Vec::new();
    let n = sample.len();
    for upn in &sample {
        let login: SignInName = upn.parse().unwrap();
        let t = Instant::now();
        let user = mirror.find_user(&login).await.unwrap();
        find.push(t.elapsed());
        if let Some(u) = user {
            let t = Instant::now();
            mirror.memberships(&u.id).await.unwrap();
            member.push(t.elapsed());
        }
    }
    let pct = |v: &mut Vec<Duration>, p: f64| {
        v.sort();
        v.get(((v.len() as f64 - 1.0) * p) as usize)
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "\n## lookups ({} users found of {n})\nfind_user p50 {:.3} ms p99 {:.3} ms; memberships p50 {:.3} ms p99 {:.3} ms",
        member.len(),
        pct(&mut find, 0.5),
        pct(&mut find, 0.99),
        pct(&mut member, 0.5),
        pct(&mut member, 0.99)
    );
    drop(child.stdin.take());
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
