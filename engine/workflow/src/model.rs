//! The definition of a process as written in `workflows/NAME.yaml`.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tend_domain::Role;

/// One process definition. Unknown keys are rejected so that a typo never passes silently.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    /// Machine name, e.g. `incident`; also the name in API paths.
    pub process: String,
    /// Display name, e.g. `Incident`.
    pub title: String,
    /// Letters before the record number, e.g. `INC` for `INC0000042`.
    pub number_prefix: String,
    /// Digits of the zero-padded counter in record numbers.
    #[serde(default = "default_number_digits")]
    pub number_digits: u8,
    #[serde(default)]
    pub description: String,
    /// Roles that may create, update and comment on records of this process.
    #[serde(default)]
    pub permissions: Permissions,
    /// Fields in the order the file lists them, which is the order forms show them in.
    #[serde(default)]
    pub fields: IndexMap<String, FieldDef>,
    /// States in the order the file lists them.
    pub states: IndexMap<String, StateDef>,
    #[serde(default)]
    pub transitions: Vec<TransitionDef>,
    #[serde(default)]
    pub rules: RuleHooks,
    /// Policy for a requester's reply (a portal comment or an email) to a record.
    #[serde(default)]
    pub replies: Option<ReplyPolicy>,
    /// Patterns that open a record of another process when several records of this one
    /// share field values within a time window (proactive problem management).
    #[serde(default)]
    pub trends: Vec<TrendDef>,
    /// Planned windows of records and the transitions that check them for conflicts.
    #[serde(default)]
    pub schedule: Option<crate::schedule::ScheduleDef>,
    /// Plugin actions (`plugin/action`) that rules may run on records of this process
    /// without a person, with `run_action`. Any other action a rule asks for is refused
    /// and journaled.
    #[serde(default)]
    pub automatic_actions: Vec<String>,
    /// Email notifications by event (`on_create`, `on_comment`, `on_assign`,
    /// `on_<transition>`), each a list of templates and the roles they go to.
    #[serde(default)]
    pub notify: IndexMap<String, Vec<crate::notify::NotifyRule>>,
}

/// A trend: `threshold` records created within `within` that share the values of the
/// `match` fields open one record of process `open`, and each of them is linked to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrendDef {
    pub name: String,
    #[serde(default)]
    pub label: Option<String>,
    /// Fields whose values the records share, e.g. `[ci]` or `[category, subcategory]`.
    #[serde(rename = "match")]
    pub match_fields: Vec<String>,
    pub within: Span,
    /// Number of records, the new one included, that makes a trend; at least 2.
    pub threshold: u32,
    /// Process of the record a trend opens, e.g. `problem`.
    pub open: String,
    /// Link type from each matching record to the opened one, e.g. `incident_of`.
    pub link_type: String,
}

/// Reply policy: reopen a recently resolved record, or open a follow-up record when the
/// original is closed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplyPolicy {
    /// Transition taken when the reply reaches a record in one of the transition's `from`
    /// states, within `reopen_within` of entering that state.
    #[serde(default)]
    pub reopen: Option<String>,
    /// How long after entering the state a reply still reopens, e.g. `7d`, `36h`, `90m`.
    #[serde(default)]
    pub reopen_within: Option<Span>,
    /// States in which a reply opens a new record that refers to the original instead.
    /// A reply to a reopenable record after `reopen_within` does the same.
    #[serde(default)]
    pub follow_up_in: Vec<String>,
    /// Field of the new record that stores the original's number.
    #[serde(default)]
    pub follow_up_field: Option<String>,
}

/// A length of time written as a number and a unit: `m` minutes, `h` hours, `d` days, `w`
/// weeks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub minutes: i64,
}

