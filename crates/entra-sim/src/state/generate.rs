//! The `[generate]` fixture section: a large tenant built from a seed instead of TOML lines.
//!
//! Shape (groups G, users U):
//! - `All Employees` (1) ⊃ divisions (G/2000, ≥1) ⊃ departments (G/100, ≥1) ⊃ teams (~¾ of G):
//!   each level is a nested group member of the one above, so a team member is 4 levels deep.
//! - project groups (~¼ of G): some nested in an earlier project group, up to `max_depth`
//!   levels; plus `cycles` pairs of project groups that contain each other (Entra allows it).
//! - every user is a direct member of one team and of 0..=`extra_groups_per_user` project
//!   groups; `disabled_percent` disabled, `synced_percent` synced from AD (samAccountName,
//!   immutableId), `alias_percent` with otherMails/proxyAddresses, `role_holders` with a role.
//!
//! Ids are `stable_uuid("gen:{seed}:user:{i}")` / `("gen:{seed}:group:{i}")`, names come from
//! small word lists: the same seed gives the same tenant. Users are built lean (no methods,
//! `extra`, risk): fields that stay empty allocate nothing, and the password is stored as given
//! (the simulator keeps plain `Secret<String>`s), so no hashing runs per user.

use std::collections::BTreeSet;

use latchkey_types::Secret;
use time::OffsetDateTime;
use uuid::Uuid;

use super::methods::Methods;
use super::{Group, Lockout, Member, User, stable_uuid};
use crate::fixture::GenerateFixture;
use crate::roles;

/// SplitMix64: tiny, fast, and plenty for picking shapes (no crate needed).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    pub fn percent(&mut self, p: u32) -> bool {
        self.below(100) < p as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

pub const FIRST: &[&str] = &[
    "Adele",
    "Alex",
    "Allan",
    "Ben",
    "Camille",
    "Chen",
    "Diego",
    "Elena",
    "Emma",
    "Farah",
    "Grady",
    "Hana",
    "Henrietta",
    "Irvin",
    "Isaiah",
    "Jia",
    "Johanna",
    "Joni",
    "Kenji",
    "Lee",
    "Lidia",
    "Lynne",
    "Megan",
    "Miriam",
    "Nestor",
    "Noor",
    "Olga",
    "Patti",
    "Pradeep",
    "Raul",
    "Sakura",
    "Sam",
    "Tomas",
    "Uma",
    "Vikram",
    "Wanda",
    "Xavier",
    "Yara",
    "Zoe",
    "Zhang",
];
pub const LAST: &[&str] = &[
    "Adams", "Bowen", "Brown", "Cho", "Diaz", "Eriksen", "Fischer", "Garcia", "Gupta", "Hall",
    "Ito", "Jensen", "Khan", "Kowalski", "Lopez", "Martin", "Miller", "Nakamura", "Novak",
    "O'Brien", "Patel", "Quinn", "Rossi", "Sanchez", "Schmidt", "Silva", "Smith", "Tanaka",
    "Vance", "Wilber", "Wong", "Young",
];
const TITLES: &[&str] = &[
    "Engineer",
    "Senior Engineer",
    "Analyst",
    "Accountant",
    "Designer",
    "Sales Representative",
    "Support Specialist",
    "Manager",
    "Director",
    "Technician",
];
const OFFICES: &[&str] = &["Redmond", "London", "Paris", "Tokyo", "Berlin", "Sydney"];
const AREAS: &[&str] = &[
    "Engineering",
    "Finance",
    "Sales",
    "Marketing",
    "Operations",
    "Legal",
    "Support",
    "Research",
];
const ROLES: &[&str] = &[
    roles::HELPDESK_ADMINISTRATOR,
    roles::USER_ADMINISTRATOR,
    roles::PASSWORD_ADMINISTRATOR,
    roles::AUTHENTICATION_ADMINISTRATOR,
    roles::GLOBAL_READER,
    roles::SECURITY_READER,
];

