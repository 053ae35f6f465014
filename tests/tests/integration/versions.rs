//! Definition versions. Records keep deciding against the version they were created
//! under, and `tend reload` and the file watch load a new version and reject a broken one.
//! `tend migrate-records` moves the records that fit, and `tend replay` reports where
//! stored journals would take another path under changed definitions.

use std::ffi::OsString;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tend_test_support::reqwest::StatusCode;
use tend_test_support::{
    ApiClient, Backend, CliOutput, Role, TestDatabase, TestServer, backend_tests, repo_root,
    run_tend,
};

use crate::common::{
    Desk, RECORDS, assert_error, create_incident, journal, journal_events, read, take,
};

backend_tests!(
    upgrade_keeps_open_records_on_their_version,
    reload_rejects_broken_set,
    replay_reports_differing_paths,
    replay_follows_approvals_and_follow_ons
);

/// How long the file watch may take to apply a change.
const WATCH_TIMEOUT: Duration = Duration::from_secs(30);

/// Copies `workflows/` and `rules/` of this repository into `target`.
fn copy_definitions(target: &Path) -> anyhow::Result<()> {
    fn copy(from: &Path, to: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(to)?;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            let path = entry.path();
            if path.is_dir() {
                copy(&path, &to.join(entry.file_name()))?;
            } else {
                std::fs::copy(&path, to.join(entry.file_name()))?;
            }
        }
        Ok(())
    }
    let root = repo_root();
    copy(&root.join("workflows"), &target.join("workflows"))?;
    copy(&root.join("rules"), &target.join("rules"))
}

/// Replaces the first `from` in the file `path` (relative to `dir`) with `to`.
fn edit(dir: &Path, path: &str, from: &str, to: &str) -> anyhow::Result<()> {
    let file = dir.join(path);
    let text = std::fs::read_to_string(&file)?;
    anyhow::ensure!(text.contains(from), "{path} does not contain {from:?}");
    std::fs::write(&file, text.replacen(from, to, 1))?;
    Ok(())
}

/// Makes version 2 of the incident definition: a new field `triage_note` that records in
/// progress must have.
fn require_triage_note(dir: &Path) -> anyhow::Result<()> {
    edit(
        dir,
        "workflows/incident.yaml",
        "  follow_up_of:\n",
        "  triage_note:\n    type: string\n    label: Triage note\n  follow_up_of:\n",
    )?;
    edit(
        dir,
        "workflows/incident.yaml",
        "  in_progress:\n    label: In progress\n",
        "  in_progress:\n    label: In progress\n    requires: [triage_note]\n",
    )
}

/// Returns the definition version `GET /api/v1/processes` reports, checking that every
/// process carries it.
async fn serving_version(client: &ApiClient) -> anyhow::Result<String> {
    let body = client
        .get("/api/v1/processes")
        .await?
        .expect_status(StatusCode::OK)?
        .body;
    let version = body["version"].as_str().unwrap_or_default().to_owned();
    assert!(!version.is_empty(), "no version in {body}");
    for process in body["processes"].as_array().into_iter().flatten() {
        assert_eq!(process["version"], json!(version), "{process}");
    }
    Ok(version)
}

async fn tend_with_store(server: &TestServer, args: &[&str]) -> anyhow::Result<CliOutput> {
    let mut all: Vec<OsString> = args.iter().map(OsString::from).collect();
    all.extend(server.database().store_args());
    run_tend(all, None).await
}

fn number(record: &Value) -> String {
    record["number"].as_str().unwrap_or_default().to_owned()
}

