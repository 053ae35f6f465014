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
//!
//! A run of an action that needs an approval is stored as `awaiting_approval` and queued
//! only by [`decide_action_run`]. A run with a window (an authorised change's) is claimed
//! only inside it, and [`expire_closed_windows`] ends it when the window closes first.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, LockBehavior, LockType};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use serde_json::Value;

use crate::entities::action_runs;
use crate::{Error, Store, truncate};

/// State of a run.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// The action needs an approval, and no approver has decided yet.
    AwaitingApproval,
    #[default]
    Queued,
    Running,
    Succeeded,
    Failed,
    TimedOut,
    /// Its node stopped while it ran, and the action is not idempotent.
    Interrupted,
    /// An approver rejected it, so it never ran.
    Rejected,
    /// Its window ended before a node could start it.
    Expired,
}

impl RunStatus {
    pub const ALL: [RunStatus; 9] = [
        RunStatus::AwaitingApproval,
        RunStatus::Queued,
        RunStatus::Running,
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::TimedOut,
        RunStatus::Interrupted,
        RunStatus::Rejected,
        RunStatus::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::AwaitingApproval => "awaiting_approval",
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::TimedOut => "timed_out",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Rejected => "rejected",
            RunStatus::Expired => "expired",
        }
    }

    /// Checks whether the run has ended.
    pub fn is_final(self) -> bool {
        !matches!(
            self,
            RunStatus::AwaitingApproval | RunStatus::Queued | RunStatus::Running
        )
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
    /// The window the run may start in, for a run on an authorised change.
    pub not_before: Option<DateTime<Utc>>,
    pub not_after: Option<DateTime<Utc>>,
    /// The approver who approved or rejected the run, or `change:NUMBER` when the
    /// authorised change is its approval.
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decision_note: Option<String>,
}

/// A run to queue with [`queue_action_run`].
#[derive(Debug, Clone, Default, PartialEq)]
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
    /// `Queued`, or `AwaitingApproval` for an action that needs an approval.
    pub status: RunStatus,
    pub not_before: Option<DateTime<Utc>>,
    pub not_after: Option<DateTime<Utc>>,
    /// Set when the run is approved as it is queued (the authorised change).
    pub decided_by: Option<String>,
    pub decision_note: Option<String>,
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
        status: Set(run.status.as_str().to_owned()),
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
        not_before: Set(run.not_before.map(truncate)),
        not_after: Set(run.not_after.map(truncate)),
        decided_by: Set(run.decided_by.clone()),
        decided_at: Set(run.decided_by.as_ref().map(|_| truncate(run.queued_at))),
        decision_note: Set(run.decision_note.clone()),
        ..Default::default()
    };
    let inserted = action_runs::Entity::insert(row).exec(tx).await?;
    Ok(inserted.last_insert_id)
}

/// Claims up to `limit` queued runs for `node` inside a write job, oldest first: marks them
/// running with a lease until `lease_until` and counts the attempt. A run whose window
/// opens after `now` waits.
pub async fn claim_action_runs<C: ConnectionTrait>(
    tx: &C,
    node: &str,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<ActionRun>, Error> {
    let mut query = action_runs::Entity::find()
        .filter(action_runs::Column::Status.eq(RunStatus::Queued.as_str()))
        .filter(
            Condition::any()
                .add(action_runs::Column::NotBefore.is_null())
                .add(action_runs::Column::NotBefore.lte(truncate(now))),
        )
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

/// Records a decision on run `id`, which must await an approval, inside a write job:
/// approved runs are queued, rejected ones end. Returns the run as it is afterwards, or
/// `None` when it does not await an approval (any more).
pub async fn decide_action_run<C: ConnectionTrait>(
    tx: &C,
    id: i64,
    approve: bool,
    by: &str,
    note: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Option<ActionRun>, Error> {
    let now = truncate(now);
    let status = if approve {
        RunStatus::Queued
    } else {
        RunStatus::Rejected
    };
    let mut update = action_runs::Entity::update_many()
        .col_expr(action_runs::Column::Status, Expr::value(status.as_str()))
        .col_expr(action_runs::Column::DecidedBy, Expr::value(by))
        .col_expr(action_runs::Column::DecidedAt, Expr::value(now))
        .col_expr(
            action_runs::Column::DecisionNote,
            Expr::value(note.map(str::to_owned)),
        )
        .filter(action_runs::Column::Id.eq(id))
        .filter(action_runs::Column::Status.eq(RunStatus::AwaitingApproval.as_str()));
    if !approve {
        let summary = format!("Rejected by {by}: {}", note.unwrap_or("no reason given"));
        update = update
            .col_expr(action_runs::Column::FinishedAt, Expr::value(now))
            .col_expr(action_runs::Column::Summary, Expr::value(summary));
    }
    if update.exec(tx).await?.rows_affected == 0 {
        return Ok(None);
    }
    let row = action_runs::Entity::find_by_id(id).one(tx).await?;
    row.map(to_run).transpose()
}

/// Ends the queued runs whose window closed before `now`, inside a write job, for up to
/// `limit` runs, and returns them.
pub async fn expire_closed_windows<C: ConnectionTrait>(
    tx: &C,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<ActionRun>, Error> {
    let now = truncate(now);
    let mut query = action_runs::Entity::find()
        .filter(action_runs::Column::Status.is_in([
            RunStatus::Queued.as_str(),
            RunStatus::AwaitingApproval.as_str(),
        ]))
        .filter(action_runs::Column::NotAfter.lt(now))
        .order_by_asc(action_runs::Column::Id)
        .limit(limit);
    if tx.get_database_backend() == DbBackend::Postgres {
        query = query.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    let rows = query.all(tx).await?;
    let mut expired = Vec::with_capacity(rows.len());
    for row in rows {
        let mut run = to_run(row)?;
        let summary = format!(
            "Expired: the window ended at {} before the run could start",
            run.not_after
                .map(|end| end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default()
        );
        action_runs::Entity::update_many()
            .col_expr(
                action_runs::Column::Status,
                Expr::value(RunStatus::Expired.as_str()),
            )
            .col_expr(action_runs::Column::FinishedAt, Expr::value(now))
            .col_expr(action_runs::Column::Summary, Expr::value(summary.clone()))
            .filter(action_runs::Column::Id.eq(run.id))
            .exec(tx)
            .await?;
        run.status = RunStatus::Expired;
        run.finished_at = Some(now);
        run.summary = Some(summary);
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
        not_before: row.not_before,
        not_after: row.not_after,
        decided_by: row.decided_by,
        decided_at: row.decided_at,
        decision_note: row.decision_note,
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
