//! Runs the shipped Python example plugin, plugins/examples/disk_report, for real.

mod common;

use std::path::PathBuf;

use serde_json::json;
use tend_plugin_api::{CancellationToken, OutcomeStatus, Plugin};
use tend_plugin_external::ExternalPlugin;

use common::request;

fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

fn disk_report() -> ExternalPlugin {
    let (mut plugins, errors) = ExternalPlugin::load_dir(examples_dir());
    assert_eq!(errors, []);
    assert_eq!(plugins.len(), 1);
    plugins.remove(0)
}

#[test]
fn example_manifest_loads() {
    let plugin = disk_report();

    assert_eq!(plugin.name(), "disk_report");
    let action = &plugin.actions()[0];
    assert_eq!(action.name, "free_space");
    assert_eq!(action.params["min_free_percent"].default, Some(json!(10)));
    assert!(plugin.executable().ends_with("disk_report/disk_report.py"));
}

#[tokio::test]
async fn reports_free_space_of_a_path() {
    let plugin = disk_report();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();

    let outcome = plugin
        .run(
            request("disk_report", "free_space", json!({ "path": path })),
            CancellationToken::new(),
        )
        .await
        .unwrap();

    assert_eq!(outcome.status, OutcomeStatus::Succeeded, "{outcome:?}");
    assert!(
        outcome.summary.starts_with(&format!("{path}: ")),
        "{}",
        outcome.summary
    );
    assert!(outcome.summary.contains(" free of "), "{}", outcome.summary);
    let total = outcome.data["total_bytes"].as_u64().unwrap();
    let used = outcome.data["used_bytes"].as_u64().unwrap();
    let free = outcome.data["free_bytes"].as_u64().unwrap();
    assert!(total > 0);
    assert!(used + free <= total, "{used} + {free} > {total}");
    assert_eq!(outcome.data["path"], json!(path));
    assert!(
        outcome.output.contains(&format!("total: {total} bytes")),
        "{}",
        outcome.output
    );
}

#[tokio::test]
async fn threshold_is_applied() {
    let plugin = disk_report();

    let outcome = plugin
        .run(
            request(
                "disk_report",
                "free_space",
                json!({ "path": "/", "min_free_percent": 100 }),
            ),
            CancellationToken::new(),
        )
        .await
        .unwrap();

    assert_eq!(outcome.status, OutcomeStatus::Succeeded);
    assert_eq!(outcome.data["below_threshold"], json!(true));
    assert!(
        outcome.summary.ends_with(", below the 100% threshold"),
        "{}",
        outcome.summary
    );
}

#[tokio::test]
async fn missing_path_is_a_reported_failure() {
    let plugin = disk_report();

    let outcome = plugin
        .run(
            request(
                "disk_report",
                "free_space",
                json!({ "path": "/nonexistent/share" }),
            ),
            CancellationToken::new(),
        )
        .await
        .unwrap();

    assert_eq!(outcome.status, OutcomeStatus::Failed);
    assert_eq!(
        outcome.summary,
        "Could not measure /nonexistent/share: No such file or directory"
    );
    assert!(
        outcome
            .output
            .contains("--- stderr ---\nrun 42: free_space for alice"),
        "{}",
        outcome.output
    );
}

#[tokio::test]
async fn out_of_range_threshold_is_rejected_by_the_plugin() {
    let plugin = disk_report();

    let outcome = plugin
        .run(
            request(
                "disk_report",
                "free_space",
                json!({ "path": "/", "min_free_percent": 150 }),
            ),
            CancellationToken::new(),
        )
        .await
        .unwrap();

    assert_eq!(outcome.status, OutcomeStatus::Failed);
    assert_eq!(
        outcome.summary,
        "min_free_percent is 150. Give a whole number from 0 to 100"
    );
}
