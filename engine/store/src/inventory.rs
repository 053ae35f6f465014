//! Discovery's records: the values each source last reported of a CI
//! (`ci_discovered`), when each source last saw it (`ci_sightings`), and the log of
//! imported items with their outcome (`inventory_imports`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect,
};
use serde::Serialize;
use serde_json::Value;

use crate::Error;
use crate::entities::{ci_discovered, ci_sightings, inventory_imports};

/// Largest page of the import log.
pub const MAX_IMPORT_LIMIT: u64 = 500;

/// A value that a source reported of a CI.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Discovered {
    pub source: String,
    pub attribute: String,
    pub value: Value,
    /// The value is a firmware placeholder and was never written to the CI.
    pub placeholder: bool,
    /// When the source first reported this value.
    pub reported_at: DateTime<Utc>,
}

/// A value as an import reports it, before it is saved.
#[derive(Debug, Clone, PartialEq)]
pub struct Reported {
    pub value: Value,
    pub placeholder: bool,
}

/// When a source saw a CI.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sighting {
    pub ci_id: i64,
    pub source: String,
    pub device_id: Option<String>,
    pub first_seen_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

/// An imported item, as the log keeps it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImportEntry {
    pub id: i64,
    pub received_at: DateTime<Utc>,
    pub source: String,
    pub device_id: Option<String>,
    pub actor: String,
    pub outcome: String,
    pub ci_id: Option<i64>,
    pub item_name: Option<String>,
    pub summary: Value,
    pub message: Option<String>,
    pub sha256: String,
    /// Size of the kept document; the document itself is read with [`import_document`].
    pub document_bytes: Option<usize>,
}

/// A log entry to write.
#[derive(Debug, Clone)]
pub struct NewImport {
    pub source: String,
    pub device_id: Option<String>,
    pub actor: String,
    pub outcome: String,
    pub ci_id: Option<i64>,
    pub item_name: Option<String>,
    pub summary: Value,
    pub message: Option<String>,
    pub sha256: String,
    pub document: Option<Vec<u8>>,
}

fn to_discovered(row: ci_discovered::Model) -> Discovered {
    Discovered {
        source: row.source,
        attribute: row.attribute,
        value: serde_json::from_str(&row.value).unwrap_or(Value::String(row.value)),
        placeholder: row.placeholder,
        reported_at: row.reported_at,
    }
}

/// Reads what every source reported of CI `ci_id`, by source then attribute.
pub async fn discovered_of<C: ConnectionTrait>(
    db: &C,
    ci_id: i64,
) -> Result<Vec<Discovered>, Error> {
    Ok(ci_discovered::Entity::find()
        .filter(ci_discovered::Column::CiId.eq(ci_id))
        .order_by_asc(ci_discovered::Column::Source)
        .order_by_asc(ci_discovered::Column::Attribute)
        .all(db)
        .await?
        .into_iter()
        .map(to_discovered)
        .collect())
}

/// Saves what `source` reported of CI `ci_id` inside a write job, writing only the
/// rows that differ. With `complete`, the attributes the source no longer reports are
/// removed; a partial document leaves them. Returns the number of rows written.
pub async fn save_discovered<C: ConnectionTrait>(
    tx: &C,
    ci_id: i64,
    source: &str,
    reported: &BTreeMap<String, Reported>,
    complete: bool,
    at: DateTime<Utc>,
) -> Result<usize, Error> {
    let existing: BTreeMap<String, ci_discovered::Model> = ci_discovered::Entity::find()
        .filter(ci_discovered::Column::CiId.eq(ci_id))
        .filter(ci_discovered::Column::Source.eq(source))
        .all(tx)
        .await?
        .into_iter()
        .map(|row| (row.attribute.clone(), row))
        .collect();
    let mut written = 0;
    for (attribute, report) in reported {
        let text = report.value.to_string();
        match existing.get(attribute) {
            Some(row) if row.value == text && row.placeholder == report.placeholder => {}
            Some(row) => {
                let mut active = row.clone().into_active_model();
                active.value = Set(text);
                active.placeholder = Set(report.placeholder);
                active.reported_at = Set(at);
                active.update(tx).await?;
                written += 1;
            }
            None => {
                let row = ci_discovered::ActiveModel {
                    ci_id: Set(ci_id),
                    source: Set(source.to_owned()),
                    attribute: Set(attribute.clone()),
                    value: Set(text),
                    placeholder: Set(report.placeholder),
                    reported_at: Set(at),
                    ..Default::default()
                };
                ci_discovered::Entity::insert(row).exec(tx).await?;
                written += 1;
            }
        }
    }
    if complete {
        let gone: Vec<i64> = existing
            .iter()
            .filter(|(attribute, _)| !reported.contains_key(*attribute))
            .map(|(_, row)| row.id)
            .collect();
        if !gone.is_empty() {
            written += gone.len();
            ci_discovered::Entity::delete_many()
                .filter(ci_discovered::Column::Id.is_in(gone))
                .exec(tx)
                .await?;
        }
    }
    Ok(written)
}

