mod common;

use chrono::{DateTime, TimeDelta, Utc};
use tend_store::Store;
use tend_store::schedules::{
    NewScheduleRun, RunOutcome, claim_stale_schedule_runs, finish_schedule_run, insert_schedule_run,
};
use tend_store::testing::TestDb;

on_both_backends!(
    one_row_per_due_time,
    latest_due_time_is_last_run,
    finishing_needs_a_claim,
    stale_claims_are_taken_over_once,
    concurrent_claims_win_once,
);

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

fn claim(schedule: &str, due_at: &str, ran_at: &str) -> NewScheduleRun {
    NewScheduleRun {
        schedule: schedule.to_owned(),
        due_at: at(due_at),
        outcome: RunOutcome::Claimed,
        ran_at: at(ran_at),
        late: false,
        missed: 0,
        cron: "0 * * * *".to_owned(),
        timezone: "Europe/Berlin".to_owned(),
    }
}

async fn insert(store: &Store, run: NewScheduleRun) -> bool {
    store
        .write(move |tx| Box::pin(async move { insert_schedule_run(tx, &run).await }))
        .await
        .expect("inserting a schedule run failed")
}

async fn finish(store: &Store, schedule: &str, due_at: &str, result: Result<&str, &str>) -> bool {
    let schedule = schedule.to_owned();
    let due_at = at(due_at);
    let result = result.map(str::to_owned).map_err(str::to_owned);
    store
        .write(move |tx| {
            Box::pin(async move {
                let result = result.as_deref().map_err(String::as_str);
                finish_schedule_run(tx, &schedule, due_at, result).await
            })
        })
        .await
        .expect("finishing a schedule run failed")
}

async fn one_row_per_due_time(db: &TestDb) {
    let store = &db.store;
    let first = claim("backup", "2027-01-04T09:00:00Z", "2027-01-04T09:00:05Z");
    assert!(insert(store, first.clone()).await);
    // Another node, or a pass that read an old latest row, finds the row and owns nothing.
    let again = NewScheduleRun {
        ran_at: at("2027-01-04T09:00:07Z"),
        late: true,
        ..first.clone()
    };
    assert!(!insert(store, again).await);
    // Other schedules and other due times are separate runs.
    assert!(
        insert(
            store,
            claim("audit", "2027-01-04T09:00:00Z", "2027-01-04T09:00:05Z")
        )
        .await
    );
    assert!(
        insert(
            store,
            claim("backup", "2027-01-04T10:00:00Z", "2027-01-04T10:00:05Z")
        )
        .await
    );

    let runs = store.schedule_runs("backup").await.unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].due_at, at("2027-01-04T09:00:00Z"));
    assert_eq!(runs[0].ran_at, at("2027-01-04T09:00:05Z"));
    assert!(!runs[0].late, "the second insert changed the first row");
    assert_eq!(runs[0].outcome, RunOutcome::Claimed);
    assert_eq!(runs[0].record_number, None);
    assert_eq!(runs[0].cron, "0 * * * *");
    assert_eq!(runs[0].timezone, "Europe/Berlin");
    assert_eq!(runs[1].due_at, at("2027-01-04T10:00:00Z"));
}

async fn latest_due_time_is_last_run(db: &TestDb) {
    let store = &db.store;
    assert_eq!(store.last_schedule_run("backup").await.unwrap(), None);
    // Written out of order, as two nodes with different clocks may.
    for (due, outcome) in [
        ("2027-01-04T10:00:00Z", RunOutcome::Claimed),
        ("2027-01-04T08:12:00Z", RunOutcome::Started),
        ("2027-01-04T09:00:00Z", RunOutcome::Skipped),
    ] {
        let run = NewScheduleRun {
            outcome,
            missed: if outcome == RunOutcome::Skipped { 3 } else { 0 },
            ..claim("backup", due, "2027-01-04T10:00:01Z")
        };
        assert!(insert(store, run).await);
    }
    let last = store.last_schedule_run("backup").await.unwrap().unwrap();
    assert_eq!(last.due_at, at("2027-01-04T10:00:00Z"));
    let outcomes: Vec<(RunOutcome, i64)> = store
        .schedule_runs("backup")
        .await
        .unwrap()
        .into_iter()
        .map(|run| (run.outcome, run.missed))
        .collect();
    assert_eq!(
        outcomes,
        [
            (RunOutcome::Started, 0),
            (RunOutcome::Skipped, 3),
            (RunOutcome::Claimed, 0)
        ]
    );
}

