//! Loading the configuration: the shipped file and playbook, the declared action, and the
//! messages for broken files.

use std::path::Path;
use std::time::Duration;

use serde_json::json;
use tend_plugin_api::process::{ProgramCall, run_program};
use tend_plugin_api::{CancellationToken, ParamType, Plugin};
use tend_plugin_deployment::{CheckMode, DeploymentPlugin, Inventory, RecordSource};

fn problems(yaml: &str) -> Vec<String> {
    DeploymentPlugin::from_yaml("/etc/tend/deployment.yaml", yaml)
        .unwrap_err()
        .problems
}

fn shipped_file() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deployment.yaml")
}

#[test]
fn shipped_file_loads() {
    let plugin = DeploymentPlugin::load(shipped_file()).unwrap();

    assert_eq!(plugin.name(), "deployment");
    assert_eq!(plugin.actions().len(), 1);
    let config = plugin.config();
    assert_eq!(
        config.ansible_playbook,
        Path::new("/usr/bin/ansible-playbook")
    );
    let restart = &config.playbooks["restart_service"];
    assert_eq!(
        restart.path,
        Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks/restart_service.yml")
    );
    assert!(restart.path.is_file());
    assert_eq!(
        restart.inventory,
        Inventory::Hosts(String::from("localhost,"))
    );
    assert_eq!(restart.connection.as_deref(), Some("local"));
    assert_eq!(restart.check_mode, CheckMode::Always);
    assert_eq!(restart.args, ["--diff"]);
    assert_eq!(restart.record_vars["incident_number"], RecordSource::Number);
    assert_eq!(restart.record_vars["ci_name"], RecordSource::Ci);
    assert!(restart.param_vars["service"].required);
}

