//! Kiosk mode in a real browser, as on the Windows sign-in screen's "Reset password" account:
//! no page leads off the portal, every page passes axe-core at 1024x768 and in high-contrast
//! mode (`forced-colors`), the final page never shows the password and goes back to the start by
//! itself; a page left alone counts down, starts over and ends its flow — with script, and
//! without it through the meta refresh.

use std::time::Duration;

use latchkey::config::KioskSettings;
use latchkey::demo::{self, Demo, DemoOptions};
use latchkey_e2e::thirtyfour::prelude::*;
use latchkey_e2e::{Browser, WAIT, browser_test, wait_until};

const KOFI: &str = "kofi.mensah@contoso.com";
const KOFI_MAIL: &str = "kofi.mensah@proton.example";
const KOFI_PHONE: &str = "+233241234567";
const NEW_PASSWORD: &str = "Harbour-Lantern-Okra-47";

async fn kiosk_demo(idle_seconds: u32, done_seconds: u32) -> anyhow::Result<Demo> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    demo::start_with(
        "127.0.0.1:0".parse()?,
        DemoOptions {
            kiosk: KioskSettings {
                enabled: true,
                idle_seconds,
                done_seconds,
                ..KioskSettings::default()
            },
            ..DemoOptions::default()
        },
    )
    .await
}

/// The kiosk rules of one page: on the origin, at the kiosk's size, accessible, and accessible
/// in high contrast.
async fn check_kiosk_page(b: &Browser) -> anyhow::Result<()> {
    b.assert_stays_on_origin().await?;
    b.assert_fits_kiosk().await?;
    b.driver()
        .find(By::LinkText("Start over"))
        .await
        .map_err(|e| anyhow::anyhow!("no visible Start over: {e}"))?;
    b.assert_accessible().await?;
    b.emulate_forced_colors(true).await?;
    let contrast = b.assert_accessible().await;
    b.emulate_forced_colors(false).await?;
    contrast
}

/// The newest code sent to `to` after `before` messages to it.
async fn code_to(demo: &Demo, to: &str, before: usize) -> anyhow::Result<String> {
    wait_until("a code", WAIT, async || {
        let sent: Vec<_> = demo
            .outbox
            .messages()
            .into_iter()
            .filter(|m| m.to == to)
            .collect();
        Ok(sent.get(before).and_then(|m| {
            m.body
                .split(|c: char| !c.is_ascii_digit())
                .find(|run| (6..=8).contains(&run.len()))
                .map(str::to_string)
        }))
    })
    .await
}

fn sent_to(demo: &Demo, to: &str) -> usize {
    demo.outbox.messages().iter().filter(|m| m.to == to).count()
}

/// Whether a flow cookie still opens a flow (the verify page answers with its methods).
async fn flow_is_live(demo: &Demo, cookie: &str) -> anyhow::Result<bool> {
    let page = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?
        .get(format!("{}/verify", demo.portal_url()))
        .header("cookie", format!("latchkey-flow={cookie}"))
        .send()
        .await?;
    Ok(page.status() == 200)
}

async fn flow_cookie(b: &Browser) -> anyhow::Result<Option<String>> {
    Ok(b.driver()
        .get_all_cookies()
        .await?
        .into_iter()
        .find(|c| c.name == "latchkey-flow")
        .map(|c| c.value))
}

