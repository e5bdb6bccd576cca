//! What every handler reaches through the portal: the self-service back end
//! ([`latchkey_selfservice::SelfService`]) and the HTTP edge's own settings.

use actix_web::cookie::{Cookie, SameSite};
use latchkey_selfservice::SelfService;
use latchkey_verify::{Hasher, HasherConfig, QuestionsConfig, SecurityQuestions};

use crate::guard::{Csrf, TrustedProxies};

/// How cookies are named and flagged: `__Host-` + `Secure` behind HTTPS; plain names only when
/// the portal is served over http on loopback (the demo), where browsers drop `Secure` cookies.
#[derive(Debug, Clone, Copy)]
pub struct CookiePolicy {
    pub secure: bool,
}

impl CookiePolicy {
    pub fn name(&self, base: &'static str) -> String {
        if self.secure {
            format!("__Host-{base}")
        } else {
            base.to_string()
        }
    }

    /// A cookie of the portal: `HttpOnly`, path `/`, `Secure` (and the `__Host-` name) behind
    /// HTTPS, `same_site`, no `Max-Age` (the server decides when what it names ends).
    pub fn cookie(
        &self,
        base: &'static str,
        value: String,
        same_site: SameSite,
    ) -> Cookie<'static> {
        let mut c = Cookie::new(self.name(base), value);
        c.set_path("/");
        c.set_http_only(true);
        c.set_secure(self.secure);
        c.set_same_site(same_site);
        c
    }
}

/// The self-service back end and what the HTTP edge adds to it: form tokens, the trusted
/// proxies, how cookies are named, where users sign in. Dereferences to the back end
/// ([`SelfService`]), so handlers reach the store, directory and clock as `services.store`, ….
pub struct Services {
    pub core: SelfService,
    pub csrf: Csrf,
    pub proxies: TrustedProxies,
    pub cookies: CookiePolicy,
    /// Where users sign in after a reset (shown on the result page).
    pub signin_url: String,
}

impl std::ops::Deref for Services {
    type Target = SelfService;

    fn deref(&self) -> &SelfService {
        &self.core
    }
}

/// The security-questions method: argon2id on a bounded pool of hashing threads. Building it
/// computes the dummy hash unknown accounts are checked against (one argon2 run at start-up).
pub fn security_questions() -> anyhow::Result<SecurityQuestions> {
    let hasher = Hasher::new(HasherConfig::default())?;
    Ok(SecurityQuestions::new(hasher, QuestionsConfig::default())?)
}

/// A fresh 256-bit key (CSRF, code hashing) for a process that keeps no state across restarts.
pub fn random_key() -> anyhow::Result<Vec<u8>> {
    Ok(latchkey_types::random::bytes::<32>()?.to_vec())
}
