//! The hasher's memory stays bounded by its permits: block buffers are reused, not allocated
//! per hash. Its own test binary, so no other test shares (and inflates) the process's RSS.

use latchkey_types::Secret;
use latchkey_verify::{Hasher, HasherConfig};

/// The resident set size in KiB (Linux).
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_stays_bounded_by_the_permits() {
    if !std::path::Path::new("/proc/self/status").exists() {
        return; // not Linux
    }
    let h = Hasher::new(HasherConfig {
        max_concurrent: 2,
        max_wait: std::time::Duration::from_secs(30),
        ..HasherConfig::default()
    })
    .unwrap();
    let round = |n: usize| {
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                let h = h.clone();
                tokio::spawn(async move {
                    let phc = h.hash(Secret::new(format!("answer {i}"))).await.unwrap();
                    assert!(
                        h.verify(Secret::new(format!("answer {i}")), Some(phc))
                            .await
                            .unwrap()
                    );
                    assert!(!h.verify(Secret::new("x".into()), None).await.unwrap());
                })
            })
            .collect();
        async move {
            for t in tasks {
                t.await.unwrap();
            }
        }
    };
    // Warm up: both permits' buffers exist afterwards.
    round(4).await;
    let before = rss_kib();
    // 48 hashes + 96 verifications, two at a time, on whichever blocking threads tokio picks.
    for _ in 0..4 {
        round(16).await;
    }
    let after = rss_kib();
    let grown_mib = after.saturating_sub(before) / 1024;
    // One fresh 19 MiB buffer per hash kept by the allocator would be hundreds of MiB.
    assert!(
        grown_mib < 24,
        "RSS grew by {grown_mib} MiB ({before} KiB -> {after} KiB)"
    );
    assert!(after / 1024 < 2 * 19 + 40, "RSS {after} KiB");
}
