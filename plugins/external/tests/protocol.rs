//! The stdin/stdout protocol, with small shell scripts playing plugins that follow it or
//! break it.

mod common;

use std::time::Duration;

use serde_json::json;
use tend_plugin_api::{
    ActionOutcome, ActionRequest, CancellationToken, OutcomeStatus, Plugin, PluginError,
    RecordContext,
};
use tend_plugin_external::ExternalPlugin;

use common::{manifest, request, write_plugin};

const GOOD: &str =
    r#"{"status": "succeeded", "summary": "did it", "output": "all fine", "data": {"n": 1}}"#;

/// Loads a plugin `probe` whose `run.sh` is `script` and runs its action with `path`.
async fn run_script(script: &str) -> ActionOutcome {
    run_script_with(script, 10, "").await.unwrap()
}

async fn run_script_with(
    script: &str,
    timeout_seconds: u64,
    extra: &str,
) -> Result<ActionOutcome, PluginError> {
    let dir = tempfile::tempdir().unwrap();
    let file = write_plugin(
        dir.path(),
        "probe",
        &manifest("probe", timeout_seconds, extra),
        script,
    );
    let plugin = ExternalPlugin::load(&file).unwrap();
    plugin
        .run(
            request("probe", "act", json!({ "path": "/srv" })),
            CancellationToken::new(),
        )
        .await
}

#[tokio::test]
async fn valid_outcome_is_returned() {
    let outcome = run_script(&format!("cat > /dev/null; echo '{GOOD}'")).await;

    assert_eq!(outcome.status, OutcomeStatus::Succeeded);
    assert_eq!(outcome.summary, "did it");
    assert_eq!(outcome.output, "all fine");
    assert_eq!(outcome.data, json!({ "n": 1 }));
}

#[tokio::test]
async fn trailing_whitespace_is_allowed() {
    let outcome = run_script(&format!("printf '%s\\n\\n  \\n' '{GOOD}'")).await;

    assert_eq!(outcome.status, OutcomeStatus::Succeeded);
    assert_eq!(outcome.summary, "did it");
}

#[tokio::test]
async fn minimal_outcome_is_enough() {
    let outcome = run_script(r#"echo '{"status": "failed", "summary": "no backup found"}'"#).await;

    assert_eq!(outcome.status, OutcomeStatus::Failed);
    assert_eq!(outcome.summary, "no backup found");
    assert_eq!(outcome.output, "");
    assert_eq!(outcome.data, json!(null));
}

#[tokio::test]
async fn reported_failure_keeps_stderr() {
    let outcome = run_script(
        r#"echo 'restic: repository locked' >&2; echo '{"status": "failed", "summary": "locked", "output": "tried once"}'"#,
    )
    .await;

    assert_eq!(outcome.status, OutcomeStatus::Failed);
    assert_eq!(outcome.summary, "locked");
    assert_eq!(
        outcome.output,
        "tried once\n--- stderr ---\nrestic: repository locked\n"
    );
}

#[tokio::test]
async fn request_arrives_on_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_plugin(
        dir.path(),
        "probe",
        &manifest("probe", 10, ""),
        &format!("cat > request.json; echo '{GOOD}'"),
    );
    let plugin = ExternalPlugin::load(&file).unwrap();
    let mut sent = request("probe", "act", json!({ "path": "/srv/a b; $(id)" }));
    sent.record = Some(RecordContext {
        number: String::from("INC-12"),
        process: String::from("incident"),
        title: String::from("Share full"),
        state: String::from("in_progress"),
        fields: json!({ "service": "files" }),
        cis: vec![json!({ "name": "fs01" })],
    });

    let outcome = plugin
        .run(sent.clone(), CancellationToken::new())
        .await
        .unwrap();

    assert_eq!(outcome.status, OutcomeStatus::Succeeded);
    let text = std::fs::read_to_string(dir.path().join("probe/request.json")).unwrap();
    assert!(text.ends_with("}\n"), "{text:?}");
    let received: ActionRequest = serde_json::from_str(&text).unwrap();
    let mut expected = sent;
    expected.params.insert(String::from("count"), json!(3));
    assert_eq!(received, expected);
}

