mod common;

use chrono::{DateTime, TimeDelta, Utc};
use common::{create, new_record};
use serde_json::json;
use tend_domain::Record;
use tend_store::testing::TestDb;
use tend_store::{DueTimer, PlannedTimer, Store};

on_both_backends!(
    replace_drops_old_timers,
    due_timers_are_read_earliest_first,
    consumed_timer_is_gone,
    deleting_record_deletes_timers,
    two_stores_consume_each_timer_once,
    sla_timers_are_kept_apart,
);

fn plan(transition: &str, due_at: DateTime<Utc>) -> PlannedTimer {
    PlannedTimer {
        transition: transition.to_owned(),
        due_at,
    }
}

async fn replace(store: &Store, record: &Record, plans: Vec<PlannedTimer>) {
    let (id, since) = (record.id, record.state_changed_at);
    store
        .write(move |tx| {
            Box::pin(async move { tend_store::replace_timers(tx, id, &plans, since).await })
        })
        .await
        .unwrap();
}

async fn read_due(store: &Store, now: DateTime<Utc>, limit: u64) -> Vec<DueTimer> {
    tend_store::due_timers(store.db(), now, limit)
        .await
        .unwrap()
}

/// Reads the due timers and consumes each in its own write, as firing does; returns the
/// ones this store consumed.
async fn claim(store: &Store, now: DateTime<Utc>, limit: u64) -> Vec<DueTimer> {
    let mut consumed = Vec::new();
    for timer in read_due(store, now, limit).await {
        let id = timer.id;
        let taken = store
            .write(move |tx| Box::pin(async move { tend_store::consume_timer(tx, id).await }))
            .await
            .unwrap();
        if taken {
            consumed.push(timer);
        }
    }
    consumed
}

async fn incident(store: &Store, title: &str) -> Record {
    create(store, new_record("incident", title, json!({})), vec![]).await
}

async fn replace_drops_old_timers(db: &TestDb) {
    let store = &db.store;
    let record = incident(store, "Printer jam").await;
    let first = record.state_changed_at + TimeDelta::days(5);
    replace(store, &record, vec![plan("close", first)]).await;
    assert_eq!(
        store.timers_of(record.id).await.unwrap(),
        vec![plan("close", first)]
    );

    let second = record.state_changed_at + TimeDelta::hours(2);
    replace(store, &record, vec![plan("escalate", second)]).await;
    let pending = store.timers_of(record.id).await.unwrap();
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0].transition, "escalate");

    replace(store, &record, vec![]).await;
    assert!(store.timers_of(record.id).await.unwrap().is_empty());
}

async fn due_timers_are_read_earliest_first(db: &TestDb) {
    let store = &db.store;
    let now = Utc::now();
    let overdue = incident(store, "Overdue").await;
    let due = incident(store, "Due").await;
    let later = incident(store, "Later").await;
    replace(
        store,
        &overdue,
        vec![plan("close", now - TimeDelta::days(1))],
    )
    .await;
    replace(
        store,
        &due,
        vec![plan("close", now - TimeDelta::seconds(1))],
    )
    .await;
    replace(store, &later, vec![plan("close", now + TimeDelta::days(1))]).await;

    let claimed = read_due(store, now, 100).await;
    let numbers: Vec<&str> = claimed.iter().map(|t| t.number.as_str()).collect();
    assert_eq!(numbers, vec![overdue.number.as_str(), due.number.as_str()]);
    assert_eq!(claimed[0].record_id, overdue.id);
    assert_eq!(claimed[0].transition, "close");
    assert_eq!(
        claimed[0].state_changed_at.timestamp_micros(),
        overdue.state_changed_at.timestamp_micros()
    );
    assert_eq!(store.timers_of(later.id).await.unwrap().len(), 1);
}

async fn consumed_timer_is_gone(db: &TestDb) {
    let store = &db.store;
    let now = Utc::now();
    let record = incident(store, "Once").await;
    let other = incident(store, "Twice").await;
    replace(
        store,
        &record,
        vec![plan("close", now - TimeDelta::hours(2))],
    )
    .await;
    replace(
        store,
        &other,
        vec![plan("close", now - TimeDelta::hours(1))],
    )
    .await;

    let first = claim(store, now, 1).await;
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0].number, record.number);
    let second = claim(store, now, 100).await;
    assert_eq!(second.len(), 1, "{second:?}");
    assert_eq!(second[0].number, other.number);
    assert!(claim(store, now, 100).await.is_empty());
}

async fn deleting_record_deletes_timers(db: &TestDb) {
    use sea_orm::{ConnectionTrait, Statement};

    let store = &db.store;
    let now = Utc::now();
    let record = incident(store, "Deleted").await;
    replace(
        store,
        &record,
        vec![plan("close", now - TimeDelta::hours(1))],
    )
    .await;
    // The journal's foreign key cascades too, so one delete removes the record entirely.
    let sql = match store.backend() {
        tend_store::Backend::Sqlite => "DELETE FROM records WHERE id = ?",
        tend_store::Backend::Postgres => "DELETE FROM records WHERE id = $1",
    };
    let backend = store.db().get_database_backend();
    store
        .db()
        .execute_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [record.id.into()],
        ))
        .await
        .unwrap();
    assert!(store.timers_of(record.id).await.unwrap().is_empty());
    assert!(claim(store, now, 100).await.is_empty());
}

async fn two_stores_consume_each_timer_once(db: &TestDb) {
    let store = &db.store;
    let other = Store::connect(&db.url).await.unwrap();
    let now = Utc::now();
    let mut numbers = Vec::new();
    for i in 0..20 {
        let record = incident(store, &format!("Timer {i}")).await;
        replace(
            store,
            &record,
            vec![plan("close", now - TimeDelta::minutes(i))],
        )
        .await;
        numbers.push(record.number);
    }

    let (first, second) = tokio::join!(
        async {
            let mut all = Vec::new();
            for _ in 0..10 {
                all.extend(claim(store, now, 3).await);
            }
            all
        },
        async {
            let mut all = Vec::new();
            for _ in 0..10 {
                all.extend(claim(&other, now, 3).await);
            }
            all
        }
    );
    let mut claimed: Vec<String> = first
        .into_iter()
        .chain(second)
        .map(|timer| timer.number)
        .collect();
    claimed.sort();
    numbers.sort();
    assert_eq!(claimed, numbers, "every timer is claimed exactly once");
}

async fn sla_timers_are_kept_apart(db: &TestDb) {
    let store = &db.store;
    let now = Utc::now();
    let record = incident(store, "Clock").await;
    replace(
        store,
        &record,
        vec![plan("close", now + TimeDelta::days(1))],
    )
    .await;
    let threshold = tend_store::SlaTimer {
        policy: "standard".into(),
        target: "resolution".into(),
        percent: 75,
        target_minutes: 240,
        due_at: now - TimeDelta::minutes(5),
    };
    let plans = vec![threshold.clone()];
    let id = record.id;
    store
        .write(move |tx| {
            Box::pin(async move { tend_store::replace_sla_timers(tx, id, &plans).await })
        })
        .await
        .unwrap();
    // Replacing one kind leaves the other.
    replace(store, &record, vec![]).await;
    let expected = threshold.clone();
    assert_eq!(
        store.sla_timers_of(record.id).await.unwrap(),
        vec![expected.clone()]
    );
    let due = read_due(store, now, 10).await;
    assert_eq!(due.len(), 1, "{due:?}");
    assert_eq!(due[0].sla.as_ref(), Some(&expected));
    assert_eq!(due[0].transition, "");
}
