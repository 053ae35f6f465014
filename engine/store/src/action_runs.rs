//! Runs of plugin actions, one row each. A run is queued inside the write job that asks
//! for it, so it exists exactly when the request that journaled it committed. A node's
//! workers claim it, the node's heartbeat keeps it alive, and it ends with the plugin's
//! outcome.
//!
//! A node claims queued runs with `FOR UPDATE SKIP LOCKED` on PostgreSQL, so nodes take
//! disjoint runs; on SQLite the write job is exclusive. A claimed run holds a lease until
//! `lease_until`. A node that stops stops renewing, and [`expire_action_runs`] then queues
//! an idempotent run again or marks another run `interrupted`, so no run stays `running`
//! for longer than its lease after its node stopped.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, LockBehavior, LockType};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use serde_json::Value;

use crate::entities::action_runs;
use crate::{Error, Store, truncate};

/// State of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    TimedOut,
    /// Its node stopped while it ran, and the action is not idempotent.
    Interrupted,
}

impl RunStatus {
    pub const ALL: [RunStatus; 6] = [
        RunStatus::Queued,
        RunStatus::Running,
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::TimedOut,
        RunStatus::Interrupted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::TimedOut => "timed_out",
            RunStatus::Interrupted => "interrupted",
        }
    }

    /// Checks whether the run has ended.
    pub fn is_final(self) -> bool {
        !matches!(self, RunStatus::Queued | RunStatus::Running)
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunStatus {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        RunStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == value)
            .ok_or_else(|| format!("unknown action run status `{value}`"))
    }
}

/// A stored run.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ActionRun {
    pub id: i64,
    #[serde(skip)]
    pub record_id: Option<i64>,
    pub record_number: Option<String>,
    pub schedule: Option<String>,
    pub plugin: String,
    pub action: String,
    pub params: Value,
    pub actor: String,
    pub reason: Option<String>,
    pub status: RunStatus,
    pub idempotent: bool,
    pub timeout_seconds: i64,
    /// How often a node started the run: more than 1 after an idempotent run was queued
    /// again.
    pub attempts: i64,
    pub queued_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub lease_until: Option<DateTime<Utc>>,
    pub node: Option<String>,
    pub duration_ms: Option<i64>,
    pub summary: Option<String>,
    pub output: Option<String>,
    pub data: Value,
}

/// A run to queue with [`queue_action_run`].
#[derive(Debug, Clone, PartialEq)]
pub struct NewActionRun {
    pub record_id: Option<i64>,
    pub record_number: Option<String>,
    pub schedule: Option<String>,
    pub plugin: String,
    pub action: String,
    pub params: Value,
    pub actor: String,
    pub reason: Option<String>,
    pub idempotent: bool,
    pub timeout_seconds: i64,
    pub queued_at: DateTime<Utc>,
}

/// The end of a run, as [`finish_action_run`] stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct FinishedRun {
    pub status: RunStatus,
    pub finished_at: DateTime<Utc>,
    pub duration_ms: i64,
    pub summary: String,
    pub output: String,
    pub data: Value,
}

/// Queues a run inside a write job and returns its id.
pub async fn queue_action_run<C: ConnectionTrait>(
    tx: &C,
    run: &NewActionRun,
) -> Result<i64, Error> {
    let row = action_runs::ActiveModel {
        record_id: Set(run.record_id),
        record_number: Set(run.record_number.clone()),
        schedule: Set(run.schedule.clone()),
        plugin: Set(run.plugin.clone()),
        action: Set(run.action.clone()),
        params: Set(run.params.to_string()),
        actor: Set(run.actor.clone()),
        reason: Set(run.reason.clone()),
        status: Set(RunStatus::Queued.as_str().to_owned()),
        idempotent: Set(run.idempotent),
        timeout_seconds: Set(run.timeout_seconds),
        attempts: Set(0),
        queued_at: Set(truncate(run.queued_at)),
        started_at: Set(None),
        finished_at: Set(None),
        lease_until: Set(None),
        node: Set(None),
        duration_ms: Set(None),
        summary: Set(None),
        output: Set(None),
        data: Set(None),
        ..Default::default()
    };
    let inserted = action_runs::Entity::insert(row).exec(tx).await?;
    Ok(inserted.last_insert_id)
}

