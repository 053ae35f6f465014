//! The configuration file of the deployment plugin, such as
//! `plugins/deployment/deployment.yaml`: its format and the checks that run when it loads.
//! Every problem is reported at once, each with the file, the playbook entry and the fix.
//!
//! Loading checks the form of every path and name but not that the files exist, so one
//! file can serve machines that are not set up yet. A run reports a missing playbook,
//! inventory or program.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::Deserialize;
use tend_plugin_api::yaml::{YamlError, parse_yaml};

use crate::vars::RecordSource;

/// Program run when the file names none.
pub const DEFAULT_ANSIBLE_PLAYBOOK: &str = "/usr/bin/ansible-playbook";

/// Seconds a run may take when the file sets no `timeout_seconds`.
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 1800;

/// Bytes of the log kept in an outcome when the file sets no `output_limit_bytes`.
pub const DEFAULT_OUTPUT_LIMIT: usize = 256 * 1024;

/// Maximum `output_limit_bytes` the file may set. The output lands in the journal.
pub const MAX_OUTPUT_LIMIT: usize = 16 * 1024 * 1024;

/// Characters of a run's variable value when its declaration sets no `max_length`.
pub const DEFAULT_VALUE_LENGTH: usize = 1024;

/// Options the plugin sets itself, which `args` may not repeat.
const MANAGED_LONG_OPTIONS: [&str; 7] = [
    "--inventory",
    "--inventory-file",
    "--connection",
    "--limit",
    "--extra-vars",
    "--check",
    "--syntax-check",
];

/// Short forms of the managed options: `-i`, `-c`, `-l`, `-e` and `-C`.
const MANAGED_SHORT_OPTIONS: [char; 5] = ['i', 'c', 'l', 'e', 'C'];

/// Variables that Ansible sets itself or reads as settings. A run's values must not
/// override them: `ansible_python_interpreter` or `ansible_ssh_common_args`, for
/// example, name programs and arguments that Ansible runs.
const RESERVED_VARIABLES: [&str; 16] = [
    "environment",
    "group_names",
    "groups",
    "hostvars",
    "inventory_dir",
    "inventory_file",
    "inventory_hostname",
    "inventory_hostname_short",
    "item",
    "omit",
    "play_hosts",
    "playbook_dir",
    "role_name",
    "role_names",
    "role_path",
    "vars",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    ansible_playbook: Option<PathBuf>,
    #[serde(default)]
    timeout_seconds: Option<u64>,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    output_limit_bytes: Option<usize>,
    #[serde(default)]
    needs_approval: bool,
    playbooks: IndexMap<String, PlaybookFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlaybookFile {
    playbook: PathBuf,
    #[serde(default)]
    description: String,
    inventory: String,
    #[serde(default)]
    connection: Option<String>,
    #[serde(default)]
    check_mode: CheckMode,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    record_vars: IndexMap<String, String>,
    #[serde(default)]
    param_vars: IndexMap<String, ParamVar>,
}

/// Whether runs of a playbook may, must or must not use Ansible's check mode (`--check`),
/// which reports changes without making them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckMode {
    /// A run chooses with its `check` parameter.
    #[default]
    Allowed,
    /// Every run is a dry run.
    Always,
    /// No run is a dry run, such as for a playbook whose tasks do not support it.
    Never,
}

/// A variable that a run may set in its `extra_vars` parameter, as `name=value`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamVar {
    #[serde(default)]
    pub description: String,
    /// Whether every run must set it.
    #[serde(default)]
    pub required: bool,
    /// The allowed values; empty allows any one line of text.
    #[serde(default)]
    pub values: Vec<String>,
    /// Maximum length of a value in characters.
    #[serde(default)]
    pub max_length: Option<usize>,
}

/// The checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from, for messages.
    pub file: PathBuf,
    pub ansible_playbook: PathBuf,
    pub timeout_seconds: u64,
    pub roles: Vec<String>,
    pub output_limit: usize,
    /// Whether each run waits for an approval (on a change: the authorised change, and
    /// the run starts inside its window).
    pub needs_approval: bool,
    pub playbooks: IndexMap<String, Playbook>,
}