/// A user with the given names and nothing optional; what the generator and churn create.
pub fn lean_user(
    id: Uuid,
    upn: String,
    given: &str,
    surname: &str,
    password: &Secret<String>,
    created: OffsetDateTime,
) -> User {
    User {
        id,
        mail_nickname: upn.split('@').next().map(str::to_owned),
        mail: Some(upn.clone()),
        upn,
        display_name: format!("{given} {surname}"),
        given_name: Some(given.to_owned()),
        surname: Some(surname.to_owned()),
        other_mails: Vec::new(),
        proxy_addresses: Vec::new(),
        mobile_phone: None,
        business_phones: Vec::new(),
        job_title: None,
        office_location: None,
        employee_id: None,
        employee_hire_date: None,
        account_enabled: true,
        on_premises_sync_enabled: None,
        on_premises_sam_account_name: None,
        on_premises_domain_name: None,
        on_premises_immutable_id: None,
        preferred_language: None,
        user_type: "Member".into(),
        usage_location: None,
        password_policies: None,
        created,
        extra: serde_json::Map::new(),
        password: password.clone(),
        last_password_change: created,
        force_change_password_next_sign_in: false,
        sign_in_sessions_valid_from: created,
        roles: BTreeSet::new(),
        risk: None,
        methods: Methods {
            password_created: Some(created),
            ..Methods::default()
        },
        lockout: Lockout::default(),
    }
}

fn group(id: Uuid, name: String, created: OffsetDateTime) -> Group {
    Group {
        id,
        mail_nickname: name.replace([' ', '\''], ""),
        description: None,
        display_name: name,
        mail_enabled: false,
        security_enabled: true,
        created,
        members: Vec::new(),
    }
}

