//! The CPU bound of verification: how many argon2id, HMAC-code and TOTP operations this machine
//! does per second, through the crate's public API. The portal benchmark (issue 3) compares its
//! completed flows per second against these figures.
//!
//! `cargo bench -p latchkey-verify` (release profile). Prints one line per figure.
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

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use latchkey_types::{FlowId, ObjectId, Secret};
use latchkey_verify::{
    AuthenticatorApp, CodeBinding, CodeConfig, CodeIssuer, CodeKey, CodePurpose, Destination,
    Hasher, HasherConfig, MethodKind, TotpConfig, TotpEnrollment,
};
use time::OffsetDateTime;

const ARGON2_RUN: Duration = Duration::from_secs(4);
const FAST_RUN: Duration = Duration::from_secs(1);

fn main() {
    println!(
        "latchkey-verify CPU bound ({} CPUs available)",
        available_cpus()
    );
    for threads in [1usize, 2] {
        argon2(threads);
    }
    hmac_codes();
    totp();
}

fn available_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// argon2id (m=19456 KiB, t=2, p=1) hash + verify pairs through `Hasher`, with `threads`
/// permits and `threads` concurrent callers on a multi-threaded runtime.
fn argon2(threads: usize) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let hasher = Hasher::new(HasherConfig {
            max_concurrent: threads,
            max_wait: Duration::from_secs(10),
            ..HasherConfig::default()
        })
        .expect("hasher");
        // Warm-up: the first hashes in a process page-fault their fresh 19 MiB.
        for _ in 0..threads * 2 {
            let phc = hasher.hash(Secret::new("warm up".into())).await.expect("hash");
            let _ = hasher.verify(Secret::new("warm up".into()), Some(phc)).await;
        }
        let load = Load::start();
        let start = Instant::now();
        let mut tasks = Vec::new();
        for t in 0..threads {
            let hasher = hasher.clone();
            tasks.push(tokio::spawn(async move {
                let mut pairs = 0u64;
                let mut hash_time = Duration::ZERO;
                let mut verify_time = Duration::ZERO;
                while start.elapsed() < ARGON2_RUN {
                    let answer = format!("answer {t} {pairs}");
                    let t0 = Instant::now();
                    let phc = hasher.hash(Secret::new(answer.clone())).await.expect("hash");
                    let t1 = Instant::now();
                    let ok = hasher.verify(Secret::new(answer), Some(phc)).await.expect("verify");
                    verify_time += t1.elapsed();
                    hash_time += t1 - t0;
                    assert!(ok);
                    pairs += 1;
                }
                (pairs, hash_time, verify_time)
            }));
        }
        let (mut pairs, mut hash_time, mut verify_time) = (0u64, Duration::ZERO, Duration::ZERO);
        for task in tasks {
            let (p, h, v) = task.await.expect("task");
            pairs += p;
            hash_time += h;
            verify_time += v;
        }
        let secs = start.elapsed().as_secs_f64();
        let per_pair = pairs.max(1) as f64;
        let others = load.other_cpu_seconds();
        println!(
            "argon2id m=19456 t=2 p=1, {threads} thread(s): {:.1} hash+verify pairs/s = {:.1} argon2 runs/s \
             (hash {:.1} ms, verify {:.1} ms per call incl. pool hand-off)",
            pairs as f64 / secs,
            2.0 * pairs as f64 / secs,
            hash_time.as_secs_f64() * 1e3 / per_pair,
            verify_time.as_secs_f64() * 1e3 / per_pair,
        );
        if let Some(others) = others {
            println!("  (other processes used {others:.1} CPU-s of the machine during these {secs:.1} s)");
        }
    });
}

fn rate(label: &str, mut op: impl FnMut()) {
    // Warm-up, then as many iterations as fit in FAST_RUN, checking the clock every 1,000.
    for _ in 0..1_000 {
        op();
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < FAST_RUN {
        for _ in 0..1_000 {
            op();
        }
        n += 1_000;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{label}: {:.0} /s ({:.2} µs each, 1 thread)",
        n as f64 / secs,
        secs * 1e6 / n as f64
    );
}

fn hmac_codes() {
    let issuer =
        CodeIssuer::new(CodeKey::generate().expect("key"), CodeConfig::default()).expect("issuer");
    let binding = CodeBinding {
        flow: FlowId::new_random(),
        user: ObjectId::new_random(),
        method: MethodKind::Email,
        purpose: CodePurpose::Verification,
        destination: Destination::Email("adele.vance@contoso.com".parse().expect("email")),
    };
    let now = OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);
    let (code, record) = issuer.issue(&binding, None, now).expect("issue");
    let wrong = Secret::new("0000 0000".to_string());
    rate("HMAC code verification (wrong code)", || {
        let mut r = record.clone();
        black_box(issuer.verify(&mut r, black_box(&wrong), &binding, now));
    });
    rate("HMAC code verification (right code)", || {
        let mut r = record.clone();
        black_box(issuer.verify(&mut r, black_box(&code), &binding, now));
    });
    rate("code issue (CSPRNG digits + HMAC)", || {
        black_box(issuer.issue(&binding, None, now).expect("issue"));
    });
}

fn totp() {
    let app = Arc::new(AuthenticatorApp::new(TotpConfig::new("Contoso")).expect("app"));
    let setup = app
        .begin_enrollment(&"adele.vance@contoso.com".parse().expect("upn"))
        .expect("setup");
    let now = OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);
    let right = app.code_at(&setup.seed, now).expect("code");
    let wrong = Secret::new(
        if right.expose() == "000000" {
            "111111"
        } else {
            "000000"
        }
        .to_string(),
    );
    let enrollment = TotpEnrollment {
        seed: setup.seed,
        last_step: None,
    };
    rate("TOTP check (right code, skew 1)", || {
        let mut e = enrollment.clone();
        black_box(app.check(&mut e, black_box(&right), now).expect("check"));
    });
    rate("TOTP check (wrong code, 3 steps computed)", || {
        let mut e = enrollment.clone();
        black_box(app.check(&mut e, black_box(&wrong), now).expect("check"));
    });
}

/// CPU time the rest of the machine used during a measurement (Linux `/proc`), so contended
/// figures can be recognised as such.
struct Load {
    machine: Option<u64>,
    own: Option<u64>,
}

impl Load {
    fn start() -> Self {
        Self {
            machine: machine_busy_ticks(),
            own: own_ticks(),
        }
    }

    fn other_cpu_seconds(&self) -> Option<f64> {
        let machine = machine_busy_ticks()?.checked_sub(self.machine?)?;
        let own = own_ticks()?.checked_sub(self.own?)?;
        // USER_HZ is 100 on every Linux this runs on.
        Some(machine.saturating_sub(own) as f64 / 100.0)
    }
}

/// Busy ticks of all CPUs (everything but idle and iowait) from the first line of /proc/stat.
fn machine_busy_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let total: u64 = fields.iter().take(8).sum();
    Some(total - fields.get(3)? - fields.get(4)?)
}

/// This process's user + system ticks from /proc/self/stat.
fn own_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}
