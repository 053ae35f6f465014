//! The journal and its hash chain. Each record has its own chain: entry `seq` covers the hash
//! of entry `seq - 1` of the same record, so concurrent writers to different records never
//! contend on one global "last hash".
//!
//! hash = hex(SHA-256(prev_hash || "\n" || canonical JSON of
//! {"actor", "at", "event", "number", "seq"})), where `at` is RFC 3339 in UTC with
//! microseconds, and canonical JSON is serde_json output with every object's keys sorted.

use chrono::{DateTime, SecondsFormat, Utc};
use sea_orm::{
    ActiveValue::Set, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, prelude::*,
};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tend_domain::{JournalEntry, JournalEvent};

use crate::entities::journal;
use crate::{Error, Store};

/// Computes the chain hash of one entry from its content and the previous entry's hash.
/// `event` is the event as JSON, so that verification hashes what is stored.
pub fn entry_hash(
    prev_hash: &str,
    number: &str,
    seq: i64,
    at: DateTime<Utc>,
    actor: &str,
    event: &Value,
) -> String {
    let content = serde_json::json!({
        "actor": actor,
        "at": at.to_rfc3339_opts(SecondsFormat::Micros, true),
        "event": canonical(event),
        "number": number,
        "seq": seq,
    });
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(b"\n");
    hasher.update(content.to_string().as_bytes());
    hex::encode(hasher.finalize())
}

/// Returns `value` with every object rebuilt in sorted key order. serde_json's `Map` already
/// sorts unless its `preserve_order` feature is on; rebuilding keeps hashes stable even if
/// some crate of the build turns that feature on.
fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|left, right| left.0.cmp(right.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(key, value)| (key.clone(), canonical(value)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// A journal entry computed in memory, before the record id is known.
pub(crate) struct PendingEntry {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub kind: &'static str,
    pub body: String,
    pub prev_hash: String,
    pub hash: String,
}

/// Builds the entries as callers read them from what was just written.
pub(crate) fn written_entries(
    actor: &str,
    entries: &[PendingEntry],
    events: &[JournalEvent],
) -> Vec<JournalEntry> {
    entries
        .iter()
        .zip(events)
        .map(|(entry, event)| JournalEntry {
            seq: entry.seq,
            at: entry.at,
            actor: actor.to_owned(),
            event: event.clone(),
            prev_hash: entry.prev_hash.clone(),
            hash: entry.hash.clone(),
        })
        .collect()
}

/// Chains `events` after the entry (`last_seq`, `last_hash`) of record `number`.
pub(crate) fn chain(
    number: &str,
    last_seq: i64,
    last_hash: &str,
    at: DateTime<Utc>,
    actor: &str,
    events: &[JournalEvent],
) -> Result<Vec<PendingEntry>, Error> {
    let mut prev_hash = last_hash.to_owned();
    let mut entries = Vec::with_capacity(events.len());
    for (offset, event) in events.iter().enumerate() {
        let seq = last_seq + 1 + offset as i64;
        let value = serde_json::to_value(event).map_err(|error| {
            Error::Invalid(format!("journal event cannot be encoded as JSON: {error}"))
        })?;
        let hash = entry_hash(&prev_hash, number, seq, at, actor, &value);
        entries.push(PendingEntry {
            seq,
            at,
            kind: event.kind(),
            body: canonical(&value).to_string(),
            prev_hash: std::mem::replace(&mut prev_hash, hash.clone()),
            hash,
        });
    }
    Ok(entries)
}

/// Inserts computed entries for `record_id`.
pub(crate) async fn insert_entries<C: ConnectionTrait>(
    db: &C,
    record_id: i64,
    actor: &str,
    entries: &[PendingEntry],
) -> Result<(), Error> {
    if entries.is_empty() {
        return Ok(());
    }
    let models = entries.iter().map(|entry| journal::ActiveModel {
        record_id: Set(record_id),
        seq: Set(entry.seq),
        at: Set(entry.at),
        actor: Set(actor.to_owned()),
        kind: Set(entry.kind.to_owned()),
        body: Set(entry.body.clone()),
        prev_hash: Set(entry.prev_hash.clone()),
        hash: Set(entry.hash.clone()),
        ..Default::default()
    });
    journal::Entity::insert_many(models).exec(db).await?;
    Ok(())
}

pub(crate) fn to_entry(model: journal::Model) -> Result<JournalEntry, Error> {
    let event: JournalEvent = serde_json::from_str(&model.body).map_err(|error| {
        Error::corrupt(
            format!(
                "journal entry {} of record id {}",
                model.seq, model.record_id
            ),
            error,
        )
    })?;
    Ok(JournalEntry {
        seq: model.seq,
        at: model.at,
        actor: model.actor,
        event,
        prev_hash: model.prev_hash,
        hash: model.hash,
    })
}

/// Reads the journal of one record, oldest entry first.
pub async fn read_journal<C: ConnectionTrait>(
    db: &C,
    record_id: i64,
) -> Result<Vec<JournalEntry>, Error> {
    journal::Entity::find()
        .filter(journal::Column::RecordId.eq(record_id))
        .order_by_asc(journal::Column::Seq)
        .all(db)
        .await?
        .into_iter()
        .map(to_entry)
        .collect()
}

impl Store {
    /// Reads the journal of the record with store id `record_id`, oldest entry first.
    pub async fn journal(&self, record_id: i64) -> Result<Vec<JournalEntry>, Error> {
        read_journal(self.db(), record_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_sorts_nested_keys() {
        let value = serde_json::json!({"b": 1, "a": {"d": [{"z": 1, "y": 2}], "c": null}});
        assert_eq!(
            canonical(&value).to_string(),
            r#"{"a":{"c":null,"d":[{"y":2,"z":1}]},"b":1}"#
        );
    }

    #[test]
    fn chain_links_each_entry_to_the_previous() {
        let at = DateTime::parse_from_rfc3339("2026-01-02T03:04:05.123456Z")
            .unwrap()
            .with_timezone(&Utc);
        let events = vec![
            JournalEvent::Commented { text: "one".into() },
            JournalEvent::Commented { text: "two".into() },
        ];
        let entries = chain("INC0000001", 4, "abc", at, "ada", &events).unwrap();
        assert_eq!(entries[0].seq, 5);
        assert_eq!(entries[0].prev_hash, "abc");
        assert_eq!(entries[1].seq, 6);
        assert_eq!(entries[1].prev_hash, entries[0].hash);
        let body: Value = serde_json::from_str(&entries[1].body).unwrap();
        assert_eq!(
            entry_hash(&entries[0].hash, "INC0000001", 6, at, "ada", &body),
            entries[1].hash
        );
    }

    #[test]
    fn hash_depends_on_every_part() {
        let at = Utc::now();
        let event = serde_json::json!({"event": "commented", "text": "hi"});
        let base = entry_hash("", "INC1", 1, at, "ada", &event);
        assert_ne!(base, entry_hash("x", "INC1", 1, at, "ada", &event));
        assert_ne!(base, entry_hash("", "INC2", 1, at, "ada", &event));
        assert_ne!(base, entry_hash("", "INC1", 2, at, "ada", &event));
        assert_ne!(base, entry_hash("", "INC1", 1, at, "bob", &event));
        let other = serde_json::json!({"event": "commented", "text": "ho"});
        assert_ne!(base, entry_hash("", "INC1", 1, at, "ada", &other));
    }
}
