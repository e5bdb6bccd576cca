//! Day one on a tenant that used Microsoft's SSPR, in a real browser: Kofi never enrolled in
//! Latchkey but registered a phone and an email in Entra; he switches the language, sees where
//! each code went (masked), how many tries are left and what to do if no code comes, asks to
//! unlock his cloud account, is told what Entra does and goes on to a new password in the same
//! flow, with the server's password rules answering as he types. Every page is checked with
//! axe-core at the kiosk size and at 375 and 320 CSS px (WCAG reflow).

use std::time::Duration;

use latchkey::demo;
use latchkey_e2e::{Browser, WAIT, browser_test, wait_until};

const KOFI: &str = "kofi.mensah@contoso.com";
const KOFI_MAIL: &str = "kofi.mensah@proton.example";
const KOFI_PHONE: &str = "+233241234567";
const NEW_PASSWORD: &str = "Violet-Tractor-Humming-61";

/// axe-core at the kiosk size, at a desktop's, at a phone's width and at the reflow width.
async fn check_page(b: &Browser) -> anyhow::Result<()> {
    b.assert_accessible().await?;
    b.assert_reflows_at(1280).await?;
    b.assert_reflows_at(375).await?;
    b.assert_reflows_at(320).await
}

/// The newest code sent to `to` after `before` messages to it.
async fn code_to(demo: &demo::Demo, to: &str, before: usize) -> anyhow::Result<String> {
    wait_until("a code", WAIT, async || {
        let sent: Vec<_> = demo
            .outbox
            .messages()
            .into_iter()
            .filter(|m| m.to == to)
            .collect();
        Ok(sent.get(before).and_then(|m| first_code(&m.body)))
    })
    .await
}

/// The first run of 6 to 8 digits in a message.
fn first_code(text: &str) -> Option<String> {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|run| (6..=8).contains(&run.len()))
        .map(str::to_string)
}

fn sent_to(demo: &demo::Demo, to: &str) -> usize {
    demo.outbox.messages().iter().filter(|m| m.to == to).count()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_entra_only_user_verifies_unlocks_into_a_reset_and_every_page_reflows()
-> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let demo = demo::start("127.0.0.1:0".parse()?).await?;
    let url = demo.portal_url().to_string();

    browser_test("day_one", async |b| {
        b.open(&format!("{url}/")).await?;
        check_page(b).await?;
        // The language switch on every page, and back.
        click_link(b, "Deutsch").await?;
        b.wait_for_text("Ihr Arbeitskonto", WAIT).await?;
        check_page(b).await?;
        click_link(b, "English").await?;
        b.wait_for_text("Your work account", WAIT).await?;

        b.fill("Your work account", KOFI).await?;
        b.click_button("Continue").await?;
        b.wait_for_text("Prove it's you", WAIT).await?;
        check_page(b).await?;

        // Email: where it went (masked), how long, and what to do if it never comes.
        let before = sent_to(&demo, KOFI_MAIL);
        b.click_button("Email me a code").await?;
        b.wait_for_text("We sent a code to k•••@p•••.", WAIT)
            .await?;
        b.wait_for_text("Didn’t get a code?", WAIT).await?;
        check_page(b).await?;
        let code = code_to(&demo, KOFI_MAIL, before).await?;
        // A wrong code first: the page says how many tries are left.
        b.fill("Verification code", "12345678").await?;
        b.click_button("Verify").await?;
        b.wait_for_text("You can try 2 more times", WAIT).await?;
        check_page(b).await?;
        b.fill("Verification code", &code).await?;
        b.click_button("Verify").await?;
        b.wait_for_text("Step 2 of 2", WAIT).await?;

        let before = sent_to(&demo, KOFI_PHONE);
        b.click_button("Text me a code").await?;
        b.wait_for_text("the number ending ••• ••• •• 67", WAIT)
            .await?;
        let code = code_to(&demo, KOFI_PHONE, before).await?;
        b.fill("Verification code", &code).await?;
        b.click_button("Verify").await?;
        b.wait_for_text("What do you want to do?", WAIT).await?;
        check_page(b).await?;

        // Unlock of a cloud account: what Entra does, then the way out in the same flow.
        b.click_button("Unlock my account without changing the password")
            .await?;
        b.wait_for_text("lock for a minute after 10 wrong passwords", WAIT)
            .await?;
        check_page(b).await?;
        click_link(b, "Reset my password").await?;
        b.wait_for_text("Choose a new password", WAIT).await?;
        check_page(b).await?;

        // The server's rules answer while typing.
        b.fill("New password", "P@ssw0rd-Summer").await?;
        b.wait_for_text("built mostly from words and patterns", WAIT)
            .await?;
        b.fill("New password", NEW_PASSWORD).await?;
        b.wait_for_text("meets every rule", WAIT).await?;
        b.fill("Repeat the new password", NEW_PASSWORD).await?;
        b.click_button("Set password").await?;
        b.wait_for_text("Your password has been changed", WAIT)
            .await?;
        check_page(b).await?;
        // The sign-in page is a link.
        use latchkey_e2e::thirtyfour::prelude::*;
        let signin = b.driver().find(By::LinkText("Sign in")).await?;
        anyhow::ensure!(
            signin.attr("href").await?.as_deref() == Some("https://myaccount.microsoft.com"),
            "the sign-in button leads elsewhere"
        );
        Ok(())
    })
    .await?;
    anyhow::ensure!(
        demo.sim.sign_in(KOFI, NEW_PASSWORD) == latchkey_entra_sim::SignInOutcome::Success,
        "the tenant does not take the new password"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    demo.stop().await;
    Ok(())
}

async fn click_link(b: &Browser, text: &str) -> anyhow::Result<()> {
    use latchkey_e2e::thirtyfour::prelude::*;
    b.driver().find(By::LinkText(text)).await?.click().await?;
    b.wait_for_load().await
}
