//! The recovery plugin restores files and directories from restic repositories. Its
//! configuration file, such as `plugins/recovery/recovery.yaml`, names the repositories,
//! where each reads its password, and the directories that restores may write into.
//!
//! Two actions:
//!
//! - `restore_file` lists the path in the snapshot with `restic ls --json`, checks that
//!   every file of it lands inside an allowed target, restores it with
//!   `restic restore ID --target T --include=PATH`, and checks that every file is back
//!   with its size. The summary names the path, the snapshot's id and time, and the
//!   count of files and bytes.
//! - `list_snapshots` lists the snapshots of a repository with `restic snapshots --json`,
//!   newest first, optionally only those that cover a path.
//!
//! restic starts from an argument vector, never through a shell, with only PATH, LANG,
//! HOME and the variables a repository lists (see [`tend_plugin_api::process`]). The
//! password reaches restic as `--password-file` or as `RESTIC_PASSWORD`, never as an
//! argument, so it appears in no outcome.

mod config;
mod paths;
mod restic;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use serde_json::{Map, Value, json};
use tend_plugin_api::process::{ProgramCall, ProgramEnd, ProgramResult, run_program};
use tend_plugin_api::{
    ActionOutcome, ActionRequest, ActionSpec, CancellationToken, ParamError, ParamErrors,
    ParamSpec, ParamType, Plugin, PluginError, check_actions, validate_params,
};

pub use config::{
    Config, ConfigError, DEFAULT_OUTPUT_LIMIT, DEFAULT_RESTIC, DEFAULT_TIMEOUT_SECONDS,
    MAX_OUTPUT_LIMIT, PasswordSource, Repository,
};
pub use paths::{Target, include_pattern};
use restic::{Node, Snapshot};

/// Bytes of `restic ls --json` read to find the files of a path: about 100,000 files.
const LISTING_LIMIT: usize = 32 * 1024 * 1024;

/// Maximum restored paths listed in an outcome's `data`. The count covers all of them.
const LISTED_PATHS: usize = 1000;

/// Maximum snapshots listed in an outcome of `list_snapshots`, newest first.
const LISTED_SNAPSHOTS: usize = 1000;

/// The recovery plugin, loaded from its configuration file.
#[derive(Debug, Clone)]
pub struct RecoveryPlugin {
    config: Config,
    specs: Vec<ActionSpec>,
}

impl RecoveryPlugin {
    /// Name of the plugin in the registry and in requests.
    pub const NAME: &'static str = "recovery";

    /// Loads the configuration file at `file`.
    pub fn load(file: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let file = file.as_ref();
        let text = std::fs::read_to_string(file).map_err(|error| ConfigError {
            file: file.to_path_buf(),
            problems: vec![format!(
                "{}: could not read the recovery plugin's configuration: {error}. Check the path, or create the file with a `repositories:` map",
                file.display()
            )],
        })?;
        Self::from_yaml(file, &text)
    }

