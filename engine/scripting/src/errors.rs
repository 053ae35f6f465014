//! Messages for failed rule runs, written for the process owner who reads the journal.

use std::path::Path;

use rhai::{EvalAltResult, Position};

use crate::Limits;
use crate::sandbox::TIME_LIMIT_TOKEN;

/// Describes a run error: what went wrong, in which function, and where in the file.
pub(crate) fn describe_run_error(error: &EvalAltResult, path: &Path, limits: &Limits) -> String {
    // Errors inside script functions arrive wrapped once per call level. The innermost
    // error describes the failure, and the outermost function is the entry point.
    let mut innermost = error;
    let mut outer_function = None;
    while let EvalAltResult::ErrorInFunctionCall(name, _, inner, _) = innermost {
        outer_function.get_or_insert(name.as_str());
        innermost = inner;
    }

    let description = describe_innermost(innermost, limits);
    let place = location(path, innermost.position());
    match outer_function {
        Some(name) if !name.starts_with("anon$") => {
            format!("{description} (in function `{name}`, {place})")
        }
        _ => format!("{description} ({place})"),
    }
}

fn describe_innermost(error: &EvalAltResult, limits: &Limits) -> String {
    match error {
        EvalAltResult::ErrorTooManyOperations(_) => format!(
            "stopped after the maximum of {} operations: look for a loop that never ends",
            limits.max_operations
        ),
        EvalAltResult::ErrorStackOverflow(_) => format!(
            "stack overflow: function calls nested deeper than the maximum of {} call levels; \
             look for a function that calls itself without end",
            limits.max_call_levels
        ),
        EvalAltResult::ErrorTerminated(token, _)
            if token
                .read_lock::<rhai::ImmutableString>()
                .is_some_and(|text| text.as_str() == TIME_LIMIT_TOKEN) =>
        {
            format!(
                "stopped after running longer than the time limit of {} ms",
                limits.max_run_time.as_millis()
            )
        }
        EvalAltResult::ErrorDataTooLarge(kind, _) => format!(
            "{kind} is over the limit (strings: {} bytes, arrays: {} items, maps: {} properties)",
            limits.max_string_size, limits.max_array_size, limits.max_map_size
        ),
        EvalAltResult::ErrorTooManyVariables(_) => format!(
            "more than the maximum of {} variables are defined at once",
            limits.max_variables
        ),
        EvalAltResult::ErrorArithmetic(message, _) => format!("arithmetic error: {message}"),
        EvalAltResult::ErrorModuleNotFound(path, _) => format!(
            "import \"{path}\" is not allowed: rules cannot load modules or files, so copy \
             the function into the rule"
        ),
        EvalAltResult::ErrorTooManyModules(_) => {
            "import is not allowed: rules cannot load modules or files, so copy the function \
             into the rule"
                .to_owned()
        }
        EvalAltResult::ErrorFunctionNotFound(signature, _) => format!(
            "no function matches {signature}: check the name and the types of the arguments"
        ),
        EvalAltResult::ErrorRuntime(value, _) => match value.read_lock::<rhai::ImmutableString>() {
            Some(text) => text.to_string(),
            None => format!("the rule threw {value}"),
        },
        // Rhai appends the position itself, which `location` already gives.
        other => other
            .to_string()
            .trim_end_matches(&position_suffix(other.position()))
            .to_owned(),
    }
}

fn position_suffix(position: Position) -> String {
    if position.is_none() {
        String::new()
    } else {
        format!(" ({position})")
    }
}

/// Formats `path:line:column`, or the bare path when the error has no position.
fn location(path: &Path, position: Position) -> String {
    match (position.line(), position.position()) {
        (Some(line), Some(column)) => format!("{}:{line}:{column}", path.display()),
        (Some(line), None) => format!("{}:{line}", path.display()),
        _ => path.display().to_string(),
    }
}
