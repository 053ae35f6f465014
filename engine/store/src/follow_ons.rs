//! Work left for after a write's commit (rule follow-ons, reactions of linked records),
//! queued in the write's own transaction so that a node that stops before doing it leaves
//! it for another run.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, LockBehavior, LockType};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};

use crate::entities::{follow_ons, records};
use crate::{Error, now, truncate};

/// Queued work taken up again by [`claim_stale_follow_ons`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedFollowOn {
    pub id: i64,
    pub number: String,
    pub payload: String,
}

/// Queues work for record `record_id` inside a write job and returns its id.
pub async fn queue_follow_on<C: ConnectionTrait>(
    tx: &C,
    record_id: i64,
    payload: &str,
) -> Result<i64, Error> {
    let row = follow_ons::ActiveModel {
        record_id: Set(record_id),
        payload: Set(payload.to_owned()),
        created_at: Set(now()),
        claimed_at: Set(None),
        ..Default::default()
    };
    Ok(follow_ons::Entity::insert(row)
        .exec(tx)
        .await?
        .last_insert_id)
}

/// Removes done work.
pub async fn finish_follow_on<C: ConnectionTrait>(tx: &C, id: i64) -> Result<(), Error> {
    follow_ons::Entity::delete_by_id(id).exec(tx).await?;
    Ok(())
}

/// Claims up to `limit` queued items created before `stale_before` and not claimed since
/// then, oldest first: work whose node stopped before doing it. Claiming stamps
/// `claimed_at`, so a claim that is not finished is retried after the same wait. On
/// PostgreSQL the rows are selected `FOR UPDATE SKIP LOCKED`.
pub async fn claim_stale_follow_ons<C: ConnectionTrait>(
    tx: &C,
    stale_before: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<QueuedFollowOn>, Error> {
    let stale_before = truncate(stale_before);
    let mut query = follow_ons::Entity::find()
        .filter(follow_ons::Column::CreatedAt.lt(stale_before))
        .filter(
            Condition::any()
                .add(follow_ons::Column::ClaimedAt.is_null())
                .add(follow_ons::Column::ClaimedAt.lt(stale_before)),
        )
        .order_by_asc(follow_ons::Column::Id)
        .limit(limit);
    if tx.get_database_backend() == DbBackend::Postgres {
        query = query.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    let rows = query.all(tx).await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
    follow_ons::Entity::update_many()
        .col_expr(follow_ons::Column::ClaimedAt, Expr::value(now()))
        .filter(follow_ons::Column::Id.is_in(ids))
        .exec(tx)
        .await?;
    let record_ids: Vec<i64> = rows.iter().map(|row| row.record_id).collect();
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
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            Some(QueuedFollowOn {
                id: row.id,
                number: numbers.get(&row.record_id)?.clone(),
                payload: row.payload,
            })
        })
        .collect())
}
