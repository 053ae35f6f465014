mod common;

use std::collections::BTreeSet;

use common::{comment, create, fields, new_record, try_create, update};
use serde_json::json;
use tend_domain::{JournalEvent, Recommendation};
use tend_store::testing::TestDb;
use tend_store::{Error, Store};

on_both_backends!(
    record_round_trips,
    numbers_unique_under_concurrent_writers,
    numbers_unique_across_two_stores,
    stale_revision_conflicts,
    journal_chain_links_entries,
    load_for_update_in_job,
    idempotency_key_returns_number,
    unknown_record_update_not_found,
);

async fn record_round_trips(db: &TestDb) {
    let mut record = new_record(
        "incident",
        "Mail is down",
        json!({ "assignee": "bob", "ci": "mx1", "count": 3 }),
    );
    record.recommendations = vec![Recommendation {
        action: "recover".into(),
        params: json!({ "ci": "mx1" }),
        rule: "incident/recommend".into(),
        reason: "Lost file".into(),
    }];
    let stored = create(&db.store, record.clone(), vec![]).await;

    assert!(stored.id > 0);
    assert_eq!(stored.number, "INC0000001");
    assert_eq!(stored.revision, 1);
    assert_eq!(stored.fields, record.fields);

    let read = db
        .store
        .get_record("INC0000001")
        .await
        .unwrap()
        .expect("record not found");
    assert_eq!(read, stored);
    let by_id = db.store.get_record_by_id(stored.id).await.unwrap();
    assert_eq!(by_id.as_ref(), Some(&stored));
    assert_eq!(db.store.get_record("INC0000999").await.unwrap(), None);
}

async fn numbers_unique_under_concurrent_writers(db: &TestDb) {
    let mut tasks = Vec::new();
    for index in 0..200 {
        let store = db.store.clone();
        let process = if index % 4 == 0 { "change" } else { "incident" };
        let record = new_record(process, &format!("Record {index}"), json!({}));
        tasks.push(tokio::spawn(async move {
            create(&store, record, vec![]).await.number
        }));
    }
    let mut numbers = BTreeSet::new();
    for task in tasks {
        assert!(
            numbers.insert(task.await.unwrap()),
            "a number was handed out twice"
        );
    }

    let incidents: BTreeSet<String> = (1..=150).map(|n| format!("INC{n:07}")).collect();
    let changes: BTreeSet<String> = (1..=50).map(|n| format!("CHG{n:07}")).collect();
    let expected: BTreeSet<String> = incidents.union(&changes).cloned().collect();
    assert_eq!(numbers, expected);

    let stats = db.store.writer_stats();
    assert!(stats.jobs >= 200, "{stats:?}");
    assert!(db.store.verify_audit().await.unwrap().is_clean());
}

/// Two stores on one database behave like two server nodes: each has its own writer.
async fn numbers_unique_across_two_stores(db: &TestDb) {
    let second = common::open(db).await;
    let mut tasks = Vec::new();
    for index in 0..60 {
        let store: Store = if index % 2 == 0 {
            db.store.clone()
        } else {
            second.clone()
        };
        let record = new_record("incident", &format!("Node record {index}"), json!({}));
        tasks.push(tokio::spawn(async move {
            create(&store, record, vec![]).await.number
        }));
    }
    let mut numbers = BTreeSet::new();
    for task in tasks {
        numbers.insert(task.await.unwrap());
    }
    let expected: BTreeSet<String> = (1..=60).map(|n| format!("INC{n:07}")).collect();
    assert_eq!(numbers, expected);
}

async fn stale_revision_conflicts(db: &TestDb) {
    let stored = create(
        &db.store,
        new_record("incident", "Printer", fields("bob", "P3")),
        vec![],
    )
    .await;

    let mut first = stored.clone();
    first.state = "in_progress".into();
    let first = update(&db.store, first, vec![comment("started")])
        .await
        .unwrap();
    assert_eq!(first.revision, 2);

    let mut stale = stored.clone();
    stale.title = "Printer on fire".into();
    match update(&db.store, stale, vec![comment("stale")]).await {
        Err(Error::Conflict {
            number,
            expected,
            found,
        }) => {
            assert_eq!(number, stored.number);
            assert_eq!(expected, 1);
            assert_eq!(found, 2);
        }
        other => panic!("expected a conflict, got {other:?}"),
    }

    let read = db.store.get_record(&stored.number).await.unwrap().unwrap();
    assert_eq!(read.state, "in_progress");
    assert_eq!(read.title, "Printer");
    assert_eq!(db.store.journal(stored.id).await.unwrap().len(), 2);
}