impl Span {
    pub fn parse(text: &str) -> Result<Span, String> {
        let text = text.trim();
        let invalid = || {
            format!(
                "invalid length of time `{text}`: write a number and a unit m, h, d or w, e.g. 7d"
            )
        };
        let unit = text.chars().last().ok_or_else(invalid)?;
        let count: i64 = text[..text.len() - unit.len_utf8()]
            .trim()
            .parse()
            .map_err(|_| invalid())?;
        let per_unit = match unit {
            'm' => 1,
            'h' => 60,
            'd' => 24 * 60,
            'w' => 7 * 24 * 60,
            _ => return Err(invalid()),
        };
        if count <= 0 || count > 10_000 {
            return Err(format!("{}: use a count from 1 to 10000", invalid()));
        }
        Ok(Span {
            minutes: count * per_unit,
        })
    }

    pub fn duration(self) -> chrono::TimeDelta {
        chrono::TimeDelta::minutes(self.minutes)
    }

    /// Words the length in its largest whole unit, e.g. `24 hours` or `90 minutes`.
    pub fn describe(self) -> String {
        let (count, unit) = match self.minutes {
            m if m % (7 * 24 * 60) == 0 => (m / (7 * 24 * 60), "week"),
            m if m % (24 * 60) == 0 => (m / (24 * 60), "day"),
            m if m % 60 == 0 => (m / 60, "hour"),
            m => (m, "minute"),
        };
        if count == 1 {
            format!("1 {unit}")
        } else {
            format!("{count} {unit}s")
        }
    }
}

impl Serialize for Span {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format!("{}m", self.minutes))
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Span::parse(&text).map_err(serde::de::Error::custom)
    }
}

fn default_number_digits() -> u8 {
    7
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Permissions {
    #[serde(default = "default_create_roles")]
    pub create: Vec<Role>,
    #[serde(default = "default_staff_roles")]
    pub update: Vec<Role>,
    #[serde(default = "default_create_roles")]
    pub comment: Vec<Role>,
}

fn default_create_roles() -> Vec<Role> {
    vec![Role::Requester, Role::Technician]
}

fn default_staff_roles() -> Vec<Role> {
    vec![Role::Technician]
}

impl Default for Permissions {
    fn default() -> Self {
        Permissions {
            create: default_create_roles(),
            update: default_staff_roles(),
            comment: default_create_roles(),
        }
    }
}

/// The type of a field and the values it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// One line of text.
    String,
    /// Multi-line text.
    Text,
    /// One of `values`.
    Enum,
    Integer,
    Number,
    Boolean,
    /// Calendar date, `YYYY-MM-DD`.
    Date,
    /// RFC 3339 instant.
    Datetime,
    /// User name of a Tend user.
    User,
    /// Name of an assignment group.
    Group,
    /// Name of a configuration item.
    CiRef,
}

impl FieldType {
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Text => "text",
            FieldType::Enum => "enum",
            FieldType::Integer => "integer",
            FieldType::Number => "number",
            FieldType::Boolean => "boolean",
            FieldType::Date => "date",
            FieldType::Datetime => "datetime",
            FieldType::User => "user",
            FieldType::Group => "group",
            FieldType::CiRef => "ci_ref",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldDef {
    #[serde(rename = "type")]
    pub kind: FieldType,
    #[serde(default)]
    pub label: Option<String>,
    /// Allowed values of an enum field, in display order.
    #[serde(default)]
    pub values: Vec<String>,
    #[serde(default)]
    pub default: Option<Value>,
    /// Must have a value when the record is created.
    #[serde(default)]
    pub required: bool,
    /// States in which the field must have a value; a transition into one of them is
    /// rejected while the field is empty.
    #[serde(default)]
    pub required_in: Vec<String>,
    /// Set only by rules and the engine, never by a person's command.
    #[serde(default)]
    pub read_only: bool,
    /// States in which a person's command may not change the field.
    #[serde(default)]
    pub read_only_in: Vec<String>,
    /// Longest accepted text, in characters.
    #[serde(default)]
    pub max_length: Option<usize>,
    /// Roles that may set the field in their own commands; empty means every role that may
    /// give the command. Rules are not bound by it.
    #[serde(default)]
    pub set_by: Vec<Role>,
}

impl FieldDef {
    /// Checks whether `actor` may set this field in their own commands.
    pub fn settable_by(&self, actor: &tend_domain::Actor) -> bool {
        !self.read_only && (self.set_by.is_empty() || actor.may(&self.set_by))
    }

