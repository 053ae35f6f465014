//! The allow-list file of the script plugin: its format, and the checks that run when it
//! loads. Every problem of every entry is reported at once, each with the file, the entry
//! and the fix.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use indexmap::IndexMap;
use serde::Deserialize;
use tend_plugin_api::yaml::{YamlError, parse_yaml};
use tend_plugin_api::{ActionSpec, ParamSpec, check_actions};

/// Bytes kept of each output stream of an entry that sets no `output_limit_bytes`.
pub const DEFAULT_OUTPUT_LIMIT: usize = 64 * 1024;

/// Maximum `output_limit_bytes` an entry may set. The output lands in the journal, so
/// this bounds one journal entry.
pub const MAX_OUTPUT_LIMIT: usize = 16 * 1024 * 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    actions: Vec<EntryFile>,
}

/// One entry of the allow-list as written in the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryFile {
    name: String,
    label: String,
    #[serde(default)]
    description: String,
    executable: PathBuf,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    params: IndexMap<String, ParamSpec>,
    #[serde(default)]
    flags: IndexMap<String, String>,
    timeout_seconds: u64,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    needs_approval: bool,
    #[serde(default)]
    idempotent: bool,
    #[serde(default)]
    output_limit_bytes: Option<usize>,
    #[serde(default)]
    working_dir: Option<PathBuf>,
    #[serde(default)]
    env: IndexMap<String, String>,
}

/// One allowed program, checked and ready to run.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub spec: ActionSpec,
    pub executable: PathBuf,
    /// Arguments that always come first, before flags and `--`.
    pub args: Vec<String>,
    /// Parameters passed as `--flag=value`, by parameter name.
    pub flags: IndexMap<String, String>,
    pub working_dir: Option<PathBuf>,
    pub env: IndexMap<String, String>,
    pub output_limit: usize,
}

pub use tend_plugin_api::ConfigError;

/// Reads and checks an allow-list. `file` names the file in messages.
pub(crate) fn parse_config(file: &Path, text: &str) -> Result<Vec<Entry>, ConfigError> {
    let file_name = file.display();
    let parsed: ConfigFile = parse_yaml(text).map_err(|error| ConfigError {
        file: file.to_path_buf(),
        problems: vec![describe_yaml_error(file, text, &error)],
    })?;

    let mut problems = Vec::new();
    let mut entries = Vec::new();
    for entry in parsed.actions {
        let at = format!("{file_name}: entry `{}`", entry.name);
        check_entry(&at, &entry, &mut problems);
        entries.push(into_entry(entry));
    }

    let specs: Vec<ActionSpec> = entries.iter().map(|entry| entry.spec.clone()).collect();
    problems.extend(
        check_actions(&specs)
            .into_iter()
            .map(|problem| format!("{file_name}: {problem}")),
    );

    if problems.is_empty() {
        Ok(entries)
    } else {
        Err(ConfigError {
            file: file.to_path_buf(),
            problems,
        })
    }
}

/// Places a parse error: file, line and column, and the entry by its name when the error
/// lies inside one.
fn describe_yaml_error(file: &Path, text: &str, error: &YamlError) -> String {
    let mut place = file.display().to_string();
    if let (Some(line), Some(column)) = (error.line, error.column) {
        place.push_str(&format!(":{line}:{column}"));
    }
    let entry = error
        .index_in("actions")
        .map(|index| match entry_name(text, index) {
            Some(name) => format!("entry `{name}` (number {})", index + 1),
            None => format!("entry number {}", index + 1),
        });
    let field = if error.path.is_empty() {
        String::new()
    } else {
        format!("field `{}`: ", error.path)
    };
    match entry {
        Some(entry) => format!("{place}: {entry}: {field}{}", error.message),
        None => format!("{place}: {field}{}", error.message),
    }
}

/// Reads the name of an entry from a file that failed to load as a whole.
fn entry_name(text: &str, index: usize) -> Option<String> {
    let value: serde_norway::Value = serde_norway::from_str(text).ok()?;
    let name = value.get("actions")?.get(index)?.get("name")?.as_str()?;
    Some(name.to_owned())
}

fn into_entry(entry: EntryFile) -> Entry {
    let spec = ActionSpec {
        name: entry.name,
        label: entry.label,
        description: entry.description,
        params: entry.params,
        timeout_seconds: entry.timeout_seconds,
        roles: entry.roles,
        needs_approval: entry.needs_approval,
        idempotent: entry.idempotent,
    };
    Entry {
        spec,
        executable: entry.executable,
        args: entry.args,
        flags: entry.flags,
        working_dir: entry.working_dir,
        env: entry.env,
        output_limit: entry.output_limit_bytes.unwrap_or(DEFAULT_OUTPUT_LIMIT),
    }
}

