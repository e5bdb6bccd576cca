//! The notice outbox: notifications that security depends on (a password was changed, a pass
//! was issued, methods changed, a reset link was issued, security contacts told) are written
//! here before anyone is told the action succeeded, and delivered from here by whichever portal
//! instance claims them. A crash between the action and the send loses nothing: the row stays
//! until a delivery finished it (at least once; a send cut off by a crash is sent again).
//!
//! The payload (recipient and notice, the portal's JSON) is sealed with the store key and bound
//! to its row, like enrollment secrets: addresses are personal data.

use latchkey_types::ObjectId;
use time::OffsetDateTime;

/// What [`crate::Store::enqueue_notice`] stores.
#[derive(Clone, Debug)]
pub struct NewNotice {
    /// The directory user it concerns, for the delivery's audit record.
    pub subject: Option<ObjectId>,
    pub correlation_id: String,
    /// The notice kind (`password_changed`, ...), for operators reading the table.
    pub kind: String,
    /// The portal's encoding of recipient and notice. Never a code, password, pass or link.
    pub payload: serde_json::Value,
}

/// A notice claimed for delivery, with its payload opened.
#[derive(Clone, Debug)]
pub struct QueuedNotice {
    pub id: String,
    pub subject: Option<ObjectId>,
    pub correlation_id: String,
    pub kind: String,
    pub payload: serde_json::Value,
    /// Claims so far, this one included.
    pub attempts: u32,
    pub created_at: OffsetDateTime,
}

/// How a delivery of a claimed notice ended, for [`crate::Store::finish_notice`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoticeOutcome {
    /// Delivered, or failed for good (the delivery report is audited): the row goes.
    Done,
    /// Not delivered (stopped, queue full): due again at this time, for any instance.
    RetryAt(OffsetDateTime),
}

/// Table name, also the associated data of a sealed payload.
pub(crate) const TABLE: &str = "notice_outbox";
pub(crate) const WHAT: &str = "a queued notice";

/// The columns every backend reads back, in this order.
pub(crate) const COLUMNS: &str =
    "id, subject, correlation_id, kind, payload, attempts, created_at_ms";

/// One row as both backends read it, before its payload is opened.
pub(crate) struct NoticeRow {
    pub id: String,
    pub subject: Option<String>,
    pub correlation_id: String,
    pub kind: String,
    pub payload: Vec<u8>,
    pub attempts: i64,
    pub created_at_ms: i64,
}

impl NoticeRow {
    /// Opens the payload and checks every column: the one decoding both backends share.
    pub(crate) fn open(self, cipher: &crate::Cipher) -> crate::Result<QueuedNotice> {
        let corrupt = |column| crate::StoreError::Corrupt {
            table: TABLE,
            column,
        };
        let bound = binding(
            &self.id,
            self.subject.as_deref(),
            &self.kind,
            &self.correlation_id,
        );
        let plain = cipher.open(&self.payload, &crate::crypto::row_aad(TABLE, &bound), WHAT)?;
        let payload = serde_json::from_slice(plain.expose()).map_err(|_| corrupt("payload"))?;
        let subject = self
            .subject
            .map(|s| s.parse::<ObjectId>().map_err(|_| corrupt("subject")))
            .transpose()?;
        Ok(QueuedNotice {
            id: self.id,
            subject,
            correlation_id: self.correlation_id,
            kind: self.kind,
            payload,
            attempts: u32::try_from(self.attempts).map_err(|_| corrupt("attempts"))?,
            created_at: crate::sqlite::from_ms(self.created_at_ms, TABLE, "created_at_ms")?,
        })
    }
}

/// What a sealed payload is bound to: its row and the columns the audit record of its delivery
/// takes (so a row edited in the database fails to open rather than misattributing a notice).
fn binding(id: &str, subject: Option<&str>, kind: &str, correlation_id: &str) -> String {
    format!("{id}\0{}\0{kind}\0{correlation_id}", subject.unwrap_or(""))
}

/// A new row's id and sealed payload.
pub(crate) fn seal(cipher: &crate::Cipher, new: &NewNotice) -> crate::Result<(String, Vec<u8>)> {
    let id = latchkey_types::random::uuid()?.simple().to_string();
    let subject = new.subject.map(|s| s.to_string());
    let bound = binding(&id, subject.as_deref(), &new.kind, &new.correlation_id);
    let blob = cipher.seal(
        new.payload.to_string().as_bytes(),
        &crate::crypto::row_aad(TABLE, &bound),
        WHAT,
    )?;
    Ok((id, blob))
}

/// Opens claimed rows one by one: a row that cannot be read (edited, or sealed with another
/// key) is logged and its id returned for deletion, and never holds up the others.
pub(crate) fn open_claimed(
    cipher: &crate::Cipher,
    rows: Vec<NoticeRow>,
) -> (Vec<QueuedNotice>, Vec<String>) {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for row in rows {
        let id = row.id.clone();
        match row.open(cipher) {
            Ok(n) => good.push(n),
            Err(e) => {
                tracing::error!(error = %e, id = %id, "a queued notice cannot be read; dropped");
                bad.push(id);
            }
        }
    }
    (good, bad)
}