    pub fn label_or<'a>(&'a self, name: &'a str) -> &'a str {
        self.label.as_deref().unwrap_or(name)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateDef {
    #[serde(default)]
    pub label: Option<String>,
    /// The state new records start in; exactly one state has it.
    #[serde(default)]
    pub initial: bool,
    /// A record in a final state takes no further transitions.
    #[serde(default, rename = "final")]
    pub is_final: bool,
    /// Whether the record counts as open (shown in work queues) in this state.
    #[serde(default)]
    pub open: Option<bool>,
    /// Fields that must have a value for a record to enter or stay in this state.
    #[serde(default)]
    pub requires: Vec<String>,
    /// Treatment of time spent in this state by SLA clocks.
    #[serde(default)]
    pub sla: Option<SlaMode>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlaMode {
    Running,
    Paused,
    Stopped,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransitionDef {
    pub name: String,
    #[serde(default)]
    pub label: Option<String>,
    /// States the transition may start from.
    #[serde(deserialize_with = "one_or_many")]
    pub from: Vec<String>,
    pub to: String,
    /// Roles that may take the transition.
    pub roles: Vec<Role>,
    /// Fields that must have a value once the transition's own field values are applied.
    #[serde(default)]
    pub requires: Vec<String>,
    /// Whether the command must carry a comment (e.g. the reason for a reopen).
    #[serde(default)]
    pub comment_required: bool,
    /// Rule that may block the transition by calling `deny(message)`; the message is
    /// returned to the user.
    #[serde(default)]
    pub guard: Option<String>,
    /// Time after which the system takes the transition by itself, counted from when the
    /// record entered one of the `from` states, e.g. `5d`.
    #[serde(default)]
    pub after: Option<Span>,
    /// Calendar of `workflows/calendars/` in which `after` counts working time, e.g.
    /// `business-hours`; without one `after` counts calendar time.
    #[serde(default)]
    pub calendar: Option<String>,
    /// Approval needed before the transition completes. Taking the transition then opens
    /// an approval round, and the record stays where it is until the round is decided.
    #[serde(default)]
    pub approval: Option<ApprovalDef>,
}

/// The approval of a transition: its approvers, how many must agree, and the outcome of a
/// rejection or a missed deadline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalDef {
    /// Approvers named in the definition: `user:NAME`, `group:NAME` (any one member decides
    /// for the group) or `board:NAME` (each member of the group decides).
    #[serde(default)]
    pub approvers: Vec<String>,
    /// Rule that adds approvers by calling `approver(...)`, e.g. by risk. When the
    /// definition names none and the rule adds none, no approval is needed.
    #[serde(default)]
    pub rule: Option<String>,
    /// How many approvals complete the round.
    #[serde(default)]
    pub policy: ApprovalPolicy,
    /// Approvals needed with `policy: quorum`.
    #[serde(default)]
    pub quorum: Option<u32>,
    /// Share of approvers, in percent, needed with `policy: share`.
    #[serde(default)]
    pub share: Option<u32>,
    /// Time the approvers have, counted from the request.
    #[serde(default)]
    pub deadline: Option<Span>,
    /// Action taken when the deadline passes with the round still open.
    #[serde(default)]
    pub on_deadline: DeadlineAction,
    /// Approvers asked instead when `on_deadline` is `escalate`; the first of them to
    /// decide decides the round.
    #[serde(default)]
    pub escalate_to: Vec<String>,
    /// Transition the system takes when the round is rejected, e.g. back to planning.
    /// Without one the record stays where it is.
    #[serde(default)]
    pub on_reject: Option<String>,
    /// Whether the person who asked, or the record's requester, may approve their own
    /// request. Off by default: they are left out of the approvers.
    #[serde(default)]
    pub allow_self_approval: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalPolicy {
    /// One approval is enough.
    Any,
    /// Every approver must approve; one rejection rejects.
    #[default]
    All,
    /// More than half of the approvers.
    Majority,
    /// `quorum` approvals.
    Quorum,
    /// `share` percent of the approvers, rounded up.
    Share,
}

impl ApprovalPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalPolicy::Any => "any",
            ApprovalPolicy::All => "all",
            ApprovalPolicy::Majority => "majority",
            ApprovalPolicy::Quorum => "quorum",
            ApprovalPolicy::Share => "share",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadlineAction {
    /// Ask the `escalate_to` approvers instead.
    #[default]
    Escalate,
    /// Reject the round.
    Reject,
    /// Approve the round (for low-risk requests that must not wait).
    Approve,
}

impl DeadlineAction {
    pub fn as_str(self) -> &'static str {
        match self {
            DeadlineAction::Escalate => "escalate",
            DeadlineAction::Reject => "reject",
            DeadlineAction::Approve => "approve",
        }
    }
}

impl ApprovalDef {
    /// Number of approvals needed out of `total` approvers. With `quorum` above `total` the
    /// round can never be approved; requests check for that before they are opened.
    pub fn required(&self, total: usize) -> usize {
        let total_u64 = total as u64;
        let needed = match self.policy {
            ApprovalPolicy::Any => 1,
            ApprovalPolicy::All => total_u64,
            ApprovalPolicy::Majority => total_u64 / 2 + 1,
            ApprovalPolicy::Quorum => u64::from(self.quorum.unwrap_or(1)),
            ApprovalPolicy::Share => {
                (total_u64 * u64::from(self.share.unwrap_or(100))).div_ceil(100)
            }
        };
        usize::try_from(needed.max(1)).unwrap_or(usize::MAX)
    }
}

/// A file of `workflows/groups/*.yaml`: groups of users, used as assignment groups and as
/// approvers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupFile {
    pub groups: IndexMap<String, GroupDef>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupDef {
    #[serde(default)]
    pub label: Option<String>,
    /// User names of the members.
    #[serde(default)]
    pub members: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleHooks {
    /// Rules run, in order, when a record is created.
    #[serde(default)]
    pub on_create: Vec<String>,
    /// Rules run, in order, after fields change.
    #[serde(default)]
    pub on_update: Vec<String>,
    /// Rules run, in order, after any transition.
    #[serde(default)]
    pub on_transition: Vec<String>,
    /// Rules run, in order, when a record linked to this one takes a transition.
    #[serde(default)]
    pub on_linked: Vec<String>,
}

impl RuleHooks {
    /// Every rule reference as (hook name, position in the hook, rule name).
    pub fn all(&self) -> Vec<(&'static str, usize, &String)> {
        let mut all = Vec::new();
        for (hook, rules) in [
            ("on_create", &self.on_create),
            ("on_update", &self.on_update),
            ("on_transition", &self.on_transition),
            ("on_linked", &self.on_linked),
        ] {
            all.extend(rules.iter().enumerate().map(|(i, rule)| (hook, i, rule)));
        }
        all
    }
}

/// Accepts `from: new` as well as `from: [new, active]`.
pub(crate) fn one_or_many<'de, D>(deserializer: D) -> Result<Vec<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(state) => Ok(vec![state]),
        OneOrMany::Many(states) => Ok(states),
    }
}

impl Definition {
    pub fn initial_state(&self) -> Option<&str> {
        self.states
            .iter()
            .find(|(_, state)| state.initial)
            .map(|(name, _)| name.as_str())
    }

    pub fn transition(&self, name: &str) -> Option<&TransitionDef> {
        self.transitions.iter().find(|t| t.name == name)
    }

    pub fn state_label<'a>(&'a self, state: &'a str) -> &'a str {
        self.states
            .get(state)
            .and_then(|s| s.label.as_deref())
            .unwrap_or(state)
    }

    /// Checks whether records in `state` are open work (not final, and not marked closed).
    pub fn is_open_state(&self, state: &str) -> bool {
        self.states
            .get(state)
            .map(|s| s.open.unwrap_or(!s.is_final))
            .unwrap_or(false)
    }
}
