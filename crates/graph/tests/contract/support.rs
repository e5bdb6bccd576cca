//! Shared setup: a test fixture with the users these tests need, configs and clients.

#![allow(dead_code)]

use std::time::Duration;

use latchkey_entra_sim::fixture::{
    DeviceMethodFixture, Fido2Fixture, GroupFixture, MethodsFixture, PhoneFixture, RiskFixture,
    UserFixture,
};
use latchkey_entra_sim::{Fixture, Sim};
use latchkey_graph::{
    ClientCertificate, Credential, GraphClient, GraphConfig, RetryPolicy, Timeouts,
};
use latchkey_types::{ObjectId, Secret};

pub const CLIENT_ID: &str = "11111111-1111-1111-1111-111111111111";
pub const CLIENT_SECRET: &str = "test-secret-value";
/// A second app with only `User.Read.All`, for 403s.
pub const WEAK_CLIENT_ID: &str = "55555555-5555-5555-5555-555555555555";
pub const WEAK_SECRET: &str = "weak-secret-value";

pub const OBRIEN: &str = "0b000000-0000-4000-8000-000000000001";
pub const DUP1: &str = "0b000000-0000-4000-8000-000000000002";
pub const DUP2: &str = "0b000000-0000-4000-8000-000000000003";
pub const PROXY: &str = "0b000000-0000-4000-8000-000000000004";
pub const SYNCED: &str = "0b000000-0000-4000-8000-000000000005";
pub const RISKY: &str = "0b000000-0000-4000-8000-000000000006";
pub const ADMIN: &str = "0b000000-0000-4000-8000-000000000007";
pub const METHODS: &str = "0b000000-0000-4000-8000-000000000008";
pub const TARGET: &str = "0b000000-0000-4000-8000-000000000009";
pub const GROUP_INNER: &str = "0c000000-0000-4000-8000-000000000001";
pub const GROUP_OUTER: &str = "0c000000-0000-4000-8000-000000000002";
pub const GROUP_OTHER: &str = "0c000000-0000-4000-8000-000000000003";
pub const GROUP_BIG: &str = "0c000000-0000-4000-8000-000000000004";

pub const ADMIN_PASSWORD: &str = "Adm1n-Passw0rd-For-Tests";
pub const REDIRECT_URI: &str = "http://localhost/latchkey/callback";
pub const KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../entra-sim/keys");

pub fn oid(s: &str) -> ObjectId {
    s.parse().unwrap()
}

pub fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn user(id: &str, upn: &str, name: &str) -> UserFixture {
    UserFixture {
        id: Some(id.into()),
        upn: upn.into(),
        display_name: name.into(),
        password: "Initial-Passw0rd-1234".into(),
        account_enabled: Some(true),
        ..Default::default()
    }
}

pub fn group(id: &str, name: &str, members: &[&str]) -> GroupFixture {
    GroupFixture {
        id: Some(id.into()),
        display_name: name.into(),
        description: None,
        mail_nickname: None,
        mail_enabled: false,
        security_enabled: true,
        members: members.iter().map(|m| m.to_string()).collect(),
        generated_members: 0,
    }
}

