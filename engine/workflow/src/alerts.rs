//! Alert sources (`workflows/alerts/NAME.yaml`): how alerts of a monitoring system, such
//! as Prometheus Alertmanager, become records. One source per file; the file name is its
//! name, which the intake endpoints take as `?source=NAME`.
//!
//! A source sets which process a firing alert opens, with routes that choose another
//! process by label. It sets how labels and annotations fill the record's fields, through
//! templates such as `{labels.instance}`. It also sets what a resolved alert does, and how
//! long after its resolution an alert that fires again returns to the same record.

use std::collections::BTreeMap;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::model::Span;

/// One file of `workflows/alerts/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertSourceFile {
    #[serde(default)]
    pub label: Option<String>,
    /// Process of the records that firing alerts open when no route matches.
    #[serde(default = "default_process")]
    pub process: String,
    /// Template of the record title.
    #[serde(default = "default_title")]
    pub title: String,
    /// Template of the record description.
    #[serde(default = "default_description")]
    pub description: String,
    /// Source of the configuration item.
    #[serde(default)]
    pub ci: Option<CiMapping>,
    /// Field values by the alert's severity label.
    #[serde(default)]
    pub severity: Option<SeverityMapping>,
    /// Field templates set on every record an alert opens.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// Action of a resolved alert on its record.
    #[serde(default)]
    pub resolved: ResolvedAction,
    /// Transition that reopens the record of an alert that fires again within
    /// `reopen_within` of its resolution.
    #[serde(default = "default_reopen")]
    pub reopen_transition: String,
    /// An alert that fires again within this time of its resolution returns to its record
    /// instead of opening a new one.
    #[serde(default = "default_reopen_within")]
    pub reopen_within: Span,
    /// An alert that keeps firing adds a note to its record at most this often.
    #[serde(default = "default_note_every")]
    pub note_every: Span,
    /// Routes, tried in order: the first whose labels all match chooses the process.
    #[serde(default)]
    pub routes: Vec<Route>,
    /// A rule (`rules/NAME.rhai`, hook `on_alert`) run on each alert before the routes.
    /// It reads the alert as `alert`; when it calls `open_record(process, spec, reason)`,
    /// the alert opens a record of that process, with the spec's fields on top of the
    /// templates, and the settings of the first route of that process apply to it.
    #[serde(default)]
    pub rule: Option<String>,
    /// Suppress alerts on a configuration item inside a planned change window: they
    /// become notes on the change.
    #[serde(default = "default_true")]
    pub change_windows: bool,
}

/// Reads the configuration item from the first label present, after removing `strip`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CiMapping {
    /// Field that receives the name.
    #[serde(default = "default_ci_field")]
    pub field: String,
    /// Labels to read, in order, such as `[instance, host]`.
    pub labels: Vec<String>,
    /// A regular expression whose match is removed, such as `:[0-9]+$` for a port.
    #[serde(default)]
    pub strip: Option<String>,
}

/// Field values by the value of a severity label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeverityMapping {
    #[serde(default = "default_severity_label")]
    pub label: String,
    /// Severity value -> fields, such as `critical: {impact: high, urgency: high}`.
    pub values: IndexMap<String, BTreeMap<String, String>>,
    /// Fields for a severity not listed, or no severity label.
    #[serde(default)]
    pub default: BTreeMap<String, String>,
}

/// A label match that chooses the process and adds fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Label values that must all be equal.
    #[serde(rename = "match")]
    pub matches: BTreeMap<String, String>,
    pub process: String,
    /// Field templates of this route, on top of the source's `fields`.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// The action for a resolved alert, in place of the source's `resolved`.
    #[serde(default)]
    pub resolved: Option<ResolvedAction>,
    #[serde(default)]
    pub reopen_transition: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResolvedKind {
    /// Take `transition` with `fields`.
    #[default]
    Resolve,
    /// Add a note only; people resolve the record.
    Note,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolvedAction {
    #[serde(default)]
    pub action: ResolvedKind,
    #[serde(default = "default_resolve")]
    pub transition: String,
    /// Field templates the transition sets, such as a resolution code.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
}

impl Default for ResolvedAction {
    fn default() -> Self {
        ResolvedAction {
            action: ResolvedKind::Resolve,
            transition: default_resolve(),
            fields: BTreeMap::new(),
        }
    }
}

/// An alert source with its name.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertSource {
    pub name: String,
    pub file: AlertSourceFile,
}

