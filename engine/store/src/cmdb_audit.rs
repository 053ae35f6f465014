//! Queries of the CMDB audit: CIs that no discovery source has seen lately, and CIs with
//! no relationship. Each is one query for the page and one for the total, with the
//! `NOT EXISTS` subqueries on the indexes of `ci_sightings` and `ci_relationships`.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};

use crate::Error;
use crate::cmdb::Ci;
use crate::entities::{ci_relationships, ci_sightings, cis};

/// A page of CIs found by an audit query, with how many there are in all.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub cis: Vec<Ci>,
    pub total: u64,
}

/// Finds the CIs of `classes`, created before `cutoff` and not retired, that no source
/// has seen since `cutoff`, in id order, at most `limit`.
pub async fn stale_cis<C: ConnectionTrait>(
    db: &C,
    classes: &[String],
    cutoff: DateTime<Utc>,
    limit: u64,
) -> Result<Found, Error> {
    if classes.is_empty() {
        return Ok(Found {
            cis: Vec::new(),
            total: 0,
        });
    }
    let seen_since = Query::select()
        .expr(Expr::val(1))
        .from(ci_sightings::Entity)
        .and_where(
            Expr::col((ci_sightings::Entity, ci_sightings::Column::CiId))
                .equals((cis::Entity, cis::Column::Id)),
        )
        .and_where(Expr::col((ci_sightings::Entity, ci_sightings::Column::LastSeenAt)).gte(cutoff))
        .to_owned();
    let query = cis::Entity::find()
        .filter(cis::Column::RetiredAt.is_null())
        .filter(cis::Column::Class.is_in(classes.iter().map(String::as_str)))
        .filter(cis::Column::CreatedAt.lt(cutoff))
        .filter(Expr::exists(seen_since).not());
    page(db, query, limit).await
}

/// Finds the CIs of `classes`, not retired, with no active relationship at either end,
/// in id order, at most `limit`.
pub async fn orphan_cis<C: ConnectionTrait>(
    db: &C,
    classes: &[String],
    limit: u64,
) -> Result<Found, Error> {
    if classes.is_empty() {
        return Ok(Found {
            cis: Vec::new(),
            total: 0,
        });
    }
    let related = |end: ci_relationships::Column| {
        Query::select()
            .expr(Expr::val(1))
            .from(ci_relationships::Entity)
            .and_where(
                Expr::col((ci_relationships::Entity, end)).equals((cis::Entity, cis::Column::Id)),
            )
            .and_where(
                Expr::col((
                    ci_relationships::Entity,
                    ci_relationships::Column::RetiredAt,
                ))
                .is_null(),
            )
            .to_owned()
    };
    let query = cis::Entity::find()
        .filter(cis::Column::RetiredAt.is_null())
        .filter(cis::Column::Class.is_in(classes.iter().map(String::as_str)))
        .filter(Expr::exists(related(ci_relationships::Column::SourceId)).not())
        .filter(Expr::exists(related(ci_relationships::Column::TargetId)).not());
    page(db, query, limit).await
}

async fn page<C: ConnectionTrait>(
    db: &C,
    query: sea_orm::Select<cis::Entity>,
    limit: u64,
) -> Result<Found, Error> {
    let total = query.clone().count(db).await?;
    let rows = query
        .order_by_asc(cis::Column::Id)
        .limit(limit)
        .all(db)
        .await?;
    let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
    // Loaded again through the store's conversion, which checks the attributes' JSON.
    let cis = crate::cmdb::load_cis(db, &ids).await?;
    Ok(Found { cis, total })
}

/// Returns the latest time any source saw each of `ids`.
pub async fn last_seen<C: ConnectionTrait>(
    db: &C,
    ids: &[i64],
) -> Result<std::collections::BTreeMap<i64, DateTime<Utc>>, Error> {
    let mut seen = std::collections::BTreeMap::new();
    for chunk in ids.chunks(crate::impact::CHUNK) {
        let rows = ci_sightings::Entity::find()
            .filter(ci_sightings::Column::CiId.is_in(chunk.iter().copied()))
            .all(db)
            .await?;
        for row in rows {
            let entry = seen.entry(row.ci_id).or_insert(row.last_seen_at);
            if row.last_seen_at > *entry {
                *entry = row.last_seen_at;
            }
        }
    }
    Ok(seen)
}
