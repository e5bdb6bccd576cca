//! Server-side rendering: templates are compiled into the binary (one file to deploy), autoescaped
//! (`.html`), and always see the same page basics: `lang`, `t` (messages), `brand`, `nonce`.
//! Everything renders through [`Templates::page`], so switching engines stays a one-file change.

use serde::Serialize;

use crate::i18n::{Catalogs, Lang};

/// Branding from configuration (`[branding]`).
#[derive(Debug, Clone, Serialize)]
pub struct Brand {
    pub name: String,
    /// Absolute URL of a logo image (optional).
    pub logo_url: Option<String>,
    /// Primary colour, `#rrggbb`; white text must be readable on it (AA contrast is checked at load).
    pub colour: String,
    /// Helpdesk phone, email or URL shown in the footer.
    pub helpdesk: Option<String>,
}

impl Brand {
    /// Refuses a colour that is not `#rrggbb` or on which white text fails WCAG AA (4.5:1).
    pub fn validate(&self) -> Result<(), String> {
        let hex = self
            .colour
            .strip_prefix('#')
            .filter(|h| h.len() == 6 && h.chars().all(|c| c.is_ascii_hexdigit()));
        let Some(hex) = hex else {
            return Err(format!("branding colour {:?} is not #rrggbb", self.colour));
        };
        let channel = |i: usize| {
            let v = f64::from(u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or(0)) / 255.0;
            if v <= 0.039_28 {
                v / 12.92
            } else {
                ((v + 0.055) / 1.055).powf(2.4)
            }
        };
        let luminance = 0.2126 * channel(0) + 0.7152 * channel(2) + 0.0722 * channel(4);
        let contrast = 1.05 / (luminance + 0.05);
        if contrast < 4.5 {
            return Err(format!(
                "branding colour {} gives white text a contrast of {contrast:.1}:1; WCAG AA needs 4.5:1",
                self.colour
            ));
        }
        Ok(())
    }
}

impl Default for Brand {
    fn default() -> Self {
        Self {
            name: "Latchkey".into(),
            logo_url: None,
            colour: "#1f4e79".into(),
            helpdesk: None,
        }
    }
}

/// Kiosk mode as its pages see it (`crate::kiosk` sets it on a kiosk browser's requests).
#[derive(Debug, Serialize)]
pub struct KioskView {
    /// Seconds without activity before a page starts over.
    pub idle: u32,
    /// Seconds the final page stays.
    pub done: u32,
    /// When the countdown becomes visible (seconds left).
    pub warn: u32,
    /// Who to ask for help (never a web address).
    pub helpdesk: Option<String>,
}

/// What a page takes from its request besides the language.
pub struct PageBasics<'a> {
    /// The CSP nonce for the page's `<style>`/`<script>` tags.
    pub nonce: &'a str,
    /// Where the language switch returns to.
    pub here: &'a str,
    /// Kiosk mode, on a kiosk browser's pages.
    pub kiosk: Option<&'a KioskView>,
}

/// The compiled templates and message catalogs.
pub struct Templates {
    tera: tera::Tera,
    catalogs: Catalogs,
    /// Each language's catalog as a template value, built once: converting the whole catalog
    /// on every page was a good part of a page's cost (tera values share it by reference count).
    catalog_values: Vec<(Lang, tera::Value)>,
}

