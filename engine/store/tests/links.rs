mod common;

use chrono::Utc;
use common::{create, new_record};
use serde_json::json;
use tend_domain::{JournalEvent, Record};
use tend_store::testing::TestDb;
use tend_store::{Error, LinkDirection, Store};

on_both_backends!(
    link_shows_on_both_records,
    duplicate_link_writes_nothing,
    self_link_is_invalid,
    stale_revision_writes_no_link,
    opposite_links_from_two_stores,
);

/// Links `source` to `target` through the write funnel, as the command path does.
async fn link(
    store: &Store,
    source: &Record,
    target: &Record,
    link_type: &str,
) -> Result<(Record, Record), Error> {
    let (source, target, link_type) = (source.clone(), target.clone(), link_type.to_owned());
    store
        .write(move |tx| {
            Box::pin(async move {
                tend_store::link_records(tx, &source, &target, &link_type, "tom", Utc::now()).await
            })
        })
        .await
}

async fn incident(store: &Store, title: &str, requester: &str) -> Record {
    create(
        store,
        new_record("incident", title, json!({ "requester": requester })),
        vec![],
    )
    .await
}

async fn reload(store: &Store, record: &Record) -> Record {
    store
        .get_record(&record.number)
        .await
        .unwrap()
        .expect("record not found")
}

fn last_event(journal: &[tend_domain::JournalEntry]) -> &JournalEvent {
    &journal.last().expect("the journal is empty").event
}

async fn link_shows_on_both_records(db: &TestDb) {
    let store = &db.store;
    let outage = incident(store, "Mail is down", "alice").await;
    let change = create(
        store,
        new_record("change", "Upgrade the mail server", json!({})),
        vec![],
    )
    .await;

    let (source, target) = link(store, &outage, &change, "caused_by").await.unwrap();
    assert_eq!(source.revision, outage.revision + 1);
    assert_eq!(target.revision, change.revision + 1);
    assert_eq!(reload(store, &outage).await, source);
    assert_eq!(reload(store, &change).await, target);

    let outgoing = store.links_of(outage.id).await.unwrap();
    assert_eq!(outgoing.len(), 1, "{outgoing:?}");
    let found = &outgoing[0];
    assert_eq!(found.link_type, "caused_by");
    assert_eq!(found.direction, LinkDirection::Outgoing);
    assert_eq!(found.number, change.number);
    assert_eq!(found.process, "change");
    assert_eq!(found.title, "Upgrade the mail server");
    assert_eq!(found.state, "new");
    assert_eq!(found.requester, None);
    assert_eq!(found.actor, "tom");

    let incoming = store.links_of(change.id).await.unwrap();
    assert_eq!(incoming.len(), 1, "{incoming:?}");
    assert_eq!(incoming[0].direction, LinkDirection::Incoming);
    assert_eq!(incoming[0].number, outage.number);
    assert_eq!(incoming[0].process, "incident");
    assert_eq!(incoming[0].requester.as_deref(), Some("alice"));

    let journal = store.journal(outage.id).await.unwrap();
    assert_eq!(
        last_event(&journal),
        &JournalEvent::Linked {
            link_type: "caused_by".into(),
            other: change.number.clone(),
            outgoing: true,
        }
    );
    assert_eq!(journal.last().unwrap().actor, "tom");
    let journal = store.journal(change.id).await.unwrap();
    assert_eq!(
        last_event(&journal),
        &JournalEvent::Linked {
            link_type: "caused_by".into(),
            other: outage.number.clone(),
            outgoing: false,
        }
    );

    // A record without links reads an empty list; links keep the order they were added.
    let third = incident(store, "Calendar does not sync", "bob").await;
    assert!(store.links_of(third.id).await.unwrap().is_empty());
    link(store, &third, &reload(store, &outage).await, "related_to")
        .await
        .unwrap();
    let both: Vec<(String, LinkDirection)> = store
        .links_of(outage.id)
        .await
        .unwrap()
        .into_iter()
        .map(|link| (link.link_type, link.direction))
        .collect();
    assert_eq!(
        both,
        [
            ("caused_by".to_owned(), LinkDirection::Outgoing),
            ("related_to".to_owned(), LinkDirection::Incoming),
        ]
    );
    assert!(store.verify_audit().await.unwrap().is_clean());
}

