//! Cron schedules: each due run opens its record once, as the system actor `scheduler`,
//! across downtime (`missed: run_once` and `skip`), daylight-saving nights, edited
//! expressions, nodes that stop half-way, and several nodes on one database.
//!
//! The passes are driven with given instants through `Commands::run_due_schedules`, as the
//! loop of `tend serve` calls it; the last test runs two real `tend serve` processes.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;
use tend_test_support::tend_api::{Commands, Engine, ScheduleRunReport, schedules::run_key};
use tend_test_support::tend_domain::{Actor, Fields, JournalEvent, Record};
use tend_test_support::tend_store::schedules::{
    NewScheduleRun, RunOutcome, ScheduleRun, insert_schedule_run,
};
use tend_test_support::tend_workflow::jobs::{MissedRuns, OpenRecord, ScheduledJob};
use tend_test_support::{
    Backend, TestDatabase, TestServer, backend_tests, load_definitions, repo_root,
};

backend_tests!(
    first_pass_does_not_back_fill,
    run_once_catches_up_late,
    skip_drops_missed_runs,
    spring_forward_runs_after_gap,
    fall_back_runs_first_pass,
    changed_cron_skips_past_times,
    rejected_record_fails_run,
    stopped_node_claim_taken_over,
    stopped_node_record_not_duplicated,
    two_nodes_open_once,
    two_serve_processes_open_once,
);

const NAME: &str = "nightly_check";

/// The grace the tests pass: a due time more than this old at a pass counts as missed.
const GRACE: TimeDelta = TimeDelta::minutes(10);

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|error| panic!("bad instant {text}: {error}"))
        .to_utc()
}

fn job(cron: &str, timezone: &str, missed: MissedRuns) -> ScheduledJob {
    let mut fields = Fields::new();
    fields.insert("scope".into(), json!("Backup servers"));
    ScheduledJob {
        label: None,
        cron: cron.to_owned(),
        timezone: timezone.to_owned(),
        missed,
        open: Some(OpenRecord {
            process: "cmdb_audit".into(),
            title: "Nightly backup check".into(),
            description: "Check last night's backups.".into(),
            fields,
        }),
        run_rule: None,
        run_action: None,
    }
}

/// Makes `job` the only schedule of the node's current definitions, as a reload would.
fn set_schedule(commands: &Commands, job: ScheduledJob) {
    let mut set = (*commands.engine.definitions()).clone();
    set.schedules.clear();
    set.schedules.insert(NAME.into(), job);
    commands.engine.replace_definitions(set);
}

/// Starts an in-process server whose only schedule is `job`.
async fn node(backend: Backend, job: ScheduledJob) -> anyhow::Result<TestServer> {
    let server = TestServer::in_process(backend).await?;
    set_schedule(commands(&server), job);
    Ok(server)
}

fn commands(server: &TestServer) -> &Commands {
    server
        .commands()
        .expect("the in-process server exposes its command path")
}

async fn pass(commands: &Commands, now: DateTime<Utc>) -> anyhow::Result<Vec<ScheduleRunReport>> {
    commands
        .run_due_schedules(now, GRACE)
        .await
        .map_err(|error| anyhow::anyhow!("the pass at {now} failed: {error}"))
}

/// Runs a pass at every `step` from `from` to `to`, both included, and returns what they did.
async fn drive(
    commands: &Commands,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    step: TimeDelta,
) -> anyhow::Result<Vec<ScheduleRunReport>> {
    let mut reports = Vec::new();
    let mut now = from;
    while now <= to {
        reports.extend(pass(commands, now).await?);
        now += step;
    }
    Ok(reports)
}

fn opened(reports: &[ScheduleRunReport]) -> Vec<&ScheduleRunReport> {
    reports
        .iter()
        .filter(|report| report.outcome == RunOutcome::Opened)
        .collect()
}

async fn runs(commands: &Commands) -> anyhow::Result<Vec<ScheduleRun>> {
    Ok(commands.store.schedule_runs(NAME).await?)
}

async fn record(commands: &Commands, number: &str) -> anyhow::Result<Record> {
    commands
        .store
        .get_record(number)
        .await?
        .ok_or_else(|| anyhow::anyhow!("record {number} does not exist"))
}

