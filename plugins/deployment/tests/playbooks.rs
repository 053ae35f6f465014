//! Runs of real playbooks through the `Plugin` trait: ansible-playbook with `-c local`
//! against localhost, with playbooks written into a temporary directory.
//!
//! The tests need ansible-playbook at /usr/bin/ansible-playbook;
//! `scripts/ensure-plugin-tools.sh` installs it. Without it they print why and pass, unless
//! `TEND_REQUIRE_PLUGIN_TOOLS=1` is set, which makes them fail instead.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;
use tend_plugin_api::process::{ProgramCall, run_program};
use tend_plugin_api::{
    ActionOutcome, ActionRequest, CancellationToken, OutcomeStatus, Plugin, PluginError,
    RecordContext,
};
use tend_plugin_deployment::DeploymentPlugin;

const ANSIBLE_PLAYBOOK: &str = "/usr/bin/ansible-playbook";

/// Values that Ansible would run or expand if it templated them, or that a shell would.
const HOSTILE: [&str; 8] = [
    "{{ lookup('pipe','id') }}",
    "{{ 6 * 7 }}",
    "{% for x in [1, 2] %}loop{% endfor %}",
    "$(id)",
    "`id`",
    "'single' \"double\" \\back\\slash",
    "é€😀 and a tab\there",
    "{{ note }}",
];

/// Returns whether ansible-playbook is there; prints why the test is skipped when it is
/// not.
fn ansible_installed() -> bool {
    if Path::new(ANSIBLE_PLAYBOOK).is_file() {
        return true;
    }
    if std::env::var("TEND_REQUIRE_PLUGIN_TOOLS").as_deref() == Ok("1") {
        panic!(
            "{ANSIBLE_PLAYBOOK} is missing and TEND_REQUIRE_PLUGIN_TOOLS=1: run scripts/ensure-plugin-tools.sh"
        );
    }
    eprintln!(
        "skipped: ansible-playbook is not installed at {ANSIBLE_PLAYBOOK}. Run scripts/ensure-plugin-tools.sh to install it"
    );
    false
}

/// A directory with playbooks, an output directory they write into, and the plugin's
/// configuration.
struct Fixture {
    dir: TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let fixture = Fixture {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir(fixture.out()).unwrap();
        let out = fixture.out().display().to_string();

        fixture.write(
            "write_note.yml",
            &format!(
                r#"- hosts: all
  gather_facts: false
  tasks:
    - name: Write the note
      ansible.builtin.copy:
        dest: "{out}/{{{{ incident_number | default('no-record') }}}}.txt"
        content: "incident={{{{ incident_number | default('none') }}}}\nci={{{{ ci_name | default('none') }}}}\nservice={{{{ service | default('none') }}}}\nnote={{{{ note | default('none') }}}}\n"
"#
            ),
        );
        fixture.write(
            "echo_vars.yml",
            &format!(
                r#"- hosts: all
  gather_facts: false
  tasks:
    - name: Write the note as it is
      ansible.builtin.copy:
        dest: "{out}/note.txt"
        content: "{{{{ note }}}}"
    - name: Write the record's details as JSON
      ansible.builtin.copy:
        dest: "{out}/details.json"
        content: "{{{{ details | to_json }}}}"
"#
            ),
        );
        fixture.write(
            "broken.yml",
            r#"- hosts: all
  gather_facts: false
  tasks:
    - name: Say hello
      ansible.builtin.debug:
        msg: hello
    - name: Fail on purpose
      ansible.builtin.fail:
        msg: deliberate failure
    - name: Never reached
      ansible.builtin.debug:
        msg: unreachable
"#,
        );
        fixture.write("syntax.yml", "- hosts: all\n  tasks: [ {bad\n");
        fixture.write(
            "environment.yml",
            &format!(
                r#"- hosts: all
  gather_facts: false
  tasks:
    - name: Write HOME and the temporary directories
      ansible.builtin.copy:
        dest: "{out}/environment.txt"
        content: "{{{{ lookup('env', 'HOME') }}}}\n{{{{ lookup('env', 'ANSIBLE_LOCAL_TEMP') }}}}\n{{{{ lookup('env', 'ANSIBLE_REMOTE_TEMP') }}}}\n"
"#
            ),
        );
        fixture.write(
            "wait.yml",
            r#"- hosts: all
  gather_facts: false
  tasks:
    - name: Wait for a long time
      ansible.builtin.command: "{{ playbook_dir }}/wait.sh"
"#,
        );
        let wait = fixture.root().join("wait.sh");
        std::fs::write(&wait, "#!/bin/sh\nsleep 300\n").unwrap();
        let status = std::process::Command::new("/usr/bin/chmod")
            .arg("+x")
            .arg(&wait)
            .status()
            .unwrap();
        assert!(status.success());
        fixture
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn out(&self) -> PathBuf {
        self.root().join("out")
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.root().join(name), text).unwrap();
    }

