//! Durable timers under crashes and on several nodes, with the real `tend serve`:
//!
//! - `killed_node_fires_every_timer_once`: a node killed with SIGKILL while 1,000 timers
//!   are due, part of them fired, leaves each timer either fired or due. After a restart
//!   every timer has fired exactly once and journaled that it fired late.
//! - `two_nodes_fire_every_timer_once` (PostgreSQL only, the backend that several nodes
//!   share): two nodes that fire the same 1,000 due timers at once take each automatic
//!   transition once.
//!
//! The records follow a small process of their own, `chore`, which closes by itself an
//! hour after it is opened, so that each record has one timer and nothing else (no rules,
//! no SLA clocks) writes to it.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{SecondsFormat, Utc};
use serde_json::json;
use tend_test_support::reqwest::StatusCode;
use tend_test_support::tend_domain::JournalEvent;
use tend_test_support::tend_store::{RecordFilter, Store};
use tend_test_support::{Backend, Role, TestDatabase, TestServer, backend_tests};

backend_tests!(killed_node_fires_every_timer_once);

mod two_nodes_fire_every_timer_once {
    #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() -> anyhow::Result<()> {
        if !tend_test_support::Backend::Postgres.enabled() {
            eprintln!("skipped on PostgreSQL: TEND_TEST_SKIP_POSTGRES=1");
            return Ok(());
        }
        super::two_nodes_fire_every_timer_once().await
    }
}

/// How many records, and so timers, each test sets up.
const RECORDS: usize = 1000;

/// Concurrent requests that create the records.
const CREATORS: usize = 8;

/// How many timers must have fired in all before each SIGKILL. Every kill lands in the
/// middle of the work, at a point that the test does not choose: several kills make it
/// likelier that one of them cuts a write short.
const FIRED_BEFORE_KILLS: [u64; 3] = [100, 400, 700];

/// How long the nodes may take to fire every timer before the test fails. A debug build
/// on two cores fired about 250 timers a second when measured, so this is generous.
const FIRE_DEADLINE: Duration = Duration::from_secs(300);

/// Pause between two reads of the timers table.
const POLL: Duration = Duration::from_millis(10);

/// A process whose records close by themselves an hour after they are opened.
const CHORE: &str = "\
process: chore
title: Chore
number_prefix: CHR
number_digits: 5
description: A task that the system closes an hour after it is opened.

permissions:
  create: [requester, technician]
  update: [technician]
  comment: [requester, technician]

states:
  open:
    label: Open
    initial: true
  closed:
    label: Closed
    final: true

transitions:
  - name: close
    label: Close
    from: [open]
    to: closed
    roles: [technician]
    after: 1h
";

/// Writes a definitions directory with the `chore` process only.
fn chore_definitions() -> anyhow::Result<tempfile::TempDir> {
    let dir = tempfile::Builder::new()
        .prefix("tend-chore-")
        .tempdir()
        .context("failed to create a definitions directory")?;
    std::fs::create_dir(dir.path().join("workflows"))?;
    std::fs::create_dir(dir.path().join("rules"))?;
    std::fs::write(dir.path().join("workflows/chore.yaml"), CHORE)?;
    Ok(dir)
}

/// Starts a node on `database` that fires due timers every `timer_seconds` seconds, or
/// never for 0.
async fn node(
    database: Arc<TestDatabase>,
    definitions: &Path,
    timer_seconds: &str,
) -> anyhow::Result<TestServer> {
    TestServer::binary_on_shared(
        database,
        definitions,
        &["--timer-seconds", timer_seconds, "--no-watch"],
    )
    .await
}

