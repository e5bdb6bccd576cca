//! The assets as Windows and phones meet them: each lock-screen PNG has the size asked for and
//! its QR code, read back by a real decoder (zbarimg, Debian's zbar-tools), opens the portal;
//! the Assigned Access XML validates against Microsoft's published schema (xmllint, vendored
//! under installer/windows/assigned-access/), for both kinds of kiosk account.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use latchkey_loginscreen::assigned_access::{self, KioskAccount};
use latchkey_loginscreen::lockscreen::{self, LockScreen};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("latchkey-loginscreen-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// A tool the test needs; missing, the test fails and says which package has it.
fn tool(name: &str, package: &str) -> String {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .unwrap();
    assert!(
        found.status.success(),
        "{name} not found: install Debian's {package} (`bash tests/run` does it when run as root)"
    );
    name.to_string()
}

/// The image's width and height, read from the PNG itself.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let reader = decoder.read_info().unwrap();
    let info = reader.info();
    (info.width, info.height)
}

fn screen(url: &str) -> LockScreen<'_> {
    LockScreen {
        colour: [0x1f, 0x4e, 0x79],
        brand: "Contoso",
        title: "Forgot your password or locked out?",
        body: "Scan the code with your phone's camera, or open this address in any browser:",
        address: url.trim_start_matches("https://"),
        qr_target: url,
        footnote: Some(
            "On a shared PC, choose \u{201c}Reset password\u{201d} on the sign-in screen.",
        ),
    }
}

#[test]
fn every_lock_screen_size_has_a_qr_code_that_opens_the_portal() {
    let zbarimg = tool("zbarimg", "zbar-tools");
    let url = "https://reset.contoso.com/";
    for &(width, height) in lockscreen::SIZES {
        let png = lockscreen::render_png(&screen(url), width, height).unwrap();
        assert_eq!(png_size(&png), (width, height));
        let path = scratch(&format!("lock-{width}x{height}.png"));
        std::fs::write(&path, &png).unwrap();
        let out = Command::new(&zbarimg)
            .args(["--quiet", "--raw"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{width}x{height}: no QR code found");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            url,
            "{width}x{height}"
        );
    }
}

#[test]
fn a_long_address_still_fits_and_scans_and_bad_sizes_are_refused() {
    let zbarimg = tool("zbarimg", "zbar-tools");
    let url = "https://self-service-password-reset.identity.europe-west.contoso-holdings.example/";
    let png = lockscreen::render_png(&screen(url), 1366, 768).unwrap();
    let path = scratch("long.png");
    std::fs::write(&path, &png).unwrap();
    let out = Command::new(&zbarimg)
        .args(["--quiet", "--raw"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), url);
    assert!(lockscreen::render_png(&screen(url), 100, 100).is_err());
    // Text that cannot fit is refused, naming what to shorten; a long brand name wraps.
    let long = "Contoso Pharmaceuticals International Holdings ".repeat(12);
    let err = lockscreen::render_png(
        &LockScreen {
            brand: &long,
            ..screen(url)
        },
        1920,
        1080,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("shorten the brand name"), "{err}");
    let two_lines = "Contoso Pharmaceuticals International Holdings";
    lockscreen::render_png(
        &LockScreen {
            brand: two_lines,
            ..screen(url)
        },
        1366,
        768,
    )
    .unwrap();
    assert!(lockscreen::parse_colour("#1f4e7g").is_err());
    assert_eq!(
        lockscreen::parse_colour("#1F4E79").unwrap(),
        [0x1f, 0x4e, 0x79]
    );
}

fn schema() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../installer/windows/assigned-access/assigned-access.xsd")
}

/// xmllint's verdict on `xml` against Microsoft's schema: Ok, or its complaint.
fn validate(xml: &str, name: &str) -> Result<(), String> {
    let xmllint = tool("xmllint", "libxml2-utils");
    let path = scratch(name);
    std::fs::write(&path, xml).unwrap();
    let out = Command::new(xmllint)
        .arg("--noout")
        .arg("--schema")
        .arg(schema())
        .arg(&path)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn the_kiosk_configuration_validates_against_microsofts_schema() {
    for (name, account) in [
        (
            "auto.xml",
            KioskAccount::auto_logon("Reset password").unwrap(),
        ),
        (
            "account.xml",
            KioskAccount::account(".\\ResetPassword").unwrap(),
        ),
    ] {
        let xml = assigned_access::edge_kiosk("https://reset.contoso.com/kiosk", 2, &account);
        validate(&xml, name).unwrap_or_else(|e| panic!("{name}: {e}\n{xml}"));
        assert!(
            xml.contains("--kiosk https://reset.contoso.com/kiosk --edge-kiosk-type=fullscreen")
        );
    }
    // The check is real: a misspelled element is refused.
    let xml = assigned_access::edge_kiosk(
        "https://reset.contoso.com/kiosk",
        2,
        &KioskAccount::account("kiosk").unwrap(),
    )
    .replace("<DefaultProfile ", "<DefaultProfil ");
    assert!(validate(&xml, "bad.xml").is_err());
}
