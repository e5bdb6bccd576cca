//! [`HidAuthenticator`]: a FIDO2 security key on USB, through ctap-hid-fido2 (CTAP2 over HID).
//!
//! Platform notes (kept here, the only platform-specific part of the crate):
//! - Linux: the process needs read/write access to the key's `/dev/hidraw*` node (systemd's
//!   `uaccess` tag gives it to the logged-in user on most desktops; otherwise a udev rule).
//!   Building needs libudev headers (`libudev-dev`) and `pkg-config`.
//! - Windows: since Windows 10 1903 only administrators may talk raw HID to FIDO devices
//!   (everyone else must go through `webauthn.dll`), so run the CLI from an elevated prompt.
//! - ctap-hid-fido2 sends an empty `rp.name`; Entra does not look at it.
//!
//! ctap-hid-fido2 reports errors as text ("response_status err = 0x31 CTAP2_ERR_PIN_INVALID …");
//! [`map_error`] recognises the CTAP status names in it. It can also panic on a device it
//! cannot enumerate or a malformed answer, so every call into it runs under `catch_unwind`.

use std::panic::{AssertUnwindSafe, catch_unwind};

use ctap_hid_fido2::fidokey::credential_management::credential_management_params::CredentialProtectionPolicy;
use ctap_hid_fido2::fidokey::make_credential::{
    Attestation, CredentialSupportedKeyType, Extension as CredentialExtension,
    MakeCredentialArgsBuilder,
};
use ctap_hid_fido2::public_key_credential_user_entity::PublicKeyCredentialUserEntity;
use ctap_hid_fido2::{FidoKeyHid, FidoKeyHidFactory, LibCfg};
use latchkey_webauthn::{Algorithm, AttestationFormat, AttestationStatement};
use uuid::Uuid;

use crate::authenticator::{
    Authenticator, AuthenticatorInfo, CredProtect, MadeCredential, MakeCredential,
};
use crate::error::PasskeyError;

/// Options for [`HidAuthenticator::open`].
#[derive(Debug, Clone)]
pub struct HidOptions {
    /// Printed to stderr once when the key starts waiting for a touch; `None` prints nothing.
    pub touch_prompt: Option<String>,
}

impl Default for HidOptions {
    fn default() -> Self {
        Self {
            touch_prompt: Some("Touch the security key now.".into()),
        }
    }
}

/// The one FIDO2 security key plugged into this machine.
pub struct HidAuthenticator {
    device: FidoKeyHid,
    product: String,
}

impl std::fmt::Debug for HidAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HidAuthenticator")
            .field("product", &self.product)
            .finish_non_exhaustive()
    }
}

/// Runs `f` and turns a panic inside ctap-hid-fido2 (or hidapi) into an error.
fn guarded<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, PasskeyError> {
    catch_unwind(AssertUnwindSafe(f))
        .map_err(|_| PasskeyError::Device(format!("the FIDO library failed while {what}")))
}

impl HidAuthenticator {
    /// Finds and opens the only FIDO device (HID usage page 0xF1D0). None → [`PasskeyError::NoDevice`];
    /// more than one → [`PasskeyError::SeveralDevices`] (nothing is chosen for the admin).
    pub fn open(options: &HidOptions) -> Result<Self, PasskeyError> {
        let devices = guarded("listing HID devices", ctap_hid_fido2::get_fidokey_devices)?;
        let device = match devices.as_slice() {
            [] => return Err(PasskeyError::NoDevice),
            [one] => one,
            more => return Err(PasskeyError::SeveralDevices { count: more.len() }),
        };
        let mut cfg = LibCfg::init();
        cfg.enable_log = false;
        cfg.keep_alive_msg_to_stderr = true;
        match &options.touch_prompt {
            Some(text) if !text.is_empty() => {
                cfg.enable_keep_alive_msg = true;
                cfg.keep_alive_msg = text.clone();
            }
            _ => cfg.enable_keep_alive_msg = false,
        }
        let params = [device.param.clone()];
        let mut fido = guarded("opening the security key", || {
            FidoKeyHidFactory::create_by_params(&params, &cfg)
        })?
        .map_err(|e| {
            PasskeyError::Device(format!(
                "cannot open {}: {e} (on Linux check access to /dev/hidraw*, on Windows run \
                 elevated)",
                device.product_string
            ))
        })?;
        // PIN/UV protocol 2 where the key has it (FIPS-mode keys accept nothing else); else 1.
        guarded("reading the key's PIN protocols", || {
            fido.set_pin_uv_auth_protocol_two()
        })?
        .map_err(map_error)?;
        Ok(Self {
            device: fido,
            product: device.product_string.clone(),
        })
    }

    /// The product name the key reports over USB.
    pub fn product(&self) -> &str {
        &self.product
    }

    fn pin_retries(&self) -> Option<u32> {
        guarded("reading PIN retries", || self.device.get_pin_retries())
            .ok()?
            .ok()
            .and_then(|n| u32::try_from(n).ok())
    }
}

