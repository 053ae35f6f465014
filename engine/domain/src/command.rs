use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Fields;

/// A request of a person or a machine to change a record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    Create {
        title: String,
        #[serde(default)]
        description: String,
        #[serde(default)]
        fields: Fields,
        /// Fields that the channel sets, not the person (a catalog order's item and
        /// approvers). They are checked against their declarations but not against who
        /// may set them.
        #[serde(default, skip_serializing_if = "Fields::is_empty")]
        preset: Fields,
    },
    Transition {
        name: String,
        #[serde(default)]
        fields: Fields,
        #[serde(default)]
        comment: Option<String>,
    },
    Update {
        #[serde(default)]
        title: Option<String>,
        #[serde(default)]
        description: Option<String>,
        #[serde(default)]
        fields: Fields,
    },
    Comment {
        text: String,
    },
    /// A requester's reply through a requester channel (portal or email). Depending on the
    /// definition's reply policy it reopens the record, opens a follow-up record, or is
    /// kept as a comment.
    Reply {
        text: String,
    },
}

impl Command {
    /// Short name used in logs and journal entries.
    pub fn kind(&self) -> &'static str {
        match self {
            Command::Create { .. } => "create",
            Command::Transition { .. } => "transition",
            Command::Update { .. } => "update",
            Command::Comment { .. } => "comment",
            Command::Reply { .. } => "reply",
        }
    }
}

/// A change that a rule requests. Rules never write: the engine validates each effect
/// against the definition and applies the valid ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum Effect {
    /// Sets a declared field; `assignment_group` and `assignee` assign the record.
    SetField { field: String, value: Value },
    /// Suggests a plugin action that a technician can start with one click.
    Recommend { action: String, params: Value },
    /// Adds an internal note to the journal.
    Note { text: String },
    /// Blocks the transition a guard rule checks, with `message` shown to the user as the reason.
    Deny { message: String },
    /// Names an approver of the transition an approval rule runs for: `user:NAME`,
    /// `group:NAME` (any one member decides for the group) or `board:NAME` (each member
    /// decides).
    Approver { approver: String },
    /// Takes a transition of the record after the command that ran the rule is written.
    Transition { name: String },
    /// Links the record to another record after the command is written.
    Link { link_type: String, target: String },
    /// Opens a new record of `process` after the command is written, linked to this record
    /// with `link_type` (directed from the new record) when one is given.
    Open {
        process: String,
        title: String,
        #[serde(default)]
        description: String,
        #[serde(default)]
        fields: Fields,
        #[serde(default)]
        link_type: Option<String>,
    },
    /// Queues a run of plugin action `action` (`plugin/action`) on the record after the
    /// command is written, when the record's definition lists it under
    /// `automatic_actions`.
    RunAction { action: String, params: Value },
}

impl Effect {
    /// Checks whether the effect acts after the command is written (a transition, a link
    /// or a new record) rather than on the record being decided.
    pub fn is_follow_on(&self) -> bool {
        matches!(
            self,
            Effect::Transition { .. }
                | Effect::Link { .. }
                | Effect::Open { .. }
                | Effect::RunAction { .. }
        )
    }
}

/// An effect together with the rule that produced it and the rule's stated reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProposedEffect {
    pub rule: String,
    pub reason: String,
    #[serde(flatten)]
    pub effect: Effect,
}

/// A recommended action kept on the record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    pub action: String,
    pub params: Value,
    pub rule: String,
    pub reason: String,
}
