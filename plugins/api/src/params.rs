//! Checks the parameters of a run against the action's declaration, and checks the
//! declarations themselves for the mistakes a plugin author can make.
//!
//! [`validate_params`] is what Tend runs before it queues a run, and what a plugin may run
//! again before it passes values to a program. [`check_spec`] runs when a plugin loads.

use std::collections::HashSet;
use std::fmt;

use serde_json::{Map, Value};

use crate::{ActionSpec, ParamSpec, ParamType};

/// Values longer than this many characters are shortened in messages.
const SHOWN_VALUE_CHARS: usize = 60;

/// Maximum length of the name of an action, parameter or role, in characters.
const MAX_NAME_CHARS: usize = 64;

/// One invalid parameter of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamError {
    /// Name of the parameter, with the element index for an element of a list
    /// (`hosts[2]`).
    pub param: String,
    /// The given value as JSON, shortened when long; `None` when the parameter is missing.
    pub value: Option<String>,
    /// The problem with the value, such as `is text, not an integer`.
    pub problem: String,
    /// The fix for the caller, such as `Send the number without quotes, as 42`.
    pub fix: String,
}

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(value) => write!(
                f,
                "parameter `{}` (value {value}): {}. {}",
                self.param, self.problem, self.fix
            ),
            None => write!(
                f,
                "parameter `{}`: {}. {}",
                self.param, self.problem, self.fix
            ),
        }
    }
}

/// Every invalid parameter of a run, so a form can mark all of them at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamErrors {
    pub action: String,
    pub errors: Vec<ParamError>,
}

impl ParamErrors {
    /// Finds the error of one parameter, such as `path` or `hosts[2]`.
    pub fn get(&self, param: &str) -> Option<&ParamError> {
        self.errors.iter().find(|error| error.param == param)
    }
}

