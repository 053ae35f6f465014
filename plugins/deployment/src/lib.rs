//! The deployment plugin runs Ansible playbooks that its configuration file, such as
//! `plugins/deployment/deployment.yaml`, names. Its one action, `run_playbook`, starts
//!
//! ```text
//! ansible-playbook --inventory=INV [--connection=C] [--check] [--limit=PATTERN]
//!                  [--extra-vars=@FILE] [args...] -- PLAYBOOK
//! ```
//!
//! from an argument vector, never through a shell. Variables come from the record (its
//! number, fields, CIs) and from the run's `extra_vars`, as the playbook's entry declares
//! them. They reach Ansible in a temporary YAML file with every string tagged `!unsafe`,
//! so a value such as `{{ lookup('pipe', 'id') }}` stays text (see [`vars`]).
//!
//! Each run gets a temporary directory that is removed afterwards. It contains that file,
//! Ansible's local and remote temporary directories, and the HOME of the run, so a run
//! neither reads nor writes the files of the user Tend runs as. The outcome's summary
//! gives the PLAY RECAP's counts per host; the output keeps the log, cut in the middle
//! when it is long, so the recap at its end stays.

mod config;
mod recap;
mod vars;

use std::path::Path;
use std::time::Duration;

use indexmap::IndexMap;
use serde_json::{Map, Value, json};
use tend_plugin_api::process::{ProgramCall, ProgramEnd, ProgramResult, run_program};
use tend_plugin_api::{
    ActionOutcome, ActionRequest, ActionSpec, CancellationToken, ParamError, ParamErrors,
    ParamSpec, ParamType, Plugin, PluginError, RecordContext, check_actions, validate_params,
};

pub use config::{
    CheckMode, Config, ConfigError, DEFAULT_ANSIBLE_PLAYBOOK, DEFAULT_OUTPUT_LIMIT,
    DEFAULT_TIMEOUT_SECONDS, DEFAULT_VALUE_LENGTH, Inventory, MAX_OUTPUT_LIMIT, ParamVar, Playbook,
};
pub use recap::{HostCounts, parse_recap};
pub use vars::{RecordSource, extra_vars_yaml};

/// Bytes of ansible-playbook's standard output read, so the recap at the end of a long log
/// is still found. The outcome keeps `output_limit_bytes` of it.
const LOG_READ_LIMIT: usize = 16 * 1024 * 1024;

/// Maximum length of the host pattern a run may give as `limit`.
const MAX_LIMIT_LENGTH: usize = 1024;

/// Hosts named one by one in a summary; the rest are counted.
const HOSTS_IN_SUMMARY: usize = 5;

/// The deployment plugin, loaded from its configuration file.
#[derive(Debug, Clone)]
pub struct DeploymentPlugin {
    config: Config,
    specs: Vec<ActionSpec>,
}

/// A run whose parameters passed every check, ready to start.
#[derive(Debug, Clone)]
pub struct PreparedRun<'a> {
    pub playbook: &'a Playbook,
    pub limit: Option<String>,
    pub check: bool,
    /// Variables passed to Ansible, record variables first.
    pub vars: IndexMap<String, Value>,
    /// Record variables that the record does not fill, which are left out.
    pub missing_vars: Vec<String>,
}

impl DeploymentPlugin {
    /// Name of the plugin in the registry and in requests.
    pub const NAME: &'static str = "deployment";

    /// Loads the configuration file at `file`.
    pub fn load(file: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let file = file.as_ref();
        let text = std::fs::read_to_string(file).map_err(|error| ConfigError {
            file: file.to_path_buf(),
            problems: vec![format!(
                "{}: could not read the deployment plugin's configuration: {error}. Check the path, or create the file with a `playbooks:` map",
                file.display()
            )],
        })?;
        Self::from_yaml(file, &text)
    }

