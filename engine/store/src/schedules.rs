//! Runs of cron schedules (`workflows/schedules/`): one row per schedule and due time,
//! unique on the pair. A node that inserts the row owns the run; a node whose insert finds
//! the row leaves the due time alone. The row with the latest due time of a schedule is
//! where its next run is computed from, so a restarted server neither runs a due time again
//! nor back-fills times from before the schedule was first seen.
//!
//! NOTE: rows are never deleted, so the table grows by one row per run (half a million a
//! year for a schedule due every minute). Only the latest row of a schedule is read for
//! the next run, through the unique index.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, LockBehavior, LockType, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, UpdateMany,
};

use crate::entities::schedule_runs;
use crate::{Error, Store, truncate};

/// Outcome of a due time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunOutcome {
    /// A node took the run and is opening its record.
    Claimed,
    /// The run opened its record.
    Opened,
    /// The run applied its rule to the records it selected; the row keeps a summary.
    Ran,
    /// The create of the record was rejected; the row keeps the reason.
    Failed,
    /// The due times missed while no node ran, under `missed: skip`.
    Skipped,
    /// The schedule was first seen, or its expression or time zone changed, at this time:
    /// nothing ran, and runs follow from here.
    Started,
}

impl RunOutcome {
    pub const ALL: [RunOutcome; 6] = [
        RunOutcome::Claimed,
        RunOutcome::Opened,
        RunOutcome::Ran,
        RunOutcome::Failed,
        RunOutcome::Skipped,
        RunOutcome::Started,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Claimed => "claimed",
            RunOutcome::Opened => "opened",
            RunOutcome::Ran => "ran",
            RunOutcome::Failed => "failed",
            RunOutcome::Skipped => "skipped",
            RunOutcome::Started => "started",
        }
    }
}

impl fmt::Display for RunOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunOutcome {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        RunOutcome::ALL
            .into_iter()
            .find(|outcome| outcome.as_str() == value)
            .ok_or_else(|| format!("unknown schedule run outcome `{value}`"))
    }
}

/// A stored row of `schedule_runs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleRun {
    pub id: i64,
    pub schedule: String,
    /// The due time, or for [`RunOutcome::Started`] the time runs follow from.
    pub due_at: DateTime<Utc>,
    pub outcome: RunOutcome,
    /// The record the run opened.
    pub record_number: Option<String>,
    /// When a node took the run, or took it over from a node that stopped.
    pub ran_at: DateTime<Utc>,
    /// The run started after its grace period, because no node ran at its due time.
    pub late: bool,
    /// Number of due times that passed while no node ran and that this row covers: those a
    /// late run catches up with, or those a skip leaves out. 0 for a run on time.
    pub missed: i64,
    /// The expression and time zone the due time was computed with.
    pub cron: String,
    pub timezone: String,
    /// Reason the record could not be opened, or the rule not run.
    pub error: Option<String>,
    /// What a run of a `run_rule` schedule did.
    pub summary: Option<String>,
}

/// A row to insert with [`insert_schedule_run`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewScheduleRun {
    pub schedule: String,
    pub due_at: DateTime<Utc>,
    pub outcome: RunOutcome,
    pub ran_at: DateTime<Utc>,
    pub late: bool,
    pub missed: i64,
    pub cron: String,
    pub timezone: String,
}