    /// Loads a configuration from its text. `file` names it in messages.
    pub fn from_yaml(file: impl AsRef<Path>, text: &str) -> Result<Self, ConfigError> {
        let file = file.as_ref();
        let config = config::parse_config(file, text)?;
        let specs = action_specs(&config);
        let problems: Vec<String> = check_actions(&specs)
            .into_iter()
            .map(|problem| format!("{}: {problem}", file.display()))
            .collect();
        if !problems.is_empty() {
            return Err(ConfigError {
                file: file.to_path_buf(),
                problems,
            });
        }
        Ok(RecoveryPlugin { config, specs })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Lists what a run would miss on this machine (restic, a local repository, a password
    /// file or variable), one sentence each, so a server can warn at start.
    pub fn missing_setup(&self) -> Vec<String> {
        let mut missing = Vec::new();
        if !self.config.restic.is_file() {
            missing.push(self.restic_missing());
        }
        for repo in self.config.repositories.values() {
            if let Err(problem) = self.check_repository_setup(repo) {
                missing.push(problem);
            }
        }
        missing
    }

    fn spec(&self, action: &str) -> Result<&ActionSpec, PluginError> {
        self.specs
            .iter()
            .find(|spec| spec.name == action)
            .ok_or_else(|| PluginError::UnknownAction {
                plugin: Self::NAME.to_owned(),
                action: action.to_owned(),
            })
    }

    fn repository(&self, params: &Map<String, Value>) -> &Repository {
        let name = text_param(params, "repository");
        // Validation admits only configured names.
        &self.config.repositories[name]
    }

    async fn restore_file(
        &self,
        params: &Map<String, Value>,
        cancel: CancellationToken,
    ) -> Result<ActionOutcome, PluginError> {
        let deadline = Instant::now() + Duration::from_secs(self.config.timeout_seconds);
        let repo = self.repository(params);
        let (path, target, snapshot) = self.restore_params(params)?;
        let base = match self.restic_call(repo) {
            Ok(base) => base,
            Err(problem) => return Ok(ActionOutcome::failed(problem, "")),
        };
        let shown = path.display();

        // List what the snapshot contains under the path, and read the snapshot's full id.
        let listing = run_restic(
            &base,
            ["ls", "--json", "--recursive", "--", &snapshot]
                .into_iter()
                .map(String::from)
                .chain([path.display().to_string()]),
            deadline,
            LISTING_LIMIT,
            cancel.clone(),
        )
        .await?;
        if !listing.succeeded() {
            let summary = format!(
                "Could not list {shown} in snapshot {snapshot} of repository `{}`: {}",
                repo.name,
                restic_failure(&self.config.restic, &listing)
            );
            return Ok(ActionOutcome::failed(summary, combined_output(&listing)));
        }
        if listing.stdout.text.trim().is_empty() {
            // restic 0.14 reports a snapshot it cannot find on stderr and exits with 0. A
            // version that exits with an error instead goes through the branch above.
            let reason = last_line(&listing.stderr.text)
                .map(|line| format!(" (restic: {line})"))
                .unwrap_or_default();
            let summary = format!(
                "Snapshot {snapshot} is not in repository `{}`{reason}. Pick one with list_snapshots",
                repo.name
            );
            return Ok(ActionOutcome::failed(summary, combined_output(&listing)));
        }
        let complete = listing.stdout.dropped_bytes == 0;
        let (snap, nodes) = match restic::parse_ls(&listing.stdout.text, complete) {
            Ok(parsed) => parsed,
            Err(problem) => {
                return Ok(ActionOutcome::failed(
                    format!("Could not read the listing of {shown}: {problem}"),
                    combined_output(&listing),
                ));
            }
        };
        let nodes: Vec<Node> = nodes
            .into_iter()
            .filter(|node| Path::new(&node.path).starts_with(&path))
            .collect();
        if !nodes.iter().any(|node| Path::new(&node.path) == path) {
            let summary = format!(
                "{shown} is not in snapshot {} of {} in repository `{}`, which backed up {}. Check the path, or pick another snapshot with list_snapshots",
                snap.short(),
                snap.time_text(),
                repo.name,
                list_or_none(&snap.paths)
            );
            let mut outcome = ActionOutcome::failed(summary, "");
            outcome.data = json!({
                "repository": repo.name,
                "path": path,
                "snapshot": snap.to_json(),
            });
            return Ok(outcome);
        }

        // Links that exist now could send a file outside the allowed targets.
        let outside: Vec<PathBuf> = nodes
            .iter()
            .map(|node| target.destination(Path::new(&node.path)))
            .filter(|dest| paths::allowed_root(dest, &self.config.allowed_targets).is_none())
            .collect();
        if let Some(first) = outside.first() {
            let summary = format!(
                "Did not restore {shown}, because {} of its {} paths would be written outside the allowed targets through a symbolic link, the first at {} (resolves to {}). Remove the link or restore into another directory",
                outside.len(),
                nodes.len(),
                first.display(),
                paths::resolve(first).display()
            );
            return Ok(ActionOutcome::failed(summary, ""));
        }

        let restic_target = target.restic_target().display().to_string();
        let restore_args = vec![
            String::from("restore"),
            format!("--target={restic_target}"),
            format!("--include={}", include_pattern(&path)),
            String::from("--"),
            snap.id.clone(),
        ];
        let mut argv = vec![self.config.restic.display().to_string()];
        argv.extend(
            base.args
                .iter()
                .map(|arg| arg.to_string_lossy().into_owned()),
        );
        argv.extend(restore_args.iter().cloned());

        let restore = run_restic(
            &base,
            restore_args,
            deadline,
            self.config.output_limit,
            cancel,
        )
        .await?;
        let check = verify(&nodes, &target);
        let output = combined_output(&restore);
        let mut data = json!({
            "repository": repo.name,
            "path": path,
            "target": match &target {
                Target::Original => Value::from("original"),
                Target::Directory(dir) => Value::from(dir.display().to_string()),
            },
            "snapshot_id": snap.id,
            "snapshot": snap.to_json(),
            "restored_paths": check.restored.iter().take(LISTED_PATHS).collect::<Vec<_>>(),
            "restored_path_count": check.restored.len(),
            "files": check.files,
            "directories": check.directories,
            "bytes": check.bytes,
            "listing_complete": complete,
            "argv": argv,
            "duration_ms": u64::try_from(restore.duration.as_millis()).unwrap_or(u64::MAX),
        });

        if !restore.succeeded() {
            let summary = format!(
                "Restoring {shown} from snapshot {} of {} failed: {}",
                snap.short(),
                snap.time_text(),
                restic_failure(&self.config.restic, &restore)
            );
            let mut outcome = ActionOutcome::failed(summary, output);
            outcome.data = data;
            return Ok(outcome);
        }
        if !check.missing.is_empty() {
            data["missing"] = json!(check.missing.iter().take(LISTED_PATHS).collect::<Vec<_>>());
            let summary = format!(
                "restic restored {shown} from snapshot {} of {}, but {} of its {} files are missing or have another size, the first {}. Check the target's free space and permissions",
                snap.short(),
                snap.time_text(),
                check.missing.len(),
                check.files + check.missing.len() as u64,
                check.missing[0].display()
            );
            let mut outcome = ActionOutcome::failed(summary, output);
            outcome.data = data;
            return Ok(outcome);
        }

        let destination = target.destination(&path);
        let place = match &target {
            Target::Original => String::from("in place"),
            Target::Directory(_) => format!("to {}", destination.display()),
        };
        let cut_note = if complete {
            ""
        } else {
            " (the listing was cut, so only the files listed were counted)"
        };
        let summary = format!(
            "Restored {shown} {place} from snapshot {} of {} in repository `{}`: {}, {}{cut_note}",
            snap.short(),
            snap.time_text(),
            repo.name,
            count(check.files, "file", "files"),
            bytes_text(check.bytes),
        );
        let mut outcome = ActionOutcome::succeeded(summary, output);
        outcome.data = data;
        Ok(outcome)
    }

    /// Checks the path, target and snapshot of a restore, and reports every problem at once.
    fn restore_params(
        &self,
        params: &Map<String, Value>,
    ) -> Result<(PathBuf, Target, String), PluginError> {
        let mut errors = Vec::new();
        let mut error = |param: &str, (problem, fix): (String, String)| {
            errors.push(ParamError {
                param: param.to_owned(),
                value: Some(shown_value(text_param(params, param))),
                problem,
                fix,
            });
        };

        let path = paths::source_path(text_param(params, "path"))
            .map_err(|problem| error("path", problem))
            .ok();
        let target = paths::target(text_param(params, "target"))
            .map_err(|problem| error("target", problem))
            .ok();
        let snapshot = text_param(params, "snapshot");
        let _ = paths::snapshot_id(snapshot).map_err(|problem| error("snapshot", problem));

        let allowed = &self.config.allowed_targets;
        let roots = || {
            if allowed.is_empty() {
                String::from("none: the configuration lists no `allowed_targets`")
            } else {
                list_or_none(allowed.iter().map(|root| root.display().to_string()))
            }
        };
        match (&path, &target) {
            (Some(path), Some(Target::Original))
                if paths::allowed_root(path, allowed).is_none() =>
            {
                error(
                    "path",
                    (
                        format!(
                            "cannot be restored in place, because it lies outside the allowed targets ({})",
                            roots()
                        ),
                        format!(
                            "Restore it into a directory under an allowed target, or add a directory that holds it to `allowed_targets` in {}",
                            self.config.file.display()
                        ),
                    ),
                );
            }
            (_, Some(Target::Directory(dir))) if paths::allowed_root(dir, allowed).is_none() => {
                error(
                    "target",
                    (
                        format!("lies outside the allowed targets ({})", roots()),
                        format!(
                            "Give a directory under one of them, or add one to `allowed_targets` in {}",
                            self.config.file.display()
                        ),
                    ),
                );
            }
            _ => {}
        }

        match (path, target) {
            (Some(path), Some(target)) if errors.is_empty() => {
                Ok((path, target, snapshot.to_owned()))
            }
            _ => Err(PluginError::Failed(
                ParamErrors {
                    action: String::from("restore_file"),
                    errors,
                }
                .to_string(),
            )),
        }
    }

    async fn list_snapshots(
        &self,
        params: &Map<String, Value>,
        cancel: CancellationToken,
    ) -> Result<ActionOutcome, PluginError> {
        let deadline = Instant::now() + Duration::from_secs(self.config.timeout_seconds);
        let repo = self.repository(params);
        let filter = match params.get("path").and_then(Value::as_str) {
            Some(value) => match paths::source_path(value) {
                Ok(path) => Some(path),
                Err((problem, fix)) => {
                    return Err(PluginError::Failed(
                        ParamErrors {
                            action: String::from("list_snapshots"),
                            errors: vec![ParamError {
                                param: String::from("path"),
                                value: Some(shown_value(value)),
                                problem,
                                fix,
                            }],
                        }
                        .to_string(),
                    ));
                }
            },
            None => None,
        };
        let base = match self.restic_call(repo) {
            Ok(base) => base,
            Err(problem) => return Ok(ActionOutcome::failed(problem, "")),
        };

        let result = run_restic(
            &base,
            [String::from("snapshots"), String::from("--json")],
            deadline,
            LISTING_LIMIT,
            cancel,
        )
        .await?;
        if !result.succeeded() {
            let summary = format!(
                "Could not list the snapshots of repository `{}`: {}",
                repo.name,
                restic_failure(&self.config.restic, &result)
            );
            return Ok(ActionOutcome::failed(summary, combined_output(&result)));
        }
        let mut snapshots = match restic::parse_snapshots(&result.stdout.text) {
            Ok(snapshots) => snapshots,
            Err(problem) => {
                let summary = format!(
                    "Could not read the snapshots of repository `{}`: {problem}",
                    repo.name
                );
                return Ok(ActionOutcome::failed(summary, combined_output(&result)));
            }
        };
        if let Some(path) = &filter {
            snapshots.retain(|snapshot| snapshot.covers(path));
        }
        // restic lists the oldest first. Times are compared parsed, and as text when
        // one does not parse.
        snapshots.sort_by(|a, b| snapshot_order(b, a));

        let scope = match &filter {
            Some(path) => format!(" that cover {}", path.display()),
            None => String::new(),
        };
        let summary = match snapshots.first() {
            None => format!("Repository `{}` has no snapshots{scope}", repo.name),
            Some(newest) => format!(
                "Repository `{}` has {}{scope}; the newest is {} of {}",
                repo.name,
                count(snapshots.len() as u64, "snapshot", "snapshots"),
                newest.short(),
                newest.time_text()
            ),
        };
        let output: Vec<String> = snapshots
            .iter()
            .map(|snapshot| {
                format!(
                    "{}  {}  {}  {}",
                    snapshot.short(),
                    snapshot.time_text(),
                    snapshot.hostname,
                    snapshot.paths.join(", ")
                )
            })
            .collect();
        let mut outcome = ActionOutcome::succeeded(summary, output.join("\n"));
        outcome.data = json!({
            "repository": repo.name,
            "path": filter,
            "count": snapshots.len(),
            "snapshots": snapshots
                .iter()
                .take(LISTED_SNAPSHOTS)
                .map(Snapshot::to_json)
                .collect::<Vec<_>>(),
        });
        Ok(outcome)
    }

    /// Builds the start of every restic call for a repository: the program, the
    /// repository, the password source and the passed variables. The error is a summary
    /// for a failed outcome.
    fn restic_call(&self, repo: &Repository) -> Result<ProgramCall, String> {
        if !self.config.restic.is_file() {
            return Err(self.restic_missing());
        }
        self.check_repository_setup(repo)?;
        let mut call = ProgramCall::new(&self.config.restic, Duration::ZERO)
            .arg(format!("--repo={}", repo.location));
        match &repo.password {
            PasswordSource::File(file) => {
                call = call.arg(format!("--password-file={}", file.display()));
            }
            PasswordSource::Env(var) => {
                // Checked by check_repository_setup.
                let value = std::env::var_os(var).unwrap_or_default();
                call = call.env("RESTIC_PASSWORD", value);
            }
        }
        if let Some(dir) = &self.config.cache_dir {
            call = call.arg(format!("--cache-dir={}", dir.display()));
        }
        for var in &repo.pass_env {
            if let Some(value) = std::env::var_os(var) {
                call = call.env(var, value);
            }
        }
        Ok(call)
    }

    fn check_repository_setup(&self, repo: &Repository) -> Result<(), String> {
        let file = self.config.file.display();
        let name = &repo.name;
        let local = repo
            .location
            .strip_prefix("local:")
            .unwrap_or(&repo.location);
        if local.starts_with('/') && !Path::new(local).join("config").is_file() {
            return Err(format!(
                "Repository `{name}` at {local} does not exist or is not a restic repository (it has no `config` file). Create it with `restic init`, or fix `repository` of `{name}` in {file}"
            ));
        }
        match &repo.password {
            PasswordSource::File(path) if !path.exists() => Err(format!(
                "The password file {} of repository `{name}` does not exist. Create it, readable only by Tend, or fix `password_file` of `{name}` in {file}",
                path.display()
            )),
            PasswordSource::Env(var) if std::env::var_os(var).is_none() => Err(format!(
                "The environment variable {var}, which holds the password of repository `{name}`, is not set for Tend. Set it where Tend starts, or fix `password_env` of `{name}` in {file}"
            )),
            _ => Ok(()),
        }
    }

    fn restic_missing(&self) -> String {
        format!(
            "restic is not installed at {}. Install it (Debian: apt-get install restic), or fix `restic` in {}",
            self.config.restic.display(),
            self.config.file.display()
        )
    }
}

#[async_trait::async_trait]
impl Plugin for RecoveryPlugin {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn description(&self) -> &str {
        "Restores files and directories from restic backups"
    }

    fn actions(&self) -> &[ActionSpec] {
        &self.specs
    }

    async fn run(
        &self,
        request: ActionRequest,
        cancel: CancellationToken,
    ) -> Result<ActionOutcome, PluginError> {
        let spec = self.spec(&request.action)?;
        let params = validate_params(spec, &request.params)
            .map_err(|errors| PluginError::Failed(errors.to_string()))?;
        match spec.name.as_str() {
            "restore_file" => self.restore_file(&params, cancel).await,
            _ => self.list_snapshots(&params, cancel).await,
        }
    }
}

/// Declares the two actions, with the configured repositories as the allowed values.
fn action_specs(config: &Config) -> Vec<ActionSpec> {
    let names: Vec<String> = config.repositories.keys().cloned().collect();
    let repository = ParamSpec {
        kind: ParamType::Enum,
        label: String::from("Repository"),
        description: String::from("The restic repository that contains the backup"),
        required: true,
        // One repository needs no choice.
        default: (names.len() == 1).then(|| Value::from(names[0].clone())),
        values: names,
        max_length: None,
    };
    let path = |required: bool, description: &str| ParamSpec {
        kind: ParamType::String,
        label: String::from("Path"),
        description: description.to_owned(),
        required,
        default: None,
        values: Vec::new(),
        max_length: Some(4096),
    };

    let mut restore_params = IndexMap::new();
    restore_params.insert(String::from("repository"), repository.clone());
    restore_params.insert(
        String::from("path"),
        path(
            true,
            "Full path of the file or directory as it was backed up, such as /srv/share/report.xlsx",
        ),
    );
    restore_params.insert(
        String::from("snapshot"),
        ParamSpec {
            kind: ParamType::String,
            label: String::from("Snapshot"),
            description: String::from("`latest`, or a snapshot id from list_snapshots"),
            required: false,
            default: Some(Value::from("latest")),
            values: Vec::new(),
            max_length: Some(64),
        },
    );
    restore_params.insert(
        String::from("target"),
        ParamSpec {
            kind: ParamType::String,
            label: String::from("Restore to"),
            description: String::from(
                "`original` to overwrite the path in place, or a directory under an allowed target, under which the path is recreated",
            ),
            required: true,
            default: None,
            values: Vec::new(),
            max_length: Some(4096),
        },
    );

    let mut list_params = IndexMap::new();
    list_params.insert(String::from("repository"), repository);
    list_params.insert(
        String::from("path"),
        path(
            false,
            "Show only snapshots that backed up this path or a directory that holds it",
        ),
    );

    vec![
        ActionSpec {
            name: String::from("restore_file"),
            label: String::from("Restore file"),
            description: String::from(
                "Restores a file or directory from a restic snapshot, in place or into a directory",
            ),
            params: restore_params,
            timeout_seconds: config.timeout_seconds,
            roles: config.roles.clone(),
            needs_approval: false,
            idempotent: true,
        },
        ActionSpec {
            name: String::from("list_snapshots"),
            label: String::from("List snapshots"),
            description: String::from("Lists the snapshots of a restic repository, newest first"),
            params: list_params,
            timeout_seconds: config.timeout_seconds,
            roles: config.roles.clone(),
            needs_approval: false,
            idempotent: true,
        },
    ]
}

/// Runs restic with the base call's arguments followed by `args`, within what is left
/// until `deadline`. A cancelled run becomes [`PluginError::Cancelled`].
async fn run_restic(
    base: &ProgramCall,
    args: impl IntoIterator<Item = String>,
    deadline: Instant,
    output_limit: usize,
    cancel: CancellationToken,
) -> Result<ProgramResult, PluginError> {
    let mut call = base.clone().args(args).output_limit(output_limit);
    call.timeout = deadline.saturating_duration_since(Instant::now());
    let result = run_program(call, cancel).await;
    if result.end == ProgramEnd::Cancelled {
        return Err(PluginError::Cancelled);
    }
    Ok(result)
}

/// Describes a failed restic run: how it ended and its last error line.
fn restic_failure(program: &Path, result: &ProgramResult) -> String {
    let end = match &result.end {
        ProgramEnd::NotStarted(reason) => return reason.clone(),
        ProgramEnd::TimedOut => String::from("restic ran out of time and was stopped"),
        _ => format!("{} {}", program.display(), result.describe_end()),
    };
    match last_line(&result.stderr.text) {
        Some(line) => format!("{end}: {line}"),
        None => end,
    }
}

/// Returns the last line of `text` that is not blank, trimmed.
fn last_line(text: &str) -> Option<&str> {
    text.lines()
        .rev()
        .map(str::trim)
        .find(|line| !line.is_empty())
}

fn combined_output(result: &ProgramResult) -> String {
    let mut output = result.stdout.with_note();
    let stderr = result.stderr.with_note();
    if !stderr.is_empty() {
        if !output.is_empty() && !output.ends_with('\n') {
            output.push('\n');
        }
        output.push_str("--- stderr ---\n");
        output.push_str(&stderr);
    }
    output
}

/// Result of checking the restored files against the snapshot's listing.
#[derive(Debug, Default)]
struct Check {
    restored: Vec<PathBuf>,
    missing: Vec<PathBuf>,
    files: u64,
    directories: u64,
    bytes: u64,
}

fn verify(nodes: &[Node], target: &Target) -> Check {
    let mut check = Check::default();
    for node in nodes {
        let dest = target.destination(Path::new(&node.path));
        let found = std::fs::symlink_metadata(&dest);
        let present = match (node.kind.as_str(), &found) {
            ("file", Ok(meta)) => meta.is_file() && meta.len() == node.size,
            ("dir", Ok(meta)) => meta.is_dir(),
            (_, Ok(_)) => true,
            (_, Err(_)) => false,
        };
        if !present {
            check.missing.push(dest);
            continue;
        }
        match node.kind.as_str() {
            "file" => {
                check.files += 1;
                check.bytes += node.size;
            }
            "dir" => check.directories += 1,
            _ => {}
        }
        check.restored.push(dest);
    }
    check
}

fn snapshot_order(a: &Snapshot, b: &Snapshot) -> std::cmp::Ordering {
    let parse = |s: &Snapshot| chrono::DateTime::parse_from_rfc3339(&s.time).ok();
    match (parse(a), parse(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        _ => a.time.cmp(&b.time),
    }
}

/// Reads a text parameter that validation guarantees.
fn text_param<'a>(params: &'a Map<String, Value>, name: &str) -> &'a str {
    params.get(name).and_then(Value::as_str).unwrap_or_default()
}

/// Shows a value in a parameter error as JSON, cut to 60 characters.
fn shown_value(value: &str) -> String {
    let count = value.chars().count();
    if count <= 60 {
        Value::from(value).to_string()
    } else {
        let head: String = value.chars().take(60).collect();
        format!("{}... ({count} characters)", Value::from(head))
    }
}

fn list_or_none<I, S>(items: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let items: Vec<String> = items.into_iter().map(|s| s.as_ref().to_owned()).collect();
    if items.is_empty() {
        String::from("no paths")
    } else {
        items.join(", ")
    }
}

fn count(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// Writes a byte count for people, such as "12 bytes" or "1.5 MiB (1572864 bytes)".
fn bytes_text(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return count(bytes, "byte", "bytes");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {} ({bytes} bytes)", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_read_well() {
        assert_eq!(bytes_text(1), "1 byte");
        assert_eq!(bytes_text(12), "12 bytes");
        assert_eq!(bytes_text(1536), "1.5 KiB (1536 bytes)");
        assert_eq!(bytes_text(1_572_864), "1.5 MiB (1572864 bytes)");
    }

    #[test]
    fn long_values_are_cut_in_messages() {
        assert_eq!(shown_value("-rf"), "\"-rf\"");
        let long = "a".repeat(100);
        assert!(shown_value(&long).ends_with("... (100 characters)"));
    }
}
