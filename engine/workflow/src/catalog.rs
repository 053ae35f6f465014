//! The service catalog: items that requesters order, in `workflows/catalog/*.yaml`. An
//! order opens a record of the item's process (a service request by default) with the
//! item's name, the answers to its form and its approvers in fields of that record; the
//! item's fulfilment tasks are opened as linked task records once the request reaches its
//! fulfilment state.

use std::collections::BTreeMap;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tend_domain::{Actor, Fields, Role};

use crate::model::{Definition, FieldDef, FieldType, GroupDef};
use crate::values::{check_value, is_present};

/// A file of `workflows/catalog/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogFile {
    pub items: IndexMap<String, CatalogItem>,
}

/// One orderable item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogItem {
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub category: Option<String>,
    /// Process of the record an order opens.
    #[serde(default = "default_request_process")]
    pub process: String,
    /// Roles whose users may order the item; members of `groups` may too. Both empty means
    /// everyone who may create records of the process.
    #[serde(default)]
    pub roles: Vec<Role>,
    #[serde(default)]
    pub groups: Vec<String>,
    /// The questions of the order form, in order, typed like definition fields.
    #[serde(default)]
    pub form: IndexMap<String, FieldDef>,
    /// Approvers of the order (`user:`, `group:` or `board:`), stored in the record's
    /// `approvers` field for the process's approval rule to read.
    #[serde(default)]
    pub approvers: Vec<String>,
    /// Rule that checks whether the requester is entitled to the item; it refuses with
    /// `deny(message)`.
    #[serde(default)]
    pub entitlement: Option<String>,
    /// Fulfilment tasks opened when the request enters `fulfil_in`.
    #[serde(default)]
    pub tasks: Vec<TaskTemplate>,
    /// State of the request in which its tasks are opened.
    #[serde(default = "default_fulfil_in")]
    pub fulfil_in: String,
}

/// A fulfilment task of an item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskTemplate {
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub assignment_group: Option<String>,
}

/// Process of fulfilment task records.
pub const TASK_PROCESS: &str = "task";
/// Link type from a fulfilment task to its request.
pub const TASK_LINK: &str = "task_of";
/// Fields of the request process that an order fills in.
pub const ORDER_FIELDS: [&str; 3] = ["catalog_item", "variables", "approvers"];

fn default_request_process() -> String {
    "service_request".into()
}

fn default_fulfil_in() -> String {
    "fulfilment".into()
}

impl CatalogItem {
    /// Checks whether `actor` may order the item.
    pub fn orderable_by(&self, actor: &Actor, groups: &BTreeMap<String, GroupDef>) -> bool {
        if self.roles.is_empty() && self.groups.is_empty() {
            return true;
        }
        actor.may(&self.roles)
            || self.groups.iter().any(|name| {
                groups
                    .get(name)
                    .is_some_and(|group| group.members.contains(&actor.name))
            })
    }

    /// Checks the answers of an order against the form, and returns them in form order
    /// with defaults applied. Unknown questions, invalid values and unanswered required
    /// questions are rejected with the question's name.
    pub fn answers(&self, given: &Fields) -> Result<Fields, (String, String)> {
        for name in given.keys() {
            if !self.form.contains_key(name) {
                let known: Vec<&str> = self.form.keys().map(String::as_str).collect();
                return Err((
                    name.clone(),
                    format!(
                        "unknown question `{name}`: the item `{}` asks {}",
                        self.title,
                        if known.is_empty() {
                            "nothing".to_owned()
                        } else {
                            known.join(", ")
                        }
                    ),
                ));
            }
        }
        let mut answers = Fields::new();
        for (name, question) in &self.form {
            let value = given.get(name).or(question.default.as_ref()).cloned();
            if let Some(value) = &value {
                check_value(question, value)
                    .map_err(|message| (name.clone(), format!("invalid answer: {message}")))?;
            }
            if question.required && !is_present(value.as_ref()) {
                return Err((
                    name.clone(),
                    format!(
                        "`{}` needs an answer",
                        question.label.as_deref().unwrap_or(name)
                    ),
                ));
            }
            if let Some(value) = value.filter(|v| !v.is_null()) {
                answers.insert(name.clone(), value);
            }
        }
        Ok(answers)
    }

