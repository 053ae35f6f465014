//! Record writes (inside write jobs) and single-record reads.

use sea_orm::sea_query::LockType;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter,
    QuerySelect, Statement,
};
use serde_json::Value;
use tend_domain::{Fields, JournalEntry, JournalEvent, Record};

use crate::entities::{idempotency_keys, records};
use crate::{Error, Store, journal, now};

/// Inserts a new record inside a write job. Allocates its number (`number_prefix` followed by
/// at least `number_digits` digits, such as `INC0000001`) and writes `events` as journal
/// entries 1, 2, … by `actor`. Returns the stored record with its id, number and revision 1.
/// `created_at` and `updated_at` are kept from `record`: the engine sets them to the time of
/// the command, which is also the time of the journal entries. Replays of recorded
/// histories rely on that to keep the history's own times.
pub async fn insert_record<C: ConnectionTrait>(
    tx: &C,
    record: &Record,
    number_prefix: &str,
    number_digits: u8,
    actor: &str,
    events: &[JournalEvent],
) -> Result<Record, Error> {
    insert_record_journaled(tx, record, number_prefix, number_digits, actor, events)
        .await
        .map(|(record, _)| record)
}

/// Like [`insert_record`], and also returns the journal entries as written, so that a
/// caller can respond without reading them back.
pub async fn insert_record_journaled<C: ConnectionTrait>(
    tx: &C,
    record: &Record,
    number_prefix: &str,
    number_digits: u8,
    actor: &str,
    events: &[JournalEvent],
) -> Result<(Record, Vec<JournalEntry>), Error> {
    let value = allocate_number(tx, &record.process).await?;
    let number = format!(
        "{number_prefix}{value:0width$}",
        width = usize::from(number_digits)
    );
    let at = crate::truncate(record.updated_at);
    let entries = journal::chain(&number, 0, "", at, actor, events)?;

    let mut stored = record.clone();
    stored.number = number;
    stored.created_at = crate::truncate(record.created_at);
    stored.updated_at = at;
    stored.state_changed_at = crate::truncate(record.state_changed_at);
    stored.revision = 1;

    let (journal_seq, journal_head) = head_after(&entries, 0, "");
    let mut row = active_model(&stored, journal_seq, journal_head)?;
    row.id = sea_orm::ActiveValue::NotSet;
    let inserted = records::Entity::insert(row)
        .exec(tx)
        .await
        .map_err(|error| Error::from_insert(error, "record number", &stored.number))?;
    stored.id = inserted.last_insert_id;

    journal::insert_entries(tx, stored.id, actor, &entries).await?;
    let written = journal::written_entries(actor, &entries, events);
    Ok((stored, written))
}

/// Writes the changed `record` inside a write job and appends `events` to its journal.
/// The write succeeds only if the stored revision still equals `record.revision`; otherwise
/// another writer won and the result is `Error::Conflict`. Returns the record as stored, with
/// the next revision. `updated_at`, also the time of the new journal entries, is kept from
/// `record`, where the engine set it to the time of the command.
pub async fn update_record<C: ConnectionTrait>(
    tx: &C,
    record: &Record,
    actor: &str,
    events: &[JournalEvent],
) -> Result<Record, Error> {
    update_record_journaled(tx, record, actor, events)
        .await
        .map(|(record, _)| record)
}

/// Like [`update_record`], and also returns the journal entries it appended.
pub async fn update_record_journaled<C: ConnectionTrait>(
    tx: &C,
    record: &Record,
    actor: &str,
    events: &[JournalEvent],
) -> Result<(Record, Vec<JournalEntry>), Error> {
    let current = select_by(tx, records::Column::Id.eq(record.id), true)
        .await?
        .ok_or_else(|| Error::NotFound {
            what: "record",
            key: record.number.clone(),
        })?;
    if current.revision != record.revision {
        return Err(conflict(record, current.revision));
    }

    let at = crate::truncate(record.updated_at);
    let entries = journal::chain(
        &current.number,
        current.journal_seq,
        &current.journal_head,
        at,
        actor,
        events,
    )?;
    let mut stored = record.clone();
    stored.number = current.number.clone();
    stored.created_at = current.created_at;
    stored.updated_at = at;
    stored.state_changed_at = crate::truncate(record.state_changed_at);
    stored.revision = record.revision + 1;

    let (journal_seq, journal_head) =
        head_after(&entries, current.journal_seq, &current.journal_head);
    let mut row = active_model(&stored, journal_seq, journal_head)?;
    // The id, number and creation time never change after the insert.
    row.id = sea_orm::ActiveValue::NotSet;
    row.number = sea_orm::ActiveValue::NotSet;
    row.created_at = sea_orm::ActiveValue::NotSet;
    let updated = records::Entity::update_many()
        .set(row)
        .filter(records::Column::Id.eq(record.id))
        .filter(records::Column::Revision.eq(record.revision))
        .exec(tx)
        .await?;
    if updated.rows_affected != 1 {
        // Without a row lock (SQLite, or a racing PostgreSQL node) the check above can pass
        // and this guarded update still lose.
        return Err(conflict(record, record.revision + 1));
    }

    journal::insert_entries(tx, stored.id, actor, &entries).await?;
    let written = journal::written_entries(actor, &entries, events);
    Ok((stored, written))
}

