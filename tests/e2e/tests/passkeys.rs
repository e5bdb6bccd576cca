//! Passkeys in a real browser: Chromium with a virtual authenticator (DevTools `WebAuthn`
//! domain: CTAP2, internal transport, resident keys, user verification). Ben registers a passkey
//! at `/enroll`, then resets his password with the passkey alone at the kiosk page (the policy
//! lets a passkey stand alone), and under a two-method policy the passkey counts as one. A
//! replayed answer, an unknown account and a page on another origin are refused; every page
//! passes axe-core.

use std::path::PathBuf;
use std::sync::Arc;

use latchkey::demo::{self, Demo, DemoOptions};
use latchkey_e2e::thirtyfour::prelude::*;
use latchkey_e2e::{Browser, WAIT, browser_test};
use serde_json::json;

const BEN: &str = "ben.okafor@contoso.com";
const BEN_PASSWORD: &str = "Ben-Demo-2024!";
const NEW_PASSWORD: &str = "Quartz-Meadow-Lantern-83";
const REFUSED: &str = "That passkey was not accepted for this account.";

async fn passkey_demo() -> anyhow::Result<Demo> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let options = DemoOptions {
        localhost: true,
        ..DemoOptions::default()
    };
    demo::start_with("127.0.0.1:0".parse()?, options).await
}

/// A platform authenticator with user verification, answering without a prompt.
async fn add_virtual_authenticator(b: &Browser) -> anyhow::Result<()> {
    let cdp = b.driver().cdp();
    cdp.send_raw("WebAuthn.enable", json!({ "enableUI": false }))
        .await?;
    cdp.send_raw(
        "WebAuthn.addVirtualAuthenticator",
        json!({ "options": {
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": true,
            "hasUserVerification": true,
            "isUserVerified": true,
            "automaticPresenceSimulation": true,
        } }),
    )
    .await?;
    Ok(())
}

async fn sign_in_at_the_tenant(b: &Browser) -> anyhow::Result<()> {
    b.wait_for_text("Sign in", WAIT).await?;
    b.fill("Email, phone, or Skype", BEN).await?;
    b.fill("Password", BEN_PASSWORD).await?;
    b.click_button("Sign in").await
}

/// Ben, with a virtual authenticator, signs in at `/enroll` and registers a passkey "Laptop"
/// (the creation page checked with axe).
async fn register_laptop(b: &Browser, url: &str) -> anyhow::Result<()> {
    add_virtual_authenticator(b).await?;
    b.open(&format!("{url}/enroll")).await?;
    sign_in_at_the_tenant(b).await?;
    b.wait_for_text("Your verification methods", WAIT).await?;
    b.fill(
        "Name of the new passkey (for example “YubiKey on my keyring”)",
        "Laptop",
    )
    .await?;
    b.click_button("Add a passkey").await?;
    b.wait_for_text("Create your passkey", WAIT).await?;
    b.assert_accessible().await?;
    b.click_button("Create passkey").await?;
    b.wait_for_text("Added: Passkeys and security keys", WAIT)
        .await
}

/// Starts a flow for `login` at `start` and opens the passkey prompt.
async fn passkey_prompt(b: &Browser, start: &str, login: &str) -> anyhow::Result<()> {
    b.open(start).await?;
    b.fill("Your work account", login).await?;
    b.click_button("Continue").await?;
    // The choice's own button: the first page says "Prove it's you" too.
    b.wait_for_text("Use a passkey or security key", WAIT)
        .await?;
    b.click_button("Use a passkey or security key").await?;
    b.wait_for_text("Use your passkey", WAIT).await
}

/// Keeps a copy of the answer the page's script submits, to replay it later.
async fn keep_answer(b: &Browser) -> anyhow::Result<()> {
    b.driver()
        .execute(
            r#"const f = document.getElementById("passkey-form");
               const submit = f.submit.bind(f);
               f.submit = function () {
                 const kept = {};
                 new FormData(f).forEach(function (v, k) { kept[k] = v; });
                 localStorage.setItem("kept-answer", JSON.stringify(kept));
                 submit();
               };"#,
            vec![],
        )
        .await?;
    Ok(())
}