async fn upgrade_keeps_open_records_on_their_version(backend: Backend) -> anyhow::Result<()> {
    let definitions = tempfile::tempdir()?;
    copy_definitions(definitions.path())?;
    let database = TestDatabase::create(backend).await?;
    let server =
        TestServer::binary_with_definitions(database, definitions.path(), &["--no-watch"]).await?;
    let desk = Desk::with_users(server).await?;
    let olga = desk.server.add_user("olga", &[Role::ProcessOwner]).await?;
    let tom = &desk.tom.client;
    let v1 = serving_version(tom).await?;

    // Under version 1: `started` moves on before the upgrade, `waiting` and `fresh` wait.
    let started = number(&create_incident(&desk.alice, "VPN drops hourly", "", json!({})).await?);
    take(tom, &started, "start", json!({})).await?;
    let waiting = number(&create_incident(&desk.alice, "Badge reader", "", json!({})).await?);
    let fresh = number(&create_incident(&desk.bob, "Monitor flickers", "", json!({})).await?);

    require_triage_note(definitions.path())?;
    let definitions_arg = definitions.path().to_string_lossy().into_owned();
    let reload = run_tend(
        [
            "reload",
            "--server",
            desk.server.base_url(),
            "--token",
            olga.token.as_str(),
        ],
        None,
    )
    .await?
    .expect_success()?;
    let v2 = serving_version(tom).await?;
    assert_ne!(v2, v1, "the reload did not change the version");
    assert!(
        reload.stdout.contains(&format!("loaded version {v2}")),
        "{reload}"
    );

    // A new record gets version 2 and is decided against it.
    let new = create_incident(&desk.bob, "Keyboard sticks", "", json!({})).await?;
    assert_eq!(new["definition_version"], json!(v2));
    let reply = tom
        .post(
            &format!("{RECORDS}/{}/transitions/start", number(&new)),
            &json!({}),
        )
        .await?;
    assert_error(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "required_field_missing",
        Some("triage_note"),
    );

    // A record of version 1 still decides against version 1, and reads as version 1.
    let moved_on = take(tom, &waiting, "start", json!({})).await?;
    assert_eq!(moved_on["state"], json!("in_progress"));
    assert_eq!(moved_on["definition_version"], json!(v1));
    assert_eq!(read(tom, &started).await?["definition_version"], json!(v1));

    // A dry run reports and writes nothing.
    let dry = tend_with_store(
        &desk.server,
        &[
            "migrate-records",
            "--dry-run",
            "--definitions",
            &definitions_arg,
        ],
    )
    .await?
    .expect_success()?;
    let misfit = "not moved: field `triage_note` is required in state `in_progress` and is empty";
    for record in [&started, &waiting] {
        assert!(
            dry.stdout.contains(&format!(
                "{record} (incident, state in_progress, version {v1}): {misfit}"
            )),
            "{dry}"
        );
    }
    assert!(
        dry.stdout.contains(&format!(
            "{fresh} (incident, state new): would move from version {v1} to {v2}"
        )),
        "{dry}"
    );
    assert!(
        dry.stdout
            .contains("3 open record(s) on older versions than"),
        "{dry}"
    );
    assert!(dry.stdout.contains("1 would move, 2 not moved because they do not fit, 0 failed; nothing was written (dry run)"), "{dry}");
    assert_eq!(read(tom, &fresh).await?["definition_version"], json!(v1));

    let migrated = tend_with_store(
        &desk.server,
        &["migrate-records", "--definitions", &definitions_arg],
    )
    .await?
    .expect_success()?;
    assert!(
        migrated.stdout.contains(&format!(
            "{fresh} (incident, state new): moved from version {v1} to {v2}"
        )),
        "{migrated}"
    );
    assert!(
        migrated
            .stdout
            .contains("1 moved, 2 not moved because they do not fit, 0 failed"),
        "{migrated}"
    );

    // The moved record is journaled and decided against version 2; the misfits stay.
    let moved = read(tom, &fresh).await?;
    assert_eq!(moved["definition_version"], json!(v2));
    assert_eq!(journal_events(&moved).last(), Some(&"migrated"));
    let entry = journal(&moved).last().cloned().unwrap_or_default();
    assert_eq!(entry["from_version"], json!(v1));
    assert_eq!(entry["to_version"], json!(v2));
    assert_eq!(entry["actor"], json!("migrate-records"));
    for record in [&started, &waiting] {
        assert_eq!(read(tom, record).await?["definition_version"], json!(v1));
    }
    let reply = tom
        .post(&format!("{RECORDS}/{fresh}/transitions/start"), &json!({}))
        .await?;
    assert_error(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "required_field_missing",
        Some("triage_note"),
    );
    take(
        tom,
        &fresh,
        "start",
        json!({ "fields": { "triage_note": "Cable swapped, still flickers" } }),
    )
    .await?;

    // A second run finds only the misfits, and the journal chains still verify.
    let again = tend_with_store(
        &desk.server,
        &[
            "migrate-records",
            "--process",
            "incident",
            "--definitions",
            &definitions_arg,
        ],
    )
    .await?
    .expect_success()?;
    assert!(
        again
            .stdout
            .contains("2 open record(s) of process incident on older versions"),
        "{again}"
    );
    tend_with_store(&desk.server, &["audit", "verify"])
        .await?
        .expect_success()?;
    Ok(())
}