fn to_sighting(row: ci_sightings::Model) -> Sighting {
    Sighting {
        ci_id: row.ci_id,
        source: row.source,
        device_id: row.device_id,
        first_seen_at: row.first_seen_at,
        last_seen_at: row.last_seen_at,
    }
}

/// Records inside a write job that `source` saw CI `ci_id` at `at`, with the agent's
/// device id when the document has one.
pub async fn record_sighting<C: ConnectionTrait>(
    tx: &C,
    ci_id: i64,
    source: &str,
    device_id: Option<&str>,
    at: DateTime<Utc>,
) -> Result<(), Error> {
    let row = ci_sightings::ActiveModel {
        ci_id: Set(ci_id),
        source: Set(source.to_owned()),
        device_id: Set(device_id.map(str::to_owned)),
        first_seen_at: Set(at),
        last_seen_at: Set(at),
        ..Default::default()
    };
    let mut on_conflict =
        OnConflict::columns([ci_sightings::Column::CiId, ci_sightings::Column::Source]);
    on_conflict.update_column(ci_sightings::Column::LastSeenAt);
    if device_id.is_some() {
        on_conflict.update_column(ci_sightings::Column::DeviceId);
    }
    ci_sightings::Entity::insert(row)
        .on_conflict(on_conflict.to_owned())
        .exec_without_returning(tx)
        .await?;
    Ok(())
}

/// Reads when each source saw CI `ci_id`.
pub async fn sightings_of<C: ConnectionTrait>(db: &C, ci_id: i64) -> Result<Vec<Sighting>, Error> {
    Ok(ci_sightings::Entity::find()
        .filter(ci_sightings::Column::CiId.eq(ci_id))
        .order_by_asc(ci_sightings::Column::Source)
        .all(db)
        .await?
        .into_iter()
        .map(to_sighting)
        .collect())
}

/// Reads the sightings of every CI that discovery has seen, for the audit.
pub async fn all_sightings<C: ConnectionTrait>(db: &C) -> Result<Vec<Sighting>, Error> {
    Ok(ci_sightings::Entity::find()
        .order_by_asc(ci_sightings::Column::CiId)
        .all(db)
        .await?
        .into_iter()
        .map(to_sighting)
        .collect())
}

/// Finds the CI whose last document from `source` carried the agent device id
/// `device_id`, as partial documents are matched.
pub async fn find_ci_by_device<C: ConnectionTrait>(
    db: &C,
    source: &str,
    device_id: &str,
) -> Result<Vec<i64>, Error> {
    Ok(ci_sightings::Entity::find()
        .filter(ci_sightings::Column::Source.eq(source))
        .filter(ci_sightings::Column::DeviceId.eq(device_id))
        .all(db)
        .await?
        .into_iter()
        .map(|row| row.ci_id)
        .collect())
}

/// Reads every discovered value of the attributes `attributes`, for the audit.
pub async fn discovered_values<C: ConnectionTrait>(
    db: &C,
    attributes: &[String],
) -> Result<Vec<(i64, Discovered)>, Error> {
    if attributes.is_empty() {
        return Ok(Vec::new());
    }
    Ok(ci_discovered::Entity::find()
        .filter(ci_discovered::Column::Attribute.is_in(attributes.iter().map(String::as_str)))
        .order_by_asc(ci_discovered::Column::CiId)
        .all(db)
        .await?
        .into_iter()
        .map(|row| (row.ci_id, to_discovered(row)))
        .collect())
}

