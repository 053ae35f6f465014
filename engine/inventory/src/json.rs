//! Lenient access to JSON values. Agents write the same field as a string in one
//! version and as a number or boolean in another (`"memory": 7800` and `"7800"`,
//! `"virtualdev": true` and `"1"`), so the readers accept each of these forms.

use serde_json::Value;

/// Returns the field as text: a string trimmed, or a number or boolean written out.
/// Missing, null, blank, array and object values give `None`.
pub(crate) fn text(object: &Value, key: &str) -> Option<String> {
    scalar_text(object.get(key)?)
}

/// Returns a scalar value as text, as [`text`] does for a field.
pub(crate) fn scalar_text(value: &Value) -> Option<String> {
    let text = match value {
        Value::String(text) => text.trim().to_owned(),
        Value::Number(number) => number.to_string(),
        Value::Bool(flag) => flag.to_string(),
        _ => return None,
    };
    (!text.is_empty()).then_some(text)
}

/// Returns the field as a number: a JSON number, or a string that parses as one.
pub(crate) fn number(object: &Value, key: &str) -> Option<f64> {
    match object.get(key)? {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

/// Returns the field as a flag: `true`/`false`, `1`/`0`, or their string forms.
pub(crate) fn flag(object: &Value, key: &str) -> Option<bool> {
    match object.get(key)? {
        Value::Bool(flag) => Some(*flag),
        Value::Number(number) => number.as_f64().map(|n| n != 0.0),
        Value::String(text) => match text.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" => Some(true),
            "0" | "false" | "no" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// Returns the elements of a list field. A single object or scalar where a list is
/// expected counts as a list of one, as XML-to-JSON converters produce for a section
/// with one entry.
pub(crate) fn list<'a>(object: &'a Value, key: &str) -> Vec<&'a Value> {
    match object.get(key) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(values)) => values.iter().collect(),
        Some(value) => vec![value],
    }
}

/// Returns the texts of a field that contains one scalar or a list of them (`"mac":
/// "aa:…"` or `"mac": ["aa:…", "bb:…"]`).
pub(crate) fn texts(object: &Value, key: &str) -> Vec<String> {
    list(object, key)
        .into_iter()
        .filter_map(scalar_text)
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn numbers_and_strings_read_alike() {
        let value = json!({"a": 7800, "b": " 7800 ", "c": "x"});
        assert_eq!(number(&value, "a"), Some(7800.0));
        assert_eq!(number(&value, "b"), Some(7800.0));
        assert_eq!(number(&value, "c"), None);
        assert_eq!(text(&value, "a").as_deref(), Some("7800"));
    }

    #[test]
    fn flags_accept_agent_forms() {
        let value = json!({"a": true, "b": "1", "c": 0, "d": "maybe"});
        assert_eq!(flag(&value, "a"), Some(true));
        assert_eq!(flag(&value, "b"), Some(true));
        assert_eq!(flag(&value, "c"), Some(false));
        assert_eq!(flag(&value, "d"), None);
    }

    #[test]
    fn single_value_is_a_list_of_one() {
        let value = json!({"one": "aa", "many": ["aa", "bb"], "none": null});
        assert_eq!(texts(&value, "one"), ["aa"]);
        assert_eq!(texts(&value, "many"), ["aa", "bb"]);
        assert!(texts(&value, "none").is_empty());
    }
}
