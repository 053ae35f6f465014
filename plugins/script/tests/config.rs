//! Loading the allow-list: the shipped file, and the messages for broken ones.

use std::path::Path;

use serde_json::{Map, json};
use tend_plugin_api::{ActionRequest, CancellationToken, OutcomeStatus, Plugin, PluginError};
use tend_plugin_script::ScriptPlugin;

fn shipped() -> ScriptPlugin {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("allowed.yaml");
    ScriptPlugin::load(file).unwrap()
}

fn problems(yaml: &str) -> Vec<String> {
    ScriptPlugin::from_yaml("allowed.yaml", yaml)
        .unwrap_err()
        .problems
}

fn request(action: &str, params: serde_json::Value) -> ActionRequest {
    let serde_json::Value::Object(params) = params else {
        panic!("params must be an object");
    };
    ActionRequest {
        protocol: tend_plugin_api::PROTOCOL_VERSION,
        run_id: 7,
        plugin: String::from("script"),
        action: action.to_owned(),
        params,
        record: None,
        actor: String::from("tester"),
    }
}

#[test]
fn shipped_file_loads() {
    let plugin = shipped();

    let names: Vec<&str> = plugin.actions().iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["disk_usage", "ping_host"]);
    assert_eq!(plugin.name(), "script");
}

#[test]
fn shipped_ping_builds_argv() {
    let plugin = shipped();
    let mut params = Map::new();
    params.insert(String::from("host"), json!("127.0.0.1"));

    let call = plugin.program_call("ping_host", &params).unwrap();

    assert_eq!(call.program, Path::new("/usr/bin/ping"));
    assert_eq!(call.args, ["-c", "3", "--", "127.0.0.1"]);
    assert_eq!(call.timeout.as_secs(), 20);
    assert_eq!(call.output_limit, 16384);
}

#[tokio::test]
async fn shipped_disk_usage_runs() {
    let plugin = shipped();

    let outcome = plugin
        .run(request("disk_usage", json!({})), CancellationToken::new())
        .await
        .unwrap();

    assert_eq!(
        outcome.status,
        OutcomeStatus::Succeeded,
        "{}",
        outcome.summary
    );
    assert!(
        outcome
            .summary
            .starts_with("disk_usage: /usr/bin/df exited with code 0"),
        "{}",
        outcome.summary
    );
    assert!(outcome.output.contains('%'), "{}", outcome.output);
    assert_eq!(
        outcome.data["argv"],
        json!(["/usr/bin/df", "-h", "--", "/"])
    );
    assert_eq!(outcome.data["exit_code"], json!(0));
}

#[tokio::test]
async fn failing_program_gives_failed_outcome() {
    let plugin = shipped();

    let outcome = plugin
        .run(
            request("disk_usage", json!({ "path": "/nonexistent/dir" })),
            CancellationToken::new(),
        )
        .await
        .unwrap();

    assert_eq!(outcome.status, OutcomeStatus::Failed);
    assert!(
        outcome.summary.contains("exited with code 1"),
        "{}",
        outcome.summary
    );
    assert!(
        outcome.output.contains("--- stderr ---\n"),
        "{}",
        outcome.output
    );
    assert!(
        outcome.output.contains("/nonexistent/dir"),
        "{}",
        outcome.output
    );
}

#[tokio::test]
async fn unknown_action_is_an_error() {
    let plugin = shipped();

    let error = plugin
        .run(request("format_disk", json!({})), CancellationToken::new())
        .await
        .unwrap_err();

    assert_eq!(
        error.to_string(),
        "plugin `script` has no action `format_disk`"
    );
}

const MINIMAL: &str = "
actions:
  - name: sleepy
    label: Sleep
    executable: /bin/sleep
    params:
      seconds: {type: string, required: true}
    timeout_seconds: 1
  - name: missing
    label: Missing
    executable: /nonexistent/tool
    timeout_seconds: 5
";

#[tokio::test]
async fn timeout_gives_failed_outcome() {
    let plugin = ScriptPlugin::from_yaml("test.yaml", MINIMAL).unwrap();

    let outcome = plugin
        .run(
            request("sleepy", json!({ "seconds": "30" })),
            CancellationToken::new(),
        )
        .await
        .unwrap();

    assert_eq!(outcome.status, OutcomeStatus::Failed);
    assert_eq!(
        outcome.summary,
        "sleepy: /bin/sleep timed out after 1 s and was stopped"
    );
    assert_eq!(outcome.data["timed_out"], json!(true));
}

#[tokio::test]
async fn cancel_returns_cancelled() {
    let plugin = ScriptPlugin::from_yaml("test.yaml", MINIMAL).unwrap();
    let cancel = CancellationToken::new();
    let canceller = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        canceller.cancel();
    });

    let error = plugin
        .run(request("sleepy", json!({ "seconds": "30" })), cancel)
        .await
        .unwrap_err();

    assert!(matches!(error, PluginError::Cancelled), "{error:?}");
}

#[tokio::test]
async fn missing_executable_gives_failed_outcome() {
    let plugin = ScriptPlugin::from_yaml("test.yaml", MINIMAL).unwrap();

    let outcome = plugin
        .run(request("missing", json!({})), CancellationToken::new())
        .await
        .unwrap();

    assert_eq!(outcome.status, OutcomeStatus::Failed);
    assert!(
        outcome
            .summary
            .starts_with("missing: could not start /nonexistent/tool: "),
        "{}",
        outcome.summary
    );
    assert!(
        outcome
            .summary
            .ends_with("Install the program or fix `executable` of entry `missing` in test.yaml"),
        "{}",
        outcome.summary
    );
    assert_eq!(
        plugin.missing_executables(),
        [
            "test.yaml: entry `missing`: executable /nonexistent/tool does not exist or is not a file. Install it or fix `executable`"
        ]
    );
}

