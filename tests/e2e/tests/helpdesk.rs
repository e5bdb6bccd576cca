//! A helpdesk task in a real browser: a helpdesk member signs in at the simulated tenant, finds a
//! user, emails them a pre-filled reset link (through a real SMTP server); the user opens the
//! link from that email, proves who they are with their own methods and sets a new password.
//! Every helpdesk page and the link page are checked with axe-core.

use std::sync::Arc;
use std::time::Duration;

use latchkey::demo::{self, DemoOptions};
use latchkey_e2e::{WAIT, browser_test, extract_code, wait_until};
use latchkey_notify::{Channels, SmtpConfig, SmtpMailer, SmtpSecurity};
use latchkey_verify::{AuthenticatorApp, TotpConfig};

const FARID: (&str, &str) = ("helpdesk@contoso.com", "Farid-Demo-2024!");
const ADELE: &str = "adele.vance@contoso.com";
/// Adele's directory mail (where the link goes) and her enrolled email (codes).
const ADELE_DIRECTORY_MAIL: &str = "adele.vance@contoso.com";
const ADELE_ENROLLED_MAIL: &str = "adele.vance@outlook.example";
const NEW_PASSWORD: &str = "Harbour-Quartz-Meadow-84";

#[tokio::test(flavor = "multi_thread")]
async fn helpdesk_emails_a_link_and_the_user_resets_with_it() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let smtp = latchkey_e2e::SmtpSink::start().await?;
    let mut config = SmtpConfig::new(smtp.host(), "Contoso IT <it@contoso.com>");
    config.port = Some(smtp.port());
    config.security = SmtpSecurity::Plain;
    let mailer = Arc::new(SmtpMailer::new(&config)?);
    let options = DemoOptions {
        channels: Some(Channels {
            email: Some(mailer),
            sms: None,
        }),
        ..DemoOptions::default()
    };
    let demo = demo::start_with("127.0.0.1:0".parse()?, options).await?;
    let url = demo.portal_url().to_string();

    browser_test("helpdesk_link_reset", async |b| {
        // The helpdesk member signs in through the tenant's page.
        b.open(&format!("{url}/helpdesk")).await?;
        b.wait_for_text("Sign in", WAIT).await?;
        b.fill("Email, phone, or Skype", FARID.0).await?;
        b.fill("Password", FARID.1).await?;
        b.click_button("Sign in").await?;
        b.wait_for_text("Find a user", WAIT).await?;
        b.assert_accessible().await?;
        // Finds Adele and emails her a link.
        b.fill("User", ADELE).await?;
        b.click_button("Find").await?;
        b.wait_for_text("Adele Vance", WAIT).await?;
        b.wait_for_text("Latchkey enrollments", WAIT).await?;
        b.assert_accessible().await?;
        b.click_button("Create link").await?;
        b.wait_for_text("The link was sent to", WAIT).await?;
        b.assert_accessible().await?;
        b.click_button("Sign out").await?;
        b.wait_for_text("signed out", WAIT).await?;

        // Adele opens the link from the email.
        let mail = smtp.wait_for_message(ADELE_DIRECTORY_MAIL, WAIT).await?;
        let text = mail.text.clone().unwrap_or_default();
        let link = text
            .split_whitespace()
            .find(|w| w.starts_with(&format!("{url}/link/")))
            .ok_or_else(|| anyhow::anyhow!("no link in the email: {text}"))?
            .to_string();
        b.open(&link).await?;
        b.wait_for_text("Reset your password", WAIT).await?;
        b.wait_for_text(ADELE, WAIT).await?;
        b.assert_accessible().await?;
        b.click_button("Continue").await?;
        // The link pre-filled who she is; she still proves it with her own methods.
        b.wait_for_text("Prove it's you", WAIT).await?;
        let before = smtp.messages()?.len();
        b.click_button("Email me a code").await?;
        b.wait_for_text("Enter your code", WAIT).await?;
        let code_mail = wait_until("the reset code email", WAIT, async || {
            Ok(smtp
                .messages()?
                .into_iter()
                .skip(before)
                .find(|m| m.rcpt_tos.iter().any(|t| t == ADELE_ENROLLED_MAIL)))
        })
        .await?;
        let code = extract_code(&code_mail).ok_or_else(|| anyhow::anyhow!("no code"))?;
        b.fill("Verification code", &code).await?;
        b.click_button("Verify").await?;
        b.wait_for_text("Step 2 of 2", WAIT).await?;
        b.click_button("Use my authenticator app").await?;
        // Text of the code page only: the page with the button says "authenticator app" too.
        b.wait_for_text("Open your authenticator app", WAIT).await?;
        let seed = demo
            .totp_seed(ADELE)
            .ok_or_else(|| anyhow::anyhow!("Adele has no demo authenticator"))?;
        let app = AuthenticatorApp::new(TotpConfig::new("e2e"))?;
        let totp = wait_until(
            "an authenticator code",
            Duration::from_secs(5),
            async || {
                Ok(Some(
                    app.code_at(seed, time::OffsetDateTime::now_utc())?
                        .expose()
                        .clone(),
                ))
            },
        )
        .await?;
        b.fill("Verification code", &totp).await?;
        b.click_button("Verify").await?;
        b.wait_for_text("What do you want to do?", WAIT).await?;
        {
            use latchkey_e2e::thirtyfour::prelude::*;
            b.driver()
                .find(By::LinkText("Choose a new password"))
                .await?
                .click()
                .await?;
            b.wait_for_load().await?;
        }
        b.wait_for_text("Choose a new password", WAIT).await?;
        b.fill("New password", NEW_PASSWORD).await?;
        b.fill("Repeat the new password", NEW_PASSWORD).await?;
        b.click_button("Set password").await?;
        b.wait_for_text("Your password has been changed", WAIT)
            .await?;
        Ok(())
    })
    .await?;

    // The tenant took the new password, and the link was used up.
    anyhow::ensure!(
        matches!(
            demo.sim.sign_in(ADELE, NEW_PASSWORD),
            latchkey_entra_sim::SignInOutcome::Success
        ),
        "the new password does not work at the tenant"
    );
    let types = demo.audit_types().await;
    for t in ["helpdesk.link.issued", "helpdesk.link.used", "reset"] {
        anyhow::ensure!(types.iter().any(|x| x == t), "no {t} event: {types:?}");
    }
    demo.stop().await;
    Ok(())
}

