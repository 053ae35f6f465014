//! `tend simulate` runs the shipped example through the real definitions and rules.

use tend_test_support::{repo_root, run_tend};

#[tokio::test]
async fn simulate_prints_effects_and_states() -> anyhow::Result<()> {
    let root = repo_root();
    let output = run_tend(
        [
            "simulate".into(),
            "incident".into(),
            "--record".into(),
            root.join("docs/examples/incident-record.yaml")
                .into_os_string(),
            "--steps".into(),
            root.join("docs/examples/incident-steps.yaml")
                .into_os_string(),
            "--definitions".into(),
            root.clone().into_os_string(),
        ],
        None,
    )
    .await?;
    assert!(output.success(), "{output}");
    let stdout = &output.stdout;
    for expected in [
        "category: (empty) -> data by rule incident/categorize",
        "priority: (empty) -> P2 by rule common/prioritize",
        "recommend `recovery/restore_file` by rule incident/recommend",
        "rejected (required_field_missing, field `resolution_code`)",
        "transition `reopen`: resolved -> in_progress",
        "reopen_count: 0 -> 1 by rule incident/count_reopen",
        "automatic transition `close` as timer",
        "transition `close`: resolved -> closed",
        "opens a follow-up record with `follow_up_of` = INC-SIMULATED",
        "1 of 6 steps rejected; nothing was written",
    ] {
        assert!(
            stdout.contains(expected),
            "missing `{expected}` in:\n{stdout}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn simulate_reports_bad_steps_file() -> anyhow::Result<()> {
    let root = repo_root();
    let dir = tempfile::tempdir()?;
    let steps = dir.path().join("steps.yaml");
    std::fs::write(&steps, "- { command: teleport, name: start }\n")?;
    let output = run_tend(
        [
            "simulate".into(),
            "incident".into(),
            "--record".into(),
            root.join("docs/examples/incident-record.yaml")
                .into_os_string(),
            "--steps".into(),
            steps.into_os_string(),
            "--definitions".into(),
            root.into_os_string(),
        ],
        None,
    )
    .await?;
    assert!(!output.success(), "{output}");
    assert!(output.stderr.contains("steps.yaml:1:"), "{output}");
    assert!(output.stderr.contains("teleport"), "{output}");
    Ok(())
}

#[tokio::test]
async fn simulate_decides_approval_rounds() -> anyhow::Result<()> {
    let root = repo_root();
    let output = run_tend(
        [
            "simulate".into(),
            "change".into(),
            "--record".into(),
            root.join("docs/examples/change-record.yaml")
                .into_os_string(),
            "--steps".into(),
            root.join("docs/examples/change-steps.yaml")
                .into_os_string(),
            "--definitions".into(),
            root.clone().into_os_string(),
        ],
        None,
    )
    .await?;
    assert!(output.success(), "{output}");
    let stdout = &output.stdout;
    for expected in [
        "risk: (empty) -> high by rule change/assess_risk",
        "waits for approval of `authorize`",
        "approval of `authorize` rejected",
        "transition `rework`: assess -> new",
        "comment: Plan a smoke test for the reports too",
        "transition `authorize`: assess -> scheduled",
        "transition `start`: scheduled -> implement",
        "0 of 7 steps rejected; nothing was written",
    ] {
        assert!(
            stdout.contains(expected),
            "missing `{expected}` in:\n{stdout}"
        );
    }
    Ok(())
}
