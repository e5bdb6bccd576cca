//! Load benchmark of the self-service reset flow (issue 3, "Benchmark").
//!
//! `cargo bench -p latchkey --bench flows` (release profile; prints a plain-text report).
//!
//! What it does, all in this one process:
//! - starts the demo (`latchkey::demo::start_with`) with a bigger tenant: the demo fixture plus
//!   `LATCHKEY_BENCH_USERS` (default 4000) generated users in "SSPR Enabled", each pre-enrolled
//!   with email + authenticator app. 127.0.0.1 is a trusted proxy and every flow sends its own
//!   `X-Forwarded-For`, so per-address throttles apply per (simulated) person as in production;
//!   every flow uses its own account, so per-account send limits are never reached. Emails go to
//!   an in-memory inbox the benchmark reads codes from (the demo outbox would keep every message);
//! - drives complete resets over HTTP the way a browser does (no redirects followed, cookies kept
//!   per flow): identify -> email code -> authenticator code -> new password, with 1, 8, 32 and
//!   64 concurrent clients for `LATCHKEY_BENCH_SECS` (default 8) seconds each, or until the
//!   level's even share of the users is used (every user resets once);
//! - runs everything twice: with the demo's 400 ms identify deadline (what users get; production
//!   defaults to 600 ms) and with no deadline (the server's own cost);
//! - run Q, security questions: the demo policy also lists `questions`, every generated user has
//!   three answers enrolled, and each flow answers them (3 argon2id checks through the portal's
//!   bounded hasher) before email + authenticator, at 2, 4, 6 and 8 clients; beside it the argon2
//!   bound: the same answer check alone, 1 and 2 at a time, before and after the load (the
//!   higher figure counts). Target: completed flows/s >= 80% of that bound;
//! - prints flows/s, p50/p99 per step, Graph requests per completed flow (from the simulator's
//!   request log), peak RSS, where the CPU went (per thread group), the CPU bound of the
//!   verification work alone, argon2id hashes/s, and the "HTTP cost" ratio against
//!   `GET /healthz` at 64 clients.
//!
//! Mail mode (issue 14): with `LATCHKEY_BENCH_SMTP` and `LATCHKEY_BENCH_SINK` set (`eval "$(tests/mta/mta.sh env)"`
//! after `tests/mta/mta.sh install && tests/mta/mta.sh up`), emails leave through the portal's
//! real SMTP client to a real relay (Postfix on loopback, queueing on disk), which relays them
//! to a sink in this process where the flows read their codes; a mail table then gives, per
//! level, code-mail latency (queued -> the relay's 250 after DATA) p50/p99 and the SMTP part of
//! it, request -> code in the sink p50/p99, mails the relay accepted per second and per flow
//! (below ~3: notices left queued behind the codes), and how busy the machine and the relay
//! (Postfix's processes, on the same CPUs) were.
//! `LATCHKEY_BENCH_SMTP_CLIENT=lettre` sends with lettre's stock transport, the client before
//! issue 14 (the "before" figures); see `flows/mail.rs`.
//!
//! Operations cost (issue 14): `LATCHKEY_BENCH_LOG=text` (the portal's info log, formatted, to
//! nowhere) against `LATCHKEY_BENCH_LOG=json LATCHKEY_BENCH_OPS=1` (JSON log, metrics recorded,
//! every audit event forwarded to a webhook receiver in another process): compare the process
//! CPU per flow of the two runs.
//!
//! Shorter runs: `LATCHKEY_BENCH_PARTS=no-deadline` (a comma list of deadline, no-deadline,
//! questions, cpu; default all) and `LATCHKEY_BENCH_LEVELS=1,64` (the client counts of runs A
//! and B; default 1,8,32,64).
//!
//! The simulated tenant answers Identity Protection (`riskyUsers`, which the reset step reads)
//! at most once a second, as Graph limits a tenant; then that limit paces every flow.
//! `LATCHKEY_BENCH_RISK_PER_SECOND=0` lifts it, to see the portal's own rate (and the mail path's).
//!
//! `LATCHKEY_BENCH_POSTGRES_URL` puts the portal's store in that PostgreSQL database instead of
//! the demo's SQLite file (every run migrates it and enrolls its users again; start from an
//! empty database to compare runs).
//!
//! Directory mirror (issue 15): `LATCHKEY_BENCH_MIRROR=1` turns the demo's mirror on
//! (`DemoOptions::mirror`, the production timings: a round every 60 s, usable within 600 s) and
//! waits until it is usable before the warm-up; identification then reads users and
//! memberships from the store instead of Graph. Incremental rounds that fall within a level
//! are counted in its Graph requests (the `delta` kinds).
//!
//! Each run (and the argon2 reference) is a fresh child process of this binary, so each peak RSS
//! (VmHWM) is that run's own. Nothing is asserted: this is a report. The simulator and the load generator share the
//! process (and the 2 CPUs) with the portal; the CPU table says how much each took.
#![allow(clippy::disallowed_methods)]
// tests read the system clock and randomness directly
// Test code: a failing test stops right there (unwrap, expect, panic), and what a test drops it
// does not need.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::let_underscore_must_use,
    clippy::let_underscore_future
)]

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use latchkey::demo::{Demo, DemoEnrollment, DemoOperations, DemoOptions};
use latchkey_entra_sim::Fixture;
use latchkey_notify::{BoxFuture, Channels, DeliveryError, EmailTransport, RenderedEmail};
use latchkey_store::NewEnrollment;
use latchkey_types::{EmailAddress, FlowId, ObjectId, Secret};
use latchkey_verify::{
    AuthenticatorApp, CodeBinding, CodeConfig, CodeIssuer, CodeKey, CodePurpose, Destination,
    Hasher, HasherConfig, MethodKind, QuestionId, QuestionOutcome, TotpConfig, TotpEnrollment,
};
use time::OffsetDateTime;

// In a folder of its own: a file directly in benches/ would be a benchmark target of its own.
#[path = "flows/mail.rs"]
mod mail;

const LEVELS: [usize; 4] = [1, 8, 32, 64];
const STEPS: [&str; 5] = [
    "identify",
    "send code",
    "verify code",
    "verify TOTP",
    "reset",
];
/// What each step is made of (a browser's requests).
const STEP_REQUESTS: [&str; 5] = [
    "GET / + POST /start",
    "GET /verify + POST /verify/email/start",
    "POST /verify/email",
    "GET /verify + POST /verify/totp/start + POST /verify/totp",
    "GET /action + GET /reset + POST /reset",
];
/// The security-questions scenario adds this step after identify.
const QUESTIONS_STEP: &str = "questions";
const QUESTIONS_REQUESTS: &str =
    "GET /verify + POST /verify/questions/start + POST /verify/questions (3 argon2id checks)";
/// Concurrency levels of the security-questions scenario: the hasher runs one hash per CPU and
/// a request waits at most 200 ms for one (then 503), so a few clients already saturate it.
const QUESTIONS_LEVELS: [usize; 4] = [2, 4, 6, 8];
/// Security-questions answers of every generated user (the same three for all: one argon2 run
/// set at setup instead of thousands; the stored hashes are still bound to each user).
const ANSWERS: [(&str, &str); 3] = [
    ("q1", "Springfield Elementary"),
    ("q2", "Ginger the cat"),
    ("q3", "Blue Corolla"),
];
const HEALTHZ_CLIENTS: usize = 64;
const HEALTHZ_RUN: Duration = Duration::from_secs(3);
const ARGON2_RUN: Duration = Duration::from_secs(3);