/// The demo's "Staff" policy, with the Temporary Access Pass allowed.
fn allow_tap(demo: &demo::Demo) -> anyhow::Result<()> {
    let group = demo
        .sim
        .tenant()
        .group_id("SSPR Enabled")
        .ok_or_else(|| anyhow::anyhow!("no SSPR Enabled group"))?;
    let text = format!(
        "[[policy]]\nname = \"Staff\"\npriority = 10\n\
         applies_to = [{{ id = \"{group}\", name = \"SSPR Enabled\" }}]\n\
         actions = [\"reset\", \"unlock\", \"enroll\", \"temporary_access_pass\"]\n\
         methods = [\"email\", \"totp\", \"sms\"]\nmethods_required = 2\n"
    );
    let set = latchkey_policy::parse_sources(&[(std::path::PathBuf::from("e2e.toml"), text)])
        .map_err(|e| anyhow::anyhow!("policy: {e:?}"))?;
    *demo
        .services
        .policies
        .write()
        .map_err(|_| anyhow::anyhow!("policy lock"))? = Arc::new(set);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn helpdesk_verifies_a_caller_and_issues_a_temporary_access_pass() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let smtp = latchkey_e2e::SmtpSink::start().await?;
    let mut config = SmtpConfig::new(smtp.host(), "Contoso IT <it@contoso.com>");
    config.port = Some(smtp.port());
    config.security = SmtpSecurity::Plain;
    let options = DemoOptions {
        channels: Some(Channels {
            email: Some(Arc::new(SmtpMailer::new(&config)?)),
            sms: None,
        }),
        ..DemoOptions::default()
    };
    let demo = demo::start_with("127.0.0.1:0".parse()?, options).await?;
    allow_tap(&demo)?;
    let url = demo.portal_url().to_string();

    browser_test("helpdesk_caller_tap", async |b| {
        b.open(&format!("{url}/helpdesk")).await?;
        b.wait_for_text("Sign in", WAIT).await?;
        b.fill("Email, phone, or Skype", FARID.0).await?;
        b.fill("Password", FARID.1).await?;
        b.click_button("Sign in").await?;
        b.wait_for_text("Find a user", WAIT).await?;
        // Not found looks the same for unknown and out-of-scope users.
        b.fill("User", "lena.novak@contoso.com").await?;
        b.click_button("Find").await?;
        b.wait_for_text("No user you may help matches this", WAIT)
            .await?;
        b.assert_accessible().await?;
        b.fill("User", ADELE).await?;
        b.click_button("Find").await?;
        b.wait_for_text("Verify the caller", WAIT).await?;
        // The caller reads back the code sent to her enrolled address.
        b.click_button("Send code").await?;
        b.wait_for_text("Ask the caller to read it to you", WAIT)
            .await?;
        b.assert_accessible().await?;
        let mail = smtp.wait_for_message(ADELE_ENROLLED_MAIL, WAIT).await?;
        let code = extract_code(&mail).ok_or_else(|| anyhow::anyhow!("no caller code"))?;
        b.fill("Code the caller reads out", &code).await?;
        b.click_button("Check code").await?;
        b.wait_for_text("The caller is verified", WAIT).await?;
        b.wait_for_text("Authentication methods in Entra", WAIT)
            .await?;
        b.assert_accessible().await?;
        b.click_button("Get a Temporary Access Pass").await?;
        b.wait_for_text("Read it to the verified caller now", WAIT)
            .await?;
        b.assert_accessible().await?;
        b.open(&format!("{url}/helpdesk/approvals")).await?;
        b.wait_for_text("No requests are waiting", WAIT).await?;
        b.assert_accessible().await?;
        Ok(())
    })
    .await?;

    // Adele is told a pass was issued (on her enrolled address and her directory mail).
    wait_until("the TAP notice", WAIT, async || {
        Ok(smtp
            .messages()?
            .into_iter()
            .find(|m| m.subject.contains("Temporary Access Pass")))
    })
    .await?;
    let types = demo.audit_types().await;
    for t in ["helpdesk.caller.verify", "helpdesk.tap"] {
        anyhow::ensure!(types.iter().any(|x| x == t), "no {t} event: {types:?}");
    }
    demo.stop().await;
    Ok(())
}
