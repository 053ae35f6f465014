//! The script plugin runs programs that an administrator allows in a YAML file, such as
//! `plugins/script/allowed.yaml`. Each entry of the file is one action: a program with
//! fixed leading arguments and declared parameters. Parameter values never pass through a
//! shell. Each becomes exactly one argument (one per element of a list), either as
//! `--flag=value` for a parameter the entry names under `flags`, or after `--`, which the
//! plugin always puts between the options and the values. A value such as
//! `; rm -rf /` or `--help` therefore reaches the program as plain data.
//!
//! The argument vector of a run is
//! `executable args... [--flag=value...] -- [value...]`, with flags and values in the
//! order the entry declares its parameters. Absent optional parameters add nothing.
//!
//! The program gets PATH, LANG and HOME from Tend's environment plus the entry's `env`,
//! and nothing else (see [`tend_plugin_api::process`]).

mod config;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value, json};
use tend_plugin_api::process::{ProgramCall, ProgramEnd, ProgramResult, run_program};
use tend_plugin_api::{
    ActionOutcome, ActionRequest, ActionSpec, CancellationToken, Plugin, PluginError,
    validate_params,
};

pub use config::{ConfigError, DEFAULT_OUTPUT_LIMIT, MAX_OUTPUT_LIMIT};
use config::{Entry, parse_config};

/// The script plugin, loaded from its allow-list.
#[derive(Debug, Clone)]
pub struct ScriptPlugin {
    file: PathBuf,
    entries: Vec<Entry>,
    specs: Vec<ActionSpec>,
}

impl ScriptPlugin {
    /// Name of the plugin in the registry and in requests.
    pub const NAME: &'static str = "script";

    /// Loads the allow-list at `file`.
    pub fn load(file: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let file = file.as_ref();
        let text = std::fs::read_to_string(file).map_err(|error| ConfigError {
            file: file.to_path_buf(),
            problems: vec![format!(
                "{}: could not read the script plugin's allow-list: {error}. Check the path, or create the file with an `actions:` list",
                file.display()
            )],
        })?;
        Self::from_yaml(file, &text)
    }

    /// Loads an allow-list from its text; `file` names it in messages.
    pub fn from_yaml(file: impl AsRef<Path>, text: &str) -> Result<Self, ConfigError> {
        let file = file.as_ref();
        let entries = parse_config(file, text)?;
        let specs = entries.iter().map(|entry| entry.spec.clone()).collect();
        Ok(ScriptPlugin {
            file: file.to_path_buf(),
            entries,
            specs,
        })
    }

    /// Path of the allow-list the plugin was loaded from.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Lists entries whose executable is missing or not a file, one sentence each, so a
    /// server can warn at start instead of when a run fails.
    pub fn missing_executables(&self) -> Vec<String> {
        self.entries
            .iter()
            .filter(|entry| !entry.executable.is_file())
            .map(|entry| {
                format!(
                    "{}: entry `{}`: executable {} does not exist or is not a file. Install it or fix `executable`",
                    self.file.display(),
                    entry.spec.name,
                    entry.executable.display()
                )
            })
            .collect()
    }

    /// Validates the parameters of a run and builds the program call, without running it.
    pub fn program_call(
        &self,
        action: &str,
        params: &Map<String, Value>,
    ) -> Result<ProgramCall, PluginError> {
        let entry = self.entry(action)?;
        let params = validate_params(&entry.spec, params)
            .map_err(|errors| PluginError::Failed(errors.to_string()))?;

        let mut call = ProgramCall::new(
            &entry.executable,
            Duration::from_secs(entry.spec.timeout_seconds),
        )
        .args(build_args(entry, &params))
        .output_limit(entry.output_limit);
        if let Some(dir) = &entry.working_dir {
            call = call.working_dir(dir);
        }
        for (name, value) in &entry.env {
            call = call.env(name, value);
        }
        Ok(call)
    }

