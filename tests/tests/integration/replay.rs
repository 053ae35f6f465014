//! `tend replay-log` on the hand-written ServiceNow event log: the final states, the
//! transitions taken, the log's own times, and the priority agreement it prints.

use std::ffi::OsString;

use chrono::NaiveDateTime;
use tend_test_support::tend_domain::{JournalEvent, Record};
use tend_test_support::tend_store::{RecordFilter, Store};
use tend_test_support::{Backend, TestDatabase, backend_tests, repo_root, run_tend};
use tend_tests::fixture;

backend_tests!(replay_follows_the_log, replay_rejects_unknown_states);

fn replay_args(database: &TestDatabase, log: OsString) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![
        "replay-log".into(),
        log,
        "--definitions".into(),
        repo_root().into(),
    ];
    args.extend(database.store_args());
    args
}

/// Finds the record replayed from source incident `source`, whose title starts with that number.
async fn replayed(store: &Store, source: &str) -> anyhow::Result<Record> {
    let page = store
        .list_records(&RecordFilter {
            q: Some(source.to_owned()),
            // A P1 incident also opens a major incident that repeats its title.
            process: Some("incident".to_owned()),
            ..RecordFilter::default()
        })
        .await?;
    anyhow::ensure!(
        page.records.len() == 1,
        "{} records mention {source}",
        page.records.len()
    );
    Ok(page.records[0].clone())
}

/// Source number, opening time, transitions Tend should take, and the log's last priority.
const EXPECTED: [(&str, &str, &[&str], &str); 4] = [
    (
        "INC0000045",
        "29-02-2016 01:16",
        &["start", "resolve", "close"],
        "P3",
    ),
    (
        "INC0000047",
        "01-03-2016 09:10",
        &["start", "resolve", "close"],
        "P3",
    ),
    (
        "INC0000062",
        "02-03-2016 10:02",
        &[
            "start",
            "await_user_info",
            "start",
            "resolve",
            "reopen",
            "resolve",
            "close",
        ],
        "P4",
    ),
    (
        "INC0000071",
        "03-03-2016 17:48",
        &["resolve", "close"],
        "P1",
    ),
];

async fn replay_follows_the_log(backend: Backend) -> anyhow::Result<()> {
    let database = TestDatabase::create(backend).await?;
    let output = run_tend(
        replay_args(&database, fixture("incident-event-log.csv").into()),
        None,
    )
    .await?;
    assert!(output.success(), "{output}");
    assert!(
        output
            .stdout
            .contains("incidents replayed: 4, histories rejected: 0\n"),
        "{output}"
    );

    let store = database.connect().await?;
    let mut agreeing = 0;
    let mut differing = Vec::new();
    for (source, opened_at, transitions, logged_priority) in EXPECTED {
        let record = replayed(&store, source).await?;
        assert_eq!(record.state, "closed", "{source} ends closed");
        let opened = NaiveDateTime::parse_from_str(opened_at, "%d-%m-%Y %H:%M")?.and_utc();
        assert_eq!(
            record.created_at, opened,
            "{source} is created at the log's opening time"
        );

        let journal = store.journal(record.id).await?;
        let taken: Vec<&str> = journal
            .iter()
            .filter_map(|entry| match &entry.event {
                JournalEvent::Transitioned { transition, .. } => Some(transition.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(taken, transitions, "transitions of {source}");
        let failed: Vec<&JournalEvent> = journal
            .iter()
            .map(|entry| &entry.event)
            .filter(|event| matches!(event, JournalEvent::RuleFailed { .. }))
            .collect();
        assert!(
            failed.is_empty(),
            "rules failed while replaying {source}: {failed:?}"
        );
        assert!(
            journal.windows(2).all(|pair| pair[0].at <= pair[1].at),
            "the journal of {source} goes back in time"
        );
        if record.field_str("resolution_code").is_none() {
            panic!(
                "{source} was resolved without a resolution code: {:?}",
                record.fields
            );
        }

        if record.field_str("priority") == Some(logged_priority) {
            agreeing += 1;
        } else {
            differing.push(record.number.clone());
        }
    }
    let reopened = replayed(&store, "INC0000062").await?;
    assert_eq!(
        reopened.fields.get("reopen_count"),
        Some(&serde_json::json!(1))
    );
    assert_eq!(
        replayed(&store, "INC0000062").await?.field_str("requester"),
        Some("Caller 4416")
    );

    let agreement = format!("priority agreement: {agreeing} of 4 incidents (");
    assert!(
        output.stdout.contains(&agreement),
        "expected `{agreement}`:\n{output}"
    );
    for number in &differing {
        assert!(
            output
                .stdout
                .contains(&format!("  priority differs on {number}\n")),
            "{number} is not listed as differing:\n{output}"
        );
    }
    // The fixture's INC0000047 carries a priority set by hand against its impact and urgency.
    assert!(!differing.is_empty(), "no priority differs:\n{output}");
    Ok(())
}

async fn replay_rejects_unknown_states(backend: Backend) -> anyhow::Result<()> {
    let database = TestDatabase::create(backend).await?;
    let text = std::fs::read_to_string(fixture("incident-event-log.csv"))?;
    let broken = text.replace(",Awaiting User Info,", ",Suspended,");
    assert_ne!(broken, text, "the fixture has an Awaiting User Info row");
    let log = database.data_dir().join("broken-event-log.csv");
    std::fs::write(&log, broken)?;

    let output = run_tend(replay_args(&database, log.into()), None).await?;
    assert_eq!(output.code(), Some(1), "{output}");
    assert!(
        output
            .stdout
            .contains("incidents replayed: 3, histories rejected: 1\n"),
        "{output}"
    );
    let rejection = output
        .stdout
        .lines()
        .find(|line| line.starts_with("  rejected INC0000062: "))
        .unwrap_or_else(|| panic!("INC0000062 is not rejected:\n{output}"));
    assert!(
        rejection.contains("unknown incident state `Suspended`"),
        "{rejection}"
    );
    Ok(())
}