async fn journal_chain_links_entries(db: &TestDb) {
    let stored = create(
        &db.store,
        new_record("incident", "VPN", json!({})),
        vec![comment("one")],
    )
    .await;
    let mut next = stored.clone();
    next.fields.insert("priority".into(), json!("P1"));
    let events = vec![
        JournalEvent::FieldChanged {
            field: "priority".into(),
            from: json!(null),
            to: json!("P1"),
            rule: Some("incident/prioritize".into()),
            reason: Some("VIP".into()),
        },
        comment("two"),
    ];
    update(&db.store, next, events).await.unwrap();

    let journal = db.store.journal(stored.id).await.unwrap();
    let seqs: Vec<i64> = journal.iter().map(|entry| entry.seq).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4]);
    assert_eq!(journal[0].prev_hash, "");
    for pair in journal.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].hash);
    }
    assert_eq!(journal[0].actor, "ada");
    assert_eq!(journal[3].actor, "bob");
    assert_eq!(journal[3].event, comment("two"));

    let body = serde_json::to_value(&journal[2].event).unwrap();
    let recomputed = tend_store::entry_hash(
        &journal[1].hash,
        &stored.number,
        3,
        journal[2].at,
        "bob",
        &body,
    );
    assert_eq!(recomputed, journal[2].hash);
}

async fn load_for_update_in_job(db: &TestDb) {
    let stored = create(
        &db.store,
        new_record("incident", "Disk", fields("bob", "P2")),
        vec![],
    )
    .await;
    let number = stored.number.clone();
    let changed = db
        .store
        .write(move |tx| {
            Box::pin(async move {
                let mut record = tend_store::load_record_for_update(tx, &number)
                    .await?
                    .ok_or_else(|| Error::rejected("record vanished"))?;
                record.fields.insert("assignee".into(), json!("carol"));
                tend_store::update_record(tx, &record, "carol", &[comment("mine")]).await
            })
        })
        .await
        .unwrap();
    assert_eq!(changed.revision, 2);
    assert_eq!(changed.field_str("assignee"), Some("carol"));

    let page = db
        .store
        .list_records(&tend_store::RecordFilter {
            assignee: Some("carol".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        page.records.len(),
        1,
        "the assignee column follows the fields"
    );

    let missing = db
        .store
        .write(|tx| {
            Box::pin(async move { tend_store::load_record_for_update(tx, "INC9999999").await })
        })
        .await
        .unwrap();
    assert_eq!(missing, None);
}

async fn idempotency_key_returns_number(db: &TestDb) {
    let key = "ada:7f3c".to_owned();
    let create_once = |store: Store, key: String, title: &'static str| async move {
        store
            .write(move |tx| {
                Box::pin(async move {
                    if let Some(number) = tend_store::find_idempotent(tx, &key).await? {
                        return Ok(number);
                    }
                    let record = new_record("incident", title, json!({}));
                    let stored =
                        tend_store::insert_record(tx, &record, "INC", 7, "ada", &[]).await?;
                    tend_store::save_idempotent(tx, &key, &stored.number).await?;
                    Ok(stored.number)
                })
            })
            .await
            .unwrap()
    };
    let first = create_once(db.store.clone(), key.clone(), "First try").await;
    let retry = create_once(db.store.clone(), key.clone(), "Retry").await;
    assert_eq!(first, retry);
    let other_user = create_once(db.store.clone(), "bob:7f3c".into(), "Bob's").await;
    assert_ne!(first, other_user);

    let duplicate = db
        .store
        .write(move |tx| {
            Box::pin(async move { tend_store::save_idempotent(tx, &key, "INC0000042").await })
        })
        .await;
    assert!(
        matches!(duplicate, Err(Error::Duplicate { .. })),
        "{duplicate:?}"
    );
}

async fn unknown_record_update_not_found(db: &TestDb) {
    let mut ghost = new_record("incident", "Ghost", json!({}));
    ghost.id = 4242;
    ghost.number = "INC4242".into();
    let result = update(&db.store, ghost, vec![]).await;
    assert!(
        matches!(result, Err(Error::NotFound { what: "record", .. })),
        "{result:?}"
    );

    // A failed job leaves no trace: the next create still gets number 1.
    let stored = try_create(&db.store, new_record("incident", "Real", json!({})), vec![])
        .await
        .unwrap();
    assert_eq!(stored.number, "INC0000001");
}