    fn config(&self) -> String {
        let root = self.root().display();
        format!(
            r#"
ansible_playbook: {ANSIBLE_PLAYBOOK}
timeout_seconds: 120
roles: [technician]
playbooks:
  write_note:
    playbook: {root}/write_note.yml
    inventory: "localhost,"
    connection: local
    record_vars:
      incident_number: number
      ci_name: ci
      service: fields.service
    param_vars:
      note: {{description: Free text for the note}}
  echo_vars:
    playbook: {root}/echo_vars.yml
    inventory: "localhost,"
    connection: local
    record_vars:
      details: fields.details
    param_vars:
      note: {{}}
  broken:
    playbook: {root}/broken.yml
    inventory: "localhost,"
    connection: local
  syntax:
    playbook: {root}/syntax.yml
    inventory: "localhost,"
    connection: local
  environment:
    playbook: {root}/environment.yml
    inventory: "localhost,"
    connection: local
  wait:
    playbook: {root}/wait.yml
    inventory: "localhost,"
    connection: local
  never_check:
    playbook: {root}/write_note.yml
    inventory: "localhost,"
    connection: local
    check_mode: never
  always_check:
    playbook: {root}/write_note.yml
    inventory: "localhost,"
    connection: local
    check_mode: always
    record_vars:
      incident_number: number
  restart:
    playbook: {root}/write_note.yml
    inventory: "localhost,"
    connection: local
    param_vars:
      service: {{required: true, values: [nginx, postgresql]}}
      note: {{max_length: 10}}
  missing:
    playbook: {root}/does-not-exist.yml
    inventory: "localhost,"
"#
        )
    }

    fn plugin(&self) -> DeploymentPlugin {
        DeploymentPlugin::from_yaml(self.root().join("deployment.yaml"), &self.config()).unwrap()
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.out().join(name)).unwrap()
    }
}

fn record(fields: Value) -> RecordContext {
    RecordContext {
        number: String::from("INC0000042"),
        process: String::from("incident"),
        title: String::from("Share is full"),
        state: String::from("in_progress"),
        fields,
        cis: vec![
            json!({"name": "fs01", "class": "server"}),
            json!({"name": "fs02"}),
        ],
    }
}

fn request(params: Value, record: Option<RecordContext>) -> ActionRequest {
    let Value::Object(params) = params else {
        panic!("params must be an object");
    };
    ActionRequest {
        protocol: tend_plugin_api::PROTOCOL_VERSION,
        run_id: 9,
        plugin: String::from("deployment"),
        action: String::from("run_playbook"),
        params,
        record,
        actor: String::from("alice"),
    }
}

async fn run(
    plugin: &DeploymentPlugin,
    params: Value,
    record: Option<RecordContext>,
) -> ActionOutcome {
    plugin
        .run(request(params, record), CancellationToken::new())
        .await
        .unwrap()
}

async fn rejected(plugin: &DeploymentPlugin, params: Value) -> String {
    let result = plugin
        .run(request(params, None), CancellationToken::new())
        .await;
    match result {
        Err(PluginError::Failed(message)) => message,
        other => panic!("the run was not rejected: {other:?}"),
    }
}

