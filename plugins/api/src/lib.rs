//! The contract between Tend and its plugins. A plugin performs actions outside Tend
//! (restore a file, run a playbook, call a webhook). It declares each action with typed
//! parameters, a timeout, the roles that may run it, and whether it needs an approval or
//! may be run again after an interruption. Tend queues a run of an action as a job,
//! validates its parameters against the declaration, and hands the plugin an
//! [`ActionRequest`] and a cancellation token. The plugin returns an [`ActionOutcome`],
//! which lands in the record's journal.
//!
//! Built-in plugins are Rust crates that implement [`Plugin`]. External plugins are
//! executables described by a YAML manifest; they read one JSON [`ActionRequest`] on stdin
//! and write one JSON [`ActionOutcome`] on stdout (see docs/plugins.md).

use std::collections::BTreeMap;
use std::sync::Arc;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
pub use tokio_util::sync::CancellationToken;

pub mod params;
pub mod process;
pub mod yaml;

pub use params::{ParamError, ParamErrors, check_actions, check_spec, validate_params};
pub use process::{CapturedOutput, ProgramCall, ProgramEnd, ProgramResult, run_program};

/// Version of the request and outcome format that external plugins read and write.
pub const PROTOCOL_VERSION: u32 = 1;

/// An action as a plugin declares it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionSpec {
    /// Name, unique within the plugin, such as `restore_file`.
    pub name: String,
    /// Short label for buttons, such as "Restore file".
    pub label: String,
    #[serde(default)]
    pub description: String,
    /// Parameters by name, in the order forms show them.
    #[serde(default)]
    pub params: IndexMap<String, ParamSpec>,
    /// Seconds a run may take before it is cancelled and marked timed out.
    pub timeout_seconds: u64,
    /// Roles that may run the action, such as `technician`; empty means admins only.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Whether a run needs an approval before it starts.
    #[serde(default)]
    pub needs_approval: bool,
    /// Whether a run interrupted by a stopped node may run again from the start. A run of
    /// an action that is not idempotent is marked interrupted instead.
    #[serde(default)]
    pub idempotent: bool,
}

/// A declared parameter of an action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamSpec {
    #[serde(rename = "type")]
    pub kind: ParamType,
    #[serde(default)]
    pub label: String,
    #[serde(default)]
    pub description: String,
    /// Whether a run must give the parameter; a parameter with a default is never missing.
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub default: Option<Value>,
    /// Allowed values of an `enum` parameter.
    #[serde(default)]
    pub values: Vec<String>,
    /// Maximum length, in characters, of a `string` or `text` parameter or of each element
    /// of a `list`.
    #[serde(default)]
    pub max_length: Option<usize>,
}

/// Type of a parameter. Values arrive as JSON and are checked against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamType {
    /// One line of text.
    String,
    /// Text of several lines.
    Text,
    Integer,
    Number,
    Boolean,
    /// One of `values`.
    Enum,
    /// A list of strings.
    List,
}

/// The record an action runs for, as the plugin receives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordContext {
    pub number: String,
    pub process: String,
    pub title: String,
    pub state: String,
    /// The record's fields as a JSON object.
    pub fields: Value,
    /// The configuration items the record names, each as a JSON object with at least
    /// `name`.
    #[serde(default)]
    pub cis: Vec<Value>,
}

/// One run of an action, as the plugin receives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionRequest {
    pub protocol: u32,
    /// Id of the run in Tend, for the plugin's own logs.
    pub run_id: i64,
    pub plugin: String,
    pub action: String,
    /// Validated parameters, defaults filled in.
    pub params: Map<String, Value>,
    /// The record the run belongs to; `None` for runs of a schedule.
    pub record: Option<RecordContext>,
    /// Name of the user, rule or schedule that asked for the run.
    pub actor: String,
}

/// The end state of a run, as the plugin reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeStatus {
    Succeeded,
    Failed,
}

/// The result of a run, as the plugin returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionOutcome {
    pub status: OutcomeStatus,
    /// One line for the journal, such as "Restored /srv/share/report.xlsx".
    pub summary: String,
    /// Text the tool printed, kept in the journal up to a size cap.
    #[serde(default)]
    pub output: String,
    /// Structured results, such as a connection link, shown on the record.
    #[serde(default)]
    pub data: Value,
    /// Messages for Tend to queue in its outbox in the same write as the end of the run.
    /// Only built-in plugins can set this: it is never read from an external plugin's
    /// JSON, so an external executable cannot send mail in Tend's name.
    #[serde(skip)]
    pub mail: Vec<OutgoingMail>,
}

