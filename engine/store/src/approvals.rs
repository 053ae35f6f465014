//! Approval rounds and their requests. The command path decides what a round needs and
//! when it is complete. These functions store it, inside the same write job as the
//! record's journal entries.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, LockBehavior, LockType};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use serde::Serialize;

use crate::entities::{approval_requests, approval_rounds, records};
use crate::{Error, truncate};

/// Status names shared with the workflow crate's `ApprovalStatus`.
pub const PENDING: &str = "pending";
pub const CANCELLED: &str = "cancelled";
pub const EXPIRED: &str = "expired";

/// A round to open.
#[derive(Debug, Clone)]
pub struct NewRound {
    pub round: i64,
    pub transition: String,
    pub required: i64,
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
    pub due_at: Option<DateTime<Utc>>,
    pub comment: Option<String>,
    /// One request per vote: who it is shown as, and the users who may cast it.
    pub requests: Vec<(String, Vec<String>)>,
}

/// A stored round with its requests, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Round {
    pub id: i64,
    #[serde(skip)]
    pub record_id: i64,
    pub round: i64,
    pub transition: String,
    pub status: String,
    pub required: i64,
    pub total: i64,
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
    pub due_at: Option<DateTime<Utc>>,
    pub comment: Option<String>,
    pub escalated: bool,
    pub completed_at: Option<DateTime<Utc>>,
    pub requests: Vec<Request>,
}

/// One vote of a round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Request {
    pub id: i64,
    #[serde(skip)]
    pub round_id: i64,
    pub approver: String,
    pub users: Vec<String>,
    pub status: String,
    pub escalation: bool,
    pub decided_by: Option<String>,
    pub reason: String,
    pub decided_at: Option<DateTime<Utc>>,
}

impl Round {
    /// Lists the requests that count now: the escalation requests once the round escalated.
    pub fn counting(&self) -> impl Iterator<Item = &Request> {
        self.requests
            .iter()
            .filter(move |r| r.escalation == self.escalated)
    }

    pub fn is_pending(&self) -> bool {
        self.status == PENDING
    }
}

/// A pending request of a user, with the record it is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PendingApproval {
    pub number: String,
    pub title: String,
    pub process: String,
    pub round: i64,
    pub transition: String,
    pub due_at: Option<DateTime<Utc>>,
    pub request: Request,
}

/// A round whose deadline passed, claimed by [`claim_due_rounds`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueRound {
    pub number: String,
    pub round: i64,
}

fn users_column(users: &[String]) -> String {
    format!(",{},", users.join(","))
}

fn request_view(row: approval_requests::Model) -> Request {
    Request {
        id: row.id,
        round_id: row.round_id,
        approver: row.approver,
        users: row
            .users
            .split(',')
            .filter(|u| !u.is_empty())
            .map(str::to_owned)
            .collect(),
        status: row.status,
        escalation: row.escalation,
        decided_by: row.decided_by,
        reason: row.reason,
        decided_at: row.decided_at,
    }
}

fn round_view(row: approval_rounds::Model, requests: Vec<Request>) -> Round {
    Round {
        id: row.id,
        record_id: row.record_id,
        round: row.round,
        transition: row.transition,
        status: row.status,
        required: row.required,
        total: row.total,
        requested_by: row.requested_by,
        requested_at: row.requested_at,
        due_at: row.due_at,
        comment: row.comment,
        escalated: row.escalated,
        completed_at: row.completed_at,
        requests,
    }
}

/// Opens a round for record `record_id` with its requests. A round number that the record
/// already has (another writer opened one first) fails with a conflict.
pub async fn open_round<C: ConnectionTrait>(
    tx: &C,
    record_id: i64,
    number: &str,
    new: &NewRound,
) -> Result<i64, Error> {
    let taken = approval_rounds::Entity::find()
        .filter(approval_rounds::Column::RecordId.eq(record_id))
        .filter(approval_rounds::Column::Round.eq(new.round))
        .one(tx)
        .await?;
    if taken.is_some() {
        return Err(Error::Conflict {
            number: number.to_owned(),
            expected: new.round,
            found: new.round,
        });
    }
    let round = approval_rounds::ActiveModel {
        record_id: Set(record_id),
        round: Set(new.round),
        transition: Set(new.transition.clone()),
        status: Set(PENDING.to_owned()),
        required: Set(new.required),
        total: Set(i64::try_from(new.requests.len()).unwrap_or(i64::MAX)),
        requested_by: Set(new.requested_by.clone()),
        requested_at: Set(truncate(new.requested_at)),
        due_at: Set(new.due_at.map(truncate)),
        comment: Set(new.comment.clone()),
        escalated: Set(false),
        completed_at: Set(None),
        ..Default::default()
    };
    let round_id = approval_rounds::Entity::insert(round)
        .exec(tx)
        .await?
        .last_insert_id;
    insert_requests(tx, round_id, record_id, &new.requests, false).await?;
    Ok(round_id)
}

