//! `latchkey demo`: a simulated Entra tenant, the portal, an outbox and pre-enrolled users on
//! loopback, with nothing else to install. Everything lives in a temporary folder.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use latchkey_entra_sim::{Fixture, Sim};
use latchkey_notify::{Branding, Channels};
use latchkey_store::{Cipher, EncryptionKey};
use latchkey_types::Secret;
use latchkey_verify::{
    AuthenticatorApp, CodeConfig, CodeIssuer, CodeKey, SystemClock, TotpConfig, TotpSeed,
};

mod operations;
mod setup;
mod welcome;

pub use operations::DemoOperations;

use crate::app::RunningPortal;
use crate::guard::{Csrf, IpNet, TrustedProxies};
use crate::outbox::{Outbox, OutboxTransport};
use crate::portal::Portal;
use crate::render::Brand;
use crate::services::{CookiePolicy, Services, random_key};
use latchkey_selfservice::directory::Directory;
use latchkey_selfservice::notices::start_notifier;
use latchkey_selfservice::{DecoyKey, SelfService};

/// Client id and secret of the demo tenant's app registration (`crates/entra-sim/fixtures/demo.toml`).
const DEMO_CLIENT_ID: &str = "22222222-2222-2222-2222-222222222222";
const DEMO_CLIENT_SECRET: &str = "demo-secret-value";

/// Who is pre-enrolled in the demo, with which methods (email to their other mail, text to their
/// mobile, an authenticator whose current code the outbox page shows).
const ENROLLED: &[(&str, Option<&str>, Option<&str>, bool)] = &[
    (
        "adele.vance@contoso.com",
        Some("adele.vance@outlook.example"),
        Some("+1 4255550109"),
        true,
    ),
    (
        "anna.jensen@contoso.com",
        Some("anna.jensen@outlook.example"),
        Some("+45 20123456"),
        false,
    ),
    (
        "julia.schmidt@contoso.com",
        Some("julia.schmidt@gmx.example"),
        None,
        true,
    ),
    (
        "hiro.tanaka@contoso.com",
        Some("hiro.tanaka@outlook.example"),
        None,
        true,
    ),
    (
        "grace.obi@contoso.com",
        Some("grace.obi@outlook.example"),
        None,
        true,
    ),
    (
        "carla.mendes@contoso.com",
        Some("carla.mendes@outlook.example"),
        Some("+351 912345678"),
        false,
    ),
];

/// The demo's identify deadline (`latchkey serve` defaults to 600 ms: `[portal] response_deadline_ms`).
pub const DEMO_DEADLINE: Duration = Duration::from_millis(400);

/// How [`start_with`] builds a demo. [`DemoOptions::default`] is exactly what `latchkey demo` runs
/// (and what [`start`] uses); benchmarks change fields to load the portal without tripping the
/// demo's own safeguards: a bigger tenant, more pre-enrolled users, a load generator on loopback
/// standing in for a reverse proxy. Only the demo reads these; `latchkey serve` takes its values
/// from the configuration file, so production defaults are unaffected.
pub struct DemoOptions {
    /// The simulated tenant. It must have the "SSPR Enabled" group the demo policy applies to.
    pub fixture: Fixture,
    /// Minimum duration of every identify answer (enumeration safety). The demo uses 400 ms;
    /// `Duration::ZERO` shows the server's own cost in benchmarks.
    pub deadline: Duration,
    /// Peers whose `X-Forwarded-For` the portal believes (none in the demo). A load generator on
    /// 127.0.0.1 lists it here and sends one address per simulated client, so per-address
    /// throttles apply per client as they would behind a real proxy.
    pub trusted_proxies: Vec<IpAddr>,
    /// Who is pre-enrolled, with which methods.
    pub enroll: Vec<DemoEnrollment>,
    /// Where emails and texts go. `None`: the in-memory outbox shown at `/demo/outbox`, which keeps
    /// every message (a benchmark plugs in a transport that keeps only what it needs).
    pub channels: Option<Channels>,
    /// The Graph time budget of one self-service request (`[graph] request_budget_seconds`).
    pub graph_budget: Duration,
    /// Throttle limits (`[limits]`).
    pub limits: latchkey_selfservice::flow::Limits,
    /// Kiosk mode (`[kiosk]`): on in the demo, at `/kiosk`.
    pub kiosk: crate::config::KioskSettings,
    /// Passkeys: browsers accept a host name as a WebAuthn relying party, never an IP address,
    /// so the demo's passkeys belong to `http://localhost:PORT`, where the whole portal is
    /// served as well (sign-ins begun there come back there). With `localhost`, that is also
    /// the URL [`Demo::portal_url`] gives (Chromium tests of passkeys use it); without, the
    /// demo's address is `http://127.0.0.1:PORT` and passkeys work at the other one.
    pub localhost: bool,
    /// Metrics and audit forwarding as in production (benchmarks measure their cost); off in
    /// the demo.
    pub operations: Option<DemoOperations>,
    /// The directory mirror (`[directory]`): on in `latchkey demo` (every 10 s), off by default
    /// here so tests that change the tenant see it at once.
    pub mirror: Option<crate::config::DirectorySettings>,
    /// The store's URL: `None` is the demo's own SQLite file; a benchmark passes a PostgreSQL
    /// URL (an empty database, or one this demo's migrations made) to measure it there.
    pub store_url: Option<String>,
}