/// One playbook that runs may start, by the name runs use.
#[derive(Debug, Clone)]
pub struct Playbook {
    pub name: String,
    pub description: String,
    /// Absolute path of the playbook file; a relative path in the file is read from the
    /// configuration file's directory.
    pub path: PathBuf,
    pub inventory: Inventory,
    pub connection: Option<String>,
    pub check_mode: CheckMode,
    /// Arguments added before `--` and the playbook, such as `--diff`.
    pub args: Vec<String>,
    /// Variables filled from the record, by variable name.
    pub record_vars: IndexMap<String, RecordSource>,
    /// Variables a run may set, by variable name.
    pub param_vars: IndexMap<String, ParamVar>,
}

/// The hosts a playbook runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inventory {
    /// A comma-separated host list, such as `localhost,` or `web1,web2`.
    Hosts(String),
    /// An inventory file or directory.
    Path(PathBuf),
}

impl Inventory {
    /// Returns the value of `--inventory`.
    pub fn argument(&self) -> String {
        match self {
            Inventory::Hosts(hosts) => hosts.clone(),
            Inventory::Path(path) => path.display().to_string(),
        }
    }
}

impl ParamVar {
    pub fn max_length(&self) -> usize {
        self.max_length.unwrap_or(DEFAULT_VALUE_LENGTH)
    }
}

pub use tend_plugin_api::ConfigError;

/// Reads and checks a configuration. `file` names it in messages, and relative playbook
/// and inventory paths are read from its directory.
pub fn parse_config(file: &Path, text: &str) -> Result<Config, ConfigError> {
    let name = file.display();
    let parsed: ConfigFile = parse_yaml(text).map_err(|error| ConfigError {
        file: file.to_path_buf(),
        problems: vec![describe_yaml_error(file, &error)],
    })?;
    let base = file
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let base = std::path::absolute(&base).unwrap_or(base);

    let mut problems = Vec::new();
    let at = name.to_string();

    let ansible_playbook = parsed
        .ansible_playbook
        .unwrap_or_else(|| PathBuf::from(DEFAULT_ANSIBLE_PLAYBOOK));
    if !ansible_playbook.is_absolute() {
        problems.push(format!(
            "{at}: `ansible_playbook` `{}` is not an absolute path. Write the full path of the program, such as {DEFAULT_ANSIBLE_PLAYBOOK} (`command -v ansible-playbook` prints it)",
            ansible_playbook.display()
        ));
    }

    let output_limit = parsed.output_limit_bytes.unwrap_or(DEFAULT_OUTPUT_LIMIT);
    if output_limit == 0 || output_limit > MAX_OUTPUT_LIMIT {
        problems.push(format!(
            "{at}: output_limit_bytes is {output_limit}. Set it between 1 and {MAX_OUTPUT_LIMIT}, or remove it for {DEFAULT_OUTPUT_LIMIT}"
        ));
    }

    if parsed.playbooks.is_empty() {
        problems.push(format!(
            "{at}: `playbooks` is empty. Name at least one playbook, with its `playbook` file and its `inventory`"
        ));
    }
    let mut playbooks = IndexMap::new();
    for (entry_name, entry) in parsed.playbooks {
        let at = format!("{name}: playbook `{entry_name}`");
        if let Some(checked) = check_playbook(&at, &base, &entry_name, entry, &mut problems) {
            playbooks.insert(entry_name, checked);
        }
    }

    if problems.is_empty() {
        Ok(Config {
            file: file.to_path_buf(),
            ansible_playbook,
            timeout_seconds: parsed.timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECONDS),
            roles: parsed.roles,
            output_limit,
            needs_approval: parsed.needs_approval,
            playbooks,
        })
    } else {
        Err(ConfigError {
            file: file.to_path_buf(),
            problems,
        })
    }
}

