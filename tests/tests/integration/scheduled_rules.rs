//! Schedules that run a rule over records (`run_rule`): the shipped `chase_requesters`
//! reminds requesters of incidents waiting for them and resolves the incidents after nine
//! silent days, each step once per record, across late runs, runs taken over from a node
//! that stopped, and two nodes passing at the same instant.
//!
//! Passes are driven with given instants through `Commands::run_due_schedules`, as the loop
//! of `tend serve` calls it.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;
use tend_test_support::tend_api::scheduled_rules::rule_run_key;
use tend_test_support::tend_api::{Commands, Engine, NewRecord, ScheduleRunReport};
use tend_test_support::tend_domain::{Actor, Command, Fields, JournalEvent, Record, Role};
use tend_test_support::tend_store::schedules::{NewScheduleRun, RunOutcome, insert_schedule_run};
use tend_test_support::tend_workflow::jobs::ScheduledJob;
use tend_test_support::{Backend, TestServer, backend_tests, load_definitions};

backend_tests!(
    reminders_then_resolution,
    taken_over_run_skips_done_records,
    two_nodes_change_each_record_once,
);

const NAME: &str = "chase_requesters";

/// A due time more than this old at a pass counts as missed.
const GRACE: TimeDelta = TimeDelta::minutes(10);

/// Monday 1 March 2027, 07:30 in Berlin: the incidents start waiting for their requester.
/// The schedule runs at 08:00 Berlin (07:00 UTC) on working days.
fn waiting_since() -> DateTime<Utc> {
    at("2027-03-01T06:30:00Z")
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|error| panic!("bad instant {text}: {error}"))
        .to_utc()
}

/// The shipped schedule, made the only schedule of the node's definitions.
fn keep_only_chase(commands: &Commands) -> ScheduledJob {
    let mut set = (*commands.engine.definitions()).clone();
    let job = set
        .schedules
        .get(NAME)
        .cloned()
        .expect("workflows/schedules/incident.yaml defines chase_requesters");
    set.schedules.clear();
    set.schedules.insert(NAME.into(), job.clone());
    commands.engine.replace_definitions(set);
    job
}

fn commands(server: &TestServer) -> &Commands {
    server
        .commands()
        .expect("the in-process server exposes its command path")
}

fn technician() -> Actor {
    Actor::new("tara", vec![Role::Technician])
}

/// Opens `count` incidents at [`waiting_since`] and puts all but the last into
/// `awaiting_user_info`; returns the numbers of the waiting ones and of the last one.
async fn incidents(commands: &Commands, count: usize) -> anyhow::Result<(Vec<String>, String)> {
    let actor = technician();
    let mut waiting = Vec::new();
    let mut working = String::new();
    for index in 0..count {
        let mut fields = Fields::new();
        fields.insert("category".into(), json!("access"));
        let input = NewRecord {
            title: format!("Cannot open the shared drive ({index})"),
            description: "The S: drive asks for a password.".into(),
            fields,
            ..NewRecord::default()
        };
        let (record, _) = commands
            .create_at(&actor, "incident", input, waiting_since())
            .await?;
        if index + 1 == count {
            commands
                .apply_at(
                    &actor,
                    &record.number,
                    Command::Transition {
                        name: "start".into(),
                        fields: Fields::new(),
                        comment: None,
                    },
                    Some(waiting_since()),
                )
                .await?;
            working = record.number;
        } else {
            commands
                .apply_at(
                    &actor,
                    &record.number,
                    Command::Transition {
                        name: "await_user_info".into(),
                        fields: Fields::new(),
                        comment: Some("Which computer do you use?".into()),
                    },
                    Some(waiting_since()),
                )
                .await?;
            waiting.push(record.number);
        }
    }
    Ok((waiting, working))
}

async fn pass(commands: &Commands, now: DateTime<Utc>) -> anyhow::Result<Vec<ScheduleRunReport>> {
    commands
        .run_due_schedules(now, GRACE)
        .await
        .map_err(|error| anyhow::anyhow!("the pass at {now} failed: {error}"))
}

async fn record(commands: &Commands, number: &str) -> anyhow::Result<Record> {
    commands
        .store
        .get_record(number)
        .await?
        .ok_or_else(|| anyhow::anyhow!("record {number} does not exist"))
}

