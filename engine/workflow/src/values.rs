//! Type checks of field values against their declarations.

use serde_json::Value;

use crate::model::{FieldDef, FieldType};

/// Checks one value against its field declaration. `null` clears a field and is always
/// accepted here; whether the field may be empty is checked separately.
pub fn check_value(field: &FieldDef, value: &Value) -> Result<(), String> {
    if value.is_null() {
        return Ok(());
    }
    let kind = field.kind;
    match kind {
        FieldType::String
        | FieldType::Text
        | FieldType::User
        | FieldType::Group
        | FieldType::CiRef => {
            let Some(text) = value.as_str() else {
                return Err(format!("expected text, got {}", describe(value)));
            };
            if kind == FieldType::String && text.contains('\n') {
                return Err("a line break is not allowed in a one-line text field".into());
            }
            let limit = field.max_length.unwrap_or(match kind {
                FieldType::Text => 100_000,
                _ => 255,
            });
            let length = text.chars().count();
            if length > limit {
                return Err(format!(
                    "text is {length} characters long; the limit is {limit}"
                ));
            }
            Ok(())
        }
        FieldType::Enum => {
            let Some(text) = value.as_str() else {
                return Err(format!(
                    "expected one of {}, got {}",
                    field.values.join(", "),
                    describe(value)
                ));
            };
            if field.values.iter().any(|v| v == text) {
                Ok(())
            } else {
                Err(format!(
                    "`{text}` is not one of {}",
                    field.values.join(", ")
                ))
            }
        }
        FieldType::Integer => match value.as_i64() {
            Some(_) => Ok(()),
            None => Err(format!("expected a whole number, got {}", describe(value))),
        },
        FieldType::Number => match value.as_f64() {
            Some(_) => Ok(()),
            None => Err(format!("expected a number, got {}", describe(value))),
        },
        FieldType::Boolean => match value {
            Value::Bool(_) => Ok(()),
            _ => Err(format!(
                "expected true or false, got {}; words such as yes, no, on and off are text, not booleans",
                describe(value)
            )),
        },
        FieldType::Date => match value.as_str() {
            Some(text) if chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok() => Ok(()),
            _ => Err(format!(
                "expected a date written YYYY-MM-DD, got {}",
                describe(value)
            )),
        },
        FieldType::Datetime => match value.as_str() {
            Some(text) if chrono::DateTime::parse_from_rfc3339(text).is_ok() => Ok(()),
            _ => Err(format!(
                "expected an RFC 3339 date and time such as 2026-02-03T09:15:00Z, got {}",
                describe(value)
            )),
        },
    }
}

/// Checks whether a field counts as filled in.
pub fn is_present(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::String(text)) => !text.trim().is_empty(),
        Some(_) => true,
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) if s.chars().count() > 40 => {
            format!("the text \"{}…\"", s.chars().take(40).collect::<String>())
        }
        Value::String(s) => format!("the text \"{s}\""),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "an object".into(),
    }
}