/// Places a parse error: the file, then the line and column when the parser gives them.
fn describe_yaml_error(file: &Path, error: &YamlError) -> String {
    if error.line.is_some() {
        format!("{}:{error}", file.display())
    } else {
        format!("{}: {error}", file.display())
    }
}

fn check_playbook(
    at: &str,
    base: &Path,
    name: &str,
    entry: PlaybookFile,
    problems: &mut Vec<String>,
) -> Option<Playbook> {
    let before = problems.len();
    if !is_entry_name(name) {
        problems.push(format!(
            "{at}: the name is invalid. Use lowercase letters, digits, `_` and `-`, starting with a letter or digit, at most 64 characters, such as `restart_service`"
        ));
    }

    if entry.playbook.as_os_str().is_empty() {
        problems.push(format!(
            "{at}: `playbook` is empty. Write the path of the playbook file, such as playbooks/{name}.yml"
        ));
    }
    let path = base.join(&entry.playbook);

    let inventory = match check_inventory(&entry.inventory) {
        Ok(Some(hosts)) => Inventory::Hosts(hosts),
        Ok(None) => Inventory::Path(base.join(&entry.inventory)),
        Err(problem) => {
            problems.push(format!("{at}: `inventory` {problem}"));
            Inventory::Hosts(String::new())
        }
    };

    if let Some(connection) = &entry.connection
        && !is_plugin_name(connection)
    {
        problems.push(format!(
            "{at}: `connection` `{connection}` is not a connection plugin name. Write a name such as `local` or `ssh`"
        ));
    }

    for arg in &entry.args {
        if let Err(problem) = check_arg(arg) {
            problems.push(format!("{at}: argument `{arg}` {problem}"));
        }
    }

    let mut record_vars = IndexMap::new();
    for (var, source) in &entry.record_vars {
        check_variable(at, var, problems);
        match RecordSource::parse(source) {
            Ok(parsed) => {
                record_vars.insert(var.clone(), parsed);
            }
            Err(problem) => problems.push(format!(
                "{at}: record variable `{var}`: source `{source}` {problem}"
            )),
        }
    }

    for (var, declaration) in &entry.param_vars {
        check_variable(at, var, problems);
        if entry.record_vars.contains_key(var) {
            problems.push(format!(
                "{at}: `{var}` is both a record variable and a parameter variable. Rename one of them"
            ));
        }
        check_param_var(at, var, declaration, problems);
    }

    if problems.len() > before {
        return None;
    }
    Some(Playbook {
        name: name.to_owned(),
        description: entry.description,
        path,
        inventory,
        connection: entry.connection,
        check_mode: entry.check_mode,
        args: entry.args,
        record_vars,
        param_vars: entry.param_vars,
    })
}