/// Inserts `run` inside a write job, unless its schedule already has a row for its due
/// time. Returns whether the row was inserted: for [`RunOutcome::Claimed`], whether this
/// node owns the run. On PostgreSQL an insert that meets another node's uncommitted row
/// waits for that node's transaction, so exactly one of them inserts.
pub async fn insert_schedule_run<C: ConnectionTrait>(
    tx: &C,
    run: &NewScheduleRun,
) -> Result<bool, Error> {
    let row = schedule_runs::ActiveModel {
        schedule: Set(run.schedule.clone()),
        due_at: Set(truncate(run.due_at)),
        outcome: Set(run.outcome.as_str().to_owned()),
        record_number: Set(None),
        ran_at: Set(truncate(run.ran_at)),
        late: Set(run.late),
        missed: Set(run.missed),
        cron: Set(run.cron.clone()),
        timezone: Set(run.timezone.clone()),
        error: Set(None),
        summary: Set(None),
        ..Default::default()
    };
    let inserted = schedule_runs::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([
                schedule_runs::Column::Schedule,
                schedule_runs::Column::DueAt,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(tx)
        .await?;
    Ok(inserted == 1)
}

/// Records the end of a claimed run inside a write job: `Ok(number)` when it opened record
/// `number`, `Err(reason)` when its create was rejected. Returns false, changing nothing,
/// when the run is not claimed (another node finished it).
pub async fn finish_schedule_run<C: ConnectionTrait>(
    tx: &C,
    schedule: &str,
    due_at: DateTime<Utc>,
    result: Result<&str, &str>,
) -> Result<bool, Error> {
    let (outcome, number, error) = match result {
        Ok(number) => (RunOutcome::Opened, Some(number.to_owned()), None),
        Err(reason) => (RunOutcome::Failed, None, Some(reason.to_owned())),
    };
    let updated = update_claimed(schedule, due_at)
        .col_expr(
            schedule_runs::Column::Outcome,
            Expr::value(outcome.as_str()),
        )
        .col_expr(schedule_runs::Column::RecordNumber, Expr::value(number))
        .col_expr(schedule_runs::Column::Error, Expr::value(error))
        .exec(tx)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// Records the end of a claimed run of a `run_rule` schedule inside a write job, with the
/// summary of what it did. Returns false, changing nothing, when the run is not claimed.
pub async fn finish_rule_run<C: ConnectionTrait>(
    tx: &C,
    schedule: &str,
    due_at: DateTime<Utc>,
    summary: &str,
) -> Result<bool, Error> {
    let updated = update_claimed(schedule, due_at)
        .col_expr(
            schedule_runs::Column::Outcome,
            Expr::value(RunOutcome::Ran.as_str()),
        )
        .col_expr(schedule_runs::Column::Summary, Expr::value(summary))
        .exec(tx)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// Stamps a claimed run with `now` inside a write job, as the heartbeat of a node that is
/// still working on it, so that no other node takes it over. Returns false when the run
/// is no longer claimed.
pub async fn renew_schedule_run<C: ConnectionTrait>(
    tx: &C,
    schedule: &str,
    due_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool, Error> {
    let updated = update_claimed(schedule, due_at)
        .col_expr(schedule_runs::Column::RanAt, Expr::value(truncate(now)))
        .exec(tx)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// Starts an update of the run of `schedule` due at `due_at`, if it is still claimed.
fn update_claimed(schedule: &str, due_at: DateTime<Utc>) -> UpdateMany<schedule_runs::Entity> {
    schedule_runs::Entity::update_many()
        .filter(schedule_runs::Column::Schedule.eq(schedule))
        .filter(schedule_runs::Column::DueAt.eq(truncate(due_at)))
        .filter(schedule_runs::Column::Outcome.eq(RunOutcome::Claimed.as_str()))
}

/// Takes over up to `limit` runs claimed before `stale_before` and not finished: runs whose
/// node stopped between the claim and the record. Taking over stamps `ran_at` with `now`,
/// so a run taken over and not finished is taken over again after the same wait. On
/// PostgreSQL the rows are selected `FOR UPDATE SKIP LOCKED`, so nodes take disjoint runs.
pub async fn claim_stale_schedule_runs<C: ConnectionTrait>(
    tx: &C,
    stale_before: DateTime<Utc>,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<ScheduleRun>, Error> {
    let mut query = schedule_runs::Entity::find()
        .filter(schedule_runs::Column::Outcome.eq(RunOutcome::Claimed.as_str()))
        .filter(schedule_runs::Column::RanAt.lt(truncate(stale_before)))
        .order_by_asc(schedule_runs::Column::DueAt)
        .order_by_asc(schedule_runs::Column::Id)
        .limit(limit);
    if tx.get_database_backend() == DbBackend::Postgres {
        query = query.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    let rows = query.all(tx).await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let now = truncate(now);
    let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
    schedule_runs::Entity::update_many()
        .col_expr(schedule_runs::Column::RanAt, Expr::value(now))
        .filter(schedule_runs::Column::Id.is_in(ids))
        .exec(tx)
        .await?;
    rows.into_iter()
        .map(|row| {
            let mut run = to_run(row)?;
            run.ran_at = now;
            Ok(run)
        })
        .collect()
}

fn to_run(row: schedule_runs::Model) -> Result<ScheduleRun, Error> {
    let outcome = row.outcome.parse().map_err(|error: String| {
        Error::corrupt(
            format!("run of schedule `{}` due {}", row.schedule, row.due_at),
            error,
        )
    })?;
    Ok(ScheduleRun {
        id: row.id,
        schedule: row.schedule,
        due_at: row.due_at,
        outcome,
        record_number: row.record_number,
        ran_at: row.ran_at,
        late: row.late,
        missed: row.missed,
        cron: row.cron,
        timezone: row.timezone,
        error: row.error,
        summary: row.summary,
    })
}

impl Store {
    /// Returns the row of `schedule` with the latest due time, which the next run is
    /// computed from, or `None` for a schedule never seen.
    pub async fn last_schedule_run(&self, schedule: &str) -> Result<Option<ScheduleRun>, Error> {
        schedule_runs::Entity::find()
            .filter(schedule_runs::Column::Schedule.eq(schedule))
            .order_by_desc(schedule_runs::Column::DueAt)
            .order_by_desc(schedule_runs::Column::Id)
            .one(self.db())
            .await?
            .map(to_run)
            .transpose()
    }

    /// Lists the rows of `schedule`, earliest due time first.
    pub async fn schedule_runs(&self, schedule: &str) -> Result<Vec<ScheduleRun>, Error> {
        schedule_runs::Entity::find()
            .filter(schedule_runs::Column::Schedule.eq(schedule))
            .order_by_asc(schedule_runs::Column::DueAt)
            .order_by_asc(schedule_runs::Column::Id)
            .all(self.db())
            .await?
            .into_iter()
            .map(to_run)
            .collect()
    }
}
