//! Coverage report on a large simulated tenant (issue 11): `cargo bench -p latchkey --bench
//! coverage` (release profile; prints a plain-text report; nothing is asserted).
//!
//! The demo tenant plus `LATCHKEY_BENCH_USERS` (default 50,000) generated users in "SSPR
//! Enabled": 45% with a mobile phone registered in Entra, 35% with an email method, some with
//! both, none enrolled in Latchkey. The demo policy accepts Entra-registered methods, so the
//! report must learn every user's methods. It runs twice against the same tenant:
//! - with Microsoft's registration report (`userRegistrationDetails`, one paged read);
//! - with the tenant refusing the report (no Entra ID P1/P2): `phoneMethods` + `emailMethods`
//!   per user.
//!
//! Each run prints its wall time, the Graph requests it made (from the simulator's request log)
//! and the ready/partial/none counts (both runs must agree). The simulator shares the process and
//! the 2 CPUs with the report: the times include serving every Graph request.
#![allow(clippy::disallowed_methods)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::let_underscore_must_use,
    clippy::let_underscore_future
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use latchkey::admin::reports::coverage;
use latchkey::demo::DemoOptions;
use latchkey_entra_sim::Fixture;
use latchkey_entra_sim::fixture::{PhoneFixture, UserFixture};

fn main() {
    let users: usize = std::env::var("LATCHKEY_BENCH_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(users));
}

fn tenant(users: usize) -> Fixture {
    let mut fixture = Fixture::demo();
    let domain = fixture.tenant.initial_domain.clone();
    let mut upns = Vec::with_capacity(users);
    for i in 0..users {
        let upn = format!("bench-{i:06}@{domain}");
        let mut u = UserFixture {
            upn: upn.clone(),
            display_name: format!("Bench User {i}"),
            password: "Bench-User-2024!".into(),
            ..UserFixture::default()
        };
        // Deterministic spread: 45% phone, 35% email (some both), the rest nothing.
        if i % 20 < 9 {
            u.methods.phones.push(PhoneFixture {
                phone_type: "mobile".into(),
                number: format!("+41 79{:07}", i % 10_000_000),
                sms_sign_in_state: None,
            });
        }
        if i % 20 >= 6 && i % 20 < 13 {
            u.methods.email = Some(format!("bench{i}@mail.example"));
        }
        fixture.users.push(u);
        upns.push(upn);
    }
    let group = fixture
        .groups
        .iter_mut()
        .find(|g| g.display_name == "SSPR Enabled")
        .expect("demo fixture has SSPR Enabled");
    group.members.extend(upns);
    fixture
}

async fn run(users: usize) {
    println!("== Coverage report, {users} generated users + the demo tenant ==");
    let started = Instant::now();
    let demo = latchkey::demo::start_with(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        DemoOptions {
            fixture: tenant(users),
            ..DemoOptions::default()
        },
    )
    .await
    .expect("demo starts");
    println!(
        "Tenant and portal ready in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let s = &demo.services;
    for (label, premium) in [
        ("registration report (userRegistrationDetails)", true),
        ("per-user reads (phoneMethods + emailMethods)", false),
    ] {
        demo.sim.tenant().set_premium(premium);
        let before = demo.sim.requests().len();
        let t = Instant::now();
        let report = coverage::compute_at_most(
            Arc::clone(&s.directory),
            Arc::clone(&s.store),
            s.policies(),
            users + 1_000,
        )
        .await
        .expect("coverage");
        let took = t.elapsed();
        let requests = demo.sim.requests().len() - before;
        let row = &report.policies[0];
        println!(
            "{label}: {:.1} s, {requests} Graph requests ({:.2} per user); {} users: ready {}, partial {}, none {}; Entra read: {:?}",
            took.as_secs_f64(),
            requests as f64 / report.users.max(1) as f64,
            report.users,
            row.ready,
            row.partial,
            row.none,
            report.entra_read,
        );
    }
    demo.stop().await;
}