/// A comma-separated list from the environment, or `None` when unset.
fn env_list(name: &str) -> Option<Vec<String>> {
    let v = std::env::var(name).ok()?;
    Some(
        v.split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
    )
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    // `LATCHKEY_BENCH_LOG=text|json`: the portal's log at info level, formatted as in
    // production but written nowhere (the operations-cost comparison); default: warnings to
    // stderr.
    match std::env::var("LATCHKEY_BENCH_LOG").ok().as_deref() {
        Some(format @ ("text" | "json")) => {
            let builder = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
                .with_writer(std::io::sink);
            let _ = if format == "json" {
                builder.json().try_init()
            } else {
                builder.try_init()
            };
        }
        _ => {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_env("LATCHKEY_LOG")
                        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
                )
                .with_writer(std::io::stderr)
                .try_init();
        }
    }
    match std::env::var(PART).ok().as_deref() {
        Some(part) => {
            // One thread drives all the simulated browsers (~0.8 ms of CPU a flow, far from
            // its limit) and the portal's notification queue; a second only added its own
            // allocator arena to the peak RSS measured here.
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("bench-tokio")
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(child(part));
        }
        None => parent(),
    }
}

/// Environment variable that makes this binary run one part (a fresh process per part, so each
/// part's peak RSS is its own).
const PART: &str = "LATCHKEY_BENCH_PART";
/// Prefix of the lines a part prints for the final summary.
const SUMMARY: &str = "SUMMARY ";

fn parent() {
    use std::io::BufRead;
    let users = env_number("LATCHKEY_BENCH_USERS", 4000);
    let secs = env_number("LATCHKEY_BENCH_SECS", 8);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "Latchkey portal benchmark: complete self-service resets (email code + authenticator)"
    );
    println!(
        "{cpus} CPUs; portal + simulated Entra tenant + load generator in one process (a fresh \
         process per run); {users} generated users per run, {secs} s per concurrency level"
    );
    println!("Steps (a browser's requests each; a step's latency is the sum of its requests):");
    for (s, r) in STEPS.iter().zip(STEP_REQUESTS) {
        println!("  {s:<12} {r}");
    }
    println!(
        "  (run Q, security questions: {QUESTIONS_STEP} after identify: {QUESTIONS_REQUESTS})"
    );
    if let Some(m) = mail::Mail::from_env() {
        println!("Mail mode: {}", m.describe());
    }
    let exe = std::env::current_exe().expect("own path");
    let mut summaries = Vec::new();
    let parts = env_list("LATCHKEY_BENCH_PARTS").unwrap_or_else(|| {
        ["deadline", "no-deadline", "questions", "cpu"]
            .map(String::from)
            .to_vec()
    });
    for part in &parts {
        let mut child = std::process::Command::new(&exe)
            .env(PART, part)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("benchmark part starts");
        let out = child.stdout.take().expect("stdout");
        for line in std::io::BufReader::new(out).lines() {
            let line = line.expect("output");
            match line.strip_prefix(SUMMARY) {
                Some(s) => summaries.push(s.to_string()),
                None => println!("{line}"),
            }
        }
        let status = child.wait().expect("part ends");
        if !status.success() {
            summaries.push(format!("part {part} failed: {status}"));
        }
    }
    println!();
    println!("== Summary ==");
    for s in &summaries {
        println!("{s}");
    }
}

async fn child(part: &str) {
    let users = usize::try_from(env_number("LATCHKEY_BENCH_USERS", 4000)).unwrap_or(4000);
    let level_run = Duration::from_secs(env_number("LATCHKEY_BENCH_SECS", 8));
    match part {
        "deadline" => {
            run(
                "A: demo deadline 400 ms on identify (what users see)",
                latchkey::demo::DEMO_DEADLINE,
                users,
                level_run,
                false,
            )
            .await;
        }
        "no-deadline" => {
            run(
                "B: deadline 0 (the server's own cost)",
                Duration::ZERO,
                users,
                level_run,
                false,
            )
            .await;
        }
        "questions" => {
            // Flows are argon2-bound (tens a second): fewer users are enough.
            run(
                "Q: security questions (argon2id m=19 MiB t=2 p=1) + email + authenticator, deadline 0",
                Duration::ZERO,
                users.min(1500),
                level_run,
                true,
            )
            .await;
        }
        _ => {
            println!();
            println!(
                "== CPU reference: argon2id through latchkey-verify's Hasher (a fresh process) =="
            );
            println!("Memory at start: {}", memory());
            password_check_reference();
            argon2_reference().await;
        }
    }
}

/// Emails the portal sends: only the codes are kept, by recipient, until read.
#[derive(Default)]
struct Inbox {
    codes: Mutex<HashMap<String, String>>,
    arrived: tokio::sync::Notify,
    messages: AtomicUsize,
}

impl Inbox {
    /// Takes the code sent to `to`, waiting for the queued delivery.
    async fn take(&self, to: &str) -> Option<String> {
        let give_up = Instant::now() + Duration::from_secs(10);
        loop {
            let arrived = self.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            if let Some(c) = self.codes.lock().ok()?.remove(to) {
                return Some(c);
            }
            let left = give_up.checked_duration_since(Instant::now())?;
            let _ = tokio::time::timeout(left, arrived).await;
        }
    }
}

impl Inbox {
    fn put(&self, to: String, code: String) {
        if let Ok(mut codes) = self.codes.lock() {
            codes.insert(to, code);
        }
        self.arrived.notify_waiters();
    }
}

struct InboxTransport(Arc<Inbox>);

impl EmailTransport for InboxTransport {
    fn send<'a>(
        &'a self,
        to: &'a EmailAddress,
        email: &'a RenderedEmail,
    ) -> BoxFuture<'a, Result<(), DeliveryError>> {
        self.0.messages.fetch_add(1, Ordering::Relaxed);
        let text = email.text.expose();
        if let Some(rest) = text.split("code is:").nth(1) {
            let code: String = rest
                .lines()
                .next()
                .unwrap_or_default()
                .chars()
                .filter(char::is_ascii_digit)
                .collect();
            self.0.put(to.to_string(), code);
        }
        Box::pin(std::future::ready(Ok(())))
    }
}

