//! Typed, directed links between records. A link is one row in `record_links` plus a
//! `linked` journal entry on each of its two records, written in the same write job.
//! Link types and the processes they allow are checked by the caller against the
//! definitions; the store only keeps each (source, target, type) once.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use serde::{Deserialize, Serialize};
use tend_domain::{JournalEvent, Record};

use crate::entities::{record_links, records};
use crate::{Error, Store, now, update_record_journaled};

/// End of a link that a record is at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkDirection {
    /// The record is the link's source and reads it with the type's `label`.
    Outgoing,
    /// The record is the link's target and reads it with the type's `inverse_label`.
    Incoming,
}

impl LinkDirection {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkDirection::Outgoing => "outgoing",
            LinkDirection::Incoming => "incoming",
        }
    }

    pub fn is_outgoing(self) -> bool {
        self == LinkDirection::Outgoing
    }
}

/// One link of a record, read from that record's end, with the record at the other end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkView {
    pub link_type: String,
    pub direction: LinkDirection,
    /// Number of the record at the other end.
    pub number: String,
    pub process: String,
    pub title: String,
    pub state: String,
    /// Whether the record at the other end is open work.
    pub open: bool,
    /// Requester of the record at the other end, so that a caller can leave out records
    /// that a requester may not see.
    pub requester: Option<String>,
    /// User who added the link.
    pub actor: String,
    pub created_at: DateTime<Utc>,
}

/// Inserts the link row `source_id` → `target_id` of `link_type` inside a write job.
/// Returns `Error::Duplicate` when that link exists already and `Error::Invalid` for a
/// record linked to itself. Writes no journal entry: [`link_records`] does both.
pub async fn insert_link<C: ConnectionTrait>(
    tx: &C,
    source_id: i64,
    target_id: i64,
    link_type: &str,
    actor: &str,
) -> Result<(), Error> {
    if source_id == target_id {
        return Err(Error::Invalid(format!(
            "record id {source_id} cannot be linked to itself: choose another target record"
        )));
    }
    let key = format!("{link_type} from record id {source_id} to record id {target_id}");
    // Checked before the insert because on PostgreSQL a failed insert aborts the rest of
    // the job. The unique index still catches a link that another node inserts meanwhile.
    if link_exists(tx, source_id, target_id, link_type).await? {
        return Err(Error::Duplicate { what: "link", key });
    }
    let row = record_links::ActiveModel {
        source_id: Set(source_id),
        target_id: Set(target_id),
        link_type: Set(link_type.to_owned()),
        actor: Set(actor.to_owned()),
        created_at: Set(now()),
        ..Default::default()
    };
    record_links::Entity::insert(row)
        .exec(tx)
        .await
        .map_err(|error| Error::from_insert(error, "link", &key))?;
    Ok(())
}

/// Links `source` to `target` inside a write job: inserts the link row and appends a
/// `linked` entry at `at` by `actor` to both journals, through [`update_record_journaled`].
/// Each record must carry the revision it was read with, else the result is
/// `Error::Conflict`. Returns both records as stored, with their next revisions.
pub async fn link_records<C: ConnectionTrait>(
    tx: &C,
    source: &Record,
    target: &Record,
    link_type: &str,
    actor: &str,
    at: DateTime<Utc>,
) -> Result<(Record, Record), Error> {
    if source.id == target.id {
        return Err(Error::Invalid(format!(
            "record {} cannot be linked to itself: choose another target record",
            source.number
        )));
    }
    if link_exists(tx, source.id, target.id, link_type).await? {
        return Err(Error::Duplicate {
            what: "link",
            key: format!("{link_type} from {} to {}", source.number, target.number),
        });
    }
    let mut source = source.clone();
    let mut target = target.clone();
    source.updated_at = at;
    target.updated_at = at;
    let outgoing = JournalEvent::Linked {
        link_type: link_type.to_owned(),
        other: target.number.clone(),
        outgoing: true,
    };
    let incoming = JournalEvent::Linked {
        link_type: link_type.to_owned(),
        other: source.number.clone(),
        outgoing: false,
    };

    // The records are updated (and on PostgreSQL locked) in id order, and before the link
    // row's foreign keys take their share locks, so that two nodes linking the same pair
    // wait for each other instead of deadlocking.
    // NOTE: earlier jobs of the same batch keep their row locks until the batch commits, so
    // two nodes whose batches touch the same records in other orders can still deadlock.
    // PostgreSQL then fails one job with a database error, which no caller retries.
    let (stored_source, stored_target) = if source.id < target.id {
        let (stored_source, _) = update_record_journaled(tx, &source, actor, &[outgoing]).await?;
        let (stored_target, _) = update_record_journaled(tx, &target, actor, &[incoming]).await?;
        (stored_source, stored_target)
    } else {
        let (stored_target, _) = update_record_journaled(tx, &target, actor, &[incoming]).await?;
        let (stored_source, _) = update_record_journaled(tx, &source, actor, &[outgoing]).await?;
        (stored_source, stored_target)
    };
    insert_link(tx, source.id, target.id, link_type, actor).await?;
    Ok((stored_source, stored_target))
}

