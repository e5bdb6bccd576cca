//! Authenticator apps: time-based one-time passwords (RFC 6238).
//!
//! Rules (`docs/security.md`): SHA-1, 6 digits, 30-second steps (what every authenticator app
//! supports), a clock skew of at most one step either way, a seed of at least 160 bits from a
//! CSPRNG, and a used step never accepted again.
//!
//! ## Replay guard
//! [`AuthenticatorApp::verify`] returns the time step the code matched and records it in
//! [`TotpEnrollment::last_step`]; any code whose step is at or before the last accepted one is
//! [`TotpOutcome::Replayed`] (vaultwarden's `authenticator.rs` pattern). So a code seen over a
//! shoulder, or a second submission of the same request, is refused even within its 90-second
//! window.
//!
//! ## Store contract
//! The seed is a secret at rest: the store encrypts [`TotpSeed`] (AEAD, key outside the
//! database). `last_step` is a plain integer; persist it with a compare-and-set
//! (`UPDATE ... SET last_step = :new WHERE user = :u AND last_step IS NOT DISTINCT FROM :old`) so that two
//! simultaneous submissions of one code cannot both succeed; act on `Ok` only after that write.
//!
//! ## Enrollment
//! [`AuthenticatorApp::begin_enrollment`] makes a seed and the `otpauth://` URI and QR code (SVG)
//! to show once; the seed is kept server-side (pending) until
//! [`AuthenticatorApp::confirm_enrollment`] checks a first code from the app, which proves the app
//! holds the seed and starts the replay guard at that code's step.

use std::fmt;

use latchkey_types::{Secret, Upn};
use qrcode::render::svg;
use ring::rand::SystemRandom;
use time::OffsetDateTime;

use crate::method::{Method, MethodKind, Outcome, Subject};
use crate::rng::{self, RngError};

/// Seed length in bytes: 160 bits, RFC 4226's recommendation and the HMAC-SHA-1 block's natural size.
pub const SEED_BYTES: usize = 20;
/// Digits per code.
pub const DIGITS: u8 = 6;
/// Seconds per step.
pub const STEP_SECONDS: u64 = 30;
/// The largest allowed skew, in steps.
pub const MAX_SKEW: u8 = 1;

/// Why TOTP could not be configured, enrolled or checked. Never contains a seed or a code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TotpError {
    /// The configuration breaks a rule.
    #[error("invalid TOTP configuration: {0}")]
    Config(&'static str),
    /// A stored seed is shorter than 160 bits.
    #[error("TOTP seed too short: {bits} bits, at least 160 required")]
    SeedTooShort {
        /// Its length in bits.
        bits: usize,
    },
    /// The account name cannot be put in an otpauth URI.
    #[error("account name not usable in an otpauth URI")]
    AccountName,
    /// The time is before 1970 (a broken clock).
    #[error("time before the Unix epoch")]
    TimeBeforeEpoch,
    /// totp-rs refused the parameters (message from totp-rs, which never includes the seed).
    #[error("TOTP library error: {0}")]
    Library(String),
    /// The QR code could not be drawn.
    #[error("could not draw the QR code")]
    Qr,
    /// The random number generator failed.
    #[error(transparent)]
    Rng(#[from] RngError),
}

/// TOTP settings. Digits, algorithm and step are fixed by `docs/security.md`; only the issuer
/// (the brand shown in the app) and the skew (0 or 1) are configurable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpConfig {
    /// The name the authenticator app shows above the account (the brand, e.g. "Contoso").
    pub issuer: String,
    /// Steps accepted before and after the current one (0 or 1; default 1).
    pub skew: u8,
}

impl TotpConfig {
    /// The default settings with `issuer` as the brand.
    pub fn new(issuer: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            skew: MAX_SKEW,
        }
    }

    fn validate(&self) -> Result<(), TotpError> {
        if self.skew > MAX_SKEW {
            return Err(TotpError::Config("skew must be 0 or 1 step"));
        }
        let issuer = self.issuer.trim();
        // ':' separates issuer and account in the URI label; control characters break apps.
        if issuer.is_empty()
            || issuer.len() > 64
            || issuer.contains(':')
            || issuer.chars().any(char::is_control)
        {
            return Err(TotpError::Config(
                "issuer must be 1 to 64 characters without ':'",
            ));
        }
        Ok(())
    }
}

