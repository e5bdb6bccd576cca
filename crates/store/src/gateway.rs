//! On-premises gateways and the jobs the portal queues for them (unlock, reset of synced users).
//!
//! A gateway authenticates with a credential the portal issued once; only the SHA-256 of its
//! secret part is stored (the secret is 256 random bits, so a fast hash is enough and a copy of
//! the database hands out no credential). A job is claimed by exactly one gateway, once; a reset
//! job's new password is sealed with the store key while it waits and deleted when the job is
//! claimed or expires.

pub use latchkey_jobs::{JobKind, Target};
use latchkey_types::{EmailAddress, ObjectId, PhoneNumber, Secret};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// A registered gateway (never its credential).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gateway {
    pub id: String,
    pub name: String,
    pub created_at: OffsetDateTime,
    /// Last time it polled for jobs.
    pub last_seen_at: Option<OffsetDateTime>,
    /// Job kinds it declared at its last poll (`unlock`, `reset`). Only narrows
    /// [`Gateway::allowed_kinds`]: a gateway never gets a job it was not allowed.
    pub capabilities: Vec<String>,
    /// Job kinds the operator allowed it at registration (unlock only unless reset was granted):
    /// the portal hands it no other job, whatever its poll declares.
    pub allowed_kinds: Vec<String>,
    pub revoked_at: Option<OffsetDateTime>,
}

impl Gateway {
    /// Polled within `window` of `now` and not revoked.
    pub fn is_connected(&self, now: OffsetDateTime, window: std::time::Duration) -> bool {
        self.revoked_at.is_none() && self.last_seen_at.is_some_and(|t| now - t <= window)
    }

    /// Allowed to run jobs of `kind` AND declared it at its last poll: it would be handed such
    /// a job.
    pub fn serves(&self, kind: &str) -> bool {
        self.allowed_kinds.iter().any(|k| k == kind) && self.capabilities.iter().any(|k| k == kind)
    }
}

/// The job kinds a gateway can be allowed.
pub const JOB_KINDS: &[&str] = &["unlock", "reset"];

/// How long a finished or given-up job stays in the store before
/// [`crate::Store::purge_expired`] deletes it. The job row is only the queue: the audit trail
/// keeps the record of what was asked and what AD answered (`gateway.job.result`, `reset`,
/// `unlock`), so nothing is lost; 30 days leave room to look at a recent job's row when an
/// operator investigates, without the table growing forever.
pub const JOB_RETENTION: time::Duration = time::Duration::days(30);

/// `kinds` when each is a known job kind (duplicates dropped, in [`JOB_KINDS`] order).
pub(crate) fn checked_kinds(kinds: &[String]) -> crate::error::Result<Vec<String>> {
    if let Some(_unknown) = kinds.iter().find(|k| !JOB_KINDS.contains(&k.as_str())) {
        return Err(crate::error::StoreError::Invalid("unknown job kind"));
    }
    Ok(JOB_KINDS
        .iter()
        .filter(|k| kinds.iter().any(|x| x == *k))
        .map(|k| k.to_string())
        .collect())
}

/// What a job is about: the on-premises account (what the gateway gets) and what the portal
/// keeps for itself. Stored as one JSON object (the account's fields, `must_change`,
/// `after_change`), the layout earlier versions wrote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobTarget {
    /// Where the gateway finds the account.
    #[serde(flatten)]
    pub account: Target,
    /// Reset jobs: the user must change the password at next logon.
    #[serde(default)]
    pub must_change: bool,
    /// Reset jobs: what the portal does once the gateway reports success, when the page that
    /// queued the job is no longer waiting. Never sent to the gateway. A record that does not
    /// read back is `None` (the portal then uses its safe defaults), never an unreadable job:
    /// the password may already be changed, and the steps after it must still run.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_after_change"
    )]
    pub after_change: Option<AfterChange>,
}

fn lenient_after_change<'de, D: serde::Deserializer<'de>>(
    de: D,
) -> std::result::Result<Option<AfterChange>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(de)?;
    Ok(value.and_then(|v| match serde_json::from_value(v) {
        Ok(after) => Some(after),
        Err(e) => {
            tracing::error!(category = ?e.classify(), "a job's after-change record does not read back; defaults apply");
            None
        }
    }))
}

/// Channels that read back; one that does not is left out (logged), the others are told.
fn lenient_channels<'de, D: serde::Deserializer<'de>>(
    de: D,
) -> std::result::Result<Vec<Channel>, D::Error> {
    let values = Vec::<serde_json::Value>::deserialize(de)?;
    let channels: Vec<Channel> = values
        .into_iter()
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect();
    Ok(channels)
}

