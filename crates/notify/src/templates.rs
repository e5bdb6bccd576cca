//! Rendering notices from the templates in `crates/notify/templates/` (compiled in).
//!
//! Tera 2: autoescaping is on for `.html` templates (directory data such as a display name can
//! never inject markup) and off for `.txt` (plain-text bodies and SMS must not contain `&amp;`).

use std::time::Duration;

use latchkey_types::Secret;
use serde::{Deserialize, Serialize};
use tera::{Context, Tera};
use time::OffsetDateTime;
use time::macros::format_description;

use crate::error::NotifyError;

/// Languages with a complete template set. The first is the fallback.
pub const LANGUAGES: &[&str] = &["en", "de"];

macro_rules! lang_templates {
    ($lang:literal) => {
        [
            lang_templates!(@one $lang, "code.subject.txt"),
            lang_templates!(@one $lang, "code.txt"),
            lang_templates!(@one $lang, "code.html"),
            lang_templates!(@one $lang, "code.sms.txt"),
            lang_templates!(@one $lang, "password_changed.subject.txt"),
            lang_templates!(@one $lang, "password_changed.txt"),
            lang_templates!(@one $lang, "password_changed.html"),
            lang_templates!(@one $lang, "password_changed.sms.txt"),
            lang_templates!(@one $lang, "methods_changed.subject.txt"),
            lang_templates!(@one $lang, "methods_changed.txt"),
            lang_templates!(@one $lang, "methods_changed.html"),
            lang_templates!(@one $lang, "methods_changed.sms.txt"),
            lang_templates!(@one $lang, "caller_code.subject.txt"),
            lang_templates!(@one $lang, "caller_code.txt"),
            lang_templates!(@one $lang, "caller_code.html"),
            lang_templates!(@one $lang, "caller_code.sms.txt"),
            lang_templates!(@one $lang, "tap_issued.subject.txt"),
            lang_templates!(@one $lang, "tap_issued.txt"),
            lang_templates!(@one $lang, "tap_issued.html"),
            lang_templates!(@one $lang, "tap_issued.sms.txt"),
            lang_templates!(@one $lang, "reset_link.subject.txt"),
            lang_templates!(@one $lang, "reset_link.txt"),
            lang_templates!(@one $lang, "reset_link.html"),
            lang_templates!(@one $lang, "reset_link.sms.txt"),
            lang_templates!(@one $lang, "reset_link_issued.subject.txt"),
            lang_templates!(@one $lang, "reset_link_issued.txt"),
            lang_templates!(@one $lang, "reset_link_issued.html"),
            lang_templates!(@one $lang, "reset_link_issued.sms.txt"),
            lang_templates!(@one $lang, "security_contact.subject.txt"),
            lang_templates!(@one $lang, "security_contact.txt"),
            lang_templates!(@one $lang, "security_contact.html"),
            lang_templates!(@one $lang, "security_contact.sms.txt"),
        ]
    };
    (@one $lang:literal, $file:literal) => {
        (
            concat!($lang, "/", $file),
            include_str!(concat!("../templates/", $lang, "/", $file)),
        )
    };
}

fn all_templates() -> Vec<(&'static str, &'static str)> {
    let mut v = vec![("_layout.html", include_str!("../templates/_layout.html"))];
    v.extend(lang_templates!("en"));
    v.extend(lang_templates!("de"));
    v
}

/// Product name and where users report "this was not me". Comes from configuration.
#[derive(Clone, Debug, Default)]
pub struct Branding {
    /// Shown in every message, e.g. "Contoso password reset".
    pub product_name: String,
    /// How to reach the helpdesk, as text: "the IT service desk (+41 44 668 18 00)". Optional.
    pub helpdesk: Option<String>,
    /// The portal's public URL, for "reset it again at ...". Optional.
    pub portal_url: Option<url::Url>,
}

/// What a verification method change was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Added,
    Removed,
    Changed,
}

/// One line of a "methods changed" notice. `method` is the method kind (`email`, `sms`, `totp`,
/// `questions`, `passkey`; others are shown as given).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MethodChange {
    pub method: String,
    pub change: ChangeKind,
}

/// A completed action (self-service or by the helpdesk) a policy's security contacts hear about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactAction {
    PasswordReset,
    AccountUnlock,
    TemporaryAccessPass,
}

/// What to tell the user. Each has an email (subject, text, HTML) and an SMS template.
#[derive(Clone, Debug)]
pub enum Notice {
    /// A one-time code for verification or for confirming a new destination.
    Code {
        code: Secret<String>,
        valid_for: Duration,
    },
    /// Sent to every channel known before the change.
    PasswordChanged { at: OffsetDateTime },
    /// Sent to every channel known before the change (so a removed address hears of it too).
    MethodsChanged {
        at: OffsetDateTime,
        changes: Vec<MethodChange>,
    },
    /// A code the user reads back to the helpdesk on a call they are on (not the self-service
    /// code: that one says never to give it to anyone).
    CallerCode {
        code: Secret<String>,
        valid_for: Duration,
    },
    /// A Temporary Access Pass was issued for the account (the pass itself is never sent).
    TemporaryAccessPassIssued { at: OffsetDateTime },
    /// A helpdesk reset link, sent to the user's known address. The link is a bearer secret.
    ResetLink {
        link: Secret<String>,
        valid_for: Duration,
    },
    /// Sent to the user's channels when the helpdesk issues a reset link (without the link).
    ResetLinkIssued { at: OffsetDateTime },
    /// To a policy's security contacts (not the user) after a completed action: who, what, when,
    /// outcome and correlation id. Never a password, code or pass.
    SecurityContact {
        action: ContactAction,
        /// The user's display name (or the account as typed when the directory has none).
        user: String,
        /// The user's object id: unambiguous where display names are not.
        user_id: String,
        at: OffsetDateTime,
        /// Finds the action in the audit log.
        correlation_id: String,
        /// Who acted when it was not the user: the helpdesk member (display name and UPN).
        /// `None`: the user did it themselves (self-service).
        by: Option<String>,
    },
}