/// The target of a firing alert: the process and its settings, after the routes.
#[derive(Debug, Clone, PartialEq)]
pub struct Target<'a> {
    pub process: &'a str,
    pub fields: Vec<&'a BTreeMap<String, String>>,
    pub resolved: &'a ResolvedAction,
    pub reopen_transition: &'a str,
}

impl AlertSource {
    /// Chooses the process for an alert with `labels`: the first matching route, or the
    /// source's own process.
    pub fn target(&self, labels: &BTreeMap<String, String>) -> Target<'_> {
        let file = &self.file;
        for route in &file.routes {
            let matches = route
                .matches
                .iter()
                .all(|(label, value)| labels.get(label) == Some(value));
            if matches {
                return Target {
                    process: &route.process,
                    fields: vec![&file.fields, &route.fields],
                    resolved: route.resolved.as_ref().unwrap_or(&file.resolved),
                    reopen_transition: route
                        .reopen_transition
                        .as_deref()
                        .unwrap_or(&file.reopen_transition),
                };
            }
        }
        Target {
            process: &file.process,
            fields: vec![&file.fields],
            resolved: &file.resolved,
            reopen_transition: &file.reopen_transition,
        }
    }

    /// Returns the target for a record of `process` that a rule chose: the first route of
    /// that process, or the source's settings with the process replaced.
    pub fn target_for_process<'a>(&'a self, process: &'a str) -> Target<'a> {
        let file = &self.file;
        if let Some(route) = file.routes.iter().find(|route| route.process == process) {
            return Target {
                process: &route.process,
                fields: vec![&file.fields, &route.fields],
                resolved: route.resolved.as_ref().unwrap_or(&file.resolved),
                reopen_transition: route
                    .reopen_transition
                    .as_deref()
                    .unwrap_or(&file.reopen_transition),
            };
        }
        Target {
            process,
            fields: vec![&file.fields],
            resolved: &file.resolved,
            reopen_transition: &file.reopen_transition,
        }
    }

    /// Reads the configuration item of an alert, or `None` when no listed label is set.
    pub fn ci(&self, labels: &BTreeMap<String, String>) -> Option<String> {
        let mapping = self.file.ci.as_ref()?;
        let value = mapping
            .labels
            .iter()
            .find_map(|label| labels.get(label).filter(|value| !value.trim().is_empty()))?;
        let value = match &mapping.strip {
            Some(pattern) => match regex::Regex::new(pattern) {
                Ok(pattern) => pattern.replace_all(value, "").into_owned(),
                Err(_) => value.clone(),
            },
            None => value.clone(),
        };
        let value = value.trim().to_owned();
        (!value.is_empty()).then_some(value)
    }

    /// The severity fields of an alert with `labels`.
    pub fn severity_fields(
        &self,
        labels: &BTreeMap<String, String>,
    ) -> Option<&BTreeMap<String, String>> {
        let mapping = self.file.severity.as_ref()?;
        let found = labels
            .get(&mapping.label)
            .and_then(|value| mapping.values.get(&value.to_lowercase()));
        Some(found.unwrap_or(&mapping.default))
    }
}

/// The values a template may name.
pub const TEMPLATE_NAMES: [&str; 8] = [
    "labels.NAME",
    "annotations.NAME",
    "fingerprint",
    "status",
    "starts_at",
    "ends_at",
    "generator_url",
    "ci",
];

/// The values of an alert that templates can use.
pub trait TemplateValues {
    fn value(&self, name: &str) -> Option<String>;
}

