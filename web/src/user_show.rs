//! `latchkey user show`: one user as the portal sees them — identity, where the password is
//! mastered, groups, directory roles and authentication methods. Three Graph reads after the token.

use std::path::Path;
use std::process::ExitCode;

use latchkey_graph::{AuthMethod, GraphClient, GraphError, Memberships, User, UserRef};
use latchkey_types::ObjectId;
use serde::Serialize;
use time::format_description::well_known::Rfc3339;

use crate::check::role_name;
use crate::config::Settings;

/// The `--json` schema: a stable view, not Graph's shapes.
#[derive(Debug, Serialize)]
pub struct UserView {
    pub id: String,
    pub user_principal_name: String,
    pub display_name: Option<String>,
    pub mail: Option<String>,
    pub other_mails: Vec<String>,
    pub account_enabled: Option<bool>,
    pub user_type: Option<String>,
    /// `cloud` or `synced` (password mastered in on-premises AD).
    pub source: &'static str,
    pub on_premises_account: Option<String>,
    pub preferred_language: Option<String>,
    pub last_password_change: Option<String>,
    pub groups: Vec<NamedId>,
    pub directory_roles: Vec<String>,
    pub authentication_methods: Vec<MethodView>,
}

#[derive(Debug, Serialize)]
pub struct NamedId {
    pub id: String,
    pub display_name: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct MethodView {
    /// The Graph `@odata.type` without its namespace, e.g. `phoneAuthenticationMethod`.
    pub kind: String,
    pub id: Option<String>,
    /// What identifies the method to a person: the phone number, address, device name.
    pub detail: Option<String>,
}

pub async fn run(config: &Path, who: &str, json: bool) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(config)?;
    let client = crate::entra::client(&settings)?;
    match fetch(&client, who).await {
        Ok(view) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&view)?);
            } else {
                print!("{}", render(&view));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e @ (GraphError::NotFound { .. } | GraphError::Ambiguous { .. })) => {
            eprintln!("{who}: {e}");
            Ok(ExitCode::from(1))
        }
        Err(e) if e.is_not_found() => {
            eprintln!(
                "{who}: no such user [client-request-id {}]",
                e.client_request_id().unwrap_or("-")
            );
            Ok(ExitCode::from(1))
        }
        Err(e) => Err(e.into()),
    }
}

/// Resolves what an admin typed (object id, UPN, or any address of the user) and reads the rest.
pub async fn fetch(client: &GraphClient, who: &str) -> Result<UserView, GraphError> {
    let user = match who.trim().parse::<ObjectId>() {
        Ok(id) => client.get_user(&UserRef::Id(id)).await?,
        Err(_) => client.find_user(who).await?,
    };
    let (memberships, methods) = tokio::try_join!(
        client.transitive_memberships(&user.id),
        client.list_auth_methods(&user.id)
    )?;
    Ok(view(user, memberships, methods))
}

fn view(user: User, memberships: Memberships, methods: Vec<AuthMethod>) -> UserView {
    let synced = user.on_premises_sync_enabled == Some(true);
    UserView {
        id: user.id.to_string(),
        user_principal_name: user.user_principal_name.to_string(),
        display_name: user.display_name,
        mail: user.mail.map(|m| m.to_string()),
        other_mails: user.other_mails.iter().map(ToString::to_string).collect(),
        account_enabled: user.account_enabled,
        user_type: user.user_type.map(|t| format!("{t:?}")),
        source: if synced { "synced" } else { "cloud" },
        on_premises_account: match (
            &user.on_premises_domain_name,
            &user.on_premises_sam_account_name,
        ) {
            (Some(d), Some(s)) => Some(format!("{d}\\{s}")),
            (None, Some(s)) => Some(s.clone()),
            _ => None,
        },
        preferred_language: user.preferred_language,
        last_password_change: user
            .last_password_change_date_time
            .and_then(|t| t.format(&Rfc3339).ok()),
        groups: memberships
            .groups
            .into_iter()
            .map(|g| NamedId {
                id: g.id.to_string(),
                display_name: g.display_name,
            })
            .collect(),
        directory_roles: memberships
            .roles
            .into_iter()
            .map(|r| match (r.role_template_id, r.display_name) {
                (_, Some(name)) => name,
                (Some(t), None) => role_name(&t.to_string()).to_string(),
                (None, None) => r.id.to_string(),
            })
            .collect(),
        authentication_methods: methods.iter().map(method_view).collect(),
    }
}

fn method_view(m: &AuthMethod) -> MethodView {
    let detail = match m {
        AuthMethod::Phone(p) => Some(match p.phone_type {
            Some(t) => format!("{} ({t:?})", p.phone_number),
            None => p.phone_number.clone(),
        }),
        AuthMethod::Email(e) => Some(e.email_address.clone()),
        AuthMethod::MicrosoftAuthenticator(a) => a.display_name.clone(),
        AuthMethod::Fido2(f) => f.display_name.clone().or_else(|| f.model.clone()),
        AuthMethod::WindowsHelloForBusiness(w) => w.display_name.clone(),
        AuthMethod::PlatformCredential(p) => p.display_name.clone(),
        AuthMethod::TemporaryAccessPass(t) => {
            t.lifetime_in_minutes.map(|l| format!("lifetime {l} min"))
        }
        _ => None,
    };
    let odata_type = m.odata_type();
    let kind = odata_type
        .strip_prefix("#microsoft.graph.")
        .unwrap_or(&odata_type)
        .to_string();
    MethodView {
        kind,
        id: m.id().map(str::to_string),
        detail,
    }
}

/// The human-readable form.
pub fn render(v: &UserView) -> String {
    use crate::render::Lines as _;
    let mut out = String::new();
    let dash = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
    out.line(format_args!(
        "User                  {} <{}>",
        dash(&v.display_name),
        v.user_principal_name
    ));
    out.line(format_args!("Object id             {}", v.id));
    let enabled = match v.account_enabled {
        Some(true) => "yes",
        Some(false) => "NO (disabled)",
        None => "unknown",
    };
    out.line(format_args!("Enabled               {enabled}"));
    out.line(format_args!("Type                  {}", dash(&v.user_type)));
    let source = match (v.source, &v.on_premises_account) {
        ("synced", Some(acct)) => {
            format!("synced from on-premises AD ({acct}); password changes need writeback")
        }
        ("synced", None) => "synced from on-premises AD; password changes need writeback".into(),
        _ => "cloud-only".into(),
    };
    out.line(format_args!("Source                {source}"));
    out.line(format_args!("Mail                  {}", dash(&v.mail)));
    if !v.other_mails.is_empty() {
        out.line(format_args!(
            "Other mails           {}",
            v.other_mails.join(", ")
        ));
    }
    out.line(format_args!(
        "Preferred language    {}",
        dash(&v.preferred_language)
    ));
    out.line(format_args!(
        "Last password change  {}",
        dash(&v.last_password_change)
    ));
    let roles = if v.directory_roles.is_empty() {
        "none".to_string()
    } else {
        v.directory_roles.join(", ")
    };
    out.line(format_args!("Directory roles       {roles}"));
    out.line(format_args!("Groups ({})", v.groups.len()));
    for g in &v.groups {
        out.line(format_args!(
            "  {}  {}",
            g.id,
            g.display_name.as_deref().unwrap_or("-")
        ));
    }
    out.line(format_args!(
        "Authentication methods ({})",
        v.authentication_methods.len()
    ));
    for m in &v.authentication_methods {
        out.line(format_args!(
            "  {:<44} {}",
            m.kind,
            m.detail.as_deref().unwrap_or("")
        ));
    }
    out
}