/// Appends an entry to the import log inside a write job; returns its id.
pub async fn insert_import<C: ConnectionTrait>(
    tx: &C,
    entry: NewImport,
    at: DateTime<Utc>,
) -> Result<i64, Error> {
    let row = inventory_imports::ActiveModel {
        received_at: Set(at),
        source: Set(entry.source),
        device_id: Set(entry.device_id),
        actor: Set(entry.actor),
        outcome: Set(entry.outcome),
        ci_id: Set(entry.ci_id),
        item_name: Set(entry.item_name),
        summary: Set(entry.summary.to_string()),
        message: Set(entry.message),
        sha256: Set(entry.sha256),
        document: Set(entry.document),
        ..Default::default()
    };
    Ok(inventory_imports::Entity::insert(row)
        .exec(tx)
        .await?
        .last_insert_id)
}

fn to_import(row: inventory_imports::Model) -> ImportEntry {
    ImportEntry {
        id: row.id,
        received_at: row.received_at,
        source: row.source,
        device_id: row.device_id,
        actor: row.actor,
        outcome: row.outcome,
        ci_id: row.ci_id,
        item_name: row.item_name,
        summary: serde_json::from_str(&row.summary).unwrap_or(Value::Null),
        message: row.message,
        sha256: row.sha256,
        document_bytes: row.document.as_ref().map(Vec::len),
    }
}

/// Lists the import log, newest first: entries with `outcome` when given, of CI
/// `ci_id` when given, older than `before` (an id) when given.
pub async fn list_imports<C: ConnectionTrait>(
    db: &C,
    outcome: Option<&str>,
    ci_id: Option<i64>,
    before: Option<i64>,
    limit: u64,
) -> Result<Vec<ImportEntry>, Error> {
    let mut query = inventory_imports::Entity::find();
    if let Some(outcome) = outcome {
        query = query.filter(inventory_imports::Column::Outcome.eq(outcome));
    }
    if let Some(ci_id) = ci_id {
        query = query.filter(inventory_imports::Column::CiId.eq(ci_id));
    }
    if let Some(before) = before {
        query = query.filter(inventory_imports::Column::Id.lt(before));
    }
    Ok(query
        .order_by_desc(inventory_imports::Column::Id)
        .limit(limit.clamp(1, MAX_IMPORT_LIMIT))
        .all(db)
        .await?
        .into_iter()
        .map(to_import)
        .collect())
}

/// Counts the log entries with `outcome` received at or after `since`.
pub async fn count_imports<C: ConnectionTrait>(
    db: &C,
    outcome: &str,
    since: DateTime<Utc>,
) -> Result<u64, Error> {
    use sea_orm::PaginatorTrait;
    Ok(inventory_imports::Entity::find()
        .filter(inventory_imports::Column::Outcome.eq(outcome))
        .filter(inventory_imports::Column::ReceivedAt.gte(since))
        .count(db)
        .await?)
}

/// Reads one log entry with the document it kept, if any.
pub async fn import_document<C: ConnectionTrait>(
    db: &C,
    id: i64,
) -> Result<Option<(ImportEntry, Option<Vec<u8>>)>, Error> {
    Ok(inventory_imports::Entity::find_by_id(id)
        .one(db)
        .await?
        .map(|mut row| {
            let document = row.document.take();
            let mut entry = to_import(row);
            entry.document_bytes = document.as_ref().map(Vec::len);
            (entry, document)
        }))
}

/// Marks log entry `id`, and every other conflict or rejection that kept the same
/// document, as `resolved` inside a write job, once the document was imported again
/// without a conflict as entry `by`. The documents stay for reference.
pub async fn mark_resolved<C: ConnectionTrait>(tx: &C, id: i64, by: i64) -> Result<(), Error> {
    let Some(first) = inventory_imports::Entity::find_by_id(id).one(tx).await? else {
        return Ok(());
    };
    let rows = inventory_imports::Entity::find()
        .filter(inventory_imports::Column::Sha256.eq(first.sha256.as_str()))
        .filter(inventory_imports::Column::Outcome.is_in(["conflict", "rejected"]))
        .filter(inventory_imports::Column::Id.ne(by))
        .all(tx)
        .await?;
    for row in rows {
        let message = match &row.message {
            Some(message) => format!("{message} (resolved: imported again as import {by})"),
            None => format!("resolved: imported again as import {by}"),
        };
        let mut active = row.into_active_model();
        active.outcome = Set("resolved".to_owned());
        active.message = Set(Some(message));
        active.update(tx).await?;
    }
    Ok(())
}
