//! External plugins: programs in any language, described by a manifest
//! `<plugins dir>/<name>/plugin.yaml`.
//!
//! A run starts the plugin's executable with no arguments, in the manifest's directory and
//! with only PATH, LANG and HOME from Tend's environment. Tend writes one JSON
//! [`ActionRequest`] and a newline to its standard input, then closes it. The program
//! writes exactly one JSON [`ActionOutcome`] to standard output (whitespace around it is
//! allowed) and exits with code 0. Standard error is for the program's own log lines.
//!
//! Everything else becomes a failed outcome whose summary states what went wrong and whose
//! output keeps standard error: no JSON, JSON that is not an outcome, more than one value,
//! more output than the manifest's limit, a non-zero exit code, a signal, a timeout.
//! docs/plugins.md describes the protocol for plugin authors.

mod manifest;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use tend_plugin_api::process::{ProgramCall, ProgramEnd, ProgramResult, run_program};
use tend_plugin_api::{
    ActionOutcome, ActionRequest, ActionSpec, CancellationToken, OutcomeStatus, Plugin,
    PluginError, validate_params,
};

pub use manifest::{DEFAULT_OUTPUT_LIMIT, MANIFEST_FILE, MAX_OUTPUT_LIMIT, ManifestError};
use manifest::{Manifest, load_manifest};

/// Characters of standard output shown in a failed outcome when it was not a valid outcome.
const STDOUT_SHOWN_ON_FAILURE: usize = 4096;

/// An external plugin, loaded from its manifest.
#[derive(Debug, Clone)]
pub struct ExternalPlugin {
    manifest: Manifest,
}

impl ExternalPlugin {
    /// Loads and checks one manifest: its fields, its actions and its executable, which
    /// must be an executable file inside the manifest's directory.
    pub fn load(manifest_path: impl AsRef<Path>) -> Result<ExternalPlugin, ManifestError> {
        let manifest = load_manifest(manifest_path.as_ref())?;
        Ok(ExternalPlugin { manifest })
    }

    /// Loads every `*/plugin.yaml` one level below `plugins_dir`, in the order of the
    /// directory names. Directories without a manifest are skipped. A manifest that fails
    /// to load, or whose plugin name an earlier one already uses, becomes an error and the
    /// others still load.
    pub fn load_dir(plugins_dir: impl AsRef<Path>) -> (Vec<ExternalPlugin>, Vec<ManifestError>) {
        let plugins_dir = plugins_dir.as_ref();
        let mut plugins: Vec<ExternalPlugin> = Vec::new();
        let mut errors = Vec::new();

        let mut manifests = match manifest_paths(plugins_dir) {
            Ok(paths) => paths,
            Err(error) => return (plugins, vec![error]),
        };
        manifests.sort();

        for path in manifests {
            let plugin = match ExternalPlugin::load(&path) {
                Ok(plugin) => plugin,
                Err(error) => {
                    errors.push(error);
                    continue;
                }
            };
            let existing = plugins.iter().find(|other| other.name() == plugin.name());
            if let Some(other) = existing {
                errors.push(ManifestError::single(
                    &path,
                    format!(
                        "{}: plugin name `{}` is already used by {}. Rename one of the plugins",
                        path.display(),
                        plugin.name(),
                        other.manifest_path().display()
                    ),
                ));
                continue;
            }
            plugins.push(plugin);
        }
        (plugins, errors)
    }

    pub fn manifest_path(&self) -> &Path {
        &self.manifest.file
    }

    /// Absolute path of the program a run starts.
    pub fn executable(&self) -> &Path {
        &self.manifest.executable
    }

    fn spec(&self, action: &str) -> Result<&ActionSpec, PluginError> {
        self.manifest
            .actions
            .iter()
            .find(|spec| spec.name == action)
            .ok_or_else(|| PluginError::UnknownAction {
                plugin: self.manifest.name.clone(),
                action: action.to_owned(),
            })
    }

    /// Describes the run for summaries, such as `disk_report/free_space`.
    fn run_name(&self, action: &str) -> String {
        format!("{}/{action}", self.manifest.name)
    }