/// Appends `events` to the journal of record `id` inside a write job, without changing the
/// record or its revision: for facts about work done outside the record (mail sent), which
/// must not make a concurrent command on the record retry. The record's row is locked on
/// PostgreSQL, so concurrent appends chain one after the other. Returns the entries, or
/// none when the record is gone.
pub async fn append_journal<C: ConnectionTrait>(
    tx: &C,
    id: i64,
    actor: &str,
    at: chrono::DateTime<chrono::Utc>,
    events: &[JournalEvent],
) -> Result<Vec<JournalEntry>, Error> {
    let Some(current) = select_by(tx, records::Column::Id.eq(id), true).await? else {
        return Ok(Vec::new());
    };
    let at = crate::truncate(at);
    let entries = journal::chain(
        &current.number,
        current.journal_seq,
        &current.journal_head,
        at,
        actor,
        events,
    )?;
    let (journal_seq, journal_head) =
        head_after(&entries, current.journal_seq, &current.journal_head);
    records::Entity::update_many()
        .col_expr(
            records::Column::JournalSeq,
            sea_orm::sea_query::Expr::value(journal_seq),
        )
        .col_expr(
            records::Column::JournalHead,
            sea_orm::sea_query::Expr::value(journal_head),
        )
        .filter(records::Column::Id.eq(id))
        .exec(tx)
        .await?;
    journal::insert_entries(tx, id, actor, &entries).await?;
    Ok(journal::written_entries(actor, &entries, events))
}

/// Loads a record inside a write job. On PostgreSQL the row stays locked (`FOR UPDATE`)
/// until the batch commits; SQLite needs no lock because its write transaction is exclusive.
pub async fn load_record_for_update<C: ConnectionTrait>(
    tx: &C,
    number: &str,
) -> Result<Option<Record>, Error> {
    select_by(tx, records::Column::Number.eq(number), true)
        .await?
        .map(to_record)
        .transpose()
}

/// Returns the record number saved under an idempotency key, if any.
pub async fn find_idempotent<C: ConnectionTrait>(
    tx: &C,
    key: &str,
) -> Result<Option<String>, Error> {
    Ok(idempotency_keys::Entity::find_by_id(key.to_owned())
        .one(tx)
        .await?
        .map(|row| row.record_number))
}

/// Saves the record number created under an idempotency key, in the same job as the create.
pub async fn save_idempotent<C: ConnectionTrait>(
    tx: &C,
    key: &str,
    number: &str,
) -> Result<(), Error> {
    let row = idempotency_keys::ActiveModel {
        key: Set(key.to_owned()),
        record_number: Set(number.to_owned()),
        created_at: Set(now()),
    };
    idempotency_keys::Entity::insert(row)
        .exec(tx)
        .await
        .map_err(|error| Error::from_insert(error, "idempotency key", key))?;
    Ok(())
}

impl Store {
    /// Reads a record by its number, such as `INC0000042`.
    pub async fn get_record(&self, number: &str) -> Result<Option<Record>, Error> {
        select_by(self.db(), records::Column::Number.eq(number), false)
            .await?
            .map(to_record)
            .transpose()
    }

    /// Reads a record by its store id.
    pub async fn get_record_by_id(&self, id: i64) -> Result<Option<Record>, Error> {
        select_by(self.db(), records::Column::Id.eq(id), false)
            .await?
            .map(to_record)
            .transpose()
    }
}

/// Allocates the next number of `process` in the caller's transaction. On PostgreSQL the
/// upsert locks the counter row until the transaction ends, so nodes sharing one database
/// never hand out a number twice.
async fn allocate_number<C: ConnectionTrait>(tx: &C, process: &str) -> Result<i64, Error> {
    let backend = tx.get_database_backend();
    let sql = "INSERT INTO record_counters (process, next_value) VALUES ($1, 2) \
               ON CONFLICT (process) DO UPDATE SET next_value = record_counters.next_value + 1 \
               RETURNING next_value - 1 AS allocated";
    let statement =
        Statement::from_sql_and_values(backend, placeholders(backend, sql), [process.into()]);
    let row = tx.query_one_raw(statement).await?.ok_or_else(|| {
        Error::corrupt(
            "record counter",
            format!("no row returned for process `{process}`"),
        )
    })?;
    Ok(row.try_get::<i64>("", "allocated")?)
}

/// Rewrites `$1`-style placeholders as SQLite's `?1` form.
pub(crate) fn placeholders(backend: DbBackend, sql: &str) -> String {
    match backend {
        DbBackend::Sqlite => sql.replace('$', "?"),
        _ => sql.to_owned(),
    }
}

async fn select_by<C: ConnectionTrait>(
    db: &C,
    condition: sea_orm::sea_query::SimpleExpr,
    lock: bool,
) -> Result<Option<records::Model>, Error> {
    let mut query = records::Entity::find().filter(condition);
    if lock && db.get_database_backend() == DbBackend::Postgres {
        query = query.lock(LockType::Update);
    }
    Ok(query.one(db).await?)
}

