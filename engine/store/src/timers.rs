//! Durable timers: automatic transitions due at a fixed time. A write job that moves a
//! record into a state replaces the record's timers with the ones the new state plans, and
//! a periodic job claims the due ones, deleting them in the same transaction.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{LockBehavior, LockType};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};

use crate::entities::{records, timers};
use crate::{Error, now, truncate};

/// A transition to take on a record at `due_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedTimer {
    pub transition: String,
    pub due_at: DateTime<Utc>,
}

/// A timer taken out of the table by [`claim_due_timers`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueTimer {
    pub id: i64,
    pub record_id: i64,
    /// Number of the record, which the command path loads records by.
    pub number: String,
    pub transition: String,
    /// When the record entered the state that planned the timer: a record whose
    /// `state_changed_at` differs has left that state since, and the timer is stale.
    pub state_changed_at: DateTime<Utc>,
}

/// Deletes the pending timers of record `record_id` and inserts `plans`, inside a write job.
/// `state_changed_at` is the time the record entered the state that planned them.
pub async fn replace_timers<C: ConnectionTrait>(
    tx: &C,
    record_id: i64,
    plans: &[PlannedTimer],
    state_changed_at: DateTime<Utc>,
) -> Result<(), Error> {
    timers::Entity::delete_many()
        .filter(timers::Column::RecordId.eq(record_id))
        .exec(tx)
        .await?;
    if plans.is_empty() {
        return Ok(());
    }
    let created_at = now();
    let rows = plans.iter().map(|plan| timers::ActiveModel {
        record_id: Set(record_id),
        transition: Set(plan.transition.clone()),
        due_at: Set(truncate(plan.due_at)),
        state_changed_at: Set(truncate(state_changed_at)),
        created_at: Set(created_at),
        ..Default::default()
    });
    timers::Entity::insert_many(rows).exec(tx).await?;
    Ok(())
}

/// Takes up to `limit` timers due at or before `now`, earliest first, and deletes them,
/// inside a write job. On PostgreSQL the rows are selected `FOR UPDATE SKIP LOCKED`, so
/// nodes claiming at the same time get disjoint timers. SQLite needs no lock because its
/// write transaction is exclusive.
pub async fn claim_due_timers<C: ConnectionTrait>(
    tx: &C,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<DueTimer>, Error> {
    let mut query = timers::Entity::find()
        .filter(timers::Column::DueAt.lte(now))
        .order_by_asc(timers::Column::DueAt)
        .order_by_asc(timers::Column::Id)
        .limit(limit);
    if tx.get_database_backend() == DbBackend::Postgres {
        query = query.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    let due = query.all(tx).await?;
    if due.is_empty() {
        return Ok(Vec::new());
    }

    let ids: Vec<i64> = due.iter().map(|timer| timer.id).collect();
    timers::Entity::delete_many()
        .filter(timers::Column::Id.is_in(ids))
        .exec(tx)
        .await?;

    let record_ids: Vec<i64> = due.iter().map(|timer| timer.record_id).collect();
    let numbers: HashMap<i64, String> = records::Entity::find()
        .select_only()
        .column(records::Column::Id)
        .column(records::Column::Number)
        .filter(records::Column::Id.is_in(record_ids))
        .into_tuple::<(i64, String)>()
        .all(tx)
        .await?
        .into_iter()
        .collect();
    // The foreign key deletes a record's timers with it, so every timer has its record.
    Ok(due
        .into_iter()
        .filter_map(|timer| {
            let number = numbers.get(&timer.record_id)?.clone();
            Some(DueTimer {
                id: timer.id,
                record_id: timer.record_id,
                number,
                transition: timer.transition,
                state_changed_at: timer.state_changed_at,
            })
        })
        .collect())
}

impl crate::Store {
    /// Returns the pending timers of one record, earliest first.
    pub async fn timers_of(&self, record_id: i64) -> Result<Vec<PlannedTimer>, Error> {
        let rows = timers::Entity::find()
            .filter(timers::Column::RecordId.eq(record_id))
            .order_by_asc(timers::Column::DueAt)
            .all(self.db())
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| PlannedTimer {
                transition: row.transition,
                due_at: row.due_at,
            })
            .collect())
    }
}
