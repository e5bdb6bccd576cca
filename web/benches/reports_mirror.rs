//! Admin reports read from the directory mirror on a large simulated tenant (issue 15):
//! `cargo bench -p latchkey --bench reports_mirror` (release; prints a report, asserts nothing).
//!
//! A demo portal (`latchkey::demo::start_with`) with the mirror on, over the demo tenant plus
//! `LATCHKEY_BENCH_USERS` generated users (default 500,000) in `LATCHKEY_BENCH_GROUPS` generated
//! groups (default 20,000: "All Employees" > 10 "Division NN" > 200 departments > teams, plus
//! projects; every generated user is in a team, so in "All Employees"). It waits until the mirror
//! is usable (the initial full round, in this process), then times, `LATCHKEY_BENCH_REPEAT`
//! times each (default 3):
//!
//! - the coverage report over every user (`coverage_mirror::compute_best`, which must choose
//!   the mirror), for a policy set naming generated groups: the demo's "Staff" (SSPR Enabled),
//!   "Employees" (All Employees, minus Division 10) and "Division 02 strict" (Division 02).
//!   Twice: with `sources = ["latchkey"]` (the mirror and the store alone), and with
//!   `sources = ["latchkey", "entra"]` (plus Microsoft's registration report, one paged Graph
//!   read of every user, served by the simulator);
//! - the blast radius of a draft against that set (`blast_mirror::from_mirror`, what
//!   `blast_mirror::blast_radius` runs while the mirror is usable): "Employees" also excludes
//!   Division 01, and a new policy applies to Division 03 with 3 methods.
//!
//! Printed: wall times, users counted, Graph requests the simulator served meanwhile (its
//! request log: the report's, and any the portal made in the background), and this process's
//! memory (RSS, peak). Then where the time goes: the parts both reports share, each timed
//! alone (the store's pages of users with their direct groups, the nesting graph, resolving
//! every user's groups, enrolled methods, sorting the "unable" list). **The simulated tenant shares this process** (its
//! 500,000 users are most of the memory) and the 2 CPUs with the portal: the figures for the
//! portal's memory alone are `crates/mirror/benches/sync.rs`'s (the tenant in a child process).
#![allow(clippy::disallowed_methods)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::let_underscore_must_use,
    clippy::let_underscore_future,
    clippy::print_stdout
)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use latchkey::admin::reports::{coverage_mirror, source};
use latchkey::admin::simulate::blast_mirror;
use latchkey::demo::DemoOptions;
use latchkey_entra_sim::Fixture;
use latchkey_entra_sim::fixture::GenerateFixture;
use latchkey_policy::PolicySet;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `VmRSS` and `VmHWM` of this process, in MiB.
fn memory() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (kb("VmRSS:") / 1024.0, kb("VmHWM:") / 1024.0)
}

fn mem_line() -> String {
    let (rss, hwm) = memory();
    format!("RSS {rss:.0} MiB, peak {hwm:.0} MiB")
}

fn main() {
    let users = env_or("LATCHKEY_BENCH_USERS", 500_000);
    let groups = env_or("LATCHKEY_BENCH_GROUPS", 20_000);
    let repeat = env_or("LATCHKEY_BENCH_REPEAT", 3).max(1);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
        .with_writer(std::io::stderr)
        .try_init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(users, groups, repeat));
}

struct Groups {
    sspr: String,
    all: String,
    div: [String; 4],
}

fn group_ref(id: &str, name: &str) -> String {
    format!("{{ id = \"{id}\", name = \"{name}\" }}")
}

fn policy(
    name: &str,
    priority: u32,
    applies: &str,
    excludes: &str,
    required: usize,
    sources: &str,
) -> String {
    format!(
        "[[policy]]\nname = \"{name}\"\npriority = {priority}\napplies_to = [{applies}]\n\
         excludes = [{excludes}]\nactions = [\"reset\", \"unlock\", \"enroll\"]\n\
         methods = [\"email\", \"totp\", \"sms\"]\nsources = [{sources}]\nmethods_required = {required}\n"
    )
}

