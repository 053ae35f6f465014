use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Fields;

/// One fact in a record's history. The journal is append-only; each event is written in
/// the same transaction as the change it describes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum JournalEvent {
    Created {
        title: String,
        description: String,
        state: String,
        fields: Fields,
    },
    FieldChanged {
        field: String,
        from: Value,
        to: Value,
        /// The rule that set the value, or none when a person did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rule: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    TextChanged {
        field: String,
        from: String,
        to: String,
    },
    Transitioned {
        transition: String,
        from: String,
        to: String,
    },
    Commented {
        text: String,
    },
    Note {
        text: String,
        rule: String,
        reason: String,
    },
    Recommended {
        action: String,
        params: Value,
        rule: String,
        reason: String,
    },
    /// A rule failed, exceeded a limit or proposed an invalid effect; the command went on.
    RuleFailed {
        rule: String,
        error: String,
    },
    /// A typed link between this record and another was added. Both records get this entry:
    /// `outgoing` is true on the link's source and false on its target.
    Linked {
        /// Name of the link type, e.g. `caused_by`.
        link_type: String,
        /// Number of the record at the other end of the link.
        other: String,
        outgoing: bool,
    },
    /// Taking `transition` needs approval: a round of requests went to `approvers`, of
    /// whom `required` must approve.
    ApprovalRequested {
        round: i64,
        transition: String,
        approvers: Vec<String>,
        required: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        due_at: Option<DateTime<Utc>>,
    },
    /// One approver decided (`approve` or `reject`).
    ApprovalDecided {
        round: i64,
        approver: String,
        decision: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        reason: String,
    },
    /// The round reached its outcome: `approved`, `rejected` or `cancelled`.
    ApprovalCompleted {
        round: i64,
        transition: String,
        outcome: String,
    },
    /// The round passed its deadline, and its open requests went to `approvers`.
    ApprovalEscalated {
        round: i64,
        approvers: Vec<String>,
    },
    /// A follow-on effect of a rule (a transition, a link or a new record) could not be
    /// carried out.
    FollowOnFailed {
        rule: String,
        effect: String,
        error: String,
    },
    /// The record was moved on purpose from one definition version to another, and is
    /// decided against the new one from then on.
    Migrated {
        from_version: String,
        to_version: String,
    },
    /// A clock of an SLA policy started, paused, resumed or stopped because the record's
    /// state or fields changed. `due_at` is the due time from then on, if it is known.
    SlaClock {
        policy: String,
        target: String,
        change: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        due_at: Option<DateTime<Utc>>,
    },
    /// A clock used `percent` of its target of `target_minutes`, at `due_at`, and the
    /// threshold's effects ran. The recipients in `notified` were notified.
    SlaThreshold {
        policy: String,
        target: String,
        percent: u32,
        target_minutes: i64,
        due_at: DateTime<Utc>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        notified: Vec<String>,
    },
    /// A timer fired after its due time, because no node was running then.
    FiredLate {
        timer: String,
        due_at: DateTime<Utc>,
    },
    /// A run of a plugin action was queued; the entry's actor asked for it.
    ActionQueued {
        run: i64,
        plugin: String,
        action: String,
        /// The validated parameters, defaults filled in.
        params: Value,
        /// The reason for the run, such as the recommendation's reason.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// Why the run waits before a node may start it: for an approval, or for the
        /// window of the authorised change it belongs to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        waits_for: Option<String>,
    },
    /// Someone approved or rejected a run of an action that needs an approval; the
    /// entry's actor decided.
    ActionDecided {
        run: i64,
        plugin: String,
        action: String,
        approved: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// A run of a plugin action ended.
    ActionFinished {
        run: i64,
        plugin: String,
        action: String,
        /// `succeeded`, `failed`, `timed_out` or `interrupted`.
        status: String,
        duration_ms: i64,
        summary: String,
        /// The start of the tool's output, capped for the journal.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        output: String,
    },
    /// An inbound email reached this record. `effect` says what it did: `created` (it
    /// opened the record), `commented` or `reopened` (a reply), `follow_up` (a reply to a
    /// closed record that opened this one), `linked` (a stranger's message that named
    /// another record in its subject opened this one), `noted` (a machine-made message,
    /// such as a bounce, kept as a note and never answered) or `rejected` (a stranger's
    /// message naming this record was refused).
    EmailReceived {
        /// Id of the stored message, for `GET /api/v1/mail/messages/{id}`.
        mail: i64,
        /// The `Message-ID`, or the id made from the content hash when it has none.
        message_id: String,
        mailbox: String,
        /// The sender's address, empty when the message names none.
        from: String,
        subject: String,
        effect: String,
        /// The other record the message concerns: the original of a follow-up, or the
        /// record a stranger's subject tag named.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        related: Option<String>,
        /// The header that marked the message as machine-made, as `Header: value`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        robot: Option<String>,
        /// File names of the attachments stored with the record.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        attachments: Vec<String>,
        /// Attachments not stored, each as `name: reason`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        skipped: Vec<String>,
    },
    /// A notification was rendered for one recipient and kept in the outbox: `queued` to
    /// be sent, or `suppressed` with the reason it is not sent.
    EmailQueued {
        /// Id of the outbox row, for `GET /api/v1/mail/outbox`.
        outbox: i64,
        /// The Message-ID the mail carries, without angle brackets.
        message_id: String,
        /// The notification event, such as `on_create` or `on_resolve`.
        notify: String,
        template: String,
        to: String,
        subject: String,
        status: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A queued notification was accepted by the SMTP server.
    EmailSent {
        outbox: i64,
        message_id: String,
        to: String,
        attempts: i64,
    },
}

impl JournalEvent {
    pub fn kind(&self) -> &'static str {
        match self {
            JournalEvent::Created { .. } => "created",
            JournalEvent::FieldChanged { .. } => "field_changed",
            JournalEvent::TextChanged { .. } => "text_changed",
            JournalEvent::Transitioned { .. } => "transitioned",
            JournalEvent::Commented { .. } => "commented",
            JournalEvent::Note { .. } => "note",
            JournalEvent::Recommended { .. } => "recommended",
            JournalEvent::RuleFailed { .. } => "rule_failed",
            JournalEvent::Linked { .. } => "linked",
            JournalEvent::ApprovalRequested { .. } => "approval_requested",
            JournalEvent::ApprovalDecided { .. } => "approval_decided",
            JournalEvent::ApprovalCompleted { .. } => "approval_completed",
            JournalEvent::ApprovalEscalated { .. } => "approval_escalated",
            JournalEvent::FollowOnFailed { .. } => "follow_on_failed",
            JournalEvent::Migrated { .. } => "migrated",
            JournalEvent::SlaClock { .. } => "sla_clock",
            JournalEvent::SlaThreshold { .. } => "sla_threshold",
            JournalEvent::FiredLate { .. } => "fired_late",
            JournalEvent::ActionQueued { .. } => "action_queued",
            JournalEvent::ActionFinished { .. } => "action_finished",
            JournalEvent::ActionDecided { .. } => "action_decided",
            JournalEvent::EmailReceived { .. } => "email_received",
            JournalEvent::EmailQueued { .. } => "email_queued",
            JournalEvent::EmailSent { .. } => "email_sent",
        }
    }
}

/// A stored journal event with its actor, time and place in the record's hash chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// Position in the record's journal, from 1.
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    #[serde(flatten)]
    pub event: JournalEvent,
    /// Hex SHA-256 of the previous entry of the same record (empty for the first).
    pub prev_hash: String,
    /// Hex SHA-256 over `prev_hash` and this entry's canonical content.
    pub hash: String,
}