/// One pre-enrolled demo user.
#[derive(Debug, Clone)]
pub struct DemoEnrollment {
    pub upn: String,
    /// Email code destination.
    pub email: Option<String>,
    /// Text message destination.
    pub phone: Option<String>,
    /// Enroll an authenticator app (a fresh seed; [`Demo::totp_seed`] and the outbox page have it).
    pub totp: bool,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            fixture: Fixture::demo(),
            deadline: DEMO_DEADLINE,
            trusted_proxies: Vec::new(),
            enroll: ENROLLED
                .iter()
                .map(|(upn, email, phone, totp)| DemoEnrollment {
                    upn: (*upn).to_string(),
                    email: email.map(str::to_string),
                    phone: phone.map(str::to_string),
                    totp: *totp,
                })
                .collect(),
            channels: None,
            graph_budget: Duration::from_secs(20),
            limits: Default::default(),
            kiosk: crate::config::KioskSettings {
                enabled: true,
                ..Default::default()
            },
            localhost: false,
            operations: None,
            mirror: None,
            store_url: None,
        }
    }
}

/// A demo running in the background: the simulated tenant, the portal pointed at it, and the
/// configuration file `latchkey check` / `latchkey user show` can use. End-to-end tests start it
/// in-process with `start("127.0.0.1:0")`.
pub struct Demo {
    pub sim: Sim,
    pub portal: RunningPortal,
    pub config_path: PathBuf,
    pub outbox: Arc<Outbox>,
    /// The portal's store (tests read the audit trail from it).
    pub store: Arc<dyn latchkey_store::Store>,
    /// The running portal's services (tests swap the policy set through it).
    pub services: Arc<Services>,
    /// Authenticator seeds of the pre-enrolled users, by UPN.
    seeds: HashMap<String, TotpSeed>,
    dir: PathBuf,
    /// The portal's public URL ([`DemoOptions::localhost`]).
    url: String,
    /// Audit forwarding ([`DemoOptions::operations`]).
    forwarding: Option<crate::forwarding::Running>,
    /// The directory mirror's syncer ([`DemoOptions::mirror`]).
    syncer: Option<crate::mirror::RunningSyncer>,
}

impl Demo {
    /// `http://127.0.0.1:PORT` (or `http://localhost:PORT`), no trailing slash.
    pub fn portal_url(&self) -> &str {
        &self.url
    }