impl Notice {
    /// The template name stem, also used in logs and delivery reports.
    pub fn kind(&self) -> &'static str {
        match self {
            Notice::Code { .. } => "code",
            Notice::PasswordChanged { .. } => "password_changed",
            Notice::MethodsChanged { .. } => "methods_changed",
            Notice::CallerCode { .. } => "caller_code",
            Notice::TemporaryAccessPassIssued { .. } => "tap_issued",
            Notice::ResetLink { .. } => "reset_link",
            Notice::ResetLinkIssued { .. } => "reset_link_issued",
            Notice::SecurityContact { .. } => "security_contact",
        }
    }
}

/// A rendered email. Bodies are secrets: they may hold a code.
#[derive(Clone, Debug)]
pub struct RenderedEmail {
    pub subject: String,
    pub text: Secret<String>,
    pub html: Secret<String>,
}

/// Renders notices in the user's language.
#[derive(Debug)]
pub struct Renderer {
    tera: Tera,
    branding: Branding,
}

impl Renderer {
    /// Parses every compiled-in template once; fails on a template error.
    pub fn new(branding: Branding) -> Result<Self, NotifyError> {
        let mut tera = Tera::new();
        tera.add_raw_templates(all_templates())
            .map_err(|e| NotifyError::Template {
                name: "(loading)".into(),
                message: e.to_string(),
            })?;
        Ok(Self { tera, branding })
    }

    /// The language used for a BCP 47 tag: exact primary subtag match (`de-CH` → `de`),
    /// otherwise English.
    pub fn language_for(tag: Option<&str>) -> &'static str {
        let primary = tag
            .and_then(|t| t.split(['-', '_']).next())
            .map(str::to_ascii_lowercase);
        primary
            .and_then(|p| LANGUAGES.iter().find(|l| **l == p).copied())
            .unwrap_or(LANGUAGES[0])
    }

    pub fn email(&self, notice: &Notice, lang: Option<&str>) -> Result<RenderedEmail, NotifyError> {
        let lang = Self::language_for(lang);
        let ctx = self.context(notice, lang);
        let stem = notice.kind();
        let subject = self.render(lang, stem, "subject.txt", &ctx)?;
        // A subject is one header line: no line breaks, whatever a template or value holds.
        let subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");
        Ok(RenderedEmail {
            subject,
            text: Secret::new(self.render(lang, stem, "txt", &ctx)?),
            html: Secret::new(self.render(lang, stem, "html", &ctx)?),
        })
    }

    pub fn sms(&self, notice: &Notice, lang: Option<&str>) -> Result<Secret<String>, NotifyError> {
        let lang = Self::language_for(lang);
        let ctx = self.context(notice, lang);
        let text = self.render(lang, notice.kind(), "sms.txt", &ctx)?;
        Ok(Secret::new(text.trim().to_string()))
    }

    fn render(
        &self,
        lang: &str,
        stem: &str,
        ext: &str,
        ctx: &Context,
    ) -> Result<String, NotifyError> {
        let mut name = format!("{lang}/{stem}.{ext}");
        if !self.tera.contains_template(&name) {
            name = format!("{}/{stem}.{ext}", LANGUAGES[0]);
        }
        self.tera
            .render(&name, ctx)
            .map_err(|e| NotifyError::Template {
                message: e.to_string(),
                name,
            })
    }

    fn context(&self, notice: &Notice, lang: &str) -> Context {
        let mut ctx = Context::new();
        ctx.insert("lang", lang);
        ctx.insert("product", &self.branding.product_name);
        ctx.insert("helpdesk", self.branding.helpdesk.as_deref().unwrap_or(""));
        ctx.insert(
            "portal_url",
            self.branding.portal_url.as_ref().map_or("", |u| u.as_str()),
        );
        match notice {
            Notice::Code { code, valid_for } | Notice::CallerCode { code, valid_for } => {
                ctx.insert("code", code.expose());
                ctx.insert("minutes", &valid_for.as_secs().div_ceil(60));
            }
            Notice::PasswordChanged { at } => ctx.insert("at", &format_utc(*at)),
            Notice::MethodsChanged { at, changes } => {
                ctx.insert("at", &format_utc(*at));
                ctx.insert("changes", changes);
            }
            Notice::TemporaryAccessPassIssued { at } | Notice::ResetLinkIssued { at } => {
                ctx.insert("at", &format_utc(*at));
            }
            Notice::ResetLink { link, valid_for } => {
                ctx.insert("link", link.expose());
                ctx.insert("minutes", &valid_for.as_secs().div_ceil(60));
            }
            Notice::SecurityContact {
                action,
                user,
                user_id,
                at,
                correlation_id,
                by,
            } => {
                ctx.insert("by", by);
                ctx.insert("action", action);
                ctx.insert("user", user);
                ctx.insert("user_id", user_id);
                ctx.insert("at", &format_utc(*at));
                ctx.insert("correlation_id", correlation_id);
            }
        }
        ctx
    }
}

/// `2027-01-15 08:00 UTC`: unambiguous in every language until per-locale formats arrive.
fn format_utc(at: OffsetDateTime) -> String {
    let f = format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    at.to_offset(time::UtcOffset::UTC)
        .format(&f)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}