#[tokio::test]
async fn record_fields_become_variables() {
    if !ansible_installed() {
        return;
    }
    let fixture = Fixture::new();

    let outcome = run(
        &fixture.plugin(),
        json!({"playbook": "write_note", "extra_vars": ["note=disk cleaned"]}),
        Some(record(json!({"service": "files"}))),
    )
    .await;

    assert_eq!(outcome.status, OutcomeStatus::Succeeded, "{outcome:#?}");
    assert_eq!(
        fixture.read("INC0000042.txt"),
        "incident=INC0000042\nci=fs01\nservice=files\nnote=disk cleaned\n"
    );
    assert_eq!(
        outcome.summary,
        "Playbook `write_note` succeeded on 1 host: localhost ok=1 changed=1 unreachable=0 failed=0"
    );
    assert_eq!(outcome.data["recap"]["localhost"]["changed"], 1);
    assert_eq!(outcome.data["recap"]["localhost"]["failed"], 0);
    assert_eq!(
        outcome.data["extra_vars"],
        json!({"incident_number": "INC0000042", "ci_name": "fs01", "service": "files", "note": "disk cleaned"})
    );
    assert_eq!(outcome.data["missing_vars"], json!([]));
    assert_eq!(outcome.data["exit_code"], 0);
    assert!(outcome.output.contains("PLAY RECAP"), "{}", outcome.output);
    assert!(
        outcome.output.contains("TASK [Write the note]"),
        "{}",
        outcome.output
    );
    let argv: Vec<&str> = outcome.data["argv"]
        .as_array()
        .unwrap()
        .iter()
        .map(|arg| arg.as_str().unwrap())
        .collect();
    assert_eq!(argv.len(), 6, "{argv:?}");
    assert_eq!(argv[0], ANSIBLE_PLAYBOOK);
    assert_eq!(argv[1], "--inventory=localhost,");
    assert_eq!(argv[2], "--connection=local");
    assert!(argv[3].starts_with("--extra-vars=@"), "{argv:?}");
    assert_eq!(
        argv[4..],
        [
            "--",
            &fixture.root().join("write_note.yml").display().to_string()
        ]
    );
}

#[tokio::test]
async fn run_without_record_leaves_record_variables_out() {
    if !ansible_installed() {
        return;
    }
    let fixture = Fixture::new();

    let outcome = run(&fixture.plugin(), json!({"playbook": "write_note"}), None).await;

    assert_eq!(outcome.status, OutcomeStatus::Succeeded, "{outcome:#?}");
    assert_eq!(
        fixture.read("no-record.txt"),
        "incident=none\nci=none\nservice=none\nnote=none\n"
    );
    assert_eq!(
        outcome.data["missing_vars"],
        json!(["incident_number", "ci_name", "service"])
    );
}

#[tokio::test]
async fn failing_task_fails_the_run() {
    if !ansible_installed() {
        return;
    }
    let fixture = Fixture::new();

    let outcome = run(&fixture.plugin(), json!({"playbook": "broken"}), None).await;

    assert_eq!(outcome.status, OutcomeStatus::Failed);
    assert_eq!(
        outcome.summary,
        "Playbook `broken` failed on 1 of 1 host: localhost ok=1 changed=0 unreachable=0 failed=1"
    );
    assert_eq!(outcome.data["failed_hosts"], json!(["localhost"]));
    assert_eq!(outcome.data["recap"]["localhost"]["ok"], 1);
    assert_eq!(outcome.data["exit_code"], 2);
    assert!(
        outcome.output.contains("deliberate failure"),
        "{}",
        outcome.output
    );
    assert!(outcome.output.contains("PLAY RECAP"), "{}", outcome.output);
    assert!(!outcome.output.contains("TASK [Never reached]"));
}

#[tokio::test]
async fn syntax_error_fails_before_any_host() {
    if !ansible_installed() {
        return;
    }
    let fixture = Fixture::new();

    let outcome = run(&fixture.plugin(), json!({"playbook": "syntax"}), None).await;

    assert_eq!(outcome.status, OutcomeStatus::Failed);
    assert!(
        outcome
            .summary
            .starts_with("Playbook `syntax` failed before any host ran: ansible-playbook exited with code 4 after "),
        "{}",
        outcome.summary
    );
    assert!(
        outcome.summary.ends_with(": ERROR! We were unable to read either as JSON nor YAML, these are the errors we got from each:"),
        "{}",
        outcome.summary
    );
    assert_eq!(outcome.data["recap"], json!({}));
}

#[tokio::test]
async fn hostile_values_stay_literal() {
    if !ansible_installed() {
        return;
    }
    let fixture = Fixture::new();
    let plugin = fixture.plugin();
    let details = json!({
        "{{ 6 * 7 }}": "line one\nline two {{ lookup('pipe','id') }}",
        "list": ["$(id)", "{{ note }}", 42, 2.5, true, null],
    });

    for value in HOSTILE {
        let outcome = run(
            &plugin,
            json!({"playbook": "echo_vars", "extra_vars": [format!("note={value}")]}),
            Some(record(json!({"details": details}))),
        )
        .await;

        assert_eq!(
            outcome.status,
            OutcomeStatus::Succeeded,
            "{value}: {outcome:#?}"
        );
        assert_eq!(fixture.read("note.txt"), value);
        let written: Value = serde_json::from_str(&fixture.read("details.json")).unwrap();
        assert_eq!(written, details, "{value}");
    }
}

