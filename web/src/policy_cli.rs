//! `latchkey policy check DIR` (for CI in the customer's policy repository) and
//! `latchkey policy explain <user> --config FILE` (which policy applies to whom, and why).

use std::collections::HashSet;
use std::path::Path;
use std::process::ExitCode;

use latchkey_policy::{Subject, evaluate, load_dir};
use latchkey_types::ObjectId;

use crate::config::Settings;

/// Validates every policy file in `dir`; prints the set or every error. Exit 1 on errors.
pub fn check(dir: &Path) -> anyhow::Result<ExitCode> {
    match load_dir(dir) {
        Ok(set) => {
            println!(
                "{}: {} valid policies, in evaluation order:",
                dir.display(),
                set.policies().len()
            );
            for p in set.policies() {
                let groups: Vec<String> = p.applies_to.iter().map(|g| g.label()).collect();
                let methods: Vec<&str> = p.methods.iter().map(|m| m.as_str()).collect();
                println!(
                    "  {:>5}  {}{}  groups: {}  methods: {} of {}",
                    p.priority,
                    p.name,
                    if p.enabled { "" } else { " (disabled)" },
                    if groups.is_empty() {
                        "none (matches nobody)".to_string()
                    } else {
                        groups.join(", ")
                    },
                    p.methods_required,
                    methods.join(", ")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            eprintln!("{} error(s); nothing was loaded", errors.len());
            Ok(ExitCode::from(1))
        }
    }
}

/// Resolves `who` in the tenant, evaluates the configured policies for them and prints why.
pub async fn explain(config: &Path, who: &str) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(config)?;
    let client = crate::entra::client(&settings)?;
    let set = load_dir(&settings.policies.dir).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("policies are invalid:\n  {}", lines.join("\n  "))
    })?;
    let user = match who.trim().parse::<ObjectId>() {
        Ok(id) => client.get_user(&latchkey_graph::UserRef::Id(id)).await,
        Err(_) => client.find_user(who).await,
    };
    let user = match user {
        Ok(u) => u,
        Err(e)
            if e.is_not_found()
                || matches!(
                    e,
                    latchkey_graph::GraphError::NotFound { .. }
                        | latchkey_graph::GraphError::Ambiguous { .. }
                ) =>
        {
            eprintln!("{who}: {e}");
            return Ok(ExitCode::from(1));
        }
        Err(e) => return Err(e.into()),
    };
    let memberships = client.transitive_memberships(&user.id).await?;
    let groups: HashSet<ObjectId> = memberships.groups.iter().map(|g| g.id).collect();
    let privileged = !memberships.roles.is_empty();
    let evaluation = evaluate(
        &set,
        Subject {
            groups: &groups,
            privileged,
        },
    );
    println!("{} ({})", user.user_principal_name, user.id);
    if privileged {
        let roles: Vec<String> = memberships
            .roles
            .iter()
            .filter_map(|r| r.display_name.clone())
            .collect();
        println!("  privileged: directory roles {}", roles.join(", "));
    }
    if user.account_enabled == Some(false) {
        println!("  the account is disabled: self-service never starts for it");
    }
    println!("  {}", evaluation.explain());
    if let Some(p) = evaluation.policy {
        let actions: Vec<String> = p
            .actions
            .iter()
            .map(|a| format!("{a:?}").to_lowercase())
            .collect();
        let methods: Vec<&str> = p.methods.iter().map(|m| m.as_str()).collect();
        println!(
            "  may: {}; verifies with {} of {}",
            actions.join(", "),
            p.methods_required,
            methods.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}