/// Counts the CMDB audit records, which only the schedule opens in these tests, and checks
/// that their numbers have no gap.
async fn audit_records(commands: &Commands) -> anyhow::Result<usize> {
    let mut count = 0;
    while commands
        .store
        .get_record(&format!("CMA{:06}", count + 1))
        .await?
        .is_some()
    {
        count += 1;
    }
    Ok(count)
}

/// The first pass starts the schedule: due times before it do not run.
async fn first_pass_does_not_back_fill(backend: Backend) -> anyhow::Result<()> {
    let server = node(backend, job("0 * * * *", "UTC", MissedRuns::RunOnce)).await?;
    let commands = commands(&server);

    let reports = pass(commands, at("2027-01-04T13:20:00Z")).await?;
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].outcome, RunOutcome::Started);
    assert_eq!(reports[0].due_at, at("2027-01-04T13:20:00Z"));
    assert!(pass(commands, at("2027-01-04T13:25:00Z")).await?.is_empty());
    assert_eq!(audit_records(commands).await?, 0);

    let reports = pass(commands, at("2027-01-04T14:00:00Z")).await?;
    let opened = opened(&reports);
    assert_eq!(opened.len(), 1, "{reports:?}");
    assert_eq!(opened[0].due_at, at("2027-01-04T14:00:00Z"));
    assert!(!opened[0].late);
    let number = opened[0].record_number.clone().unwrap_or_default();
    let record = record(commands, &number).await?;
    assert_eq!(record.process, "cmdb_audit");
    assert_eq!(record.title, "Nightly backup check");
    assert_eq!(record.field_str("scope"), Some("Backup servers"));
    assert_eq!(record.created_at, at("2027-01-04T14:00:00Z"));
    let journal = commands.store.journal(record.id).await?;
    assert_eq!(journal[0].actor, "scheduler");
    assert!(
        !journal
            .iter()
            .any(|entry| matches!(entry.event, JournalEvent::Commented { .. })),
        "a run on time has no late note: {journal:?}"
    );
    Ok(())
}