#[test]
fn flags_come_before_separator() {
    let yaml = "
actions:
  - name: count_lines
    label: Count lines
    executable: /usr/bin/head
    params:
      lines: {type: integer, default: 5}
      files: {type: list, required: true}
      verbose: {type: boolean, default: false}
    flags:
      lines: --lines
      verbose: --verbose
    timeout_seconds: 5
";
    let plugin = ScriptPlugin::from_yaml("test.yaml", yaml).unwrap();
    let mut params = Map::new();
    params.insert(String::from("files"), json!(["-a", "b c"]));

    let call = plugin.program_call("count_lines", &params).unwrap();

    assert_eq!(
        call.args,
        ["--lines=5", "--verbose=false", "--", "-a", "b c"]
    );
}

#[test]
fn invalid_parameters_are_rejected_before_running() {
    let plugin = ScriptPlugin::from_yaml("test.yaml", MINIMAL).unwrap();
    let mut params = Map::new();
    params.insert(String::from("secs"), json!("3"));

    let error = plugin.program_call("sleepy", &params).unwrap_err();

    let message = error.to_string();
    assert!(
        message.contains("parameter `seconds`: is missing"),
        "{message}"
    );
    assert!(message.contains("Did you mean `seconds`?"), "{message}");
}

#[test]
fn load_names_unreadable_file() {
    let error = ScriptPlugin::load("/nonexistent/allowed.yaml").unwrap_err();

    assert_eq!(error.problems.len(), 1);
    assert!(
        error.problems[0].starts_with(
            "/nonexistent/allowed.yaml: could not read the script plugin's allow-list: "
        ),
        "{}",
        error.problems[0]
    );
}

#[test]
fn type_error_names_line_entry_and_field() {
    let yaml = "actions:
  - name: first
    label: First
    executable: /bin/true
    timeout_seconds: 5
  - name: second
    label: Second
    executable: /bin/true
    timeout_seconds: soon
";

    assert_eq!(
        problems(yaml),
        [
            "allowed.yaml:9:22: entry `second` (number 2): field `actions[1].timeout_seconds`: invalid type: string \"soon\", expected u64"
        ]
    );
}

#[test]
fn unknown_field_lists_known_fields() {
    let yaml = "actions:
  - name: first
    label: First
    executable: /bin/true
    timeout_seconds: 5
    shell: true
";

    let problems = problems(yaml);

    assert_eq!(problems.len(), 1);
    assert!(
        problems[0].starts_with(
            "allowed.yaml:6:5: entry `first` (number 1): field `actions[0].shell`: unknown field `shell`, expected one of `name`, `label`"
        ),
        "{}",
        problems[0]
    );
}

#[test]
fn every_entry_problem_is_reported() {
    let yaml = "actions:
  - name: relative
    label: Relative
    executable: df
    args: ['-h', '--']
    timeout_seconds: 0
  - name: flags
    label: Flags
    executable: /usr/bin/../bin/df
    params:
      count: {type: integer}
      size: {type: integer}
    flags:
      cnt: --count
      count: --count=1
      size: --count=1
    env:
      1BAD: x
    working_dir: tmp
    output_limit_bytes: 0
    timeout_seconds: 5
  - name: relative
    label: Again
    executable: /bin/true
    timeout_seconds: 5
";

    let problems = problems(yaml);

    let expected = [
        "allowed.yaml: entry `relative`: executable `df` is not an absolute path. Write the full path, such as /usr/bin/df (`command -v df` prints it)",
        "allowed.yaml: entry `relative`: `args` contains `--`. Remove it, because the plugin adds `--` itself after the flags and before the parameter values",
        "allowed.yaml: entry `flags`: executable `/usr/bin/../bin/df` contains `.` or `..`. Write the path without them",
        "allowed.yaml: entry `flags`: `flags` names `cnt`, which is not a parameter of the entry. Declare it under `params` or fix the name. Did you mean `count`?",
        "allowed.yaml: entry `flags`: flag `--count=1` of parameter `count` is invalid. Write a flag such as `--count` or `-c`: a dash or two, then letters, digits, `-`, `_` or `.`, without `=`",
        "allowed.yaml: entry `flags`: flag `--count=1` of parameter `size` is invalid. Write a flag such as `--count` or `-c`: a dash or two, then letters, digits, `-`, `_` or `.`, without `=`",
        "allowed.yaml: entry `flags`: parameters `count` and `size` both use flag `--count=1`. Give each its own flag",
        "allowed.yaml: entry `flags`: environment variable name `1BAD` is invalid. Use letters, digits and underscores, not starting with a digit",
        "allowed.yaml: entry `flags`: working_dir `tmp` is not an absolute path. Write the full path, such as /var/lib/tend",
        "allowed.yaml: entry `flags`: output_limit_bytes is 0, which keeps no output. Set a limit such as 65536, or remove it for that default",
        "allowed.yaml: action `relative` has timeout_seconds 0. Set how many seconds a run may take, such as 60",
        "allowed.yaml: action `relative` is declared twice. Rename or remove one of them",
    ];
    assert_eq!(problems, expected);
}

#[test]
fn error_display_lists_every_problem() {
    let yaml = "actions:
  - name: a
    label: A
    executable: a
    timeout_seconds: 0
";

    let error = ScriptPlugin::from_yaml("allowed.yaml", yaml).unwrap_err();

    assert_eq!(error.to_string().lines().count(), 2);
    assert_eq!(error.file, Path::new("allowed.yaml"));
}