fn yes() -> bool {
    true
}

/// The steps after a gateway's password change, as the page that queued the job decided them.
/// Non-secret: the policy's sign-out setting, the language, the channels to tell.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AfterChange {
    /// Absent: sign out (the safe default).
    #[serde(default = "yes")]
    pub revoke_sessions: bool,
    #[serde(default)]
    pub lang: Option<String>,
    /// Known before the change.
    #[serde(default, deserialize_with = "lenient_channels")]
    pub notify: Vec<Channel>,
    /// The policy that allowed the reset: whose security contacts are told. Absent in jobs
    /// queued by an older portal (nobody to tell then).
    #[serde(default)]
    pub policy: Option<String>,
    /// How the security contacts' notice names the user (display name, else the account).
    #[serde(default)]
    pub user: Option<String>,
}

/// A channel to tell after a change, stored as `email:addr` or `sms:+number`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Channel {
    Email(EmailAddress),
    Sms(PhoneNumber),
}

impl Serialize for Channel {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> std::result::Result<S::Ok, S::Error> {
        let text = match self {
            Channel::Email(e) => format!("email:{}", e.as_str()),
            Channel::Sms(p) => format!("sms:{p}"),
        };
        ser.serialize_str(&text)
    }
}

impl<'de> Deserialize<'de> for Channel {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(de)?;
        let parsed = if let Some(e) = text.strip_prefix("email:") {
            e.parse().ok().map(Channel::Email)
        } else {
            text.strip_prefix("sms:")
                .and_then(|p| p.parse().ok())
                .map(Channel::Sms)
        };
        parsed.ok_or_else(|| serde::de::Error::custom("not a channel"))
    }
}

/// A job to queue.
#[derive(Debug)]
pub struct NewJob {
    pub kind: JobKind,
    /// The directory user (Entra object id) the job is about.
    pub subject: ObjectId,
    pub target: JobTarget,
    /// Reset jobs: the new password; sealed at rest, deleted when claimed.
    pub secret: Option<Secret<String>>,
    pub correlation_id: String,
    /// Not handed out after this instant.
    pub expires_at: OffsetDateTime,
}

/// Where a job is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobState {
    Queued,
    Claimed,
    Succeeded,
    Failed,
    /// Never claimed before its deadline, or claimed and never reported.
    Expired,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Claimed => "claimed",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Expired => "expired",
        }
    }
    pub fn parse(s: &str) -> Option<JobState> {
        Some(match s {
            "queued" => JobState::Queued,
            "claimed" => JobState::Claimed,
            "succeeded" => JobState::Succeeded,
            "failed" => JobState::Failed,
            "expired" => JobState::Expired,
            _ => return None,
        })
    }
    /// Succeeded or failed: the gateway reported.
    pub fn is_finished(self) -> bool {
        matches!(self, JobState::Succeeded | JobState::Failed)
    }
}

/// A job as stored (without its secret).
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    pub id: String,
    pub kind: JobKind,
    pub subject: ObjectId,
    pub target: JobTarget,
    pub correlation_id: String,
    /// The effective state: a queued job past its deadline reads as [`JobState::Expired`].
    pub state: JobState,
    pub gateway_id: Option<String>,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub claimed_at: Option<OffsetDateTime>,
    pub finished_at: Option<OffsetDateTime>,
    /// The gateway's report (JSON owned by the job protocol), once finished.
    pub result: Option<serde_json::Value>,
}

/// A job just handed to a gateway, with its secret (the only time it leaves the store).
#[derive(Debug)]
pub struct ClaimedJob {
    pub job: Job,
    pub secret: Option<Secret<String>>,
}

/// What [`crate::Store::finish_job`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinishOutcome {
    /// Recorded now.
    Recorded,
    /// The same result was already recorded (a retried report): nothing changed.
    AlreadyRecorded,
    /// Already finished with a different result: nothing changed.
    Conflict,
    /// No such job claimed by this gateway.
    NotFound,
}

/// Jobs of one kind in one state ([`crate::Store::job_counts`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JobCount {
    pub kind: JobKind,
    pub state: JobState,
    pub count: u64,
}

/// Reads one `(kind, state, count)` row, both backends.
pub(crate) fn job_count(kind: &str, state: &str, count: i64) -> crate::Result<JobCount> {
    let corrupt = |column| crate::StoreError::Corrupt {
        table: "gateway_jobs",
        column,
    };
    Ok(JobCount {
        kind: JobKind::parse(kind).ok_or(corrupt("kind"))?,
        state: JobState::parse(state).ok_or(corrupt("state"))?,
        count: u64::try_from(count).unwrap_or(0),
    })
}
