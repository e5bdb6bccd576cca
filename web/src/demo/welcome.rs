//! What `latchkey demo` prints at start: where everything is and what to try.

use super::Demo;

pub(super) fn print(demo: &Demo) {
    let url = demo.portal_url().to_string();
    let config_path = demo.config_path.display();
    println!("Latchkey demo");
    println!("  portal:                 {url}/");
    println!("  outbox (emails, texts, authenticator codes): {url}/demo/outbox");
    println!("  simulated Entra tenant: {}", demo.sim.base_url());
    println!("  configuration:          {config_path}");
    println!();
    println!(
        "Try a reset: open {url}/, type adele.vance@contoso.com, choose \"Email me a code\" and"
    );
    println!(
        "read the code in the outbox, then \"Use my authenticator app\" with the code the outbox shows,"
    );
    println!("and choose a new password. Also try an unknown account: the pages look the same.");
    println!();
    println!("In another terminal:");
    println!("  latchkey check --config {config_path}");
    println!("  latchkey user show adele.vance@contoso.com --config {config_path}");
    println!();
    println!("Try enrollment: open {url}/enroll and sign in at the simulated tenant as");
    println!(
        "ben.okafor@contoso.com with the password Ben-Demo-2024! (a simulator: every demo user's"
    );
    println!(
        "password is <FirstName>-Demo-2024!). Ben has no methods yet: add an email address (the"
    );
    println!("code is in the outbox) and an authenticator app, then reset his password at {url}/.");
    println!();
    println!("Consoles: open {url}/admin and sign in as it.admin@contoso.com (Eva-Demo-2024!), a");
    println!(
        "member of \"Latchkey Admins\"; open {url}/helpdesk and sign in as helpdesk@contoso.com"
    );
    println!("(Farid-Demo-2024!), a member of \"Helpdesk\". Anyone else is refused.");
    println!();
    println!(
        "Kiosk mode (the Windows sign-in screen's \"Reset password\" account): open {url}/kiosk;"
    );
    println!("left alone for 2 minutes it starts over by itself (docs/kiosk.md).");
    println!();
    let named = url.replace("127.0.0.1", "localhost");
    println!(
        "Passkeys: browsers accept them only on a host name, so use {named}: at {named}/enroll Ben"
    );
    println!(
        "adds one (your browser's passkey manager, a security key, or Chrome's DevTools > WebAuthn"
    );
    println!(
        "virtual authenticator), then resets at {named}/ with the passkey alone (docs/passkeys.md)."
    );
    println!("Press Ctrl+C to stop.");
}
