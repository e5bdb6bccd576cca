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
                let sources: Vec<&str> = p.sources.iter().map(|s| s.as_str()).collect();
                println!(
                    "  {:>5}  {}{}  groups: {}  methods: {} of {} (codes to: {})",
                    p.priority,
                    p.name,
                    if p.enabled { "" } else { " (disabled)" },
                    if groups.is_empty() {
                        "none (matches nobody)".to_string()
                    } else {
                        groups.join(", ")
                    },
                    p.methods_required,
                    methods.join(", "),
                    sources.join(", ")
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

/// What the policies give one user, and why: shared by `latchkey policy explain` and the admin
/// console's simulation.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Explanation {
    pub id: ObjectId,
    pub upn: String,
    pub display_name: Option<String>,
    /// Directory roles (display names) that make the account privileged; empty when none.
    pub roles: Vec<String>,
    pub disabled: bool,
    /// The evaluation's reason, e.g. "matched 'Staff' via group Sales; 'Contractors' skipped: ...".
    pub reason: String,
    /// The deciding policy, when one matched.
    pub policy: Option<Granted>,
}

/// What the deciding policy allows.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Granted {
    pub name: String,
    pub actions: Vec<String>,
    pub methods: Vec<String>,
    /// Where codes go: `latchkey`, `entra`, `profile`.
    pub sources: Vec<String>,
    pub methods_required: usize,
}

/// The lower-case action name used in policy files.
pub fn action_name(a: &latchkey_policy::Action) -> String {
    a.as_str().to_string()
}

/// Resolves `who` (UPN, mail or object id) in the tenant and evaluates `set` for them with their
/// full transitive memberships. `Ok(None)`: no such user, or the name is ambiguous.
pub async fn explain_user(
    client: &latchkey_graph::GraphClient,
    set: &latchkey_policy::PolicySet,
    who: &str,
) -> Result<Option<Explanation>, latchkey_graph::GraphError> {
    let user = match who.trim().parse::<ObjectId>() {
        Ok(id) => client.get_user(&latchkey_graph::UserRef::Id(id)).await,
        Err(_) => client.find_user(who.trim()).await,
    };
    let user = match user {
        Ok(u) => u,
        Err(e)
            if e.is_not_found()
                || matches!(
                    e,
                    latchkey_graph::GraphError::NotFound { .. }
                        | latchkey_graph::GraphError::Ambiguous { .. }
                        | latchkey_graph::GraphError::InvalidInput(_)
                ) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let memberships = client.transitive_memberships(&user.id).await?;
    let groups: HashSet<ObjectId> = memberships.groups.iter().map(|g| g.id).collect();
    let privileged = !memberships.roles.is_empty();
    let evaluation = evaluate(
        set,
        Subject {
            groups: &groups,
            privileged,
        },
    );
    Ok(Some(Explanation {
        id: user.id,
        upn: user.user_principal_name.to_string(),
        display_name: user.display_name.clone(),
        roles: memberships
            .roles
            .iter()
            .map(|r| r.display_name.clone().unwrap_or_else(|| r.id.to_string()))
            .collect(),
        disabled: user.account_enabled == Some(false),
        reason: evaluation.explain(),
        policy: evaluation.policy.map(|p| Granted {
            name: p.name.clone(),
            actions: p.actions.iter().map(action_name).collect(),
            methods: p.methods.iter().map(|m| m.as_str().to_string()).collect(),
            sources: p.sources.iter().map(|s| s.as_str().to_string()).collect(),
            methods_required: p.methods_required,
        }),
    }))
}

/// Resolves `who` in the tenant, evaluates the configured policies for them and prints why.
pub async fn explain(config: &Path, who: &str) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(config)?;
    let client = crate::entra::client(&settings)?;
    let set = load_dir(&settings.policies.dir).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("policies are invalid:\n  {}", lines.join("\n  "))
    })?;
    let Some(x) = explain_user(&client, &set, who).await? else {
        eprintln!("{who}: no such user (or more than one matches)");
        return Ok(ExitCode::from(1));
    };
    println!("{} ({})", x.upn, x.id);
    if !x.roles.is_empty() {
        println!("  privileged: directory roles {}", x.roles.join(", "));
    }
    if x.disabled {
        println!("  the account is disabled: self-service never starts for it");
    }
    println!("  {}", x.reason);
    if let Some(p) = x.policy {
        println!(
            "  may: {}; verifies with {} of {}; codes go to what is in: {}",
            p.actions.join(", "),
            p.methods_required,
            p.methods.join(", "),
            p.sources.join(", ")
        );
        if p.sources.iter().any(|s| s == "profile") {
            println!(
                "  note: the directory profile's phone and emails count; anyone who may edit user profiles can change them"
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
