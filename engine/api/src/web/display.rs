//! Text that the console shows in place of machine names: enum values, action names, field
//! and transition labels, and the parameters of a recommended action. Forms still submit
//! the machine names.

use serde::Serialize;
use serde_json::Value;
use tend_workflow::{Definition, FieldDef, FieldType, TransitionDef};

/// Turns a machine name such as `walk_in` into `Walk in`: underscores become spaces and
/// the first letter becomes upper case.
/// Names a recommended action for people: its action part humanised, so that
/// `recovery/restore_file` reads "Restore file".
pub fn action_label(action: &str) -> String {
    humanise(action.rsplit('/').next().unwrap_or(action))
}

pub fn humanise(name: &str) -> String {
    let spaced = name.replace('_', " ");
    let mut characters = spaced.chars();
    match characters.next() {
        Some(first) => first.to_uppercase().chain(characters).collect(),
        None => String::new(),
    }
}

/// Returns the label of a declared field, or its humanised name when it has none.
pub fn field_label(name: &str, field: &FieldDef) -> String {
    field.label.clone().unwrap_or_else(|| humanise(name))
}

/// Returns the label of `name`, which is a field of the definition or one of the record's
/// own texts (title, description) or the comment of a form.
pub fn input_label(definition: &Definition, name: &str) -> String {
    match (definition.fields.get(name), name) {
        (Some(field), _) => field_label(name, field),
        (None, "text" | "comment") => "Comment".into(),
        (None, other) => humanise(other),
    }
}

/// Returns the label of a transition, or its humanised name when it has none.
pub fn transition_label(step: &TransitionDef) -> String {
    step.label.clone().unwrap_or_else(|| humanise(&step.name))
}

/// Returns the process title as a noun inside a sentence, e.g. "incident" or "service request".
pub fn process_noun(definition: &Definition) -> String {
    lowercase_first(&definition.title)
}

/// Lowercases the first letter, unless the first word is an abbreviation such as "VPN".
pub fn lowercase_first(text: &str) -> String {
    let first_word = text.split_whitespace().next().unwrap_or("");
    let abbreviation = first_word.chars().filter(|c| c.is_uppercase()).count() > 1;
    let mut characters = text.chars();
    match characters.next() {
        Some(first) if !abbreviation => first.to_lowercase().chain(characters).collect(),
        _ => text.to_owned(),
    }
}

/// Formats a field value as one line of text: enum values humanised, booleans as Yes or
/// No, and "(empty)" for no value. `field` is `None` for a name the definition does not
/// declare, whose value is shown as stored.
pub fn field_text(field: Option<&FieldDef>, value: &Value) -> String {
    match (field.map(|field| field.kind), value) {
        (Some(FieldType::Enum), Value::String(text)) if !text.is_empty() => humanise(text),
        (Some(FieldType::Boolean), Value::Bool(true)) => "Yes".into(),
        (Some(FieldType::Boolean), Value::Bool(false)) => "No".into(),
        _ => shown(value),
    }
}

/// Formats a value as one line of text, with "(empty)" for no value.
pub fn shown(value: &Value) -> String {
    match value {
        Value::Null => "(empty)".into(),
        Value::String(text) if text.is_empty() => "(empty)".into(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// One parameter of a recommended action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Param {
    pub name: String,
    pub value: String,
}

/// Lists the parameters of a recommended action, leaving out those whose value is null
/// (rules pass null for a value they do not know). Text is shown as is and other values
/// as compact JSON. Parameters that are not a JSON object appear as one named `value`.
pub fn param_list(params: &Value) -> Vec<Param> {
    let text = |value: &Value| match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    match params {
        Value::Null => Vec::new(),
        Value::Object(map) => map
            .iter()
            .filter(|(_, value)| !value.is_null())
            .map(|(name, value)| Param {
                name: name.clone(),
                value: text(value),
            })
            .collect(),
        other => vec![Param {
            name: "value".into(),
            value: text(other),
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn humanise_spaces_and_capitalises() {
        assert_eq!(humanise("self_service"), "Self service");
        assert_eq!(humanise("walk_in"), "Walk in");
        assert_eq!(humanise("P1"), "P1");
        assert_eq!(humanise("élan"), "Élan");
        assert_eq!(humanise(""), "");
    }

    #[test]
    fn lowercase_first_keeps_abbreviations() {
        assert_eq!(lowercase_first("Resolve"), "resolve");
        assert_eq!(lowercase_first("Service request"), "service request");
        assert_eq!(lowercase_first("VPN access"), "VPN access");
        assert_eq!(lowercase_first("CI"), "CI");
    }

    #[test]
    fn params_skip_null_values() {
        let listed = param_list(&json!({ "ci": null, "path_hint": "/srv/data", "retries": 2 }));
        assert_eq!(
            listed,
            [
                Param {
                    name: "path_hint".into(),
                    value: "/srv/data".into()
                },
                Param {
                    name: "retries".into(),
                    value: "2".into()
                },
            ]
        );
        assert!(param_list(&json!({ "ci": null, "path_hint": null })).is_empty());
        assert!(param_list(&Value::Null).is_empty());
    }

    #[test]
    fn field_text_by_field_type() {
        let field = |kind| FieldDef {
            kind,
            label: None,
            values: vec!["walk_in".into()],
            default: None,
            required: false,
            required_in: Vec::new(),
            read_only: false,
            read_only_in: Vec::new(),
            max_length: None,
            set_by: Vec::new(),
        };
        let enumeration = field(FieldType::Enum);
        let boolean = field(FieldType::Boolean);
        let string = field(FieldType::String);
        assert_eq!(field_text(Some(&enumeration), &json!("walk_in")), "Walk in");
        assert_eq!(field_text(Some(&boolean), &json!(false)), "No");
        assert_eq!(field_text(Some(&string), &json!("walk_in")), "walk_in");
        assert_eq!(field_text(Some(&enumeration), &Value::Null), "(empty)");
        assert_eq!(field_text(None, &json!(3)), "3");
    }
}
