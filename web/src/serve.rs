//! Builds a production portal from the configuration file: every dependency is checked at
//! start-up (credentials, key file, database, policies, SMTP), so a mistake stops the start with
//! a message instead of failing the first user.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use latchkey_notify::{
    Branding, Channels, EmailTransport, SmsProvider, SmtpConfig, SmtpMailer, SmtpSecurity,
    TwilioConfig, TwilioProvider, TwilioSender, WebhookAuth, WebhookConfig, WebhookProvider,
};
use latchkey_store::{Cipher, EncryptionKey};
use latchkey_types::Secret;
use latchkey_verify::{AuthenticatorApp, CodeConfig, CodeIssuer, CodeKey, SystemClock, TotpConfig};

use crate::config::Settings;
use crate::guard::{Csrf, TrustedProxies};
use crate::portal::Portal;
use crate::render::Brand;
use crate::services::{CookiePolicy, Services};
use latchkey_selfservice::notices::start_notifier;
use latchkey_selfservice::{DecoyKey, SelfService};

/// The configured SMS provider, if any.
fn sms_provider(settings: &Settings) -> anyhow::Result<Option<Arc<dyn SmsProvider>>> {
    let Some(s) = &settings.sms else {
        tracing::warn!("no [sms] table: text-message codes and notices cannot be sent");
        return Ok(None);
    };
    let secret = match &s.secret_file {
        Some(f) => latchkey_notify::secret_from_file(f).context("key `sms.secret_file`")?,
        None => anyhow::bail!("key `sms.secret_file` is required"),
    };
    let timeout = Duration::from_secs(15);
    match s.provider.as_str() {
        "twilio" => {
            let base = s.url.as_deref().unwrap_or(TwilioConfig::DEFAULT_BASE_URL);
            let account_sid = s
                .account_sid
                .clone()
                .context("key `sms.account_sid` is required for twilio")?;
            let sender = match (&s.from, &s.messaging_service_sid) {
                (Some(f), None) => TwilioSender::From(f.clone()),
                (None, Some(m)) => TwilioSender::MessagingService(m.clone()),
                _ => anyhow::bail!("set exactly one of `sms.from` and `sms.messaging_service_sid`"),
            };
            let config = TwilioConfig {
                base_url: base.parse().context("key `sms.url`")?,
                username: s.username.clone().unwrap_or_else(|| account_sid.clone()),
                account_sid,
                secret,
                sender,
                timeout,
            };
            Ok(Some(Arc::new(
                TwilioProvider::new(config).context("[sms]")?,
            )))
        }
        "webhook" => {
            let url = s
                .url
                .as_deref()
                .context("key `sms.url` is required for webhook")?;
            let config = WebhookConfig {
                url: url.parse().context("key `sms.url`")?,
                auth: WebhookAuth::Bearer(secret),
                timeout,
            };
            Ok(Some(Arc::new(
                WebhookProvider::new(config).context("[sms]")?,
            )))
        }
        other => anyhow::bail!("key `sms.provider`: {other:?} is not twilio or webhook"),
    }
}

