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
    pub kiosk_account: &'a str,
}

/// Writes every asset into `out` (created if missing; files of the same names are replaced)
/// and lists them.
pub fn assets(options: &AssetOptions<'_>) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(options.config)?;
    let catalogs = Catalogs::load().map_err(|e| anyhow::anyhow!(e))?;
    let lang = options.language;
    let t = |key: &str| catalogs.get(lang, key).to_string();
    let base = settings.portal.public_url.trim_end_matches('/');
    let portal_url = format!("{base}/");
    let address = base
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let kiosk = settings.kiosk.enabled;
    let out = options.out;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut written = Vec::new();
    let mut write = |name: String, bytes: &[u8]| -> anyhow::Result<()> {
        let path = out.join(&name);
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
        written.push(name);
        Ok(())
    };

    let colour = lockscreen::parse_colour(&settings.branding.colour)?;
    let footnote = t("lockscreen_kiosk_note").replace("{account}", options.kiosk_account);
    let screen = LockScreen {
        colour,
        brand: &settings.branding.name,
        title: catalogs.get(lang, "lockscreen_title"),
        body: catalogs.get(lang, "lockscreen_body"),
        address,
        qr_target: &portal_url,
        footnote: kiosk.then_some(footnote.as_str()),
    };
    for &(width, height) in lockscreen::SIZES {
        let png = lockscreen::render_png(&screen, width, height)?;
        write(format!("lockscreen-{width}x{height}.png"), &png)?;
    }

    let message = LogonMessage {
        title: t("lockscreen_title"),
        text: t("logon_text").replace("{address}", address),
    };
    write("logon-message.txt".into(), message.as_text().as_bytes())?;
    write("logon-message.reg".into(), &message.as_reg())?;

    if kiosk {
        let kiosk_url = format!("{base}/kiosk");
        // Edge's own idle reset, behind the portal's: whole minutes, at least one.
        let idle_minutes = settings.kiosk.idle_seconds.div_ceil(60).max(1) + 1;
        let shared = assigned_access::edge_kiosk(
            &kiosk_url,
            idle_minutes,
            &KioskAccount::Account(options.kiosk_account.to_string()),
        );
        write("assigned-access-shared-pc.xml".into(), shared.as_bytes())?;
        let dedicated = assigned_access::edge_kiosk(
            &kiosk_url,
            idle_minutes,
            &KioskAccount::AutoLogon {
                display_name: t("lockscreen_kiosk_display_name"),
            },
        );
        write(
            "assigned-access-kiosk-device.xml".into(),
            dedicated.as_bytes(),
        )?;
    }
    for name in &written {
        println!("{}", out.join(name).display());
    }
    if !kiosk {
        println!(
            "no Assigned Access configuration: [kiosk] is not enabled (installer/windows/README.md)"
        );
    }
    Ok(ExitCode::SUCCESS)
}