/// One run (one deadline): a fresh demo, warm-up, the concurrency levels, the healthz baseline.
async fn run(label: &str, deadline: Duration, users: usize, level_run: Duration, questions: bool) {
    println!();
    println!("== Run {label} ==");
    println!("Memory at start: {}", memory());
    let mut fixture = Fixture::demo();
    let group = fixture
        .groups
        .iter_mut()
        .find(|g| g.display_name == "SSPR Enabled")
        .expect("demo fixture has SSPR Enabled");
    group.generated_members = u32::try_from(users).expect("user count");
    if let Some(n) = std::env::var("LATCHKEY_BENCH_RISK_PER_SECOND")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        fixture.throttling.identity_protection_per_second = n;
        println!("Simulated Identity Protection limit: {n} requests/s (0: none)");
    }
    let domain = fixture.tenant.initial_domain.clone();
    let tenant_users = fixture.users.len() + users;
    // Mail mode: a domain of this run's own, so a message a relay still held from an earlier run
    // cannot hand a flow a stale code.
    let mail = mail::Mail::from_env();
    let mail_domain = if mail.is_some() {
        format!("run{}.mail.example", std::process::id())
    } else {
        "mail.example".to_string()
    };
    let upns: Vec<String> = (1..=users)
        .map(|i| format!("gen-user-{i:04}@{domain}"))
        .collect();
    let enroll = upns
        .iter()
        .enumerate()
        .map(|(i, upn)| DemoEnrollment {
            upn: upn.clone(),
            email: Some(format!("person{i}@{mail_domain}")),
            phone: None,
            totp: true,
        })
        .collect();
    // The simulated tenant's own footprint, measured alone (then stopped; the demo starts its own).
    let rss0 = status_kb("VmRSS:").unwrap_or(0);
    let sim = latchkey_entra_sim::Sim::start(fixture.clone())
        .await
        .expect("simulator starts");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let sim_kb = status_kb("VmRSS:").unwrap_or(0).saturating_sub(rss0);
    sim.stop().await;
    println!(
        "Simulated tenant alone ({} users): +{:.1} MB RSS",
        tenant_users,
        sim_kb as f64 / 1024.0
    );
    let inbox = Arc::new(Inbox::default());
    let mail_stats = Arc::new(mail::MailStats::default());
    let email: Arc<dyn EmailTransport> = match &mail {
        Some(m) => {
            let to_inbox = Arc::clone(&inbox);
            m.start_sink(Arc::new(move |to, code| to_inbox.put(to, code)))
                .await;
            println!("Mail: {}", m.describe());
            m.transport(Arc::clone(&mail_stats))
        }
        None => Arc::new(InboxTransport(Arc::clone(&inbox))),
    };
    // `LATCHKEY_BENCH_OPS=1`: metrics recorded and every audit event forwarded to a webhook (a
    // receiver in another process, so its CPU is not the portal's), as in production.
    let receiver = std::env::var("LATCHKEY_BENCH_OPS")
        .is_ok_and(|v| v == "1")
        .then(SiemReceiver::start);
    if let Some(r) = &receiver {
        println!(
            "Operations: metrics recorded, audit events forwarded to {}",
            r.url
        );
    }
    let mirror = std::env::var("LATCHKEY_BENCH_MIRROR")
        .is_ok_and(|v| v == "1")
        .then(latchkey::config::DirectorySettings::default);
    if mirror.is_some() {
        println!("Directory mirror: on (rounds every 60 s; identification reads the store)");
    }
    if std::env::var_os("LATCHKEY_BENCH_POSTGRES_URL").is_some() {
        println!("Store: PostgreSQL (LATCHKEY_BENCH_POSTGRES_URL)");
    }
    let threads_before = threads();
    let setup = Instant::now();
    let demo = latchkey::demo::start_with_methods(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        DemoOptions {
            fixture,
            deadline,
            trusted_proxies: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
            enroll,
            channels: Some(Channels {
                email: Some(email),
                sms: None,
            }),
            operations: receiver.as_ref().map(|r| DemoOperations {
                webhook_url: r.url.clone(),
            }),
            mirror,
            store_url: std::env::var("LATCHKEY_BENCH_POSTGRES_URL").ok(),
            ..DemoOptions::default()
        },
        if questions { &["questions"] } else { &[] },
    )
    .await
    .expect("demo starts");
    if let Some(m) = demo.services.mirror.as_ref() {
        let t = Instant::now();
        while !m.freshness().await.is_ok_and(|f| f.usable()) {
            assert!(
                t.elapsed() < Duration::from_secs(600),
                "the mirror is usable within 10 minutes"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        println!(
            "Directory mirror usable {:.1} s after the portal started",
            t.elapsed().as_secs_f64()
        );
    }
    let mut questions_bound = if questions {
        Some(enroll_questions(&demo, &upns).await)
    } else {
        None
    };
    assert!(
        demo.totp_seed(&upns[0]).is_some(),
        "generated users are enrolled"
    );
    println!(
        "Setup: tenant with {} users, {users} enrolled (email + authenticator) in {:.1} s; memory now {}",
        tenant_users,
        setup.elapsed().as_secs_f64(),
        memory()
    );
    let ctx = Arc::new(Ctx {
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        base: demo.portal_url().to_string(),
        demo,
        inbox,
        mail_domain,
        totp: AuthenticatorApp::new(TotpConfig::new("Latchkey demo")).expect("totp"),
        upns,
        next_user: AtomicUsize::new(0),
        next_address: AtomicUsize::new(1),
        questions,
    });

    // Warm-up (not reported): connections, the app token, SQLite pages, allocator.
    // The bench counts Graph requests by kind: headers and bodies need not be kept.
    ctx.demo.sim.record_summary_only(true);
    ctx.demo.sim.clear_requests();
    let warm = level(&ctx, 4, Duration::from_secs(60), 8).await;
    mail_stats.take();
    if warm.completed < 4 {
        println!(
            "warm-up failed: {:?}",
            warm.errors.iter().take(3).collect::<Vec<_>>()
        );
    }
    let warm_requests = ctx.demo.sim.requests();
    let warm_tokens = warm_requests.iter().filter(|r| is_token(r)).count();
    println!(
        "Warm-up: {} flows, {} token request(s) (the app token is cached afterwards)",
        warm.completed, warm_tokens
    );

    // actix starts a server's threads when its task first runs: classify them now.
    let groups = ThreadGroups::after_start(&threads_before);
    if std::env::var_os("LATCHKEY_BENCH_THREADS").is_some() {
        for (tid, (name, _)) in threads() {
            println!("  thread {tid} {name}");
        }
        println!("  simulator: {:?}, portal: {:?}", groups.sim, groups.portal);
    }
    let hwm_before = memory();
    println!("Memory before the load: {hwm_before}");
    println!();
    let names = step_names(questions);
    let (mut head, mut unit) = (String::new(), String::new());
    for n in &names {
        head.push_str(&format!(" {n:>15}"));
        unit.push_str(&format!(" {:>15}", "p50/p99 ms"));
    }
    println!(
        "{:>7} {:>7} {:>8} |{head} | {:>6} {:>6} | {:>9}",
        "clients", "flows", "flows/s", "graph", "token", "VmHWM MB"
    );
    println!(
        "{:>7} {:>7} {:>8} |{unit} | {:>6} {:>6} | {:>9}",
        "", "(fail)", "", "/flow", "/flow", ""
    );
    let mut results = Vec::new();
    let mut log_mb = 0.0;
    let levels: Vec<usize> = if questions {
        QUESTIONS_LEVELS.to_vec()
    } else {
        env_list("LATCHKEY_BENCH_LEVELS")
            .map(|l| {
                l.iter()
                    .map(|n| n.parse().expect("LATCHKEY_BENCH_LEVELS: client counts"))
                    .collect()
            })
            .unwrap_or_else(|| LEVELS.to_vec())
    };
    for (n, &clients) in levels.iter().enumerate() {
        ctx.demo.sim.clear_requests();
        // Each user resets once (a second flow within the same 30 s would meet the TOTP replay
        // guard): the users left are shared out evenly, so a fast level ends before its time
        // rather than leaving the next one without users.
        let left = ctx
            .upns
            .len()
            .saturating_sub(ctx.next_user.load(Ordering::Relaxed));
        let cap = left / (levels.len() - n);
        let cpu_before = threads();
        let machine_before = machine_busy_ticks();
        let relay_before = mail::relay_cpu();
        let mut r = level(&ctx, clients, level_run, cap).await;
        // A relay process that ended meanwhile takes its time with it: never below zero.
        r.relay_cpu = (mail::relay_cpu() - relay_before).max(0.0);
        if mail.is_some() {
            r.mail = Some(mail_stats.take());
        }
        let mut cpu = groups.since(&cpu_before);
        cpu.machine = machine_busy_ticks().saturating_sub(machine_before) as f64 / 100.0;
        // Only counts are kept (the log itself is dropped and cleared at once: this process's
        // peak RSS is the portal's figure, the benchmark should add as little as it can).
        let requests = ctx.demo.sim.requests();
        ctx.demo.sim.clear_requests();
        let per_flow = |n: usize| n as f64 / r.completed.max(1) as f64;
        let tokens = requests.iter().filter(|q| is_token(q)).count();
        // HTTP requests: a `$batch` is one, its parts are listed by kind below.
        let graph = requests
            .iter()
            .filter(|q| q.path.starts_with("/v1.0") && !q.batch_part)
            .count();
        let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
        for q in &requests {
            *kinds.entry(request_kind(q)).or_default() += 1;
        }
        let mut cols = String::new();
        for s in &r.steps {
            cols.push_str(&format!(
                " {:>15}",
                format!("{:.1}/{:.1}", ms(pct(s, 50.0)), ms(pct(s, 99.0)))
            ));
        }
        println!(
            "{:>7} {:>7} {:>8.1} |{cols} | {:>6.2} {:>6.2} | {:>9.1}",
            clients,
            if r.failed > 0 {
                format!("{}({})", r.completed, r.failed)
            } else {
                r.completed.to_string()
            },
            r.completed as f64 / r.wall.as_secs_f64(),
            per_flow(graph),
            per_flow(tokens),
            hwm_mb(),
        );
        if clients == HEALTHZ_CLIENTS {
            let bytes: usize = requests
                .iter()
                .map(|q| {
                    q.path.len()
                        + q.query.len()
                        + q.body.len()
                        + q.headers
                            .iter()
                            .map(|(k, v)| k.len() + v.len())
                            .sum::<usize>()
                })
                .sum();
            log_mb = bytes as f64 / 1048576.0;
        }
        let log = RequestLog {
            total: requests.len(),
            graph,
            kinds,
        };
        drop(requests);
        results.push((clients, r, cpu, log));
    }

    // Details: errors, which Graph requests, where the CPU went, the verification CPU bound.
    for (clients, r, _, _) in &results {
        if !r.errors.is_empty() {
            println!(
                "  {clients} clients: {} failed flows, e.g. {:?}",
                r.failed,
                r.errors.iter().take(3).collect::<Vec<_>>()
            );
        }
        if r.exhausted {
            println!("  {clients} clients: ran out of enrolled users before the time was up");
        }
    }
    if let Some((clients, r, _, log)) = results.last() {
        println!();
        println!(
            "Graph requests per completed flow at {clients} clients, by kind ({} flows):",
            r.completed
        );
        for (k, n) in &log.kinds {
            println!("  {:>5.2}  {k}", *n as f64 / r.completed.max(1) as f64);
        }
    }
    println!();
    println!(
        "CPU time by thread group (CPU-seconds, and % of the {} CPUs over the level):",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "{:>7} | {:>13} {:>13} {:>13} {:>13} | {:>16} | {:>14} {:>15}",
        "clients",
        "portal",
        "simulator",
        "load+notify",
        "other",
        "other processes",
        "portal ms/flow",
        "process ms/flow"
    );
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    for (clients, r, cpu, _) in &results {
        let wall = r.wall.as_secs_f64() * cpus;
        let cell = |s: f64| format!("{s:.2} ({:.0}%)", 100.0 * s / wall);
        let flows = r.completed.max(1) as f64;
        let process = cpu.portal + cpu.sim + cpu.load + cpu.other;
        println!(
            "{:>7} | {:>13} {:>13} {:>13} {:>13} | {:>16} | {:>14.2} {:>15.2}",
            clients,
            cell(cpu.portal),
            cell(cpu.sim),
            cell(cpu.load),
            cell(cpu.other),
            cell((cpu.machine - process).max(0.0)),
            1e3 * cpu.portal / flows,
            1e3 * process / flows,
        );
    }
    println!(
        "  (portal = the portal's HTTP workers, incl. its Graph client and the store's SQLite"
    );
    println!("   statements, which run on the calling thread; simulator = the simulated tenant's");
    println!("   workers; load+notify = this benchmark's clients and the notification queue;");
    println!("   other = threads of none of these, e.g. the argon2 blocking pool in run Q;");
    println!("   other processes = the rest of the machine (other engineers' builds) meanwhile;");
    println!("   portal / process ms/flow = that CPU per completed flow)");
    let mail_rows: Vec<mail::Row> = results
        .iter()
        .filter_map(|(clients, r, cpu, _)| {
            Some(mail::Row {
                clients: *clients,
                flows: r.completed,
                wall: r.wall,
                mail: r.mail.as_ref()?,
                code_waits: &r.code_waits,
                machine_cpu: cpu.machine,
                portal_cpu: cpu.portal,
                relay_cpu: r.relay_cpu,
            })
        })
        .collect();
    let mail_summary = mail::report(&mail_rows, cpus);

    println!();
    println!(
        "CPU bound of the verification work alone (per flow: 1 code issue, 1 code verify, 1 TOTP check):"
    );
    for (clients, r, _, _) in &results {
        let t = verification_work(r.completed);
        println!(
            "  {clients:>2} clients: {} flows' work in {:.2} ms on 1 thread = {:.0} flows/s per CPU \
             (measured {:.1} flows/s end to end)",
            r.completed,
            ms(t),
            r.completed as f64 / t.as_secs_f64().max(1e-9),
            r.completed as f64 / r.wall.as_secs_f64()
        );
    }

    let mirror_label = if ctx.demo.services.mirror.is_some() {
        " [mirror on]"
    } else {
        ""
    };
    let mut summary = format!("{SUMMARY}Run {label}{mirror_label}:{mail_summary}");
    if let Some(before) = questions_bound.take() {
        // Measured again after the load and the higher figure kept: other processes on the
        // machine slow the reference too, and a low bound would flatter the ratio.
        println!();
        let after = argon2_bound(&ctx.demo.services.questions).await;
        questions_bound = Some(before.max(after));
    }
    if let Some(bound) = questions_bound {
        let (best_clients, best) = results
            .iter()
            .map(|(c, r, ..)| (*c, r.completed as f64 / r.wall.as_secs_f64()))
            .fold((0, 0.0), |a, b| if b.1 > a.1 { b } else { a });
        println!();
        for (clients, r, _, _) in &results {
            println!(
                "  {clients:>2} clients: {} flows, {} answer submissions refused as busy (503, \
                 retried after 50 ms)",
                r.completed, r.busy
            );
        }
        let share = 100.0 * best / bound.max(1e-9);
        println!(
            "Security questions: best {best:.1} completed flows/s (at {best_clients} clients) = \
             {share:.0}% of the argon2 bound {bound:.1} flows/s measured before and after the load \
             (the higher one; target >= 80%)"
        );
        summary.push_str(&format!(
            " best {best:.1} flows/s at {best_clients} clients = {share:.0}% of the argon2 bound \
             {bound:.1} flows/s (target >= 80%); peak RSS {:.1} MB (before the load {:.1} MB)",
            hwm_mb(),
            hwm_before_mb(&hwm_before),
        ));
    }

    // HTTP cost: a flow's requests against GET /healthz at the same concurrency.
    let flow64 = results
        .iter()
        .find(|(c, ..)| *c == HEALTHZ_CLIENTS)
        .map(|(_, r, cpu, _)| (r, cpu));
    let healthz = if flow64.is_some() {
        healthz_baseline(&ctx, &groups).await
    } else {
        Healthz {
            avg: Duration::ZERO,
            per_second: 0.0,
            count: 0,
            cpu: Cpu::default(),
        }
    };
    println!();
    if let Some((r, flow_cpu)) = flow64 {
        let flow_avg = avg(&r.requests);
        let posts_no_start = avg(&r.requests_without_start);
        println!(
            "HTTP cost at {HEALTHZ_CLIENTS} clients: a flow request averages {:.2} ms ({} requests/flow), \
             GET /healthz averages {:.2} ms ({:.0} req/s) -> ratio {:.1}x (target <= 4x)",
            ms(flow_avg),
            r.requests.len() / r.completed.max(1),
            ms(healthz.avg),
            healthz.per_second,
            flow_avg.as_secs_f64() / healthz.avg.as_secs_f64().max(1e-9)
        );
        println!(
            "  without POST /start (the deadline step): {:.2} ms -> ratio {:.1}x",
            ms(posts_no_start),
            posts_no_start.as_secs_f64() / healthz.avg.as_secs_f64().max(1e-9)
        );
        // The same comparison in thread CPU time, split by who spends it: in production the
        // simulator's share runs on Microsoft's servers and the load generator's in browsers.
        let per = |s: f64, n: usize| 1e6 * s / n.max(1) as f64;
        let (n_flow, n_health) = (r.requests.len(), healthz.count as usize);
        println!(
            "  CPU per request (thread time): flow request: portal {:.0} us + simulator {:.0} us + \
             load generator {:.0} us; GET /healthz: portal {:.0} us + load generator {:.0} us -> \
             the portal's own cost ratio {:.1}x",
            per(flow_cpu.portal, n_flow),
            per(flow_cpu.sim, n_flow),
            per(flow_cpu.load, n_flow),
            per(healthz.cpu.portal, n_health),
            per(healthz.cpu.load, n_health),
            per(flow_cpu.portal, n_flow) / per(healthz.cpu.portal, n_health).max(1e-9)
        );
        let best = results
            .iter()
            .map(|(_, r, ..)| r.completed as f64 / r.wall.as_secs_f64())
            .fold(0.0, f64::max);
        let graph = results
            .last()
            .map(|(_, r, _, q)| q.graph as f64 / r.completed.max(1) as f64)
            .unwrap_or_default();
        summary.push_str(&format!(
            " best {best:.1} flows/s; HTTP cost ratio {:.1}x at {HEALTHZ_CLIENTS} clients; \
             {graph:.2} Graph requests/flow; peak RSS {:.1} MB (before the load {:.1} MB)",
            flow_avg.as_secs_f64() / healthz.avg.as_secs_f64().max(1e-9),
            hwm_mb(),
            hwm_before_mb(&hwm_before),
        ));
    }
    if flow64.is_some() {
        println!(
            "The simulator's request log (kept in memory, cleared before each level) held {} \
             requests, about {log_mb:.1} MB of strings, at the end of the {HEALTHZ_CLIENTS}-client \
             level",
            results.last().map_or(0, |(.., q)| q.total)
        );
    }
    let ctx = Arc::try_unwrap(ctx).unwrap_or_else(|_| panic!("clients finished"));
    println!(
        "Emails delivered by the notification queue: {}",
        ctx.inbox.messages.load(Ordering::Relaxed)
    );
    ctx.demo.stop().await;
    println!("Peak RSS of this run's process: {}", memory());
    println!("{summary}");
}

/// What the simulator's request log of one level held, counted.
struct RequestLog {
    total: usize,
    /// Requests to Graph (`/v1.0/...`).
    graph: usize,
    /// By `request_kind`.
    kinds: BTreeMap<String, usize>,
}

struct Ctx {
    demo: Demo,
    /// One HTTP client (one connection pool) for every simulated browser: cookies are kept per
    /// flow by hand, and a client per task cost this process a TLS root store each (about
    /// 0.3 MB per client; it showed as the portal's RSS growing with concurrency).
    http: reqwest::Client,
    /// Run Q: every flow also answers the security questions.
    questions: bool,
    base: String,
    inbox: Arc<Inbox>,
    /// Domain of the generated users' email addresses (one per run in mail mode).
    mail_domain: String,
    totp: AuthenticatorApp,
    upns: Vec<String>,
    next_user: AtomicUsize,
    /// Each flow comes from its own client address (a person at their own machine).
    next_address: AtomicUsize,
}

#[derive(Default)]
struct LevelResult {
    completed: usize,
    failed: usize,
    exhausted: bool,
    wall: Duration,
    /// Per step (in `step_names` order), every completed flow's time.
    steps: Vec<Vec<Duration>>,
    /// Security-questions answers refused as busy (503) and sent again.
    busy: usize,
    /// Every HTTP request of completed flows.
    requests: Vec<Duration>,
    requests_without_start: Vec<Duration>,
    errors: Vec<String>,
    /// Every completed flow's wait from its send-code request to the code in the inbox, sorted.
    code_waits: Vec<Duration>,
    /// Mail mode: what the relay took.
    mail: Option<mail::MailLevel>,
    /// CPU-seconds the relay's processes (Postfix on this machine) used over the level.
    relay_cpu: f64,
}

/// `clients` concurrent clients run flows back to back until `run` has passed (or `max_flows`
/// have started, or the users are used up); in-flight flows finish.
async fn level(ctx: &Arc<Ctx>, clients: usize, run: Duration, max_flows: usize) -> LevelResult {
    let start = Instant::now();
    let started = Arc::new(AtomicUsize::new(0));
    let exhausted = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let ctx = Arc::clone(ctx);
        let started = Arc::clone(&started);
        let exhausted = Arc::clone(&exhausted);
        let http = ctx.http.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            while start.elapsed() < run && started.fetch_add(1, Ordering::Relaxed) < max_flows {
                let i = ctx.next_user.fetch_add(1, Ordering::Relaxed);
                let Some(upn) = ctx.upns.get(i) else {
                    exhausted.store(true, Ordering::Relaxed);
                    break;
                };
                out.push(flow(&ctx, &http, upn, i).await);
            }
            out
        }));
    }
    let mut r = LevelResult::default();
    for t in tasks {
        for f in t.await.expect("client task") {
            match f {
                Ok(f) => {
                    r.completed += 1;
                    r.busy += f.busy;
                    r.code_waits.push(f.code_wait);
                    r.steps.resize(f.steps.len().max(r.steps.len()), Vec::new());
                    for (s, d) in r.steps.iter_mut().zip(f.steps) {
                        s.push(d);
                    }
                    for (path, d) in f.requests {
                        if path != "POST /start" {
                            r.requests_without_start.push(d);
                        }
                        r.requests.push(d);
                    }
                }
                Err(e) => {
                    r.failed += 1;
                    if r.errors.len() < 10 {
                        r.errors.push(e);
                    }
                }
            }
        }
    }
    r.wall = start.elapsed();
    r.exhausted = exhausted.load(Ordering::Relaxed);
    for s in &mut r.steps {
        s.sort();
    }
    r.code_waits.sort();
    r
}

