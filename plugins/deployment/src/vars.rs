//! The variables a run passes to a playbook, and the file that carries them.
//!
//! Ansible templates the values of extra variables when a task uses them: a value
//! `{{ lookup('pipe', 'id') }}` passed as plain JSON runs `id` on the controller. Values
//! from records and runs are data, so [`extra_vars_yaml`] writes every string with
//! Ansible's `!unsafe` YAML tag, which marks it as never to be templated (Ansible's
//! documentation, "Advanced playbook syntax: Unsafe or raw strings"). The file is read
//! with `--extra-vars=@FILE`. It is pure ASCII: every other character is written as an
//! escape, so no byte of a value can end the string or the document.

use indexmap::IndexMap;
use serde_json::Value;
use tend_plugin_api::RecordContext;

/// The part of a record that fills a variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordSource {
    /// The record's number, such as `INC0000012`.
    Number,
    /// The record's process, such as `incident`.
    Process,
    Title,
    State,
    /// One field, with its JSON value.
    Field(String),
    /// The name of the first configuration item the record names.
    Ci,
    /// The names of all configuration items the record names, as a list.
    Cis,
}

impl RecordSource {
    /// Reads a source as the configuration writes it: `number`, `process`, `title`,
    /// `state`, `fields.NAME`, `ci` or `cis`. The error completes the sentence
    /// "source `x` ...".
    pub fn parse(text: &str) -> Result<RecordSource, String> {
        match text {
            "number" => Ok(RecordSource::Number),
            "process" => Ok(RecordSource::Process),
            "title" => Ok(RecordSource::Title),
            "state" => Ok(RecordSource::State),
            "ci" => Ok(RecordSource::Ci),
            "cis" => Ok(RecordSource::Cis),
            _ => match text.strip_prefix("fields.") {
                Some(field) if !field.is_empty() => Ok(RecordSource::Field(field.to_owned())),
                _ => Err(String::from(
                    "is unknown. Use `number`, `process`, `title`, `state`, `ci` (the first CI's name), `cis` (all CI names) or `fields.NAME`",
                )),
            },
        }
    }

    /// Returns the value of the source in `record`, or `None` when the record lacks it.
    pub fn value(&self, record: &RecordContext) -> Option<Value> {
        let ci_name = |ci: &Value| ci.get("name").and_then(Value::as_str).map(Value::from);
        match self {
            RecordSource::Number => Some(Value::from(record.number.clone())),
            RecordSource::Process => Some(Value::from(record.process.clone())),
            RecordSource::Title => Some(Value::from(record.title.clone())),
            RecordSource::State => Some(Value::from(record.state.clone())),
            RecordSource::Field(name) => record.fields.get(name).filter(|v| !v.is_null()).cloned(),
            RecordSource::Ci => record.cis.first().and_then(ci_name),
            RecordSource::Cis => {
                let names: Vec<Value> = record.cis.iter().filter_map(ci_name).collect();
                (!names.is_empty()).then_some(Value::Array(names))
            }
        }
    }
}

/// Writes variables as one YAML flow mapping whose strings, keys included, carry the
/// `!unsafe` tag.
pub fn extra_vars_yaml(vars: &IndexMap<String, Value>) -> String {
    let mut out = String::from("{");
    for (index, (name, value)) in vars.iter().enumerate() {
        if index > 0 {
            out.push_str(", ");
        }
        quoted(name, &mut out);
        out.push_str(": ");
        write_value(value, &mut out);
    }
    out.push_str("}\n");
    out
}

fn write_value(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(flag) => out.push_str(if *flag { "true" } else { "false" }),
        Value::Number(number) if number.is_f64() => {
            // YAML 1.1, which Ansible's parser reads, takes `1e+20` without a dot as a
            // string, so floats carry an explicit tag.
            out.push_str("!!float ");
            quoted_plain(&number.to_string(), out);
        }
        Value::Number(number) => out.push_str(&number.to_string()),
        Value::String(text) => {
            out.push_str("!unsafe ");
            quoted_plain(text, out);
        }
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push_str(", ");
                }
                write_value(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (index, (key, item)) in map.iter().enumerate() {
                if index > 0 {
                    out.push_str(", ");
                }
                quoted(key, out);
                out.push_str(": ");
                write_value(item, out);
            }
            out.push('}');
        }
    }
}

