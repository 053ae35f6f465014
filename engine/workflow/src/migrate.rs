//! Whether a record fits another version of its definition, for moving records between
//! definition versions.

use tend_domain::Record;

use crate::model::Definition;
use crate::values::{check_value, is_present};

/// Lists why `record` does not fit `definition`: a state the definition lacks, a field it
/// does not declare, a value its declaration rejects, or a field that the record's state
/// requires and the record leaves empty. Returns nothing when the record fits.
pub fn misfits(definition: &Definition, record: &Record) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(state) = definition.states.get(&record.state) else {
        let known: Vec<&str> = definition.states.keys().map(String::as_str).collect();
        problems.push(format!(
            "state `{}` no longer exists (the states are {})",
            record.state,
            known.join(", ")
        ));
        return problems;
    };
    for (name, value) in &record.fields {
        match definition.fields.get(name) {
            None => problems.push(format!("field `{name}` is no longer declared")),
            Some(field) => {
                if let Err(message) = check_value(field, value) {
                    problems.push(format!("field `{name}` has an invalid value: {message}"));
                }
            }
        }
    }
    let required_by_fields = definition
        .fields
        .iter()
        .filter(|(_, field)| field.required_in.contains(&record.state))
        .map(|(name, _)| name);
    let mut required: Vec<&String> = required_by_fields.chain(&state.requires).collect();
    required.sort();
    required.dedup();
    for name in required {
        if !is_present(record.fields.get(name)) {
            problems.push(format!(
                "field `{name}` is required in state `{}` and is empty",
                record.state
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use serde_json::json;

    fn definition(yaml: &str) -> Definition {
        serde_norway::from_str(yaml).unwrap()
    }

    fn record(state: &str, fields: serde_json::Value) -> Record {
        Record {
            id: 1,
            number: "INC0000001".into(),
            process: "incident".into(),
            definition_version: "v1".into(),
            state: state.into(),
            open: true,
            title: "Printer".into(),
            description: String::new(),
            fields: fields.as_object().unwrap().clone(),
            recommendations: Vec::new(),
            created_at: Utc::now(),
            updated_at: Utc::now(),
            state_changed_at: Utc::now(),
            revision: 1,
        }
    }

    const DEFINITION: &str = r#"
process: incident
title: Incident
number_prefix: INC
fields:
  impact: { type: enum, values: [low, high] }
  note: { type: string, required_in: [active] }
  owner: { type: user }
states:
  new: { initial: true }
  active: { requires: [owner] }
  closed: { final: true }
transitions:
  - { name: start, from: new, to: active, roles: [technician] }
  - { name: close, from: active, to: closed, roles: [technician] }
"#;

    #[test]
    fn fitting_record_has_no_misfits() {
        let record = record("new", json!({ "impact": "low" }));
        assert!(misfits(&definition(DEFINITION), &record).is_empty());
    }

    #[test]
    fn missing_state_is_reported_alone() {
        let record = record("pending", json!({ "gone": 1 }));
        let problems = misfits(&definition(DEFINITION), &record);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(
            problems[0],
            "state `pending` no longer exists (the states are new, active, closed)"
        );
    }

    #[test]
    fn unknown_field_and_invalid_value() {
        let record = record("new", json!({ "impact": "medium", "gone": 1 }));
        let problems = misfits(&definition(DEFINITION), &record);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems
                .iter()
                .any(|p| p.contains("field `gone` is no longer declared"))
        );
        assert!(
            problems
                .iter()
                .any(|p| p.contains("field `impact` has an invalid value"))
        );
    }

    #[test]
    fn required_fields_of_state() {
        let record = record("active", json!({}));
        let problems = misfits(&definition(DEFINITION), &record);
        assert_eq!(
            problems,
            [
                "field `note` is required in state `active` and is empty",
                "field `owner` is required in state `active` and is empty"
            ]
        );
    }
}