/// Hourly runs due at 09:00 to 13:00 while no server ran: the pass at 13:20 makes one late
/// run for 13:00 that reports the five missed runs, and 14:00 runs on time.
async fn run_once_catches_up_late(backend: Backend) -> anyhow::Result<()> {
    let server = node(
        backend,
        job("0 * * * *", "Europe/Berlin", MissedRuns::RunOnce),
    )
    .await?;
    let commands = commands(&server);
    pass(commands, at("2027-01-04T08:10:00Z")).await?;
    pass(commands, at("2027-01-04T08:15:00Z")).await?;

    let reports = pass(commands, at("2027-01-04T13:20:00Z")).await?;
    let late = opened(&reports);
    assert_eq!(late.len(), 1, "{reports:?}");
    assert_eq!(late[0].due_at, at("2027-01-04T13:00:00Z"));
    assert!(late[0].late);
    assert_eq!(late[0].missed, 5);
    assert_eq!(audit_records(commands).await?, 1);

    let number = late[0].record_number.clone().unwrap_or_default();
    let record = record(commands, &number).await?;
    let journal = commands.store.journal(record.id).await?;
    let note = journal
        .iter()
        .find_map(|entry| match &entry.event {
            JournalEvent::Commented { text } if entry.actor == "scheduler" => Some(text.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no late note in {journal:?}"));
    assert!(
        note.contains("20 minutes after its run due at 2027-01-04T14:00:00+01:00"),
        "{note}"
    );
    assert!(note.contains("catches up with 5 missed runs"), "{note}");

    let reports = pass(commands, at("2027-01-04T14:00:30Z")).await?;
    let on_time = opened(&reports);
    assert_eq!(on_time.len(), 1, "{reports:?}");
    assert_eq!(on_time[0].due_at, at("2027-01-04T14:00:00Z"));
    assert!(!on_time[0].late);
    assert_eq!(on_time[0].missed, 0);
    assert_eq!(audit_records(commands).await?, 2);

    let stored: Vec<(DateTime<Utc>, RunOutcome, bool, i64)> = runs(commands)
        .await?
        .into_iter()
        .map(|run| (run.due_at, run.outcome, run.late, run.missed))
        .collect();
    assert_eq!(
        stored,
        [
            (at("2027-01-04T08:10:00Z"), RunOutcome::Started, false, 0),
            (at("2027-01-04T13:00:00Z"), RunOutcome::Opened, true, 5),
            (at("2027-01-04T14:00:00Z"), RunOutcome::Opened, false, 0),
        ]
    );
    Ok(())
}

/// The same downtime under `missed: skip`: nothing runs for 09:00 to 13:00, and 14:00 runs.
async fn skip_drops_missed_runs(backend: Backend) -> anyhow::Result<()> {
    let server = node(backend, job("0 * * * *", "Europe/Berlin", MissedRuns::Skip)).await?;
    let commands = commands(&server);
    pass(commands, at("2027-01-04T08:10:00Z")).await?;

    let reports = pass(commands, at("2027-01-04T13:20:00Z")).await?;
    assert!(opened(&reports).is_empty(), "{reports:?}");
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].outcome, RunOutcome::Skipped);
    assert_eq!(reports[0].due_at, at("2027-01-04T13:00:00Z"));
    assert_eq!(reports[0].missed, 5);
    assert!(pass(commands, at("2027-01-04T13:50:00Z")).await?.is_empty());
    assert_eq!(audit_records(commands).await?, 0);

    let reports = pass(commands, at("2027-01-04T14:00:00Z")).await?;
    let next = opened(&reports);
    assert_eq!(next.len(), 1, "{reports:?}");
    assert_eq!(next[0].due_at, at("2027-01-04T14:00:00Z"));
    assert!(!next[0].late);
    assert_eq!(audit_records(commands).await?, 1);
    Ok(())
}

/// `30 2 * * *` in Europe/Berlin on 28 March 2027, when clocks go from 02:00 to 03:00: the
/// documented run is at 03:00 +02:00, once, with passes every five minutes all day.
async fn spring_forward_runs_after_gap(backend: Backend) -> anyhow::Result<()> {
    let server = node(
        backend,
        job("30 2 * * *", "Europe/Berlin", MissedRuns::RunOnce),
    )
    .await?;
    let commands = commands(&server);
    let reports = drive(
        commands,
        at("2027-03-27T12:00:00Z"),
        at("2027-03-28T12:00:00Z"),
        TimeDelta::minutes(5),
    )
    .await?;
    let opened = opened(&reports);
    assert_eq!(opened.len(), 1, "{reports:?}");
    assert_eq!(opened[0].due_at, at("2027-03-28T03:00:00+02:00"));
    assert!(!opened[0].late);
    let number = opened[0].record_number.clone().unwrap_or_default();
    assert_eq!(
        record(commands, &number).await?.created_at,
        at("2027-03-28T01:00:00Z")
    );
    assert_eq!(audit_records(commands).await?, 1);
    Ok(())
}

/// `30 2 * * *` in Europe/Berlin on 31 October 2027, when 02:00 to 03:00 happens twice: the
/// documented run is in the first pass of the hour, at 02:30 +02:00, and not at 02:30 +01:00.
async fn fall_back_runs_first_pass(backend: Backend) -> anyhow::Result<()> {
    let server = node(
        backend,
        job("30 2 * * *", "Europe/Berlin", MissedRuns::RunOnce),
    )
    .await?;
    let commands = commands(&server);
    let reports = drive(
        commands,
        at("2027-10-30T12:00:00Z"),
        at("2027-10-31T12:00:00Z"),
        TimeDelta::minutes(5),
    )
    .await?;
    let opened = opened(&reports);
    assert_eq!(opened.len(), 1, "{reports:?}");
    assert_eq!(opened[0].due_at, at("2027-10-31T02:30:00+02:00"));
    assert!(!opened[0].late);
    assert_eq!(audit_records(commands).await?, 1);
    Ok(())
}

/// An expression edited at 12:00 from `0 9 * * *` to `0 10 * * *` does not run for 10:00 of
/// the same day, which is past: the next run is 10:00 the day after.
async fn changed_cron_skips_past_times(backend: Backend) -> anyhow::Result<()> {
    let server = node(backend, job("0 9 * * *", "UTC", MissedRuns::RunOnce)).await?;
    let commands = commands(&server);
    pass(commands, at("2027-01-04T08:00:00Z")).await?;
    assert_eq!(
        opened(&pass(commands, at("2027-01-04T09:00:00Z")).await?).len(),
        1
    );

    set_schedule(commands, job("0 10 * * *", "UTC", MissedRuns::RunOnce));
    let reports = pass(commands, at("2027-01-04T12:00:00Z")).await?;
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].outcome, RunOutcome::Started);
    assert!(pass(commands, at("2027-01-05T09:55:00Z")).await?.is_empty());

    let reports = pass(commands, at("2027-01-05T10:00:00Z")).await?;
    let opened = opened(&reports);
    assert_eq!(opened.len(), 1, "{reports:?}");
    assert_eq!(opened[0].due_at, at("2027-01-05T10:00:00Z"));
    assert!(!opened[0].late);

    let stored: Vec<(DateTime<Utc>, RunOutcome, String)> = runs(commands)
        .await?
        .into_iter()
        .map(|run| (run.due_at, run.outcome, run.cron))
        .collect();
    assert_eq!(
        stored,
        [
            (
                at("2027-01-04T08:00:00Z"),
                RunOutcome::Started,
                "0 9 * * *".into()
            ),
            (
                at("2027-01-04T09:00:00Z"),
                RunOutcome::Opened,
                "0 9 * * *".into()
            ),
            (
                at("2027-01-04T12:00:00Z"),
                RunOutcome::Started,
                "0 10 * * *".into()
            ),
            (
                at("2027-01-05T10:00:00Z"),
                RunOutcome::Opened,
                "0 10 * * *".into()
            ),
        ]
    );
    Ok(())
}