impl Authenticator for HidAuthenticator {
    fn info(&mut self) -> Result<AuthenticatorInfo, PasskeyError> {
        let info = guarded("reading the key's information", || self.device.get_info())?
            .map_err(map_error)?;
        let option = |name: &str| {
            info.options
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| *v)
        };
        let aaguid = <[u8; 16]>::try_from(info.aaguid.as_slice())
            .map(Uuid::from_bytes)
            .unwrap_or(Uuid::nil());
        Ok(AuthenticatorInfo {
            aaguid,
            versions: info.versions.clone(),
            extensions: info.extensions.clone(),
            client_pin: option("clientPin"),
            built_in_uv: option("uv"),
            resident_keys: option("rk") == Some(true),
            // ctap-hid-fido2 flattens each `{alg, type}` entry into ("alg", "-7"), ("type", …).
            algorithms: info
                .algorithms
                .iter()
                .filter(|(k, _)| k == "alg")
                .filter_map(|(_, v)| v.parse().ok())
                .collect(),
        })
    }

    fn make_credential(&mut self, req: &MakeCredential) -> Result<MadeCredential, PasskeyError> {
        let user = PublicKeyCredentialUserEntity::new(
            Some(&req.user_handle),
            Some(&req.user_name),
            Some(&req.user_display_name),
        );
        // ctap-hid-fido2 hashes what it is given as "challenge": hand it the clientDataJSON.
        let mut builder =
            MakeCredentialArgsBuilder::new(&req.rp_id, &req.client_data_json).user_entity(&user);
        if req.resident_key {
            builder = builder.resident_key();
        }
        if !req
            .algorithms
            .iter()
            .any(|a| matches!(a, Algorithm::Es256 | Algorithm::EdDsa))
        {
            // ctap-hid-fido2 would fall back to ES256, which the request did not offer.
            return Err(PasskeyError::UnsupportedAlgorithm {
                offered: req.algorithms.iter().map(|a| a.cose()).collect(),
            });
        }
        for alg in &req.algorithms {
            match alg {
                Algorithm::Es256 => {
                    builder = builder.key_type(CredentialSupportedKeyType::Ecdsa256)
                }
                Algorithm::EdDsa => builder = builder.key_type(CredentialSupportedKeyType::Ed25519),
                // ctap-hid-fido2 cannot ask for RS256; security keys do not make RSA keys anyway.
                Algorithm::Rs256 => {}
            }
        }
        for id in &req.exclude {
            builder = builder.exclude_authenticator(id);
        }
        let mut extensions = Vec::new();
        if req.hmac_secret {
            extensions.push(CredentialExtension::HmacSecret(Some(true)));
        }
        if let Some(level) = req.cred_protect {
            extensions.push(CredentialExtension::CredProtect(Some(match level {
                CredProtect::UserVerificationOptional => {
                    CredentialProtectionPolicy::UserVerificationOptional
                }
                CredProtect::UserVerificationOptionalWithCredentialIdList => {
                    CredentialProtectionPolicy::UserVerificationOptionalWithCredentialIdList
                }
                CredProtect::UserVerificationRequired => {
                    CredentialProtectionPolicy::UserVerificationRequired
                }
            })));
        }
        if !extensions.is_empty() {
            builder = builder.extensions(&extensions);
        }
        // With a PIN the builder sends a pinUvAuthParam and no `uv` option (the PIN is the
        // verification); without one it asks for built-in verification (`uv: true`).
        if let Some(pin) = &req.pin {
            builder = builder.pin(pin.expose());
        } else if !req.user_verification {
            builder = builder.without_pin_and_uv();
        }
        let args = builder.build();
        let result = guarded("creating the credential", || {
            self.device.make_credential_with_args(&args)
        })?;
        drop(args);
        match result {
            Ok(att) => made_credential(att),
            Err(e) => match map_error(e) {
                PasskeyError::WrongPin { .. } => Err(PasskeyError::WrongPin {
                    retries_left: self.pin_retries(),
                }),
                other => Err(other),
            },
        }
    }
}

/// The CTAP attestation (`{1: fmt, 2: authData, 3: attStmt}`, as ctap-hid-fido2 parsed it) in
/// the form the attestationObject is built from.
fn made_credential(att: Attestation) -> Result<MadeCredential, PasskeyError> {
    let (format, statement) = match att.fmt.as_str() {
        "packed" => {
            let alg = Algorithm::from_cose(i64::from(att.attstmt_alg)).ok_or_else(|| {
                PasskeyError::Device(format!(
                    "the key signed its attestation with unsupported algorithm {}",
                    att.attstmt_alg
                ))
            })?;
            (
                AttestationFormat::Packed,
                AttestationStatement::Packed {
                    alg,
                    sig: att.attstmt_sig,
                    x5c: att.attstmt_x5c,
                },
            )
        }
        "none" => (AttestationFormat::None, AttestationStatement::None),
        other => {
            // Entra accepts only `packed` and `none`; a CTAP2 key answering otherwise is odd.
            return Err(PasskeyError::Device(format!(
                "the key answered with attestation format {other:?}; Entra accepts only packed \
                 and none"
            )));
        }
    };
    Ok(MadeCredential {
        format,
        auth_data: att.auth_data,
        statement,
    })
}