struct FlowTimes {
    steps: Vec<Duration>,
    /// From the send-code request to the code in the inbox.
    code_wait: Duration,
    busy: usize,
    requests: Vec<(&'static str, Duration)>,
}

struct Page {
    status: u16,
    location: Option<String>,
    body: String,
}

impl Page {
    fn csrf(&self) -> Result<String, String> {
        self.body
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .map(str::to_string)
            .ok_or_else(|| format!("no CSRF token in a {} page", self.status))
    }
}

/// One person's browser for one flow: a cookie jar and their address.
struct Browser<'a> {
    http: &'a reqwest::Client,
    base: &'a str,
    address: String,
    jar: BTreeMap<String, String>,
    requests: Vec<(&'static str, Duration)>,
}

impl Browser<'_> {
    async fn send(
        &mut self,
        label: &'static str,
        path: &str,
        form: Option<&[(&str, &str)]>,
    ) -> Result<Page, String> {
        let url = format!("{}{path}", self.base);
        let cookies = self
            .jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut req = match form {
            Some(f) => self.http.post(url).form(f).header("origin", self.base),
            None => self.http.get(url),
        };
        req = req
            .header("x-forwarded-for", &self.address)
            .header("accept-language", "en");
        if !cookies.is_empty() {
            req = req.header("cookie", cookies);
        }
        let t = Instant::now();
        let resp = req.send().await.map_err(|e| format!("{label}: {e}"))?;
        for v in resp.headers().get_all("set-cookie") {
            let Ok(text) = v.to_str() else { continue };
            let (pair, attrs) = text.split_once(';').unwrap_or((text, ""));
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            if attrs.to_ascii_lowercase().contains("max-age=0") || value.is_empty() {
                self.jar.remove(name);
            } else {
                self.jar.insert(name.to_string(), value.to_string());
            }
        }
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .map(str::to_string);
        let body = resp.text().await.map_err(|e| format!("{label}: {e}"))?;
        self.requests.push((label, t.elapsed()));
        Ok(Page {
            status,
            location,
            body,
        })
    }
}

