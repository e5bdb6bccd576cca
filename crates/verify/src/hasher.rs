//! argon2id on a bounded blocking pool.
//!
//! An argon2id hash with the `docs/security.md` parameters (m = 19 MiB, t = 2, p = 1) costs about
//! 16 ms of CPU and 19 MiB of memory. Run on the async runtime it would stall every other request
//! on that worker; run without a limit, a burst of requests would queue hashes without bound and
//! take the server's memory with them. So:
//! - each hash runs in `tokio::task::spawn_blocking`, holding a permit of a
//!   `tokio::sync::Semaphore` (default: one permit per CPU) for the whole computation — also when
//!   the request that asked for it has gone away, so the permit count is the real CPU load;
//! - a request that cannot get a permit within [`HasherConfig::max_wait`] gets
//!   [`HashError::Busy`] (the web layer answers 503 with `Retry-After`); the server stays up.
//!
//! Memory: each running hash borrows one argon2 block buffer (`memory_kib` KiB) from a small pool
//! and gives it back afterwards. At most `max_concurrent` buffers ever exist, so the memory
//! stays at about `max_concurrent × memory_kib` however many hashes run over time (a fresh
//! 19 MiB allocation per hash, freed on a blocking-pool thread, was kept by the allocator's
//! per-thread arenas and grew the RSS with the number of threads).
//!
//! Unknown users and missing enrollments are verified against a dummy hash made with the same
//! parameters at start-up ([`Hasher::verify`] with `None`), so the time taken does not reveal
//! whether anything was enrolled (`docs/security.md`, principle 1).

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{ARGON2ID_IDENT, Algorithm, Argon2, Block, Params, Version};
use latchkey_types::Secret;
use ring::rand::SystemRandom;
use tokio::sync::Semaphore;

use crate::ct::CtEq;
use crate::rng::{self, RngError};

/// The smallest memory cost accepted, in KiB (19 MiB, `docs/security.md`).
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
    params: Params,
    permits: Arc<Semaphore>,
    max_wait: Duration,
    dummy: PhcHash,
    rng: SystemRandom,
    ct: CtEq,
    /// Block buffers for the hashes in progress; at most one per permit is ever allocated.
    buffers: Mutex<Vec<Vec<Block>>>,
}

impl Inner {
    /// Runs `f` with a block buffer of the configured size, taken from the pool (or allocated
    /// when the pool is empty: the first use of each permit) and returned to it afterwards.
    fn with_buffer<T>(&self, f: impl FnOnce(&mut [Block]) -> T) -> T {
        let taken = self
            .buffers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let mut buffer = taken.unwrap_or_else(|| vec![Block::new(); self.params.block_count()]);
        let result = f(&mut buffer);
        self.buffers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(buffer);
        result
    }

    /// The raw argon2 output for `secret` and `salt` with `argon2`, in a pooled buffer when the
    /// parameters match the configured ones (they do for every hash made here).
    fn raw(
        &self,
        argon2: &Argon2<'_>,
        secret: &[u8],
        salt: &[u8],
        out: &mut [u8],
    ) -> Result<(), HashError> {
        if argon2.params().block_count() == self.params.block_count() {
            self.with_buffer(|blocks| {
                argon2.hash_password_into_with_memory(secret, salt, out, blocks)
            })
        } else {
            // A stored hash with other parameters (older configuration): one-off buffer.
            argon2.hash_password_into(secret, salt, out)
        }
        .map_err(|_| HashError::Internal)
    }

    fn hash(&self, secret: &[u8]) -> Result<PhcHash, HashError> {
        let mut salt = [0u8; SALT_BYTES];
        rng::fill(&self.rng, &mut salt)?;
        let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
        self.raw(&self.argon2, secret, &salt, &mut out)?;
        let hash = PasswordHash {
            algorithm: ARGON2ID_IDENT,
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&self.params).map_err(|_| HashError::Internal)?,
            salt: Some(Salt::new(&salt).map_err(|_| HashError::Internal)?),
            hash: Some(Output::new(&out).map_err(|_| HashError::Internal)?),
        };
        Ok(PhcHash(hash.to_string()))
    }

    /// Whether `secret` matches the argon2id PHC string `phc`.
    fn check(&self, secret: &[u8], phc: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(phc) else {
            return false;
        };
        let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
            return false;
        };
        if parsed.algorithm != ARGON2ID_IDENT
            || parsed
                .version
                .is_some_and(|v| v != u32::from(Version::V0x13))
        {
            return false;
        }
        let Ok(params) = Params::try_from(&parsed) else {
            return false;
        };
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut out = vec![0u8; expected.len()];
        if self.raw(&argon2, secret, salt.as_ref(), &mut out).is_err() {
            return false;
        }
        self.ct.eq(expected.as_bytes(), &out)
    }

    /// Always does one full argon2 computation, whether or not there is a real hash to check.
    fn verify(&self, secret: &[u8], phc: Option<&PhcHash>) -> bool {
        match phc.filter(|p| PasswordHash::new(p.as_str()).is_ok()) {
            Some(p) => self.check(secret, p.as_str()),
            None => {
                // Same work against the dummy; its result is irrelevant (nothing was enrolled).
                let _ = self.check(secret, self.dummy.as_str());
                false
            }
        }
    }
}

