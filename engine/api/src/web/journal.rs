//! Journal entries as the record page shows them: when, who, what changed and, for changes
//! made by rules, which rule and why.

use serde::Serialize;
use serde_json::Value;
use tend_domain::{JournalEntry, JournalEvent};
use tend_workflow::Definition;

use super::format_time;

/// One journal entry on the record page.
#[derive(Debug, Serialize)]
pub struct EntryView {
    pub seq: i64,
    /// RFC 3339, for the `datetime` attribute.
    pub at_iso: String,
    pub at: String,
    pub actor: String,
    /// One line that describes what happened.
    pub summary: String,
    /// Longer text (a comment, a note, an error), shown with its line breaks.
    pub text: Option<String>,
    /// The rule that made the change, and its reason.
    pub rule: Option<String>,
    pub reason: Option<String>,
}

/// Builds the views of `entries`, oldest first. Rule notes, rule failures and
/// recommendations are internal to the people who work records, so `staff` decides
/// whether they are shown.
pub fn entry_views(
    definition: &Definition,
    entries: &[JournalEntry],
    staff: bool,
) -> Vec<EntryView> {
    entries
        .iter()
        .filter(|entry| staff || !is_internal(&entry.event))
        .map(|entry| {
            let mut view = EntryView {
                seq: entry.seq,
                at_iso: entry.at.to_rfc3339(),
                at: format_time(entry.at),
                actor: entry.actor.clone(),
                summary: String::new(),
                text: None,
                rule: None,
                reason: None,
            };
            describe(definition, &entry.event, &mut view);
            view
        })
        .collect()
}

fn is_internal(event: &JournalEvent) -> bool {
    matches!(
        event,
        JournalEvent::Note { .. }
            | JournalEvent::RuleFailed { .. }
            | JournalEvent::Recommended { .. }
    )
}

fn describe(definition: &Definition, event: &JournalEvent, view: &mut EntryView) {
    match event {
        JournalEvent::Created { state, .. } => {
            view.summary = format!("Created in state {}", definition.state_label(state));
        }
        JournalEvent::FieldChanged {
            field,
            from,
            to,
            rule,
            reason,
        } => {
            view.summary = format!(
                "{}: {} → {}",
                field_label(definition, field),
                shown(from),
                shown(to)
            );
            view.rule = rule.clone();
            view.reason = reason.clone();
        }
        JournalEvent::TextChanged { field, from, to } => {
            let label = match field.as_str() {
                "title" => "Title",
                "description" => "Description",
                other => other,
            };
            view.summary = format!("{label} changed");
            view.text = Some(format!("Before:\n{from}\n\nAfter:\n{to}"));
        }
        JournalEvent::Transitioned {
            transition,
            from,
            to,
        } => {
            let label = definition
                .transition(transition)
                .and_then(|t| t.label.as_deref())
                .unwrap_or(transition);
            view.summary = format!(
                "{label}: {} → {}",
                definition.state_label(from),
                definition.state_label(to)
            );
        }
        JournalEvent::Commented { text } => {
            view.summary = "Comment".into();
            view.text = Some(text.clone());
        }
        JournalEvent::Note { text, rule, reason } => {
            view.summary = "Note".into();
            view.text = Some(text.clone());
            view.rule = Some(rule.clone());
            view.reason = Some(reason.clone());
        }
        JournalEvent::Recommended {
            action,
            params,
            rule,
            reason,
        } => {
            view.summary = format!("Recommended action {action} {}", params_text(params));
            view.rule = Some(rule.clone());
            view.reason = Some(reason.clone());
        }
        JournalEvent::RuleFailed { rule, error } => {
            view.summary = "Rule failed".into();
            view.text = Some(error.clone());
            view.rule = Some(rule.clone());
        }
    }
}

fn field_label(definition: &Definition, field: &str) -> String {
    definition
        .fields
        .get(field)
        .map_or(field, |declared| declared.label_or(field))
        .to_owned()
}

/// Formats a field value as one line of text, with "(empty)" for no value.
pub fn shown(value: &Value) -> String {
    match value {
        Value::Null => "(empty)".into(),
        Value::String(text) if text.is_empty() => "(empty)".into(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Formats the parameters of a recommended action as compact JSON, `{}` for none.
pub fn params_text(params: &Value) -> String {
    match params {
        Value::Null => "{}".into(),
        other => other.to_string(),
    }
}