    /// The audit event types recorded so far, oldest first.
    pub async fn audit_types(&self) -> Vec<String> {
        let query = latchkey_store::AuditQuery {
            limit: 1000,
            ..Default::default()
        };
        let mut events: Vec<String> = self
            .store
            .audit_events(&query)
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|r| r.event.event_type)
            .collect();
        events.reverse();
        events
    }

    /// The authenticator seed a pre-enrolled user was given (to compute their current code).
    pub fn totp_seed(&self, upn: &str) -> Option<&TotpSeed> {
        self.seeds.get(upn)
    }

    /// Stops the portal and the simulator and removes the temporary folder.
    pub async fn stop(self) {
        self.portal.stop().await;
        if let Some(f) = self.forwarding {
            f.stop().await;
        }
        if let Some(s) = self.syncer {
            s.stop().await;
        }
        self.sim.stop().await;
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            tracing::warn!(error = %e, dir = %self.dir.display(), "cannot remove the demo's folder");
        }
    }
}

/// The demo's access policy: everyone in "SSPR Enabled" (nested: Sales, Operations) may reset and
/// unlock with two of email, authenticator app and text message, enrolled in Latchkey or
/// registered in Entra.
/// `extra_methods` are appended to its method list (tests: `"questions"`).
fn demo_policy(group_id: &str, extra_methods: &[&str]) -> String {
    let extra: String = extra_methods.iter().map(|m| format!(", \"{m}\"")).collect();
    format!(
        "[[policy]]\nname = \"Staff\"\ndescription = \"Demo: everyone in SSPR Enabled\"\npriority = 10\n\
         applies_to = [{{ id = \"{group_id}\", name = \"SSPR Enabled\" }}]\n\
         actions = [\"reset\", \"unlock\", \"enroll\"]\nmethods = [\"email\", \"totp\", \"sms\", \"passkey\"{extra}]\nsources = [\"latchkey\", \"entra\"]\nmethods_required = 2\npasskey_satisfies = \"all\"\n\
         [policy.enrollment]\nrequired = true\nreconfirm_after_days = 180\n"
    )
}

/// Starts the simulated tenant and the portal (on `listen`; port 0 picks a free one).
pub async fn start(listen: SocketAddr) -> anyhow::Result<Demo> {
    start_with(listen, DemoOptions::default()).await
}

/// [`start`] with other [`DemoOptions`] (benchmarks: a bigger tenant, no deadline, a proxy).
pub async fn start_with(listen: SocketAddr, options: DemoOptions) -> anyhow::Result<Demo> {
    start_with_methods(listen, options, &[]).await
}

/// [`start_with`], with `extra_methods` added to the demo policy's methods (e.g. `"questions"`,
/// which is off unless a policy lists it).
pub async fn start_with_methods(
    listen: SocketAddr,
    options: DemoOptions,
    extra_methods: &[&str],
) -> anyhow::Result<Demo> {
    start_full(listen, options, extra_methods, Arc::new(SystemClock), true).await
}

/// [`start_with`] with the portal's time from `clock` (tests move a
/// [`latchkey_verify::ManualClock`] past session and cache lifetimes without sleeping; the
/// simulated tenant keeps its own clock).
pub async fn start_with_clock(
    listen: SocketAddr,
    options: DemoOptions,
    clock: Arc<dyn latchkey_verify::Clock>,
) -> anyhow::Result<Demo> {
    start_full(listen, options, &[], clock, true).await
}

/// [`start_with`] for a portal without the delegated writeback credential (as before `latchkey
/// delegate` ran): synced users then reset only through an on-premises gateway (tests).
pub async fn start_without_writeback(
    listen: SocketAddr,
    options: DemoOptions,
) -> anyhow::Result<Demo> {
    start_full(listen, options, &[], Arc::new(SystemClock), false).await
}

