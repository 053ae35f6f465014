//! Service level policies (`workflows/sla/*.yaml`): which records a policy covers, its
//! targets per priority, the calendar they count in, the states that pause and stop its
//! clocks, and the thresholds at which it notifies, escalates or runs a rule. Service
//! level agreements, operational level agreements on assignment groups and underpinning
//! contracts on suppliers are all policies; they differ in what they cover.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tend_domain::Fields;

use crate::model::{Definition, SlaMode, Span};

/// A file of `workflows/sla/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaFile {
    pub policies: IndexMap<String, SlaPolicy>,
}

/// Kind of agreement a policy measures; reports group by it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgreementKind {
    /// Service level agreement with the customer.
    #[default]
    Sla,
    /// Operational level agreement with an internal group.
    Ola,
    /// Underpinning contract with a supplier.
    UnderpinningContract,
}

impl AgreementKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AgreementKind::Sla => "sla",
            AgreementKind::Ola => "ola",
            AgreementKind::UnderpinningContract => "underpinning_contract",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaPolicy {
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub kind: AgreementKind,
    /// Process whose records the policy covers.
    pub process: String,
    /// Field values a record must have for the policy to cover it, each a value or a list
    /// of values. A record that stops matching drops the policy's clocks; one that starts
    /// matching gets clocks computed over its whole history.
    #[serde(default)]
    pub when: IndexMap<String, OneOrMany>,
    /// Field values while which the clocks run; outside them they pause. An OLA names the
    /// assignment group here, an underpinning contract the supplier.
    #[serde(default)]
    pub during: IndexMap<String, OneOrMany>,
    /// Calendar of `workflows/calendars/` in which targets count working time.
    pub calendar: String,
    /// States in which the clocks run; in the others they pause. Without it the clocks
    /// run in every state that neither pauses nor stops them. An underpinning contract
    /// runs only while the record waits for the supplier.
    #[serde(default)]
    pub run_in: Option<Vec<String>>,
    /// States that pause the clocks; by default the states marked `sla: paused`.
    #[serde(default)]
    pub pause_in: Option<Vec<String>>,
    /// States that stop the clocks; by default the states marked `sla: stopped` and the
    /// final states.
    #[serde(default)]
    pub stop_in: Option<Vec<String>>,
    /// Targets by name, such as `response` and `resolution`.
    pub targets: IndexMap<String, TargetDef>,
    #[serde(default)]
    pub thresholds: Vec<ThresholdDef>,
}

/// A value or a list of values a field may have.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    Many(Vec<Value>),
    One(Value),
}

impl OneOrMany {
    pub fn values(&self) -> &[Value] {
        match self {
            OneOrMany::Many(values) => values,
            OneOrMany::One(value) => std::slice::from_ref(value),
        }
    }

    pub fn matches(&self, value: Option<&Value>) -> bool {
        let value = value.unwrap_or(&Value::Null);
        self.values().iter().any(|wanted| wanted == value)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetDef {
    #[serde(default)]
    pub label: Option<String>,
    /// Field whose value picks the target duration; `priority` by default.
    #[serde(default = "default_by")]
    pub by: String,
    /// Target duration per value of `by`, in working time of the calendar.
    pub durations: IndexMap<String, Span>,
    /// Duration for values `durations` does not list; without it such records get no
    /// clock for this target.
    #[serde(default)]
    pub default: Option<Span>,
    /// States that stop this target in addition to the policy's; a response target stops
    /// when work starts.
    #[serde(default)]
    pub stop_in: Vec<String>,
    /// Whether the clock runs again when the record leaves a stopping state. True for
    /// resolution (a reopened record resumes it), false for response (once met, it stays
    /// met).
    #[serde(default = "default_true")]
    pub resumes: bool,
}

fn default_by() -> String {
    "priority".into()
}

fn default_true() -> bool {
    true
}

impl TargetDef {
    /// Returns the target duration for `fields`, or none when the target does not apply.
    pub fn duration_for(&self, fields: &Fields) -> Option<Span> {
        let key = fields.get(&self.by).and_then(|value| match value {
            Value::String(text) => Some(text.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        });
        key.and_then(|key| self.durations.get(&key).copied())
            .or(self.default)
    }
}

/// A share of a target at which effects run, once per clock and target duration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdDef {
    /// Share of the target, e.g. `75%`; `100%` is the breach.
    pub at: Percent,
    /// Targets the threshold watches; all of the policy's by default.
    #[serde(default)]
    pub targets: Vec<String>,
    /// Recipients: `assignee`, `assignment_group`, `requester`, or a user or group name.
    #[serde(default)]
    pub notify: Vec<String>,
    #[serde(default)]
    pub escalate: Option<Escalation>,
    /// A rule run with the `on_timer` hook; its effects apply like an update's.
    #[serde(default)]
    pub rule: Option<String>,
}

impl ThresholdDef {
    pub fn watches(&self, target: &str) -> bool {
        self.targets.is_empty() || self.targets.iter().any(|name| name == target)
    }
}

/// Changes a threshold makes to the record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Escalation {
    /// Reassigns the record to this group.
    #[serde(default)]
    pub assignment_group: Option<String>,
    /// Reassigns the record to this user.
    #[serde(default)]
    pub assignee: Option<String>,
    /// Raises the priority by one step of the field's values (P3 to P2).
    #[serde(default)]
    pub raise_priority: bool,
    /// Adds a user to the record's `watchers` (a comma-separated list).
    #[serde(default)]
    pub add_watcher: Option<String>,
}

/// A percentage written as `75%` (or a bare number).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Percent(pub u32);

impl Serialize for Percent {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format!("{}%", self.0))
    }
}

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        let invalid = |shown: &str| {
            serde::de::Error::custom(format!(
                "invalid threshold `{shown}`: write a share of the target from 1% to 1000%, e.g. 75%"
            ))
        };
        let number = match &value {
            Value::String(text) => text
                .trim()
                .trim_end_matches('%')
                .trim()
                .parse::<u32>()
                .map_err(|_| invalid(text))?,
            Value::Number(number) => number
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| invalid(&number.to_string()))?,
            other => return Err(invalid(&other.to_string())),
        };
        if !(1..=1000).contains(&number) {
            return Err(invalid(&value.to_string()));
        }
        Ok(Percent(number))
    }
}

