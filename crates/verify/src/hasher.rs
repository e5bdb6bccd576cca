//! argon2id on a bounded blocking pool.
//!
//! An argon2id hash with the `security.md` parameters (m = 19 MiB, t = 2, p = 1) costs about
//! 16 ms of CPU and 19 MiB of memory. Run on the async runtime it would stall every other request
//! on that worker; run without a limit, a burst of requests would queue hashes without bound and
//! take the server's memory with them. So:
//! - each hash runs in `tokio::task::spawn_blocking`, holding a permit of a
//!   `tokio::sync::Semaphore` (default: one permit per CPU) for the whole computation — also when
//!   the request that asked for it has gone away, so the permit count is the real CPU load;
//! - a request that cannot get a permit within [`HasherConfig::max_wait`] gets
//!   [`HashError::Busy`] (the web layer answers 503 with `Retry-After`); the server stays up.
//!
//! Unknown users and missing enrollments are verified against a dummy hash made with the same
//! parameters at start-up ([`Hasher::verify`] with `None`), so the time taken does not reveal
//! whether anything was enrolled (`security.md`, principle 1).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
use latchkey_types::Secret;
use ring::rand::SystemRandom;
use tokio::sync::Semaphore;

use crate::rng::{self, RngError};

/// The smallest memory cost accepted, in KiB (19 MiB, `security.md`).
pub const MIN_MEMORY_KIB: u32 = 19 * 1024;
/// The smallest number of passes accepted.
pub const MIN_ITERATIONS: u32 = 2;
/// Salt length in bytes (the PHC recommendation).
pub const SALT_BYTES: usize = 16;

/// Why hashing or verifying did not happen. Never contains the secret or the hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    /// Every permit is taken and none freed up within the wait: answer 503 and try later.
    #[error("too many hashes in progress; try again shortly")]
    Busy,
    /// The configuration breaks a rule.
    #[error("invalid hasher configuration: {0}")]
    Config(&'static str),
    /// A stored value is not a PHC string.
    #[error("not a PHC hash string")]
    NotPhc,
    /// argon2 failed, or the blocking task was lost (runtime shutting down).
    #[error("hashing failed internally")]
    Internal,
    /// The random number generator failed.
    #[error(transparent)]
    Rng(#[from] RngError),
}

/// Hasher settings. [`Default`]: argon2id m=19456 KiB, t=2, p=1, one permit per CPU, 200 ms wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HasherConfig {
    /// argon2 memory cost in KiB (at least [`MIN_MEMORY_KIB`]).
    pub memory_kib: u32,
    /// argon2 passes (at least [`MIN_ITERATIONS`]).
    pub iterations: u32,
    /// argon2 lanes.
    pub parallelism: u32,
    /// Hashes allowed to run at once (each holds `memory_kib` of memory while it runs).
    pub max_concurrent: usize,
    /// How long a request may wait for a permit before it gets [`HashError::Busy`].
    pub max_wait: Duration,
}

impl Default for HasherConfig {
    fn default() -> Self {
        Self {
            memory_kib: Params::DEFAULT_M_COST,
            iterations: Params::DEFAULT_T_COST,
            parallelism: Params::DEFAULT_P_COST,
            max_concurrent: std::thread::available_parallelism().map_or(1, |n| n.get()),
            max_wait: Duration::from_millis(200),
        }
    }
}

/// An argon2 hash in PHC string form (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`), as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct PhcHash(String);

impl PhcHash {
    /// A stored PHC string, checked for syntax.
    pub fn parse(s: impl Into<String>) -> Result<Self, HashError> {
        let s = s.into();
        PasswordHash::new(&s).map_err(|_| HashError::NotPhc)?;
        Ok(Self(s))
    }

    /// The string to store.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The parameter part (`m=19456,t=2,p=1`), e.g. to spot hashes that need rehashing.
    pub fn params(&self) -> &str {
        self.0.split('$').nth(3).unwrap_or_default()
    }
}