fn expect(page: &Page, label: &str, status: u16, location: Option<&str>) -> Result<(), String> {
    if page.status != status || (location.is_some() && page.location.as_deref() != location) {
        let snippet: String = page
            .body
            .split("<main")
            .nth(1)
            .unwrap_or(&page.body)
            .chars()
            .take(300)
            .collect();
        return Err(format!(
            "{label}: got {} (location {:?}), expected {status} {location:?}: {snippet}",
            page.status, page.location
        ));
    }
    Ok(())
}

/// A complete reset of `upn`, the i-th enrolled user.
async fn flow(ctx: &Ctx, http: &reqwest::Client, upn: &str, i: usize) -> Result<FlowTimes, String> {
    let a = ctx.next_address.fetch_add(1, Ordering::Relaxed);
    let mut b = Browser {
        http,
        base: &ctx.base,
        address: format!("10.{}.{}.{}", (a >> 16) & 255, (a >> 8) & 255, a & 255),
        jar: BTreeMap::new(),
        requests: Vec::with_capacity(11),
    };
    let mut steps = Vec::with_capacity(6);
    let mut busy = 0;

    // 1. identify
    let t = Instant::now();
    let home = b.send("GET /", "/", None).await?;
    expect(&home, "GET /", 200, None)?;
    let csrf = home.csrf()?;
    let started = b
        .send(
            "POST /start",
            "/start",
            Some(&[("csrf", &csrf), ("login", upn)]),
        )
        .await?;
    expect(&started, "POST /start", 303, Some("/verify"))?;
    steps.push(t.elapsed());

    // 1b. security questions (run Q): an additional method, never one of the two required.
    if ctx.questions {
        let t = Instant::now();
        let choose = b.send("GET /verify", "/verify", None).await?;
        expect(&choose, "GET /verify (questions)", 200, None)?;
        let csrf = choose.csrf()?;
        let page = b
            .send(
                "POST /verify/questions/start",
                "/verify/questions/start",
                Some(&[("csrf", &csrf)]),
            )
            .await?;
        expect(&page, "POST /verify/questions/start", 200, None)?;
        let csrf = page.csrf()?;
        let form = [
            ("csrf", csrf.as_str()),
            ("answer_1", ANSWERS[0].1),
            ("answer_2", ANSWERS[1].1),
            ("answer_3", ANSWERS[2].1),
        ];
        loop {
            let answered = b
                .send("POST /verify/questions", "/verify/questions", Some(&form))
                .await?;
            // Every hashing thread busy for longer than the portal lets a request wait: the
            // page says "try again"; a person would, a little later.
            if answered.status == 503 && busy < 40 {
                busy += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            expect(&answered, "POST /verify/questions", 303, Some("/verify"))?;
            break;
        }
        steps.push(t.elapsed());
    }

    // 2. send an email code
    let t = Instant::now();
    let choose = b.send("GET /verify", "/verify", None).await?;
    expect(&choose, "GET /verify", 200, None)?;
    let csrf = choose.csrf()?;
    let requested = Instant::now();
    let sent = b
        .send(
            "POST /verify/email/start",
            "/verify/email/start",
            Some(&[("csrf", &csrf)]),
        )
        .await?;
    expect(&sent, "POST /verify/email/start", 200, None)?;
    steps.push(t.elapsed());
    let csrf = sent.csrf()?;

    // (the user reads the email: not part of any step)
    let code = ctx
        .inbox
        .take(&format!("person{i}@{}", ctx.mail_domain))
        .await
        .ok_or_else(|| format!("no code email for {upn}"))?;
    let code_wait = requested.elapsed();

    // 3. verify the code
    let t = Instant::now();
    let verified = b
        .send(
            "POST /verify/email",
            "/verify/email",
            Some(&[("csrf", &csrf), ("code", &code)]),
        )
        .await?;
    expect(&verified, "POST /verify/email", 303, Some("/verify"))?;
    steps.push(t.elapsed());

    // 4. authenticator app
    let t = Instant::now();
    let choose = b.send("GET /verify", "/verify", None).await?;
    expect(&choose, "GET /verify (2)", 200, None)?;
    let csrf = choose.csrf()?;
    let page = b
        .send(
            "POST /verify/totp/start",
            "/verify/totp/start",
            Some(&[("csrf", &csrf)]),
        )
        .await?;
    expect(&page, "POST /verify/totp/start", 200, None)?;
    let csrf = page.csrf()?;
    let seed = ctx
        .demo
        .totp_seed(upn)
        .ok_or_else(|| format!("{upn} has no seed"))?;
    let totp = ctx
        .totp
        .code_at(seed, OffsetDateTime::now_utc())
        .map_err(|e| e.to_string())?;
    let verified = b
        .send(
            "POST /verify/totp",
            "/verify/totp",
            Some(&[("csrf", &csrf), ("code", totp.expose())]),
        )
        .await?;
    expect(&verified, "POST /verify/totp", 303, Some("/action"))?;
    steps.push(t.elapsed());

    // 5. new password
    let t = Instant::now();
    let action = b.send("GET /action", "/action", None).await?;
    expect(&action, "GET /action", 200, None)?;
    let form = b.send("GET /reset", "/reset", None).await?;
    expect(&form, "GET /reset", 200, None)?;
    let csrf = form.csrf()?;
    let password = format!("Tq{i}!mz-Vorpal-Quince");
    let done = b
        .send(
            "POST /reset",
            "/reset",
            Some(&[
                ("csrf", &csrf),
                ("password", &password),
                ("confirm", &password),
            ]),
        )
        .await?;
    expect(&done, "POST /reset", 200, None)?;
    steps.push(t.elapsed());

    Ok(FlowTimes {
        steps,
        code_wait,
        busy,
        requests: b.requests,
    })
}

/// The step columns of a run.
fn step_names(questions: bool) -> Vec<&'static str> {
    let mut names = STEPS.to_vec();
    if questions {
        names.insert(1, QUESTIONS_STEP);
    }
    names
}