fn reminders(record: &Record) -> i64 {
    record
        .fields
        .get("requester_reminders")
        .and_then(|value| value.as_i64())
        .unwrap_or(0)
}

/// Counts the reminder notes the scheduler wrote on a record.
async fn reminder_notes(commands: &Commands, record: &Record) -> anyhow::Result<usize> {
    let journal = commands.store.journal(record.id).await?;
    Ok(journal
        .iter()
        .filter(|entry| entry.actor == "scheduler")
        .filter(|entry| match &entry.event {
            JournalEvent::Note { text, .. } => text.starts_with("Reminder "),
            _ => false,
        })
        .count())
}

fn ran(reports: &[ScheduleRunReport]) -> Vec<&ScheduleRunReport> {
    reports
        .iter()
        .filter(|report| report.outcome == RunOutcome::Ran)
        .collect()
}

/// Working-day runs at 08:00 Berlin: the run on day 4 gives the first reminder, day 7 the
/// second, day 10 resolves. Runs in between change nothing, and a run after a downtime
/// catches up once and journals that it ran late.
async fn reminders_then_resolution(backend: Backend) -> anyhow::Result<()> {
    let server = TestServer::in_process(backend).await?;
    let commands = commands(&server);
    keep_only_chase(commands);
    let (waiting, working) = incidents(commands, 3).await?;

    // The schedule starts on Monday; Tuesday 08:00 Berlin runs on time and is too early.
    pass(commands, at("2027-03-01T07:45:00Z")).await?;
    let reports = pass(commands, at("2027-03-02T07:00:30Z")).await?;
    let runs = ran(&reports);
    assert_eq!(runs.len(), 1, "{reports:?}");
    let summary = runs[0].summary.expect("a rule run has a summary");
    assert_eq!((summary.examined, summary.changed), (2, 0), "{summary}");

    // Thursday 08:00 Berlin (07:00 UTC): 3 days of waiting.
    let reports = pass(commands, at("2027-03-04T07:00:30Z")).await?;
    let summary = ran(&reports)[0].summary.expect("summary");
    assert_eq!((summary.examined, summary.changed), (2, 2), "{summary}");
    for number in &waiting {
        let incident = record(commands, number).await?;
        assert_eq!(reminders(&incident), 1, "{incident:?}");
        assert_eq!(reminder_notes(commands, &incident).await?, 1);
        assert_eq!(incident.state, "awaiting_user_info");
    }
    let untouched = record(commands, &working).await?;
    assert_eq!(reminders(&untouched), 0);
    assert_eq!(untouched.state, "in_progress");

    // Friday changes nothing. Then no server runs until Tuesday 9 March 09:00 UTC, so one
    // late run for Tuesday 08:00 Berlin gives the second reminder, with a late entry.
    let reports = pass(commands, at("2027-03-05T07:00:30Z")).await?;
    assert_eq!(ran(&reports)[0].summary.map(|s| s.changed), Some(0));
    let reports = pass(commands, at("2027-03-09T09:00:00Z")).await?;
    let runs = ran(&reports);
    assert_eq!(runs.len(), 1, "{reports:?}");
    assert!(runs[0].late);
    assert_eq!(runs[0].due_at, at("2027-03-09T07:00:00Z"));
    assert_eq!(runs[0].missed, 2, "Monday and Tuesday were missed");
    for number in &waiting {
        let incident = record(commands, number).await?;
        assert_eq!(reminders(&incident), 2, "{incident:?}");
        assert_eq!(reminder_notes(commands, &incident).await?, 2);
        let journal = commands.store.journal(incident.id).await?;
        assert!(
            journal.iter().any(|entry| matches!(
                &entry.event,
                JournalEvent::FiredLate { timer, due_at }
                    if timer == "schedule chase_requesters" && *due_at == at("2027-03-09T07:00:00Z")
            )),
            "the late run is journaled: {journal:?}"
        );
    }

    // Wednesday 10 March: 9 days of waiting resolve the incidents.
    let reports = pass(commands, at("2027-03-10T07:00:30Z")).await?;
    assert_eq!(ran(&reports)[0].summary.map(|s| s.changed), Some(2));
    for number in &waiting {
        let incident = record(commands, number).await?;
        assert_eq!(incident.state, "resolved", "{incident:?}");
        assert_eq!(incident.field_str("resolution_code"), Some("no_response"));
    }
    // Resolved incidents are no longer the schedule's records.
    let reports = pass(commands, at("2027-03-11T07:00:30Z")).await?;
    assert_eq!(ran(&reports)[0].summary.map(|s| s.examined), Some(0));

    let stored = commands.store.schedule_runs(NAME).await?;
    let last = stored.last().expect("rows");
    assert_eq!(last.outcome, RunOutcome::Ran);
    assert_eq!(last.summary.as_deref(), Some("ran on 0 records, changed 0"));
    Ok(())
}