impl fmt::Debug for PhcHash {
    // Parameters are useful in logs; salt and hash would only help an offline guesser.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhcHash(argon2id {} [redacted])", self.params())
    }
}

struct Inner {
    argon2: Argon2<'static>,
    permits: Arc<Semaphore>,
    max_wait: Duration,
    dummy: PhcHash,
    rng: SystemRandom,
}

impl Inner {
    fn hash(&self, secret: &[u8]) -> Result<PhcHash, HashError> {
        let mut salt = [0u8; SALT_BYTES];
        rng::fill(&self.rng, &mut salt)?;
        let hash = self
            .argon2
            .hash_password_with_salt(secret, &salt)
            .map_err(|_| HashError::Internal)?;
        Ok(PhcHash(hash.to_string()))
    }

    /// Always does one full argon2 computation, whether or not there is a real hash to check.
    fn verify(&self, secret: &[u8], phc: Option<&PhcHash>) -> bool {
        match phc.and_then(|p| PasswordHash::new(p.as_str()).ok()) {
            Some(parsed) => self.argon2.verify_password(secret, &parsed).is_ok(),
            None => {
                // Same work against the dummy; its result is irrelevant (nothing was enrolled).
                let _ = self.argon2.verify_password(secret, self.dummy.as_str());
                false
            }
        }
    }
}

/// argon2id hashing and verification off the async runtime, behind a permit limit. Cheap to
/// clone (shared state).
#[derive(Clone)]
pub struct Hasher {
    inner: Arc<Inner>,
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hasher")
            .field("params", &self.inner.dummy.params())
            .field("available_permits", &self.available_permits())
            .finish()
    }
}

