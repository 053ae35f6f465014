//! Reads plugin configuration from YAML with errors that point at the line, column and
//! field of the problem, such as `12:9: actions[1].timeout_seconds: invalid type: string
//! "ten", expected u64`.

use std::fmt;

use serde::de::DeserializeOwned;

/// A YAML document that could not be read into the expected type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    /// Line of the problem, counted from 1; `None` when the parser reports no position.
    pub line: Option<usize>,
    /// Column of the problem, counted from 1; `None` when the parser reports no position.
    pub column: Option<usize>,
    /// Path of the field, such as `actions[1].timeout_seconds`; empty for the document.
    pub path: String,
    /// The parser's message without position and path.
    pub message: String,
}

impl YamlError {
    /// Returns the index of the list element the error lies in, for a path that starts
    /// with `list[index]`, such as 1 for `actions[1].timeout_seconds` and list `actions`.
    pub fn index_in(&self, list: &str) -> Option<usize> {
        let rest = self.path.strip_prefix(list)?.strip_prefix('[')?;
        let (index, _) = rest.split_once(']')?;
        index.parse().ok()
    }
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let (Some(line), Some(column)) = (self.line, self.column) {
            write!(f, "{line}:{column}: ")?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for YamlError {}

/// Parses one YAML document into `T`.
pub fn parse_yaml<T: DeserializeOwned>(text: &str) -> Result<T, YamlError> {
    if text.trim().is_empty() {
        return Err(YamlError {
            line: None,
            column: None,
            path: String::new(),
            message: String::from("the document is empty"),
        });
    }
    let deserializer = serde_norway::Deserializer::from_str(text);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let location = inner.location();
        let mut message = inner.to_string();

        // serde_norway appends the position and prepends its own copy of the path; both
        // are kept as fields instead.
        if let Some(location) = &location {
            let suffix = format!(" at line {} column {}", location.line(), location.column());
            if let Some(stripped) = message.strip_suffix(&suffix) {
                message = stripped.to_owned();
            }
        }
        // Its path stops at the map that rejected an unknown field, one segment short of
        // serde_path_to_error's, so any leading part of the full path is stripped.
        if let Some((prefix, rest)) = message.split_once(": ")
            && path.starts_with(prefix)
        {
            message = rest.to_owned();
        }

        YamlError {
            line: location.as_ref().map(|l| l.line()),
            column: location.as_ref().map(|l| l.column()),
            path: if path == "." { String::new() } else { path },
            message,
        }
    })
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Config {
        actions: Vec<Entry>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Entry {
        name: String,
        timeout_seconds: u64,
    }

    #[test]
    fn type_error_has_position_and_path() {
        let text = "actions:\n  - name: a\n    timeout_seconds: 5\n  - name: b\n    timeout_seconds: ten\n";

        let error = parse_yaml::<Config>(text).unwrap_err();

        assert_eq!(error.line, Some(5));
        assert_eq!(error.column, Some(22));
        assert_eq!(error.path, "actions[1].timeout_seconds");
        assert_eq!(error.message, "invalid type: string \"ten\", expected u64");
        assert_eq!(error.index_in("actions"), Some(1));
    }

    #[test]
    fn unknown_field_lists_expected_ones() {
        let text = "actions:\n  - name: a\n    timeout: 5\n";

        let error = parse_yaml::<Config>(text).unwrap_err();

        assert_eq!(error.line, Some(3));
        assert_eq!(error.path, "actions[0].timeout");
        assert_eq!(
            error.message,
            "unknown field `timeout`, expected `name` or `timeout_seconds`"
        );
        assert_eq!(error.index_in("actions"), Some(0));
    }

    #[test]
    fn syntax_error_has_position() {
        let error = parse_yaml::<Config>("actions:\n  - name: a\n\t- name: b\n").unwrap_err();

        assert_eq!(error.line, Some(3), "{error}");
        assert!(error.message.contains("found a tab character"), "{error}");
    }

    #[test]
    fn empty_document_is_named() {
        let error = parse_yaml::<Config>(" \n").unwrap_err();

        assert_eq!(error.to_string(), "the document is empty");
    }

    #[test]
    fn comment_only_document_misses_fields() {
        let error = parse_yaml::<Config>("# nothing yet\n").unwrap_err();

        assert_eq!(error.message, "missing field `actions`");
    }
}
