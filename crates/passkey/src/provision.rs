//! [`provision`]: the whole `latchkey passkey provision <user>` flow, and [`resolve_user`] for
//! what the admin typed.

use latchkey_graph::{Clock, GraphClient, User, UserRef};
use latchkey_types::ObjectId;

use crate::authenticator::{Authenticator, AuthenticatorInfo, MadeCredential, MakeCredential};
use crate::error::PasskeyError;
use crate::pin::Pin;
use crate::registration::{Provisioned, Registration, check_policy, display_name};

/// A device the flow can move onto a blocking thread and back.
pub type Device = Box<dyn Authenticator + Send>;

/// Finds the user an admin named: an object id, else a UPN or any of the user's addresses
/// (as `latchkey user show` does).
pub async fn resolve_user(graph: &GraphClient, who: &str) -> Result<User, PasskeyError> {
    let who = who.trim();
    let user = match who.parse::<ObjectId>() {
        Ok(id) => graph.get_user(&UserRef::Id(id)).await?,
        Err(_) => graph.find_user(who).await?,
    };
    Ok(user)
}

/// Registers a new passkey on `device` for `user` in Entra:
///
/// 1. the tenant's passkey policy (method on, "Allow self-service set up" on) — refused before
///    the key is touched; a 403 on the policy only skips these checks, with a warning;
/// 2. the key's model (getInfo, no touch) against the tenant's key restrictions;
/// 3. creation options from Graph (a 5-minute single-use challenge), refused if already expired;
/// 4. clientDataJSON (origin `https://{rp id}`) and makeCredential on the key (rk as Entra asks,
///    user verification by `pin` or the key's built-in check, Entra's exclude list, the offered
///    algorithms the key supports) — this waits for the touch;
/// 5. the attestationObject, self-checked against rp id, origin and challenge;
/// 6. the POST, unless the challenge expired meanwhile (time read from `clock` after the touch).
///
/// `display_name`: `None` registers "Security key (YYYY-MM-DD)". Device calls run on tokio's
/// blocking pool (CTAP over HID blocks), so this needs a tokio runtime.
pub async fn provision(
    graph: &GraphClient,
    user: &ObjectId,
    display_name_given: Option<&str>,
    pin: Option<Pin>,
    device: Device,
    clock: &Clock,
) -> Result<Provisioned, PasskeyError> {
    let name = display_name(display_name_given, clock.now().date())?;
    let policy = check_policy(graph).await?;

    let (device, info) = device_info(device).await?;
    policy.check_key(&info.aaguid)?;

    let registration = Registration::begin(graph, user, clock.now()).await?;
    let request = registration.request(&info, pin)?;
    tracing::info!(
        rp_id = %request.rp_id,
        aaguid = %info.aaguid,
        excluded = request.exclude.len(),
        "asking the security key for a new passkey"
    );
    let made = make_credential(device, request).await?;

    registration
        .finish(graph, user, made, &name, &policy, clock.now())
        .await
}

async fn device_info(mut device: Device) -> Result<(Device, AuthenticatorInfo), PasskeyError> {
    let (device, info) = tokio::task::spawn_blocking(move || {
        let info = device.info();
        (device, info)
    })
    .await
    .map_err(|e| PasskeyError::Internal(format!("security key worker: {e}")))?;
    Ok((device, info?))
}

async fn make_credential(
    mut device: Device,
    request: MakeCredential,
) -> Result<MadeCredential, PasskeyError> {
    // The request (and the PIN in it) is dropped, and so wiped, on the worker thread.
    tokio::task::spawn_blocking(move || device.make_credential(&request))
        .await
        .map_err(|e| PasskeyError::Internal(format!("security key worker: {e}")))?
}