    /// Loads a configuration from its text. `file` names it in messages, and relative
    /// paths in it are read from its directory.
    pub fn from_yaml(file: impl AsRef<Path>, text: &str) -> Result<Self, ConfigError> {
        let file = file.as_ref();
        let config = config::parse_config(file, text)?;
        let specs = vec![run_playbook_spec(&config)];
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
        Ok(DeploymentPlugin { config, specs })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Lists what a run would miss on this machine (ansible-playbook, a playbook file, an
    /// inventory), one sentence each, so a server can warn at start.
    pub fn missing_setup(&self) -> Vec<String> {
        let mut missing = Vec::new();
        if !self.config.ansible_playbook.is_file() {
            missing.push(self.program_missing());
        }
        for playbook in self.config.playbooks.values() {
            if let Err(problem) = self.check_playbook_setup(playbook) {
                missing.push(problem);
            }
        }
        missing
    }

    /// Checks the parameters of a run of `run_playbook` against the playbook's entry and
    /// collects its variables, without starting anything. Every problem is reported at
    /// once.
    pub fn prepare(
        &self,
        params: &Map<String, Value>,
        record: Option<&RecordContext>,
    ) -> Result<PreparedRun<'_>, PluginError> {
        let params = validate_params(&self.specs[0], params)
            .map_err(|errors| PluginError::Failed(errors.to_string()))?;
        let name = params
            .get("playbook")
            .and_then(Value::as_str)
            .unwrap_or_default();
        // Validation admits only configured names.
        let playbook = &self.config.playbooks[name];
        let mut errors = Vec::new();

        let limit = params.get("limit").and_then(Value::as_str);
        if let Some(limit) = limit
            && let Err((problem, fix)) = check_limit(limit)
        {
            errors.push(ParamError {
                param: String::from("limit"),
                value: Some(shown_value(limit)),
                problem,
                fix,
            });
        }

        let requested = params
            .get("check")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let check = match playbook.check_mode {
            CheckMode::Always => true,
            CheckMode::Allowed => requested,
            CheckMode::Never if requested => {
                errors.push(ParamError {
                    param: String::from("check"),
                    value: Some(String::from("true")),
                    problem: format!(
                        "asks for a dry run, which playbook `{name}` does not support"
                    ),
                    fix: String::from(
                        "Run it without `check`, or set `check_mode: allowed` for the playbook",
                    ),
                });
                false
            }
            CheckMode::Never => false,
        };

        let mut vars = IndexMap::new();
        let mut missing_vars = Vec::new();
        for (var, source) in &playbook.record_vars {
            match record.and_then(|record| source.value(record)) {
                Some(value) => {
                    vars.insert(var.clone(), value);
                }
                None => missing_vars.push(var.clone()),
            }
        }
        let given: Vec<&str> = params
            .get("extra_vars")
            .and_then(Value::as_array)
            .map(|items| items.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for (var, value) in param_vars(playbook, &given, &mut errors) {
            vars.insert(var, Value::from(value));
        }

        if !errors.is_empty() {
            return Err(PluginError::Failed(
                ParamErrors {
                    action: String::from("run_playbook"),
                    errors,
                }
                .to_string(),
            ));
        }
        Ok(PreparedRun {
            playbook,
            limit: limit.map(str::to_owned),
            check,
            vars,
            missing_vars,
        })
    }

    async fn run_playbook(
        &self,
        request: &ActionRequest,
        cancel: CancellationToken,
    ) -> Result<ActionOutcome, PluginError> {
        let prepared = self.prepare(&request.params, request.record.as_ref())?;
        let playbook = prepared.playbook;
        if !self.config.ansible_playbook.is_file() {
            return Ok(ActionOutcome::failed(self.program_missing(), ""));
        }
        if let Err(problem) = self.check_playbook_setup(playbook) {
            return Ok(ActionOutcome::failed(problem, ""));
        }

        let scratch = match Scratch::create(&prepared.vars) {
            Ok(scratch) => scratch,
            Err(error) => {
                return Ok(ActionOutcome::failed(
                    format!(
                        "Could not prepare the run of playbook `{}`: {error}. Check that the temporary directory ({}) is writable",
                        playbook.name,
                        std::env::temp_dir().display()
                    ),
                    "",
                ));
            }
        };
        let call = self.program_call(&prepared, &scratch);
        let mut argv = vec![call.program.display().to_string()];
        argv.extend(
            call.args
                .iter()
                .map(|arg| arg.to_string_lossy().into_owned()),
        );

        let result = run_program(call, cancel).await;
        drop(scratch);
        if result.end == ProgramEnd::Cancelled {
            return Err(PluginError::Cancelled);
        }
        Ok(self.outcome(&prepared, argv, &result))
    }

    /// Builds the program call: arguments, environment and working directory.
    fn program_call(&self, prepared: &PreparedRun<'_>, scratch: &Scratch) -> ProgramCall {
        let playbook = prepared.playbook;
        let mut call = ProgramCall::new(
            &self.config.ansible_playbook,
            Duration::from_secs(self.config.timeout_seconds),
        )
        .arg(format!("--inventory={}", playbook.inventory.argument()));
        if let Some(connection) = &playbook.connection {
            call = call.arg(format!("--connection={connection}"));
        }
        if prepared.check {
            call = call.arg("--check");
        }
        if let Some(limit) = &prepared.limit {
            call = call.arg(format!("--limit={limit}"));
        }
        if let Some(file) = &scratch.vars_file {
            call = call.arg(format!("--extra-vars=@{}", file.display()));
        }
        call = call.args(&playbook.args).arg("--").arg(&playbook.path);

        if let Some(dir) = playbook.path.parent() {
            call = call.working_dir(dir);
        }
        call.env("HOME", scratch.home())
            // Ansible stops unless the locale's encoding is UTF-8.
            .env("LC_ALL", "C.UTF-8")
            .env("ANSIBLE_NOCOLOR", "1")
            .env("ANSIBLE_HOST_KEY_CHECKING", "False")
            .env("ANSIBLE_LOCAL_TEMP", scratch.local_temp())
            .env("ANSIBLE_REMOTE_TEMP", scratch.remote_temp())
            .env("ANSIBLE_RETRY_FILES_ENABLED", "False")
            // The recap is read from the default output format.
            .env("ANSIBLE_STDOUT_CALLBACK", "default")
            .output_limit(LOG_READ_LIMIT)
    }

    fn outcome(
        &self,
        prepared: &PreparedRun<'_>,
        argv: Vec<String>,
        result: &ProgramResult,
    ) -> ActionOutcome {
        let name = &prepared.playbook.name;
        let mode = if prepared.check { " in check mode" } else { "" };
        let hosts = parse_recap(&result.stdout.text).unwrap_or_default();
        let failed_hosts: Vec<&String> = hosts
            .iter()
            .filter(|(_, counts)| counts.has_failures())
            .map(|(host, _)| host)
            .collect();
        let exit_code = match result.end {
            ProgramEnd::Exited(code) => Some(code),
            _ => None,
        };

        let succeeded = result.succeeded() && !hosts.is_empty() && failed_hosts.is_empty();
        let summary = match &result.end {
            ProgramEnd::NotStarted(reason) => format!(
                "Playbook `{name}` could not start: {reason}. Install ansible-core, or fix `ansible_playbook` in {}",
                self.config.file.display()
            ),
            ProgramEnd::TimedOut => format!(
                "Playbook `{name}`{mode} timed out after {} s and was stopped{}",
                self.config.timeout_seconds,
                hosts_suffix(&hosts)
            ),
            _ if hosts.is_empty() && result.succeeded() => {
                format!("Playbook `{name}`{mode} ran on no host. Check the inventory and the limit")
            }
            _ if hosts.is_empty() => format!(
                "Playbook `{name}`{mode} failed before any host ran: ansible-playbook {}{}",
                result.describe_end(),
                first_error(result)
                    .map(|line| format!(": {line}"))
                    .unwrap_or_default()
            ),
            _ if succeeded => format!(
                "Playbook `{name}`{mode} succeeded on {}: {}",
                count(hosts.len(), "host", "hosts"),
                describe_hosts(&hosts, &[])
            ),
            _ if failed_hosts.is_empty() => format!(
                "Playbook `{name}`{mode} failed: ansible-playbook {}: {}",
                result.describe_end(),
                describe_hosts(&hosts, &[])
            ),
            _ => format!(
                "Playbook `{name}`{mode} failed on {} of {}: {}",
                failed_hosts.len(),
                count(hosts.len(), "host", "hosts"),
                describe_hosts(&hosts, &failed_hosts)
            ),
        };

        let output = cut_middle(&combined_log(result), self.config.output_limit);
        let mut outcome = if succeeded {
            ActionOutcome::succeeded(summary, output)
        } else {
            ActionOutcome::failed(summary, output)
        };
        outcome.data = json!({
            "playbook": name,
            "playbook_file": prepared.playbook.path,
            "inventory": prepared.playbook.inventory.argument(),
            "check": prepared.check,
            "limit": prepared.limit,
            "extra_vars": prepared.vars,
            "missing_vars": prepared.missing_vars,
            "recap": hosts,
            "failed_hosts": failed_hosts,
            "argv": argv,
            "exit_code": exit_code,
            "timed_out": result.end == ProgramEnd::TimedOut,
            "duration_ms": u64::try_from(result.duration.as_millis()).unwrap_or(u64::MAX),
        });
        outcome
    }

    fn check_playbook_setup(&self, playbook: &Playbook) -> Result<(), String> {
        let file = self.config.file.display();
        let name = &playbook.name;
        if !playbook.path.is_file() {
            return Err(format!(
                "The playbook file {} of playbook `{name}` does not exist. Create it, or fix `playbook` of `{name}` in {file}",
                playbook.path.display()
            ));
        }
        if let Inventory::Path(path) = &playbook.inventory
            && !path.exists()
        {
            return Err(format!(
                "The inventory {} of playbook `{name}` does not exist. Create it, or fix `inventory` of `{name}` in {file}, such as `localhost,` for this machine",
                path.display()
            ));
        }
        Ok(())
    }

    fn program_missing(&self) -> String {
        format!(
            "ansible-playbook is not installed at {}. Install it (Debian: apt-get install ansible-core), or fix `ansible_playbook` in {}",
            self.config.ansible_playbook.display(),
            self.config.file.display()
        )
    }
}

#[async_trait::async_trait]
impl Plugin for DeploymentPlugin {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn description(&self) -> &str {
        "Runs Ansible playbooks with variables from the record"
    }

    fn actions(&self) -> &[ActionSpec] {
        &self.specs
    }

    async fn run(
        &self,
        request: ActionRequest,
        cancel: CancellationToken,
    ) -> Result<ActionOutcome, PluginError> {
        if request.action != self.specs[0].name {
            return Err(PluginError::UnknownAction {
                plugin: Self::NAME.to_owned(),
                action: request.action,
            });
        }
        self.run_playbook(&request, cancel).await
    }
}

/// The temporary directory of one run, removed when dropped.
struct Scratch {
    dir: tempfile::TempDir,
    vars_file: Option<std::path::PathBuf>,
}

impl Scratch {
    fn create(vars: &IndexMap<String, Value>) -> std::io::Result<Scratch> {
        let dir = tempfile::Builder::new()
            .prefix("tend-deployment-")
            .tempdir()?;
        for sub in ["home", "local-temp", "remote-temp"] {
            std::fs::create_dir(dir.path().join(sub))?;
        }
        let vars_file = if vars.is_empty() {
            None
        } else {
            let file = dir.path().join("extra-vars.yml");
            std::fs::write(&file, extra_vars_yaml(vars))?;
            Some(file)
        };
        Ok(Scratch { dir, vars_file })
    }

    fn home(&self) -> std::path::PathBuf {
        self.dir.path().join("home")
    }

    fn local_temp(&self) -> std::path::PathBuf {
        self.dir.path().join("local-temp")
    }

    fn remote_temp(&self) -> std::path::PathBuf {
        self.dir.path().join("remote-temp")
    }
}

/// Declares `run_playbook`, with the configured playbooks as the allowed values and each
/// playbook's variables in the description of `extra_vars`.
fn run_playbook_spec(config: &Config) -> ActionSpec {
    let names: Vec<String> = config.playbooks.keys().cloned().collect();
    let mut params = IndexMap::new();
    params.insert(
        String::from("playbook"),
        ParamSpec {
            kind: ParamType::Enum,
            label: String::from("Playbook"),
            description: String::new(),
            required: true,
            default: (names.len() == 1).then(|| Value::from(names[0].clone())),
            values: names,
            max_length: None,
        },
    );
    params.insert(
        String::from("limit"),
        ParamSpec {
            kind: ParamType::String,
            label: String::from("Limit to hosts"),
            description: String::from(
                "Ansible host pattern, such as web1 or webservers:!web3; leave empty for every host of the inventory",
            ),
            required: false,
            default: None,
            values: Vec::new(),
            max_length: Some(MAX_LIMIT_LENGTH),
        },
    );
    params.insert(
        String::from("check"),
        ParamSpec {
            kind: ParamType::Boolean,
            label: String::from("Dry run"),
            description: String::from(
                "Run in Ansible's check mode, which reports changes without making them",
            ),
            required: false,
            default: Some(Value::Bool(false)),
            values: Vec::new(),
            max_length: None,
        },
    );
    params.insert(
        String::from("extra_vars"),
        ParamSpec {
            kind: ParamType::List,
            label: String::from("Variables"),
            description: extra_vars_help(config),
            required: false,
            default: None,
            values: Vec::new(),
            max_length: Some(config::DEFAULT_VALUE_LENGTH.max(max_declared_length(config)) + 65),
        },
    );

    ActionSpec {
        name: String::from("run_playbook"),
        label: String::from("Run playbook"),
        description: String::from("Runs an Ansible playbook with variables from the record"),
        params,
        timeout_seconds: config.timeout_seconds,
        roles: config.roles.clone(),
        needs_approval: config.needs_approval,
        idempotent: false,
    }
}

/// Describes the variables each playbook takes, as "name=value elements. restart_service:
/// service (required: nginx, postgresql)".
fn extra_vars_help(config: &Config) -> String {
    let mut parts = vec![String::from("Variables as name=value, one per element")];
    for playbook in config.playbooks.values() {
        if playbook.param_vars.is_empty() {
            continue;
        }
        let vars: Vec<String> = playbook
            .param_vars
            .iter()
            .map(|(var, declaration)| {
                let mut notes = Vec::new();
                if declaration.required {
                    notes.push(String::from("required"));
                }
                if !declaration.values.is_empty() {
                    notes.push(format!("one of {}", declaration.values.join(", ")));
                }
                if notes.is_empty() {
                    var.clone()
                } else {
                    format!("{var} ({})", notes.join("; "))
                }
            })
            .collect();
        parts.push(format!("{}: {}", playbook.name, vars.join(", ")));
    }
    parts.join(". ")
}

fn max_declared_length(config: &Config) -> usize {
    config
        .playbooks
        .values()
        .flat_map(|playbook| playbook.param_vars.values())
        .map(ParamVar::max_length)
        .max()
        .unwrap_or(0)
}

/// Reads the `name=value` elements of `extra_vars` against the playbook's declarations.
fn param_vars(
    playbook: &Playbook,
    given: &[&str],
    errors: &mut Vec<ParamError>,
) -> Vec<(String, String)> {
    let name = &playbook.name;
    let declared = || {
        if playbook.param_vars.is_empty() {
            format!("Playbook `{name}` takes no variables, so leave `extra_vars` out")
        } else {
            format!(
                "Playbook `{name}` takes {}",
                playbook
                    .param_vars
                    .keys()
                    .map(|var| format!("`{var}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    };
    let mut set = Vec::new();
    for (index, element) in given.iter().enumerate() {
        let param = format!("extra_vars[{index}]");
        let mut reject = |problem: String, fix: String| {
            errors.push(ParamError {
                param: param.clone(),
                value: Some(shown_value(element)),
                problem,
                fix,
            });
        };
        let Some((var, value)) = element.split_once('=') else {
            reject(
                String::from("is not of the form name=value"),
                format!("Write it as name=value. {}", declared()),
            );
            continue;
        };
        let Some(declaration) = playbook.param_vars.get(var) else {
            reject(
                format!("sets `{var}`, which is not a variable of playbook `{name}`"),
                declared(),
            );
            continue;
        };
        if set.iter().any(|(seen, _): &(String, String)| seen == var) {
            reject(
                format!("sets `{var}` a second time"),
                String::from("Give each variable once"),
            );
            continue;
        }
        let length = value.chars().count();
        if length > declaration.max_length() {
            reject(
                format!(
                    "sets `{var}` to {length} characters, more than its maximum of {}",
                    declaration.max_length()
                ),
                String::from("Shorten the value"),
            );
            continue;
        }
        if !declaration.values.is_empty() && !declaration.values.iter().any(|v| v == value) {
            reject(
                format!("sets `{var}` to a value it does not allow"),
                format!("Use one of {}", declaration.values.join(", ")),
            );
            continue;
        }
        set.push((var.to_owned(), value.to_owned()));
    }
    for (var, declaration) in &playbook.param_vars {
        if declaration.required && !set.iter().any(|(seen, _)| seen == var) {
            errors.push(ParamError {
                param: String::from("extra_vars"),
                value: None,
                problem: format!("does not set `{var}`, which playbook `{name}` requires"),
                fix: format!("Add an element {var}=VALUE"),
            });
        }
    }
    set
}

/// Checks a host pattern: letters, digits and `. _ - : , * ! & [ ]`. That admits names,
/// groups, wildcards, exclusions, intersections and ranges, but not `@file`, which makes
/// Ansible read the pattern from a file, nor `~regex`. The error is a problem and its fix.
fn check_limit(limit: &str) -> Result<(), (String, String)> {
    if limit.is_empty() {
        return Err((
            String::from("is empty"),
            String::from("Leave `limit` out to run on every host of the inventory"),
        ));
    }
    let allowed = |c: char| {
        c.is_ascii_alphanumeric()
            || matches!(c, '.' | '_' | '-' | ':' | ',' | '*' | '!' | '&' | '[' | ']')
    };
    if let Some(bad) = limit.chars().find(|c| !allowed(*c)) {
        return Err((
            format!("contains {bad:?}, which a host pattern here may not contain"),
            String::from(
                "Use host and group names with `*`, `!`, `&`, `:` and `,`, such as webservers:!web3",
            ),
        ));
    }
    if limit.starts_with('-') {
        return Err((
            String::from("starts with `-`"),
            String::from("Give a host or group name, such as web1"),
        ));
    }
    Ok(())
}

/// Returns ansible-playbook's first `ERROR!` line, or the last line of stderr.
fn first_error(result: &ProgramResult) -> Option<String> {
    let texts = [&result.stderr.text, &result.stdout.text];
    texts
        .iter()
        .flat_map(|text| text.lines())
        .find(|line| line.starts_with("ERROR!"))
        .or_else(|| {
            result
                .stderr
                .text
                .lines()
                .rev()
                .find(|line| !line.trim().is_empty())
        })
        .map(|line| line.trim().to_owned())
}

fn hosts_suffix(hosts: &IndexMap<String, HostCounts>) -> String {
    if hosts.is_empty() {
        String::new()
    } else {
        format!(": {}", describe_hosts(hosts, &[]))
    }
}

/// Describes hosts as "web1 ok=2 changed=1 unreachable=0 failed=0; web2 ...", the failed
/// ones first, and counts those beyond the first few.
fn describe_hosts(hosts: &IndexMap<String, HostCounts>, first: &[&String]) -> String {
    let mut order: Vec<&String> = first.to_vec();
    order.extend(hosts.keys().filter(|host| !first.contains(host)));
    let mut parts: Vec<String> = order
        .iter()
        .take(HOSTS_IN_SUMMARY)
        .map(|host| format!("{host} {}", hosts[*host].describe()))
        .collect();
    if order.len() > HOSTS_IN_SUMMARY {
        let rest = order.len() - HOSTS_IN_SUMMARY;
        let noun = if rest == 1 { "host" } else { "hosts" };
        parts.push(format!("and {rest} more {noun}"));
    }
    parts.join("; ")
}

fn combined_log(result: &ProgramResult) -> String {
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

/// Keeps the head and the tail of `text` within `limit` bytes, with a note in between,
/// so both the first tasks and the recap stay.
fn cut_middle(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_owned();
    }
    let mut head_end = limit / 2;
    while !text.is_char_boundary(head_end) {
        head_end -= 1;
    }
    let mut tail_start = text.len() - (limit - limit / 2);
    while !text.is_char_boundary(tail_start) {
        tail_start += 1;
    }
    format!(
        "{}\n[output cut: {} bytes in the middle were not kept]\n{}",
        &text[..head_end],
        tail_start - head_end,
        &text[tail_start..]
    )
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

fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_patterns_are_checked() {
        for good in [
            "web1",
            "webservers:!web3",
            "web*",
            "all",
            "db[0:3]",
            "a,b",
            "g1:&g2",
        ] {
            assert!(check_limit(good).is_ok(), "{good}");
        }
        for bad in [
            "@/etc/passwd",
            "~web.*",
            "all;id",
            "$(id)",
            "a b",
            "-i",
            "",
            "web'1",
        ] {
            assert!(check_limit(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn long_logs_keep_head_and_tail() {
        let log = format!("{}PLAY RECAP\nlocalhost : ok=1", "x".repeat(1000));

        let cut = cut_middle(&log, 100);

        assert!(cut.starts_with(&"x".repeat(50)));
        assert!(cut.ends_with("PLAY RECAP\nlocalhost : ok=1"), "{cut}");
        assert!(cut.contains("[output cut: 927 bytes in the middle were not kept]"));
        assert_eq!(cut_middle("short", 100), "short");
    }

    #[test]
    fn cuts_respect_character_boundaries() {
        let log = "é".repeat(100);

        let cut = cut_middle(&log, 51);

        assert!(cut.starts_with(&"é".repeat(12)));
        assert!(cut.ends_with(&"é".repeat(13)));
    }

    #[test]
    fn summaries_list_failed_hosts_first() {
        let mut hosts = IndexMap::new();
        for (host, failed) in [
            ("a", 0),
            ("b", 1),
            ("c", 0),
            ("d", 0),
            ("e", 0),
            ("f", 0),
            ("g", 1),
        ] {
            hosts.insert(
                String::from(host),
                HostCounts {
                    failed,
                    ..HostCounts::default()
                },
            );
        }
        let b = String::from("b");
        let g = String::from("g");

        let text = describe_hosts(&hosts, &[&b, &g]);

        assert!(
            text.starts_with("b ok=0 changed=0 unreachable=0 failed=1; g ok=0"),
            "{text}"
        );
        assert!(text.ends_with("; and 2 more hosts"), "{text}");
    }
}