async fn link_exists<C: ConnectionTrait>(
    db: &C,
    source_id: i64,
    target_id: i64,
    link_type: &str,
) -> Result<bool, Error> {
    let found = record_links::Entity::find()
        .filter(record_links::Column::SourceId.eq(source_id))
        .filter(record_links::Column::TargetId.eq(target_id))
        .filter(record_links::Column::LinkType.eq(link_type))
        .one(db)
        .await?;
    Ok(found.is_some())
}

/// Columns of the record at the other end: id, number, process, title, state, requester,
/// open.
type OtherRecord = (i64, String, String, String, String, Option<String>, bool);

/// Reads the links of record `record_id` in both directions, oldest first.
async fn read_links<C: ConnectionTrait>(db: &C, record_id: i64) -> Result<Vec<LinkView>, Error> {
    let rows = record_links::Entity::find()
        .filter(
            Condition::any()
                .add(record_links::Column::SourceId.eq(record_id))
                .add(record_links::Column::TargetId.eq(record_id)),
        )
        .order_by_asc(record_links::Column::Id)
        .all(db)
        .await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let other_id = |row: &record_links::Model| {
        if row.source_id == record_id {
            row.target_id
        } else {
            row.source_id
        }
    };
    let other_ids: Vec<i64> = rows.iter().map(other_id).collect();
    let others: HashMap<i64, OtherRecord> = records::Entity::find()
        .select_only()
        .column(records::Column::Id)
        .column(records::Column::Number)
        .column(records::Column::Process)
        .column(records::Column::Title)
        .column(records::Column::State)
        .column(records::Column::Requester)
        .column(records::Column::IsOpen)
        .filter(records::Column::Id.is_in(other_ids))
        .into_tuple::<OtherRecord>()
        .all(db)
        .await?
        .into_iter()
        .map(|other| (other.0, other))
        .collect();

    rows.into_iter()
        .map(|row| {
            let (_, number, process, title, state, requester, open) =
                others.get(&other_id(&row)).cloned().ok_or_else(|| {
                    Error::corrupt(
                        format!("link {} of record id {record_id}", row.id),
                        format!("record id {} does not exist", other_id(&row)),
                    )
                })?;
            let direction = if row.source_id == record_id {
                LinkDirection::Outgoing
            } else {
                LinkDirection::Incoming
            };
            Ok(LinkView {
                link_type: row.link_type,
                direction,
                number,
                process,
                title,
                state,
                open,
                requester,
                actor: row.actor,
                created_at: row.created_at,
            })
        })
        .collect()
}

impl Store {
    /// Reads the links of the record with store id `record_id`, outgoing and incoming,
    /// in the order they were added.
    pub async fn links_of(&self, record_id: i64) -> Result<Vec<LinkView>, Error> {
        read_links(self.db(), record_id).await
    }
}