pub async fn build(settings: &Settings) -> anyhow::Result<Portal> {
    let public = url::Url::parse(&settings.portal.public_url)
        .context("key `portal.public_url` is not a URL")?;
    let https = public.scheme() == "https";
    let loopback = matches!(public.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    if !https && !loopback {
        anyhow::bail!("key `portal.public_url`: use https (plain http only on loopback)");
    }
    let origin = public.origin().ascii_serialization();

    let graph = crate::entra::client(settings)?;
    let delegated = crate::delegate::client(settings)?;
    // Metrics see every Graph attempt of both clients (their clones share the observer).
    let metrics = settings
        .metrics
        .listen
        .is_some()
        .then(|| Arc::new(crate::metrics::Metrics::new()));
    if let Some(m) = &metrics {
        graph.observe(m.clone());
        if let Some(d) = &delegated {
            d.observe(m.clone());
        }
    }
    // The admin console keeps clones (same token cache and debug switch) for its pages.
    let admin_graph = (graph.clone(), delegated.clone());
    let writeback =
        delegated.map(|c| Arc::new(c) as Arc<dyn latchkey_selfservice::directory::Directory>);
    if settings.delegated.is_none() {
        tracing::warn!(
            "no [delegated] table: synced users cannot reset here (see `latchkey delegate`)"
        );
    }
    let key = EncryptionKey::load_or_create(&settings.store.key_file).with_context(|| {
        format!(
            "key `store.key_file` ({})",
            settings.store.key_file.display()
        )
    })?;
    let store = open_store(settings, &key).await?;
    let policies = latchkey_policy::load_dir(&settings.policies.dir).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("policies are invalid:\n  {}", lines.join("\n  "))
    })?;

    let email: Option<Arc<dyn EmailTransport>> = match &settings.smtp {
        None => {
            tracing::warn!("no [smtp] table: email codes and notices cannot be sent");
            None
        }
        Some(s) => {
            let mut c = SmtpConfig::new(&s.host, &s.from);
            c.port = s.port;
            c.security = match s.security.as_str() {
                "starttls" => SmtpSecurity::StartTls,
                "tls" => SmtpSecurity::ImplicitTls,
                "plain" => SmtpSecurity::Plain,
                other => {
                    anyhow::bail!("key `smtp.security`: {other:?} is not starttls, tls or plain")
                }
            };
            c.username = s.username.clone();
            c.max_connections = s.max_connections;
            if let Some(f) = &s.password_file {
                c.password =
                    Some(latchkey_notify::secret_from_file(f).context("key `smtp.password_file`")?);
            }
            Some(Arc::new(SmtpMailer::new(&c).context("[smtp]")?))
        }
    };
    let b = &settings.branding;
    let brand = Brand {
        name: b.name.clone(),
        logo_url: b.logo_url.clone(),
        colour: b.colour.clone(),
        helpdesk: b.helpdesk.clone(),
    };
    brand
        .validate()
        .map_err(|e| anyhow::anyhow!("[branding]: {e}"))?;
    let clock: Arc<dyn latchkey_verify::Clock> = Arc::new(SystemClock);
    let (notifier, _queue, outbox) = start_notifier(
        Arc::clone(&store),
        Branding {
            product_name: brand.name.clone(),
            helpdesk: brand.helpdesk.clone(),
            portal_url: Some(public.clone()),
        },
        Channels {
            email,
            sms: sms_provider(settings)?,
        },
        Arc::clone(&clock),
        Duration::from_secs(settings.portal.notice_lease_seconds.max(1)),
    )?;
    let csrf_key = key.derive(b"latchkey/csrf");
    let mirror = crate::mirror::DirectoryMirror::from_settings(
        &settings.directory,
        graph.clone(),
        Arc::clone(&store),
        Arc::clone(&clock),
    )?;
    let services = Services {
        core: SelfService {
            store,
            directory: Arc::new(graph),
            mirror: mirror.as_ref().map(|m| Arc::clone(&m.mirror)),
            writeback: RwLock::new(writeback),
            policies: RwLock::new(Arc::new(policies)),
            codes: Arc::new(CodeIssuer::new(
                CodeKey::from_bytes(&Secret::new(key.derive(b"latchkey/codes").to_vec()))?,
                CodeConfig::default(),
            )?),
            totp: AuthenticatorApp::new(TotpConfig::new(&brand.name))?,
            questions: crate::services::security_questions()?,
            attributes: latchkey_selfservice::attribute::method()?,
            notifier,
            outbox,
            cipher: Cipher::new(&key),
            clock,
            decoy_key: DecoyKey::new(&csrf_key),
            deadline: Duration::from_millis(settings.portal.response_deadline_ms.max(100)),
            graph_budget: Duration::from_secs(settings.graph.request_budget_seconds.max(1)),
            gateway_wait: latchkey_selfservice::gateway::RESULT_WAIT,
            passwords: latchkey_selfservice::password::PasswordChecks::new(
                settings.passwords.lookup()?,
            ),
            limits: settings.limits.limits()?,
            passkeys: passkey_relying_party(&settings.portal.public_url),
        },
        csrf: Csrf::new(&csrf_key, &origin),
        proxies: TrustedProxies::parse(&settings.portal.trusted_proxies)
            .map_err(|e| anyhow::anyhow!("key `portal.trusted_proxies`: {e}"))?,
        cookies: CookiePolicy { secure: https },
        signin_url: settings.portal.signin_url.clone(),
    };
    let kiosk = crate::kiosk::Kiosk::from_settings(&settings.kiosk, brand.helpdesk.as_deref());
    let mut portal = Portal::new(brand, services)?;
    if let Some(mirror) = mirror {
        portal.parts.insert(Arc::new(mirror));
    }
    if let Some(kiosk) = kiosk {
        portal.parts.insert(Arc::new(kiosk));
    }
    let key_file = Some(settings.store.key_file.clone());
    portal
        .parts
        .insert(Arc::new(crate::health::Readiness::new(key_file)));
    let forwarding = crate::forwarding::Forwarding::from_settings(
        settings,
        Arc::clone(&portal.services.store),
        Arc::clone(&portal.services.clock),
        metrics.clone(),
    )?;
    let mut observers: Vec<Arc<dyn latchkey_store::AuditObserver>> = Vec::new();
    if let Some(f) = forwarding {
        tracing::info!(outputs = ?f.outputs(), "audit forwarding");
        observers.push(f.observer());
        portal.parts.insert(Arc::new(f));
    }
    if let Some(metrics) = metrics {
        observers.push(metrics.clone());
        anyhow::ensure!(
            portal.services.store.observe_calls(metrics.clone()),
            "the store's call observer was set twice"
        );
        portal.parts.insert(metrics);
    }
    if !observers.is_empty() {
        anyhow::ensure!(
            portal
                .services
                .store
                .observe_audit(Arc::new(crate::forwarding::AuditObservers(observers))),
            "the store's audit observer was set twice"
        );
    }
    portal.parts.insert(Arc::new(crate::signin::SignIn::new(
        crate::entra::graph_config(settings)?,
        &settings.portal.public_url,
    )?));
    if settings.admin.is_some() || settings.helpdesk.is_some() {
        let consoles = crate::console::Consoles::new(
            crate::entra::graph_config(settings)?,
            &settings.portal.public_url,
            settings.admin.as_ref(),
            settings.helpdesk.as_ref(),
        )?;
        tracing::info!(redirect_uri = %consoles.redirect_uri(), "consoles enabled");
        portal.parts.insert(Arc::new(consoles));
    }
    if let Some(minutes) = settings
        .helpdesk
        .as_ref()
        .and_then(|h| h.link_lifetime_minutes)
    {
        portal
            .parts
            .insert(Arc::new(crate::helpdesk::link::LinkLifetime(
                std::time::Duration::from_secs(minutes * 60),
            )));
    }
    if settings.admin.is_some() {
        portal.parts.insert(Arc::new(crate::admin::Admin::new(
            settings.clone(),
            admin_graph.0,
            admin_graph.1,
        )));
    }
    Ok(portal)
}

/// The configured store (`[store]`): SQLite, or PostgreSQL with the password from
/// `password_file` when it is not in the URL. `latchkey serve` and the commands that work on the
/// portal's state (`latchkey gateway ...`) open it the same way, with the same key.
pub async fn open_store(
    settings: &Settings,
    key: &EncryptionKey,
) -> anyhow::Result<Arc<dyn latchkey_store::Store>> {
    let password = match &settings.store.password_file {
        Some(f) => Some(latchkey_notify::secret_from_file(f).context("key `store.password_file`")?),
        None => None,
    };
    latchkey_store::open_with(&settings.store.database_url, password, Cipher::new(key))
        .await
        .context("key `store.database_url`")
}

/// The relying party passkeys use: the public URL's host. An IP address cannot be one (browsers
/// refuse it): passkeys are then not offered, and the log says why at start.
fn passkey_relying_party(public_url: &str) -> Option<latchkey_webauthn::RelyingParty> {
    match latchkey_webauthn::RelyingParty::for_origin(public_url) {
        Ok(rp) => Some(rp),
        Err(e) => {
            tracing::warn!(public_url, error = %e, "passkeys are not offered: `portal.public_url` cannot be a WebAuthn relying party");
            None
        }
    }
}