/// Every template, by name. Adding a page = one line here.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("_errors.html", include_str!("../templates/_errors.html")),
    ("_tap.html", include_str!("../templates/_tap.html")),
    (
        "_webauthn.html",
        include_str!("../templates/_webauthn.html"),
    ),
    (
        "verify_passkey.html",
        include_str!("../templates/verify_passkey.html"),
    ),
    (
        "enroll_passkey.html",
        include_str!("../templates/enroll_passkey.html"),
    ),
    (
        "helpdesk_done.html",
        include_str!("../templates/helpdesk_done.html"),
    ),
    ("index.html", include_str!("../templates/index.html")),
    ("error.html", include_str!("../templates/error.html")),
    (
        "verify_choose.html",
        include_str!("../templates/verify_choose.html"),
    ),
    (
        "verify_code.html",
        include_str!("../templates/verify_code.html"),
    ),
    (
        "verify_attribute.html",
        include_str!("../templates/verify_attribute.html"),
    ),
    ("action.html", include_str!("../templates/action.html")),
    ("reset.html", include_str!("../templates/reset.html")),
    ("result.html", include_str!("../templates/result.html")),
    ("confirm.html", include_str!("../templates/confirm.html")),
    ("tap.html", include_str!("../templates/tap.html")),
    ("link.html", include_str!("../templates/link.html")),
    (
        "helpdesk_base.html",
        include_str!("../templates/helpdesk_base.html"),
    ),
    (
        "helpdesk_index.html",
        include_str!("../templates/helpdesk_index.html"),
    ),
    (
        "helpdesk_user.html",
        include_str!("../templates/helpdesk_user.html"),
    ),
    (
        "helpdesk_link.html",
        include_str!("../templates/helpdesk_link.html"),
    ),
    (
        "helpdesk_tap.html",
        include_str!("../templates/helpdesk_tap.html"),
    ),
    (
        "helpdesk_approval.html",
        include_str!("../templates/helpdesk_approval.html"),
    ),
    (
        "helpdesk_approvals.html",
        include_str!("../templates/helpdesk_approvals.html"),
    ),
    ("outbox.html", include_str!("../templates/outbox.html")),
    (
        "admin_base.html",
        include_str!("../templates/admin_base.html"),
    ),
    (
        "admin_signed_in.html",
        include_str!("../templates/admin_signed_in.html"),
    ),
    (
        "admin_index.html",
        include_str!("../templates/admin_index.html"),
    ),
    (
        "admin_policies.html",
        include_str!("../templates/admin_policies.html"),
    ),
    (
        "admin_policy_edit.html",
        include_str!("../templates/admin_policy_edit.html"),
    ),
    (
        "admin_simulate.html",
        include_str!("../templates/admin_simulate.html"),
    ),
    (
        "admin_connection.html",
        include_str!("../templates/admin_connection.html"),
    ),
    (
        "admin_policy_delete.html",
        include_str!("../templates/admin_policy_delete.html"),
    ),
    (
        "admin_gateways.html",
        include_str!("../templates/admin_gateways.html"),
    ),
    (
        "admin_gateway_issued.html",
        include_str!("../templates/admin_gateway_issued.html"),
    ),
    (
        "admin_gateway_revoke.html",
        include_str!("../templates/admin_gateway_revoke.html"),
    ),
    (
        "admin_directory.html",
        include_str!("../templates/admin_directory.html"),
    ),
    (
        "admin_gateway_kinds.html",
        include_str!("../templates/admin_gateway_kinds.html"),
    ),
    (
        "admin_reports.html",
        include_str!("../templates/admin_reports.html"),
    ),
    (
        "admin_audit.html",
        include_str!("../templates/admin_audit.html"),
    ),
    ("enroll.html", include_str!("../templates/enroll.html")),
    (
        "enroll_totp.html",
        include_str!("../templates/enroll_totp.html"),
    ),
    (
        "enroll_signed_in.html",
        include_str!("../templates/enroll_signed_in.html"),
    ),
];

impl Templates {
    pub fn load() -> Result<Self, String> {
        let mut tera = tera::Tera::new();
        tera.add_raw_templates(TEMPLATES.iter().copied())
            .map_err(|e| format!("templates: {e}"))?;
        let catalogs = Catalogs::load()?;
        let catalog_values = Lang::ALL
            .iter()
            .map(|&lang| (lang, tera::Value::from_serializable(catalogs.catalog(lang))))
            .collect();
        Ok(Self {
            tera,
            catalogs,
            catalog_values,
        })
    }

