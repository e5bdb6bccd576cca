//! [`SoftDevice`]: latchkey-webauthn's software authenticator behind the [`Authenticator`]
//! seam, with the knobs tests need to make it behave like a real key: a PIN with a retry
//! counter, built-in verification, a forced failure, and a hook that runs while the "touch"
//! happens. Feature `soft`; never in a product build.
//!
//! Clones share one key (credentials, PIN tries, call counters), so a test can hand a clone to
//! [`crate::provision`] and use the same key again afterwards, as a person would re-plug it.

use std::sync::{Arc, Mutex, MutexGuard};

use latchkey_webauthn::soft::{SoftAttestation, SoftAuthenticator};
use latchkey_webauthn::{Algorithm, Error as WebauthnError};
use uuid::Uuid;

use crate::authenticator::{Authenticator, AuthenticatorInfo, MadeCredential, MakeCredential};
use crate::error::PasskeyError;

/// CTAP's usual number of PIN tries.
const PIN_TRIES: u32 = 8;

/// A failure the device reports from `make_credential`, as a real key would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SoftFailure {
    /// CTAP2_ERR_CREDENTIAL_EXCLUDED, whatever the exclude list says.
    Excluded,
    /// CTAP2_ERR_USER_ACTION_TIMEOUT.
    NotTouched,
}

struct State {
    inner: SoftAuthenticator,
    aaguid: Uuid,
    pin: Option<String>,
    pin_retries: u32,
    built_in_uv: bool,
    attestation: SoftAttestation,
    failure: Option<SoftFailure>,
    during_touch: Option<Box<dyn FnMut() + Send>>,
    info_calls: u32,
    make_credential_calls: u32,
}

/// A software security key (cheap to clone; clones are the same key).
#[derive(Clone)]
pub struct SoftDevice(Arc<Mutex<State>>);

impl std::fmt::Debug for SoftDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SoftDevice(..)")
    }
}

impl SoftDevice {
    /// A key of model `aaguid` with the PIN `pin` set (8 tries), no built-in verification,
    /// and packed self attestation.
    pub fn new(aaguid: Uuid, pin: &str) -> Self {
        Self(Arc::new(Mutex::new(State {
            inner: SoftAuthenticator::new(*aaguid.as_bytes()),
            aaguid,
            pin: Some(pin.to_owned()),
            pin_retries: PIN_TRIES,
            built_in_uv: false,
            attestation: SoftAttestation::PackedSelf,
            failure: None,
            during_touch: None,
            info_calls: 0,
            make_credential_calls: 0,
        })))
    }

    fn state(&self) -> Result<MutexGuard<'_, State>, PasskeyError> {
        self.0
            .lock()
            .map_err(|_| PasskeyError::Device("soft key state poisoned".into()))
    }

    fn set(self, f: impl FnOnce(&mut State)) -> Self {
        if let Ok(mut s) = self.0.lock() {
            f(&mut s);
        }
        self
    }

    /// No PIN set (a fresh key).
    pub fn without_pin(self) -> Self {
        self.set(|s| s.pin = None)
    }

    /// Built-in user verification (a fingerprint reader) set up.
    pub fn with_built_in_uv(self) -> Self {
        self.set(|s| s.built_in_uv = true)
    }

    pub fn with_attestation(self, attestation: SoftAttestation) -> Self {
        self.set(|s| s.attestation = attestation)
    }

    pub fn with_pin_retries(self, retries: u32) -> Self {
        self.set(|s| s.pin_retries = retries)
    }

    pub fn failing_with(self, failure: SoftFailure) -> Self {
        self.set(|s| s.failure = Some(failure))
    }

    /// Runs `hook` inside `make_credential`, after the PIN check and before the answer: the
    /// moment a person would be touching the key (a test moves the clock there).
    pub fn during_touch(self, hook: impl FnMut() + Send + 'static) -> Self {
        self.set(|s| s.during_touch = Some(Box::new(hook)))
    }

    /// How often `info` reached the key.
    pub fn info_calls(&self) -> u32 {
        self.state().map(|s| s.info_calls).unwrap_or(0)
    }

    /// How often `make_credential` reached the key.
    pub fn make_credential_calls(&self) -> u32 {
        self.state().map(|s| s.make_credential_calls).unwrap_or(0)
    }

    /// Whether anything reached the key at all.
    pub fn touched(&self) -> bool {
        self.info_calls() + self.make_credential_calls() > 0
    }

    /// PIN tries left.
    pub fn pin_retries(&self) -> u32 {
        self.state().map(|s| s.pin_retries).unwrap_or(0)
    }

    /// A boxed clone, ready for [`crate::provision`].
    pub fn boxed(&self) -> crate::Device {
        Box::new(self.clone())
    }
}

impl State {
    /// Checks `given` like a key's clientPIN: wrong → one try fewer; none left → blocked.
    fn verify_pin(&mut self, given: &str) -> Result<(), PasskeyError> {
        let Some(pin) = &self.pin else {
            return Err(PasskeyError::PinNotSet);
        };
        if self.pin_retries == 0 {
            return Err(PasskeyError::PinBlocked);
        }
        if given == pin {
            self.pin_retries = PIN_TRIES;
            return Ok(());
        }
        self.pin_retries -= 1;
        if self.pin_retries == 0 {
            return Err(PasskeyError::PinBlocked);
        }
        Err(PasskeyError::WrongPin {
            retries_left: Some(self.pin_retries),
        })
    }
}

impl Authenticator for SoftDevice {
    fn info(&mut self) -> Result<AuthenticatorInfo, PasskeyError> {
        let mut s = self.state()?;
        s.info_calls += 1;
        Ok(AuthenticatorInfo {
            aaguid: s.aaguid,
            versions: vec!["FIDO_2_0".into(), "FIDO_2_1".into()],
            extensions: vec![],
            client_pin: Some(s.pin.is_some()),
            built_in_uv: s.built_in_uv.then_some(true),
            resident_keys: true,
            algorithms: vec![Algorithm::Es256.cose()],
        })
    }

    fn make_credential(&mut self, req: &MakeCredential) -> Result<MadeCredential, PasskeyError> {
        let mut s = self.state()?;
        s.make_credential_calls += 1;
        if !req.algorithms.contains(&Algorithm::Es256) {
            return Err(PasskeyError::UnsupportedAlgorithm { offered: vec![] });
        }
        let verified = match &req.pin {
            Some(pin) => {
                s.verify_pin(pin.expose())?;
                true
            }
            None if req.user_verification && !s.built_in_uv => {
                return Err(if s.pin.is_some() {
                    PasskeyError::PinRequired
                } else {
                    PasskeyError::NoUserVerification
                });
            }
            None => s.built_in_uv,
        };
        if let Some(hook) = &mut s.during_touch {
            hook();
        }
        match s.failure {
            Some(SoftFailure::Excluded) => return Err(PasskeyError::CredentialExcluded),
            Some(SoftFailure::NotTouched) => return Err(PasskeyError::NotTouched),
            None => {}
        }
        let attestation = s.attestation;
        let credential = s
            .inner
            .make_credential(
                &req.rp_id,
                &req.client_data_hash(),
                &req.user_handle,
                verified,
                &req.exclude,
                attestation,
            )
            .map_err(|e| match e {
                WebauthnError::CredentialExcluded => PasskeyError::CredentialExcluded,
                other => PasskeyError::Device(other.to_string()),
            })?;
        Ok(MadeCredential {
            format: credential.format(),
            auth_data: credential.auth_data,
            statement: credential.statement,
        })
    }
}