async fn duplicate_link_writes_nothing(db: &TestDb) {
    let store = &db.store;
    let first = incident(store, "Printer jams", "alice").await;
    let second = incident(store, "Printer jams again", "alice").await;
    let (first, second) = link(store, &first, &second, "duplicate_of").await.unwrap();

    let again = link(store, &first, &second, "duplicate_of").await;
    assert!(
        matches!(&again, Err(Error::Duplicate { what: "link", .. })),
        "{again:?}"
    );
    assert_eq!(reload(store, &first).await, first, "the source was written");
    assert_eq!(
        reload(store, &second).await,
        second,
        "the target was written"
    );
    assert_eq!(store.journal(first.id).await.unwrap().len(), 2);
    assert_eq!(store.links_of(first.id).await.unwrap().len(), 1);

    let direct = store
        .write(move |tx| {
            Box::pin(async move {
                tend_store::insert_link(tx, first.id, second.id, "duplicate_of", "tom").await
            })
        })
        .await;
    assert!(
        matches!(&direct, Err(Error::Duplicate { what: "link", .. })),
        "{direct:?}"
    );

    // Another type, or the same type the other way round, is another link.
    let first = reload(store, &first).await;
    let second = reload(store, &second).await;
    let (first, second) = link(store, &first, &second, "related_to").await.unwrap();
    link(store, &second, &first, "duplicate_of").await.unwrap();
    assert_eq!(store.links_of(first.id).await.unwrap().len(), 3);
    assert!(store.verify_audit().await.unwrap().is_clean());
}

async fn self_link_is_invalid(db: &TestDb) {
    let store = &db.store;
    let record = incident(store, "VPN drops", "alice").await;

    let result = link(store, &record, &record, "related_to").await;
    assert!(matches!(&result, Err(Error::Invalid(_))), "{result:?}");
    let id = record.id;
    let direct = store
        .write(move |tx| {
            Box::pin(async move { tend_store::insert_link(tx, id, id, "related_to", "tom").await })
        })
        .await;
    assert!(matches!(&direct, Err(Error::Invalid(_))), "{direct:?}");
    assert_eq!(reload(store, &record).await, record);
    assert!(store.links_of(record.id).await.unwrap().is_empty());
}

async fn stale_revision_writes_no_link(db: &TestDb) {
    let store = &db.store;
    let source = incident(store, "Disk full", "alice").await;
    let target = incident(store, "Backup failed", "alice").await;
    let mut changed = target.clone();
    changed.title = "Backup failed on the file server".into();
    common::update(store, changed, vec![common::comment("renamed")])
        .await
        .unwrap();

    // `target` still has the revision before the rename. It has the higher id, so it is
    // written after `source`, whose entry must roll back with the job.
    let stale = link(store, &source, &target, "caused_by").await;
    assert!(matches!(&stale, Err(Error::Conflict { .. })), "{stale:?}");
    assert!(store.links_of(source.id).await.unwrap().is_empty());
    assert_eq!(reload(store, &source).await, source);
    assert_eq!(store.journal(source.id).await.unwrap().len(), 1);

    let stale = link(store, &target, &source, "caused_by").await;
    assert!(matches!(&stale, Err(Error::Conflict { .. })), "{stale:?}");
    assert_eq!(reload(store, &source).await, source);
    assert!(store.links_of(source.id).await.unwrap().is_empty());
    assert!(store.verify_audit().await.unwrap().is_clean());
}

/// Two stores on one database (two server nodes) link the same pair in opposite directions
/// at once. Every link is written once, and neither job fails with a deadlock. The pairs
/// go one at a time, so that each batch of each store holds one job: locks that earlier jobs
/// of a batch keep until the commit are outside what `link_records` can order.
async fn opposite_links_from_two_stores(db: &TestDb) {
    let second = common::open(db).await;
    for index in 0..12 {
        let left = incident(&db.store, &format!("Left {index}"), "alice").await;
        let right = incident(&db.store, &format!("Right {index}"), "alice").await;

        let mut tasks = Vec::new();
        for (store, source, target) in [
            (db.store.clone(), left.number.clone(), right.number.clone()),
            (second.clone(), right.number.clone(), left.number.clone()),
        ] {
            tasks.push(tokio::spawn(async move {
                // Like the command path: read both records, write, and read again after
                // losing a revision race.
                for _ in 0..20 {
                    let source = store.get_record(&source).await?.expect("source exists");
                    let target = store.get_record(&target).await?.expect("target exists");
                    match link(&store, &source, &target, "related_to").await {
                        Err(Error::Conflict { .. }) => continue,
                        other => return other.map(|_| ()),
                    }
                }
                panic!("a link lost 20 revision races in a row");
            }));
        }
        for task in tasks {
            let result: Result<(), Error> = task.await.unwrap();
            result.unwrap();
        }

        let links = db.store.links_of(left.id).await.unwrap();
        assert_eq!(links.len(), 2, "{links:?}");
        assert!(links.iter().all(|link| link.number == right.number));
        assert_eq!(db.store.journal(right.id).await.unwrap().len(), 3);
    }
    assert!(db.store.verify_audit().await.unwrap().is_clean());
}
