//! Builds a generated tenant and walks the delta queries over HTTP, printing the figures.
//!
//! `cargo run --release -p latchkey-entra-sim --example delta_bench [-- USERS GROUPS]`
//! (default 500000 20000): generation time and resident memory, then one full `/users/delta`
//! and `/groups/delta?$select=displayName,members` round at page sizes 200 and 999 (number of
//! requests, seconds), and one small churn round.
// A measuring tool, not product code: it stops at the first surprise.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::let_underscore_must_use,
    clippy::disallowed_methods
)]

use std::time::Instant;

use latchkey_entra_sim::fixture::GenerateFixture;
use latchkey_entra_sim::{Fixture, Sim};
use serde_json::Value;

/// `VmRSS` and `VmHWM` (peak) of this process in MiB, from /proc (Linux).
fn rss() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = |k: &str| {
        s.lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            / 1024
    };
    (kb("VmRSS:"), kb("VmHWM:"))
}

async fn walk(
    c: &reqwest::Client,
    token: &str,
    url: &str,
    page: usize,
) -> (usize, usize, usize, String) {
    let (mut requests, mut objects, mut members) = (0, 0, 0);
    let mut url = url.to_owned();
    loop {
        let b: Value = c
            .get(&url)
            .bearer_auth(token)
            .header("Prefer", format!("odata.maxpagesize={page}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        requests += 1;
        let v = b["value"].as_array().expect("a page");
        objects += v.len();
        members += v
            .iter()
            .map(|o| o["members@delta"].as_array().map_or(0, Vec::len))
            .sum::<usize>();
        match (b.get("@odata.nextLink"), b.get("@odata.deltaLink")) {
            (Some(n), _) => url = n.as_str().unwrap().to_owned(),
            (None, Some(d)) => return (requests, objects, members, d.as_str().unwrap().to_owned()),
            _ => panic!("neither link: {b}"),
        }
    }
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let users = args.first().copied().unwrap_or(500_000);
    let groups = args.get(1).copied().unwrap_or(20_000);
    println!(
        "size_of::<User>() = {} bytes, size_of::<Group>() = {} bytes",
        std::mem::size_of::<latchkey_entra_sim::state::User>(),
        std::mem::size_of::<latchkey_entra_sim::state::Group>()
    );
    let (before, _) = rss();
    let mut f = Fixture::test();
    f.generate = Some(GenerateFixture {
        users,
        groups,
        ..GenerateFixture::default()
    });
    let t0 = Instant::now();
    let sim = Sim::start(f).await.expect("starts");
    let built = t0.elapsed();
    let (after, peak) = rss();
    println!(
        "generated {users} users / {groups} groups in {:.2} s; RSS {before} → {after} MiB (peak {peak} MiB)",
        built.as_secs_f64()
    );

    let c = reqwest::Client::new();
    let token_url = format!("{}/{}/oauth2/v2.0/token", sim.base_url(), sim.tenant_id());
    let tok: Value = c
        .post(token_url)
        .form(&[
            ("client_id", "11111111-1111-1111-1111-111111111111"),
            ("client_secret", "test-secret-value"),
            ("scope", "https://graph.microsoft.com/.default"),
            ("grant_type", "client_credentials"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = tok["access_token"].as_str().unwrap().to_owned();
    sim.record_summary_only(true);
    let g = sim.graph_base_url();
    let users_url =
        format!("{g}/users/delta?$select=displayName,userPrincipalName,accountEnabled,mail");
    let groups_url = format!("{g}/groups/delta?$select=displayName,members");
    let mut links = (String::new(), String::new());
    for page in [200, 999] {
        let t = Instant::now();
        let (r, n, _, d) = walk(&c, &token, &users_url, page).await;
        println!(
            "/users/delta  page {page:>3}: {r:>5} requests, {n} users, {:.2} s",
            t.elapsed().as_secs_f64()
        );
        links.0 = d;
        let t = Instant::now();
        let (r, n, m, d) = walk(&c, &token, &groups_url, page).await;
        println!(
            "/groups/delta page {page:>3}: {r:>5} requests, {n} group objects, {m} members, {:.2} s",
            t.elapsed().as_secs_f64()
        );
        links.1 = d;
        sim.clear_requests();
    }
    let t = Instant::now();
    let summary = sim.tenant().churn(1_000, 1);
    println!(
        "churn 1000 changes: {:.2} s ({} users changed, {} created, {} deleted, {} groups changed)",
        t.elapsed().as_secs_f64(),
        summary.users_changed.len(),
        summary.users_created.len(),
        summary.users_deleted.len(),
        summary.groups_changed.len()
    );
    let t = Instant::now();
    let (r, n, _, _) = walk(&c, &token, &links.0, 999).await;
    let (r2, n2, m2, _) = walk(&c, &token, &links.1, 999).await;
    println!(
        "delta round after churn: users {r} requests / {n} objects, groups {r2} requests / {n2} objects / {m2} member changes, {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let (now, peak) = rss();
    println!("RSS at the end {now} MiB (peak {peak} MiB)");
    sim.stop().await;
}