/// Checks what the API's `check_spec` does not: the program, its fixed arguments, flags,
/// environment, working directory and output limit.
fn check_entry(at: &str, entry: &EntryFile, problems: &mut Vec<String>) {
    check_executable(at, &entry.executable, problems);

    for arg in &entry.args {
        if arg == "--" {
            problems.push(format!(
                "{at}: `args` contains `--`. Remove it, because the plugin adds `--` itself after the flags and before the parameter values"
            ));
        }
        if arg.contains('\0') {
            problems.push(format!(
                "{at}: argument {arg:?} contains a NUL character, which no program can receive. Remove it"
            ));
        }
    }

    check_flags(at, entry, problems);

    for (name, value) in &entry.env {
        if !is_env_name(name) {
            problems.push(format!(
                "{at}: environment variable name `{name}` is invalid. Use letters, digits and underscores, not starting with a digit"
            ));
        }
        if value.contains('\0') {
            problems.push(format!(
                "{at}: environment variable `{name}` contains a NUL character. Remove it"
            ));
        }
    }

    if let Some(dir) = &entry.working_dir
        && !dir.is_absolute()
    {
        problems.push(format!(
            "{at}: working_dir `{}` is not an absolute path. Write the full path, such as /var/lib/tend",
            dir.display()
        ));
    }

    match entry.output_limit_bytes {
        Some(0) => problems.push(format!(
            "{at}: output_limit_bytes is 0, which keeps no output. Set a limit such as {DEFAULT_OUTPUT_LIMIT}, or remove it for that default"
        )),
        Some(limit) if limit > MAX_OUTPUT_LIMIT => problems.push(format!(
            "{at}: output_limit_bytes {limit} is larger than the maximum of {MAX_OUTPUT_LIMIT}. Lower it"
        )),
        _ => {}
    }
}

fn check_executable(at: &str, executable: &Path, problems: &mut Vec<String>) {
    let path = executable.display();
    if !executable.is_absolute() {
        let program = executable
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        problems.push(format!(
            "{at}: executable `{path}` is not an absolute path. Write the full path, such as /usr/bin/{program} (`command -v {program}` prints it)"
        ));
        return;
    }
    if executable
        .components()
        .any(|part| matches!(part, Component::ParentDir | Component::CurDir))
    {
        problems.push(format!(
            "{at}: executable `{path}` contains `.` or `..`. Write the path without them"
        ));
    }
    if executable.as_os_str().to_string_lossy().ends_with('/') {
        problems.push(format!(
            "{at}: executable `{path}` ends with `/`, so it names a directory. Write the path of the program file"
        ));
    }
}

fn check_flags(at: &str, entry: &EntryFile, problems: &mut Vec<String>) {
    let mut params_by_flag: HashMap<&str, &str> = HashMap::new();
    for (param, flag) in &entry.flags {
        if !entry.params.contains_key(param) {
            let near = entry
                .params
                .keys()
                .find(|name| strsim::levenshtein(name, param) <= 2);
            let hint = match near {
                Some(name) => format!(" Did you mean `{name}`?"),
                None => String::new(),
            };
            problems.push(format!(
                "{at}: `flags` names `{param}`, which is not a parameter of the entry. Declare it under `params` or fix the name.{hint}"
            ));
        }
        if !is_flag(flag) {
            problems.push(format!(
                "{at}: flag `{flag}` of parameter `{param}` is invalid. Write a flag such as `--count` or `-c`: a dash or two, then letters, digits, `-`, `_` or `.`, without `=`"
            ));
        }
        if let Some(other) = params_by_flag.insert(flag, param) {
            problems.push(format!(
                "{at}: parameters `{other}` and `{param}` both use flag `{flag}`. Give each its own flag"
            ));
        }
    }
}

/// Checks a flag: `-x` or `--name`, then letters, digits, `-`, `_` and `.`.
fn is_flag(flag: &str) -> bool {
    let name = flag
        .strip_prefix("--")
        .or_else(|| flag.strip_prefix('-'))
        .unwrap_or_default();
    let mut chars = name.chars();
    let starts_well = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    starts_well && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    let starts_well = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    starts_well && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
