//! Shared helpers of the store's integration tests.
#![allow(dead_code)]

use chrono::Utc;
use serde_json::json;
use tend_domain::{Fields, JournalEvent, Record};
use tend_store::testing::TestDb;
use tend_store::{Error, Store};

/// Defines a module with one test per backend that each call `$body(&TestDb)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                use tend_store::testing::TestDb;

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let db = TestDb::sqlite().await;
                    super::$name(&db).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if let Some(db) = TestDb::postgres().await {
                        super::$name(&db).await;
                    }
                }
            }
        )*
    };
}

/// Builds an unsaved record of `process` with the given fields.
pub fn new_record(process: &str, title: &str, fields: serde_json::Value) -> Record {
    let fields: Fields = match fields {
        serde_json::Value::Object(map) => map,
        other => panic!("fields must be a JSON object, not {other}"),
    };
    let now = Utc::now();
    Record {
        id: 0,
        number: String::new(),
        process: process.to_owned(),
        definition_version: "test-v1".to_owned(),
        state: "new".to_owned(),
        open: true,
        title: title.to_owned(),
        description: format!("Description of {title}"),
        fields,
        recommendations: Vec::new(),
        created_at: now,
        updated_at: now,
        state_changed_at: now,
        revision: 0,
    }
}

pub fn created_event(record: &Record) -> JournalEvent {
    JournalEvent::Created {
        title: record.title.clone(),
        description: record.description.clone(),
        state: record.state.clone(),
        fields: record.fields.clone(),
    }
}

pub fn comment(text: &str) -> JournalEvent {
    JournalEvent::Commented {
        text: text.to_owned(),
    }
}

/// Creates `record` through the write funnel with a `created` entry and `extra` entries.
pub async fn create(store: &Store, record: Record, extra: Vec<JournalEvent>) -> Record {
    try_create(store, record, extra)
        .await
        .expect("create failed")
}

pub async fn try_create(
    store: &Store,
    record: Record,
    extra: Vec<JournalEvent>,
) -> Result<Record, Error> {
    let prefix = prefix_of(&record.process);
    store
        .write(move |tx| {
            Box::pin(async move {
                let mut events = vec![created_event(&record)];
                events.extend(extra);
                tend_store::insert_record(tx, &record, prefix, 7, "ada", &events).await
            })
        })
        .await
}

/// Writes `record` (with its current revision) and `events` through the write funnel.
/// Writes `record` as changed now: like the engine, it stamps `updated_at` with the time of
/// the command, which the store keeps as the time of the write and of its journal entries.
pub async fn update(
    store: &Store,
    mut record: Record,
    events: Vec<JournalEvent>,
) -> Result<Record, Error> {
    record.updated_at = chrono::Utc::now();
    store
        .write(move |tx| {
            Box::pin(async move { tend_store::update_record(tx, &record, "bob", &events).await })
        })
        .await
}

pub fn prefix_of(process: &str) -> &'static str {
    match process {
        "incident" => "INC",
        "change" => "CHG",
        _ => "REC",
    }
}

/// Fields with the indexed columns set.
pub fn fields(assignee: &str, priority: &str) -> serde_json::Value {
    json!({ "assignee": assignee, "priority": priority, "impact": "low" })
}

pub async fn open(db: &TestDb) -> Store {
    Store::connect(&db.url)
        .await
        .expect("failed to open a second store")
}