async fn insert_requests<C: ConnectionTrait>(
    tx: &C,
    round_id: i64,
    record_id: i64,
    requests: &[(String, Vec<String>)],
    escalation: bool,
) -> Result<(), Error> {
    if requests.is_empty() {
        return Ok(());
    }
    let rows = requests
        .iter()
        .map(|(approver, users)| approval_requests::ActiveModel {
            round_id: Set(round_id),
            record_id: Set(record_id),
            approver: Set(approver.clone()),
            users: Set(users_column(users)),
            status: Set(PENDING.to_owned()),
            escalation: Set(escalation),
            decided_by: Set(None),
            reason: Set(String::new()),
            decided_at: Set(None),
            ..Default::default()
        });
    approval_requests::Entity::insert_many(rows)
        .exec(tx)
        .await?;
    Ok(())
}

/// Loads the rounds of a record, oldest first, each with its requests.
pub async fn rounds_of<C: ConnectionTrait>(tx: &C, record_id: i64) -> Result<Vec<Round>, Error> {
    let rounds = approval_rounds::Entity::find()
        .filter(approval_rounds::Column::RecordId.eq(record_id))
        .order_by_asc(approval_rounds::Column::Round)
        .all(tx)
        .await?;
    if rounds.is_empty() {
        return Ok(Vec::new());
    }
    let mut requests = approval_requests::Entity::find()
        .filter(approval_requests::Column::RecordId.eq(record_id))
        .order_by_asc(approval_requests::Column::Id)
        .all(tx)
        .await?;
    Ok(rounds
        .into_iter()
        .map(|round| {
            let mine: Vec<Request> = requests
                .extract_if(.., |r| r.round_id == round.id)
                .map(request_view)
                .collect();
            round_view(round, mine)
        })
        .collect())
}

/// Records a decision on a pending request. Fails with a conflict when the request was
/// decided or closed since it was read.
pub async fn decide_request<C: ConnectionTrait>(
    tx: &C,
    number: &str,
    request_id: i64,
    status: &str,
    decided_by: &str,
    reason: &str,
    at: DateTime<Utc>,
) -> Result<(), Error> {
    let updated = approval_requests::Entity::update_many()
        .col_expr(approval_requests::Column::Status, Expr::value(status))
        .col_expr(
            approval_requests::Column::DecidedBy,
            Expr::value(decided_by.to_owned()),
        )
        .col_expr(approval_requests::Column::Reason, Expr::value(reason))
        .col_expr(
            approval_requests::Column::DecidedAt,
            Expr::value(truncate(at)),
        )
        .filter(approval_requests::Column::Id.eq(request_id))
        .filter(approval_requests::Column::Status.eq(PENDING))
        .exec(tx)
        .await?;
    if updated.rows_affected != 1 {
        return Err(Error::Conflict {
            number: number.to_owned(),
            expected: request_id,
            found: request_id,
        });
    }
    Ok(())
}