/// `Fixture::test()` plus the users, groups and apps these tests rely on (so they do not depend
/// on the details of the shared test fixture).
pub fn fixture() -> Fixture {
    let mut f = Fixture::test();
    let d = domain(&f);
    let app = f
        .apps
        .iter_mut()
        .find(|a| a.client_id == CLIENT_ID)
        .expect("Fixture::test() has the test app");
    for p in [
        "User.ReadWrite.All",
        "User-PasswordProfile.ReadWrite.All",
        "GroupMember.Read.All",
        "UserAuthenticationMethod.ReadWrite.All",
        "IdentityRiskyUser.ReadWrite.All",
        "Domain.Read.All",
        "Organization.Read.All",
    ] {
        if !app.application_permissions.iter().any(|x| x == p) {
            app.application_permissions.push(p.into());
        }
    }
    if !app
        .directory_roles
        .iter()
        .any(|r| r == "Privileged Authentication Administrator")
    {
        app.directory_roles
            .push("Privileged Authentication Administrator".into());
    }
    if !app.redirect_uris.iter().any(|r| r == REDIRECT_URI) {
        app.redirect_uris.push(REDIRECT_URI.into());
    }
    for s in [
        "openid",
        "offline_access",
        "User.Read.All",
        "UserAuthenticationMethod.ReadWrite.All",
        "OnPremDirectorySynchronization.Read.All",
    ] {
        if !app.delegated_scopes.iter().any(|x| x == s) {
            app.delegated_scopes.push(s.into());
        }
    }
    let mut weak = app.clone();
    weak.client_id = WEAK_CLIENT_ID.into();
    weak.display_name = "weak app".into();
    weak.service_principal_id = None;
    weak.client_secrets = vec![WEAK_SECRET.into()];
    weak.certificates = vec![];
    weak.application_permissions = vec!["User.Read.All".into()];
    weak.directory_roles = vec![];
    f.apps.push(weak);

    let mut obrien = user(OBRIEN, &format!("o'brien@{d}"), "Paddy O'Brien");
    obrien.mail = Some(format!("o'brien@{d}"));
    obrien.other_mails = vec!["paddy.home@example.org".into()];
    obrien.given_name = Some("Paddy".into());
    obrien.surname = Some("O'Brien".into());
    obrien.employee_id = Some("E-1001".into());
    obrien.usage_location = Some("IE".into());
    obrien.preferred_language = Some("en-IE".into());
    obrien.user_type = Some("Member".into());
    obrien.mobile_phone = Some("+353 871234567".into());
    f.users.push(obrien);

    let mut dup1 = user(DUP1, &format!("dup.one@{d}"), "Dup One");
    dup1.other_mails = vec!["shared.alias@example.org".into()];
    f.users.push(dup1);
    let mut dup2 = user(DUP2, &format!("dup.two@{d}"), "Dup Two");
    dup2.other_mails = vec!["shared.alias@example.org".into()];
    f.users.push(dup2);

    let mut proxy = user(PROXY, &format!("proxy.user@{d}"), "Proxy User");
    proxy.mail = Some(format!("proxy.user@{d}"));
    proxy.proxy_addresses = vec![format!("SMTP:proxy.user@{d}"), format!("smtp:p.alias@{d}")];
    f.users.push(proxy);

    let mut synced = user(SYNCED, &format!("synced.user@{d}"), "Synced User");
    synced.on_premises_sync_enabled = Some(true);
    synced.on_premises_sam_account_name = Some("synced.user".into());
    synced.on_premises_domain_name = Some("corp.example".into());
    synced.on_premises_immutable_id = Some("aW1tdXRhYmxl".into());
    f.users.push(synced);

    let mut risky = user(RISKY, &format!("risky.user@{d}"), "Risky User");
    risky.risk = Some(RiskFixture {
        level: "high".into(),
        state: "atRisk".into(),
        detail: "none".into(),
        last_updated: None,
    });
    f.users.push(risky);

    let mut admin = user(ADMIN, &format!("auth.admin@{d}"), "Auth Admin");
    admin.password = ADMIN_PASSWORD.into();
    admin.directory_roles = vec!["Privileged Authentication Administrator".into()];
    f.users.push(admin);

    let mut m = user(METHODS, &format!("methods.user@{d}"), "Methods User");
    m.methods = MethodsFixture {
        email: Some("methods.home@example.org".into()),
        phones: vec![PhoneFixture {
            phone_type: "mobile".into(),
            number: "+1 2065550100".into(),
            sms_sign_in_state: None,
        }],
        microsoft_authenticator: vec![DeviceMethodFixture {
            display_name: Some("Pixel 9".into()),
            ..Default::default()
        }],
        fido2: vec![Fido2Fixture {
            display_name: "Red key".into(),
            ..Default::default()
        }],
        software_oath: vec![DeviceMethodFixture::default()],
        windows_hello_for_business: vec![DeviceMethodFixture {
            display_name: Some("Surface".into()),
            key_strength: Some("normal".into()),
            ..Default::default()
        }],
        platform_credential: vec![DeviceMethodFixture {
            display_name: Some("Mac".into()),
            platform: Some("macOS".into()),
            ..Default::default()
        }],
        ..Default::default()
    };
    f.users.push(m);

    let mut target = user(TARGET, &format!("target.user@{d}"), "Target User");
    target.mail = Some(format!("target.user@{d}"));
    f.users.push(target);

    let obrien_upn = format!("o'brien@{d}");
    f.groups
        .push(group(GROUP_INNER, "LK Inner", &[&obrien_upn]));
    f.groups.push(group(GROUP_OUTER, "LK Outer", &["LK Inner"]));
    f.groups.push(group(GROUP_OTHER, "LK Other", &[]));
    let mut big = group(GROUP_BIG, "LK Big", &[]);
    big.generated_members = 12;
    f.groups.push(big);
    // O'Brien also holds a directory role, to see roles and groups in one call.
    f.users
        .iter_mut()
        .find(|u| u.id.as_deref() == Some(OBRIEN))
        .unwrap()
        .directory_roles = vec!["Helpdesk Administrator".into()];
    f
}

pub fn domain(f: &Fixture) -> String {
    f.tenant.initial_domain.clone()
}

pub async fn start() -> (Sim, Fixture) {
    start_with(fixture()).await
}

