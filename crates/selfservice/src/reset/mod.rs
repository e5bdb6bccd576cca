//! A new password for a fully verified, claimed flow (docs/architecture.md, "The flow state
//! machine"). The password is checked first (the user learns *why* it is refused); then the
//! write goes the one way the user's account allows: app-only `passwordProfile` for cloud users
//! and the delegated `resetPassword` (written back to AD) for synced users when the portal holds
//! that credential ([`cloud`]), else a connected gateway ([`on_premises`]). The intent is on
//! record before the write, the write is never repeated blindly, and an answer that never came
//! is resolved by reading the user back. After the change the one after-change step runs
//! ([`changed`]).

mod changed;
mod cloud;
mod on_premises;
mod outcome;

use latchkey_store::Outcome;
use latchkey_types::Secret;

pub use outcome::{ResetOutcome, WritePath};

use crate::SelfService;
use crate::act::Acting;
use crate::password;

/// Sets the password the user chose (and confirmed) on a claimed flow; settles the claim.
pub async fn reset(
    s: &SelfService,
    acting: Acting,
    password: Secret<String>,
    confirm: &str,
) -> ResetOutcome {
    let flow_id = acting.current.flow.id.to_string();
    let attempts = s.limits.reset_attempts();
    if let Err(refusal) = crate::flow::hit(s, "reset:flow", &flow_id, &attempts).await {
        acting.release(s).await;
        return ResetOutcome::Throttled(refusal);
    }
    let names: Vec<&str> = acting
        .current
        .data
        .names
        .iter()
        .map(String::as_str)
        .collect();
    let checked = password::check(
        s,
        password.expose(),
        Some(confirm),
        &acting.policy.password,
        &names,
        true,
    )
    .await;
    if let Err(why) = checked {
        let recorded = acting.audit(s, Outcome::Failure, why.message_key()).await;
        if recorded.is_err() {
            return ResetOutcome::TryAgain(acting.try_again(s, recorded).await);
        }
        acting.release(s).await;
        return ResetOutcome::Rejected(why);
    }
    // Once the password passed every check, the write, reading back its outcome and the steps
    // after it get a Graph budget of their own: what the checks spent must not cut them short.
    let write = async {
        // Graph refuses passwordProfile for on-premises-mastered users: they go through the
        // delegated resetPassword (written back to AD) when the portal holds that credential,
        // else through a connected gateway that may reset.
        match (acting.synced(), s.writeback()) {
            (false, _) => cloud::write(s, acting, WritePath::AppOnly, None, password).await,
            (true, Some(w)) => {
                cloud::write(s, acting, WritePath::Writeback, Some(w), password).await
            }
            (true, None) => on_premises::reset(s, acting, password).await,
        }
    };
    latchkey_graph::deadline::fresh(s.graph_budget, write).await
}