/// Enrolls [`ANSWERS`] for every generated user (stored as the portal's enrollment page stores
/// them: question ids in the data, the argon2id PHC strings sealed as the secret), then measures
/// the argon2 bound ([`argon2_bound`]) before the load.
async fn enroll_questions(demo: &Demo, upns: &[String]) -> f64 {
    let method = &demo.services.questions;
    let answers: Vec<(QuestionId, Secret<String>)> = ANSWERS
        .iter()
        .map(|(q, a)| {
            (
                QuestionId::new(q).expect("id"),
                Secret::new((*a).to_string()),
            )
        })
        .collect();
    let enrolled = method.enroll(&answers).await.expect("answers hash");
    let data = serde_json::json!({
        "questions": enrolled.iter().map(|a| a.question.as_str()).collect::<Vec<_>>(),
    });
    let hashes: Vec<&str> = enrolled.iter().map(|a| a.hash.as_str()).collect();
    let secret = serde_json::to_vec(&hashes).expect("json");
    let now = OffsetDateTime::now_utc();
    for upn in upns {
        let Some(id) = demo
            .sim
            .tenant()
            .user_id(upn)
            .and_then(|i| i.parse::<ObjectId>().ok())
        else {
            continue;
        };
        demo.store
            .stage_enrollment(
                NewEnrollment {
                    subject: id,
                    method: "questions".into(),
                    data: data.clone(),
                    secret: Some(Secret::new(secret.clone())),
                },
                now,
            )
            .await
            .expect("stage");
        demo.store
            .activate_enrollment(&id, "questions", now)
            .await
            .expect("activate");
    }
    argon2_bound(method).await
}