/// Coverage of a policy and the phases of its clocks.
impl SlaPolicy {
    pub fn covers(&self, process: &str, fields: &Fields) -> bool {
        self.process == process
            && self
                .when
                .iter()
                .all(|(field, wanted)| wanted.matches(fields.get(field)))
    }

    /// Returns whether the `during` condition holds for `fields`.
    pub fn counts_during(&self, fields: &Fields) -> bool {
        self.during
            .iter()
            .all(|(field, wanted)| wanted.matches(fields.get(field)))
    }

    pub fn pauses_in(&self, definition: &Definition, state: &str) -> bool {
        if let Some(states) = &self.run_in
            && !states.iter().any(|name| name == state)
        {
            return true;
        }
        match &self.pause_in {
            Some(states) => states.iter().any(|name| name == state),
            None => definition
                .states
                .get(state)
                .is_some_and(|def| def.sla == Some(SlaMode::Paused)),
        }
    }

    pub fn stops_in(&self, definition: &Definition, target: &TargetDef, state: &str) -> bool {
        if target.stop_in.iter().any(|name| name == state) {
            return true;
        }
        match &self.stop_in {
            Some(states) => states.iter().any(|name| name == state),
            None => definition
                .states
                .get(state)
                .is_some_and(|def| def.sla == Some(SlaMode::Stopped) || def.is_final),
        }
    }

    /// Problems that need the policy's process: unknown states and fields, as (path,
    /// message) pairs relative to the policy.
    pub fn problems(&self, definition: &Definition) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let state = |path: String, name: &String, problems: &mut Vec<(String, String)>| {
            if !definition.states.contains_key(name) {
                problems.push((
                    path,
                    format!(
                        "`{}` has no state `{name}`: {}",
                        definition.process,
                        crate::validate::choices(name, definition.states.keys())
                    ),
                ));
            }
        };
        for (index, name) in self.run_in.iter().flatten().enumerate() {
            state(format!("run_in[{index}]"), name, &mut problems);
        }
        for (index, name) in self.pause_in.iter().flatten().enumerate() {
            state(format!("pause_in[{index}]"), name, &mut problems);
        }
        for (index, name) in self.stop_in.iter().flatten().enumerate() {
            state(format!("stop_in[{index}]"), name, &mut problems);
        }
        let field = |path: String, name: &String, problems: &mut Vec<(String, String)>| {
            if !definition.fields.contains_key(name) {
                problems.push((
                    path,
                    format!(
                        "`{}` declares no field `{name}`: {}",
                        definition.process,
                        crate::validate::choices(name, definition.fields.keys())
                    ),
                ));
            }
        };
        for name in self.when.keys() {
            field(format!("when.{name}"), name, &mut problems);
        }
        for name in self.during.keys() {
            field(format!("during.{name}"), name, &mut problems);
        }
        if self.targets.is_empty() {
            problems.push((
                "targets".into(),
                "the policy has no targets: add one, e.g. `resolution: { durations: { P1: 4h } }`"
                    .into(),
            ));
        }
        for (name, target) in &self.targets {
            field(format!("targets.{name}.by"), &target.by, &mut problems);
            for (index, stop) in target.stop_in.iter().enumerate() {
                state(
                    format!("targets.{name}.stop_in[{index}]"),
                    stop,
                    &mut problems,
                );
            }
            if let Some(declared) = definition.fields.get(&target.by)
                && !declared.values.is_empty()
            {
                for key in target.durations.keys() {
                    if !declared.values.iter().any(|value| value == key) {
                        problems.push((
                            format!("targets.{name}.durations.{key}"),
                            format!(
                                "`{key}` is not a value of `{}`: use one of {}",
                                target.by,
                                declared.values.join(", ")
                            ),
                        ));
                    }
                }
            }
        }
        for (index, threshold) in self.thresholds.iter().enumerate() {
            for target in &threshold.targets {
                if !self.targets.contains_key(target) {
                    problems.push((
                        format!("thresholds[{index}].targets"),
                        format!(
                            "the policy has no target `{target}`: {}",
                            crate::validate::choices(target, self.targets.keys())
                        ),
                    ));
                }
            }
            if let Some(escalation) = &threshold.escalate {
                if escalation.raise_priority && !definition.fields.contains_key("priority") {
                    problems.push((
                        format!("thresholds[{index}].escalate.raise_priority"),
                        format!("`{}` has no `priority` field to raise", definition.process),
                    ));
                }
                for (set, field_name) in [
                    (escalation.assignment_group.is_some(), "assignment_group"),
                    (escalation.assignee.is_some(), "assignee"),
                    (escalation.add_watcher.is_some(), "watchers"),
                ] {
                    if set && !definition.fields.contains_key(field_name) {
                        problems.push((
                            format!("thresholds[{index}].escalate"),
                            format!(
                                "`{}` declares no field `{field_name}` for this escalation: declare it or remove the escalation",
                                definition.process
                            ),
                        ));
                    }
                }
            }
        }
        problems
    }
}