    fn interpret(&self, spec: &ActionSpec, result: ProgramResult) -> ActionOutcome {
        let run = self.run_name(&spec.name);
        let stderr = result.stderr.with_note();
        let end = result.describe_end();

        match &result.end {
            ProgramEnd::NotStarted(reason) => {
                return ActionOutcome::failed(
                    format!(
                        "{run}: {reason}. Check `executable` in {}",
                        self.manifest.file.display()
                    ),
                    stderr,
                );
            }
            ProgramEnd::TimedOut => {
                return ActionOutcome::failed(
                    format!(
                        "{run} timed out after {} s and was stopped",
                        spec.timeout_seconds
                    ),
                    with_stdout(stderr, &result),
                );
            }
            _ => {}
        }

        if result.stdout.dropped_bytes > 0 || result.stdout.left_open {
            return ActionOutcome::failed(
                format!(
                    "{run} printed more than {} bytes on stdout, so its outcome was cut, and it {end}. Keep the outcome smaller, or raise output_limit_bytes in {}",
                    self.manifest.output_limit,
                    self.manifest.file.display()
                ),
                with_stdout(stderr, &result),
            );
        }
        let stdout = result.stdout.text.trim();
        if stdout.is_empty() {
            return ActionOutcome::failed(
                format!("{run} {end} and printed no outcome on stdout"),
                stderr,
            );
        }
        let value: Value = match serde_json::from_str(stdout) {
            Ok(value) => value,
            Err(error) => {
                return ActionOutcome::failed(
                    format!("{run} {end}, and its stdout is not one JSON outcome: {error}"),
                    with_stdout(stderr, &result),
                );
            }
        };
        let mut outcome: ActionOutcome = match serde_json::from_value(value) {
            Ok(outcome) => outcome,
            Err(error) => {
                return ActionOutcome::failed(
                    format!("{run} {end}, and its stdout is JSON but not an outcome: {error}"),
                    with_stdout(stderr, &result),
                );
            }
        };

        if !result.succeeded() && outcome.status == OutcomeStatus::Succeeded {
            outcome.status = OutcomeStatus::Failed;
            outcome.summary = format!(
                "{run} {end}, although its outcome reports success: {}",
                outcome.summary
            );
            if !stderr.is_empty() {
                append_section(&mut outcome.output, "stderr", &stderr);
            }
        } else if outcome.status == OutcomeStatus::Failed && !stderr.is_empty() {
            append_section(&mut outcome.output, "stderr", &stderr);
        }
        outcome
    }
}

fn manifest_paths(plugins_dir: &Path) -> Result<Vec<PathBuf>, ManifestError> {
    let entries = std::fs::read_dir(plugins_dir).map_err(|error| {
        ManifestError::single(
            plugins_dir,
            format!(
                "{}: could not read the plugins directory: {error}. Check the path",
                plugins_dir.display()
            ),
        )
    })?;
    let mut paths = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path().join(MANIFEST_FILE);
        if path.is_file() {
            paths.push(path);
        }
    }
    Ok(paths)
}

/// Adds the head of stdout to a failure's output, so the plugin's author can read what
/// the program printed instead of an outcome.
fn with_stdout(mut output: String, result: &ProgramResult) -> String {
    let stdout = &result.stdout.text;
    if stdout.trim().is_empty() {
        return output;
    }
    let mut head: String = stdout.chars().take(STDOUT_SHOWN_ON_FAILURE).collect();
    if head.len() < stdout.len() || result.stdout.dropped_bytes > 0 {
        head.push_str("\n[stdout shortened]");
    }
    append_section(&mut output, "stdout", &head);
    output
}

fn append_section(output: &mut String, name: &str, text: &str) {
    if !output.is_empty() && !output.ends_with('\n') {
        output.push('\n');
    }
    output.push_str(&format!("--- {name} ---\n"));
    output.push_str(text);
}

#[async_trait::async_trait]
impl Plugin for ExternalPlugin {
    fn name(&self) -> &str {
        &self.manifest.name
    }

    fn description(&self) -> &str {
        &self.manifest.description
    }

    fn actions(&self) -> &[ActionSpec] {
        &self.manifest.actions
    }

    async fn run(
        &self,
        mut request: ActionRequest,
        cancel: CancellationToken,
    ) -> Result<ActionOutcome, PluginError> {
        let spec = self.spec(&request.action)?;
        request.params = validate_params(spec, &request.params)
            .map_err(|errors| PluginError::Failed(errors.to_string()))?;
        request.plugin = self.manifest.name.clone();

        let mut input = serde_json::to_vec(&request).map_err(|error| {
            PluginError::Failed(format!("could not encode the request as JSON: {error}"))
        })?;
        input.push(b'\n');

        let call = ProgramCall::new(
            &self.manifest.executable,
            Duration::from_secs(spec.timeout_seconds),
        )
        .stdin(input)
        .working_dir(&self.manifest.dir)
        .output_limit(self.manifest.output_limit);

        let result = run_program(call, cancel).await;
        if result.end == ProgramEnd::Cancelled {
            return Err(PluginError::Cancelled);
        }
        Ok(self.interpret(spec, result))
    }
}