    /// Writes answers as `Label: value` lines, the form the request's `variables` field
    /// shows them in.
    pub fn answers_text(&self, answers: &Fields) -> String {
        let mut lines = Vec::new();
        for (name, question) in &self.form {
            if let Some(value) = answers.get(name) {
                let text = match value {
                    Value::String(text) => text.clone(),
                    other => other.to_string(),
                };
                lines.push(format!(
                    "{}: {text}",
                    question.label.as_deref().unwrap_or(name)
                ));
            }
        }
        lines.join("\n")
    }

    /// Lists problems of the item against the loaded definitions, as (path, message).
    pub fn problems(
        &self,
        name: &str,
        definitions: &BTreeMap<String, std::sync::Arc<Definition>>,
        groups: &BTreeMap<String, GroupDef>,
    ) -> Vec<(String, String)> {
        let path = format!("items.{name}");
        let mut problems = Vec::new();
        if !crate::validate::is_identifier(name) {
            problems.push((
                path.clone(),
                format!(
                    "invalid item name `{name}`: use lower-case letters, digits and underscores"
                ),
            ));
        }
        match definitions.get(&self.process) {
            None => problems.push((
                format!("{path}.process"),
                format!(
                    "item `{name}` opens records of unknown process `{}`: {}",
                    self.process,
                    crate::validate::choices(&self.process, definitions.keys())
                ),
            )),
            Some(definition) => {
                for field in ORDER_FIELDS {
                    match definition.fields.get(field) {
                        Some(declared)
                            if matches!(declared.kind, FieldType::String | FieldType::Text) => {}
                        _ => problems.push((
                            format!("{path}.process"),
                            format!(
                                "process `{}` must declare a text field `{field}` for catalog orders: add `{field}: {{ type: text }}` to its fields",
                                self.process
                            ),
                        )),
                    }
                }
                if !definition.states.contains_key(&self.fulfil_in) {
                    problems.push((
                        format!("{path}.fulfil_in"),
                        format!(
                            "item `{name}` opens its tasks in unknown state `{}` of `{}`: {}",
                            self.fulfil_in,
                            self.process,
                            crate::validate::choices(&self.fulfil_in, definition.states.keys())
                        ),
                    ));
                }
            }
        }
        if !self.tasks.is_empty() && !definitions.contains_key(TASK_PROCESS) {
            problems.push((
                format!("{path}.tasks"),
                format!("item `{name}` has fulfilment tasks, so a `{TASK_PROCESS}` process must be defined: add workflows/{TASK_PROCESS}.yaml"),
            ));
        }
        for (i, group) in self.groups.iter().enumerate() {
            if !groups.contains_key(group) {
                problems.push((
                    format!("{path}.groups[{i}]"),
                    format!("unknown group `{group}`: define it in workflows/groups/"),
                ));
            }
        }
        for (i, approver) in self.approvers.iter().enumerate() {
            match crate::approval::Approver::parse(approver) {
                Err(message) => problems.push((format!("{path}.approvers[{i}]"), message)),
                Ok(
                    crate::approval::Approver::Group(group)
                    | crate::approval::Approver::Board(group),
                ) if !groups.contains_key(&group) => problems.push((
                    format!("{path}.approvers[{i}]"),
                    format!("unknown group `{group}` in approver `{approver}`: define it in workflows/groups/"),
                )),
                Ok(_) => {}
            }
        }
        for (question, field) in &self.form {
            let at = format!("{path}.form.{question}");
            if !crate::validate::is_identifier(question) {
                problems.push((
                    at.clone(),
                    format!("invalid question name `{question}`: use lower-case letters, digits and underscores"),
                ));
            }
            if field.kind == FieldType::Enum && field.values.is_empty() {
                problems.push((
                    format!("{at}.values"),
                    format!(
                        "question `{question}` is an enum without values: list them under `values`"
                    ),
                ));
            }
            if let Some(default) = &field.default
                && let Err(message) = check_value(field, default)
            {
                problems.push((
                    format!("{at}.default"),
                    format!("default of `{question}` is invalid: {message}"),
                ));
            }
        }
        problems
    }
}
