//! Durable timers: automatic transitions and SLA thresholds due at a fixed time, one row
//! each, read through the index on `due_at`. A write job that moves a record into a state
//! replaces the record's transition timers with the ones the new state plans, and a write
//! that changes its clocks replaces its SLA timers. A timer fires in the write job that
//! applies its effect, and that job deletes the row with [`consume_timer`]. So the effect
//! and the deletion commit together or not at all, and a timer that another node consumed
//! first is not fired again.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use crate::entities::{records, timers};
use crate::{Error, now, truncate};

/// A transition to take on a record at `due_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedTimer {
    pub transition: String,
    pub due_at: DateTime<Utc>,
}

/// The next threshold of an SLA clock, due at `due_at`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SlaTimer {
    pub policy: String,
    pub target: String,
    pub percent: u32,
    /// The target the threshold is a share of: a threshold fires once per target, and
    /// again for a new target.
    pub target_minutes: i64,
    pub due_at: DateTime<Utc>,
}

/// Kind of an automatic-transition timer.
pub const TRANSITION_TIMER: &str = "transition";
/// Kind of an SLA threshold timer.
pub const SLA_TIMER: &str = "sla";

/// A due timer read by [`due_timers`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueTimer {
    pub id: i64,
    pub record_id: i64,
    /// Number of the record, which the command path loads records by.
    pub number: String,
    pub due_at: DateTime<Utc>,
    /// Transition to take; empty for an SLA timer.
    pub transition: String,
    /// The threshold, for an SLA timer.
    pub sla: Option<SlaTimer>,
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
        .filter(timers::Column::Kind.eq(TRANSITION_TIMER))
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
        kind: Set(TRANSITION_TIMER.to_owned()),
        detail: Set(None),
        ..Default::default()
    });
    timers::Entity::insert_many(rows).exec(tx).await?;
    Ok(())
}

/// Deletes the SLA timers of record `record_id` and inserts `plans`, inside a write job.
pub async fn replace_sla_timers<C: ConnectionTrait>(
    tx: &C,
    record_id: i64,
    plans: &[SlaTimer],
) -> Result<(), Error> {
    timers::Entity::delete_many()
        .filter(timers::Column::RecordId.eq(record_id))
        .filter(timers::Column::Kind.eq(SLA_TIMER))
        .exec(tx)
        .await?;
    if plans.is_empty() {
        return Ok(());
    }
    let created_at = now();
    let mut rows = Vec::with_capacity(plans.len());
    for plan in plans {
        rows.push(timers::ActiveModel {
            record_id: Set(record_id),
            transition: Set(String::new()),
            due_at: Set(truncate(plan.due_at)),
            state_changed_at: Set(created_at),
            created_at: Set(created_at),
            kind: Set(SLA_TIMER.to_owned()),
            detail: Set(Some(
                serde_json::to_string(plan)
                    .map_err(|error| Error::corrupt("SLA timer", error.to_string()))?,
            )),
            ..Default::default()
        });
    }
    timers::Entity::insert_many(rows).exec(tx).await?;
    Ok(())
}

/// Deletes timer `id` inside the write job that fires it. Returns false when the timer is
/// gone, because another node fired it or a write replaced it: the caller must then roll
/// back, so that the timer's effect is not applied twice.
pub async fn consume_timer<C: ConnectionTrait>(tx: &C, id: i64) -> Result<bool, Error> {
    let deleted = timers::Entity::delete_many()
        .filter(timers::Column::Id.eq(id))
        .exec(tx)
        .await?;
    Ok(deleted.rows_affected == 1)
}

/// Reads up to `limit` timers due at or before `now`, earliest first, through the index on
/// `due_at`. Reading takes nothing: the write that fires a timer consumes it, so nodes
/// reading the same timers fire each once.
pub async fn due_timers<C: ConnectionTrait>(
    db: &C,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<DueTimer>, Error> {
    let due = timers::Entity::find()
        .filter(timers::Column::DueAt.lte(now))
        .order_by_asc(timers::Column::DueAt)
        .order_by_asc(timers::Column::Id)
        .limit(limit)
        .all(db)
        .await?;
    if due.is_empty() {
        return Ok(Vec::new());
    }
    let record_ids: Vec<i64> = due.iter().map(|timer| timer.record_id).collect();
    let numbers: HashMap<i64, String> = records::Entity::find()
        .select_only()
        .column(records::Column::Id)
        .column(records::Column::Number)
        .filter(records::Column::Id.is_in(record_ids))
        .into_tuple::<(i64, String)>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    let mut timers = Vec::with_capacity(due.len());
    // The foreign key deletes a record's timers with it, so every timer has its record.
    for timer in due {
        let Some(number) = numbers.get(&timer.record_id) else {
            continue;
        };
        let sla = match (&*timer.kind, &timer.detail) {
            (SLA_TIMER, Some(detail)) => {
                Some(serde_json::from_str::<SlaTimer>(detail).map_err(|error| {
                    Error::corrupt("SLA timer", format!("timer {}: {error}", timer.id))
                })?)
            }
            _ => None,
        };
        timers.push(DueTimer {
            id: timer.id,
            record_id: timer.record_id,
            number: number.clone(),
            due_at: timer.due_at,
            transition: timer.transition,
            sla,
            state_changed_at: timer.state_changed_at,
        });
    }
    Ok(timers)
}

impl crate::Store {
    /// Returns the pending timers of one record, earliest first.
    pub async fn timers_of(&self, record_id: i64) -> Result<Vec<PlannedTimer>, Error> {
        let rows = timers::Entity::find()
            .filter(timers::Column::RecordId.eq(record_id))
            .filter(timers::Column::Kind.eq(TRANSITION_TIMER))
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

    /// Returns the pending SLA timers of one record, earliest first.
    pub async fn sla_timers_of(&self, record_id: i64) -> Result<Vec<SlaTimer>, Error> {
        let rows = timers::Entity::find()
            .filter(timers::Column::RecordId.eq(record_id))
            .filter(timers::Column::Kind.eq(SLA_TIMER))
            .order_by_asc(timers::Column::DueAt)
            .all(self.db())
            .await?;
        rows.into_iter()
            .filter_map(|row| row.detail)
            .map(|detail| {
                serde_json::from_str(&detail)
                    .map_err(|error| Error::corrupt("SLA timer", error.to_string()))
            })
            .collect()
    }

    /// Counts the timers due at or before `now`.
    pub async fn count_due_timers(&self, now: DateTime<Utc>) -> Result<u64, Error> {
        use sea_orm::PaginatorTrait;
        Ok(timers::Entity::find()
            .filter(timers::Column::DueAt.lte(now))
            .count(self.db())
            .await?)
    }
}