/// A schedule whose record the definition rejects (no `scope`) marks the run failed with
/// the reason, and is not retried for that due time.
async fn rejected_record_fails_run(backend: Backend) -> anyhow::Result<()> {
    let mut without_scope = job("0 * * * *", "UTC", MissedRuns::RunOnce);
    if let Some(open) = without_scope.open.as_mut() {
        open.fields.clear();
    }
    let server = node(backend, without_scope).await?;
    let commands = commands(&server);
    pass(commands, at("2027-01-04T08:10:00Z")).await?;

    let reports = pass(commands, at("2027-01-04T09:00:00Z")).await?;
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].outcome, RunOutcome::Failed);
    let stored = runs(commands).await?;
    let failed = stored.last().expect("no runs stored");
    assert_eq!(failed.outcome, RunOutcome::Failed);
    let error = failed.error.clone().unwrap_or_default();
    assert!(error.contains("scope"), "{error}");
    assert!(pass(commands, at("2027-01-04T09:30:00Z")).await?.is_empty());
    assert_eq!(audit_records(commands).await?, 0);
    Ok(())
}

/// Writes the claim a node makes before it opens the record of the run due at `due`.
async fn claim_as_stopped_node(
    commands: &Commands,
    job: &ScheduledJob,
    due: DateTime<Utc>,
    claimed_at: DateTime<Utc>,
) -> anyhow::Result<()> {
    let claim = NewScheduleRun {
        schedule: NAME.into(),
        due_at: due,
        outcome: RunOutcome::Claimed,
        ran_at: claimed_at,
        late: false,
        missed: 0,
        cron: job.cron.clone(),
        timezone: job.timezone.clone(),
    };
    let inserted = commands
        .store
        .write(move |tx| Box::pin(async move { insert_schedule_run(tx, &claim).await }))
        .await?;
    anyhow::ensure!(inserted, "the claim of {due} exists already");
    Ok(())
}

/// A node claimed the 09:00 run and stopped before it opened the record: no other node
/// touches the run during the lease, and after it one node opens the record once.
async fn stopped_node_claim_taken_over(backend: Backend) -> anyhow::Result<()> {
    let hourly = job("0 * * * *", "UTC", MissedRuns::RunOnce);
    let server = node(backend, hourly.clone()).await?;
    let commands = commands(&server);
    pass(commands, at("2027-01-04T08:10:00Z")).await?;
    claim_as_stopped_node(
        commands,
        &hourly,
        at("2027-01-04T09:00:00Z"),
        at("2027-01-04T09:00:01Z"),
    )
    .await?;

    assert!(pass(commands, at("2027-01-04T09:03:00Z")).await?.is_empty());
    assert_eq!(audit_records(commands).await?, 0);

    let reports = pass(commands, at("2027-01-04T09:06:00Z")).await?;
    let opened = opened(&reports);
    assert_eq!(opened.len(), 1, "{reports:?}");
    assert_eq!(opened[0].due_at, at("2027-01-04T09:00:00Z"));
    assert!(pass(commands, at("2027-01-04T09:20:00Z")).await?.is_empty());
    assert_eq!(audit_records(commands).await?, 1);
    let run = runs(commands).await?.pop().expect("no runs stored");
    assert_eq!(run.outcome, RunOutcome::Opened);
    assert_eq!(run.record_number, opened[0].record_number);
    Ok(())
}