async fn start_full(
    listen: SocketAddr,
    options: DemoOptions,
    extra_methods: &[&str],
    clock: Arc<dyn latchkey_verify::Clock>,
    with_writeback: bool,
) -> anyhow::Result<Demo> {
    let DemoOptions {
        fixture,
        deadline,
        trusted_proxies,
        enroll,
        channels,
        graph_budget,
        limits,
        kiosk,
        localhost,
        operations,
        mirror,
        store_url,
    } = options;
    let listener = std::net::TcpListener::bind(listen)
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    let listen = listener.local_addr()?;
    let sim = Sim::start(fixture).await?;
    let dir = std::env::temp_dir().join(format!(
        "latchkey-demo-{}-{}",
        std::process::id(),
        listen.port()
    ));
    std::fs::create_dir_all(&dir)?;
    let config_path = dir.join("latchkey.toml");
    std::fs::write(
        &config_path,
        format!(
            "# Written by `latchkey demo`: points the portal at the in-process simulated tenant.\n\
             [entra]\ntenant_id = \"{tenant}\"\nclient_id = \"{DEMO_CLIENT_ID}\"\n\
             client_secret = \"{DEMO_CLIENT_SECRET}\"\nauthority_host = \"{authority}\"\n\
             graph_base_url = \"{graph}\"\n\n[server]\nlisten = \"{listen}\"\n\n\
             [policies]\ndir = \"policies\"\n{ops}",
            ops = operations
                .as_ref()
                .map(DemoOperations::config)
                .unwrap_or_default(),
            tenant = sim.tenant_id(),
            authority = sim.base_url(),
            graph = sim.graph_base_url(),
        ),
    )?;
    let settings = crate::config::Settings::load(&config_path)?;
    let graph = crate::entra::client(&settings)?;
    let metrics = operations.as_ref().map(|_| operations::metrics(&graph));
    let writeback = setup::delegated_client(&settings).await?;
    let admin_graph = (graph.clone(), writeback.clone());

    let key = EncryptionKey::load_or_create(&dir.join("latchkey.key"))?;
    let store_url =
        store_url.unwrap_or_else(|| format!("sqlite://{}", dir.join("latchkey.db").display()));
    let store = latchkey_store::open(&store_url, Cipher::new(&key)).await?;
    let group = sim
        .tenant()
        .group_id("SSPR Enabled")
        .ok_or_else(|| anyhow::anyhow!("demo fixture lacks SSPR Enabled"))?;
    // Real files, so the admin console can edit them.
    std::fs::create_dir_all(&settings.policies.dir)?;
    std::fs::write(
        settings.policies.dir.join("default.toml"),
        include_str!("../../../policies/default.toml"),
    )?;
    std::fs::write(
        settings.policies.dir.join("demo.toml"),
        demo_policy(&group, extra_methods),
    )?;
    let policies = latchkey_policy::load_dir(&settings.policies.dir)
        .map_err(|e| anyhow::anyhow!("demo policies: {e:?}"))?;

    let outbox = Arc::new(Outbox::default());
    let address = format!("http://{listen}");
    let named = format!("http://localhost:{}", listen.port());
    let url = if localhost {
        named.clone()
    } else {
        address.clone()
    };
    let alias = if localhost { &address } else { &named };
    let passkeys = Some(latchkey_webauthn::RelyingParty::for_origin(&named)?);
    let (notifier, _queue, notices) = start_notifier(
        Arc::clone(&store),
        Branding {
            product_name: "Latchkey demo".into(),
            helpdesk: None,
            portal_url: url.parse().ok(),
        },
        channels.unwrap_or_else(|| Channels {
            email: Some(Arc::new(OutboxTransport(Arc::clone(&outbox)))),
            sms: Some(Arc::new(OutboxTransport(Arc::clone(&outbox)))),
        }),
        Arc::clone(&clock),
        latchkey_selfservice::notices::DEFAULT_LEASE,
    )?;
    let totp = AuthenticatorApp::new(TotpConfig::new("Latchkey demo"))?;
    let seeds = setup::enroll(&store, &sim, &totp, &outbox, &enroll, clock.now()).await?;

    let form_key = random_key()?;
    let mirror = match mirror {
        Some(m) => crate::mirror::DirectoryMirror::from_settings(
            &m,
            graph.clone(),
            Arc::clone(&store),
            Arc::clone(&clock),
        )?,
        None => None,
    };
    let services = Services {
        core: SelfService {
            store: Arc::clone(&store),
            directory: Arc::new(graph),
            mirror: mirror.as_ref().map(|m| Arc::clone(&m.mirror)),
            writeback: RwLock::new(
                with_writeback.then(|| Arc::new(writeback) as Arc<dyn Directory>),
            ),
            policies: RwLock::new(Arc::new(policies)),
            codes: Arc::new(CodeIssuer::new(
                CodeKey::from_bytes(&Secret::new(random_key()?))?,
                CodeConfig::default(),
            )?),
            totp,
            questions: crate::services::security_questions()?,
            attributes: latchkey_selfservice::attribute::method()?,
            notifier,
            outbox: notices,
            cipher: Cipher::new(&key),
            clock,
            decoy_key: DecoyKey::new(&form_key),
            deadline,
            graph_budget,
            gateway_wait: latchkey_selfservice::gateway::RESULT_WAIT,
            passwords: latchkey_selfservice::password::PasswordChecks::new(None),
            limits,
            passkeys,
        },
        csrf: Csrf::new(&form_key, &url).also_at(alias),
        proxies: TrustedProxies(trusted_proxies.into_iter().map(IpNet::host).collect()),
        cookies: CookiePolicy { secure: false },
        signin_url: "https://myaccount.microsoft.com".into(),
    };
    let mut portal = Portal::new(
        Brand {
            name: "Contoso (demo)".into(),
            ..Brand::default()
        },
        services,
    )?;
    kiosk.validate()?;
    let syncer = mirror.and_then(|m| {
        let running = m.start();
        portal.parts.insert(Arc::new(m));
        running
    });
    if let Some(kiosk) = crate::kiosk::Kiosk::from_settings(&kiosk, None) {
        portal.parts.insert(Arc::new(kiosk));
    }
    portal.parts.insert(Arc::clone(&outbox));
    let key_file = Some(dir.join("latchkey.key"));
    portal
        .parts
        .insert(Arc::new(crate::health::Readiness::new(key_file)));
    portal.parts.insert(Arc::new(
        crate::signin::SignIn::new(crate::entra::graph_config(&settings)?, &url)?.also_at(alias)?,
    ));
    // Both consoles, for the fixture's "Latchkey Admins" and "Helpdesk" groups; the helpdesk
    // serves everyone in "SSPR Enabled".
    let group = |name: &str| sim.tenant().group_id(name);
    let admin = group("Latchkey Admins").map(|g| crate::config::AdminSettings {
        group: g,
        secret_expires: None,
    });
    let helpdesk = group("Helpdesk").map(|g| crate::config::HelpdeskSettings {
        group: g,
        serves: group("SSPR Enabled").into_iter().collect(),
        link_lifetime_minutes: None,
    });
    portal.parts.insert(Arc::new(
        crate::console::Consoles::new(
            crate::entra::graph_config(&settings)?,
            &url,
            admin.as_ref(),
            helpdesk.as_ref(),
        )?
        .also_at(alias)?,
    ));
    let mut admin_settings = settings.clone();
    admin_settings.admin = admin;
    admin_settings.helpdesk = helpdesk;
    // The connection page can store a delegated credential here (the running demo keeps the
    // one it signed in with at start).
    admin_settings.delegated = Some(crate::config::DelegatedSettings {
        token_file: dir.join("delegated.token"),
    });
    portal.parts.insert(Arc::new(crate::admin::Admin::new(
        admin_settings,
        admin_graph.0,
        with_writeback.then_some(admin_graph.1),
    )));
    let forwarding = match metrics {
        Some(m) => operations::attach(&mut portal, &settings, m)?,
        None => None,
    };
    let services = Arc::clone(&portal.services);
    let running = crate::app::start(portal, listener)?;
    Ok(Demo {
        sim,
        portal: running,
        services,
        config_path,
        outbox,
        store,
        seeds,
        dir,
        url,
        forwarding,
        syncer,
    })
}

pub async fn run(listen: SocketAddr) -> anyhow::Result<ExitCode> {
    let options = DemoOptions {
        mirror: Some(crate::config::DirectorySettings {
            sync_interval_seconds: 10,
            ..Default::default()
        }),
        ..DemoOptions::default()
    };
    let demo = start_with(listen, options).await?;
    welcome::print(&demo);
    crate::app::shutdown_signal().await;
    demo.stop().await;
    Ok(ExitCode::SUCCESS)
}
