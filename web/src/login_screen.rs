//! `latchkey login-screen assets --config FILE --out DIR`: what organisations deploy to put the
//! portal on the Windows sign-in screen (installer/windows/README.md), from the configuration's
//! branding, public URL and `[kiosk]`: lock-screen images with the address and a QR code, the
//! logon message (text and `.reg`), and, with kiosk mode on, the Assigned Access configurations
//! of a "Reset password" kiosk account. The images live in `latchkey_loginscreen`; this module
//! only chooses the words and writes the files.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use latchkey_loginscreen::assigned_access::{self, KioskAccount};
use latchkey_loginscreen::lockscreen::{self, LockScreen};
use latchkey_loginscreen::logon::LogonMessage;

use crate::config::Settings;
use crate::i18n::{Catalogs, Lang};

/// The options of `latchkey login-screen assets`.
pub struct AssetOptions<'a> {
    pub config: &'a Path,
    pub out: &'a Path,
    /// The language of the words on the images and in the message.
    pub language: Lang,
    /// The shared-PC kiosk account people choose on the sign-in screen.
    pub kiosk_account: &'a KioskAccount,
}

/// Writes every asset into `out` (created if missing; files of the same names are replaced)
/// and lists them.
pub fn assets(options: &AssetOptions<'_>) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(options.config)?;
    let catalogs = Catalogs::load().map_err(|e| anyhow::anyhow!(e))?;
    let lang = options.language;
    let t = |key: &str| catalogs.get(lang, key).to_string();
    let portal_url = public_portal(&settings.portal.public_url)?;
    let base = portal_url.as_str().trim_end_matches('/');
    let address = base.trim_start_matches("https://");
    // The same readability check the portal makes at start: brand and address are drawn in
    // the branding colour on white, the background is the colour itself.
    let brand = crate::render::Brand {
        name: settings.branding.name.clone(),
        logo_url: None,
        colour: settings.branding.colour.clone(),
        helpdesk: None,
    };
    brand
        .validate()
        .map_err(|e| anyhow::anyhow!("key `branding.colour`: {e}"))?;
    let kiosk = settings.kiosk.enabled;
    // Everything is made before anything is written: a text that does not fit the smallest
    // image leaves no half set of files behind.
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut add = |name: String, bytes: Vec<u8>| files.push((name, bytes));

    let colour = lockscreen::parse_colour(&settings.branding.colour)?;
    let footnote = t("lockscreen_kiosk_note").replace("{account}", options.kiosk_account.name());
    let screen = LockScreen {
        colour,
        brand: &settings.branding.name,
        title: catalogs.get(lang, "lockscreen_title"),
        body: catalogs.get(lang, "lockscreen_body"),
        address,
        qr_target: portal_url.as_str(),
        footnote: kiosk.then_some(footnote.as_str()),
    };
    for &(width, height) in lockscreen::SIZES {
        let png = lockscreen::render_png(&screen, width, height)?;
        add(format!("lockscreen-{width}x{height}.png"), png);
    }

    let message = LogonMessage {
        title: t("lockscreen_title"),
        text: t("logon_text").replace("{address}", address),
    };
    add("logon-message.txt".into(), message.as_text().into_bytes());
    add("logon-message.reg".into(), message.as_reg());

    if kiosk {
        let kiosk_url = portal_url
            .join("kiosk")
            .context("the kiosk page's address")?;
        // Edge's own idle reset, behind the portal's: whole minutes, at least one.
        let idle_minutes = settings.kiosk.idle_seconds.div_ceil(60).max(1) + 1;
        let shared =
            assigned_access::edge_kiosk(kiosk_url.as_str(), idle_minutes, options.kiosk_account);
        add("assigned-access-shared-pc.xml".into(), shared.into_bytes());
        let dedicated = assigned_access::edge_kiosk(
            kiosk_url.as_str(),
            idle_minutes,
            &KioskAccount::auto_logon(&t("lockscreen_kiosk_display_name"))?,
        );
        add(
            "assigned-access-kiosk-device.xml".into(),
            dedicated.into_bytes(),
        );
    }
    let out = options.out;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    for (name, bytes) in &files {
        let path = out.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
        println!("{}", path.display());
    }
    if !kiosk {
        println!(
            "no Assigned Access configuration: [kiosk] is not enabled (installer/windows/README.md)"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The portal's address for phones and kiosks: an https URL of a host others can reach (not
/// loopback), with a trailing slash.
fn public_portal(public_url: &str) -> anyhow::Result<url::Url> {
    let mut url = url::Url::parse(public_url).context("key `portal.public_url` is not a URL")?;
    let host = url.host_str().unwrap_or_default().to_string();
    let loopback = host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if url.scheme() != "https" || loopback {
        anyhow::bail!(
            "key `portal.public_url` is {public_url:?}: the sign-in screen needs the https address \
             people reach the portal at from their phones and PCs"
        );
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url.set_query(None);
    url.set_fragment(None);
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::public_portal;

    #[test]
    fn only_a_reachable_https_address_goes_on_the_sign_in_screen() {
        assert_eq!(
            public_portal("https://reset.contoso.com").unwrap().as_str(),
            "https://reset.contoso.com/"
        );
        assert_eq!(
            public_portal("https://contoso.com/sspr").unwrap().as_str(),
            "https://contoso.com/sspr/"
        );
        for bad in [
            "http://reset.contoso.com",
            "https://127.0.0.1:8443",
            "https://localhost",
            "https://[::1]/",
            "reset.contoso.com",
        ] {
            assert!(public_portal(bad).is_err(), "{bad}");
        }
    }
}