/// A node opened the record of the 09:00 run and stopped before it marked the run: the
/// node that takes the run over finds the record by its idempotency key.
async fn stopped_node_record_not_duplicated(backend: Backend) -> anyhow::Result<()> {
    let hourly = job("0 * * * *", "UTC", MissedRuns::RunOnce);
    let server = node(backend, hourly.clone()).await?;
    let commands = commands(&server);
    pass(commands, at("2027-01-04T08:10:00Z")).await?;
    let due = at("2027-01-04T09:00:00Z");
    claim_as_stopped_node(commands, &hourly, due, at("2027-01-04T09:00:01Z")).await?;
    let open = hourly.open.clone().expect("the job opens a record");
    let input = tend_test_support::tend_api::NewRecord {
        title: open.title,
        description: open.description,
        fields: open.fields,
        idempotency_key: Some(run_key(NAME, due)),
        preset: Fields::new(),
    };
    let (created, _) = commands
        .create_at(
            &Actor::system("scheduler"),
            "cmdb_audit",
            input,
            at("2027-01-04T09:00:01Z"),
        )
        .await
        .map_err(|error| anyhow::anyhow!("{error}"))?;

    let reports = pass(commands, at("2027-01-04T09:06:00Z")).await?;
    let opened = opened(&reports);
    assert_eq!(opened.len(), 1, "{reports:?}");
    assert_eq!(
        opened[0].record_number.as_deref(),
        Some(created.number.as_str())
    );
    assert_eq!(audit_records(commands).await?, 1);
    Ok(())
}