/// Reads an inventory: `Some(hosts)` for a host list (it contains a comma), `None` for a
/// path. The error completes the sentence "`inventory` ...".
fn check_inventory(inventory: &str) -> Result<Option<String>, String> {
    if inventory.trim().is_empty() {
        return Err(String::from(
            "is empty. Write a host list that ends with a comma, such as `localhost,`, or the path of an inventory file",
        ));
    }
    if inventory.chars().any(char::is_control) {
        return Err(String::from("contains a control character. Remove it"));
    }
    if !inventory.contains(',') {
        return Ok(None);
    }
    let bad: Vec<&str> = inventory
        .split(',')
        .filter(|host| !host.is_empty() && !host.chars().all(is_host_char))
        .collect();
    if bad.is_empty() {
        Ok(Some(inventory.to_owned()))
    } else {
        Err(format!(
            "contains entries that are not host names: {}. In a host list, write names or addresses separated by commas, such as `web1,web2,`",
            bad.iter()
                .map(|host| format!("`{host}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

fn is_host_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']')
}

/// Checks a fixed argument. The error completes the sentence "argument `x` ...".
fn check_arg(arg: &str) -> Result<(), String> {
    if arg == "--" {
        return Err(String::from(
            "is not allowed. Remove it, because the plugin puts `--` before the playbook itself",
        ));
    }
    if !arg.starts_with('-') {
        return Err(String::from(
            "is not an option. Write each option with its value in one argument, such as `--forks=10`",
        ));
    }
    if arg.contains('\0') {
        return Err(String::from("contains a NUL character. Remove it"));
    }
    let managed = if let Some(long) = arg.strip_prefix("--") {
        let option = long.split('=').next().unwrap_or_default();
        MANAGED_LONG_OPTIONS.contains(&format!("--{option}").as_str())
    } else {
        arg[1..].chars().any(|c| MANAGED_SHORT_OPTIONS.contains(&c))
    };
    if managed {
        return Err(String::from(
            "sets an option that the plugin sets itself. Use `inventory`, `connection` and `check_mode` of the entry, and the run's `limit`, `check` and `extra_vars` instead",
        ));
    }
    Ok(())
}

fn check_variable(at: &str, var: &str, problems: &mut Vec<String>) {
    if !is_identifier(var) {
        problems.push(format!(
            "{at}: variable name `{var}` is invalid. Use letters, digits and `_`, not starting with a digit, such as `service_name`"
        ));
    } else if var.starts_with("ansible_") || RESERVED_VARIABLES.contains(&var) {
        problems.push(format!(
            "{at}: variable name `{var}` is reserved by Ansible, and a value from a run could change how Ansible connects or which programs it starts. Choose another name, such as `tend_{var}`"
        ));
    }
}

fn check_param_var(at: &str, var: &str, declaration: &ParamVar, problems: &mut Vec<String>) {
    if declaration.max_length == Some(0) {
        problems.push(format!(
            "{at}: variable `{var}` has max_length 0, which allows no value. Set a length such as 64, or remove it for {DEFAULT_VALUE_LENGTH}"
        ));
    }
    let mut seen = Vec::new();
    for value in &declaration.values {
        if value.is_empty() || value.chars().any(char::is_control) {
            problems.push(format!(
                "{at}: variable `{var}` lists the value {value:?}, which is empty or contains a control character. Remove it"
            ));
        }
        if seen.contains(&value) {
            problems.push(format!(
                "{at}: variable `{var}` lists the value `{value}` twice. Remove one"
            ));
        }
        seen.push(value);
    }
}

fn is_entry_name(name: &str) -> bool {
    let mut chars = name.chars();
    let starts_well = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    starts_well
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// Checks a connection plugin name, short (`local`) or fully qualified
/// (`community.docker.docker`).
fn is_plugin_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.')
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    let starts_well = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    starts_well && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn managed_options_are_rejected_in_args() {
        for arg in [
            "-i",
            "-ihosts",
            "-vvvC",
            "-e",
            "--extra-vars=@x",
            "--limit=all",
            "--check",
            "--inventory",
            "--",
        ] {
            assert!(check_arg(arg).is_err(), "{arg}");
        }
        for arg in [
            "--diff",
            "-vvv",
            "--forks=10",
            "-D",
            "--become",
            "--timeout=30",
        ] {
            assert!(check_arg(arg).is_ok(), "{arg}");
        }
        assert!(check_arg("10").is_err());
    }

    #[test]
    fn host_lists_and_paths_are_told_apart() {
        assert_eq!(
            check_inventory("localhost,").unwrap(),
            Some(String::from("localhost,"))
        );
        assert_eq!(check_inventory("inventory/hosts.ini").unwrap(), None);
        assert!(check_inventory("web1,$(id),").is_err());
        assert!(check_inventory("").is_err());
    }

    #[test]
    fn connection_names_are_plugin_names() {
        assert!(is_plugin_name("local"));
        assert!(is_plugin_name("community.docker.docker"));
        assert!(!is_plugin_name("ssh -o ProxyCommand=x"));
        assert!(!is_plugin_name(""));
    }
}
