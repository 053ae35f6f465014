mod common;

use std::time::Duration;

use common::{new_record, prefix_of};
use serde_json::json;
use tend_store::testing::TestDb;
use tend_store::{Error, Store};
use tokio::sync::oneshot;

on_both_backends!(failing_jobs_roll_back_alone, rejected_error_reaches_caller);

/// Queues a create job that returns `outcome` after inserting its record.
fn queue_create(
    store: &Store,
    title: &'static str,
    outcome: &'static str,
) -> tokio::task::JoinHandle<Result<String, Error>> {
    let store = store.clone();
    tokio::spawn(async move {
        store
            .write(move |tx| {
                Box::pin(async move {
                    let record = new_record("incident", title, json!({}));
                    let stored = tend_store::insert_record(
                        tx,
                        &record,
                        prefix_of("incident"),
                        7,
                        "ada",
                        &[],
                    )
                    .await?;
                    match outcome {
                        "reject" => Err(Error::rejected(format!("{title} rejected by its caller"))),
                        // A database error: the blocking job saved this key before.
                        "duplicate" => {
                            tend_store::save_idempotent(tx, "ada:same", &stored.number).await?;
                            Ok(stored.number)
                        }
                        "panic" => panic!("{title} panicked"),
                        _ => Ok(stored.number),
                    }
                })
            })
            .await
    })
}

async fn failing_jobs_roll_back_alone(db: &TestDb) {
    // A first job blocks the writer until the others are queued, so that they share a batch.
    let (release, hold) = oneshot::channel::<()>();
    let store = db.store.clone();
    let blocker = tokio::spawn(async move {
        store
            .write(move |tx| {
                Box::pin(async move {
                    // The key that the "duplicate" job will collide with.
                    tend_store::save_idempotent(tx, "ada:same", "INC0000000").await?;
                    let _ = hold.await;
                    Ok(())
                })
            })
            .await
    });
    while db.store.writer_stats().jobs == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let before = db.store.writer_stats();

    // Tasks may queue in any order, so each failing job fails whatever runs before it.
    let titles = [
        "First",
        "Rejected",
        "Second",
        "Duplicate key",
        "Panicking",
        "Third",
    ];
    let outcomes = ["ok", "reject", "ok", "duplicate", "panic", "ok"];
    let jobs: Vec<_> = titles
        .iter()
        .zip(outcomes)
        .map(|(title, outcome)| queue_create(&db.store, title, outcome))
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    release.send(()).unwrap();
    blocker.await.unwrap().unwrap();

    let mut results = Vec::new();
    for job in jobs {
        results.push(job.await.unwrap());
    }
    let after = db.store.writer_stats();
    assert_eq!(
        after.batches - before.batches,
        1,
        "the six jobs did not share one batch"
    );
    assert_eq!(after.jobs - before.jobs, 6);

    assert!(
        matches!(&results[1], Err(Error::Rejected(_))),
        "{:?}",
        results[1]
    );
    assert!(
        matches!(&results[3], Err(Error::Duplicate { .. })),
        "{:?}",
        results[3]
    );
    assert!(
        matches!(&results[4], Err(Error::JobPanicked(_))),
        "{:?}",
        results[4]
    );
    // Numbers taken by the failed jobs were rolled back too, so the kept ones have no gaps.
    let mut numbers: Vec<&str> = [0, 2, 5]
        .iter()
        .map(|index| results[*index].as_deref().expect("job failed"))
        .collect();
    numbers.sort_unstable();
    assert_eq!(numbers, vec!["INC0000001", "INC0000002", "INC0000003"]);

    // The failed jobs' records and numbers were rolled back with their savepoints.
    let page = db.store.list_records(&Default::default()).await.unwrap();
    let mut titles: Vec<String> = page.records.into_iter().map(|r| r.title).collect();
    titles.sort();
    assert_eq!(titles, vec!["First", "Second", "Third"]);
    assert!(db.store.verify_audit().await.unwrap().is_clean());

    // The writer survives the panic.
    let next = queue_create(&db.store, "After", "ok")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next, "INC0000004");
}

async fn rejected_error_reaches_caller(db: &TestDb) {
    #[derive(Debug, thiserror::Error)]
    #[error("transition `close` is not allowed from state `new`")]
    struct NotAllowed;

    let result: Result<(), Error> = db
        .store
        .write(|_tx| Box::pin(async move { Err(Error::rejected(NotAllowed)) }))
        .await;
    match result {
        Err(Error::Rejected(inner)) => {
            assert!(inner.is::<NotAllowed>());
            assert_eq!(
                inner.to_string(),
                "transition `close` is not allowed from state `new`"
            );
        }
        other => panic!("expected the job's own rejection, got {other:?}"),
    }
}