/// Creates [`RECORDS`] chores through the API of a node that fires no timers, then kills
/// it. Returns the database, where every chore has one timer, due in an hour.
async fn chores_with_timers(
    backend: Backend,
    definitions: &Path,
) -> anyhow::Result<Arc<TestDatabase>> {
    let database = Arc::new(TestDatabase::create(backend).await?);
    let server = node(database, definitions, "0").await?;
    let rita = server.add_user("rita", &[Role::Requester]).await?;
    let mut creators = tokio::task::JoinSet::new();
    for creator in 0..CREATORS {
        let client = rita.client.clone();
        creators.spawn(async move {
            for i in (creator..RECORDS).step_by(CREATORS) {
                let body = json!({
                    "title": format!("Water the plants, round {i}"),
                    "description": "",
                    "fields": {},
                });
                client
                    .post("/api/v1/records/chore", &body)
                    .await?
                    .expect_status(StatusCode::CREATED)?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(created) = creators.join_next().await {
        created??;
    }
    let store = server.database().connect().await?;
    let in_two_hours = Utc::now() + chrono::Duration::hours(2);
    anyhow::ensure!(
        store.count_due_timers(in_two_hours).await? == RECORDS as u64,
        "creating {RECORDS} chores did not plan {RECORDS} timers"
    );
    anyhow::ensure!(
        store.count_due_timers(Utc::now()).await? == 0,
        "a timer is due right after its chore was created"
    );
    server.kill().await
}

/// Moves the due time of every timer two hours into the past with one SQL statement, which
/// simulates downtime: no node ran when the timers fell due, so each fires more than a
/// minute late. The time is written in the text format that the store uses on both backends.
async fn make_every_timer_overdue(database: &TestDatabase) -> anyhow::Result<()> {
    let past =
        (Utc::now() - chrono::Duration::hours(2)).to_rfc3339_opts(SecondsFormat::Micros, false);
    let moved = database
        .execute(&format!("UPDATE timers SET due_at = '{past}'"))
        .await?;
    anyhow::ensure!(
        moved == RECORDS as u64,
        "moved {moved} timers instead of {RECORDS}"
    );
    Ok(())
}

/// Counts the timers left, which are all due.
async fn timers_left(store: &Store) -> anyhow::Result<u64> {
    Ok(store.count_due_timers(Utc::now()).await?)
}

/// Waits until at most `left` timers are left, or fails after [`FIRE_DEADLINE`] with the
/// logs of `nodes`.
async fn wait_until_left(store: &Store, left: u64, nodes: &[&TestServer]) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let now_left = timers_left(store).await?;
        if now_left <= left {
            return Ok(());
        }
        if started.elapsed() > FIRE_DEADLINE {
            let logs: Vec<String> = nodes.iter().map(|node| node.log()).collect();
            anyhow::bail!(
                "{now_left} timers are still due after {FIRE_DEADLINE:?}, waiting for at most \
                 {left}; the node logs:\n{}",
                logs.join("\n---\n")
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Checks that every chore was closed exactly once by the timer, in the write that also
/// journaled that the timer fired late, and that the journal hash chains are intact.
async fn assert_each_closed_once(store: &Store) -> anyhow::Result<()> {
    let mut filter = RecordFilter {
        process: Some("chore".into()),
        limit: tend_test_support::tend_store::MAX_LIMIT,
        ..Default::default()
    };
    let mut records = Vec::new();
    loop {
        let page = store.list_records(&filter).await?;
        records.extend(page.records);
        match page.next_cursor {
            Some(cursor) => filter.cursor = Some(cursor),
            None => break,
        }
    }
    assert_eq!(records.len(), RECORDS, "chores stored");

    let mut wrong = Vec::new();
    for record in &records {
        let journal = store.journal(record.id).await?;
        let closes = journal
            .iter()
            .filter(|entry| {
                matches!(&entry.event, JournalEvent::Transitioned { transition, .. }
                    if transition == "close")
            })
            .count();
        let late = journal
            .iter()
            .filter(|entry| matches!(entry.event, JournalEvent::FiredLate { .. }))
            .count();
        // The effect of one firing: the close and the late notice, both by `timer`.
        let mut by_timer: Vec<&str> = journal
            .iter()
            .filter(|entry| entry.actor == "timer")
            .map(|entry| entry.event.kind())
            .collect();
        by_timer.sort_unstable();
        if record.state != "closed"
            || closes != 1
            || late != 1
            || by_timer != ["fired_late", "transitioned"]
        {
            wrong.push(format!(
                "{} is {} with {closes} closes, {late} late notices and these entries by \
                 timer: {by_timer:?}",
                record.number, record.state
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {RECORDS} chores did not fire exactly once, such as:\n{}",
        wrong.len(),
        wrong[..wrong.len().min(10)].join("\n")
    );

    let audit = store.verify_audit().await?;
    assert!(
        audit.is_clean(),
        "the journal is damaged: {:?}",
        audit.problems
    );
    Ok(())
}

async fn killed_node_fires_every_timer_once(backend: Backend) -> anyhow::Result<()> {
    let definitions = chore_definitions()?;
    let database = chores_with_timers(backend, definitions.path()).await?;
    make_every_timer_overdue(&database).await?;
    let store = database.connect().await?;

    // A node fires the overdue timers at once. Kill it while it works, restart it on the
    // same database, and kill it again.
    let mut database = database;
    let mut fired_at_kills = Vec::new();
    for fired in FIRED_BEFORE_KILLS {
        let killed = node(database, definitions.path(), "1").await?;
        wait_until_left(&store, RECORDS as u64 - fired, &[&killed]).await?;
        let log = killed.log();
        database = killed.kill().await?;
        let left = timers_left(&store).await?;
        assert!(
            left > 0,
            "the node fired all {RECORDS} timers before it was killed, so the kill tested \
             nothing; its log:\n{log}"
        );
        fired_at_kills.push(RECORDS as u64 - left);
    }

    // After the last restart the node fires what is left, and what fired before stays fired.
    let last = node(database, definitions.path(), "1").await?;
    wait_until_left(&store, 0, &[&last]).await?;
    eprintln!(
        "{backend}: of {RECORDS} timers, {fired_at_kills:?} had fired at the SIGKILLs, the \
         rest after the last restart"
    );
    assert_each_closed_once(&store).await
}

async fn two_nodes_fire_every_timer_once() -> anyhow::Result<()> {
    let definitions = chore_definitions()?;
    let database = chores_with_timers(Backend::Postgres, definitions.path()).await?;
    let store = database.connect().await?;

    // Both nodes run before the timers fall due, so that both find them at their next
    // run, within a second of each other, and fire them at the same time.
    let (first, second) = tokio::try_join!(
        node(Arc::clone(&database), definitions.path(), "1"),
        node(Arc::clone(&database), definitions.path(), "1"),
    )?;
    make_every_timer_overdue(&database).await?;
    wait_until_left(&store, 0, &[&first, &second]).await?;
    assert_each_closed_once(&store).await?;

    // A node logs what it took when its run ends, which can be after the last timer is
    // gone, so these counts are shown but not checked.
    eprintln!(
        "postgres: the first node logged {} automatic transitions taken, the second {}",
        transitions_taken(&first.log()),
        transitions_taken(&second.log())
    );
    Ok(())
}

/// Adds up the `taken=N` of the "automatic transitions taken" lines of a node's log, to
/// show how the nodes shared the work.
fn transitions_taken(log: &str) -> u64 {
    log.lines()
        .filter(|line| line.contains("automatic transitions taken"))
        .filter_map(|line| line.rsplit("taken=").next()?.trim().parse::<u64>().ok())
        .sum()
}
