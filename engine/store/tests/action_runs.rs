mod common;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;
use tend_store::Store;
use tend_store::action_runs::{
    ActionRun, FinishedRun, NewActionRun, RunStatus, claim_action_runs, expire_action_runs,
    finish_action_run, queue_action_run, renew_action_leases,
};
use tend_store::testing::TestDb;

on_both_backends!(
    queued_runs_are_claimed_once_in_order,
    finishing_needs_the_claiming_node,
    expired_leases_requeue_or_interrupt,
    concurrent_nodes_claim_disjoint_runs,
);

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

fn new_run(action: &str, idempotent: bool) -> NewActionRun {
    NewActionRun {
        record_id: None,
        record_number: None,
        schedule: Some("nightly".into()),
        plugin: "script".into(),
        action: action.into(),
        params: json!({ "path": "/srv" }),
        actor: "scheduler".into(),
        reason: None,
        idempotent,
        timeout_seconds: 60,
        queued_at: at("2027-01-04T08:00:00Z"),
        ..Default::default()
    }
}

async fn queue(store: &Store, run: NewActionRun) -> i64 {
    store
        .write(move |tx| Box::pin(async move { queue_action_run(tx, &run).await }))
        .await
        .expect("queueing a run failed")
}

async fn claim(store: &Store, node: &str, now: &str, limit: u64) -> Vec<ActionRun> {
    let (node, now) = (node.to_owned(), at(now));
    store
        .write(move |tx| {
            Box::pin(async move {
                claim_action_runs(tx, &node, now, now + TimeDelta::seconds(30), limit).await
            })
        })
        .await
        .expect("claiming runs failed")
}

async fn queued_runs_are_claimed_once_in_order(db: &TestDb) {
    let store = &db.store;
    let first = queue(store, new_run("disk_usage", false)).await;
    let second = queue(store, new_run("ping_host", false)).await;

    let claimed = claim(store, "a", "2027-01-04T08:00:01Z", 1).await;
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].id, first);
    assert_eq!(claimed[0].status, RunStatus::Running);
    assert_eq!(claimed[0].attempts, 1);
    assert_eq!(claimed[0].node.as_deref(), Some("a"));
    assert_eq!(claimed[0].params, json!({ "path": "/srv" }));

    let claimed = claim(store, "b", "2027-01-04T08:00:02Z", 10).await;
    assert_eq!(
        claimed.iter().map(|run| run.id).collect::<Vec<_>>(),
        [second]
    );
    assert!(
        claim(store, "b", "2027-01-04T08:00:03Z", 10)
            .await
            .is_empty()
    );

    let stored = store.action_run(first).await.unwrap().unwrap();
    assert_eq!(stored.status, RunStatus::Running);
    assert_eq!(stored.lease_until, Some(at("2027-01-04T08:00:31Z")));
}

async fn finishing_needs_the_claiming_node(db: &TestDb) {
    let store = &db.store;
    let id = queue(store, new_run("disk_usage", false)).await;
    claim(store, "a", "2027-01-04T08:00:01Z", 10).await;
    let finished = FinishedRun {
        status: RunStatus::Succeeded,
        finished_at: at("2027-01-04T08:00:05Z"),
        duration_ms: 4_000,
        summary: "Filesystem /srv is 41 % full".into(),
        output: "Filesystem Size Used\n/dev/vda 252G 103G\n".into(),
        data: json!({ "used_percent": 41 }),
    };
    let other = finished.clone();
    let by_b = store
        .write(move |tx| Box::pin(async move { finish_action_run(tx, id, "b", &other).await }))
        .await
        .unwrap();
    assert_eq!(by_b, None, "node b does not run it");

    let by_a = store
        .write(move |tx| Box::pin(async move { finish_action_run(tx, id, "a", &finished).await }))
        .await
        .unwrap()
        .expect("node a runs it");
    assert_eq!(by_a.status, RunStatus::Succeeded);
    assert_eq!(by_a.duration_ms, Some(4_000));
    assert_eq!(by_a.data, json!({ "used_percent": 41 }));
    assert_eq!(by_a.lease_until, None);
    assert_eq!(store.action_run(id).await.unwrap(), Some(by_a));
}

async fn expired_leases_requeue_or_interrupt(db: &TestDb) {
    let store = &db.store;
    let once = queue(store, new_run("deploy", false)).await;
    let again = queue(store, new_run("disk_usage", true)).await;
    claim(store, "a", "2027-01-04T08:00:00Z", 10).await;

    // Node a's heartbeat keeps one lease alive; it renews only its own runs.
    let renewed = store
        .write(move |tx| {
            Box::pin(async move {
                renew_action_leases(tx, "b", &[once, again], at("2027-01-04T08:05:00Z")).await
            })
        })
        .await
        .unwrap();
    assert_eq!(renewed, 0);
    let expire = |now: &'static str| {
        store.write(move |tx| Box::pin(async move { expire_action_runs(tx, at(now), 10).await }))
    };
    assert!(expire("2027-01-04T08:00:29Z").await.unwrap().is_empty());

    let expired = expire("2027-01-04T08:00:31Z").await.unwrap();
    assert_eq!(expired.len(), 2);
    let interrupted = store.action_run(once).await.unwrap().unwrap();
    assert_eq!(interrupted.status, RunStatus::Interrupted);
    assert!(
        interrupted
            .summary
            .as_deref()
            .is_some_and(|text| text.contains("node a stopped")),
        "{interrupted:?}"
    );
    let requeued = store.action_run(again).await.unwrap().unwrap();
    assert_eq!(requeued.status, RunStatus::Queued);
    assert_eq!(requeued.node, None);

    let claimed = claim(store, "b", "2027-01-04T08:01:00Z", 10).await;
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].id, again);
    assert_eq!(claimed[0].attempts, 2);
}

async fn concurrent_nodes_claim_disjoint_runs(db: &TestDb) {
    let store = &db.store;
    for _ in 0..40 {
        queue(store, new_run("disk_usage", false)).await;
    }
    let second = Store::connect(&db.url).await.unwrap();
    let mut claimed = Vec::new();
    for _ in 0..8 {
        let (a, b) = tokio::join!(
            claim(store, "a", "2027-01-04T08:00:01Z", 3),
            claim(&second, "b", "2027-01-04T08:00:01Z", 3)
        );
        claimed.extend(a);
        claimed.extend(b);
    }
    let mut ids: Vec<i64> = claimed.iter().map(|run| run.id).collect();
    ids.sort_unstable();
    let count = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), count, "a run was claimed twice");
    assert_eq!(count, 40);
}