/// Shows why the plugin tags values `!unsafe`: this Ansible templates plain extra
/// variables, so a value from a ticket would run a command on the controller.
#[tokio::test]
async fn plain_extra_vars_would_be_templated() {
    if !ansible_installed() {
        return;
    }
    let fixture = Fixture::new();
    let home = fixture.root().join("home");
    std::fs::create_dir(&home).unwrap();
    let plain = json!({"note": "{{ 6 * 7 }}", "details": {}}).to_string();
    let call = ProgramCall::new(ANSIBLE_PLAYBOOK, Duration::from_secs(120))
        .arg("--inventory=localhost,")
        .arg("--connection=local")
        .arg(format!("--extra-vars={plain}"))
        .arg("--")
        .arg(fixture.root().join("echo_vars.yml"))
        .env("HOME", &home)
        .env("LC_ALL", "C.UTF-8");

    let result = run_program(call, CancellationToken::new()).await;

    assert!(result.succeeded(), "{result:#?}");
    assert_eq!(fixture.read("note.txt"), "42");
}

#[tokio::test]
async fn check_mode_changes_nothing() {
    if !ansible_installed() {
        return;
    }
    let fixture = Fixture::new();
    let plugin = fixture.plugin();

    let outcome = run(
        &plugin,
        json!({"playbook": "write_note", "check": true}),
        Some(record(json!({}))),
    )
    .await;

    assert_eq!(outcome.status, OutcomeStatus::Succeeded, "{outcome:#?}");
    assert_eq!(
        outcome.summary,
        "Playbook `write_note` in check mode succeeded on 1 host: localhost ok=1 changed=1 unreachable=0 failed=0"
    );
    assert!(!fixture.out().join("INC0000042.txt").exists());
    assert_eq!(outcome.data["check"], true);
    assert!(
        outcome.data["argv"]
            .as_array()
            .unwrap()
            .contains(&json!("--check"))
    );

    let always = run(
        &plugin,
        json!({"playbook": "always_check"}),
        Some(record(json!({}))),
    )
    .await;
    assert_eq!(always.status, OutcomeStatus::Succeeded, "{always:#?}");
    assert!(
        always.summary.contains("in check mode"),
        "{}",
        always.summary
    );
    assert!(!fixture.out().join("INC0000042.txt").exists());

    let message = rejected(&plugin, json!({"playbook": "never_check", "check": true})).await;
    assert!(
        message.contains("parameter `check` (value true): asks for a dry run, which playbook `never_check` does not support"),
        "{message}"
    );
}

#[tokio::test]
async fn limit_that_matches_no_host_fails() {
    if !ansible_installed() {
        return;
    }
    let fixture = Fixture::new();

    let outcome = run(
        &fixture.plugin(),
        json!({"playbook": "write_note", "limit": "web1"}),
        None,
    )
    .await;

    assert_eq!(outcome.status, OutcomeStatus::Failed);
    assert!(
        outcome.summary.starts_with(
            "Playbook `write_note` failed before any host ran: ansible-playbook exited with code"
        ),
        "{}",
        outcome.summary
    );
    assert!(outcome.summary.contains("ERROR!"), "{}", outcome.summary);
    assert!(
        outcome.data["argv"]
            .as_array()
            .unwrap()
            .contains(&json!("--limit=web1"))
    );

    let matching = run(
        &fixture.plugin(),
        json!({"playbook": "write_note", "limit": "localhost"}),
        None,
    )
    .await;
    assert_eq!(matching.status, OutcomeStatus::Succeeded, "{matching:#?}");
}

#[tokio::test]
async fn hostile_limits_are_rejected() {
    if !ansible_installed() {
        return;
    }
    let fixture = Fixture::new();
    let plugin = fixture.plugin();

    for limit in ["@/etc/passwd", "all;id", "$(id)", "--help", "~.*", "a b"] {
        let message = rejected(&plugin, json!({"playbook": "write_note", "limit": limit})).await;

        assert!(
            message
                .starts_with("1 invalid parameter for action `run_playbook`:\n- parameter `limit`"),
            "{limit}: {message}"
        );
    }
}

