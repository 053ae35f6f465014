//! The configuration file of the recovery plugin, such as `plugins/recovery/recovery.yaml`:
//! its format and the checks that run when it loads. Every problem is reported at once,
//! each with the file and the fix.
//!
//! Loading checks the form of every path but not that the files exist, so one file can
//! serve machines that are not set up yet. A run reports a missing repository, password
//! file or program.

use std::path::{Component, Path, PathBuf};

use indexmap::IndexMap;
use serde::Deserialize;
use tend_plugin_api::yaml::{YamlError, parse_yaml};

/// Program run when the file names none.
pub const DEFAULT_RESTIC: &str = "/usr/bin/restic";

/// Seconds a run may take when the file sets no `timeout_seconds`.
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 3600;

/// Bytes kept of restic's output on each stream when the file sets no
/// `output_limit_bytes`.
pub const DEFAULT_OUTPUT_LIMIT: usize = 64 * 1024;

/// Maximum `output_limit_bytes` the file may set. The output lands in the journal.
pub const MAX_OUTPUT_LIMIT: usize = 16 * 1024 * 1024;

/// Schemes of restic's repository locations other than a local path, as in
/// `sftp:user@host:/srv/restic`.
const REPOSITORY_SCHEMES: [&str; 10] = [
    "local", "sftp", "rest", "s3", "b2", "azure", "gs", "swift", "rclone", "opendal",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    restic: Option<PathBuf>,
    #[serde(default)]
    timeout_seconds: Option<u64>,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    allowed_targets: Vec<PathBuf>,
    #[serde(default)]
    cache_dir: Option<PathBuf>,
    #[serde(default)]
    output_limit_bytes: Option<usize>,
    repositories: IndexMap<String, RepositoryFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RepositoryFile {
    repository: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    password_file: Option<PathBuf>,
    #[serde(default)]
    password_env: Option<String>,
    /// Never accepted: read only to say where the password belongs instead.
    #[serde(default)]
    password: Option<serde_norway::Value>,
    #[serde(default)]
    pass_env: Vec<String>,
}

/// The checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from, for messages.
    pub file: PathBuf,
    pub restic: PathBuf,
    pub timeout_seconds: u64,
    pub roles: Vec<String>,
    /// Directories that restores may write into, the in-place ones included.
    pub allowed_targets: Vec<PathBuf>,
    pub cache_dir: Option<PathBuf>,
    pub output_limit: usize,
    pub repositories: IndexMap<String, Repository>,
}

/// One restic repository, by the name runs use.
#[derive(Debug, Clone)]
pub struct Repository {
    pub name: String,
    /// Location as restic's `--repo` takes it: a path or a URL such as `sftp:host:/srv`.
    pub location: String,
    pub description: String,
    pub password: PasswordSource,
    /// Variables of Tend's environment passed on to restic, such as a cloud key.
    pub pass_env: Vec<String>,
}

/// Source of a repository's password for restic. The password itself appears in neither
/// the configuration, restic's arguments nor an outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    /// A file that contains the password, passed as `--password-file`.
    File(PathBuf),
    /// A variable of Tend's environment, passed to restic as `RESTIC_PASSWORD`.
    Env(String),
}

pub use tend_plugin_api::ConfigError;

/// Reads and checks a configuration. `file` names it in messages.
pub fn parse_config(file: &Path, text: &str) -> Result<Config, ConfigError> {
    let name = file.display();
    let parsed: ConfigFile = parse_yaml(text).map_err(|error| ConfigError {
        file: file.to_path_buf(),
        problems: vec![describe_yaml_error(file, &error)],
    })?;

    let mut problems = Vec::new();
    let at = name.to_string();

    let restic = parsed
        .restic
        .unwrap_or_else(|| PathBuf::from(DEFAULT_RESTIC));
    if let Err(problem) = check_absolute(&restic) {
        problems.push(format!(
            "{at}: `restic` {problem}. Write the full path of the program, such as {DEFAULT_RESTIC} (`command -v restic` prints it)"
        ));
    }

    for target in &parsed.allowed_targets {
        if let Err(problem) = check_absolute(target) {
            problems.push(format!(
                "{at}: allowed target `{}` {problem}. Write the full path of a directory, such as /srv/restores",
                target.display()
            ));
        } else if target.parent().is_none() {
            problems.push(format!(
                "{at}: allowed target `/` would let a run overwrite any file of the machine. List the directories that restores may write to, such as /srv/share"
            ));
        }
    }

    if let Some(dir) = &parsed.cache_dir
        && let Err(problem) = check_absolute(dir)
    {
        problems.push(format!(
            "{at}: `cache_dir` `{}` {problem}. Write the full path of a directory, such as /var/cache/tend/restic",
            dir.display()
        ));
    }

    let output_limit = parsed.output_limit_bytes.unwrap_or(DEFAULT_OUTPUT_LIMIT);
    if output_limit == 0 || output_limit > MAX_OUTPUT_LIMIT {
        problems.push(format!(
            "{at}: output_limit_bytes is {output_limit}. Set it between 1 and {MAX_OUTPUT_LIMIT}, or remove it for {DEFAULT_OUTPUT_LIMIT}"
        ));
    }

    if parsed.repositories.is_empty() {
        problems.push(format!(
            "{at}: `repositories` is empty. Name at least one restic repository, with its `repository` location and its `password_file` or `password_env`"
        ));
    }
    let mut repositories = IndexMap::new();
    for (repo_name, repo) in parsed.repositories {
        let at = format!("{name}: repository `{repo_name}`");
        if let Some(checked) = check_repository(&at, &repo_name, repo, &mut problems) {
            repositories.insert(repo_name, checked);
        }
    }

    if problems.is_empty() {
        Ok(Config {
            file: file.to_path_buf(),
            restic,
            timeout_seconds: parsed.timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECONDS),
            roles: parsed.roles,
            allowed_targets: parsed.allowed_targets,
            cache_dir: parsed.cache_dir,
            output_limit,
            repositories,
        })
    } else {
        Err(ConfigError {
            file: file.to_path_buf(),
            problems,
        })
    }
}