/// Waits until the browser is back at the kiosk's first page by itself.
async fn wait_for_start(b: &Browser, timeout: Duration) -> anyhow::Result<()> {
    wait_until("the kiosk to start over", timeout, async || {
        // `/kiosk?again`: the start over of a browser that still had a flow (one redirect).
        let url = b.url().await?;
        let at_start = url.ends_with("/kiosk") || url.ends_with("/kiosk?again");
        let home = b.driver().find_all(By::Id("login")).await?.len() == 1;
        Ok((at_start && home).then_some(()))
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kiosk_reset_stays_on_the_portal_and_starts_over_after_the_final_page()
-> anyhow::Result<()> {
    let demo = kiosk_demo(60, 6).await?;
    let url = demo.portal_url().to_string();
    browser_test("kiosk_reset", async |b| {
        b.open(&format!("{url}/kiosk")).await?;
        check_kiosk_page(b).await?;
        // The countdown shows only in the last 20 seconds of the idle time.
        anyhow::ensure!(
            countdown(b).await?.is_none(),
            "the countdown shows long before the idle time runs out"
        );
        b.fill("Your work account", KOFI).await?;
        b.click_button("Continue").await?;
        b.wait_for_text("Prove it's you", WAIT).await?;
        check_kiosk_page(b).await?;
        let before = sent_to(&demo, KOFI_MAIL);
        b.click_button("Email me a code").await?;
        b.wait_for_text("Didn’t get a code?", WAIT).await?;
        check_kiosk_page(b).await?;
        let code = code_to(&demo, KOFI_MAIL, before).await?;
        b.fill("Verification code", &code).await?;
        b.click_button("Verify").await?;
        b.wait_for_text("Step 2 of 2", WAIT).await?;
        let before = sent_to(&demo, KOFI_PHONE);
        b.click_button("Text me a code").await?;
        let code = code_to(&demo, KOFI_PHONE, before).await?;
        b.fill("Verification code", &code).await?;
        b.click_button("Verify").await?;
        b.wait_for_text("What do you want to do?", WAIT).await?;
        check_kiosk_page(b).await?;
        b.driver()
            .find(By::LinkText("Choose a new password"))
            .await?
            .click()
            .await?;
        b.wait_for_text("Choose a new password", WAIT).await?;
        check_kiosk_page(b).await?;
        b.fill("New password", NEW_PASSWORD).await?;
        b.fill("Repeat the new password", NEW_PASSWORD).await?;
        b.click_button("Set password").await?;
        b.wait_for_text("Your password has been changed", WAIT)
            .await?;
        b.wait_for_text("choose Other user", WAIT).await?;
        check_kiosk_page(b).await?;
        let source = b.driver().source().await?;
        anyhow::ensure!(
            !source.contains(NEW_PASSWORD),
            "the final page holds the password"
        );
        anyhow::ensure!(
            flow_cookie(b).await?.is_none(),
            "the flow cookie outlived the flow"
        );
        // The final page goes back to the start by itself, whatever the person does.
        wait_for_start(b, Duration::from_secs(15)).await?;
        check_kiosk_page(b).await
    })
    .await?;
    anyhow::ensure!(
        demo.sim.sign_in(KOFI, NEW_PASSWORD) == latchkey_entra_sim::SignInOutcome::Success,
        "the tenant does not take the new password"
    );
    demo.stop().await;
    Ok(())
}

/// The seconds the kiosk's countdown shows, if it shows.
async fn countdown(b: &Browser) -> anyhow::Result<Option<u32>> {
    let timer = b.driver().find(By::Id("kiosk-timer")).await?;
    if !timer.is_displayed().await? {
        return Ok(None);
    }
    let text = b.driver().find(By::Id("kiosk-count")).await?.text().await?;
    Ok(text
        .split(|c: char| !c.is_ascii_digit())
        .find(|s| !s.is_empty())
        .and_then(|s| s.parse().ok()))
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_kiosk_counts_down_starts_over_and_ends_the_flow_with_or_without_script()
-> anyhow::Result<()> {
    let demo = kiosk_demo(10, 5).await?;
    let url = demo.portal_url().to_string();
    browser_test("kiosk_idle", async |b| {
        b.open(&format!("{url}/kiosk")).await?;
        b.fill("Your work account", KOFI).await?;
        b.click_button("Continue").await?;
        b.wait_for_text("Prove it's you", WAIT).await?;
        let cookie = flow_cookie(b).await?.context("no flow cookie")?;
        // The countdown shows in the last seconds; a key press starts the count again.
        let low = wait_until("the countdown to run low", WAIT, async || {
            Ok(countdown(b).await?.filter(|s| *s <= 6))
        })
        .await?;
        b.driver()
            .find(By::Tag("body"))
            .await?
            .send_keys(" ")
            .await?;
        // The count restarts on this page (a start over would also show a fresh count).
        wait_until("a key press to restart the count", WAIT, async || {
            let here = b.url().await?.ends_with("/verify");
            Ok(countdown(b).await?.filter(|s| here && *s > low + 1))
        })
        .await?;
        wait_for_start(b, Duration::from_secs(20)).await?;
        anyhow::ensure!(
            flow_cookie(b).await?.is_none(),
            "the flow cookie is still there"
        );
        anyhow::ensure!(
            !flow_is_live(&demo, &cookie).await?,
            "the flow outlived the kiosk's start over"
        );

        // Without script: the meta refresh does the same.
        b.disable_scripts().await?;
        b.open(&format!("{url}/kiosk")).await?;
        let field = b.driver().find(By::Id("login")).await?;
        field.send_keys(KOFI).await?;
        field.send_keys(Key::Enter).await?;
        wait_until("the verify page", WAIT, async || {
            Ok(b.url().await?.ends_with("/verify").then_some(()))
        })
        .await?;
        let cookie = flow_cookie(b).await?.context("no flow cookie")?;
        anyhow::ensure!(flow_is_live(&demo, &cookie).await?, "no live flow");
        wait_for_start(b, Duration::from_secs(20)).await?;
        anyhow::ensure!(
            !flow_is_live(&demo, &cookie).await?,
            "the flow outlived the kiosk's start over (no script)"
        );
        Ok(())
    })
    .await?;
    demo.stop().await;
    Ok(())
}

use anyhow::Context as _;