/// One of the hasher's permits, held from [`Hasher::reserve`] until the hashing it was taken
/// for has run (or until dropped).
pub struct Reservation(tokio::sync::OwnedSemaphorePermit);

impl fmt::Debug for Reservation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Reservation")
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
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let rng = latchkey_types::random::generator();
        let mut dummy_secret = [0u8; 16];
        rng::fill(&rng, &mut dummy_secret)?;
        let ct = CtEq::new(&rng)?;
        let mut inner = Inner {
            argon2,
            params,
            ct,
            buffers: Mutex::new(Vec::with_capacity(config.max_concurrent)),
            permits: Arc::new(Semaphore::new(config.max_concurrent)),
            max_wait: config.max_wait,
            dummy: PhcHash(String::new()),
            rng,
        };
        inner.dummy = inner.hash(&dummy_secret)?;
        // Give the dummy run's block buffer back: a portal whose policies never ask security
        // questions would otherwise hold memory_kib (19 MiB) for nothing. Hashes allocate their
        // buffer again on first use (at most one per permit, then pooled).
        inner
            .buffers
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
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

    /// Takes a permit now (waiting up to `max_wait`; [`HashError::Busy`] otherwise) for a later
    /// [`Hasher::verify_all_reserved`]. Lets a caller learn that the server is too busy *before*
    /// it charges an attempt to a user's throttle, so a busy server never counts against them.
    pub async fn reserve(&self) -> Result<Reservation, HashError> {
        let acquire = self.inner.permits.clone().acquire_owned();
        match tokio::time::timeout(self.inner.max_wait, acquire).await {
            Ok(Ok(permit)) => Ok(Reservation(permit)),
            Ok(Err(_closed)) => Err(HashError::Internal),
            Err(_elapsed) => Err(HashError::Busy),
        }
    }

    /// [`Hasher::verify_all`] under a permit taken earlier with [`Hasher::reserve`].
    pub async fn verify_all_reserved(
        &self,
        reservation: Reservation,
        pairs: Vec<(Secret<String>, Option<PhcHash>)>,
    ) -> Result<Vec<bool>, HashError> {
        self.run_with(reservation, move |inner| {
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
        let reservation = self.reserve().await?;
        self.run_with(reservation, work).await
    }

    async fn run_with<T: Send + 'static>(
        &self,
        Reservation(permit): Reservation,
        work: impl FnOnce(&Inner) -> T + Send + 'static,
    ) -> Result<T, HashError> {
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

    #[tokio::test]
    async fn a_reservation_holds_its_permit_until_the_work_ran() {
        let h = Hasher::new(HasherConfig {
            max_concurrent: 1,
            max_wait: Duration::from_millis(5),
            ..HasherConfig::default()
        })
        .unwrap();
        let held = h.reserve().await.unwrap();
        assert_eq!(h.available_permits(), 0);
        // Nobody else gets to hash meanwhile, and a second reservation is refused as busy.
        assert_eq!(h.reserve().await.err(), Some(HashError::Busy));
        assert_eq!(h.verify(s("y"), None).await, Err(HashError::Busy));
        let phc = h.hash(s("z")).await;
        assert_eq!(phc, Err(HashError::Busy));
        // The reserved work runs under the held permit, which comes back afterwards.
        let out = h
            .verify_all_reserved(held, vec![(s("x"), None), (s("x"), None)])
            .await
            .unwrap();
        assert_eq!(out, vec![false, false]);
        assert_eq!(h.available_permits(), 1);
        // Dropping an unused reservation gives the permit back too.
        drop(h.reserve().await.unwrap());
        assert_eq!(h.available_permits(), 1);
    }
}