/// The portal's own answer check (3 argon2id runs through its bounded hasher) with [`ANSWERS`],
/// 1 and then as many at once as the hasher has permits, for [`ARGON2_RUN`] each: the best
/// checks per second, i.e. the most flows per second the argon2 work alone allows.
async fn argon2_bound(method: &latchkey_verify::SecurityQuestions) -> f64 {
    let answers: Vec<(QuestionId, Secret<String>)> = ANSWERS
        .iter()
        .map(|(q, a)| {
            (
                QuestionId::new(q).expect("id"),
                Secret::new((*a).to_string()),
            )
        })
        .collect();
    let enrolled = method.enroll(&answers).await.expect("answers hash");
    let mut bound: f64 = 0.0;
    // The portal's hasher has one permit per CPU (HasherConfig::default).
    let permits = std::thread::available_parallelism().map_or(1, |n| n.get());
    for tasks in [1, permits] {
        let start = Instant::now();
        let mut running = Vec::new();
        for _ in 0..tasks {
            let method = method.clone();
            let given: Vec<(QuestionId, Secret<String>)> = answers
                .iter()
                .map(|(q, a)| (q.clone(), Secret::new(a.expose().clone())))
                .collect();
            let enrolled = enrolled.clone();
            running.push(tokio::spawn(async move {
                let mut n = 0u64;
                while start.elapsed() < ARGON2_RUN {
                    let given = given
                        .iter()
                        .map(|(q, a)| (q.clone(), Secret::new(a.expose().clone())))
                        .collect();
                    let ok = method.check(Some(&enrolled), given).await.expect("check");
                    assert_eq!(ok, QuestionOutcome::Ok, "benchmark answers are right");
                    n += 1;
                }
                n
            }));
        }
        let mut n = 0;
        for t in running {
            n += t.await.expect("argon2 task");
        }
        let per_second = n as f64 / start.elapsed().as_secs_f64();
        println!(
            "argon2 bound: the portal's answer check (3 x argon2id m=19456 KiB t=2 p=1), {tasks} at \
             a time: {per_second:.1} checks/s = flows/s"
        );
        bound = bound.max(per_second);
    }
    println!("Memory after the argon2 reference: {}", memory());
    bound
}

struct Healthz {
    avg: Duration,
    per_second: f64,
    /// Requests answered.
    count: u32,
    /// Thread CPU time over the run, by group.
    cpu: Cpu,
}

/// `HEALTHZ_CLIENTS` clients send `GET /healthz` back to back (same client setup as the flows).
async fn healthz_baseline(ctx: &Arc<Ctx>, groups: &ThreadGroups) -> Healthz {
    let cpu_before = threads();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..HEALTHZ_CLIENTS {
        let base = ctx.base.clone();
        let http = ctx.http.clone();
        tasks.push(tokio::spawn(async move {
            let url = format!("{base}/healthz");
            // A sum and a count, not every sample: ~175,000 requests would otherwise add
            // megabytes of the benchmark's own to the peak RSS it reports.
            let (mut total, mut count) = (Duration::ZERO, 0u32);
            while start.elapsed() < HEALTHZ_RUN {
                let t = Instant::now();
                let ok = match http
                    .get(&url)
                    .header("x-forwarded-for", format!("10.255.0.{c}"))
                    .send()
                    .await
                {
                    Ok(r) => r.status().is_success() && r.text().await.is_ok(),
                    Err(_) => false,
                };
                if ok {
                    total += t.elapsed();
                    count += 1;
                }
            }
            (total, count)
        }));
    }
    let (mut total, mut count) = (Duration::ZERO, 0u32);
    for t in tasks {
        let (t, c) = t.await.expect("healthz task");
        total += t;
        count += c;
    }
    let wall = start.elapsed().as_secs_f64();
    Healthz {
        avg: total / count.max(1),
        per_second: f64::from(count) / wall,
        count,
        cpu: groups.since(&cpu_before),
    }
}

/// Time for `flows` flows' verification primitives on one thread: a code issued, the right code
/// verified, a TOTP check.
fn verification_work(flows: usize) -> Duration {
    let issuer =
        CodeIssuer::new(CodeKey::generate().expect("key"), CodeConfig::default()).expect("issuer");
    let app = AuthenticatorApp::new(TotpConfig::new("Latchkey demo")).expect("app");
    let setup = app
        .begin_enrollment(
            &"gen-user-0001@contoso.onmicrosoft.com"
                .parse()
                .expect("upn"),
        )
        .expect("setup");
    let now = OffsetDateTime::now_utc();
    let right = app.code_at(&setup.seed, now).expect("code");
    let binding = CodeBinding {
        flow: FlowId::new_random(),
        user: ObjectId::new_random(),
        method: MethodKind::Email,
        purpose: CodePurpose::Verification,
        destination: Destination::Email("person1@mail.example".parse().expect("email")),
    };
    let start = Instant::now();
    for _ in 0..flows {
        let (code, mut record) = issuer.issue(&binding, None, now).expect("issue");
        std::hint::black_box(issuer.verify(&mut record, &code, &binding, now));
        let mut e = TotpEnrollment {
            seed: setup.seed.clone(),
            last_step: None,
        };
        std::hint::black_box(app.check(&mut e, &right, now).expect("check"));
    }
    start.elapsed()
}