/// A TOTP seed. Encrypt it at rest; it never prints.
#[derive(Clone)]
pub struct TotpSeed(Secret<Vec<u8>>);

impl TotpSeed {
    /// A seed the store decrypted; refused when shorter than 160 bits.
    pub fn from_bytes(bytes: Secret<Vec<u8>>) -> Result<Self, TotpError> {
        let n = bytes.expose().len();
        if n < SEED_BYTES {
            return Err(TotpError::SeedTooShort { bits: n * 8 });
        }
        Ok(Self(bytes))
    }

    /// The raw bytes (to encrypt and store).
    pub fn expose_bytes(&self) -> &[u8] {
        self.0.expose()
    }

    fn generate(rng: &SystemRandom) -> Result<Self, RngError> {
        let mut bytes = vec![0u8; SEED_BYTES];
        rng::fill(rng, &mut bytes)?;
        Ok(Self(Secret::new(bytes)))
    }
}

impl fmt::Debug for TotpSeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSeed([redacted])")
    }
}

/// A confirmed TOTP enrollment, as stored.
#[derive(Debug, Clone)]
pub struct TotpEnrollment {
    /// The seed (encrypted at rest by the store).
    pub seed: TotpSeed,
    /// The last accepted time step (Unix time / 30); codes at or before it are replays.
    pub last_step: Option<u64>,
}

/// What to show the user once when they add an authenticator app.
#[derive(Debug)]
pub struct TotpSetup {
    /// The new seed: keep it server-side (pending) until the first code confirms it.
    pub seed: TotpSeed,
    /// `otpauth://totp/{issuer}:{upn}?secret=...&issuer=...` (contains the seed).
    pub uri: Secret<String>,
    /// The URI as a QR code, an SVG document (contains the seed).
    pub qr_svg: Secret<String>,
    /// The seed in base32, for typing into an app by hand.
    pub manual_key: Secret<String>,
}

/// The result of checking a TOTP code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotpOutcome {
    /// Correct for time step `step` (now recorded as the last accepted step).
    Ok {
        /// The matched time step.
        step: u64,
    },
    /// Not a current code.
    Wrong,
    /// A code for a step already used (or older): refused.
    Replayed,
}

impl Outcome for TotpOutcome {
    fn is_accepted(&self) -> bool {
        matches!(self, TotpOutcome::Ok { .. })
    }
    fn reason(&self) -> &'static str {
        match self {
            TotpOutcome::Ok { .. } => "ok",
            TotpOutcome::Wrong => "wrong",
            TotpOutcome::Replayed => "replayed",
        }
    }
}

/// The authenticator-app method.
#[derive(Debug)]
pub struct AuthenticatorApp {
    config: TotpConfig,
    rng: SystemRandom,
}

impl AuthenticatorApp {
    /// The method; fails if the issuer or the skew is not acceptable.
    pub fn new(config: TotpConfig) -> Result<Self, TotpError> {
        config.validate()?;
        Ok(Self {
            config,
            rng: latchkey_types::random::generator(),
        })
    }

    /// A new seed with its `otpauth://` URI and QR code, for the account `upn`.
    pub fn begin_enrollment(&self, upn: &Upn) -> Result<TotpSetup, TotpError> {
        self.setup_for(TotpSeed::generate(&self.rng)?, upn)
    }

    /// The URI, QR code and manual key of a seed already staged (shown again after a wrong
    /// first code, so the user need not start over).
    pub fn setup_for(&self, seed: TotpSeed, upn: &Upn) -> Result<TotpSetup, TotpError> {
        let totp = self.totp(&seed, Some(upn.as_str()))?;
        let uri = totp.to_url().map_err(|_| TotpError::AccountName)?;
        let qr = qrcode::QrCode::new(uri.as_bytes()).map_err(|_| TotpError::Qr)?;
        // Quiet zone kept (scanners need it); 4 px per module at minimum is readable on a phone
        // camera from a 1024x768 kiosk screen.
        let qr_svg = qr
            .render::<svg::Color<'_>>()
            .min_dimensions(200, 200)
            .dark_color(svg::Color("#000000"))
            .light_color(svg::Color("#ffffff"))
            .build();
        Ok(TotpSetup {
            manual_key: Secret::new(totp.secret().to_base32()),
            seed,
            uri: Secret::new(uri),
            qr_svg: Secret::new(qr_svg),
        })
    }