async fn finishing_needs_a_claim(db: &TestDb) {
    let store = &db.store;
    assert!(
        insert(
            store,
            claim("backup", "2027-01-04T09:00:00Z", "2027-01-04T09:00:05Z")
        )
        .await
    );
    assert!(
        insert(
            store,
            claim("backup", "2027-01-04T10:00:00Z", "2027-01-04T10:00:05Z")
        )
        .await
    );

    assert!(finish(store, "backup", "2027-01-04T09:00:00Z", Ok("CMA000001")).await);
    // A node that took the run over too late finds it finished and changes nothing.
    assert!(!finish(store, "backup", "2027-01-04T09:00:00Z", Ok("CMA000002")).await);
    assert!(
        finish(
            store,
            "backup",
            "2027-01-04T10:00:00Z",
            Err("`scope` is required")
        )
        .await
    );
    // No row, nothing to finish.
    assert!(!finish(store, "backup", "2027-01-04T11:00:00Z", Ok("CMA000003")).await);

    let runs = store.schedule_runs("backup").await.unwrap();
    assert_eq!(runs[0].outcome, RunOutcome::Opened);
    assert_eq!(runs[0].record_number.as_deref(), Some("CMA000001"));
    assert_eq!(runs[0].error, None);
    assert_eq!(runs[1].outcome, RunOutcome::Failed);
    assert_eq!(runs[1].record_number, None);
    assert_eq!(runs[1].error.as_deref(), Some("`scope` is required"));
}

async fn stale_claims_are_taken_over_once(db: &TestDb) {
    let store = &db.store;
    assert!(
        insert(
            store,
            claim("backup", "2027-01-04T09:00:00Z", "2027-01-04T09:00:05Z")
        )
        .await
    );
    assert!(
        insert(
            store,
            claim("backup", "2027-01-04T10:00:00Z", "2027-01-04T10:00:05Z")
        )
        .await
    );
    assert!(
        insert(
            store,
            claim("backup", "2027-01-04T08:00:00Z", "2027-01-04T08:00:05Z")
        )
        .await
    );
    assert!(finish(store, "backup", "2027-01-04T08:00:00Z", Ok("CMA000001")).await);

    let take = |stale_before: &str, now: &str| {
        let (stale_before, now) = (at(stale_before), at(now));
        let store = store.clone();
        async move {
            store
                .write(move |tx| {
                    Box::pin(
                        async move { claim_stale_schedule_runs(tx, stale_before, now, 10).await },
                    )
                })
                .await
                .expect("taking over stale runs failed")
        }
    };
    // Only the unfinished claim made before the limit is stale.
    let taken = take("2027-01-04T09:05:00Z", "2027-01-04T10:05:00Z").await;
    assert_eq!(taken.len(), 1, "{taken:?}");
    assert_eq!(taken[0].due_at, at("2027-01-04T09:00:00Z"));
    assert_eq!(taken[0].ran_at, at("2027-01-04T10:05:00Z"));
    // The takeover stamped the claim, so the same limit finds nothing again.
    assert!(
        take("2027-01-04T09:05:00Z", "2027-01-04T10:06:00Z")
            .await
            .is_empty()
    );
    // A later limit finds both unfinished claims, earliest due time first.
    let taken = take("2027-01-04T11:00:00Z", "2027-01-04T11:00:00Z").await;
    let due: Vec<DateTime<Utc>> = taken.iter().map(|run| run.due_at).collect();
    assert_eq!(
        due,
        [at("2027-01-04T09:00:00Z"), at("2027-01-04T10:00:00Z")]
    );
}

/// Two stores on one database, as two server nodes have, claim the same due times at the
/// same moment: each due time goes to exactly one of them.
async fn concurrent_claims_win_once(db: &TestDb) {
    let first = db.store.clone();
    let second = common::open(db).await;
    let start = at("2027-01-04T00:00:00Z");
    let mut tasks = Vec::new();
    for store in [first, second] {
        tasks.push(tokio::spawn(async move {
            let mut won = Vec::new();
            for minute in 0..40 {
                let due = start + TimeDelta::minutes(minute);
                let run = NewScheduleRun {
                    due_at: due,
                    ..claim(
                        "every_minute",
                        "2027-01-04T00:00:00Z",
                        "2027-01-04T00:00:00Z",
                    )
                };
                if insert(&store, run).await {
                    won.push(due);
                }
            }
            won
        }));
    }
    let mut claimed = Vec::new();
    for task in tasks {
        claimed.extend(task.await.expect("a claiming node panicked"));
    }
    claimed.sort();
    let expected: Vec<DateTime<Utc>> = (0..40).map(|m| start + TimeDelta::minutes(m)).collect();
    assert_eq!(
        claimed, expected,
        "a due time was claimed twice or not at all"
    );
    assert_eq!(
        db.store.schedule_runs("every_minute").await.unwrap().len(),
        40
    );
}