fn conflict(record: &Record, found: i64) -> Error {
    Error::Conflict {
        number: record.number.clone(),
        expected: record.revision,
        found,
    }
}

fn head_after(entries: &[journal::PendingEntry], seq: i64, hash: &str) -> (i64, String) {
    match entries.last() {
        Some(last) => (last.seq, last.hash.clone()),
        None => (seq, hash.to_owned()),
    }
}

fn active_model(
    record: &Record,
    journal_seq: i64,
    journal_head: String,
) -> Result<records::ActiveModel, Error> {
    let fields = serde_json::to_string(&record.fields).map_err(|error| {
        Error::Invalid(format!("record fields cannot be encoded as JSON: {error}"))
    })?;
    let recommendations = serde_json::to_string(&record.recommendations).map_err(|error| {
        Error::Invalid(format!(
            "record recommendations cannot be encoded as JSON: {error}"
        ))
    })?;
    Ok(records::ActiveModel {
        id: Set(record.id),
        number: Set(record.number.clone()),
        process: Set(record.process.clone()),
        definition_version: Set(record.definition_version.clone()),
        state: Set(record.state.clone()),
        title: Set(record.title.clone()),
        description: Set(record.description.clone()),
        fields: Set(fields),
        recommendations: Set(recommendations),
        priority: Set(mirror(&record.fields, "priority")),
        assignee: Set(mirror(&record.fields, "assignee")),
        assignment_group: Set(mirror(&record.fields, "assignment_group")),
        requester: Set(mirror(&record.fields, "requester")),
        ci: Set(mirror(&record.fields, "ci")),
        is_open: Set(record.open),
        created_at: Set(record.created_at),
        updated_at: Set(record.updated_at),
        state_changed_at: Set(crate::truncate(record.state_changed_at)),
        revision: Set(record.revision),
        journal_seq: Set(journal_seq),
        journal_head: Set(journal_head),
    })
}

/// Returns the indexed copy of one of `tend_domain::CORE_COLUMNS`: strings as they are,
/// numbers and booleans as text, and `None` for null, a missing field, an array or an object.
fn mirror(fields: &Fields, name: &str) -> Option<String> {
    match fields.get(name)? {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

pub(crate) fn to_record(model: records::Model) -> Result<Record, Error> {
    let fields: Fields = serde_json::from_str(&model.fields)
        .map_err(|error| Error::corrupt(format!("fields of record {}", model.number), error))?;
    let recommendations = serde_json::from_str(&model.recommendations).map_err(|error| {
        Error::corrupt(format!("recommendations of record {}", model.number), error)
    })?;
    Ok(Record {
        id: model.id,
        number: model.number,
        process: model.process,
        definition_version: model.definition_version,
        state: model.state,
        open: model.is_open,
        title: model.title,
        description: model.description,
        fields,
        recommendations,
        created_at: model.created_at,
        updated_at: model.updated_at,
        state_changed_at: model.state_changed_at,
        revision: model.revision,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrored_columns_match_core_columns() {
        let mut fields = Fields::new();
        for name in tend_domain::CORE_COLUMNS {
            fields.insert(name.to_owned(), Value::String(format!("{name}-value")));
        }
        let record = Record {
            id: 1,
            number: "INC1".into(),
            process: "incident".into(),
            definition_version: "v1".into(),
            state: "new".into(),
            open: true,
            title: String::new(),
            description: String::new(),
            fields,
            recommendations: Vec::new(),
            created_at: now(),
            updated_at: now(),
            state_changed_at: now(),
            revision: 1,
        };
        let row = active_model(&record, 0, String::new()).unwrap();
        let mirrored = [
            row.priority,
            row.assignee,
            row.assignment_group,
            row.requester,
            row.ci,
        ];
        for (name, column) in tend_domain::CORE_COLUMNS.iter().zip(mirrored) {
            assert_eq!(column, Set(Some(format!("{name}-value"))), "column {name}");
        }
    }

    #[test]
    fn mirror_converts_scalars_only() {
        let fields: Fields =
            serde_json::from_str(r#"{"a": 3, "b": true, "c": null, "d": [1], "e": "x"}"#).unwrap();
        assert_eq!(mirror(&fields, "a").as_deref(), Some("3"));
        assert_eq!(mirror(&fields, "b").as_deref(), Some("true"));
        assert_eq!(mirror(&fields, "c"), None);
        assert_eq!(mirror(&fields, "d"), None);
        assert_eq!(mirror(&fields, "e").as_deref(), Some("x"));
        assert_eq!(mirror(&fields, "missing"), None);
    }

    #[test]
    fn placeholders_follow_backend() {
        assert_eq!(
            placeholders(DbBackend::Sqlite, "a = $1 AND b = $2"),
            "a = ?1 AND b = ?2"
        );
        assert_eq!(placeholders(DbBackend::Postgres, "a = $1"), "a = $1");
    }
}