/// Writes a key as an `!unsafe` double-quoted scalar.
fn quoted(text: &str, out: &mut String) {
    out.push_str("!unsafe ");
    quoted_plain(text, out);
}

/// Writes a YAML double-quoted scalar in ASCII: printable ASCII as it is, apart from `"`
/// and `\`, and every other character as a `\x`, `\u` or `\U` escape.
fn quoted_plain(text: &str, out: &mut String) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            _ => {
                let code = u32::from(c);
                let escape = if code <= 0xFF {
                    format!("\\x{code:02X}")
                } else if code <= 0xFFFF {
                    format!("\\u{code:04X}")
                } else {
                    format!("\\U{code:08X}")
                };
                out.push_str(&escape);
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn record() -> RecordContext {
        RecordContext {
            number: String::from("INC0000042"),
            process: String::from("incident"),
            title: String::from("Share is full"),
            state: String::from("in_progress"),
            fields: json!({"service": "files", "empty": null, "hosts": ["a", "b"]}),
            cis: vec![
                json!({"name": "fs01"}),
                json!({"name": "fs02", "class": "server"}),
            ],
        }
    }

    #[test]
    fn sources_read_the_record() {
        let record = record();
        let value = |source: &str| RecordSource::parse(source).unwrap().value(&record);

        assert_eq!(value("number"), Some(json!("INC0000042")));
        assert_eq!(value("process"), Some(json!("incident")));
        assert_eq!(value("title"), Some(json!("Share is full")));
        assert_eq!(value("state"), Some(json!("in_progress")));
        assert_eq!(value("fields.service"), Some(json!("files")));
        assert_eq!(value("fields.hosts"), Some(json!(["a", "b"])));
        assert_eq!(value("fields.empty"), None);
        assert_eq!(value("fields.absent"), None);
        assert_eq!(value("ci"), Some(json!("fs01")));
        assert_eq!(value("cis"), Some(json!(["fs01", "fs02"])));
    }

    #[test]
    fn unknown_sources_are_rejected() {
        for source in ["fields.", "field.service", "cis.0", "", "Number"] {
            assert!(RecordSource::parse(source).is_err(), "{source}");
        }
    }

    #[test]
    fn every_string_is_tagged_unsafe() {
        let mut vars = IndexMap::new();
        vars.insert(String::from("note"), json!("{{ lookup('pipe','id') }}"));
        vars.insert(String::from("count"), json!(3));
        vars.insert(String::from("ratio"), json!(2.5));
        vars.insert(String::from("ok"), json!(true));
        vars.insert(String::from("none"), Value::Null);
        vars.insert(
            String::from("nested"),
            json!({"k": ["x", {"{{ k }}": "y"}]}),
        );

        assert_eq!(
            extra_vars_yaml(&vars),
            concat!(
                r#"{!unsafe "note": !unsafe "{{ lookup('pipe','id') }}", !unsafe "count": 3, "#,
                r#"!unsafe "ratio": !!float "2.5", !unsafe "ok": true, !unsafe "none": null, "#,
                r#"!unsafe "nested": {!unsafe "k": [!unsafe "x", {!unsafe "{{ k }}": !unsafe "y"}]}}"#,
                "\n"
            )
        );
    }

    #[test]
    fn strings_are_escaped_to_ascii() {
        let mut out = String::new();
        quoted_plain("a\"b\\c\nd\té€😀\u{85}", &mut out);

        assert_eq!(out, r#""a\"b\\c\x0Ad\x09\xE9\u20AC\U0001F600\x85""#);
        assert!(out.is_ascii());
    }
}