/// The new-password check of the reset step (banned-password score against the global list plus
/// a tenant list of 1,000 terms, common list, zxcvbn), with the benchmark's passwords.
fn password_check_reference() {
    let rules = latchkey_policy::PasswordRules {
        min_length: latchkey_policy::model::DEFAULT_MIN_PASSWORD_LENGTH,
        banned_words: vec!["contoso".into(), "password".into()],
        forbid_user_names: true,
    };
    let names = [
        "Generated User 0042",
        "Generated",
        "User 0042",
        "gen-user-0042",
    ];
    // A tenant at Microsoft's limit of the custom list: 1,000 terms.
    let tenant: Vec<String> = (0..1000).map(|i| format!("tenantword{i:03}")).collect();
    let n = 200usize;
    let start = Instant::now();
    for i in 0..n {
        let p = format!("Tq{i}!mz-Vorpal-Quince");
        let banned = latchkey_password::BannedTerms::global_with(
            tenant
                .iter()
                .map(String::as_str)
                .chain(rules.banned_words.iter().map(String::as_str)),
        );
        let checked = latchkey_password::check(&latchkey_password::Candidate {
            password: &p,
            confirm: Some(&p),
            rules: &rules,
            user_names: &names,
            banned: &banned,
        });
        assert!(
            std::hint::black_box(checked).is_ok(),
            "benchmark password passes"
        );
    }
    println!(
        "New-password check (rules + banned-password score with 1,000 tenant terms + common list + zxcvbn), as in POST /reset: {:.2} ms per call (1 thread)",
        ms(start.elapsed()) / n as f64
    );
    // The worst input found by an attack: a 256-character pattern zxcvbn searched for seconds
    // before its input was capped at 32 characters.
    let unit = "4@8({[<369!|1705$+2%";
    let crafted: String = unit.repeat(13).chars().take(256).collect();
    let banned = latchkey_password::BannedTerms::global_with(tenant.iter().map(String::as_str));
    let start = Instant::now();
    let verdict = latchkey_password::check(&latchkey_password::Candidate {
        password: &crafted,
        confirm: None,
        rules: &rules,
        user_names: &names,
        banned: &banned,
    });
    std::hint::black_box(verdict.is_ok());
    println!(
        "New-password check of the crafted 256-character password: {:.1} ms",
        ms(start.elapsed())
    );
}

/// argon2id (the security-questions hash) through the portal's `Hasher`, 1 and 2 at a time.
async fn argon2_reference() {
    for threads in [1usize, 2] {
        let hasher = Hasher::new(HasherConfig {
            max_concurrent: threads,
            max_wait: Duration::from_secs(10),
            ..HasherConfig::default()
        })
        .expect("hasher");
        for _ in 0..threads {
            let _ = hasher.hash(Secret::new("warm up".into())).await;
        }
        let start = Instant::now();
        let mut tasks = Vec::new();
        for t in 0..threads {
            let hasher = hasher.clone();
            tasks.push(tokio::spawn(async move {
                let mut n = 0u64;
                while start.elapsed() < ARGON2_RUN {
                    hasher
                        .hash(Secret::new(format!("answer {t} {n}")))
                        .await
                        .expect("hash");
                    n += 1;
                }
                n
            }));
        }
        let mut n = 0;
        for t in tasks {
            n += t.await.expect("argon2 task");
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "argon2id m=19456 KiB t=2 p=1, {threads} thread(s): {:.1} hashes/s ({:.1} ms each per thread)",
            n as f64 / secs,
            1e3 * secs * threads as f64 / n.max(1) as f64
        );
        println!("  memory after: {}", memory());
    }
}

fn is_token(r: &latchkey_entra_sim::RecordedRequest) -> bool {
    r.path.contains("/oauth2/") && r.path.ends_with("/token")
}

/// `GET /v1.0/users/{id}/transitiveMemberOf` style labels.
fn request_kind(r: &latchkey_entra_sim::RecordedRequest) -> String {
    if is_token(r) {
        return format!("{} token", r.method);
    }
    let path: Vec<String> = r
        .path
        .split('/')
        .map(|s| {
            if s.len() >= 32 && s.contains('-') {
                "{id}".to_string()
            } else {
                s.to_string()
            }
        })
        .collect();
    let query = if r.query.contains("%24filter") || r.query.contains("$filter") {
        "?$filter=..."
    } else {
        ""
    };
    let part = if r.batch_part { " (in a $batch)" } else { "" };
    format!("{} {}{query}{part}", r.method, path.join("/"))
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn avg(v: &[Duration]) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    v.iter().sum::<Duration>() / u32::try_from(v.len()).unwrap_or(u32::MAX)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn status_kb(field: &str) -> Option<u64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn hwm_mb() -> f64 {
    status_kb("VmHWM:").unwrap_or(0) as f64 / 1024.0
}

fn memory() -> String {
    format!(
        "VmHWM {:.1} MB, VmRSS {:.1} MB",
        hwm_mb(),
        status_kb("VmRSS:").unwrap_or(0) as f64 / 1024.0
    )
}

fn hwm_before_mb(text: &str) -> f64 {
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.0)
}

/// Busy ticks of all CPUs (everything but idle and iowait) from the first line of /proc/stat.
fn machine_busy_ticks() -> u64 {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return 0;
    };
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let total: u64 = fields.iter().take(8).sum();
    total.saturating_sub(fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0))
}

/// Threads of this process: tid -> (name, CPU ticks).
fn threads() -> BTreeMap<u32, (String, u64)> {
    let mut out = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(tid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat[open + 1..close].to_string();
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let ticks = fields
            .get(11)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
            + fields
                .get(12)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0);
        out.insert(tid, (name, ticks));
    }
    out
}

#[derive(Default)]
struct Cpu {
    /// Busy CPU-seconds of the whole machine (every process).
    machine: f64,
    portal: f64,
    sim: f64,
    load: f64,
    other: f64,
}

/// Which threads belong to whom. The demo starts the simulator's HTTP workers before the
/// portal's, so of the actix workers created by `start_with` the older half is the simulator's.
struct ThreadGroups {
    sim: Vec<u32>,
    portal: Vec<u32>,
}

impl ThreadGroups {
    fn after_start(before: &BTreeMap<u32, (String, u64)>) -> Self {
        let workers: Vec<u32> = threads()
            .into_iter()
            .filter(|(tid, (name, _))| !before.contains_key(tid) && name.starts_with("actix"))
            .map(|(tid, _)| tid)
            .collect();
        let half = workers.len() / 2;
        Self {
            sim: workers[..half].to_vec(),
            portal: workers[half..].to_vec(),
        }
    }

    /// CPU time per group since `before` (a [`threads`] snapshot), thread by thread: threads
    /// that ended meanwhile (idle blocking-pool threads) drop out instead of making a group's
    /// time negative.
    fn since(&self, before: &BTreeMap<u32, (String, u64)>) -> Cpu {
        let mut c = Cpu::default();
        for (tid, (name, ticks)) in threads() {
            let earlier = before.get(&tid).map_or(0, |(_, t)| *t);
            // USER_HZ is 100 on every Linux this runs on.
            let s = ticks.saturating_sub(earlier) as f64 / 100.0;
            if self.portal.contains(&tid) {
                c.portal += s;
            } else if self.sim.contains(&tid) {
                c.sim += s;
            } else if name.starts_with("bench-tokio") {
                c.load += s;
            } else {
                c.other += s;
            }
        }
        c
    }
}

/// A webhook receiver in its own process (Python's standard library): answers 204 to every
/// batch, so the forwarding cost measured is the portal's alone.
struct SiemReceiver {
    url: String,
    child: std::process::Child,
}

impl SiemReceiver {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let script = format!(
            "import http.server\n\
             class H(http.server.BaseHTTPRequestHandler):\n\
             \x20   protocol_version = 'HTTP/1.1'\n\
             \x20   def do_POST(self):\n\
             \x20       self.rfile.read(int(self.headers.get('content-length', 0)))\n\
             \x20       self.send_response(204); self.send_header('content-length', '0'); self.end_headers()\n\
             \x20   def log_message(self, *a): pass\n\
             http.server.ThreadingHTTPServer(('127.0.0.1', {port}), H).serve_forever()\n"
        );
        let child = std::process::Command::new("python3")
            .args(["-c", &script])
            .spawn()
            .expect("python3 runs the receiver");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            url: format!("http://127.0.0.1:{port}/ingest"),
            child,
        }
    }
}

impl Drop for SiemReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