    fn entry(&self, action: &str) -> Result<&Entry, PluginError> {
        self.entries
            .iter()
            .find(|entry| entry.spec.name == action)
            .ok_or_else(|| PluginError::UnknownAction {
                plugin: Self::NAME.to_owned(),
                action: action.to_owned(),
            })
    }
}

/// Builds the arguments after the program name from validated parameters.
fn build_args(entry: &Entry, params: &Map<String, Value>) -> Vec<String> {
    let mut args = entry.args.clone();
    for name in entry.spec.params.keys() {
        if let (Some(flag), Some(value)) = (entry.flags.get(name), params.get(name)) {
            args.extend(
                argument_values(value)
                    .into_iter()
                    .map(|text| format!("{flag}={text}")),
            );
        }
    }
    args.push(String::from("--"));
    for name in entry.spec.params.keys() {
        if entry.flags.contains_key(name) {
            continue;
        }
        if let Some(value) = params.get(name) {
            args.extend(argument_values(value));
        }
    }
    args
}

/// Turns a validated value into arguments: one per value, one per element of a list.
fn argument_values(value: &Value) -> Vec<String> {
    match value {
        Value::String(text) => vec![text.clone()],
        Value::Number(number) => vec![number.to_string()],
        Value::Bool(flag) => vec![flag.to_string()],
        Value::Array(elements) => elements.iter().flat_map(argument_values).collect(),
        // Validation admits no other JSON types.
        Value::Null | Value::Object(_) => Vec::new(),
    }
}

#[async_trait::async_trait]
impl Plugin for ScriptPlugin {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn description(&self) -> &str {
        "Runs programs that the administrator allows, with parameters passed as arguments"
    }

    fn actions(&self) -> &[ActionSpec] {
        &self.specs
    }

    async fn run(
        &self,
        request: ActionRequest,
        cancel: CancellationToken,
    ) -> Result<ActionOutcome, PluginError> {
        let entry = self.entry(&request.action)?;
        let call = self.program_call(&request.action, &request.params)?;
        let mut argv = vec![call.program.display().to_string()];
        argv.extend(
            call.args
                .iter()
                .map(|arg| arg.to_string_lossy().into_owned()),
        );

        let result = run_program(call, cancel).await;
        if result.end == ProgramEnd::Cancelled {
            return Err(PluginError::Cancelled);
        }
        Ok(outcome(&self.file, entry, argv, &result))
    }
}

fn outcome(file: &Path, entry: &Entry, argv: Vec<String>, result: &ProgramResult) -> ActionOutcome {
    let action = &entry.spec.name;
    let program = entry.executable.display();
    let summary = match &result.end {
        ProgramEnd::NotStarted(reason) => format!(
            "{action}: {reason}. Install the program or fix `executable` of entry `{action}` in {}",
            file.display()
        ),
        ProgramEnd::TimedOut => format!(
            "{action}: {program} timed out after {} s and was stopped",
            entry.spec.timeout_seconds
        ),
        _ => format!("{action}: {program} {}", result.describe_end()),
    };

    let mut output = result.stdout.with_note();
    let stderr = result.stderr.with_note();
    if !stderr.is_empty() {
        if !output.is_empty() && !output.ends_with('\n') {
            output.push('\n');
        }
        output.push_str("--- stderr ---\n");
        output.push_str(&stderr);
    }

    let exit_code = match result.end {
        ProgramEnd::Exited(code) => Some(code),
        _ => None,
    };
    let mut outcome = if result.succeeded() {
        ActionOutcome::succeeded(summary, output)
    } else {
        ActionOutcome::failed(summary, output)
    };
    outcome.data = json!({
        "argv": argv,
        "exit_code": exit_code,
        "timed_out": result.end == ProgramEnd::TimedOut,
        "duration_ms": u64::try_from(result.duration.as_millis()).unwrap_or(u64::MAX),
        "stdout_dropped_bytes": result.stdout.dropped_bytes,
        "stderr_dropped_bytes": result.stderr.dropped_bytes,
    });
    outcome
}
