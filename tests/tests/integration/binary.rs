//! The real `tend` binary: `tend serve` on a fresh data directory, and `tend validate`.

use std::path::Path;

use serde_json::json;
use tend_test_support::reqwest::StatusCode;
use tend_test_support::{Backend, Role, TestServer, backend_tests, repo_root, run_tend};

use crate::common::{NEW_INCIDENT, RECORDS, read, take};

backend_tests!(serve_starts_on_a_fresh_data_dir);

async fn serve_starts_on_a_fresh_data_dir(backend: Backend) -> anyhow::Result<()> {
    let server = TestServer::binary(backend).await?;
    let password = server.admin_password().unwrap_or_default();
    assert_eq!(
        password.len(),
        20,
        "the admin password printed on first start: {password:?}"
    );
    assert!(
        password.chars().all(|c| c.is_ascii_alphanumeric()),
        "{password:?}"
    );

    let health = server.anonymous().get("/healthz").await?;
    assert_eq!(health.status, StatusCode::OK, "{}", health.text);

    // Users and tokens made with `tend user add` and `tend token create` work at once.
    let alice = server.add_user("alice", &[Role::Requester]).await?;
    let tom = server.add_user("tom", &[Role::Technician]).await?;
    let reply = alice
        .client
        .post(NEW_INCIDENT, &json!({ "title": "Scanner not found", "description": "The scan app lists no device." }))
        .await?;
    assert_eq!(
        reply.status,
        StatusCode::CREATED,
        "{}\nserver log:\n{}",
        reply.text,
        server.log()
    );
    let number = reply.body["number"].as_str().unwrap_or_default().to_owned();
    assert_eq!(number, "INC0000001");
    let record = take(&tom.client, &number, "start", json!({})).await?;
    assert_eq!(record["state"], "in_progress");
    assert_eq!(read(&alice.client, &number).await?["state"], "in_progress");

    let processes = tom.client.get("/api/v1/processes").await?;
    assert_eq!(processes.status, StatusCode::OK, "{}", processes.text);
    let names: Vec<&str> = processes.body["processes"]
        .as_array()
        .map(|all| all.iter().filter_map(|p| p["process"].as_str()).collect())
        .unwrap_or_default();
    assert!(names.contains(&"incident"), "{names:?}");

    let anonymous = server.anonymous().get(RECORDS).await?;
    assert_eq!(
        anonymous.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        anonymous.text
    );

    // A second user with the same name is rejected by the command line.
    let mut args = vec![
        "user".into(),
        "add".into(),
        "alice".into(),
        "--role".into(),
        "requester".into(),
        "--password-stdin".into(),
    ];
    args.extend(server.database().store_args());
    let again = run_tend(args, Some("another long password\n")).await?;
    assert!(!again.success(), "a duplicate user was added:\n{again}");
    Ok(())
}

