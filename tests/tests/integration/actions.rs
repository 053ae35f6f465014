//! Plugin action runs on records: queued over the API with role and parameter checks,
//! claimed and run by the worker with their timeout, journaled with who, what, parameters,
//! outcome, duration and output, and never left running when a node stops.
//!
//! The plugin here is defined by the test: it writes files into a directory the test
//! owns, so each run's effect can be checked on disk.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};
use tend_test_support::reqwest::StatusCode;
use tend_test_support::tend_api::actions::ActionWorker;
use tend_test_support::tend_domain::{JournalEvent, Role};
use tend_test_support::tend_plugin_api::{
    ActionOutcome, ActionRequest, ActionSpec, CancellationToken, ParamSpec, ParamType, Plugin,
    PluginError, PluginRegistry,
};
use tend_test_support::tend_store::action_runs::{
    NewActionRun, RunStatus, claim_action_runs, queue_action_run,
};
use tend_test_support::{Backend, TestDatabase, TestServer, backend_tests};

backend_tests!(
    run_is_queued_run_and_journaled,
    bad_requests_name_the_fix,
    slow_run_times_out,
    stopped_node_runs_end_or_rerun,
    schedule_queues_action_once,
    served_plugins_run_for_real,
    lost_file_restored_from_recommendation,
    approval_gates_single_runs,
    change_window_gates_runs,
);

/// Writes `NAME.txt` with the run's record number into its directory; `slow` sleeps.
struct FilePlugin {
    dir: PathBuf,
    actions: Vec<ActionSpec>,
}

impl FilePlugin {
    fn new(dir: PathBuf) -> Self {
        let name = ParamSpec {
            kind: ParamType::String,
            label: "File name".into(),
            description: String::new(),
            required: true,
            default: None,
            values: Vec::new(),
            max_length: Some(40),
        };
        let spec = |action: &str, timeout_seconds, idempotent| ActionSpec {
            name: action.into(),
            label: action.into(),
            description: String::new(),
            params: [("name".to_owned(), name.clone())].into_iter().collect(),
            timeout_seconds,
            roles: vec!["technician".into()],
            needs_approval: false,
            idempotent,
        };
        let mut guarded = spec("guarded", 5, false);
        guarded.needs_approval = true;
        FilePlugin {
            dir,
            actions: vec![
                spec("write", 5, false),
                spec("slow", 1, false),
                spec("rewrite", 5, true),
                guarded,
            ],
        }
    }
}

#[async_trait::async_trait]
impl Plugin for FilePlugin {
    fn name(&self) -> &str {
        "files"
    }

    fn description(&self) -> &str {
        "Writes files for the tests"
    }

    fn actions(&self) -> &[ActionSpec] {
        &self.actions
    }

    async fn run(
        &self,
        request: ActionRequest,
        cancel: CancellationToken,
    ) -> Result<ActionOutcome, PluginError> {
        let name = request.params["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if request.action == "slow" {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(30)) => {}
                () = cancel.cancelled() => return Err(PluginError::Cancelled),
            }
        }
        let number = request
            .record
            .map(|record| record.number)
            .unwrap_or_default();
        let path = self.dir.join(format!("{name}.txt"));
        std::fs::write(&path, &number).map_err(|error| PluginError::Failed(error.to_string()))?;
        Ok(ActionOutcome::succeeded(
            format!("Wrote {name}.txt"),
            format!("{number}\n"),
        ))
    }
}

struct Setup {
    server: TestServer,
    dir: tempfile::TempDir,
    worker: ActionWorker,
}

async fn setup(backend: Backend) -> anyhow::Result<Setup> {
    let dir = tempfile::tempdir()?;
    let mut plugins = PluginRegistry::new();
    plugins.add(Arc::new(FilePlugin::new(dir.path().to_path_buf())));
    let database = TestDatabase::create(backend).await?;
    let server = TestServer::in_process_with(database, plugins).await?;
    let commands = server.commands().expect("in-process").clone();
    let worker = ActionWorker::new(commands, "node-a", 4, CancellationToken::new());
    Ok(Setup {
        server,
        dir,
        worker,
    })
}