/// Polls `GET /api/v1/definitions` until `accept` holds for it.
async fn wait_for_status(
    client: &ApiClient,
    what: &str,
    accept: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    let started = Instant::now();
    loop {
        let status = client
            .get("/api/v1/definitions")
            .await?
            .expect_status(StatusCode::OK)?
            .body;
        if accept(&status) {
            return Ok(status);
        }
        anyhow::ensure!(
            started.elapsed() < WATCH_TIMEOUT,
            "{what} did not happen within {WATCH_TIMEOUT:?}; last status: {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn reload_rejects_broken_set(backend: Backend) -> anyhow::Result<()> {
    let definitions = tempfile::tempdir()?;
    copy_definitions(definitions.path())?;
    let database = TestDatabase::create(backend).await?;
    let server = TestServer::binary_with_definitions(database, definitions.path(), &[]).await?;
    let desk = Desk::with_users(server).await?;
    let olga = desk.server.add_user("olga", &[Role::ProcessOwner]).await?;
    let tom = &desk.tom.client;
    let v1 = serving_version(tom).await?;

    // Only process owners and admins see the status and reload.
    let reply = tom.get("/api/v1/definitions").await?;
    assert_error(&reply, StatusCode::FORBIDDEN, "forbidden", None);
    let reply = tom.post("/api/v1/definitions/reload", &json!({})).await?;
    assert_error(&reply, StatusCode::FORBIDDEN, "forbidden", None);
    let status = olga
        .client
        .get("/api/v1/definitions")
        .await?
        .expect_status(StatusCode::OK)?
        .body;
    assert_eq!(status["version"], json!(v1));
    assert_eq!(status["last_reload"]["outcome"], json!("loaded"));
    assert_eq!(status["last_reload"]["trigger"], json!("start"));

    // A transition to a state that does not exist breaks the set.
    edit(
        definitions.path(),
        "workflows/incident.yaml",
        "    to: in_progress\n",
        "    to: in_limbo\n",
    )?;
    let output = run_tend(
        [
            "reload",
            "--server",
            desk.server.base_url(),
            "--token",
            olga.token.as_str(),
        ],
        None,
    )
    .await?;
    assert!(!output.success(), "{output}");
    assert!(
        output.stderr.contains("rejected the definitions"),
        "{output}"
    );
    assert!(output.stderr.contains("incident.yaml:"), "{output}");
    assert!(output.stderr.contains("in_limbo"), "{output}");

    let status = olga
        .client
        .get("/api/v1/definitions")
        .await?
        .expect_status(StatusCode::OK)?
        .body;
    assert_eq!(status["version"], json!(v1));
    assert_eq!(status["last_reload"]["outcome"], json!("rejected"));
    let diagnostics = status["last_reload"]["diagnostics"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let located = diagnostics.iter().find(|d| {
        d["file"]
            .as_str()
            .is_some_and(|f| f.ends_with("incident.yaml"))
            && d["line"].as_u64().is_some_and(|line| line > 0)
            && d["message"]
                .as_str()
                .is_some_and(|m| m.contains("in_limbo"))
    });
    assert!(located.is_some(), "no located diagnostic in {status}");

    // The last good version keeps serving.
    assert_eq!(serving_version(tom).await?, v1);
    let record = create_incident(&desk.alice, "Laptop fan loud", "", json!({})).await?;
    assert_eq!(record["definition_version"], json!(v1));
    let started = take(tom, &number(&record), "start", json!({})).await?;
    assert_eq!(started["state"], json!("in_progress"));

    // Process owners see a notice in the web console; technicians do not.
    let page = olga
        .client
        .get("/records")
        .await?
        .expect_status(StatusCode::OK)?;
    assert!(
        page.text.contains("Definitions: rejected the definitions"),
        "{}",
        page.text
    );
    let page = tom.get("/records").await?.expect_status(StatusCode::OK)?;
    assert!(!page.text.contains("Definitions:"), "{}", page.text);

    // The file watch loads a fixed set without a reload request.
    edit(
        definitions.path(),
        "workflows/incident.yaml",
        "    to: in_limbo\n",
        "    to: in_progress\n",
    )?;
    require_triage_note(definitions.path())?;
    let status = wait_for_status(&olga.client, "the watch loading the fixed set", |status| {
        status["last_reload"]["outcome"] == json!("loaded")
            && status["last_reload"]["trigger"] == json!("watch")
    })
    .await?;
    let v2 = status["version"].as_str().unwrap_or_default().to_owned();
    assert_ne!(v2, v1);
    assert_eq!(serving_version(tom).await?, v2);

    // And rejects a broken one, with version 2 still serving.
    std::fs::write(
        definitions.path().join("rules/incident/assign.rhai"),
        "let broken = ;\n",
    )?;
    let status = wait_for_status(
        &olga.client,
        "the watch rejecting a broken rule",
        |status| {
            status["last_reload"]["outcome"] == json!("rejected")
                && status["last_reload"]["trigger"] == json!("watch")
        },
    )
    .await?;
    assert_eq!(status["version"], json!(v2));
    let text = status["last_reload"].to_string();
    assert!(text.contains("assign.rhai"), "{status}");
    assert!(
        desk.server.log().contains("definition error"),
        "{}",
        desk.server.log()
    );
    let record = create_incident(&desk.alice, "Laptop screen cracked", "", json!({})).await?;
    assert_eq!(record["definition_version"], json!(v2));
    // The rules of version 2 run from its stored copy, not from the broken file.
    let group = record["fields"]["assignment_group"]
        .as_str()
        .unwrap_or_default();
    assert!(!group.is_empty(), "{record}");
    assert!(
        !journal_events(&record).contains(&"rule_failed"),
        "{record}"
    );
    Ok(())
}

async fn replay_reports_differing_paths(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let tom = &desk.tom.client;

    // Resolved without a comment, then reopened by the requester's reply.
    let printer = number(
        &create_incident(
            &desk.alice,
            "Printer on floor 3 prints blank pages",
            "Every page comes out blank.",
            json!({ "impact": "low" }),
        )
        .await?,
    );
    take(tom, &printer, "start", json!({})).await?;
    take(
        tom,
        &printer,
        "resolve",
        json!({ "fields": { "resolution_code": "toner replaced" } }),
    )
    .await?;
    alice_replies(&desk, &printer, "Still blank.").await?;
    // No category word: the categorize rule falls back to `access`.
    let vague = number(
        &create_incident(
            &desk.bob,
            "Something odd happened",
            "Since today.",
            json!({}),
        )
        .await?,
    );
    tom.patch(
        &format!("{RECORDS}/{vague}"),
        &json!({ "fields": { "urgency": "high" } }),
    )
    .await?
    .expect_status(StatusCode::OK)?;
    tom.post(
        &format!("{RECORDS}/{vague}/comments"),
        &json!({ "text": "Asked for details" }),
    )
    .await?
    .expect_status(StatusCode::CREATED)?;
    // Created and started only: the changes below do not touch its path.
    let badge =
        number(&create_incident(&desk.alice, "Printer jams on tray 2", "", json!({})).await?);
    take(tom, &badge, "start", json!({})).await?;
    let journal_before = journal(&read(tom, &printer).await?).len();

    // Through the same definitions every path is the same.
    let root = repo_root().to_string_lossy().into_owned();
    let same = tend_with_store(&desk.server, &["replay", "--definitions", &root])
        .await?
        .expect_success()?;
    assert!(
        same.stdout
            .contains("3 record(s) replayed in 9 step(s): 0 would take another path"),
        "{same}"
    );

    // Changed: resolving needs a comment, and unknown tickets go to `general`.
    let changed = tempfile::tempdir()?;
    copy_definitions(changed.path())?;
    edit(
        changed.path(),
        "workflows/incident.yaml",
        "    requires: [resolution_code]\n",
        "    requires: [resolution_code]\n    comment_required: true\n",
    )?;
    edit(
        changed.path(),
        "rules/incident/categorize.rhai",
        "const FALLBACK = \"access\";",
        "const FALLBACK = \"general\";",
    )?;
    let changed_arg = changed.path().to_string_lossy().into_owned();
    let output = tend_with_store(&desk.server, &["replay", "--definitions", &changed_arg])
        .await?
        .expect_success()?;
    let stdout = &output.stdout;
    assert!(
        stdout.contains(&format!("{printer} (incident, state in_progress")),
        "{output}"
    );
    assert!(
        stdout.contains("step 3 (transition `resolve` by tom at"),
        "{output}"
    );
    assert!(stdout.contains("rejected (comment_required)"), "{output}");
    assert!(
        stdout.contains("the 1 later step(s) were not replayed"),
        "{output}"
    );
    assert!(
        stdout.contains(&format!("{vague} (incident, state new")),
        "{output}"
    );
    assert!(
        stdout.contains("step 1 (create by bob at")
            && stdout.contains(
                "rules set `category` to \"general\" (by rule incident/categorize) where they set \"access\" (by rule incident/categorize)"
            ),
        "{output}"
    );
    assert!(!stdout.contains(&format!("{badge} (")), "{output}");
    assert!(
        stdout.contains(
            "3 record(s) replayed in 8 step(s): 2 would take another path (1 rejected step(s)"
        ),
        "{output}"
    );
    assert!(stdout.contains("nothing was written"), "{output}");

    // --process and --limit narrow the replay, and nothing was written.
    let limited = tend_with_store(
        &desk.server,
        &[
            "replay",
            "--definitions",
            &changed_arg,
            "--process",
            "incident",
            "--limit",
            "1",
        ],
    )
    .await?
    .expect_success()?;
    assert!(limited.stdout.contains("1 record(s) replayed"), "{limited}");
    assert_eq!(journal(&read(tom, &printer).await?).len(), journal_before);
    Ok(())
}

async fn alice_replies(desk: &Desk, number: &str, text: &str) -> anyhow::Result<()> {
    desk.alice
        .client
        .post(
            &format!("{RECORDS}/{number}/replies"),
            &json!({ "text": text }),
        )
        .await?
        .expect_status(StatusCode::OK)?;
    Ok(())
}

/// Replays a catalog order that rules move to approval, an approver's decision, fulfilment
/// tasks and the automatic fulfilment through the same definitions, expecting no difference.
async fn replay_follows_approvals_and_follow_ons(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let tom = &desk.tom.client;
    // The shipped `request_approvers` group has the one member `admin`.
    let admin = desk
        .server
        .add_user("admin", &[tend_test_support::Role::Admin])
        .await?;
    let reply = desk
        .alice
        .client
        .post(
            "/api/v1/catalog/shared_folder_access",
            &json!({ "answers": { "path": "//fs01/finance", "access": "read" } }),
        )
        .await?;
    let request = number(&reply.expect_status(StatusCode::CREATED)?.body);
    let record = read(tom, &request).await?;
    assert_eq!(record["state"], "approval", "{record}");
    let id = record["approvals"][0]["requests"][0]["id"]
        .as_i64()
        .expect("a pending request");
    admin
        .client
        .post(
            &format!("{RECORDS}/{request}/approvals/{id}"),
            &json!({ "decision": "approve" }),
        )
        .await?
        .expect_status(StatusCode::OK)?;
    let record = read(tom, &request).await?;
    assert_eq!(record["state"], "fulfilment", "{record}");
    let task = record["links"][0]["number"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(task.starts_with("TASK"), "{record}");
    take(tom, &task, "complete", json!({})).await?;
    assert_eq!(read(tom, &request).await?["state"], "fulfilled");

    let root = repo_root().to_string_lossy().into_owned();
    let same = tend_with_store(&desk.server, &["replay", "--definitions", &root])
        .await?
        .expect_success()?;
    assert!(
        same.stdout.contains(": 0 would take another path"),
        "{same}"
    );
    Ok(())
}