/// CTAP status names in ctap-hid-fido2's error text → what the admin should hear.
pub(crate) fn map_error(e: impl std::fmt::Display) -> PasskeyError {
    let text = e.to_string();
    let has = |name: &str| text.contains(name);
    if has("CTAP2_ERR_PIN_INVALID") {
        PasskeyError::WrongPin { retries_left: None }
    } else if has("CTAP2_ERR_PIN_AUTH_BLOCKED") {
        PasskeyError::PinAuthBlocked
    } else if has("CTAP2_ERR_PIN_BLOCKED") {
        PasskeyError::PinBlocked
    } else if has("CTAP2_ERR_PIN_NOT_SET") {
        PasskeyError::PinNotSet
    } else if has("CTAP2_ERR_PIN_REQUIRED") || has("CTAP2_ERR_PUAT_REQUIRED") {
        PasskeyError::PinRequired
    } else if has("CTAP2_ERR_CREDENTIAL_EXCLUDED") {
        PasskeyError::CredentialExcluded
    } else if has("CTAP2_ERR_USER_ACTION_TIMEOUT")
        || has("CTAP2_ERR_ACTION_TIMEOUT")
        || has("CTAP1_ERR_TIMEOUT")
    {
        PasskeyError::NotTouched
    } else if has("CTAP2_ERR_KEY_STORE_FULL") {
        PasskeyError::KeyFull
    } else if has("CTAP2_ERR_UNSUPPORTED_ALGORITHM") {
        PasskeyError::UnsupportedAlgorithm { offered: vec![] }
    } else if has("CTAP2_ERR_UV_BLOCKED") || has("CTAP2_ERR_UV_INVALID") {
        PasskeyError::UserVerificationFailed
    } else if has("CTAP2_ERR_OPERATION_DENIED") {
        PasskeyError::Device("the key refused the operation (was it cancelled on the key?)".into())
    } else {
        PasskeyError::Device(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_device_can_move_to_a_blocking_thread() {
        fn device<T: Authenticator + Send + 'static>() {}
        device::<HidAuthenticator>();
    }

    #[test]
    fn ctap_status_texts_map_to_clear_errors() {
        let cases = [
            (
                "response_status err = 0x31 CTAP2_ERR_PIN_INVALID   PIN Invalid.",
                "wrong_pin",
            ),
            (
                "response_status err = 0x32 CTAP2_ERR_PIN_BLOCKED PIN Blocked.",
                "pin_blocked",
            ),
            (
                "response_status err = 0x34 CTAP2_ERR_PIN_AUTH_BLOCKED PIN authentication, pinAuth, blocked.",
                "pin_auth_blocked",
            ),
            (
                "response_status err = 0x19 CTAP2_ERR_CREDENTIAL_EXCLUDED   Valid credential found in the exclude list.",
                "credential_excluded",
            ),
            (
                "response_status err = 0x2F CTAP2_ERR_USER_ACTION_TIMEOUT   Timeout waiting for user interaction.",
                "not_touched",
            ),
            (
                "response_status err = 0x36 CTAP2_ERR_PIN_REQUIRED  PIN is required for the selected operation.",
                "pin_required",
            ),
            (
                "response_status err = 0x35 CTAP2_ERR_PIN_NOT_SET No PIN has been set.",
                "pin_not_set",
            ),
            ("read err = 0xFF CTAP2_ERR_VENDOR_LAST", "device"),
        ];
        for (text, reason) in cases {
            assert_eq!(map_error(text).reason(), reason, "{text}");
        }
    }

    #[test]
    fn ctap_attestation_maps_to_packed_or_none() {
        let att = Attestation {
            fmt: "packed".into(),
            auth_data: vec![1, 2, 3],
            attstmt_alg: -7,
            attstmt_sig: vec![4],
            attstmt_x5c: vec![vec![5]],
            ..Default::default()
        };
        let made = made_credential(att).unwrap();
        assert_eq!(made.format, AttestationFormat::Packed);
        assert_eq!(made.auth_data, vec![1, 2, 3]);
        assert_eq!(
            made.statement,
            AttestationStatement::Packed {
                alg: Algorithm::Es256,
                sig: vec![4],
                x5c: vec![vec![5]]
            }
        );
        let none = Attestation {
            fmt: "none".into(),
            ..Default::default()
        };
        assert_eq!(
            made_credential(none).unwrap().statement,
            AttestationStatement::None
        );
        let u2f = Attestation {
            fmt: "fido-u2f".into(),
            ..Default::default()
        };
        assert!(made_credential(u2f).is_err());
    }
}