pub async fn start_with(f: Fixture) -> (Sim, Fixture) {
    install_provider();
    let sim = Sim::start(f.clone()).await.expect("simulator starts");
    (sim, f)
}

/// Small retry budget and timeouts so fault tests run fast.
pub fn config(sim: &Sim, f: &Fixture, credential: Credential) -> GraphConfig {
    let mut c = GraphConfig::new(f.tenant.id.clone(), CLIENT_ID, credential);
    c.authority_host = sim.base_url();
    c.graph_base_url = sim.graph_base_url();
    c.retry = RetryPolicy {
        max_attempts: 4,
        max_total_wait: Duration::from_secs(5),
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
    };
    c.timeouts = Timeouts {
        connect: Duration::from_secs(2),
        request: Duration::from_secs(3),
        lro_poll_interval: Duration::from_millis(50),
        lro_deadline: Duration::from_secs(15),
    };
    c
}

pub fn secret() -> Credential {
    Credential::ClientSecret(Secret::new(CLIENT_SECRET.into()))
}

pub fn certificate(name: &str) -> ClientCertificate {
    ClientCertificate::from_pem_files(
        std::path::Path::new(&format!("{KEYS}/{name}.pem")),
        std::path::Path::new(&format!("{KEYS}/{name}.key.pem")),
    )
    .unwrap()
}

pub fn app_client(sim: &Sim, f: &Fixture) -> GraphClient {
    GraphClient::new(config(sim, f, secret())).unwrap()
}

pub fn weak_client(sim: &Sim, f: &Fixture) -> GraphClient {
    let mut c = config(
        sim,
        f,
        Credential::ClientSecret(Secret::new(WEAK_SECRET.into())),
    );
    c.client_id = WEAK_CLIENT_ID.into();
    GraphClient::new(c).unwrap()
}

/// Requests recorded by the simulator whose path contains `needle`.
pub fn requests_to(sim: &Sim, needle: &str) -> Vec<latchkey_entra_sim::RecordedRequest> {
    sim.requests()
        .into_iter()
        .filter(|r| r.path.contains(needle))
        .collect()
}

pub fn delegated_scopes() -> Vec<String> {
    vec![
        "openid".into(),
        "offline_access".into(),
        "https://graph.microsoft.com/UserAuthenticationMethod.ReadWrite.All".into(),
        "https://graph.microsoft.com/User.Read.All".into(),
        "https://graph.microsoft.com/OnPremDirectorySynchronization.Read.All".into(),
    ]
}

/// Drives the simulator's sign-in page like a browser (no redirect following) and returns the
/// pending authorization, the `code` and the `state` from the redirect.
pub async fn sign_in(
    sim: &Sim,
    f: &Fixture,
    username: &str,
    password: &str,
) -> (
    latchkey_graph::delegated::PendingAuthorization,
    Secret<String>,
    String,
) {
    let cfg = config(sim, f, secret());
    let pending =
        latchkey_graph::delegated::PendingAuthorization::new(REDIRECT_URI, delegated_scopes())
            .unwrap();
    let url = pending.authorize_url(&cfg).unwrap();
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = browser.get(url.clone()).send().await.unwrap();
    assert_eq!(page.status(), 200, "sign-in page");
    let mut form: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    form.push(("username".into(), username.into()));
    form.push(("password".into(), password.into()));
    let mut post = url.clone();
    post.set_query(None);
    let resp = browser.post(post).form(&form).send().await.unwrap();
    assert!(
        resp.status().is_redirection(),
        "sign-in answered {}",
        resp.status()
    );
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let back = url::Url::parse(&location).unwrap();
    assert!(location.starts_with(REDIRECT_URI), "{location}");
    let q: std::collections::HashMap<String, String> = back.query_pairs().into_owned().collect();
    let code = q
        .get("code")
        .unwrap_or_else(|| panic!("no code in {location}"))
        .clone();
    let state = q["state"].clone();
    (pending, Secret::new(code), state)
}

/// A refresh token for the admin (Privileged Authentication Administrator).
pub async fn admin_refresh_token(sim: &Sim, f: &Fixture) -> Secret<String> {
    let upn = format!("auth.admin@{}", domain(f));
    let (pending, code, _) = sign_in(sim, f, &upn, ADMIN_PASSWORD).await;
    let tokens = pending
        .redeem(&config(sim, f, secret()), &code)
        .await
        .unwrap();
    tokens
        .refresh_token
        .expect("offline_access gives a refresh token")
}

pub async fn delegated_client(sim: &Sim, f: &Fixture) -> GraphClient {
    let rt = admin_refresh_token(sim, f).await;
    GraphClient::with_delegated(config(sim, f, secret()), rt, delegated_scopes(), None).unwrap()
}