/// Ends a pending round with `status` and cancels its undecided requests, so that they
/// leave the approvers' queues. Fails with a conflict when the round already ended.
pub async fn complete_round<C: ConnectionTrait>(
    tx: &C,
    number: &str,
    round_id: i64,
    status: &str,
    at: DateTime<Utc>,
) -> Result<(), Error> {
    let updated = approval_rounds::Entity::update_many()
        .col_expr(approval_rounds::Column::Status, Expr::value(status))
        .col_expr(
            approval_rounds::Column::CompletedAt,
            Expr::value(truncate(at)),
        )
        .col_expr(
            approval_rounds::Column::DueAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(approval_rounds::Column::Id.eq(round_id))
        .filter(approval_rounds::Column::Status.eq(PENDING))
        .exec(tx)
        .await?;
    if updated.rows_affected != 1 {
        return Err(Error::Conflict {
            number: number.to_owned(),
            expected: round_id,
            found: round_id,
        });
    }
    approval_requests::Entity::update_many()
        .col_expr(approval_requests::Column::Status, Expr::value(CANCELLED))
        .filter(approval_requests::Column::RoundId.eq(round_id))
        .filter(approval_requests::Column::Status.eq(PENDING))
        .exec(tx)
        .await?;
    Ok(())
}

/// Moves a round past its deadline to the escalation approvers: its open requests expire
/// and new ones go to `requests`.
pub async fn escalate_round<C: ConnectionTrait>(
    tx: &C,
    round_id: i64,
    record_id: i64,
    requests: &[(String, Vec<String>)],
) -> Result<(), Error> {
    approval_requests::Entity::update_many()
        .col_expr(approval_requests::Column::Status, Expr::value(EXPIRED))
        .filter(approval_requests::Column::RoundId.eq(round_id))
        .filter(approval_requests::Column::Status.eq(PENDING))
        .exec(tx)
        .await?;
    approval_rounds::Entity::update_many()
        .col_expr(approval_rounds::Column::Escalated, Expr::value(true))
        .col_expr(
            approval_rounds::Column::DueAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(approval_rounds::Column::Id.eq(round_id))
        .exec(tx)
        .await?;
    insert_requests(tx, round_id, record_id, requests, true).await
}

/// Claims up to `limit` pending rounds whose deadline is at or before `now`, earliest
/// first, by clearing their `due_at`, so that each deadline is handled once. On PostgreSQL
/// the rows are selected `FOR UPDATE SKIP LOCKED`.
pub async fn claim_due_rounds<C: ConnectionTrait>(
    tx: &C,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<DueRound>, Error> {
    let mut query = approval_rounds::Entity::find()
        .filter(approval_rounds::Column::DueAt.lte(now))
        .filter(approval_rounds::Column::Status.eq(PENDING))
        .order_by_asc(approval_rounds::Column::DueAt)
        .order_by_asc(approval_rounds::Column::Id)
        .limit(limit);
    if tx.get_database_backend() == DbBackend::Postgres {
        query = query.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    let due = query.all(tx).await?;
    if due.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = due.iter().map(|r| r.id).collect();
    approval_rounds::Entity::update_many()
        .col_expr(
            approval_rounds::Column::DueAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(approval_rounds::Column::Id.is_in(ids))
        .exec(tx)
        .await?;
    let record_ids: Vec<i64> = due.iter().map(|r| r.record_id).collect();
    let numbers: std::collections::HashMap<i64, String> = records::Entity::find()
        .select_only()
        .column(records::Column::Id)
        .column(records::Column::Number)
        .filter(records::Column::Id.is_in(record_ids))
        .into_tuple::<(i64, String)>()
        .all(tx)
        .await?
        .into_iter()
        .collect();
    Ok(due
        .into_iter()
        .filter_map(|round| {
            Some(DueRound {
                number: numbers.get(&round.record_id)?.clone(),
                round: round.round,
            })
        })
        .collect())
}

impl crate::Store {
    /// Returns the approval rounds of one record, oldest first.
    pub async fn approval_rounds(&self, record_id: i64) -> Result<Vec<Round>, Error> {
        rounds_of(self.db(), record_id).await
    }

    /// Lists the pending requests that `user` may decide, oldest first.
    pub async fn pending_approvals(&self, user: &str) -> Result<Vec<PendingApproval>, Error> {
        // `_` in a user name matches any character in LIKE; the exact check below drops
        // such near misses.
        let pattern = format!("%,{},%", user.replace(['%', ','], ""));
        let requests = approval_requests::Entity::find()
            .filter(approval_requests::Column::Status.eq(PENDING))
            .filter(approval_requests::Column::Users.like(pattern))
            .order_by_asc(approval_requests::Column::Id)
            .all(self.db())
            .await?;
        let mut pending = Vec::with_capacity(requests.len());
        for request in requests {
            let request = request_view(request);
            if !request.users.iter().any(|u| u == user) {
                continue;
            }
            let Some(round) = approval_rounds::Entity::find_by_id(request.round_id)
                .one(self.db())
                .await?
            else {
                continue;
            };
            let Some(record) = records::Entity::find_by_id(round.record_id)
                .one(self.db())
                .await?
            else {
                continue;
            };
            pending.push(PendingApproval {
                number: record.number,
                title: record.title,
                process: record.process,
                round: round.round,
                transition: round.transition,
                due_at: round.due_at,
                request,
            });
        }
        Ok(pending)
    }
}