    /// Confirms a pending seed with the first code from the app. `Some(enrollment)` (with the
    /// replay guard already at that code's step) when the code is right, `None` when it is not.
    pub fn confirm_enrollment(
        &self,
        seed: TotpSeed,
        typed: &Secret<String>,
        now: OffsetDateTime,
    ) -> Result<Option<TotpEnrollment>, TotpError> {
        let mut enrollment = TotpEnrollment {
            seed,
            last_step: None,
        };
        match self.check(&mut enrollment, typed, now)? {
            TotpOutcome::Ok { .. } => Ok(Some(enrollment)),
            TotpOutcome::Wrong | TotpOutcome::Replayed => Ok(None),
        }
    }

    /// Checks `typed` at `now` against the enrollment, and on success records the matched step.
    /// Always computes all `2 * skew + 1` candidate codes, each compared in constant time.
    pub fn check(
        &self,
        enrollment: &mut TotpEnrollment,
        typed: &Secret<String>,
        now: OffsetDateTime,
    ) -> Result<TotpOutcome, TotpError> {
        let totp = self.totp(&enrollment.seed, None)?;
        let now = u64::try_from(now.unix_timestamp()).map_err(|_| TotpError::TimeBeforeEpoch)?;
        let typed = crate::code::normalize_typed_code(typed.expose());
        let current = now / STEP_SECONDS;
        let skew = u64::from(self.config.skew);
        let mut fresh: Option<u64> = None;
        let mut replayed = false;
        for step in current.saturating_sub(skew)..=current.saturating_add(skew) {
            // totp-rs compares tokens in constant time; with skew 0 on the instance, `check`
            // tests exactly this step.
            if totp
                .check(&typed, step.saturating_mul(STEP_SECONDS))
                .is_some()
            {
                match enrollment.last_step {
                    Some(last) if step <= last => replayed = true,
                    // The newest matching step wins, so the guard moves as far as it can.
                    _ => fresh = Some(step),
                }
            }
        }
        Ok(match fresh {
            Some(step) => {
                enrollment.last_step = Some(step);
                TotpOutcome::Ok { step }
            }
            None if replayed => TotpOutcome::Replayed,
            None => TotpOutcome::Wrong,
        })
    }

    /// An enrollment with a fresh random seed that nobody holds: what the flow verifies against
    /// for an unknown user or one without an authenticator app, so the answer (`Wrong`) and the
    /// work done are the same as for a real enrollment.
    pub fn decoy_enrollment(&self) -> Result<TotpEnrollment, TotpError> {
        Ok(TotpEnrollment {
            seed: TotpSeed::generate(&self.rng)?,
            last_step: None,
        })
    }

    /// The code an app shows at `now` (demo outbox, tests).
    pub fn code_at(
        &self,
        seed: &TotpSeed,
        now: OffsetDateTime,
    ) -> Result<Secret<String>, TotpError> {
        let totp = self.totp(seed, None)?;
        let now = u64::try_from(now.unix_timestamp()).map_err(|_| TotpError::TimeBeforeEpoch)?;
        Ok(Secret::new(totp.generate(now).to_string()))
    }

    fn totp(&self, seed: &TotpSeed, account: Option<&str>) -> Result<totp_rs::Totp, TotpError> {
        let mut builder = totp_rs::Builder::new()
            .with_algorithm(totp_rs::Algorithm::SHA1)
            .with_digits(DIGITS)
            .with_step_duration(STEP_SECONDS)
            .with_skew(0)
            .with_secret(seed.expose_bytes().to_vec());
        if let Some(account) = account {
            builder = builder
                .with_issuer(Some(self.config.issuer.trim()))
                .with_account_name(account);
        }
        builder
            .build()
            .map_err(|e| TotpError::Library(e.to_string()))
    }
}

