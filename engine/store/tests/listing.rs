mod common;

use std::collections::BTreeSet;

use common::{create, new_record, update};
use serde_json::json;
use tend_domain::Record;
use tend_store::testing::TestDb;
use tend_store::{Error, RecordFilter};

on_both_backends!(
    pages_cover_every_record_once,
    filters_select_matching_records,
    text_search_ignores_case_and_wildcards,
    invalid_limit_and_cursor_rejected,
    equal_update_times_page_by_id,
    filters_read_an_index,
);

/// Creates 23 records: assignees alternate between bob and carol, priorities cycle P1..P3,
/// every third record is closed, and the last five are changes.
async fn seed(db: &TestDb) -> Vec<Record> {
    let mut stored = Vec::new();
    for index in 0..23 {
        let process = if index >= 18 { "change" } else { "incident" };
        let assignee = if index % 2 == 0 { "bob" } else { "carol" };
        let priority = format!("P{}", index % 3 + 1);
        let mut record = new_record(
            process,
            &format!("Record {index}"),
            json!({ "assignee": assignee, "priority": priority }),
        );
        if index % 3 == 0 {
            record.state = "closed".into();
            record.open = false;
        }
        stored.push(create(&db.store, record, vec![]).await);
    }
    stored
}

async fn collect_pages(db: &TestDb, mut filter: RecordFilter) -> (Vec<Record>, usize) {
    let mut all = Vec::new();
    let mut pages = 0;
    loop {
        let page = db.store.list_records(&filter).await.unwrap();
        pages += 1;
        assert!(page.records.len() <= filter.limit as usize);
        all.extend(page.records);
        match page.next_cursor {
            Some(cursor) => filter.cursor = Some(cursor),
            None => break,
        }
        assert!(pages < 100, "paging does not end");
    }
    (all, pages)
}