#[tokio::test]
async fn validate_accepts_the_repository() -> anyhow::Result<()> {
    let output = run_tend(["validate".into(), repo_root().into_os_string()], None).await?;
    assert!(output.success(), "{output}");
    assert!(output.stdout.starts_with("ok: "), "{output}");
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

#[tokio::test]
async fn validate_reports_file_line_column() -> anyhow::Result<()> {
    let copy = tempfile::tempdir()?;
    for dir in ["workflows", "rules"] {
        copy_dir(&repo_root().join(dir), &copy.path().join(dir))?;
    }
    let file = copy.path().join("workflows/incident.yaml");
    let text = std::fs::read_to_string(&file)?;
    // Point the first transition (`start`) at a state that does not exist.
    let target = "    to: in_progress";
    let line = text
        .lines()
        .position(|line| line == target)
        .map(|index| index + 1)
        .expect("the incident definition has a transition to in_progress");
    std::fs::write(&file, text.replacen(target, "    to: working", 1))?;

    let output = run_tend(
        ["validate".into(), copy.path().as_os_str().to_owned()],
        None,
    )
    .await?;
    assert_eq!(output.code(), Some(1), "{output}");
    let location = format!("incident.yaml:{line}:");
    let report = output
        .stdout
        .lines()
        .find(|report| report.contains(&location))
        .unwrap_or_else(|| panic!("no error at {location}:\n{output}"));
    let column = report
        .split(&location)
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .and_then(|column| column.parse::<usize>().ok());
    assert!(
        column.is_some_and(|column| column > 0),
        "no column in `{report}`"
    );
    assert!(
        report.contains("working"),
        "the error names the unknown state: {report}"
    );
    Ok(())
}

#[tokio::test]
async fn validate_reports_undeclared_rule_fields() -> anyhow::Result<()> {
    let copy = tempfile::tempdir()?;
    for dir in ["workflows", "rules"] {
        copy_dir(&repo_root().join(dir), &copy.path().join(dir))?;
    }
    let script = copy.path().join("rules/common/prioritize.rhai");
    let text = std::fs::read_to_string(&script)?;
    assert!(
        text.contains("set_field(\"priority\""),
        "the rule sets priority"
    );
    std::fs::write(
        &script,
        text.replace("set_field(\"priority\"", "set_field(\"priorty\""),
    )?;

    let output = run_tend(
        ["validate".into(), copy.path().as_os_str().to_owned()],
        None,
    )
    .await?;
    assert!(!output.success(), "{output}");
    let line = output
        .stdout
        .lines()
        .find(|line| line.contains("`priorty`"))
        .unwrap_or_default();
    assert!(line.contains("rules/common/prioritize.rhai:"), "{output}");
    assert!(
        line.contains("rule `common/prioritize` sets field `priorty`"),
        "{output}"
    );
    assert!(line.contains("declare it under `fields`"), "{output}");
    Ok(())
}

/// A schedule's rule is checked against the process it runs over, and a rule that both a
/// definition and a schedule use is reported once.
#[tokio::test]
async fn validate_checks_scheduled_rules() -> anyhow::Result<()> {
    let copy = tempfile::tempdir()?;
    for dir in ["workflows", "rules"] {
        copy_dir(&repo_root().join(dir), &copy.path().join(dir))?;
    }
    let script = copy.path().join("rules/incident/chase_requester.rhai");
    let text = std::fs::read_to_string(&script)?;
    assert!(text.contains("set_field(\"requester_reminders\", number"));
    std::fs::write(
        &script,
        text.replace(
            "set_field(\"requester_reminders\", number",
            "set_field(\"requester_remindrs\", number",
        ),
    )?;
    std::fs::write(
        copy.path().join("rules/incident/sweep.rhai"),
        "if record.catgory == \"access\" { note(\"Access\", \"sweep\"); }\n",
    )?;
    std::fs::write(
        copy.path().join("workflows/schedules/sweep.yaml"),
        "schedules:\n  sweep:\n    cron: \"0 * * * *\"\n    timezone: UTC\n    run_rule: { rule: incident/sweep, process: incident }\n",
    )?;

    let output = run_tend(
        ["validate".into(), copy.path().as_os_str().to_owned()],
        None,
    )
    .await?;
    assert!(!output.success(), "{output}");
    let lines = |needle: &str| -> Vec<&str> {
        output
            .stdout
            .lines()
            .filter(|line| line.contains(needle))
            .collect()
    };
    let typo = lines("`requester_remindrs`");
    assert_eq!(typo.len(), 1, "reported once: {output}");
    assert!(
        typo[0].contains("rules/incident/chase_requester.rhai:"),
        "{output}"
    );
    let unknown = lines("`catgory`");
    assert_eq!(unknown.len(), 1, "{output}");
    assert!(
        unknown[0].contains("rules/incident/sweep.rhai:1:"),
        "{output}"
    );
    assert!(
        unknown[0].contains("rule `incident/sweep` reads field `catgory`"),
        "{output}"
    );
    assert!(
        unknown[0].contains("workflows/incident.yaml or fix the name"),
        "{output}"
    );
    Ok(())
}