impl fmt::Display for ParamErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.errors.len();
        let noun = if count == 1 {
            "parameter"
        } else {
            "parameters"
        };
        write!(f, "{count} invalid {noun} for action `{}`:", self.action)?;
        for error in &self.errors {
            write!(f, "\n- {error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ParamErrors {}

/// Checks the given parameters of a run of `spec` and returns them with defaults filled in,
/// in the order the spec declares them.
///
/// A `null` value counts as not given, so a form may send empty optional fields as `null`.
/// A parameter that is neither given nor has a default is left out of the result, or
/// reported as missing when it is required.
pub fn validate_params(
    spec: &ActionSpec,
    given: &Map<String, Value>,
) -> Result<Map<String, Value>, ParamErrors> {
    let mut errors = Vec::new();
    let mut valid = Map::new();

    for (name, param) in &spec.params {
        let value = given.get(name).filter(|value| !value.is_null());
        match (value, &param.default) {
            (Some(value), _) => {
                let before = errors.len();
                check_value(name, param, value, &mut errors);
                if errors.len() == before {
                    valid.insert(name.clone(), value.clone());
                }
            }
            (None, Some(default)) => {
                let mut problems = Vec::new();
                check_value(name, param, default, &mut problems);
                if problems.is_empty() {
                    valid.insert(name.clone(), default.clone());
                }
                for problem in problems {
                    errors.push(ParamError {
                        problem: format!("the plugin's default {}", problem.problem),
                        fix: format!(
                            "Give a value, and ask the plugin's author to fix the default of `{name}`"
                        ),
                        ..problem
                    });
                }
            }
            (None, None) if param.required => errors.push(ParamError {
                param: name.clone(),
                value: None,
                problem: String::from("is missing"),
                fix: format!("Give {}", describe_expected(param)),
            }),
            (None, None) => {}
        }
    }

    for (name, value) in given {
        if spec.params.contains_key(name) {
            continue;
        }
        let fix = match closest_name(name, spec.params.keys().map(String::as_str)) {
            Some(near) => format!("Did you mean `{near}`?"),
            None if spec.params.is_empty() => {
                String::from("Remove it: the action takes no parameters")
            }
            None => format!(
                "Remove it. The action takes {}",
                quoted_list(spec.params.keys().map(String::as_str))
            ),
        };
        errors.push(ParamError {
            param: name.clone(),
            value: Some(show_value(value)),
            problem: format!("is not a parameter of action `{}`", spec.name),
            fix,
        });
    }

    if errors.is_empty() {
        Ok(valid)
    } else {
        Err(ParamErrors {
            action: spec.name.clone(),
            errors,
        })
    }
}

/// Checks one value against its declaration and pushes one error per problem (one per bad
/// element of a list).
fn check_value(name: &str, param: &ParamSpec, value: &Value, errors: &mut Vec<ParamError>) {
    let mut push = |param_name: String, shown: &Value, problem: String, fix: String| {
        errors.push(ParamError {
            param: param_name,
            value: Some(show_value(shown)),
            problem,
            fix,
        });
    };

    match param.kind {
        ParamType::String | ParamType::Text => {
            let Value::String(text) = value else {
                let (problem, fix) = not_text(value);
                return push(name.to_owned(), value, problem, fix);
            };
            if let Err((problem, fix)) = check_text(param, text) {
                push(name.to_owned(), value, problem, fix);
            }
        }
        ParamType::Integer => {
            if let Err((problem, fix)) = check_integer(value) {
                push(name.to_owned(), value, problem, fix);
            }
        }
        ParamType::Number => {
            if !value.is_number() {
                let fix = match value.as_str().and_then(|s| s.trim().parse::<f64>().ok()) {
                    Some(_) => String::from("Send the number without quotes"),
                    None => String::from("Send a number, such as 2.5"),
                };
                push(
                    name.to_owned(),
                    value,
                    format!("is {}, not a number", json_kind(value)),
                    fix,
                );
            }
        }
        ParamType::Boolean => {
            if !value.is_boolean() {
                let fix = match value.as_str() {
                    Some("true" | "false") => String::from("Send true or false without quotes"),
                    _ => String::from("Send true or false"),
                };
                push(
                    name.to_owned(),
                    value,
                    format!("is {}, not true or false", json_kind(value)),
                    fix,
                );
            }
        }
        ParamType::Enum => {
            let allowed = quoted_list(param.values.iter().map(String::as_str));
            match value {
                Value::String(text) if param.values.contains(text) => {}
                Value::String(text) => {
                    let fix = match closest_name(text, param.values.iter().map(String::as_str)) {
                        Some(near) => format!("Did you mean `{near}`? Allowed: {allowed}"),
                        None => format!("Use one of {allowed}"),
                    };
                    push(
                        name.to_owned(),
                        value,
                        String::from("is not an allowed value"),
                        fix,
                    );
                }
                other => push(
                    name.to_owned(),
                    value,
                    format!("is {}, not one of the allowed values", json_kind(other)),
                    format!("Send one of {allowed} as a string"),
                ),
            }
        }
        ParamType::List => {
            let Value::Array(elements) = value else {
                return push(
                    name.to_owned(),
                    value,
                    format!("is {}, not a list", json_kind(value)),
                    String::from("Send a JSON array of strings, such as [\"a\", \"b\"]"),
                );
            };
            for (index, element) in elements.iter().enumerate() {
                let element_name = format!("{name}[{index}]");
                let checked = match element {
                    Value::String(text) => check_line(param, text),
                    other => Err(not_text(other)),
                };
                if let Err((problem, fix)) = checked {
                    push(element_name, element, problem, fix);
                }
            }
        }
    }
}

type Problem = (String, String);

fn not_text(value: &Value) -> Problem {
    let fix = match value {
        Value::Number(_) | Value::Bool(_) => format!("Send it in quotes, as \"{value}\""),
        _ => String::from("Send a JSON string"),
    };
    (format!("is {}, not text", json_kind(value)), fix)
}

fn check_text(param: &ParamSpec, text: &str) -> Result<(), Problem> {
    match param.kind {
        ParamType::Text => check_lines(param, text),
        _ => check_line(param, text),
    }
}

/// Checks one line of text: no line breaks and no control characters other than tab.
fn check_line(param: &ParamSpec, text: &str) -> Result<(), Problem> {
    for (position, c) in text.chars().enumerate() {
        if c == '\n' || c == '\r' {
            return Err((
                format!(
                    "contains a line break at character {}, but the parameter holds one line",
                    position + 1
                ),
                String::from("Remove the line break"),
            ));
        }
        if c.is_control() && c != '\t' {
            return Err(control_character(c, position));
        }
    }
    check_length(param, text)
}

/// Checks a text of several lines: line breaks (`\n` or `\r\n`) and tabs are allowed, other
/// control characters are not.
fn check_lines(param: &ParamSpec, text: &str) -> Result<(), Problem> {
    let mut chars = text.chars().enumerate().peekable();
    while let Some((position, c)) = chars.next() {
        let allowed = match c {
            '\n' | '\t' => true,
            '\r' => matches!(chars.peek(), Some((_, '\n'))),
            other => !other.is_control(),
        };
        if !allowed {
            return Err(control_character(c, position));
        }
    }
    check_length(param, text)
}

fn control_character(c: char, position: usize) -> Problem {
    (
        format!(
            "contains the control character U+{:04X} at character {}",
            u32::from(c),
            position + 1
        ),
        String::from("Remove it"),
    )
}

fn check_length(param: &ParamSpec, text: &str) -> Result<(), Problem> {
    let Some(max) = param.max_length else {
        return Ok(());
    };
    let length = text.chars().count();
    if length > max {
        return Err((
            format!("has {length} characters, more than the maximum of {max}"),
            format!("Shorten it to at most {max} characters"),
        ));
    }
    Ok(())
}

fn check_integer(value: &Value) -> Result<(), Problem> {
    match value {
        Value::Number(number) if number.is_i64() => Ok(()),
        Value::Number(number) if number.is_u64() => Err((
            String::from("is too large"),
            format!("Send a whole number no larger than {}", i64::MAX),
        )),
        Value::Number(number) => {
            let fix = match number.as_f64() {
                Some(float) if float.fract() == 0.0 && float.abs() < 9.0e15 => {
                    format!("Send it without the decimal point, as {float:.0}")
                }
                _ => String::from("Send a whole number, such as 3"),
            };
            Err((String::from("is not a whole number"), fix))
        }
        Value::String(text) if text.trim().parse::<i64>().is_ok() => Err((
            String::from("is text, not an integer"),
            format!("Send the number without quotes, as {}", text.trim()),
        )),
        other => Err((
            format!("is {}, not an integer", json_kind(other)),
            String::from("Send a whole number, such as 3"),
        )),
    }
}

/// Describes what a parameter expects, for the fix of a missing parameter.
fn describe_expected(param: &ParamSpec) -> String {
    match param.kind {
        ParamType::String => String::from("one line of text"),
        ParamType::Text => String::from("a text"),
        ParamType::Integer => String::from("a whole number"),
        ParamType::Number => String::from("a number"),
        ParamType::Boolean => String::from("true or false"),
        ParamType::Enum => format!(
            "one of {}",
            quoted_list(param.values.iter().map(String::as_str))
        ),
        ParamType::List => String::from("a list of strings"),
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(number) if number.is_f64() => "a number with a fraction",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Shows a value as JSON for a message. JSON escapes control characters, so a value cannot
/// break the line it is shown on. Long values keep their head and give their length.
pub fn show_value(value: &Value) -> String {
    let json = value.to_string();
    if json.chars().count() <= SHOWN_VALUE_CHARS {
        return json;
    }
    let head: String = json.chars().take(SHOWN_VALUE_CHARS).collect();
    match value {
        Value::String(text) => format!("{head}… ({} characters)", text.chars().count()),
        _ => format!("{head}… ({} characters of JSON)", json.chars().count()),
    }
}

/// Finds the candidate closest to a mistyped name, if one is close enough to be a typo or
/// an abbreviation. A candidate is close when at most a third of the letters (at least
/// two) differ, or when its Jaro-Winkler similarity, which favours a shared start, is 0.8
/// or more.
fn closest_name<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let typed = name.to_lowercase();
    let limit = (typed.chars().count() / 3).max(2);
    candidates
        .filter_map(|candidate| {
            let candidate_lower = candidate.to_lowercase();
            let distance = strsim::levenshtein(&typed, &candidate_lower);
            let similarity = strsim::jaro_winkler(&typed, &candidate_lower);
            (distance <= limit || similarity >= 0.8).then_some((similarity, candidate))
        })
        .max_by(|(left, _), (right, _)| left.total_cmp(right))
        .map(|(_, candidate)| candidate)
}

fn quoted_list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks a declared action for mistakes of its author and returns one sentence per problem,
/// each naming the action and the fix. An empty list means the spec is usable.
pub fn check_spec(spec: &ActionSpec) -> Vec<String> {
    let mut problems = Vec::new();
    let action = &spec.name;

    if let Err(reason) = check_name(action) {
        problems.push(format!(
            "action name `{action}` is invalid: {reason}. Use lowercase letters, digits and underscores, such as `{}`",
            suggest_name(action)
        ));
    }
    if spec.label.trim().is_empty() {
        problems.push(format!(
            "action `{action}` has no label. Add a short `label` for its button, such as \"Restore file\""
        ));
    }
    if spec.timeout_seconds == 0 {
        problems.push(format!(
            "action `{action}` has timeout_seconds 0. Set how many seconds a run may take, such as 60"
        ));
    }

    let mut roles = HashSet::new();
    for role in &spec.roles {
        if let Err(reason) = check_name(role) {
            problems.push(format!(
                "action `{action}`: role `{role}` is invalid: {reason}. Write a role name such as `technician`"
            ));
        }
        if !roles.insert(role) {
            problems.push(format!(
                "action `{action}` lists role `{role}` twice. Remove one"
            ));
        }
    }

    for (name, param) in &spec.params {
        check_param_spec(action, name, param, &mut problems);
    }
    problems
}

fn check_param_spec(action: &str, name: &str, param: &ParamSpec, problems: &mut Vec<String>) {
    let at = format!("action `{action}`, parameter `{name}`");

    if let Err(reason) = check_name(name) {
        problems.push(format!(
            "{at}: the name is invalid: {reason}. Use lowercase letters, digits and underscores, such as `{}`",
            suggest_name(name)
        ));
    }

    let kind = type_name(param.kind);
    if param.kind == ParamType::Enum {
        if param.values.is_empty() {
            problems.push(format!(
                "{at} is an `enum` without values. List the allowed values under `values`"
            ));
        }
        let mut seen = HashSet::new();
        for value in &param.values {
            if value.is_empty() {
                problems.push(format!(
                    "{at} allows the empty value \"\". Remove it and leave the parameter optional instead"
                ));
            }
            if !seen.insert(value) {
                problems.push(format!("{at} lists the value `{value}` twice. Remove one"));
            }
        }
    } else if !param.values.is_empty() {
        problems.push(format!(
            "{at} is of type `{kind}` but lists `values`, which only `enum` parameters use. Remove them or set `type: enum`"
        ));
    }

    match (param.max_length, param.kind) {
        (Some(0), _) => problems.push(format!(
            "{at} has max_length 0, which rejects every value. Set the maximum number of characters, or remove max_length"
        )),
        (Some(_), ParamType::String | ParamType::Text | ParamType::List) | (None, _) => {}
        (Some(_), _) => problems.push(format!(
            "{at} is of type `{kind}` but sets max_length, which only `string`, `text` and `list` parameters use. Remove it"
        )),
    }

    if let Some(default) = &param.default {
        // YAML and JSON read `default: null` as no default, so only a spec built in code
        // can hold `Some(Value::Null)`.
        if default.is_null() {
            problems.push(format!(
                "{at} has the default null. Set `default` to `None` to leave the parameter without one"
            ));
            return;
        }
        let mut errors = Vec::new();
        check_value(name, param, default, &mut errors);
        for error in errors {
            problems.push(format!(
                "{at}: the default {} {}. Write a default of type `{kind}` or remove it",
                error.value.unwrap_or_default(),
                error.problem
            ));
        }
    }
}

/// Checks a list of actions, as a plugin declares them: each spec, and that no two actions
/// share a name.
pub fn check_actions(actions: &[ActionSpec]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut names = HashSet::new();
    for spec in actions {
        if !names.insert(spec.name.as_str()) {
            problems.push(format!(
                "action `{}` is declared twice. Rename or remove one of them",
                spec.name
            ));
        }
        problems.extend(check_spec(spec));
    }
    problems
}

fn type_name(kind: ParamType) -> &'static str {
    match kind {
        ParamType::String => "string",
        ParamType::Text => "text",
        ParamType::Integer => "integer",
        ParamType::Number => "number",
        ParamType::Boolean => "boolean",
        ParamType::Enum => "enum",
        ParamType::List => "list",
    }
}

/// Checks a name of an action, parameter or role: a lowercase letter, then lowercase
/// letters, digits and underscores, at most 64 characters.
pub fn check_name(name: &str) -> Result<(), String> {
    let Some(first) = name.chars().next() else {
        return Err(String::from("it is empty"));
    };
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(format!("it is longer than {MAX_NAME_CHARS} characters"));
    }
    if !first.is_ascii_lowercase() {
        return Err(format!("it starts with `{first}`, not a lowercase letter"));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
    {
        return Err(format!("it contains `{}`", bad.escape_debug()));
    }
    Ok(())
}

/// Turns a bad name into a valid one, for the fix of a message: `Disk Usage` becomes
/// `disk_usage`.
fn suggest_name(name: &str) -> String {
    let mut suggestion = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            suggestion.push(c.to_ascii_lowercase());
        } else if !suggestion.is_empty() && !suggestion.ends_with('_') {
            suggestion.push('_');
        }
    }
    let suggestion = suggestion.trim_matches('_');
    let suggestion: String = suggestion.chars().take(MAX_NAME_CHARS).collect();
    match suggestion.chars().next() {
        None => String::from("restore_file"),
        Some(first) if first.is_ascii_digit() => format!("n_{suggestion}"),
        Some(_) => suggestion,
    }
}

#[cfg(test)]
#[path = "params_tests.rs"]
mod tests;