/// Appends the generated groups and users to `users`/`groups`.
pub fn generate(
    g: &GenerateFixture,
    initial_domain: &str,
    created: OffsetDateTime,
    users: &mut Vec<User>,
    groups: &mut Vec<Group>,
) {
    let mut rng = Rng::new(g.seed);
    let domain = g
        .domain
        .clone()
        .unwrap_or_else(|| initial_domain.to_owned());
    let seed = g.seed;
    let gid = |i: usize| stable_uuid(&format!("gen:{seed}:group:{i}"));
    let n = g.groups;
    if n == 0 {
        return;
    }
    // Levels; small tenants get teams only.
    let (divisions, departments, projects) = if n >= 5 {
        let div = (n / 2000).max(1);
        let dep = (n / 100).max(1);
        let proj = n / 4;
        (div, dep, proj)
    } else {
        (0, 0, 0)
    };
    let root = usize::from(n >= 5);
    let teams = n - root - divisions - departments - projects;
    let base = groups.len();
    let mut idx = 0usize;
    let mut make = |name: String, groups: &mut Vec<Group>| {
        groups.push(group(gid(idx), name, created));
        idx += 1;
        groups.len() - 1
    };
    let root_i = (root == 1).then(|| make("All Employees".into(), groups));
    let div_i: Vec<usize> = (0..divisions)
        .map(|d| make(format!("Division {:02}", d + 1), groups))
        .collect();
    let dep_i: Vec<usize> = (0..departments)
        .map(|d| make(format!("{} {:03}", AREAS[d % AREAS.len()], d + 1), groups))
        .collect();
    let team_i: Vec<usize> = (0..teams)
        .map(|t| make(format!("Team {:05}", t + 1), groups))
        .collect();
    let proj_i: Vec<usize> = (0..projects)
        .map(|p| make(format!("Project {:05}", p + 1), groups))
        .collect();
    let id_of = |groups: &Vec<Group>, i: usize| groups[i].id;
    // Hierarchy: division ∈ All Employees, department ∈ division, team ∈ department.
    if let Some(r) = root_i {
        for &d in &div_i {
            let m = Member::Group(id_of(groups, d));
            groups[r].members.push(m);
        }
    }
    for (k, &d) in dep_i.iter().enumerate() {
        let m = Member::Group(id_of(groups, d));
        groups[div_i[k % div_i.len()]].members.push(m);
    }
    if !dep_i.is_empty() {
        for (k, &t) in team_i.iter().enumerate() {
            let m = Member::Group(id_of(groups, t));
            groups[dep_i[k % dep_i.len()]].members.push(m);
        }
    }
    // Project nesting: a third of the projects join an earlier project that is not too deep.
    let mut depth = vec![1usize; proj_i.len()];
    for k in 1..proj_i.len() {
        if rng.percent(33) {
            let parent = rng.below(k);
            if depth[parent] < g.max_depth.max(1) {
                depth[k] = depth[parent] + 1;
                let m = Member::Group(id_of(groups, proj_i[k]));
                groups[proj_i[parent]].members.push(m);
            }
        }
    }
    let cycles = g.cycles.unwrap_or(if proj_i.len() >= 2 {
        (n / 5000).max(1)
    } else {
        0
    });
    for _ in 0..cycles.min(proj_i.len() / 2) {
        let a = rng.below(proj_i.len());
        let b = (a + 1 + rng.below(proj_i.len() - 1)) % proj_i.len();
        let (ga, gb) = (id_of(groups, proj_i[a]), id_of(groups, proj_i[b]));
        for (host, guest) in [(proj_i[a], gb), (proj_i[b], ga)] {
            if !groups[host].members.contains(&Member::Group(guest)) {
                groups[host].members.push(Member::Group(guest));
            }
        }
    }
    // Users.
    let password = Secret::new(g.password.clone());
    let team_pool: Vec<usize> = if team_i.is_empty() {
        (base..groups.len()).collect()
    } else {
        team_i
    };
    let holders = g.role_holders.min(g.users);
    users.reserve(g.users);
    for i in 0..g.users {
        let first = *rng.pick(FIRST);
        let last = *rng.pick(LAST);
        let local = format!("{}.{}{}", first, last.replace('\'', ""), i + 1).to_ascii_lowercase();
        let upn = format!("{local}@{domain}");
        let id = stable_uuid(&format!("gen:{seed}:user:{i}"));
        let mut u = lean_user(id, upn, first, last, &password, created);
        u.job_title = Some((*rng.pick(TITLES)).to_owned());
        u.office_location = Some((*rng.pick(OFFICES)).to_owned());
        u.employee_id = Some(format!("{:07}", i + 1));
        u.account_enabled = !rng.percent(g.disabled_percent);
        if rng.percent(g.synced_percent) {
            u.on_premises_sync_enabled = Some(true);
            u.on_premises_sam_account_name = Some(local.chars().take(20).collect());
            u.on_premises_domain_name = Some(format!("corp.{domain}"));
            u.on_premises_immutable_id = Some(crate::state::b64url(id.as_bytes()));
        }
        if rng.percent(g.alias_percent) {
            let alias =
                format!("{}{}@{domain}", &first[..1], last.replace('\'', "")).to_ascii_lowercase();
            u.other_mails = vec![format!("{local}@example.net")];
            u.proxy_addresses = vec![format!("SMTP:{}", u.upn), format!("smtp:{alias}")];
        }
        if i < holders {
            u.roles.insert(ROLES[i % ROLES.len()].to_owned());
        }
        let me = Member::User(id);
        let team = team_pool[rng.below(team_pool.len())];
        groups[team].members.push(me);
        if !proj_i.is_empty() {
            for _ in 0..rng.below(g.extra_groups_per_user + 1) {
                let p = proj_i[rng.below(proj_i.len())];
                if groups[p].members.last() != Some(&me) {
                    groups[p].members.push(me);
                }
            }
        }
        users.push(u);
    }
}