/// The running set (`draft == false`) or the draft compared with it.
fn policies(g: &Groups, sources: &str, draft: bool) -> PolicySet {
    let mut text = policy(
        "Staff",
        10,
        &group_ref(&g.sspr, "SSPR Enabled"),
        "",
        2,
        sources,
    );
    text.push_str(&policy(
        "Division 02 strict",
        20,
        &group_ref(&g.div[1], "Division 02"),
        "",
        3,
        sources,
    ));
    let mut excludes = group_ref(&g.div[3], "Division 10");
    if draft {
        excludes.push_str(", ");
        excludes.push_str(&group_ref(&g.div[0], "Division 01"));
        text.push_str(&policy(
            "Division 03 strict",
            30,
            &group_ref(&g.div[2], "Division 03"),
            "",
            3,
            sources,
        ));
    }
    text.push_str(&policy(
        "Employees",
        100,
        &group_ref(&g.all, "All Employees"),
        &excludes,
        2,
        sources,
    ));
    latchkey_policy::parse_sources(&[(PathBuf::from("bench.toml"), text)])
        .unwrap_or_else(|e| panic!("bench policies: {e:?}"))
}

/// Where a report's time goes: the parts both reports share, each timed alone.
async fn breakdown(store: &dyn latchkey_store::Store, set: &PolicySet) {
    use latchkey_mirror::Nesting;
    println!("\n## where the time goes (each part alone, same store)");
    let t0 = Instant::now();
    let nesting_edges = store.mirror_nesting().await.unwrap().len();
    let mut nesting = Nesting::load(store).await.unwrap();
    println!(
        "Nesting::load (twice, {nesting_edges} edges): {:.2} s",
        secs(t0.elapsed())
    );
    let mut read = Duration::ZERO;
    let mut resolve = Duration::ZERO;
    let mut enrolled = Duration::ZERO;
    let mut after = None;
    let (mut users, mut direct, mut transitive) = (0usize, 0usize, 0usize);
    let mut upns = Vec::new();
    let named: Vec<latchkey_types::ObjectId> = set
        .policies()
        .iter()
        .flat_map(|p| p.applies_to.iter().chain(&p.excludes).map(|g| g.id))
        .collect();
    let mut in_named = 0usize;
    loop {
        let t = Instant::now();
        let page = store
            .mirror_users_page(after, coverage_mirror::PAGE)
            .await
            .unwrap();
        read += t.elapsed();
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        let t = Instant::now();
        for u in &page {
            let (groups, _roles) = nesting.resolve(&u.direct);
            direct += u.direct.len();
            transitive += groups.len();
            in_named += usize::from(named.iter().any(|g| groups.contains(g)));
        }
        resolve += t.elapsed();
        let ids: Vec<latchkey_types::ObjectId> = page.iter().map(|u| u.id).collect();
        let t = Instant::now();
        store.enrolled_methods(&ids).await.unwrap();
        enrolled += t.elapsed();
        users += page.len();
        upns.extend(page.into_iter().map(|u| u.user_principal_name));
    }
    println!(
        "mirror_users_page x{} (pages of {}): {:.2} s for {users} users, {direct} direct memberships",
        users.div_ceil(coverage_mirror::PAGE as usize),
        coverage_mirror::PAGE,
        secs(read)
    );
    println!(
        "Nesting::resolve of every user: {:.2} s ({:.1} transitive groups per user; {in_named} in a named group)",
        secs(resolve),
        transitive as f64 / users.max(1) as f64
    );
    println!(
        "enrolled_methods, one batch per page (coverage only): {:.2} s",
        secs(enrolled)
    );
    // Coverage sorts its "unable" list with sort_by_key(to_lowercase): a key per comparison.
    let mut a = upns.clone();
    let t = Instant::now();
    a.sort_by_key(|u| u.to_lowercase());
    let by_key = t.elapsed();
    let t = Instant::now();
    upns.sort_by_cached_key(|u| u.to_lowercase());
    println!(
        "sorting {} UPNs case-insensitively: sort_by_key(to_lowercase) {:.2} s, sort_by_cached_key {:.2} s",
        upns.len(),
        secs(by_key),
        secs(t.elapsed())
    );
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

async fn run(users: usize, groups: usize, repeat: usize) {
    println!(
        "# Reports from the directory mirror: demo tenant + {users} generated users in {groups} generated groups"
    );
    println!(
        "# NOTE: the simulated tenant (Graph) shares this process and its 2 CPUs with the portal; \
         memory figures include the tenant's {users} users. Portal-only memory: crates/mirror/benches/sync.rs"
    );
    println!("memory at start: {}", mem_line());
    let mut fixture = Fixture::demo();
    fixture.generate = Some(GenerateFixture {
        users,
        groups,
        seed: 1,
        ..GenerateFixture::default()
    });
    let started = Instant::now();
    let demo = latchkey::demo::start_with(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        DemoOptions {
            fixture,
            // One full round at start; no incremental round during the measurements.
            mirror: Some(latchkey::config::DirectorySettings {
                mirror: true,
                sync_interval_seconds: 3600,
                max_lag_seconds: 7200,
                ..Default::default()
            }),
            ..DemoOptions::default()
        },
    )
    .await
    .expect("demo starts");
    println!(
        "tenant generated and portal started in {:.1} s; {}",
        secs(started.elapsed()),
        mem_line()
    );
    demo.sim.record_summary_only(true);
    let mirror = Arc::clone(demo.services.mirror.as_ref().expect("mirror on"));
    let synced = Instant::now();
    loop {
        if mirror.freshness().await.unwrap().usable() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let status = mirror.status().await.unwrap();
    println!(
        "mirror usable after {:.1} s more (initial full round in this process, tenant sharing the CPUs): \
         {} users, {} groups, {} roles, {} memberships; {}",
        secs(synced.elapsed()),
        status.counts.users,
        status.counts.groups,
        status.counts.roles,
        status.counts.memberships,
        mem_line()
    );
    demo.sim.clear_requests();

    let t = demo.sim.tenant();
    let id = |name: &str| {
        t.group_id(name)
            .unwrap_or_else(|| panic!("no group {name}"))
    };
    let g = Groups {
        sspr: id("SSPR Enabled"),
        all: id("All Employees"),
        div: [
            id("Division 01"),
            id("Division 02"),
            id("Division 03"),
            id("Division 10"),
        ],
    };
    let s = &demo.services;

    let mut summary = Vec::new();
    for (label, sources) in [
        ("sources = latchkey (mirror + store only)", "\"latchkey\""),
        (
            "sources = latchkey, entra (+ registration report from Graph)",
            "\"latchkey\", \"entra\"",
        ),
    ] {
        println!("\n## coverage report over every user, {label}");
        *s.policies.write().unwrap() = Arc::new(policies(&g, sources, false));
        let mut times = Vec::new();
        for run in 1..=repeat {
            demo.sim.clear_requests();
            let t0 = Instant::now();
            let report = coverage_mirror::compute_best(s).await.expect("coverage");
            let took = t0.elapsed();
            let requests = demo.sim.requests().len();
            times.push(took);
            let rows: Vec<String> = report
                .policies
                .iter()
                .map(|r| {
                    format!(
                        "{}: {} (ready {}, partial {}, none {})",
                        r.name, r.total, r.ready, r.partial, r.none
                    )
                })
                .collect();
            println!(
                "run {run}: {:.2} s, source {:?}, {} users evaluated, {} disabled, truncated {}, \
                 {} unable listed, {requests} Graph requests meanwhile, entra read {:?}; {}",
                secs(took),
                report.source,
                report.users,
                report.disabled,
                report.truncated,
                report.unable.len(),
                report.entra_read,
                mem_line()
            );
            if run == 1 {
                println!("  policy rows: {}", rows.join("; "));
            }
        }
        times.sort();
        summary.push(format!(
            "coverage, {label}: best {:.2} s, median {:.2} s (target <= 5 s)",
            secs(times[0]),
            secs(times[times.len() / 2])
        ));
    }

    println!(
        "\n## blast radius of a draft: Employees also excludes Division 01; new Division 03 strict (3 methods)"
    );
    let old = policies(&g, "\"latchkey\"", false);
    let new = policies(&g, "\"latchkey\"", true);
    let mut times = Vec::new();
    for run in 1..=repeat {
        demo.sim.clear_requests();
        let t0 = Instant::now();
        // What blast_mirror::blast_radius does while the mirror is usable.
        let used = source::usable(s.mirror.as_ref())
            .await
            .expect("mirror usable");
        let blast = blast_mirror::from_mirror(used.mirror.store(), &old, &new, blast_mirror::PAGE)
            .await
            .expect("blast radius");
        let took = t0.elapsed();
        times.push(took);
        println!(
            "run {run}: {:.2} s, {} groups named, {} users compared, {} disabled, blocked {}, \
             admitted {}, moved {}, role look-ups {}, {} Graph requests; {}",
            secs(took),
            blast.groups,
            blast.users,
            blast.disabled,
            blast.blocked,
            blast.admitted,
            blast.moved,
            blast.role_lookups,
            demo.sim.requests().len(),
            mem_line()
        );
    }
    times.sort();
    summary.push(format!(
        "blast radius: best {:.2} s, median {:.2} s (target <= 2 s)",
        secs(times[0]),
        secs(times[times.len() / 2])
    ));

    breakdown(s.mirror.as_ref().unwrap().store().as_ref(), &old).await;

    println!("\n## summary");
    for l in &summary {
        println!("{l}");
    }
    println!(
        "process peak memory (portal + simulated tenant of {users} users, one process): {}",
        mem_line()
    );
    demo.stop().await;
}