/// Places a parse error: the file, then the line and column when the parser gives them.
pub(crate) fn describe_yaml_error(file: &Path, error: &YamlError) -> String {
    if error.line.is_some() {
        format!("{}:{error}", file.display())
    } else {
        format!("{}: {error}", file.display())
    }
}

fn check_repository(
    at: &str,
    name: &str,
    repo: RepositoryFile,
    problems: &mut Vec<String>,
) -> Option<Repository> {
    let before = problems.len();
    if !is_repository_name(name) {
        problems.push(format!(
            "{at}: the name is invalid. Use lowercase letters, digits, `_` and `-`, starting with a letter or digit, at most 64 characters, such as `files`"
        ));
    }
    if let Err(problem) = check_location(&repo.repository) {
        problems.push(format!("{at}: `repository` {problem}"));
    }
    if repo.password.is_some() {
        problems.push(format!(
            "{at}: `password` is not accepted, so that the password never sits in this file. Put it in a file readable only by Tend and name that file in `password_file`, or name an environment variable in `password_env`"
        ));
    }
    let password = match (repo.password_file, repo.password_env) {
        (Some(file), None) => {
            if let Err(problem) = check_absolute(&file) {
                problems.push(format!(
                    "{at}: `password_file` `{}` {problem}. Write the full path, such as /etc/tend/restic-{name}.password",
                    file.display()
                ));
            }
            Some(PasswordSource::File(file))
        }
        (None, Some(var)) => {
            if !is_env_name(&var) {
                problems.push(format!(
                    "{at}: `password_env` `{var}` is not a valid variable name. Use letters, digits and `_`, not starting with a digit, such as TEND_RESTIC_PASSWORD"
                ));
            }
            Some(PasswordSource::Env(var))
        }
        (Some(_), Some(_)) => {
            problems.push(format!(
                "{at}: both `password_file` and `password_env` are set. Keep one of them"
            ));
            None
        }
        (None, None) => {
            problems.push(format!(
                "{at}: no password source. Set `password_file` to a file that holds the password, or `password_env` to the environment variable that does"
            ));
            None
        }
    };
    for var in &repo.pass_env {
        if !is_env_name(var) {
            problems.push(format!(
                "{at}: `pass_env` names `{var}`, which is not a valid variable name. Use letters, digits and `_`, not starting with a digit"
            ));
        } else if var.starts_with("RESTIC_PASSWORD") || var.starts_with("RESTIC_REPOSITORY") {
            problems.push(format!(
                "{at}: `pass_env` names `{var}`, which the plugin sets from `repository`, `password_file` and `password_env`. Remove it from `pass_env`"
            ));
        }
    }
    if problems.len() > before {
        return None;
    }
    Some(Repository {
        name: name.to_owned(),
        location: repo.repository,
        description: repo.description,
        password: password?,
        pass_env: repo.pass_env,
    })
}

/// Checks a repository location: an absolute path, or a restic URL of a known scheme.
fn check_location(location: &str) -> Result<(), String> {
    if location.trim().is_empty() {
        return Err(String::from(
            "is empty. Write the repository's path, such as /var/backups/restic, or its restic URL, such as sftp:backup@host:/srv/restic",
        ));
    }
    if location.chars().any(char::is_control) {
        return Err(String::from("contains a control character. Remove it"));
    }
    if location.starts_with('/') {
        return check_absolute(Path::new(location)).map_err(|problem| {
            format!("`{location}` {problem}. Write the path without `.` and `..`")
        });
    }
    let scheme = location.split_once(':').map(|(scheme, _)| scheme);
    match scheme {
        Some(scheme) if REPOSITORY_SCHEMES.contains(&scheme) => Ok(()),
        _ => Err(format!(
            "`{location}` is neither an absolute path nor a restic URL. Write the full path, such as /var/backups/restic, or a URL that starts with one of {}",
            REPOSITORY_SCHEMES
                .iter()
                .map(|scheme| format!("`{scheme}:`"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Checks that a path is absolute and has no `.` or `..` part. The error completes the
/// sentence "`path` ...".
pub(crate) fn check_absolute(path: &Path) -> Result<(), String> {
    if !path.is_absolute() {
        return Err(String::from("is not an absolute path"));
    }
    if path
        .components()
        .any(|part| matches!(part, Component::ParentDir | Component::CurDir))
    {
        return Err(String::from("contains `.` or `..`"));
    }
    Ok(())
}

fn is_repository_name(name: &str) -> bool {
    let mut chars = name.chars();
    let starts_well = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    starts_well
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

pub(crate) fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    let starts_well = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    starts_well && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
