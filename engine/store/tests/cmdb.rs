mod common;

use serde_json::{Map, json};
use tend_store::Store;
use tend_store::cmdb::{
    ChangeSource, CiChange, NewCi, ci_as_of, ci_versions, insert_ci, insert_relationship, update_ci,
};
use tend_store::impact::{Walk, walk};
use tend_store::testing::TestDb;

on_both_backends!(
    walk_splits_wide_levels,
    walk_ignores_retired_relationships,
    versions_rebuild_past_state,
);

async fn new_ci(store: &Store, class: &str, name: &str) -> i64 {
    let new = NewCi {
        class: class.to_owned(),
        name: name.to_owned(),
        status: "active".to_owned(),
        attributes: Map::new(),
        keys: Vec::new(),
    };
    store
        .write(move |tx| {
            Box::pin(async move { insert_ci(tx, new, "tom", ChangeSource::Person).await })
        })
        .await
        .unwrap()
        .id
}

async fn relate(store: &Store, kind: &str, source: i64, target: i64) -> i64 {
    let kind = kind.to_owned();
    store
        .write(move |tx| {
            Box::pin(async move {
                insert_relationship(
                    tx,
                    &kind,
                    source,
                    target,
                    false,
                    "tom",
                    ChangeSource::Import,
                )
                .await
            })
        })
        .await
        .unwrap()
        .id
}

fn depends_on_down() -> Walk {
    Walk {
        target_to_source: vec!["depends_on".to_owned()],
        source_to_target: Vec::new(),
    }
}

/// A level wider than one `IN (…)` list is read in several queries, and every CI of it
/// is reached.
async fn walk_splits_wide_levels(db: &TestDb) {
    let store = &db.store;
    let root = new_ci(store, "server", "root").await;
    let mut middle = Vec::new();
    for i in 0..1_200 {
        let ci = new_ci(store, "application", &format!("app-{i}")).await;
        relate(store, "depends_on", ci, root).await;
        middle.push(ci);
    }
    let leaf = new_ci(store, "business_service", "leaf").await;
    relate(store, "depends_on", leaf, middle[1_100]).await;

    let result = walk(store.db(), &[root], &depends_on_down(), 3)
        .await
        .unwrap();
    assert_eq!(result.reached.len(), 1_201);
    assert!(result.reached[..1_200].iter().all(|hit| hit.depth == 1));
    let last = result.reached.last().unwrap();
    assert_eq!(last.ci, leaf);
    assert_eq!(last.depth, 2);
    assert_eq!(last.path.len(), 2);
    assert_eq!(last.path[0].to, middle[1_100]);
    // Level 1: one query for the root. Level 2: three chunks of at most 500 CIs. Level 3:
    // one query for the leaf.
    assert_eq!(result.queries, 5);
    assert!(result.cycles.is_empty());
}

async fn walk_ignores_retired_relationships(db: &TestDb) {
    let store = &db.store;
    let database = new_ci(store, "database", "db").await;
    let app = new_ci(store, "application", "app").await;
    let relationship = relate(store, "depends_on", app, database).await;
    let reached = walk(store.db(), &[database], &depends_on_down(), 2)
        .await
        .unwrap();
    assert_eq!(reached.reached.len(), 1);

    store
        .write(move |tx| {
            Box::pin(
                async move { tend_store::cmdb::retire_relationship(tx, relationship, "tom").await },
            )
        })
        .await
        .unwrap();
    let reached = walk(store.db(), &[database], &depends_on_down(), 2)
        .await
        .unwrap();
    assert!(reached.reached.is_empty(), "{reached:?}");
    // A retired relationship does not count as a duplicate of a new one.
    relate(store, "depends_on", app, database).await;
}

async fn versions_rebuild_past_state(db: &TestDb) {
    let store = &db.store;
    let id = new_ci(store, "server", "web-1").await;
    let mut attributes = Map::new();
    attributes.insert("cpu".into(), json!("Xeon"));
    let change = CiChange {
        attributes,
        ..CiChange::default()
    };
    store
        .write(move |tx| {
            Box::pin(
                async move { update_ci(tx, id, change, Some(1), "ada", ChangeSource::Rule).await },
            )
        })
        .await
        .unwrap();
    // Versions a few microseconds apart could share a timestamp; the pause keeps the
    // second version strictly before the third.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let mut attributes = Map::new();
    attributes.insert("cpu".into(), json!(null));
    let change = CiChange {
        name: Some("web-01".into()),
        attributes,
        ..CiChange::default()
    };
    let current = store
        .write(move |tx| {
            Box::pin(
                async move { update_ci(tx, id, change, None, "tom", ChangeSource::Person).await },
            )
        })
        .await
        .unwrap();

    let versions = ci_versions(store.db(), id).await.unwrap();
    assert_eq!(versions.len(), 3);
    assert_eq!(versions[1].source, "rule");
    assert_eq!(
        versions[1].changes["cpu"],
        json!({ "before": null, "after": "Xeon" })
    );

    let at_second = ci_as_of(&current, &versions, versions[1].at).unwrap();
    assert_eq!(at_second.name, "web-1");
    assert_eq!(at_second.attributes["cpu"], "Xeon");
    assert_eq!(at_second.version, 2);
    let now = ci_as_of(&current, &versions, versions[2].at).unwrap();
    assert_eq!(now.name, "web-01");
    assert!(now.attributes.is_empty());
    let before = versions[0].at - chrono::TimeDelta::seconds(1);
    assert!(ci_as_of(&current, &versions, before).is_none());
}