/// Checks a takeover: a node claimed Thursday's run, changed the first incident and
/// stopped. After the lease another node changes the others and leaves the first alone.
async fn taken_over_run_skips_done_records(backend: Backend) -> anyhow::Result<()> {
    let server = TestServer::in_process(backend).await?;
    let commands = commands(&server);
    let job = keep_only_chase(commands);
    let (waiting, _) = incidents(commands, 4).await?;
    pass(commands, at("2027-03-01T07:45:00Z")).await?;

    let due = at("2027-03-04T07:00:00Z");
    let claim = NewScheduleRun {
        schedule: NAME.into(),
        due_at: due,
        outcome: RunOutcome::Claimed,
        ran_at: at("2027-03-04T07:00:01Z"),
        late: false,
        missed: 0,
        cron: job.cron.clone(),
        timezone: job.timezone.clone(),
    };
    // The stopped node's write on the first incident: its key, as the write saves it.
    let key = rule_run_key(NAME, due, &waiting[0]);
    let first = waiting[0].clone();
    commands
        .store
        .write(move |tx| {
            Box::pin(async move {
                insert_schedule_run(tx, &claim).await?;
                tend_test_support::tend_store::save_idempotent(tx, &key, &first).await
            })
        })
        .await?;

    // During the lease no node runs it.
    let reports = pass(commands, at("2027-03-04T07:03:00Z")).await?;
    assert!(ran(&reports).is_empty(), "{reports:?}");

    let reports = pass(commands, at("2027-03-04T07:06:00Z")).await?;
    let runs = ran(&reports);
    assert_eq!(runs.len(), 1, "{reports:?}");
    let summary = runs[0].summary.expect("summary");
    assert_eq!(
        (summary.examined, summary.changed, summary.already_done),
        (3, 2, 1),
        "{summary}"
    );
    assert_eq!(reminders(&record(commands, &waiting[0]).await?), 0);
    for number in &waiting[1..] {
        assert_eq!(reminders(&record(commands, number).await?), 1);
    }
    Ok(())
}

/// Two nodes on one database pass at the same instants: each due time runs on one node,
/// and each incident gets each reminder once.
async fn two_nodes_change_each_record_once(backend: Backend) -> anyhow::Result<()> {
    let server = TestServer::in_process(backend).await?;
    let first = commands(&server).clone();
    keep_only_chase(&first);
    let (set, host) = load_definitions()?;
    let second = Commands::new(
        server.database().connect().await?,
        Arc::new(Engine::new(set, host)),
    );
    keep_only_chase(&second);
    let (waiting, _) = incidents(&first, 41).await?;

    let mut reports = Vec::new();
    let mut now = at("2027-03-01T07:05:00Z");
    while now <= at("2027-03-08T07:05:00Z") {
        let (a, b) = tokio::join!(pass(&first, now), pass(&second, now));
        reports.extend(a?);
        reports.extend(b?);
        now += TimeDelta::hours(12);
    }
    let runs = ran(&reports);
    // Tuesday to Friday and Monday, one node each.
    assert_eq!(runs.len(), 5, "{reports:?}");
    let changed: u64 = runs
        .iter()
        .map(|report| report.summary.map_or(0, |s| s.changed))
        .sum();
    assert_eq!(
        changed, 80,
        "two reminders for each of 40 incidents: {runs:?}"
    );
    for number in &waiting {
        let incident = record(&first, number).await?;
        assert_eq!(reminders(&incident), 2, "{incident:?}");
        assert_eq!(reminder_notes(&first, &incident).await?, 2, "{number}");
    }
    Ok(())
}