impl Method for AuthenticatorApp {
    type Stored = TotpEnrollment;
    type Answer = Secret<String>;
    type Outcome = TotpOutcome;
    type Error = TotpError;

    fn kind(&self) -> MethodKind {
        MethodKind::Totp
    }

    async fn verify(
        &self,
        _subject: &Subject,
        stored: &mut TotpEnrollment,
        answer: Secret<String>,
        now: OffsetDateTime,
    ) -> Result<TotpOutcome, TotpError> {
        self.check(stored, &answer, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;
    use time::macros::datetime;

    // The middle of a step, so ±1 step stays inside the neighbouring steps.
    const T0: OffsetDateTime = datetime!(2026-11-21 09:00:15 UTC);

    fn app() -> AuthenticatorApp {
        AuthenticatorApp::new(TotpConfig::new("Contoso")).unwrap()
    }

    fn enrolled(app: &AuthenticatorApp) -> TotpEnrollment {
        let setup = app
            .begin_enrollment(&"adele.vance@contoso.com".parse().unwrap())
            .unwrap();
        TotpEnrollment {
            seed: setup.seed,
            last_step: None,
        }
    }

    #[test]
    fn rfc6238_test_vectors() {
        // RFC 6238 appendix B, SHA-1 seed "12345678901234567890", truncated to 6 digits.
        let app = app();
        let seed = TotpSeed::from_bytes(Secret::new(b"12345678901234567890".to_vec())).unwrap();
        for (t, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
        ] {
            let now = OffsetDateTime::from_unix_timestamp(t).unwrap();
            assert_eq!(app.code_at(&seed, now).unwrap().expose(), code);
        }
    }

    #[test]
    fn skew_of_one_step_is_accepted_and_two_is_not() {
        let app = app();
        for (offset, accepted) in [
            (-60i64, false),
            (-30, true),
            (0, true),
            (30, true),
            (60, false),
        ] {
            let mut e = enrolled(&app);
            let code = app
                .code_at(&e.seed, T0 + Duration::seconds(offset))
                .unwrap();
            let outcome = app.check(&mut e, &code, T0).unwrap();
            assert_eq!(
                outcome.is_accepted(),
                accepted,
                "offset {offset}s: {outcome:?}"
            );
            if accepted {
                let step = (T0.unix_timestamp() + offset) as u64 / 30;
                assert_eq!(outcome, TotpOutcome::Ok { step });
                assert_eq!(e.last_step, Some(step));
            }
        }
        // Skew 0: only the current step.
        let strict = AuthenticatorApp::new(TotpConfig {
            skew: 0,
            ..TotpConfig::new("Contoso")
        })
        .unwrap();
        let mut e = enrolled(&strict);
        let code = strict.code_at(&e.seed, T0 - Duration::seconds(30)).unwrap();
        assert_eq!(strict.check(&mut e, &code, T0).unwrap(), TotpOutcome::Wrong);
        assert!(
            AuthenticatorApp::new(TotpConfig {
                skew: 2,
                ..TotpConfig::new("Contoso")
            })
            .is_err()
        );
    }

    #[test]
    fn a_used_step_is_never_accepted_again() {
        let app = app();
        let mut e = enrolled(&app);
        let code = app.code_at(&e.seed, T0).unwrap();
        assert!(app.check(&mut e, &code, T0).unwrap().is_accepted());
        // Same code, same step, a second later: replay.
        assert_eq!(
            app.check(&mut e, &code, T0 + Duration::seconds(1)).unwrap(),
            TotpOutcome::Replayed
        );
        // The previous step's code is older than the last accepted one: replay too.
        let older = app.code_at(&e.seed, T0 - Duration::seconds(30)).unwrap();
        if older.expose() != code.expose() {
            assert_eq!(
                app.check(&mut e, &older, T0).unwrap(),
                TotpOutcome::Replayed
            );
        }
        // The next step's code is fine, and moves the guard.
        let next = app.code_at(&e.seed, T0 + Duration::seconds(30)).unwrap();
        let outcome = app
            .check(&mut e, &next, T0 + Duration::seconds(30))
            .unwrap();
        assert!(outcome.is_accepted());
        assert_eq!(e.last_step, Some((T0.unix_timestamp() as u64) / 30 + 1));
    }

    #[test]
    fn wrong_codes_are_wrong_and_change_nothing() {
        let app = app();
        let mut e = enrolled(&app);
        let right = app.code_at(&e.seed, T0).unwrap();
        let wrong = if right.expose() == "000000" {
            "111111"
        } else {
            "000000"
        };
        for typed in [wrong, "", "12345", "1234567", "abcdef"] {
            let outcome = app
                .check(&mut e, &Secret::new(typed.to_string()), T0)
                .unwrap();
            // "000000"/"111111" could collide with a neighbouring step's code (p ≈ 2·10⁻⁶).
            if outcome != TotpOutcome::Wrong {
                assert_eq!(typed.len(), 6);
            }
        }
        assert_eq!(e.last_step, None);
        // Spaces as some apps display them ("123 456") are accepted.
        let spaced = format!("{} {}", &right.expose()[..3], &right.expose()[3..]);
        assert!(
            app.check(&mut e, &Secret::new(spaced), T0)
                .unwrap()
                .is_accepted()
        );
    }

    #[test]
    fn seeds_are_160_bits_from_a_csprng() {
        let app = app();
        let a = enrolled(&app);
        let b = enrolled(&app);
        assert_eq!(a.seed.expose_bytes().len(), 20);
        assert_ne!(a.seed.expose_bytes(), b.seed.expose_bytes());
        assert_eq!(
            TotpSeed::from_bytes(Secret::new(vec![1; 16])).unwrap_err(),
            TotpError::SeedTooShort { bits: 128 }
        );
    }

    #[test]
    fn enrollment_uri_and_qr_code() {
        let app = AuthenticatorApp::new(TotpConfig::new("Contoso IT")).unwrap();
        let setup = app
            .begin_enrollment(&"Adele.Vance@contoso.com".parse().unwrap())
            .unwrap();
        let uri = setup.uri.expose();
        let key = setup.manual_key.expose();
        assert_eq!(key.len(), 32, "160 bits in unpadded base32");
        assert_eq!(
            uri,
            &format!(
                "otpauth://totp/Contoso%20IT:adele.vance%40contoso.com?secret={key}&issuer=Contoso%20IT"
            )
        );
        // Defaults (SHA1, 6 digits, 30 s) are what apps assume when the parameters are absent.
        assert!(
            !uri.contains("algorithm=") && !uri.contains("digits=") && !uri.contains("period=")
        );
        let parsed = totp_rs::Totp::from_url(uri).unwrap();
        assert_eq!(parsed.secret().as_bytes(), setup.seed.expose_bytes());
        let svg = setup.qr_svg.expose();
        assert!(
            svg.starts_with("<?xml") && svg.contains("<svg") && svg.trim_end().ends_with("</svg>")
        );
        // The app's first code confirms the enrollment and starts the replay guard.
        let code = app.code_at(&setup.seed, T0).unwrap();
        let e = app
            .confirm_enrollment(setup.seed.clone(), &code, T0)
            .unwrap()
            .unwrap();
        assert!(e.last_step.is_some());
        assert!(
            app.confirm_enrollment(setup.seed, &Secret::new("bad".into()), T0)
                .unwrap()
                .is_none()
        );
        // Nothing secret in Debug.
        let dump = format!("{e:?}");
        assert!(!dump.contains(key.as_str()) && dump.contains("[redacted]"));
    }

    #[test]
    fn decoy_enrollments_answer_wrong() {
        let app = app();
        let real = enrolled(&app);
        let code = app.code_at(&real.seed, T0).unwrap();
        let mut decoy = app.decoy_enrollment().unwrap();
        assert_eq!(decoy.seed.expose_bytes().len(), SEED_BYTES);
        let outcome = app.check(&mut decoy, &code, T0).unwrap();
        // A random seed matches a given code with probability 3·10⁻⁶.
        assert!(outcome == TotpOutcome::Wrong || outcome.is_accepted());
    }

    #[test]
    fn issuer_is_validated() {
        for bad in ["", "Contoso: IT", "a\nb"] {
            assert!(
                AuthenticatorApp::new(TotpConfig::new(bad)).is_err(),
                "{bad:?}"
            );
        }
    }
}
