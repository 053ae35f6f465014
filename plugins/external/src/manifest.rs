//! The manifest `plugin.yaml` of an external plugin, and the checks that run when it loads.

use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;
use tend_plugin_api::params::check_name;
use tend_plugin_api::yaml::{YamlError, parse_yaml};
use tend_plugin_api::{ActionSpec, PROTOCOL_VERSION, check_actions};

/// Bytes of standard output and, separately, of standard error kept for a plugin whose
/// manifest sets no `output_limit_bytes`.
pub const DEFAULT_OUTPUT_LIMIT: usize = 1024 * 1024;

/// Maximum `output_limit_bytes` a manifest may set.
pub const MAX_OUTPUT_LIMIT: usize = 16 * 1024 * 1024;

/// File name of a manifest inside its plugin's directory.
pub const MANIFEST_FILE: &str = "plugin.yaml";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestFile {
    name: String,
    #[serde(default)]
    description: String,
    executable: PathBuf,
    #[serde(default = "default_protocol")]
    protocol: u32,
    #[serde(default)]
    output_limit_bytes: Option<usize>,
    actions: Vec<ActionSpec>,
}

fn default_protocol() -> u32 {
    PROTOCOL_VERSION
}

/// A manifest, checked, with its paths made absolute.
#[derive(Debug, Clone)]
pub(crate) struct Manifest {
    pub name: String,
    pub description: String,
    pub file: PathBuf,
    pub dir: PathBuf,
    pub executable: PathBuf,
    pub output_limit: usize,
    pub actions: Vec<ActionSpec>,
}

/// A manifest that could not be loaded, or a plugins directory that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    pub file: PathBuf,
    /// One line per problem, each starting with the file (and line and column when known).
    pub problems: Vec<String>,
}

impl ManifestError {
    pub(crate) fn single(file: &Path, problem: String) -> Self {
        ManifestError {
            file: file.to_path_buf(),
            problems: vec![problem],
        }
    }
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.problems.join("\n"))
    }
}

impl std::error::Error for ManifestError {}

pub(crate) fn load_manifest(file: &Path) -> Result<Manifest, ManifestError> {
    let file_name = file.display();
    let text = std::fs::read_to_string(file).map_err(|error| {
        ManifestError::single(
            file,
            format!("{file_name}: could not read the plugin manifest: {error}. Check the path"),
        )
    })?;
    let parsed: ManifestFile = parse_yaml(&text)
        .map_err(|error| ManifestError::single(file, describe_yaml_error(file, &text, &error)))?;

    let mut problems = Vec::new();
    if let Err(reason) = check_name(&parsed.name) {
        problems.push(format!(
            "{file_name}: plugin name `{}` is invalid: {reason}. Use lowercase letters, digits and underscores, such as `disk_report`",
            parsed.name
        ));
    }
    if parsed.protocol != PROTOCOL_VERSION {
        problems.push(format!(
            "{file_name}: the plugin speaks protocol {}, but this Tend speaks protocol {PROTOCOL_VERSION}. Update the plugin or Tend",
            parsed.protocol
        ));
    }
    if parsed.actions.is_empty() {
        problems.push(format!(
            "{file_name}: the plugin declares no actions. Add at least one under `actions`"
        ));
    }
    problems.extend(
        check_actions(&parsed.actions)
            .into_iter()
            .map(|problem| format!("{file_name}: {problem}")),
    );
    let output_limit = match parsed.output_limit_bytes {
        None => DEFAULT_OUTPUT_LIMIT,
        Some(0) => {
            problems.push(format!(
                "{file_name}: output_limit_bytes is 0, which keeps no output. Set a limit such as {DEFAULT_OUTPUT_LIMIT}, or remove it for that default"
            ));
            0
        }
        Some(limit) if limit > MAX_OUTPUT_LIMIT => {
            problems.push(format!(
                "{file_name}: output_limit_bytes {limit} is larger than the maximum of {MAX_OUTPUT_LIMIT}. Lower it"
            ));
            limit
        }
        Some(limit) => limit,
    };

    let dir = match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let located = locate_executable(file, dir, &parsed.executable);
    let executable = match located {
        Ok(path) => Some(path),
        Err(problem) => {
            problems.push(problem);
            None
        }
    };

    // The directory exists, because the manifest was read from it.
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    match executable {
        Some(executable) if problems.is_empty() => Ok(Manifest {
            name: parsed.name,
            description: parsed.description,
            file: file.to_path_buf(),
            dir,
            executable,
            output_limit,
            actions: parsed.actions,
        }),
        _ => Err(ManifestError {
            file: file.to_path_buf(),
            problems,
        }),
    }
}

/// Resolves `executable` inside the manifest's directory and returns its absolute path.
/// The path is made absolute because a relative program path would be resolved against
/// the child's working directory.
fn locate_executable(file: &Path, dir: &Path, executable: &Path) -> Result<PathBuf, String> {
    let file_name = file.display();
    let written = executable.display();
    if executable.is_absolute() {
        return Err(format!(
            "{file_name}: executable `{written}` is an absolute path. Write it relative to the manifest's directory, such as `{}`",
            executable
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default()
        ));
    }
    if executable
        .components()
        .any(|part| matches!(part, Component::ParentDir))
    {
        return Err(format!(
            "{file_name}: executable `{written}` leaves the plugin's directory with `..`. Put the program inside the directory that holds {}",
            file.display()
        ));
    }

    let path = dir.join(executable);
    let metadata = std::fs::metadata(&path).map_err(|error| {
        format!(
            "{file_name}: executable `{written}` was not found at {}: {error}. Put the program there or fix `executable`",
            path.display()
        )
    })?;
    if !metadata.is_file() {
        return Err(format!(
            "{file_name}: executable `{written}` at {} is not a file. Name the program file",
            path.display()
        ));
    }
    if metadata.permissions().mode() & 0o111 == 0 {
        return Err(format!(
            "{file_name}: executable `{written}` at {} is not executable. Run `chmod +x {}`",
            path.display(),
            path.display()
        ));
    }
    path.canonicalize().map_err(|error| {
        format!(
            "{file_name}: could not resolve executable {}: {error}",
            path.display()
        )
    })
}

/// Places a parse error: file, line and column, and the action by its name when the error
/// lies inside one.
fn describe_yaml_error(file: &Path, text: &str, error: &YamlError) -> String {
    let mut place = file.display().to_string();
    if let (Some(line), Some(column)) = (error.line, error.column) {
        place.push_str(&format!(":{line}:{column}"));
    }
    let action = error
        .index_in("actions")
        .and_then(|index| action_name(text, index));
    let field = if error.path.is_empty() {
        String::new()
    } else {
        format!("field `{}`: ", error.path)
    };
    match action {
        Some(action) => format!("{place}: action `{action}`: {field}{}", error.message),
        None => format!("{place}: {field}{}", error.message),
    }
}

fn action_name(text: &str, index: usize) -> Option<String> {
    let value: serde_norway::Value = serde_norway::from_str(text).ok()?;
    let name = value.get("actions")?.get(index)?.get("name")?.as_str()?;
    Some(name.to_owned())
}
