//! What `latchkey demo` sets up in its simulated tenant besides the portal: the enrolled users,
//! and the delegated credential of the demo's Authentication Administrator.

use std::collections::HashMap;
use std::sync::Arc;

use latchkey_entra_sim::Sim;
use latchkey_store::{NewEnrollment, Store};
use latchkey_types::{ObjectId, Secret, Upn};
use latchkey_verify::{AuthenticatorApp, TotpSeed};
use time::OffsetDateTime;

use super::DemoEnrollment;
use crate::outbox::Outbox;

/// Enrolls the demo's users as `enroll` says (email, text, an authenticator whose seed the
/// outbox page shows); returns the authenticator seeds by UPN.
pub(super) async fn enroll(
    store: &Arc<dyn Store>,
    sim: &Sim,
    totp: &AuthenticatorApp,
    outbox: &Outbox,
    enroll: &[DemoEnrollment],
    now: OffsetDateTime,
) -> anyhow::Result<HashMap<String, TotpSeed>> {
    let mut seeds = HashMap::new();
    for DemoEnrollment {
        upn,
        email,
        phone,
        totp: authenticator,
    } in enroll
    {
        let Some(id) = sim
            .tenant()
            .user_id(upn)
            .and_then(|i| i.parse::<ObjectId>().ok())
        else {
            continue;
        };
        let add = async |method: &str,
                         data: serde_json::Value,
                         secret: Option<Secret<Vec<u8>>>|
               -> anyhow::Result<()> {
            store
                .stage_enrollment(
                    NewEnrollment {
                        subject: id,
                        method: method.into(),
                        data,
                        secret,
                    },
                    now,
                )
                .await?;
            store.activate_enrollment(&id, method, now).await?;
            Ok(())
        };
        if let Some(e) = email {
            add("email", serde_json::json!({ "address": e }), None).await?;
        }
        if let Some(p) = phone {
            add("sms", serde_json::json!({ "phone": p }), None).await?;
        }
        if *authenticator {
            let setup = totp.begin_enrollment(&upn.parse::<Upn>()?)?;
            add(
                "totp",
                serde_json::json!({}),
                Some(Secret::new(setup.seed.expose_bytes().to_vec())),
            )
            .await?;
            outbox.add_seed(upn, setup.seed.clone());
            seeds.insert(upn.clone(), setup.seed);
        }
    }
    Ok(seeds)
}

/// The demo's Authentication Administrator, whose delegated credential lets synced demo users
/// reset with writeback (a real tenant uses `latchkey delegate`).
const DEMO_AUTH_ADMIN: (&str, &str) = ("helpdesk@contoso.com", "Farid-Demo-2024!");

/// Signs the demo's Authentication Administrator in at the simulated tenant (the authorization
/// code flow with PKCE, posting the sign-in form as a browser would) and builds the delegated
/// client from the refresh token.
pub(super) async fn delegated_client(
    settings: &crate::config::Settings,
) -> anyhow::Result<latchkey_graph::GraphClient> {
    let config = crate::entra::graph_config(settings)?;
    let pending = latchkey_graph::delegated::PendingAuthorization::new(
        "http://localhost/auth/callback",
        crate::delegate::scopes(),
    )?;
    let url = pending
        .authorize_url(&config)
        .map_err(|e| anyhow::anyhow!("demo delegated sign-in: {e}"))?;
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let mut form: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    form.push(("username".into(), DEMO_AUTH_ADMIN.0.into()));
    form.push(("password".into(), DEMO_AUTH_ADMIN.1.into()));
    let mut post = url.clone();
    post.set_query(None);
    let resp = browser.post(post).form(&form).send().await?;
    let location = resp
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .ok_or_else(|| anyhow::anyhow!("demo delegated sign-in: {}", resp.status()))?;
    let back = url::Url::parse(location)?;
    let code = back
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| Secret::new(v.into_owned()))
        .ok_or_else(|| anyhow::anyhow!("demo delegated sign-in: no code"))?;
    let tokens = pending
        .redeem(&config, &code)
        .await
        .map_err(|e| anyhow::anyhow!("demo delegated sign-in: {e}"))?;
    let refresh_token = tokens
        .refresh_token
        .ok_or_else(|| anyhow::anyhow!("demo delegated sign-in: no refresh token"))?;
    latchkey_graph::GraphClient::with_delegated(
        config,
        refresh_token,
        crate::delegate::scopes(),
        None,
    )
    .map_err(|e| anyhow::anyhow!("demo delegated client: {e}"))
}