#[tokio::test]
async fn shipped_playbook_passes_ansibles_syntax_check() {
    let program = Path::new("/usr/bin/ansible-playbook");
    if !program.is_file() {
        eprintln!(
            "skipped: ansible-playbook is not installed at {}. Run scripts/ensure-plugin-tools.sh to install it",
            program.display()
        );
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let playbook = Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks/restart_service.yml");
    let call = ProgramCall::new(program, Duration::from_secs(120))
        .args(["--syntax-check", "--inventory=localhost,", "--"])
        .arg(&playbook)
        .env("HOME", home.path())
        .env("LC_ALL", "C.UTF-8");

    let result = run_program(call, CancellationToken::new()).await;

    assert!(result.succeeded(), "{result:#?}");
}

#[test]
fn action_declares_playbooks_and_their_variables() {
    let plugin = DeploymentPlugin::load(shipped_file()).unwrap();

    let spec = &plugin.actions()[0];
    assert_eq!(spec.name, "run_playbook");
    assert_eq!(spec.timeout_seconds, 1800);
    assert_eq!(spec.roles, ["technician"]);
    assert!(!spec.idempotent);
    let keys: Vec<&str> = spec.params.keys().map(String::as_str).collect();
    assert_eq!(keys, ["playbook", "limit", "check", "extra_vars"]);
    assert_eq!(spec.params["playbook"].kind, ParamType::Enum);
    assert_eq!(spec.params["playbook"].values, ["restart_service"]);
    assert_eq!(
        spec.params["playbook"].default,
        Some(json!("restart_service"))
    );
    assert_eq!(spec.params["check"].default, Some(json!(false)));
    assert_eq!(spec.params["extra_vars"].kind, ParamType::List);
    assert_eq!(
        spec.params["extra_vars"].description,
        "Variables as name=value, one per element. restart_service: service (required; one of nginx, apache2, postgresql)"
    );
}

#[test]
fn relative_paths_are_read_from_the_files_directory() {
    let plugin = DeploymentPlugin::from_yaml(
        "/etc/tend/plugins/deployment/deployment.yaml",
        "playbooks:\n  site:\n    playbook: playbooks/site.yml\n    inventory: inventory/hosts.ini\n",
    )
    .unwrap();

    let site = &plugin.config().playbooks["site"];
    assert_eq!(
        site.path,
        Path::new("/etc/tend/plugins/deployment/playbooks/site.yml")
    );
    assert_eq!(
        site.inventory,
        Inventory::Path("/etc/tend/plugins/deployment/inventory/hosts.ini".into())
    );
    let missing = plugin.missing_setup();
    assert!(
        missing.iter().any(|line| line.starts_with(
            "The playbook file /etc/tend/plugins/deployment/playbooks/site.yml of playbook `site` does not exist."
        )),
        "{missing:#?}"
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let found = problems(
        r#"
ansible_playbook: ansible-playbook
output_limit_bytes: 0
playbooks:
  Site:
    playbook: site.yml
    inventory: "web1,$(id),"
    connection: "ssh -o ProxyCommand=x"
    args: [-i, "--extra-vars=@x", "10", --]
  vars:
    playbook: vars.yml
    inventory: "localhost,"
    record_vars:
      ansible_python_interpreter: number
      host: fields.
      1st: title
      shared: ci
    param_vars:
      hostvars: {}
      shared: {}
      level: {values: [low, low, ""], max_length: 0}
"#,
    );

    let expected = [
        "/etc/tend/deployment.yaml: `ansible_playbook` `ansible-playbook` is not an absolute path. Write the full path of the program, such as /usr/bin/ansible-playbook (`command -v ansible-playbook` prints it)",
        "/etc/tend/deployment.yaml: output_limit_bytes is 0. Set it between 1 and 16777216, or remove it for 262144",
        "/etc/tend/deployment.yaml: playbook `Site`: the name is invalid. Use lowercase letters, digits, `_` and `-`, starting with a letter or digit, at most 64 characters, such as `restart_service`",
        "/etc/tend/deployment.yaml: playbook `Site`: `inventory` contains entries that are not host names: `$(id)`. In a host list, write names or addresses separated by commas, such as `web1,web2,`",
        "/etc/tend/deployment.yaml: playbook `Site`: `connection` `ssh -o ProxyCommand=x` is not a connection plugin name. Write a name such as `local` or `ssh`",
        "/etc/tend/deployment.yaml: playbook `Site`: argument `-i` sets an option that the plugin sets itself. Use `inventory`, `connection` and `check_mode` of the entry, and the run's `limit`, `check` and `extra_vars` instead",
        "/etc/tend/deployment.yaml: playbook `Site`: argument `--extra-vars=@x` sets an option that the plugin sets itself. Use `inventory`, `connection` and `check_mode` of the entry, and the run's `limit`, `check` and `extra_vars` instead",
        "/etc/tend/deployment.yaml: playbook `Site`: argument `10` is not an option. Write each option with its value in one argument, such as `--forks=10`",
        "/etc/tend/deployment.yaml: playbook `Site`: argument `--` is not allowed. Remove it, because the plugin puts `--` before the playbook itself",
        "/etc/tend/deployment.yaml: playbook `vars`: variable name `ansible_python_interpreter` is reserved by Ansible, and a value from a run could change how Ansible connects or which programs it starts. Choose another name, such as `tend_ansible_python_interpreter`",
        "/etc/tend/deployment.yaml: playbook `vars`: record variable `host`: source `fields.` is unknown. Use `number`, `process`, `title`, `state`, `ci` (the first CI's name), `cis` (all CI names) or `fields.NAME`",
        "/etc/tend/deployment.yaml: playbook `vars`: variable name `1st` is invalid. Use letters, digits and `_`, not starting with a digit, such as `service_name`",
        "/etc/tend/deployment.yaml: playbook `vars`: variable name `hostvars` is reserved by Ansible, and a value from a run could change how Ansible connects or which programs it starts. Choose another name, such as `tend_hostvars`",
        "/etc/tend/deployment.yaml: playbook `vars`: `shared` is both a record variable and a parameter variable. Rename one of them",
        "/etc/tend/deployment.yaml: playbook `vars`: variable `level` has max_length 0, which allows no value. Set a length such as 64, or remove it for 1024",
        "/etc/tend/deployment.yaml: playbook `vars`: variable `level` lists the value `low` twice. Remove one",
        "/etc/tend/deployment.yaml: playbook `vars`: variable `level` lists the value \"\", which is empty or contains a control character. Remove it",
    ];
    assert_eq!(found, expected);
}

#[test]
fn yaml_errors_name_line_and_field() {
    let found = problems(
        "playbooks:\n  site:\n    playbook: site.yml\n    inventory: 'localhost,'\n    check_mode: sometimes\n",
    );

    assert_eq!(found.len(), 1);
    assert!(
        found[0].starts_with(
            "/etc/tend/deployment.yaml:5:17: playbooks.site.check_mode: unknown variant `sometimes`"
        ),
        "{found:#?}"
    );
}

#[test]
fn empty_playbook_list_is_reported() {
    assert_eq!(
        problems("playbooks: {}\n"),
        [
            "/etc/tend/deployment.yaml: `playbooks` is empty. Name at least one playbook, with its `playbook` file and its `inventory`"
        ]
    );
}