#[tokio::test]
async fn environment_is_minimal() {
    let outcome = run_script(
        r#"cat > /dev/null; names=$(env | cut -d= -f1 | sort | tr '\n' ' '); echo "{\"status\": \"succeeded\", \"summary\": \"$names\"}""#,
    )
    .await;

    let allowed = ["HOME", "LANG", "PATH", "PWD", "SHLVL", "_"];
    for name in outcome.summary.split_whitespace() {
        assert!(allowed.contains(&name), "unexpected variable {name}");
    }
    assert!(outcome.summary.contains("PATH"), "{}", outcome.summary);
}

#[tokio::test]
async fn empty_stdout_fails() {
    let outcome = run_script("echo 'starting' >&2; exit 0").await;

    assert_eq!(outcome.status, OutcomeStatus::Failed);
    assert!(
        outcome
            .summary
            .starts_with("probe/act exited with code 0 after"),
        "{}",
        outcome.summary
    );
    assert!(
        outcome
            .summary
            .ends_with("and printed no outcome on stdout"),
        "{}",
        outcome.summary
    );
    assert_eq!(outcome.output, "starting\n");
}

#[tokio::test]
async fn text_instead_of_json_fails() {
    let outcome = run_script("echo 'Restored 3 files'").await;

    assert_eq!(outcome.status, OutcomeStatus::Failed);
    assert!(
        outcome
            .summary
            .contains("and its stdout is not one JSON outcome: expected value at line 1 column 1"),
        "{}",
        outcome.summary
    );
    assert_eq!(outcome.output, "--- stdout ---\nRestored 3 files\n");
}