impl Hasher {
    /// A hasher. Computes the dummy hash (one argon2 run, ~16 ms): call it at start-up, not
    /// per request.
    pub fn new(config: HasherConfig) -> Result<Self, HashError> {
        if config.memory_kib < MIN_MEMORY_KIB {
            return Err(HashError::Config(
                "argon2 memory must be at least 19456 KiB",
            ));
        }
        if config.iterations < MIN_ITERATIONS {
            return Err(HashError::Config("argon2 iterations must be at least 2"));
        }
        if config.max_concurrent == 0 {
            return Err(HashError::Config(
                "at least one concurrent hash must be allowed",
            ));
        }
        let params = Params::new(
            config.memory_kib,
            config.iterations,
            config.parallelism,
            None,
        )
        .map_err(|_| HashError::Config("argon2 parameters out of range"))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let rng = SystemRandom::new();
        let mut dummy_secret = [0u8; 16];
        rng::fill(&rng, &mut dummy_secret)?;
        let mut inner = Inner {
            argon2,
            permits: Arc::new(Semaphore::new(config.max_concurrent)),
            max_wait: config.max_wait,
            dummy: PhcHash(String::new()),
            rng,
        };
        inner.dummy = inner.hash(&dummy_secret)?;
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// Permits free right now (for health and metrics pages).
    pub fn available_permits(&self) -> usize {
        self.inner.permits.available_permits()
    }

    /// Hashes `secret` with a fresh random salt.
    pub async fn hash(&self, secret: Secret<String>) -> Result<PhcHash, HashError> {
        self.run(move |inner| inner.hash(secret.expose().as_bytes()))
            .await?
    }

    /// Hashes several secrets under one permit (enrollment of a set of answers).
    pub async fn hash_all(&self, secrets: Vec<Secret<String>>) -> Result<Vec<PhcHash>, HashError> {
        self.run(move |inner| {
            secrets
                .iter()
                .map(|s| inner.hash(s.expose().as_bytes()))
                .collect()
        })
        .await?
    }

    /// Whether `secret` matches `phc`. With `None` (unknown user, nothing enrolled) it verifies
    /// against the dummy hash, taking the same time, and returns `false`.
    pub async fn verify(
        &self,
        secret: Secret<String>,
        phc: Option<PhcHash>,
    ) -> Result<bool, HashError> {
        self.run(move |inner| inner.verify(secret.expose().as_bytes(), phc.as_ref()))
            .await
    }

    /// Verifies several pairs under one permit; every pair is computed (no early exit), so the
    /// time depends only on the number of pairs.
    pub async fn verify_all(
        &self,
        pairs: Vec<(Secret<String>, Option<PhcHash>)>,
    ) -> Result<Vec<bool>, HashError> {
        self.run(move |inner| {
            pairs
                .iter()
                .map(|(s, phc)| inner.verify(s.expose().as_bytes(), phc.as_ref()))
                .collect()
        })
        .await
    }

    /// Runs `work` on the blocking pool once a permit is held; [`HashError::Busy`] if none frees
    /// up within `max_wait`.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Inner) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let acquire = self.inner.permits.clone().acquire_owned();
        let permit = match tokio::time::timeout(self.inner.max_wait, acquire).await {
            Ok(Ok(permit)) => permit,
            Ok(Err(_closed)) => return Err(HashError::Internal),
            Err(_elapsed) => return Err(HashError::Busy),
        };
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            // Held until the computation ends, even if the caller stopped waiting.
            let _permit = permit;
            work(&inner)
        })
        .await
        .map_err(|_| HashError::Internal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Secret<String> {
        Secret::new(v.to_string())
    }

    #[tokio::test]
    async fn hash_then_verify_with_the_security_md_parameters() {
        let h = Hasher::new(HasherConfig {
            max_concurrent: 2,
            ..HasherConfig::default()
        })
        .unwrap();
        let phc = h.hash(s("correct horse")).await.unwrap();
        assert!(
            phc.as_str().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{}",
            phc.as_str()
        );
        assert_eq!(phc.params(), "m=19456,t=2,p=1");
        // Salt is per hash: the same secret hashes differently.
        let again = h.hash(s("correct horse")).await.unwrap();
        assert_ne!(phc.as_str(), again.as_str());
        assert!(
            h.verify(s("correct horse"), Some(phc.clone()))
                .await
                .unwrap()
        );
        assert!(
            !h.verify(s("correct horsf"), Some(phc.clone()))
                .await
                .unwrap()
        );
        // Unknown user: dummy path, always false.
        assert!(!h.verify(s("correct horse"), None).await.unwrap());
        assert_eq!(h.available_permits(), 2);
        // Stored values round-trip through parse; garbage does not parse.
        assert_eq!(PhcHash::parse(phc.as_str()).unwrap(), phc);
        assert_eq!(PhcHash::parse("not a hash").unwrap_err(), HashError::NotPhc);
        let dump = format!("{phc:?} {h:?}");
        assert!(
            !dump.contains(phc.as_str().rsplit('$').next().unwrap()),
            "{dump}"
        );
    }

    #[tokio::test]
    async fn weak_parameters_are_refused() {
        for bad in [
            HasherConfig {
                memory_kib: 4096,
                ..HasherConfig::default()
            },
            HasherConfig {
                iterations: 1,
                ..HasherConfig::default()
            },
            HasherConfig {
                max_concurrent: 0,
                ..HasherConfig::default()
            },
        ] {
            assert!(matches!(Hasher::new(bad), Err(HashError::Config(_))));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn busy_when_the_pool_is_saturated() {
        let h = Hasher::new(HasherConfig {
            max_concurrent: 1,
            max_wait: Duration::from_millis(5),
            ..HasherConfig::default()
        })
        .unwrap();
        // Occupy the only permit with a batch of 6 verifications (~100 ms).
        let busy = h.clone();
        let batch = tokio::spawn(async move {
            busy.verify_all((0..6).map(|_| (s("x"), None)).collect())
                .await
        });
        while h.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(h.verify(s("y"), None).await, Err(HashError::Busy));
        assert_eq!(h.hash(s("y")).await, Err(HashError::Busy));
        assert_eq!(batch.await.unwrap().unwrap(), vec![false; 6]);
        // Once the permit is back, work is accepted again.
        assert_eq!(h.available_permits(), 1);
        assert!(!h.verify(s("y"), None).await.unwrap());
    }
}