/// Fills `{name}` placeholders; an unknown or missing value becomes empty. `{{` and `}}`
/// stand for braces.
pub fn render(template: &str, values: &dyn TemplateValues) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(position) = rest.find(['{', '}']) {
        out.push_str(&rest[..position]);
        let tail = &rest[position..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            out.push_str(&tail[..1]);
            rest = &tail[2..];
            continue;
        }
        if let Some(after) = tail.strip_prefix('}') {
            out.push('}');
            rest = after;
            continue;
        }
        match tail.find('}') {
            Some(close) => {
                let name = tail[1..close].trim();
                out.push_str(&values.value(name).unwrap_or_default());
                rest = &tail[close + 1..];
            }
            None => {
                out.push_str(tail);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Lists the placeholders of a template that name nothing an alert has.
pub fn unknown_placeholders(template: &str) -> Vec<String> {
    let mut unknown = Vec::new();
    let mut rest = template;
    while let Some(position) = rest.find('{') {
        let tail = &rest[position..];
        if let Some(after) = tail.strip_prefix("{{") {
            rest = after;
            continue;
        }
        let Some(close) = tail.find('}') else {
            unknown.push(tail.to_owned());
            break;
        };
        let name = tail[1..close].trim();
        let known = match name.split_once('.') {
            Some(("labels" | "annotations", key)) => !key.is_empty(),
            Some(_) => false,
            None => TEMPLATE_NAMES.contains(&name),
        };
        if !known {
            unknown.push(name.to_owned());
        }
        rest = &tail[close + 1..];
    }
    unknown
}

/// Checks whether a template has placeholders at all.
pub fn is_constant(template: &str) -> bool {
    !template.replace("{{", "").contains('{')
}

/// Turns a filled template into a value of the field's type: numbers and booleans are
/// parsed, and an empty text is no value.
pub fn field_value(field: &crate::model::FieldDef, text: &str) -> serde_json::Value {
    use crate::model::FieldType;
    use serde_json::Value;
    let text = text.trim();
    if text.is_empty() {
        return Value::Null;
    }
    match field.kind {
        FieldType::Integer => text
            .parse::<i64>()
            .map_or_else(|_| Value::String(text.to_owned()), Value::from),
        FieldType::Number => text
            .parse::<f64>()
            .map_or_else(|_| Value::String(text.to_owned()), Value::from),
        FieldType::Boolean => match text {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::String(text.to_owned()),
        },
        _ => Value::String(text.to_owned()),
    }
}

/// The value of a template without placeholders.
pub fn constant_value(field: &crate::model::FieldDef, template: &str) -> serde_json::Value {
    field_value(field, &template.replace("{{", "{").replace("}}", "}"))
}

fn default_process() -> String {
    "incident".to_owned()
}

fn default_title() -> String {
    "{labels.alertname}: {annotations.summary}".to_owned()
}

fn default_description() -> String {
    "{annotations.description}".to_owned()
}

fn default_reopen() -> String {
    "reopen".to_owned()
}

fn default_resolve() -> String {
    "resolve".to_owned()
}

fn default_reopen_within() -> Span {
    Span { minutes: 60 }
}

fn default_note_every() -> Span {
    Span { minutes: 30 }
}

fn default_ci_field() -> String {
    "ci".to_owned()
}

fn default_severity_label() -> String {
    "severity".to_owned()
}

fn default_true() -> bool {
    true
}

impl AlertSourceFile {
    /// Problems that need no other file, as (path, message).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let mut templates: Vec<(String, &str)> = vec![
            ("title".into(), &self.title),
            ("description".into(), &self.description),
        ];
        for (field, template) in &self.fields {
            templates.push((format!("fields.{field}"), template));
        }
        for (field, template) in &self.resolved.fields {
            templates.push((format!("resolved.fields.{field}"), template));
        }
        for (position, route) in self.routes.iter().enumerate() {
            for (field, template) in &route.fields {
                templates.push((format!("routes[{position}].fields.{field}"), template));
            }
            if let Some(resolved) = &route.resolved {
                for (field, template) in &resolved.fields {
                    templates.push((
                        format!("routes[{position}].resolved.fields.{field}"),
                        template,
                    ));
                }
            }
            if route.matches.is_empty() {
                problems.push((
                    format!("routes[{position}].match"),
                    "the route matches no label, so it would take every alert: name at least one label, such as {alertname: InstanceDown}".to_owned(),
                ));
            }
        }
        for (path, template) in templates {
            for name in unknown_placeholders(template) {
                problems.push((
                    path.clone(),
                    format!(
                        "unknown placeholder `{{{name}}}`: use one of {}, or write `{{{{` for a brace",
                        TEMPLATE_NAMES.join(", ")
                    ),
                ));
            }
        }
        if let Some(ci) = &self.ci {
            if ci.labels.is_empty() {
                problems.push((
                    "ci.labels".to_owned(),
                    "no label to read the configuration item from: list labels such as [instance, host]".to_owned(),
                ));
            }
            if let Some(pattern) = &ci.strip
                && let Err(error) = regex::Regex::new(pattern)
            {
                problems.push((
                    "ci.strip".to_owned(),
                    format!(
                        "`{pattern}` is not a regular expression ({error}): write one such as `:[0-9]+$` to remove a port"
                    ),
                ));
            }
        }
        if let Some(severity) = &self.severity
            && severity.values.is_empty()
        {
            problems.push((
                "severity.values".to_owned(),
                "no severity is mapped: list values such as `critical: {impact: high, urgency: high}`".to_owned(),
            ));
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Values(BTreeMap<String, String>);

    impl TemplateValues for Values {
        fn value(&self, name: &str) -> Option<String> {
            self.0.get(name).cloned()
        }
    }

    fn file(yaml: &str) -> AlertSourceFile {
        serde_norway::from_str(yaml).expect("the test source parses")
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn templates_fill_and_escape() {
        let values = Values(labels(&[("labels.alertname", "DiskFull"), ("ci", "db1")]));
        assert_eq!(
            render(
                "{labels.alertname} on {ci} {{x}} {annotations.summary}!",
                &values
            ),
            "DiskFull on db1 {x} !"
        );
        assert_eq!(
            unknown_placeholders("{labels.a} {nope} {{ok}} {labels.}"),
            ["nope", "labels."]
        );
        assert!(is_constant("resolved {{by}} monitoring"));
        assert!(!is_constant("{status}"));
    }

    #[test]
    fn routes_ci_and_severity() {
        let source = AlertSource {
            name: "prom".into(),
            file: file(
                "ci: {labels: [instance, host], strip: ':[0-9]+$'}\nseverity:\n  values:\n    critical: {impact: high}\n  default: {impact: low}\nroutes:\n  - match: {alertname: Down}\n    process: availability\n",
            ),
        };
        assert!(source.file.problems().is_empty());
        let down = labels(&[("alertname", "Down"), ("instance", "web1:9100")]);
        assert_eq!(source.target(&down).process, "availability");
        assert_eq!(source.ci(&down).as_deref(), Some("web1"));
        let disk = labels(&[
            ("alertname", "Disk"),
            ("host", "db1"),
            ("severity", "CRITICAL"),
        ]);
        assert_eq!(source.target(&disk).process, "incident");
        assert_eq!(source.ci(&disk).as_deref(), Some("db1"));
        assert_eq!(source.severity_fields(&disk).unwrap()["impact"], "high");
        assert_eq!(source.severity_fields(&down).unwrap()["impact"], "low");
        assert_eq!(source.ci(&labels(&[("alertname", "x")])), None);
    }

    #[test]
    fn problems_name_the_path() {
        let source = file(
            "title: '{label.x}'\nci: {labels: [], strip: '('}\nroutes:\n  - match: {}\n    process: incident\n",
        );
        let paths: Vec<String> = source
            .problems()
            .into_iter()
            .map(|(path, _)| path)
            .collect();
        assert_eq!(paths, ["routes[0].match", "title", "ci.labels", "ci.strip"]);
    }
}