async fn pages_cover_every_record_once(db: &TestDb) {
    let stored = seed(db).await;
    // Touch an early record so that update order differs from insert order.
    let touched = update(&db.store, stored[2].clone(), vec![]).await.unwrap();

    let (listed, pages) = collect_pages(
        db,
        RecordFilter {
            limit: 5,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(pages, 5);
    assert_eq!(listed.len(), 23);
    let numbers: BTreeSet<&str> = listed.iter().map(|r| r.number.as_str()).collect();
    assert_eq!(numbers.len(), 23, "a record was listed twice");
    assert_eq!(
        listed[0].number, touched.number,
        "the newest update comes first"
    );
    for pair in listed.windows(2) {
        let (newer, older) = (&pair[0], &pair[1]);
        assert!(
            (newer.updated_at, newer.id) > (older.updated_at, older.id),
            "order broken at {}",
            older.number
        );
    }

    // A page exactly as large as the rest ends without a cursor.
    let whole = db
        .store
        .list_records(&RecordFilter {
            limit: 23,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(whole.records.len(), 23);
    assert_eq!(whole.next_cursor, None);
}

async fn filters_select_matching_records(db: &TestDb) {
    let stored = seed(db).await;
    let expect = |keep: &dyn Fn(usize) -> bool| -> BTreeSet<String> {
        stored
            .iter()
            .enumerate()
            .filter(|(i, _)| keep(*i))
            .map(|(_, r)| r.number.clone())
            .collect()
    };
    let cases: Vec<(RecordFilter, BTreeSet<String>)> = vec![
        (
            RecordFilter {
                assignee: Some("bob".into()),
                ..Default::default()
            },
            expect(&|i| i % 2 == 0),
        ),
        (
            RecordFilter {
                priority: Some("P2".into()),
                ..Default::default()
            },
            expect(&|i| i % 3 == 1),
        ),
        (
            RecordFilter {
                open: Some(false),
                ..Default::default()
            },
            expect(&|i| i % 3 == 0),
        ),
        (
            RecordFilter {
                open: Some(true),
                ..Default::default()
            },
            expect(&|i| i % 3 != 0),
        ),
        (
            RecordFilter {
                process: Some("change".into()),
                ..Default::default()
            },
            expect(&|i| i >= 18),
        ),
        (
            RecordFilter {
                process: Some("incident".into()),
                state: Some("closed".into()),
                ..Default::default()
            },
            expect(&|i| i < 18 && i % 3 == 0),
        ),
        (
            RecordFilter {
                assignee: Some("carol".into()),
                open: Some(true),
                ..Default::default()
            },
            expect(&|i| i % 2 == 1 && i % 3 != 0),
        ),
        (
            RecordFilter {
                assignment_group: Some("network".into()),
                ..Default::default()
            },
            BTreeSet::new(),
        ),
        (
            RecordFilter {
                requester: Some("nobody".into()),
                ..Default::default()
            },
            BTreeSet::new(),
        ),
    ];
    for (filter, expected) in cases {
        let (listed, _) = collect_pages(
            db,
            RecordFilter {
                limit: 4,
                ..filter.clone()
            },
        )
        .await;
        let numbers: BTreeSet<String> = listed.into_iter().map(|r| r.number).collect();
        assert_eq!(numbers, expected, "filter {filter:?}");
    }
}

async fn text_search_ignores_case_and_wildcards(db: &TestDb) {
    let mut vpn = new_record("incident", "VPN drops every hour", json!({}));
    vpn.description = "Users in Lyon lose the tunnel".into();
    let vpn = create(&db.store, vpn, vec![]).await;
    let percent = create(
        &db.store,
        new_record("incident", "Disk at 100% full", json!({})),
        vec![],
    )
    .await;
    create(
        &db.store,
        new_record("incident", "Disk at 1000 IOPS", json!({})),
        vec![],
    )
    .await;

    let search = |q: &str| {
        let store = db.store.clone();
        let filter = RecordFilter {
            q: Some(q.to_owned()),
            ..Default::default()
        };
        async move {
            let page = store.list_records(&filter).await.unwrap();
            page.records
                .into_iter()
                .map(|r| r.number)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(search("vpn").await, vec![vpn.number.clone()]);
    assert_eq!(
        search("LYON").await,
        vec![vpn.number.clone()],
        "description is searched too"
    );
    assert_eq!(
        search("100%").await,
        vec![percent.number.clone()],
        "% matches itself only"
    );
    assert_eq!(
        search("at_1").await,
        Vec::<String>::new(),
        "_ matches itself only"
    );
    assert_eq!(search("   ").await.len(), 3, "blank text does not filter");
}

async fn invalid_limit_and_cursor_rejected(db: &TestDb) {
    for limit in [0, 501] {
        let result = db
            .store
            .list_records(&RecordFilter {
                limit,
                ..Default::default()
            })
            .await;
        assert!(
            matches!(result, Err(Error::Invalid(_))),
            "limit {limit}: {result:?}"
        );
    }
    let result = db
        .store
        .list_records(&RecordFilter {
            cursor: Some("not-a-cursor".into()),
            ..Default::default()
        })
        .await;
    match result {
        Err(Error::Invalid(message)) => assert!(message.contains("not-a-cursor"), "{message}"),
        other => panic!("expected an invalid cursor error, got {other:?}"),
    }
    let max = db
        .store
        .list_records(&RecordFilter {
            limit: 500,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(max.records.is_empty());
}

/// Records updated in the same microsecond must still page without gaps, ordered by id.
async fn equal_update_times_page_by_id(db: &TestDb) {
    seed(db).await;
    db.execute("UPDATE records SET updated_at = (SELECT MIN(updated_at) FROM records)")
        .await;

    let (listed, pages) = collect_pages(
        db,
        RecordFilter {
            limit: 4,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(pages, 6);
    let ids: Vec<i64> = listed.iter().map(|r| r.id).collect();
    let mut expected = ids.clone();
    expected.sort_unstable_by(|a, b| b.cmp(a));
    expected.dedup();
    assert_eq!(ids, expected, "ids must descend without repeats");
    assert_eq!(ids.len(), 23);
}

async fn filters_read_an_index(db: &TestDb) {
    seed(db).await;
    let cases = [
        (
            RecordFilter {
                assignee: Some("bob".into()),
                ..Default::default()
            },
            "idx_records_assignee",
        ),
        (
            RecordFilter {
                assignment_group: Some("net".into()),
                ..Default::default()
            },
            "idx_records_assignment_group",
        ),
        (
            RecordFilter {
                requester: Some("eve".into()),
                ..Default::default()
            },
            "idx_records_requester",
        ),
        (
            RecordFilter {
                priority: Some("P1".into()),
                ..Default::default()
            },
            "idx_records_priority",
        ),
        (
            RecordFilter {
                process: Some("incident".into()),
                state: Some("new".into()),
                ..Default::default()
            },
            "idx_records_process_state",
        ),
        (RecordFilter::default(), "idx_records_updated_at"),
    ];
    for (filter, index) in cases {
        let plan = db
            .store
            .explain_list_records(&filter)
            .await
            .unwrap()
            .join("\n");
        assert!(!plan.is_empty());
        // PostgreSQL rightly prefers a sequential scan on a table this small, so only
        // SQLite's plan, which follows the available indexes, is checked by name.
        if db.store.backend() == tend_store::Backend::Sqlite {
            assert!(
                plan.contains(index),
                "filter {filter:?} does not use {index}:\n{plan}"
            );
            assert!(
                !plan.contains("TEMP B-TREE"),
                "filter {filter:?} sorts in memory:\n{plan}"
            );
        }
    }
}