    pub fn catalogs(&self) -> &Catalogs {
        &self.catalogs
    }

    /// Renders `name` with the page basics plus `extra` (a serializable struct or map).
    pub fn page(
        &self,
        name: &str,
        lang: Lang,
        brand: &Brand,
        basics: &PageBasics<'_>,
        extra: &impl Serialize,
    ) -> Result<String, String> {
        let mut ctx =
            tera::Context::from_serialize(extra).map_err(|e| format!("{name}: context: {e}"))?;
        ctx.insert("lang", lang.tag());
        // The language switch on every page: the other languages, each a link that comes back
        // here.
        let next: String = url::form_urlencoded::byte_serialize(basics.here.as_bytes()).collect();
        let switch: Vec<serde_json::Value> = Lang::ALL
            .into_iter()
            .filter(|l| *l != lang)
            .map(|l| {
                serde_json::json!({
                    "href": format!("/language?set={}&next={next}", l.tag()),
                    "label": l.native_name(),
                    "tag": l.tag(),
                })
            })
            .collect();
        ctx.insert("language_switch", &switch);
        match self.catalog_values.iter().find(|(l, _)| *l == lang) {
            Some((_, t)) => ctx.insert_value("t", t.clone()),
            None => ctx.insert("t", self.catalogs.catalog(lang)),
        }
        ctx.insert("brand", brand);
        ctx.insert("nonce", basics.nonce);
        ctx.insert("kiosk", &basics.kiosk);
        self.tera
            .render(name, &ctx)
            .map_err(|e| format!("{name}: {e}"))
    }
}

/// An entry of a page's error summary, linked to its field.
#[derive(Serialize)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

/// Text reports (`latchkey check`, `latchkey user show`) built line by line. Writing to a
/// `String` cannot fail, so there is no result to drop.
pub trait Lines {
    /// Appends the formatted text and a newline.
    fn line(&mut self, args: std::fmt::Arguments<'_>);
    /// Appends the formatted text.
    fn text(&mut self, args: std::fmt::Arguments<'_>);
}

impl Lines for String {
    fn line(&mut self, args: std::fmt::Arguments<'_>) {
        self.text(args);
        self.push('\n');
    }

    fn text(&mut self, args: std::fmt::Arguments<'_>) {
        use std::fmt::Write as _;
        // `fmt::Write` for `String` never returns an error.
        if self.write_fmt(args).is_err() {
            tracing::error!("formatting into a string failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brand_colours_must_keep_white_text_readable() {
        assert!(Brand::default().validate().is_ok());
        assert!(
            Brand {
                colour: "#ffcc00".into(),
                ..Brand::default()
            }
            .validate()
            .is_err()
        );
        assert!(
            Brand {
                colour: "blue".into(),
                ..Brand::default()
            }
            .validate()
            .is_err()
        );
    }

    #[test]
    fn pages_are_localized_and_directory_data_is_escaped() {
        let t = Templates::load().unwrap();
        let brand = Brand {
            name: "<script>alert(1)</script>".into(),
            ..Brand::default()
        };
        let html = t
            .page(
                "error.html",
                Lang::De,
                &brand,
                &PageBasics {
                    nonce: "n0nce",
                    here: "/\"><script>",
                    kiosk: None,
                },
                &serde_json::json!({ "message": "<b>x</b>" }),
            )
            .unwrap();
        assert!(html.contains("<html lang=\"de\">"));
        assert!(html.contains("Etwas ist schiefgegangen"));
        assert!(!html.contains("<script>alert(1)"), "brand not escaped");
        // The language switch leads back to the page, its path encoded.
        assert!(
            html.contains("href=\"/language?set=en&amp;next=%2F%22%3E%3Cscript%3E\""),
            "{html}"
        );
        assert!(!html.contains("<b>x</b>"), "message not escaped");
        assert!(html.contains("nonce=\"n0nce\""));
    }
}