/// Posts the kept answer with the current page's CSRF token; returns the answer's page text.
async fn replay_answer(b: &Browser) -> anyhow::Result<String> {
    let ret = b
        .driver()
        .execute_async(
            r#"const done = arguments[arguments.length - 1];
               const kept = JSON.parse(localStorage.getItem("kept-answer"));
               kept.csrf = document.querySelector("input[name=csrf]").value;
               fetch("/verify/passkey", { method: "POST", body: new URLSearchParams(kept),
                      redirect: "manual" })
                 .then(function (r) { return r.text().then(function (t) { done(r.status + " " + t); }); })
                 .catch(function (e) { done("error " + e); });"#,
            vec![],
        )
        .await?;
    Ok(ret.json().as_str().unwrap_or_default().to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_passkey_made_in_the_browser_resets_a_password_at_the_kiosk() -> anyhow::Result<()> {
    let demo = passkey_demo().await?;
    let url = demo.portal_url().to_string();
    browser_test("passkey_reset", async |b| {
        register_laptop(b, &url).await?;
        b.wait_for_text("Laptop", WAIT).await?;
        b.assert_accessible().await?;
        b.click_button("Sign out").await?;
        b.wait_for_text("You are signed out", WAIT).await?;

        // The reset, at the kiosk page (a security key at the Windows sign-in screen).
        passkey_prompt(b, &format!("{url}/kiosk"), BEN).await?;
        b.assert_accessible().await?;
        keep_answer(b).await?;
        b.click_button("Use my passkey").await?;
        b.wait_for_text("What do you want to do?", WAIT).await?;
        b.driver()
            .find(By::LinkText("Choose a new password"))
            .await?
            .click()
            .await?;
        // The reset page's own field (the page with the link says "Choose a new password" too).
        b.wait_for_text("Repeat the new password", WAIT).await?;
        b.fill("New password", NEW_PASSWORD).await?;
        b.fill("Repeat the new password", NEW_PASSWORD).await?;
        b.click_button("Set password").await?;
        b.wait_for_text("Your password has been changed", WAIT)
            .await?;

        // The same answer in a new flow: refused (it answers another flow's prompt, used up).
        passkey_prompt(b, &format!("{url}/"), BEN).await?;
        let replayed = replay_answer(b).await?;
        anyhow::ensure!(
            replayed.starts_with("400 ") && replayed.contains(REFUSED),
            "a replayed answer was not refused: {}",
            replayed.chars().take(200).collect::<String>()
        );

        // An unknown account gets the same prompt, and the passkey is refused for it.
        passkey_prompt(b, &format!("{url}/"), "nobody.here@contoso.com").await?;
        b.click_button("Use my passkey").await?;
        b.wait_for_text(REFUSED, WAIT).await?;
        b.assert_accessible().await?;

        // The portal at another origin (its IP address): the browser will not use the
        // passkey there, and the page says so instead of failing silently.
        let other = url.replace("localhost", "127.0.0.1");
        passkey_prompt(b, &format!("{other}/"), BEN).await?;
        b.click_button("Use my passkey").await?;
        b.wait_for_text("No passkey was used.", WAIT).await?;
        Ok(())
    })
    .await?;
    anyhow::ensure!(
        demo.sim.sign_in(BEN, NEW_PASSWORD) == latchkey_entra_sim::SignInOutcome::Success,
        "the tenant does not take the new password"
    );
    let types = demo.audit_types().await;
    anyhow::ensure!(types.iter().any(|t| t == "enroll.activate"), "{types:?}");
    demo.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_passkey_counts_as_one_of_two_methods_under_another_policy() -> anyhow::Result<()> {
    let demo = passkey_demo().await?;
    let url = demo.portal_url().to_string();
    browser_test("passkey_one_of_two", async |b| {
        register_laptop(b, &url).await?;
        b.fill("Email address", "ben.private@example.net").await?;
        b.click_button("Send a code to this address").await?;
        b.wait_for_text("Verification code", WAIT).await?;
        let code = latchkey_e2e::wait_until("the code", WAIT, async || {
            Ok(demo
                .outbox
                .messages()
                .into_iter()
                .find(|m| m.to == "ben.private@example.net")
                .and_then(|m| {
                    m.body
                        .split(|c: char| !c.is_ascii_digit())
                        .find(|run| (6..=8).contains(&run.len()))
                        .map(str::to_string)
                }))
        })
        .await?;
        b.fill("Verification code", &code).await?;
        b.click_button("Confirm").await?;
        b.wait_for_text("Added: Email address", WAIT).await?;
        b.click_button("Sign out").await?;
        b.wait_for_text("You are signed out", WAIT).await?;

        let group = demo
            .sim
            .tenant()
            .group_id("SSPR Enabled")
            .unwrap_or_default();
        let text = format!(
            "[[policy]]\nname = \"Staff\"\npriority = 10\n\
             applies_to = [{{ id = \"{group}\", name = \"SSPR Enabled\" }}]\n\
             actions = [\"reset\", \"enroll\"]\nmethods = [\"email\", \"passkey\"]\n\
             methods_required = 2\n"
        );
        let set = latchkey_policy::parse_sources(&[(PathBuf::from("t.toml"), text)])
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        *demo
            .services
            .policies
            .write()
            .map_err(|_| anyhow::anyhow!("poisoned"))? = Arc::new(set);

        passkey_prompt(b, &format!("{url}/"), BEN).await?;
        b.click_button("Use my passkey").await?;
        b.wait_for_text("Step 2 of 2", WAIT).await?;
        b.assert_accessible().await?;
        let buttons = b.main_text().await?;
        anyhow::ensure!(
            !buttons.contains("Use a passkey or security key"),
            "the passkey is offered again after it counted: {buttons}"
        );
        Ok(())
    })
    .await?;
    demo.stop().await;
    Ok(())
}
