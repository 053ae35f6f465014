//! The seam between the state machine and the rule host. The workflow crate calls rules
//! through [`RuleRunner`]; the scripting crate implements it with Rhai.

use std::path::PathBuf;

use chrono::{DateTime, Utc};

use tend_domain::{Actor, ProposedEffect, Record};

/// The hook a rule runs for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    OnCreate,
    OnUpdate,
    OnTransition,
    /// A transition's guard, run before the transition is taken.
    Guard,
    /// An approval's rule, run when a transition that needs approval is taken, to name
    /// its approvers.
    Approvers,
    /// Run on a record when a record linked to it took a transition.
    OnLinked,
    /// Run when a timer fires, such as an SLA threshold that names the rule.
    OnTimer,
    /// A mailbox's rule, run on the record a new email is about to open; `email` holds
    /// the message.
    OnEmail,
    /// A CI class's rule, run after a person or an import created or changed a CI of the
    /// class. `record` contains the CI.
    OnCiChange,
    /// An alert source's rule, run on each alert before it opens a record. `alert` contains
    /// the alert.
    OnAlert,
}

impl Hook {
    pub fn as_str(self) -> &'static str {
        match self {
            Hook::OnCreate => "on_create",
            Hook::OnUpdate => "on_update",
            Hook::OnTransition => "on_transition",
            Hook::Guard => "guard",
            Hook::Approvers => "approvers",
            Hook::OnLinked => "on_linked",
            Hook::OnTimer => "on_timer",
            Hook::OnEmail => "on_email",
            Hook::OnCiChange => "on_ci_change",
            Hook::OnAlert => "on_alert",
        }
    }
}

/// The input of one rule run. `record` already carries the effects of the rules that ran
/// before it in the same pass.
#[derive(Debug, Clone, Copy)]
pub struct RuleInput<'a> {
    pub hook: Hook,
    pub record: &'a Record,
    /// The record as it was before the command, for updates and transitions.
    pub previous: Option<&'a Record>,
    pub actor: &'a Actor,
    /// Name of the transition being taken, for `on_transition`.
    pub transition: Option<&'a str>,
    /// The records linked to this one, for rules that look across links.
    pub links: &'a [LinkedRecord],
    /// For `on_linked`: the linked record that took a transition, and which one.
    pub linked: Option<&'a LinkedChange>,
    /// The time of the command or timer the rule runs for, so that rules can measure ages
    /// such as the time a record has waited in its state.
    pub now: DateTime<Utc>,
    /// For `on_email`: the message, as a JSON object (`from`, `from_name`, `to`, `cc`,
    /// `subject`, `message_id`, `mailbox`, `text`).
    pub email: Option<&'a serde_json::Value>,
    /// The record's CMDB context: its CIs, what a failure of them affects, the
    /// open records on them and the requester's CIs, as `record_cmdb::context` builds it.
    pub cmdb: Option<&'a serde_json::Value>,
    /// For `on_alert`: the alert, as a JSON object (`status`, `labels`, `annotations`,
    /// `fingerprint`, `starts_at`, `ci`, `source`).
    pub alert: Option<&'a serde_json::Value>,
}

/// A record at the other end of a link, as rules see it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LinkedRecord {
    pub link_type: String,
    /// True when the link goes from this record to the other one.
    pub outgoing: bool,
    pub number: String,
    pub process: String,
    pub state: String,
    pub open: bool,
}

/// A transition of a linked record, which `on_linked` rules react to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LinkedChange {
    /// The linked record; its fields sit beside `transition` and `from` in JSON, as rules
    /// see them.
    #[serde(flatten)]
    pub record: LinkedRecord,
    pub transition: String,
    pub from: String,
}

/// A script that failed to compile, located in its file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}:{column}: {message}", path.display())]
pub struct CompileError {
    pub path: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// The reason a rule is unusable when a definition set is checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleCheckError {
    /// No script file exists for the rule name; `expected` is where it was looked for.
    #[error("no script for rule `{rule}`: create {}", expected.display())]
    Missing { rule: String, expected: PathBuf },
    #[error(transparent)]
    Compile(#[from] CompileError),
}

/// A rule run that failed; the engine journals it and goes on with the command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rule `{rule}` failed: {message}")]
pub struct RuleFailure {
    pub rule: String,
    pub message: String,
}

/// Whether a rule reads or writes a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldAccess {
    Read,
    Write,
}

/// A field a rule names literally (`record.impact`, `set_field("priority", ...)`), with its
/// place in the script, so that loading can report fields the definition does not declare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldUse {
    pub field: String,
    pub access: FieldAccess,
    pub path: PathBuf,
    pub line: usize,
    pub column: usize,
}

/// Runs named rules. Implementations must be sandboxed: a rule reads its input and
/// returns effects, and can neither write nor reach files or the network.
pub trait RuleRunner: Send + Sync {
    /// Checks that the rule exists and compiles.
    fn check(&self, rule: &str) -> Result<(), RuleCheckError>;

    /// Fields the rule names literally. Runners that cannot tell return none.
    fn fields_used(&self, _rule: &str) -> Vec<FieldUse> {
        Vec::new()
    }

    /// Runs one rule and returns the effects it proposes, in the order it proposed them.
    fn run(&self, rule: &str, input: &RuleInput<'_>) -> Result<Vec<ProposedEffect>, RuleFailure>;
}

/// A runner with no rules, for definitions without hooks and for tests of the state machine.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoRules;

impl RuleRunner for NoRules {
    fn check(&self, rule: &str) -> Result<(), RuleCheckError> {
        Err(RuleCheckError::Missing {
            rule: rule.to_owned(),
            expected: PathBuf::from(format!("rules/{rule}.rhai")),
        })
    }

    fn run(&self, rule: &str, _input: &RuleInput<'_>) -> Result<Vec<ProposedEffect>, RuleFailure> {
        Err(RuleFailure {
            rule: rule.to_owned(),
            message: "no rule runner is configured".to_owned(),
        })
    }
}
