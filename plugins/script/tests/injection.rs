//! Values that a shell would run as code, or a program would read as options, must reach
//! the program as one plain argument after `--`. The values come from a ticket field, as a
//! `restore_file(path)` action would get them.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{Map, Value, json};
use tend_plugin_api::{ActionRequest, CancellationToken, OutcomeStatus, Plugin, PluginError};
use tend_plugin_script::ScriptPlugin;

const HOSTILE_LINES: [&str; 6] = [
    "report.xlsx; touch PWNED_MARKER",
    "$(id)",
    "`id`",
    "a|b",
    "-rf",
    "--help",
];

const MULTILINE: &str = "a\nrm x";

/// Writes an allow-list whose programs run in `dir`: `show_args` prints each argument
/// followed by a NUL byte, so the test can compare the exact argument vector, and `touch_file`
/// creates one file per argument.
fn plugin_in(dir: &Path) -> ScriptPlugin {
    let dir = dir.display();
    let yaml = format!(
        r#"
actions:
  - name: show_args
    label: Show arguments
    executable: /usr/bin/printf
    args: ['%s\0']
    params:
      path: {{type: string, required: true}}
    working_dir: {dir}
    timeout_seconds: 10
    output_limit_bytes: 1048576
  - name: show_note
    label: Show note
    executable: /usr/bin/printf
    args: ['%s\0']
    params:
      note: {{type: text, required: true}}
    working_dir: {dir}
    timeout_seconds: 10
  - name: show_limited
    label: Show limited
    executable: /usr/bin/printf
    args: ['%s\0']
    params:
      path: {{type: string, required: true, max_length: 4096}}
    working_dir: {dir}
    timeout_seconds: 10
  - name: touch_file
    label: Touch file
    executable: /usr/bin/touch
    params:
      path: {{type: text, required: true}}
    working_dir: {dir}
    timeout_seconds: 10
"#
    );
    ScriptPlugin::from_yaml("test-allowed.yaml", &yaml).unwrap()
}

fn request(action: &str, params: Value) -> ActionRequest {
    let Value::Object(params) = params else {
        panic!("params must be an object");
    };
    ActionRequest {
        protocol: tend_plugin_api::PROTOCOL_VERSION,
        run_id: 1,
        plugin: String::from("script"),
        action: action.to_owned(),
        params,
        record: None,
        actor: String::from("tester"),
    }
}

/// Splits the NUL-terminated arguments that `show_args` printed.
fn printed_args(output: &str) -> Vec<&str> {
    let mut args: Vec<&str> = output.split('\0').collect();
    assert_eq!(args.pop(), Some(""), "output must end with NUL: {output:?}");
    args
}

fn files_in(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[tokio::test]
async fn hostile_values_arrive_as_one_argument() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = plugin_in(dir.path());

    for value in HOSTILE_LINES {
        let outcome = plugin
            .run(
                request("show_args", json!({ "path": value })),
                CancellationToken::new(),
            )
            .await
            .unwrap();

        assert_eq!(
            outcome.status,
            OutcomeStatus::Succeeded,
            "{value}: {}",
            outcome.summary
        );
        assert_eq!(printed_args(&outcome.output), ["--", value]);
        assert_eq!(
            outcome.data["argv"],
            json!(["/usr/bin/printf", "%s\\0", "--", value])
        );
    }
    assert!(!dir.path().join("PWNED_MARKER").exists());
    assert_eq!(files_in(dir.path()), BTreeSet::new());
}

#[tokio::test]
async fn hostile_values_name_one_file_each() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = plugin_in(dir.path());

    let mut values: Vec<&str> = HOSTILE_LINES.to_vec();
    values.push(MULTILINE);
    for value in &values {
        let outcome = plugin
            .run(
                request("touch_file", json!({ "path": value })),
                CancellationToken::new(),
            )
            .await
            .unwrap();

        assert_eq!(
            outcome.status,
            OutcomeStatus::Succeeded,
            "{value}: {}",
            outcome.output
        );
    }

    let expected: BTreeSet<String> = values.iter().map(|value| value.to_string()).collect();
    assert_eq!(files_in(dir.path()), expected);
    assert!(!dir.path().join("PWNED_MARKER").exists());
    assert!(!dir.path().join("x").exists());
}

#[tokio::test]
async fn newline_rejected_for_string() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = plugin_in(dir.path());

    let error = plugin
        .run(
            request("show_args", json!({ "path": MULTILINE })),
            CancellationToken::new(),
        )
        .await
        .unwrap_err();

    let PluginError::Failed(message) = error else {
        panic!("expected a validation failure, got {error:?}");
    };
    assert!(
        message.contains("parameter `path` (value \"a\\nrm x\"): contains a line break"),
        "{message}"
    );
}

#[tokio::test]
async fn newline_passes_as_one_text_argument() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = plugin_in(dir.path());

    let outcome = plugin
        .run(
            request("show_note", json!({ "note": MULTILINE })),
            CancellationToken::new(),
        )
        .await
        .unwrap();

    assert_eq!(outcome.status, OutcomeStatus::Succeeded);
    assert_eq!(printed_args(&outcome.output), ["--", MULTILINE]);
    assert!(!dir.path().join("x").exists());
}

#[tokio::test]
async fn long_value_passes_as_one_argument() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = plugin_in(dir.path());
    let long = "a;$(id)|".repeat(100 * 1024 / 8);

    let outcome = plugin
        .run(
            request("show_args", json!({ "path": long })),
            CancellationToken::new(),
        )
        .await
        .unwrap();

    assert_eq!(
        outcome.status,
        OutcomeStatus::Succeeded,
        "{}",
        outcome.summary
    );
    let args = printed_args(&outcome.output);
    assert_eq!(args.len(), 2);
    assert_eq!(args[1].len(), 100 * 1024);
    assert_eq!(args[1], long);
}

#[tokio::test]
async fn long_value_rejected_by_max_length() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = plugin_in(dir.path());
    let long = "x".repeat(100 * 1024);

    let error = plugin
        .run(
            request("show_limited", json!({ "path": long })),
            CancellationToken::new(),
        )
        .await
        .unwrap_err();

    let PluginError::Failed(message) = error else {
        panic!("expected a validation failure, got {error:?}");
    };
    assert!(
        message.contains("has 102400 characters, more than the maximum of 4096"),
        "{message}"
    );
    assert!(message.len() < 1000, "the message repeats the whole value");
}

#[tokio::test]
async fn program_call_puts_values_after_separator() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = plugin_in(dir.path());
    let mut params = Map::new();
    params.insert(String::from("path"), json!("--help"));

    let call = plugin.program_call("show_args", &params).unwrap();

    assert_eq!(call.program, Path::new("/usr/bin/printf"));
    assert_eq!(call.args, ["%s\\0", "--", "--help"]);
    assert_eq!(call.working_dir.as_deref(), Some(dir.path()));
}