#[tokio::test]
async fn wrong_shape_fails() {
    let outcome = run_script(r#"echo '{"status": "done", "summary": "x"}'"#).await;

    assert_eq!(outcome.status, OutcomeStatus::Failed);
    assert!(
        outcome
            .summary
            .contains("its stdout is JSON but not an outcome: unknown variant `done`"),
        "{}",
        outcome.summary
    );
}

#[tokio::test]
async fn missing_summary_fails() {
    let outcome = run_script(r#"echo '{"status": "succeeded"}'"#).await;

    assert_eq!(outcome.status, OutcomeStatus::Failed);
    assert!(
        outcome.summary.ends_with("missing field `summary`"),
        "{}",
        outcome.summary
    );
}

#[tokio::test]
async fn two_outcomes_fail() {
    let outcome = run_script(&format!("echo '{GOOD}'; echo '{GOOD}'")).await;

    assert_eq!(outcome.status, OutcomeStatus::Failed);
    assert!(
        outcome
            .summary
            .contains("not one JSON outcome: trailing characters"),
        "{}",
        outcome.summary
    );
}

#[tokio::test]
async fn exit_code_without_outcome_fails() {
    let outcome = run_script("echo 'Traceback: boom' >&2; exit 3").await;

    assert_eq!(outcome.status, OutcomeStatus::Failed);
    assert!(
        outcome
            .summary
            .starts_with("probe/act exited with code 3 after"),
        "{}",
        outcome.summary
    );
    assert_eq!(outcome.output, "Traceback: boom\n");
}

#[tokio::test]
async fn exit_code_overrides_reported_success() {
    let outcome = run_script(&format!("echo '{GOOD}'; echo 'late error' >&2; exit 2")).await;

    assert_eq!(outcome.status, OutcomeStatus::Failed);
    assert!(
        outcome
            .summary
            .ends_with("although its outcome reports success: did it"),
        "{}",
        outcome.summary
    );
    assert_eq!(outcome.output, "all fine\n--- stderr ---\nlate error\n");
    assert_eq!(outcome.data, json!({ "n": 1 }));
}

#[tokio::test]
async fn reported_failure_with_exit_code_is_kept() {
    let outcome =
        run_script(r#"echo '{"status": "failed", "summary": "disk full"}'; exit 1"#).await;

    assert_eq!(outcome.status, OutcomeStatus::Failed);
    assert_eq!(outcome.summary, "disk full");
}

#[tokio::test]
async fn killed_by_signal_fails() {
    let outcome = run_script("kill -KILL $$").await;

    assert_eq!(outcome.status, OutcomeStatus::Failed);
    assert!(
        outcome
            .summary
            .starts_with("probe/act was killed by SIGKILL"),
        "{}",
        outcome.summary
    );
}

#[tokio::test]
async fn timeout_fails_with_stderr() {
    let outcome = run_script_with("echo 'waiting for lock' >&2; sleep 30", 1, "")
        .await
        .unwrap();

    assert_eq!(outcome.status, OutcomeStatus::Failed);
    assert_eq!(
        outcome.summary,
        "probe/act timed out after 1 s and was stopped"
    );
    assert_eq!(outcome.output, "waiting for lock\n");
}

#[tokio::test]
async fn oversized_stdout_fails() {
    let outcome = run_script_with(
        "head -c 100000 /dev/zero | tr '\\0' x",
        10,
        "output_limit_bytes: 1024",
    )
    .await
    .unwrap();

    assert_eq!(outcome.status, OutcomeStatus::Failed);
    assert!(
        outcome
            .summary
            .starts_with("probe/act printed more than 1024 bytes on stdout"),
        "{}",
        outcome.summary
    );
    assert!(outcome.output.len() < 2000, "{}", outcome.output.len());
    assert!(
        outcome.output.ends_with("[stdout shortened]"),
        "{}",
        outcome.output
    );
}

#[tokio::test]
async fn stderr_is_capped() {
    let outcome = run_script_with(
        "head -c 100000 /dev/zero | tr '\\0' e >&2; exit 1",
        10,
        "output_limit_bytes: 1024",
    )
    .await
    .unwrap();

    assert_eq!(outcome.status, OutcomeStatus::Failed);
    assert!(
        outcome
            .output
            .ends_with("[output cut: 98976 more bytes were not kept]"),
        "{}",
        outcome.output
    );
}

#[tokio::test]
async fn cancel_returns_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_plugin(dir.path(), "probe", &manifest("probe", 30, ""), "sleep 30");
    let plugin = ExternalPlugin::load(&file).unwrap();
    let cancel = CancellationToken::new();
    let canceller = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        canceller.cancel();
    });

    let error = plugin
        .run(request("probe", "act", json!({ "path": "/" })), cancel)
        .await
        .unwrap_err();

    assert!(matches!(error, PluginError::Cancelled), "{error:?}");
}

#[tokio::test]
async fn invalid_params_are_rejected_before_start() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_plugin(
        dir.path(),
        "probe",
        &manifest("probe", 10, ""),
        "touch started",
    );
    let plugin = ExternalPlugin::load(&file).unwrap();

    let error = plugin
        .run(
            request("probe", "act", json!({ "path": "/", "count": "3" })),
            CancellationToken::new(),
        )
        .await
        .unwrap_err();

    assert!(
        error
            .to_string()
            .contains("parameter `count` (value \"3\"): is text, not an integer"),
        "{error}"
    );
    assert!(!dir.path().join("probe/started").exists());
}

#[tokio::test]
async fn unknown_action_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_plugin(dir.path(), "probe", &manifest("probe", 10, ""), "exit 0");
    let plugin = ExternalPlugin::load(&file).unwrap();

    let error = plugin
        .run(
            request("probe", "erase", json!({})),
            CancellationToken::new(),
        )
        .await
        .unwrap_err();

    assert_eq!(error.to_string(), "plugin `probe` has no action `erase`");
}