/// A rendered message that a built-in plugin hands to Tend's outbound mail path. Tend
/// resolves the recipients, gives each copy a Message-ID under the mailbox's domain,
/// threads it with the record's earlier mail, applies the suppression rules of
/// notifications and sends it with retries, as it does notifications.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMail {
    /// Name of the message in the plugin's configuration, stored as the outbox row's
    /// template.
    pub name: String,
    pub recipients: Vec<MailRecipient>,
    /// Subject without the record tag; Tend adds `[NUMBER]` when it is missing.
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

/// A recipient of an [`OutgoingMail`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailRecipient {
    /// The user in the record's `requester` field.
    Requester,
    /// The user in the record's `assignee` field.
    Assignee,
    /// The users and addresses in the record's `watchers` field.
    Watchers,
    /// An address the plugin already checked.
    Address(String),
}

impl ActionOutcome {
    pub fn succeeded(summary: impl Into<String>, output: impl Into<String>) -> Self {
        ActionOutcome {
            status: OutcomeStatus::Succeeded,
            summary: summary.into(),
            output: output.into(),
            data: Value::Null,
            mail: Vec::new(),
        }
    }

    pub fn failed(summary: impl Into<String>, output: impl Into<String>) -> Self {
        ActionOutcome {
            status: OutcomeStatus::Failed,
            summary: summary.into(),
            output: output.into(),
            data: Value::Null,
            mail: Vec::new(),
        }
    }
}

/// A run that could not be carried out at all, as opposed to an action that ran and
/// failed (which is an [`ActionOutcome`] with [`OutcomeStatus::Failed`]).
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("plugin `{plugin}` has no action `{action}`")]
    UnknownAction { plugin: String, action: String },
    #[error("the run was cancelled")]
    Cancelled,
    #[error("{0}")]
    Failed(String),
}

/// A plugin: a named set of actions and the code that runs them.
#[async_trait::async_trait]
pub trait Plugin: Send + Sync {
    /// Name, unique among plugins, such as `recovery`.
    fn name(&self) -> &str;

    fn description(&self) -> &str;

    /// The actions the plugin offers.
    fn actions(&self) -> &[ActionSpec];

    /// Runs one action. Parameters are already validated against the action's spec.
    /// The plugin stops promptly when `cancel` fires (timeouts and shutdown use it).
    async fn run(
        &self,
        request: ActionRequest,
        cancel: CancellationToken,
    ) -> Result<ActionOutcome, PluginError>;
}

/// The plugins a server offers, by name.
#[derive(Clone, Default)]
pub struct PluginRegistry {
    plugins: BTreeMap<String, Arc<dyn Plugin>>,
}

impl PluginRegistry {
    pub fn new() -> Self {
        PluginRegistry::default()
    }

    /// Adds a plugin; a plugin of the same name is replaced and returned.
    pub fn add(&mut self, plugin: Arc<dyn Plugin>) -> Option<Arc<dyn Plugin>> {
        self.plugins.insert(plugin.name().to_owned(), plugin)
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Plugin>> {
        self.plugins.get(name)
    }

    /// Finds a plugin and one of its actions.
    pub fn action(&self, plugin: &str, action: &str) -> Option<(&Arc<dyn Plugin>, &ActionSpec)> {
        let found = self.plugins.get(plugin)?;
        let spec = found.actions().iter().find(|spec| spec.name == action)?;
        Some((found, spec))
    }

    /// Lists the plugins, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Plugin>> {
        self.plugins.values()
    }

    pub fn is_empty(&self) -> bool {
        self.plugins.is_empty()
    }
}

/// A plugin's configuration file that could not be loaded, with every problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: std::path::PathBuf,
    /// One line per problem, each starting with the file (and line and column when known).
    pub problems: Vec<String>,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.problems.join("\n"))
    }
}

impl std::error::Error for ConfigError {}

impl std::fmt::Debug for PluginRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.plugins.keys()).finish()
    }
}