/// Claims up to `limit` queued runs for `node` inside a write job, oldest first: marks them
/// running with a lease until `lease_until` and counts the attempt.
pub async fn claim_action_runs<C: ConnectionTrait>(
    tx: &C,
    node: &str,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<ActionRun>, Error> {
    let mut query = action_runs::Entity::find()
        .filter(action_runs::Column::Status.eq(RunStatus::Queued.as_str()))
        .order_by_asc(action_runs::Column::Id)
        .limit(limit);
    if tx.get_database_backend() == DbBackend::Postgres {
        query = query.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    let rows = query.all(tx).await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let (now, lease_until) = (truncate(now), truncate(lease_until));
    let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
    action_runs::Entity::update_many()
        .col_expr(
            action_runs::Column::Status,
            Expr::value(RunStatus::Running.as_str()),
        )
        .col_expr(action_runs::Column::StartedAt, Expr::value(now))
        .col_expr(action_runs::Column::LeaseUntil, Expr::value(lease_until))
        .col_expr(action_runs::Column::Node, Expr::value(node))
        .col_expr(
            action_runs::Column::Attempts,
            Expr::col(action_runs::Column::Attempts).add(1),
        )
        .filter(action_runs::Column::Id.is_in(ids))
        .exec(tx)
        .await?;
    rows.into_iter()
        .map(|row| {
            let mut run = to_run(row)?;
            run.status = RunStatus::Running;
            run.started_at = Some(now);
            run.lease_until = Some(lease_until);
            run.node = Some(node.to_owned());
            run.attempts += 1;
            Ok(run)
        })
        .collect()
}

/// Pushes the lease of the runs `ids` that `node` still runs to `until`, inside a write
/// job. Returns how many it renewed.
pub async fn renew_action_leases<C: ConnectionTrait>(
    tx: &C,
    node: &str,
    ids: &[i64],
    until: DateTime<Utc>,
) -> Result<u64, Error> {
    if ids.is_empty() {
        return Ok(0);
    }
    let updated = action_runs::Entity::update_many()
        .col_expr(
            action_runs::Column::LeaseUntil,
            Expr::value(truncate(until)),
        )
        .filter(action_runs::Column::Id.is_in(ids.iter().copied()))
        .filter(action_runs::Column::Node.eq(node))
        .filter(action_runs::Column::Status.eq(RunStatus::Running.as_str()))
        .exec(tx)
        .await?;
    Ok(updated.rows_affected)
}

/// Stores the end of run `id` inside a write job, if `node` still runs it. Returns the
/// finished run, or `None` when the run is no longer this node's (its lease ran out and
/// it was queued again or marked interrupted).
pub async fn finish_action_run<C: ConnectionTrait>(
    tx: &C,
    id: i64,
    node: &str,
    finished: &FinishedRun,
) -> Result<Option<ActionRun>, Error> {
    let data = match &finished.data {
        Value::Null => None,
        data => Some(data.to_string()),
    };
    let updated = action_runs::Entity::update_many()
        .col_expr(
            action_runs::Column::Status,
            Expr::value(finished.status.as_str()),
        )
        .col_expr(
            action_runs::Column::FinishedAt,
            Expr::value(truncate(finished.finished_at)),
        )
        .col_expr(
            action_runs::Column::DurationMs,
            Expr::value(finished.duration_ms),
        )
        .col_expr(
            action_runs::Column::Summary,
            Expr::value(finished.summary.clone()),
        )
        .col_expr(
            action_runs::Column::Output,
            Expr::value(finished.output.clone()),
        )
        .col_expr(action_runs::Column::Data, Expr::value(data))
        .col_expr(
            action_runs::Column::LeaseUntil,
            Expr::value(None::<DateTime<Utc>>),
        )
        .filter(action_runs::Column::Id.eq(id))
        .filter(action_runs::Column::Node.eq(node))
        .filter(action_runs::Column::Status.eq(RunStatus::Running.as_str()))
        .exec(tx)
        .await?;
    if updated.rows_affected == 0 {
        return Ok(None);
    }
    action_runs::Entity::find_by_id(id)
        .one(tx)
        .await?
        .map(to_run)
        .transpose()
}

/// Ends the leases that ran out before `now`, inside a write job, for up to `limit` runs:
/// an idempotent run is queued again, another run is marked interrupted. Returns the
/// runs as they are afterwards.
pub async fn expire_action_runs<C: ConnectionTrait>(
    tx: &C,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<ActionRun>, Error> {
    let now = truncate(now);
    let mut query = action_runs::Entity::find()
        .filter(action_runs::Column::Status.eq(RunStatus::Running.as_str()))
        .filter(action_runs::Column::LeaseUntil.lt(now))
        .order_by_asc(action_runs::Column::LeaseUntil)
        .order_by_asc(action_runs::Column::Id)
        .limit(limit);
    if tx.get_database_backend() == DbBackend::Postgres {
        query = query.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    let rows = query.all(tx).await?;
    let mut expired = Vec::with_capacity(rows.len());
    for row in rows {
        let mut run = to_run(row)?;
        let mut update = action_runs::Entity::update_many()
            .col_expr(
                action_runs::Column::LeaseUntil,
                Expr::value(None::<DateTime<Utc>>),
            )
            .filter(action_runs::Column::Id.eq(run.id));
        if run.idempotent {
            update = update
                .col_expr(
                    action_runs::Column::Status,
                    Expr::value(RunStatus::Queued.as_str()),
                )
                .col_expr(action_runs::Column::Node, Expr::value(None::<String>));
            run.status = RunStatus::Queued;
            run.node = None;
        } else {
            let summary = format!(
                "Interrupted: node {} stopped while the run was in progress, and the action is not marked idempotent, so it is not run again",
                run.node.as_deref().unwrap_or("(unknown)")
            );
            update = update
                .col_expr(
                    action_runs::Column::Status,
                    Expr::value(RunStatus::Interrupted.as_str()),
                )
                .col_expr(action_runs::Column::FinishedAt, Expr::value(now))
                .col_expr(action_runs::Column::Summary, Expr::value(summary.clone()));
            run.status = RunStatus::Interrupted;
            run.finished_at = Some(now);
            run.summary = Some(summary);
        }
        update.exec(tx).await?;
        run.lease_until = None;
        expired.push(run);
    }
    Ok(expired)
}

fn to_run(row: action_runs::Model) -> Result<ActionRun, Error> {
    let what = || format!("action run {}", row.id);
    let status = row
        .status
        .parse()
        .map_err(|error: String| Error::corrupt(what(), error))?;
    let params =
        serde_json::from_str(&row.params).map_err(|error| Error::corrupt(what(), error))?;
    let data = match &row.data {
        Some(text) => serde_json::from_str(text).map_err(|error| Error::corrupt(what(), error))?,
        None => Value::Null,
    };
    Ok(ActionRun {
        id: row.id,
        record_id: row.record_id,
        record_number: row.record_number,
        schedule: row.schedule,
        plugin: row.plugin,
        action: row.action,
        params,
        actor: row.actor,
        reason: row.reason,
        status,
        idempotent: row.idempotent,
        timeout_seconds: row.timeout_seconds,
        attempts: row.attempts,
        queued_at: row.queued_at,
        started_at: row.started_at,
        finished_at: row.finished_at,
        lease_until: row.lease_until,
        node: row.node,
        duration_ms: row.duration_ms,
        summary: row.summary,
        output: row.output,
        data,
    })
}

impl Store {
    pub async fn action_run(&self, id: i64) -> Result<Option<ActionRun>, Error> {
        action_runs::Entity::find_by_id(id)
            .one(self.db())
            .await?
            .map(to_run)
            .transpose()
    }

    /// Lists the runs of a record, newest first, at most `limit`.
    pub async fn action_runs_of(
        &self,
        record_id: i64,
        limit: u64,
    ) -> Result<Vec<ActionRun>, Error> {
        action_runs::Entity::find()
            .filter(action_runs::Column::RecordId.eq(record_id))
            .order_by_desc(action_runs::Column::Id)
            .limit(limit)
            .all(self.db())
            .await?
            .into_iter()
            .map(to_run)
            .collect()
    }
}