#[tokio::test]
async fn invalid_variables_are_all_reported() {
    if !ansible_installed() {
        return;
    }
    let fixture = Fixture::new();

    let message = rejected(
        &fixture.plugin(),
        json!({"playbook": "restart", "extra_vars": [
            "service=apache2",
            "note=much too long a note",
            "nameonly",
            "ansible_python_interpreter=/tmp/evil",
            "note=short",
        ]}),
    )
    .await;

    let expected = [
        "5 invalid parameters for action `run_playbook`:",
        "- parameter `extra_vars[0]` (value \"service=apache2\"): sets `service` to a value it does not allow. Use one of nginx, postgresql",
        "- parameter `extra_vars[1]` (value \"note=much too long a note\"): sets `note` to 20 characters, more than its maximum of 10. Shorten the value",
        "- parameter `extra_vars[2]` (value \"nameonly\"): is not of the form name=value. Write it as name=value. Playbook `restart` takes `service`, `note`",
        "- parameter `extra_vars[3]` (value \"ansible_python_interpreter=/tmp/evil\"): sets `ansible_python_interpreter`, which is not a variable of playbook `restart`. Playbook `restart` takes `service`, `note`",
        "- parameter `extra_vars`: does not set `service`, which playbook `restart` requires. Add an element service=VALUE",
    ];
    assert_eq!(message.lines().collect::<Vec<_>>(), expected);
}

#[tokio::test]
async fn run_is_isolated_from_the_users_files() {
    if !ansible_installed() {
        return;
    }
    let fixture = Fixture::new();

    let outcome = run(&fixture.plugin(), json!({"playbook": "environment"}), None).await;

    assert_eq!(outcome.status, OutcomeStatus::Succeeded, "{outcome:#?}");
    let written = fixture.read("environment.txt");
    let lines: Vec<&str> = written.lines().collect();
    assert_eq!(lines.len(), 3, "{written}");
    let scratch = Path::new(lines[0]).parent().unwrap();
    assert!(
        scratch
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("tend-deployment-"),
        "{written}"
    );
    assert_eq!(lines[0], scratch.join("home").display().to_string());
    assert_eq!(lines[1], scratch.join("local-temp").display().to_string());
    assert_eq!(lines[2], scratch.join("remote-temp").display().to_string());
    // The run's directory is removed when it ends.
    assert!(!scratch.exists(), "{} is left", scratch.display());
}

#[tokio::test]
async fn missing_playbook_file_is_named() {
    if !ansible_installed() {
        return;
    }
    let fixture = Fixture::new();
    let plugin = fixture.plugin();

    let outcome = run(&plugin, json!({"playbook": "missing"}), None).await;

    assert_eq!(outcome.status, OutcomeStatus::Failed);
    let expected = format!(
        "The playbook file {} of playbook `missing` does not exist. Create it, or fix `playbook` of `missing` in {}",
        fixture.root().join("does-not-exist.yml").display(),
        fixture.root().join("deployment.yaml").display()
    );
    assert_eq!(outcome.summary, expected);
    assert_eq!(plugin.missing_setup(), [expected]);
}

#[tokio::test]
async fn cancelled_run_stops_ansible() {
    if !ansible_installed() {
        return;
    }
    let fixture = Fixture::new();
    let plugin = fixture.plugin();
    let cancel = CancellationToken::new();
    let marker = fixture.root().join("wait.sh").display().to_string();

    let run = tokio::spawn({
        let cancel = cancel.clone();
        async move {
            plugin
                .run(request(json!({"playbook": "wait"}), None), cancel)
                .await
        }
    });
    wait_until(Duration::from_secs(60), || {
        !processes_naming(&marker).is_empty()
    })
    .await;
    assert!(
        !processes_naming(&marker).is_empty(),
        "the task did not start"
    );
    let started = Instant::now();
    cancel.cancel();
    let result = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("the cancelled run did not end")
        .unwrap();

    assert!(matches!(result, Err(PluginError::Cancelled)), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    wait_until(Duration::from_secs(5), || {
        processes_naming(&marker).is_empty()
    })
    .await;
    assert_eq!(processes_naming(&marker), Vec::<u32>::new());
}

/// Lists the live processes whose command line contains `text`.
fn processes_naming(text: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        // A zombie has an empty command line, and its parent reaps it.
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline"))
            && String::from_utf8_lossy(&cmdline).contains(text)
        {
            found.push(pid);
        }
    }
    found
}

async fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() && start.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