/// Runs worker passes until run `id` has ended, for at most 20 seconds.
async fn until_ended(setup: &Setup, id: i64) -> anyhow::Result<Value> {
    let commands = setup.server.commands().expect("in-process");
    for _ in 0..200 {
        setup.worker.pass().await?;
        let run = commands.action_run(id).await?;
        if run.status.is_final() {
            return Ok(serde_json::to_value(&run)?);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("run {id} did not end")
}

async fn incident(setup: &Setup, token: &tend_test_support::TestUser) -> anyhow::Result<String> {
    let created = token
        .client
        .post(
            "/api/v1/records/incident",
            &json!({ "title": "Lost the budget file", "description": "report.xlsx is gone" }),
        )
        .await?
        .expect_status(StatusCode::CREATED)?;
    let _ = setup;
    Ok(created.body["number"]
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

async fn run_is_queued_run_and_journaled(backend: Backend) -> anyhow::Result<()> {
    let setup = setup(backend).await?;
    let tara = setup.server.add_user("tara", &[Role::Technician]).await?;
    let number = incident(&setup, &tara).await?;

    let plugins = tara
        .client
        .get("/api/v1/plugins")
        .await?
        .expect_status(StatusCode::OK)?;
    let actions = &plugins.body["plugins"][0]["actions"];
    assert_eq!(plugins.body["plugins"][0]["name"], "files");
    assert_eq!(actions[0]["name"], "write");
    assert_eq!(actions[0]["allowed"], true);
    assert_eq!(actions[0]["params"]["name"]["type"], "string");

    let queued = tara
        .client
        .post(
            &format!("/api/v1/records/{number}/actions"),
            &json!({ "plugin": "files", "action": "write", "params": { "name": "restored" }, "reason": "The file was deleted" }),
        )
        .await?
        .expect_status(StatusCode::ACCEPTED)?;
    assert_eq!(queued.body["status"], "queued");
    let id = queued.body["id"].as_i64().expect("run id");

    let ended = until_ended(&setup, id).await?;
    assert_eq!(ended["status"], "succeeded", "{ended}");
    assert_eq!(ended["summary"], "Wrote restored.txt");
    assert_eq!(ended["actor"], "tara");
    assert_eq!(ended["attempts"], 1);
    assert_eq!(
        std::fs::read_to_string(setup.dir.path().join("restored.txt"))?,
        number
    );
    let over_api = tara
        .client
        .get(&format!("/api/v1/action-runs/{id}"))
        .await?
        .expect_status(StatusCode::OK)?;
    assert_eq!(over_api.body["status"], "succeeded");
    assert_eq!(over_api.body["params"], json!({ "name": "restored" }));

    let record = tara
        .client
        .get(&format!("/api/v1/records/{number}"))
        .await?
        .expect_status(StatusCode::OK)?;
    assert_eq!(record.body["action_runs"][0]["id"], id);
    let commands = setup.server.commands().expect("in-process");
    let stored = commands.store.get_record(&number).await?.expect("record");
    let journal = commands.store.journal(stored.id).await?;
    let queued_entry = journal
        .iter()
        .find(|entry| matches!(entry.event, JournalEvent::ActionQueued { .. }))
        .expect("queued entry");
    assert_eq!(queued_entry.actor, "tara");
    let JournalEvent::ActionQueued {
        run,
        params,
        reason,
        ..
    } = &queued_entry.event
    else {
        unreachable!()
    };
    assert_eq!(*run, id);
    assert_eq!(params, &json!({ "name": "restored" }));
    assert_eq!(reason.as_deref(), Some("The file was deleted"));
    let finished = journal
        .iter()
        .find_map(|entry| match &entry.event {
            JournalEvent::ActionFinished {
                status,
                summary,
                output,
                duration_ms,
                ..
            } => Some((entry.actor.clone(), status, summary, output, *duration_ms)),
            _ => None,
        })
        .expect("finished entry");
    assert_eq!(finished.0, "tara");
    assert_eq!(finished.1, "succeeded");
    assert_eq!(finished.2, "Wrote restored.txt");
    assert_eq!(finished.3, &format!("{number}\n"));
    assert!(finished.4 >= 0);
    Ok(())
}

async fn bad_requests_name_the_fix(backend: Backend) -> anyhow::Result<()> {
    let setup = setup(backend).await?;
    let tara = setup.server.add_user("tara", &[Role::Technician]).await?;
    let rita = setup.server.add_user("rita", &[Role::Requester]).await?;
    let number = incident(&setup, &tara).await?;
    let path = format!("/api/v1/records/{number}/actions");

    let unknown = tara
        .client
        .post(
            &path,
            &json!({ "plugin": "files", "action": "wirte", "params": {} }),
        )
        .await?
        .expect_status(StatusCode::BAD_REQUEST)?;
    assert_eq!(unknown.error_code(), Some("unknown_action"));
    assert!(
        unknown.text.contains("use one of write, slow, rewrite"),
        "{}",
        unknown.text
    );

    let missing = tara
        .client
        .post(
            &path,
            &json!({ "plugin": "files", "action": "write", "params": { "nmae": "x" } }),
        )
        .await?
        .expect_status(StatusCode::BAD_REQUEST)?;
    assert_eq!(missing.error_code(), Some("invalid_params"));
    assert!(missing.text.contains("nmae"), "{}", missing.text);

    let requester = rita
        .client
        .post(
            &path,
            &json!({ "plugin": "files", "action": "write", "params": { "name": "x" } }),
        )
        .await?;
    assert!(
        requester.status == StatusCode::FORBIDDEN || requester.status == StatusCode::NOT_FOUND,
        "{requester:?}"
    );
    let commands = setup.server.commands().expect("in-process");
    let stored = commands.store.get_record(&number).await?.expect("record");
    assert!(
        commands
            .store
            .action_runs_of(stored.id, 10)
            .await?
            .is_empty()
    );
    Ok(())
}

async fn slow_run_times_out(backend: Backend) -> anyhow::Result<()> {
    let setup = setup(backend).await?;
    let tara = setup.server.add_user("tara", &[Role::Technician]).await?;
    let number = incident(&setup, &tara).await?;
    let queued = tara
        .client
        .post(
            &format!("/api/v1/records/{number}/actions"),
            &json!({ "plugin": "files", "action": "slow", "params": { "name": "late" } }),
        )
        .await?
        .expect_status(StatusCode::ACCEPTED)?;
    let id = queued.body["id"].as_i64().expect("run id");
    let ended = until_ended(&setup, id).await?;
    assert_eq!(ended["status"], "timed_out", "{ended}");
    assert!(
        ended["summary"]
            .as_str()
            .is_some_and(|text| text.contains("within its 1 s timeout")),
        "{ended}"
    );
    assert!(!setup.dir.path().join("late.txt").exists());
    Ok(())
}

/// A node claimed two runs and stopped: after the lease the run that is not idempotent is
/// interrupted (and journaled), the idempotent one runs again on another node.
async fn stopped_node_runs_end_or_rerun(backend: Backend) -> anyhow::Result<()> {
    let setup = setup(backend).await?;
    let tara = setup.server.add_user("tara", &[Role::Technician]).await?;
    let number = incident(&setup, &tara).await?;
    let commands = setup.server.commands().expect("in-process");
    let record = commands.store.get_record(&number).await?.expect("record");
    let long_ago = Utc::now() - TimeDelta::minutes(5);
    let run = |action: &str, idempotent| NewActionRun {
        record_id: Some(record.id),
        record_number: Some(number.clone()),
        schedule: None,
        plugin: "files".into(),
        action: action.into(),
        params: json!({ "name": action }),
        actor: "tara".into(),
        reason: None,
        idempotent,
        timeout_seconds: 5,
        queued_at: long_ago,
        ..Default::default()
    };
    let (once, again) = (run("write", false), run("rewrite", true));
    let ids = commands
        .store
        .write(move |tx| {
            Box::pin(async move {
                let first = queue_action_run(tx, &once).await?;
                let second = queue_action_run(tx, &again).await?;
                claim_action_runs(tx, "gone", long_ago, long_ago + TimeDelta::seconds(30), 10)
                    .await?;
                Ok((first, second))
            })
        })
        .await?;

    let interrupted = until_ended(&setup, ids.0).await?;
    assert_eq!(interrupted["status"], "interrupted", "{interrupted}");
    assert!(!setup.dir.path().join("write.txt").exists());
    let rerun = until_ended(&setup, ids.1).await?;
    assert_eq!(rerun["status"], "succeeded", "{rerun}");
    assert_eq!(rerun["attempts"], 2);
    assert_eq!(rerun["node"], "node-a");
    assert!(setup.dir.path().join("rewrite.txt").exists());

    let journal = commands.store.journal(record.id).await?;
    assert!(
        journal.iter().any(|entry| matches!(
            &entry.event,
            JournalEvent::ActionFinished { run, status, .. } if *run == ids.0 && status == "interrupted"
        )),
        "{journal:?}"
    );
    assert_eq!(
        commands.action_run(ids.0).await?.status,
        RunStatus::Interrupted
    );
    Ok(())
}

/// A schedule with `run_action` queues one run per due time, without a record, and a
/// schedule whose action does not exist fails its run with the reason.
async fn schedule_queues_action_once(backend: Backend) -> anyhow::Result<()> {
    use tend_test_support::tend_store::schedules::RunOutcome;
    use tend_test_support::tend_workflow::jobs::{ActionRun, MissedRuns, ScheduledJob};

    let setup = setup(backend).await?;
    let commands = setup.server.commands().expect("in-process");
    let job = |action: &str| ScheduledJob {
        label: None,
        cron: "0 * * * *".into(),
        timezone: "UTC".into(),
        missed: MissedRuns::RunOnce,
        open: None,
        run_rule: None,
        run_action: Some(ActionRun {
            plugin: "files".into(),
            action: action.into(),
            params: [("name".to_owned(), json!("hourly"))].into_iter().collect(),
        }),
    };
    let mut set = (*commands.engine.definitions()).clone();
    set.schedules.clear();
    set.schedules.insert("hourly_file".into(), job("write"));
    set.schedules.insert("broken".into(), job("wirte"));
    commands.engine.replace_definitions(set);

    let at = |text: &str| {
        chrono::DateTime::parse_from_rfc3339(text)
            .expect("instant")
            .to_utc()
    };
    let grace = TimeDelta::minutes(10);
    commands
        .run_due_schedules(at("2027-01-04T08:30:00Z"), grace)
        .await?;
    let (first, second) = tokio::join!(
        commands.run_due_schedules(at("2027-01-04T09:00:05Z"), grace),
        commands.run_due_schedules(at("2027-01-04T09:00:06Z"), grace)
    );
    let mut reports = first?;
    reports.extend(second?);
    let ran: Vec<_> = reports
        .iter()
        .filter(|report| report.outcome == RunOutcome::Ran)
        .collect();
    assert_eq!(ran.len(), 1, "{reports:?}");
    assert_eq!(ran[0].schedule, "hourly_file");
    let failed: Vec<_> = reports
        .iter()
        .filter(|report| report.outcome == RunOutcome::Failed)
        .collect();
    assert_eq!(failed.len(), 1, "{reports:?}");
    let broken = commands.store.schedule_runs("broken").await?;
    let reason = broken
        .last()
        .and_then(|run| run.error.clone())
        .unwrap_or_default();
    assert!(
        reason.contains("plugin `files` has no action `wirte`: use one of write"),
        "{reason}"
    );

    let stored = commands.store.schedule_runs("hourly_file").await?;
    let summary = stored
        .last()
        .and_then(|run| run.summary.clone())
        .unwrap_or_default();
    let id: i64 = summary
        .strip_prefix("queued action run ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no run id in `{summary}`"));
    let ended = until_ended(&setup, id).await?;
    assert_eq!(ended["status"], "succeeded", "{ended}");
    assert_eq!(ended["schedule"], "hourly_file");
    assert_eq!(ended["record_number"], Value::Null);
    assert_eq!(ended["actor"], "scheduler");
    assert!(setup.dir.path().join("hourly.txt").exists());
    Ok(())
}

/// `tend serve` loads the script plugin and external plugins from `--plugins-dir`, and its
/// worker runs them: a hostile file name reaches `touch` as one argument (case C77), and
/// the Python example reports free space.
async fn served_plugins_run_for_real(backend: Backend) -> anyhow::Result<()> {
    let plugins = tempfile::tempdir()?;
    let work = tempfile::tempdir()?;
    std::fs::create_dir_all(plugins.path().join("script"))?;
    std::fs::write(
        plugins.path().join("script/allowed.yaml"),
        format!(
            "actions:\n  - name: mark_file\n    label: Mark file\n    executable: /usr/bin/touch\n    working_dir: {}\n    params:\n      path: {{ type: string, required: true, max_length: 200 }}\n    timeout_seconds: 10\n    roles: [technician]\n",
            work.path().display()
        ),
    )?;
    let example = tend_test_support::repo_root().join("plugins/examples/disk_report");
    let copy = plugins.path().join("disk_report");
    std::fs::create_dir_all(&copy)?;
    for file in ["plugin.yaml", "disk_report.py"] {
        std::fs::copy(example.join(file), copy.join(file))?;
    }
    let plugins_dir = plugins.path().display().to_string();
    let database = TestDatabase::create(backend).await?;
    let server = TestServer::binary_with(database, &["--plugins-dir", &plugins_dir]).await?;
    let tara = server.add_user("tara", &[Role::Technician]).await?;
    let created = tara
        .client
        .post(
            "/api/v1/records/incident",
            &json!({ "title": "Quarterly report is missing", "description": "Lost file" }),
        )
        .await?
        .expect_status(StatusCode::CREATED)?;
    let number = created.body["number"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    let listed = tara
        .client
        .get("/api/v1/plugins")
        .await?
        .expect_status(StatusCode::OK)?;
    let names: Vec<&str> = listed.body["plugins"]
        .as_array()
        .map(|plugins| plugins.iter().filter_map(|p| p["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["disk_report", "script"], "{}", listed.text);

    let hostile = "report.xlsx; touch PWNED_MARKER";
    let runs = [
        json!({ "plugin": "script", "action": "mark_file", "params": { "path": hostile } }),
        json!({ "plugin": "script", "action": "mark_file", "params": { "path": "--help" } }),
        json!({ "plugin": "disk_report", "action": "free_space", "params": { "path": work.path() } }),
    ];
    let mut ids = Vec::new();
    for body in &runs {
        let queued = tara
            .client
            .post(&format!("/api/v1/records/{number}/actions"), body)
            .await?
            .expect_status(StatusCode::ACCEPTED)?;
        ids.push(queued.body["id"].as_i64().expect("run id"));
    }
    let mut ended = Vec::new();
    for id in ids {
        let mut run = Value::Null;
        for _ in 0..150 {
            run = tara
                .client
                .get(&format!("/api/v1/action-runs/{id}"))
                .await?
                .expect_status(StatusCode::OK)?
                .body;
            if !matches!(run["status"].as_str(), Some("queued" | "running")) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        ended.push(run);
    }
    for run in &ended {
        assert_eq!(run["status"], "succeeded", "{run}");
    }
    assert!(work.path().join(hostile).exists());
    assert!(work.path().join("--help").exists());
    assert!(!work.path().join("PWNED_MARKER").exists());
    assert!(
        ended[2]["summary"]
            .as_str()
            .is_some_and(|text| text.contains("free")),
        "{}",
        ended[2]
    );

    let record = tara
        .client
        .get(&format!("/api/v1/records/{number}"))
        .await?
        .expect_status(StatusCode::OK)?;
    let kinds: Vec<&str> = record.body["journal"]
        .as_array()
        .map(|entries| entries.iter().filter_map(|e| e["event"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        kinds
            .iter()
            .filter(|kind| **kind == "action_finished")
            .count(),
        3,
        "{kinds:?}"
    );
    Ok(())
}

/// Runs restic on `repo` with `password` and returns its standard output.
fn restic(
    repo: &std::path::Path,
    password: &std::path::Path,
    args: &[&str],
) -> anyhow::Result<String> {
    let output = std::process::Command::new("/usr/bin/restic")
        .arg(format!("--repo={}", repo.display()))
        .arg(format!("--password-file={}", password.display()))
        .arg("--no-cache")
        .args(args)
        .env_clear()
        .output()?;
    anyhow::ensure!(
        output.status.success(),
        "restic {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8(output.stdout)?)
}

/// A folder backed up with restic into a local repository, one of its files deleted, and a
/// plugins directory whose recovery plugin may restore into that folder.
pub(crate) struct LostFile {
    /// Holds the folder, the repository, its password file and the plugins directory.
    pub root: tempfile::TempDir,
    /// The deleted file.
    pub budget: PathBuf,
    /// The deleted file's content, which a restore must bring back byte for byte.
    pub content: Vec<u8>,
    /// The value for `tend serve --plugins-dir`.
    pub plugins_dir: String,
}

/// Backs up a folder with the real restic and deletes a file from it. Returns `None` after
/// printing why when restic is missing, which fails under `TEND_REQUIRE_PLUGIN_TOOLS`.
pub(crate) fn lost_file() -> anyhow::Result<Option<LostFile>> {
    if !std::path::Path::new("/usr/bin/restic").exists() {
        anyhow::ensure!(
            std::env::var_os("TEND_REQUIRE_PLUGIN_TOOLS").is_none(),
            "restic is missing: run scripts/ensure-plugin-tools.sh"
        );
        eprintln!("skipped: restic is missing; run scripts/ensure-plugin-tools.sh");
        return Ok(None);
    }
    let root = tempfile::tempdir()?;
    let share = root.path().join("share");
    let repo = root.path().join("repo");
    let password = root.path().join("password");
    std::fs::create_dir_all(share.join("finance"))?;
    std::fs::write(&password, "correct horse battery staple\n")?;
    let budget = share.join("finance/budget.xlsx");
    let content: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&budget, &content)?;
    restic(&repo, &password, &["init", "--quiet"])?;
    restic(
        &repo,
        &password,
        &["backup", "--quiet", &share.display().to_string()],
    )?;
    std::fs::remove_file(&budget)?;

    let plugins = root.path().join("plugins");
    std::fs::create_dir_all(plugins.join("recovery"))?;
    std::fs::write(
        plugins.join("recovery/recovery.yaml"),
        format!(
            "restic: /usr/bin/restic\ntimeout_seconds: 120\nroles: [technician]\nallowed_targets: [\"{share}\"]\ncache_dir: \"{cache}\"\nrepositories:\n  files:\n    repository: \"{repo}\"\n    password_file: \"{password}\"\n",
            share = share.display(),
            cache = root.path().join("cache").display(),
            repo = repo.display(),
            password = password.display(),
        ),
    )?;
    let plugins_dir = plugins.display().to_string();
    Ok(Some(LostFile {
        root,
        budget,
        content,
        plugins_dir,
    }))
}

/// The lost-file story end to end: a backed-up file is deleted, the requester's incident
/// names it, the shipped rule recommends the restore, one request runs the recommendation
/// as it is, the real restic restores the file, and the journal records the whole run.
async fn lost_file_restored_from_recommendation(backend: Backend) -> anyhow::Result<()> {
    let Some(LostFile {
        root: _root,
        budget,
        content,
        plugins_dir,
    }) = lost_file()?
    else {
        return Ok(());
    };
    let database = TestDatabase::create(backend).await?;
    let server = TestServer::binary_with(database, &["--plugins-dir", &plugins_dir]).await?;
    let tara = server.add_user("tara", &[Role::Technician]).await?;
    let created = tara
        .client
        .post(
            "/api/v1/records/incident",
            &json!({
                "title": "Deleted budget file",
                "description": format!("I deleted {} by mistake this morning.", budget.display()),
            }),
        )
        .await?
        .expect_status(StatusCode::CREATED)?;
    let number = created.body["number"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let recommendation = &created.body["recommendations"][0];
    assert_eq!(
        recommendation["action"], "recovery/restore_file",
        "{}",
        created.text
    );
    assert_eq!(
        recommendation["params"]["path"],
        budget.display().to_string()
    );

    let queued = tara
        .client
        .post(
            &format!("/api/v1/records/{number}/recommendations/0/run"),
            &json!({}),
        )
        .await?
        .expect_status(StatusCode::ACCEPTED)?;
    let id = queued.body["id"].as_i64().expect("run id");
    let mut run = Value::Null;
    for _ in 0..300 {
        run = tara
            .client
            .get(&format!("/api/v1/action-runs/{id}"))
            .await?
            .expect_status(StatusCode::OK)?
            .body;
        if !matches!(run["status"].as_str(), Some("queued" | "running")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(
        std::fs::read(&budget)?,
        content,
        "the file is back, byte for byte"
    );
    assert!(
        run["summary"]
            .as_str()
            .is_some_and(|text| text.starts_with("Restored")),
        "{run}"
    );

    let record = tara
        .client
        .get(&format!("/api/v1/records/{number}"))
        .await?
        .expect_status(StatusCode::OK)?;
    let journal = record.body["journal"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let queued_entry = journal
        .iter()
        .find(|entry| entry["event"] == "action_queued")
        .expect("queued entry");
    assert_eq!(queued_entry["actor"], "tara");
    assert_eq!(
        queued_entry["reason"],
        "Lost file: restore it from the last backup"
    );
    assert_eq!(queued_entry["params"]["target"], "original");
    let finished = journal
        .iter()
        .find(|entry| entry["event"] == "action_finished")
        .expect("finished entry");
    assert_eq!(finished["status"], "succeeded");
    assert_eq!(finished["actor"], "tara");
    assert!(finished["duration_ms"].as_i64().is_some());
    Ok(())
}

/// Queues a run of `files guarded` writing `name` on `number` as `user`, and returns the reply.
async fn queue_guarded(
    user: &tend_test_support::TestUser,
    number: &str,
    name: &str,
) -> anyhow::Result<tend_test_support::Reply> {
    user.client
        .post(
            &format!("/api/v1/records/{number}/actions"),
            &json!({ "plugin": "files", "action": "guarded", "params": { "name": name } }),
        )
        .await
}

async fn approval_gates_single_runs(backend: Backend) -> anyhow::Result<()> {
    let setup = setup(backend).await?;
    let tara = setup.server.add_user("tara", &[Role::Technician]).await?;
    let olga = setup.server.add_user("olga", &[Role::ProcessOwner]).await?;
    let ada = setup.server.add_user("ada", &[Role::Admin]).await?;
    let number = incident(&setup, &tara).await?;

    let queued = queue_guarded(&tara, &number, "approved")
        .await?
        .expect_status(StatusCode::ACCEPTED)?;
    assert_eq!(queued.body["status"], "awaiting_approval");
    let id = queued.body["id"].as_i64().expect("run id");
    setup.worker.pass().await?;
    let commands = setup.server.commands().expect("in-process");
    assert_eq!(
        commands.action_run(id).await?.status,
        RunStatus::AwaitingApproval,
        "a worker pass does not start a run that waits for an approval"
    );

    // A technician is not an approver, and no approver decides on a run they queued.
    let by_technician = tara
        .client
        .post(&format!("/api/v1/action-runs/{id}/approve"), &json!({}))
        .await?;
    assert_eq!(by_technician.status, StatusCode::FORBIDDEN);
    let own = queue_guarded(&ada, &number, "own")
        .await?
        .expect_status(StatusCode::ACCEPTED)?;
    let own_id = own.body["id"].as_i64().expect("run id");
    let by_requester = ada
        .client
        .post(&format!("/api/v1/action-runs/{own_id}/approve"), &json!({}))
        .await?;
    assert_eq!(by_requester.status, StatusCode::FORBIDDEN);
    assert!(
        by_requester.text.contains("another approver"),
        "{}",
        by_requester.text
    );

    // A rejection needs a reason and ends the run without running it.
    let no_reason = olga
        .client
        .post(&format!("/api/v1/action-runs/{own_id}/reject"), &json!({}))
        .await?;
    assert_eq!(no_reason.status, StatusCode::BAD_REQUEST);
    assert_eq!(no_reason.error_code(), Some("reason_required"));
    let rejected = olga
        .client
        .post(
            &format!("/api/v1/action-runs/{own_id}/reject"),
            &json!({ "reason": "Not during office hours" }),
        )
        .await?
        .expect_status(StatusCode::OK)?;
    assert_eq!(rejected.body["status"], "rejected");
    assert_eq!(rejected.body["decided_by"], "olga");

    let approved = olga
        .client
        .post(&format!("/api/v1/action-runs/{id}/approve"), &json!({}))
        .await?
        .expect_status(StatusCode::OK)?;
    assert_eq!(approved.body["status"], "queued");
    let again = olga
        .client
        .post(&format!("/api/v1/action-runs/{id}/approve"), &json!({}))
        .await?;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text);

    let ended = until_ended(&setup, id).await?;
    assert_eq!(ended["status"], "succeeded", "{ended}");
    assert!(setup.dir.path().join("approved.txt").exists());
    assert!(!setup.dir.path().join("own.txt").exists());

    let stored = commands.store.get_record(&number).await?.expect("record");
    let journal = commands.store.journal(stored.id).await?;
    let decisions: Vec<(String, bool)> = journal
        .iter()
        .filter_map(|entry| match &entry.event {
            JournalEvent::ActionDecided { approved, .. } => Some((entry.actor.clone(), *approved)),
            _ => None,
        })
        .collect();
    assert_eq!(
        decisions,
        [("olga".to_owned(), false), ("olga".to_owned(), true)]
    );
    let waits: Vec<&str> = journal
        .iter()
        .filter_map(|entry| match &entry.event {
            JournalEvent::ActionQueued { waits_for, .. } => waits_for.as_deref(),
            _ => None,
        })
        .collect();
    assert_eq!(waits.len(), 2);
    assert!(waits[0].contains("approval"), "{waits:?}");
    Ok(())
}

async fn change_window_gates_runs(backend: Backend) -> anyhow::Result<()> {
    use crate::common::{Desk, take};
    use crate::support::{approve, create, number, set_members};

    let dir = tempfile::tempdir()?;
    let mut plugins = PluginRegistry::new();
    plugins.add(Arc::new(FilePlugin::new(dir.path().to_path_buf())));
    let database = TestDatabase::create(backend).await?;
    let server = TestServer::in_process_with(database, plugins).await?;
    let desk = Desk::with_users(server).await?;
    set_members(&desk, &[("change_managers", &["tom", "mia"])])?;
    let mia = desk.server.add_user("mia", &[Role::Technician]).await?;
    let commands = desk.server.commands().expect("in-process").clone();
    let worker = ActionWorker::new(commands.clone(), "node-a", 4, CancellationToken::new());
    let now = Utc::now();
    let at = |hours: i64| (now + TimeDelta::hours(hours)).to_rfc3339();
    let tom = &desk.tom.client;
    let change = |title: &str, start: String, end: String| {
        let body = json!({ "title": title, "fields": {
            "ci": "app-01", "cis": "app-01",
            "planned_start": start, "planned_end": end,
            "implementation_plan": "Deploy the new build",
            "test_plan": "Run the smoke tests",
            "backout_plan": "Deploy the previous build",
        }});
        async move {
            let created = create(tom, "change", body).await?;
            let number = number(&created);
            take(tom, &number, "submit", json!({})).await?;
            anyhow::Ok(number)
        }
    };

    // Not authorised yet: the approval the action needs is missing.
    let open_now = change("Deploy build 42", at(-1), at(1)).await?;
    let early = queue_guarded(&desk.tom, &open_now, "early").await?;
    assert_eq!(early.status, StatusCode::CONFLICT, "{}", early.text);
    assert!(early.text.contains("authorised change"), "{}", early.text);

    // Authorised and inside its window: queued at once, approved by the change.
    take(tom, &open_now, "authorize", json!({})).await?;
    assert_eq!(approve(&mia, &open_now).await?["state"], "scheduled");
    let queued = queue_guarded(&desk.tom, &open_now, "in_window")
        .await?
        .expect_status(StatusCode::ACCEPTED)?;
    assert_eq!(queued.body["status"], "queued");
    assert_eq!(queued.body["decided_by"], format!("change:{open_now}"));
    let id = queued.body["id"].as_i64().expect("run id");
    for _ in 0..100 {
        worker.pass().await?;
        if commands.action_run(id).await?.status.is_final() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(commands.action_run(id).await?.status, RunStatus::Succeeded);
    assert!(dir.path().join("in_window.txt").exists());

    // A window that opens later: the run waits, and ends as expired if the window closes
    // before a node starts it.
    let later = change("Deploy build 43", at(2), at(3)).await?;
    take(tom, &later, "authorize", json!({})).await?;
    assert_eq!(approve(&mia, &later).await?["state"], "scheduled");
    let waiting = queue_guarded(&desk.tom, &later, "later")
        .await?
        .expect_status(StatusCode::ACCEPTED)?;
    let waiting_id = waiting.body["id"].as_i64().expect("run id");
    worker.pass().await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    worker.pass().await?;
    assert_eq!(
        commands.action_run(waiting_id).await?.status,
        RunStatus::Queued,
        "a run does not start before its window"
    );
    assert!(!dir.path().join("later.txt").exists());
    let expired = commands
        .expire_action_runs(now + TimeDelta::hours(4))
        .await?;
    assert!(expired.iter().any(|run| run.id == waiting_id));
    let run = commands.action_run(waiting_id).await?;
    assert_eq!(run.status, RunStatus::Expired);
    assert!(
        run.summary
            .as_deref()
            .unwrap_or_default()
            .contains("window ended"),
        "{run:?}"
    );
    let stored = commands.store.get_record(&later).await?.expect("record");
    let journal = commands.store.journal(stored.id).await?;
    assert!(journal.iter().any(|entry| matches!(
        &entry.event,
        JournalEvent::ActionFinished { status, .. } if status == "expired"
    )));
    Ok(())
}
