//! Definition versions: the files of every definition set a server has loaded, keyed by the
//! set's content hash, and the record scans that move records between versions.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use tend_domain::Record;

use crate::entities::{definition_versions, records};
use crate::records::to_record;
use crate::{Error, Store, now};

/// The stored files of one definition set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredVersion {
    pub version: String,
    pub loaded_at: DateTime<Utc>,
    /// Text of each file, keyed by its path relative to the definitions directory.
    pub files: BTreeMap<String, String>,
}

/// Filter and page of a record scan, which returns records in ascending id order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordScan {
    pub process: Option<String>,
    /// Only records in an open state.
    pub open_only: bool,
    /// Only records pinned to a version other than this one.
    pub not_version: Option<String>,
    /// Only records with an id greater than this; 0 starts at the first record.
    pub after_id: i64,
    pub limit: u64,
}

/// Saves the files of definition set `version` inside a write job, unless that version is
/// stored already. Returns whether a row was inserted.
pub async fn save_definition_version<C: ConnectionTrait>(
    tx: &C,
    version: &str,
    files: &BTreeMap<String, String>,
) -> Result<bool, Error> {
    let files = serde_json::to_string(files).map_err(|error| {
        Error::Invalid(format!(
            "the files of definition version {version} cannot be encoded as JSON: {error}"
        ))
    })?;
    let row = definition_versions::ActiveModel {
        version: Set(version.to_owned()),
        loaded_at: Set(now()),
        files: Set(files),
    };
    let inserted = definition_versions::Entity::insert(row)
        .on_conflict(
            OnConflict::column(definition_versions::Column::Version)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(tx)
        .await?;
    Ok(inserted == 1)
}

impl Store {
    /// Reads the stored files of definition set `version`, or `None` when no server stored it.
    pub async fn definition_version(&self, version: &str) -> Result<Option<StoredVersion>, Error> {
        let Some(row) = definition_versions::Entity::find_by_id(version.to_owned())
            .one(self.db())
            .await?
        else {
            return Ok(None);
        };
        let files = serde_json::from_str(&row.files).map_err(|error| {
            Error::corrupt(format!("files of definition version {version}"), error)
        })?;
        Ok(Some(StoredVersion {
            version: row.version,
            loaded_at: row.loaded_at,
            files,
        }))
    }

    /// Lists the stored definition versions with the time each was first loaded, oldest
    /// first.
    pub async fn definition_versions(&self) -> Result<Vec<(String, DateTime<Utc>)>, Error> {
        let rows: Vec<(String, DateTime<Utc>)> = definition_versions::Entity::find()
            .select_only()
            .column(definition_versions::Column::Version)
            .column(definition_versions::Column::LoadedAt)
            .order_by_asc(definition_versions::Column::LoadedAt)
            .into_tuple()
            .all(self.db())
            .await?;
        Ok(rows)
    }

    /// Returns one page of the records that `scan` selects, in ascending id order. Page on
    /// by passing the last id as `after_id`.
    pub async fn scan_records(&self, scan: &RecordScan) -> Result<Vec<Record>, Error> {
        let mut query = records::Entity::find()
            .filter(records::Column::Id.gt(scan.after_id))
            .order_by_asc(records::Column::Id)
            .limit(scan.limit);
        if let Some(process) = &scan.process {
            query = query.filter(records::Column::Process.eq(process.as_str()));
        }
        if scan.open_only {
            query = query.filter(records::Column::IsOpen.eq(true));
        }
        if let Some(version) = &scan.not_version {
            query = query.filter(records::Column::DefinitionVersion.ne(version.as_str()));
        }
        query
            .all(self.db())
            .await?
            .into_iter()
            .map(to_record)
            .collect()
    }
}
