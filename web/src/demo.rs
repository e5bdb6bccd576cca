//! `latchkey demo`: a simulated Entra tenant, the portal, an outbox and pre-enrolled users on
//! loopback, with nothing else to install. Everything lives in a temporary folder.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use latchkey_entra_sim::{Fixture, Sim};
use latchkey_notify::{Branding, Channels};
use latchkey_store::{Cipher, EncryptionKey, NewEnrollment};
use latchkey_types::{ObjectId, Secret, Upn};
use latchkey_verify::{AuthenticatorApp, CodeConfig, CodeIssuer, CodeKey, SystemClock, TotpConfig};

use crate::app::{Portal, RunningPortal};
use crate::guard::{Csrf, TrustedProxies};
use crate::outbox::{Outbox, OutboxTransport};
use crate::render::Brand;
use crate::services::{CookiePolicy, Services, random_key, start_notifier};

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
    dir: PathBuf,
}

impl Demo {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn portal_url(&self) -> &str {
        self.portal.url()
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

    /// Stops the portal and the simulator and removes the temporary folder.
    pub async fn stop(self) {
        self.portal.stop().await;
        self.sim.stop().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The demo's access policy: everyone in "SSPR Enabled" (nested: Sales, Operations) may reset and
/// unlock with two of email, authenticator app and text message.
fn demo_policy(group_id: &str) -> String {
    format!(
        "[[policy]]\nname = \"Staff\"\ndescription = \"Demo: everyone in SSPR Enabled\"\npriority = 10\n\
         applies_to = [{{ id = \"{group_id}\", name = \"SSPR Enabled\" }}]\n\
         actions = [\"reset\", \"unlock\", \"enroll\"]\nmethods = [\"email\", \"totp\", \"sms\"]\nmethods_required = 2\n"
    )
}

/// Starts the simulated tenant and the portal (on `listen`; port 0 picks a free one).
pub async fn start(listen: SocketAddr) -> anyhow::Result<Demo> {
    let listener = std::net::TcpListener::bind(listen)
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    let listen = listener.local_addr()?;
    let sim = Sim::start(Fixture::demo()).await?;
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
             graph_base_url = \"{graph}\"\n\n[server]\nlisten = \"{listen}\"\n",
            tenant = sim.tenant_id(),
            authority = sim.base_url(),
            graph = sim.graph_base_url(),
        ),
    )?;
    let settings = crate::config::Settings::load(&config_path)?;
    let graph = crate::entra::client(&settings)?;

    let key = EncryptionKey::load_or_create(&dir.join("latchkey.key"))?;
    let store = latchkey_store::open(
        &format!("sqlite://{}", dir.join("latchkey.db").display()),
        Cipher::new(&key),
    )
    .await?;
    let group = sim
        .tenant()
        .group_id("SSPR Enabled")
        .ok_or_else(|| anyhow::anyhow!("demo fixture lacks SSPR Enabled"))?;
    let policies = latchkey_policy::parse_sources(&[
        (
            PathBuf::from("policies/default.toml"),
            include_str!("../../policies/default.toml").to_string(),
        ),
        (PathBuf::from("demo.toml"), demo_policy(&group)),
    ])
    .map_err(|e| anyhow::anyhow!("demo policies: {e:?}"))?;

    let outbox = Arc::new(Outbox::default());
    let url = format!("http://{listen}");
    let (notifier, _queue) = start_notifier(
        Arc::clone(&store),
        Branding {
            product_name: "Latchkey demo".into(),
            helpdesk: None,
            portal_url: url.parse().ok(),
        },
        Channels {
            email: Some(Arc::new(OutboxTransport(Arc::clone(&outbox)))),
            sms: Some(Arc::new(OutboxTransport(Arc::clone(&outbox)))),
        },
    )?;
    let totp = AuthenticatorApp::new(TotpConfig::new("Latchkey demo"))?;
    let now = time::OffsetDateTime::now_utc();
    for (upn, email, phone, authenticator) in ENROLLED {
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
            outbox.add_seed(upn, setup.seed);
        }
    }

    let services = Services {
        store: Arc::clone(&store),
        directory: Arc::new(graph),
        policies: RwLock::new(Arc::new(policies)),
        codes: Arc::new(CodeIssuer::new(
            CodeKey::from_bytes(&Secret::new(random_key()?))?,
            CodeConfig::default(),
        )?),
        totp,
        notifier,
        csrf: Csrf::new(&random_key()?, &url),
        proxies: TrustedProxies::default(),
        clock: Arc::new(SystemClock),
        cookies: CookiePolicy { secure: false },
        deadline: Duration::from_millis(400),
        signin_url: "https://myaccount.microsoft.com".into(),
    };
    let mut portal = Portal::new(
        Brand {
            name: "Contoso (demo)".into(),
            ..Brand::default()
        },
        services,
    )?;
    portal.outbox = Some(Arc::clone(&outbox));
    let running = crate::app::start(portal, listener)?;
    Ok(Demo {
        sim,
        portal: running,
        config_path,
        outbox,
        store,
        dir,
    })
}

pub async fn run(listen: SocketAddr) -> anyhow::Result<ExitCode> {
    let demo = start(listen).await?;
    let url = demo.portal_url().to_string();
    let config_path = demo.config_path.display();
    println!("Latchkey demo");
    println!("  portal:                 {url}/");
    println!("  outbox (emails, texts, authenticator codes): {url}/demo/outbox");
    println!("  simulated Entra tenant: {}", demo.sim.base_url());
    println!("  configuration:          {config_path}");
    println!();
    println!(
        "Try a reset: open {url}/, type adele.vance@contoso.com, choose \"Email me a code\" and"
    );
    println!(
        "read the code in the outbox, then \"Use my authenticator app\" with the code the outbox shows,"
    );
    println!("and choose a new password. Also try an unknown account: the pages look the same.");
    println!();
    println!("In another terminal:");
    println!("  latchkey check --config {config_path}");
    println!("  latchkey user show adele.vance@contoso.com --config {config_path}");
    println!();
    println!("Not in this version yet: enrollment pages (users above are pre-enrolled).");
    println!("Press Ctrl+C to stop.");
    crate::app::shutdown_signal().await;
    demo.stop().await;
    Ok(ExitCode::SUCCESS)
}