/// Runs one pass on every node at the same instant, concurrently.
async fn pass_on_all(
    nodes: &[Commands],
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<ScheduleRunReport>> {
    let tasks: Vec<_> = nodes
        .iter()
        .cloned()
        .map(|node| tokio::spawn(async move { pass(&node, now).await }))
        .collect();
    let mut reports = Vec::new();
    for task in tasks {
        reports.extend(task.await??);
    }
    Ok(reports)
}

/// Two nodes (two stores and engines on one database) run every pass at the same moment:
/// every 10 minutes for three hours, then again after a downtime. Each due time opens
/// exactly one record, and the catch-up run happens once.
async fn two_nodes_open_once(backend: Backend) -> anyhow::Result<()> {
    let every_ten = job("*/10 * * * *", "UTC", MissedRuns::RunOnce);
    let server = node(backend, every_ten.clone()).await?;
    let first = commands(&server).clone();
    let (set, host) = load_definitions()?;
    let second = Commands::new(
        server.database().connect().await?,
        Arc::new(Engine::new(set, host)),
    );
    set_schedule(&second, every_ten);
    let nodes = [first, second];

    let mut reports = Vec::new();
    let mut now = at("2027-01-04T00:00:00Z");
    while now <= at("2027-01-04T03:00:00Z") {
        reports.extend(pass_on_all(&nodes, now).await?);
        now += TimeDelta::minutes(5);
    }
    // Down from 03:05 to 06:05: 03:10 to 05:50 are missed, 06:00 is on time.
    reports.extend(pass_on_all(&nodes, at("2027-01-04T06:05:00Z")).await?);

    let opened = opened(&reports);
    assert_eq!(opened.len(), 20, "{reports:?}");
    let late: Vec<_> = opened.iter().filter(|report| report.late).collect();
    assert_eq!(late.len(), 1, "{late:?}");
    assert_eq!(late[0].due_at, at("2027-01-04T05:50:00Z"));
    assert_eq!(late[0].missed, 17);
    assert_eq!(
        reports
            .iter()
            .filter(|report| report.outcome == RunOutcome::Started)
            .count(),
        1,
        "{reports:?}"
    );

    let stored = runs(&nodes[0]).await?;
    let mut numbers: Vec<String> = stored
        .iter()
        .filter_map(|run| run.record_number.clone())
        .collect();
    assert_eq!(numbers.len(), 20, "{stored:?}");
    numbers.sort();
    numbers.dedup();
    assert_eq!(numbers.len(), 20, "a record serves two runs: {stored:?}");
    assert_eq!(audit_records(&nodes[0]).await?, 20);
    Ok(())
}

/// Copies `workflows/` and `rules/` of this repository into `target`, with one schedule
/// that runs every three seconds instead of the shipped ones.
fn definitions_with_schedule(target: &Path) -> anyhow::Result<()> {
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
    copy(&root.join("rules"), &target.join("rules"))?;
    let schedules = target.join("workflows/schedules");
    std::fs::remove_dir_all(&schedules)?;
    std::fs::create_dir_all(&schedules)?;
    std::fs::write(
        schedules.join("checks.yaml"),
        format!(
            "schedules:\n  {NAME}:\n    cron: \"*/3 * * * * *\"\n    timezone: UTC\n    open:\n      \
             process: cmdb_audit\n      title: Backup check\n      fields:\n        scope: Backup servers\n"
        ),
    )?;
    Ok(())
}

/// How long two servers may take to open the records the test waits for.
const SERVE_TIMEOUT: Duration = Duration::from_secs(90);

/// Two `tend serve` processes on one database, each passing every second over a schedule
/// due every three seconds. After both are killed, every record has exactly one due time (its
/// idempotency key) and every finished run one record.
async fn two_serve_processes_open_once(backend: Backend) -> anyhow::Result<()> {
    let definitions = tempfile::tempdir()?;
    definitions_with_schedule(definitions.path())?;
    // The test keeps the database's owner, so that it outlives both servers.
    let database = TestDatabase::create(backend).await?;
    let arguments = ["--schedule-seconds", "1", "--no-watch"];
    let first =
        TestServer::binary_with_definitions(database.share()?, definitions.path(), &arguments)
            .await?;
    let second =
        TestServer::binary_with_definitions(database.share()?, definitions.path(), &arguments)
            .await?;
    let store = database.connect().await?;

    let started = Instant::now();
    loop {
        let opened = store
            .schedule_runs(NAME)
            .await?
            .iter()
            .filter(|run| run.outcome == RunOutcome::Opened)
            .count();
        if opened >= 6 {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < SERVE_TIMEOUT,
            "the servers opened {opened} scheduled records within {SERVE_TIMEOUT:?}; logs:\n{}\n{}",
            first.log(),
            second.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let logs = format!("{}\n{}", first.log(), second.log());
    drop(first);
    drop(second);

    let mut numbers = Vec::new();
    while let Some(record) = store
        .get_record(&format!("CMA{:06}", numbers.len() + 1))
        .await?
    {
        let journal = store.journal(record.id).await?;
        assert_eq!(journal[0].actor, "scheduler", "{journal:?}");
        numbers.push(record.number);
    }
    assert!(numbers.len() >= 6, "{numbers:?}");
    // A record exists only for a claimed due time, under that due time's idempotency key
    // (a killed node may have left a claim with its record). Every record belongs to one
    // due time, and every opened run names the record of its key.
    let stored = store.schedule_runs(NAME).await?;
    let mut keyed = Vec::new();
    // Rows of other outcomes mark where the schedule started or what it skipped: a
    // `started` row's time is no due time, and may share its second with one.
    let claimed = [RunOutcome::Claimed, RunOutcome::Opened, RunOutcome::Failed];
    for run in stored.iter().filter(|run| claimed.contains(&run.outcome)) {
        let key = format!("scheduler:{}", run_key(NAME, run.due_at));
        let number = store
            .write(move |tx| {
                Box::pin(
                    async move { tend_test_support::tend_store::find_idempotent(tx, &key).await },
                )
            })
            .await?;
        if run.outcome == RunOutcome::Opened {
            assert_eq!(number, run.record_number, "{run:?}; logs:\n{logs}");
        }
        keyed.extend(number);
    }
    keyed.sort();
    assert_eq!(
        keyed, numbers,
        "records and due times differ; logs:\n{logs}"
    );
    Ok(())
}
