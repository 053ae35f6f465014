//! Audit of the journal: recomputes every record's hash chain and compares the record heads
//! with the latest checkpoint, which detects edited entries, removed entries, rewritten tails
//! and deleted records.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use sea_orm::{
    AccessMode, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait,
    IsolationLevel, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::entities::{audit_checkpoints, journal, records};
use crate::journal::entry_hash;
use crate::{Backend, Error, Store, now};

/// Records whose chains are checked per query, which bounds memory on large databases.
const PAGE: u64 = 500;

/// The head of one record's chain as a checkpoint keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointHead {
    pub record_id: i64,
    pub number: String,
    pub seq: i64,
    pub hash: String,
}

/// Result of `Store::verify_audit`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuditReport {
    pub records_checked: u64,
    pub entries_checked: u64,
    /// Id of the checkpoint compared against, if one exists.
    pub checkpoint_id: Option<i64>,
    pub problems: Vec<AuditProblem>,
}

impl AuditReport {
    /// Returns whether no problem was found.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// One inconsistency, with the record number and the journal seq where it shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditProblem {
    pub record_number: String,
    pub seq: Option<i64>,
    pub kind: ProblemKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProblemKind {
    /// The entry's content does not match its stored hash: it was edited.
    HashMismatch,
    /// The entry's `prev_hash` is not the hash of the entry before it.
    BrokenLink,
    /// Seqs jump from `after` to the reported seq: entries in between were removed.
    SeqGap { after: i64 },
    /// The record's stored head does not match its last journal entry.
    HeadMismatch { head_seq: i64, last_seq: i64 },
    /// The record is in the checkpoint but no longer in the database.
    RecordMissing,
    /// The journal is shorter than at the checkpoint: its tail was removed.
    SeqWentBack { checkpoint_seq: i64 },
    /// The entry at the checkpoint's seq has another hash than the checkpoint kept: the
    /// tail was rewritten and re-hashed.
    CheckpointHashMismatch,
    /// The checkpoint's own hash does not match its content.
    CheckpointTampered { checkpoint_id: i64 },
}

impl fmt::Display for AuditProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let number = &self.record_number;
        let seq = self.seq.unwrap_or(0);
        match &self.kind {
            ProblemKind::HashMismatch => write!(
                f,
                "record {number}: journal entry {seq} was edited (its hash does not match its content)"
            ),
            ProblemKind::BrokenLink => write!(
                f,
                "record {number}: journal entry {seq} does not link to the entry before it"
            ),
            ProblemKind::SeqGap { after } => write!(
                f,
                "record {number}: journal entries between {after} and {seq} are missing"
            ),
            ProblemKind::HeadMismatch { head_seq, last_seq } => write!(
                f,
                "record {number}: the record's head is entry {head_seq} but its last journal entry is {last_seq}"
            ),
            ProblemKind::RecordMissing => write!(
                f,
                "record {number} is in the last checkpoint but was deleted"
            ),
            ProblemKind::SeqWentBack { checkpoint_seq } => write!(
                f,
                "record {number}: the journal ends at entry {seq} but the last checkpoint saw entry {checkpoint_seq}"
            ),
            ProblemKind::CheckpointHashMismatch => write!(
                f,
                "record {number}: journal entry {seq} differs from the last checkpoint, so the journal was rewritten"
            ),
            ProblemKind::CheckpointTampered { checkpoint_id } => {
                write!(
                    f,
                    "audit checkpoint {checkpoint_id} was edited (its hash does not match its content)"
                )
            }
        }
    }
}

impl Store {
    /// Recomputes every record's journal chain and compares it with the latest checkpoint.
    /// Runs in one read transaction, so writes during the audit cause no false reports.
    pub async fn verify_audit(&self) -> Result<AuditReport, Error> {
        let tx = self.begin_snapshot().await?;
        let mut report = AuditReport::default();

        let mut expected: BTreeMap<i64, CheckpointHead> = BTreeMap::new();
        if let Some(checkpoint) = latest_checkpoint(&tx).await? {
            report.checkpoint_id = Some(checkpoint.id);
            let (heads, hash) = checkpoint_content(&checkpoint.prev_hash, &checkpoint.heads)?;
            if hash != checkpoint.hash {
                report.problems.push(AuditProblem {
                    record_number: String::new(),
                    seq: None,
                    kind: ProblemKind::CheckpointTampered {
                        checkpoint_id: checkpoint.id,
                    },
                });
            }
            expected = heads
                .into_iter()
                .map(|head| (head.record_id, head))
                .collect();
        }

        let mut after_id = 0;
        loop {
            let page = records::Entity::find()
                .filter(records::Column::Id.gt(after_id))
                .order_by_asc(records::Column::Id)
                .limit(PAGE)
                .all(&tx)
                .await?;
            let Some(last) = page.last() else { break };
            after_id = last.id;
            let mut entries = entries_of(&tx, page[0].id, last.id).await?;
            for record in &page {
                let chain = entries.remove(&record.id).unwrap_or_default();
                report.entries_checked += chain.len() as u64;
                report.records_checked += 1;
                check_record(
                    record,
                    &chain,
                    expected.remove(&record.id),
                    &mut report.problems,
                )?;
            }
        }

        for head in expected.into_values() {
            report.problems.push(AuditProblem {
                record_number: head.number,
                seq: Some(head.seq),
                kind: ProblemKind::RecordMissing,
            });
        }
        tx.commit().await?;
        Ok(report)
    }

    /// Writes a checkpoint of every record's journal head, chained to the previous checkpoint.
    pub async fn checkpoint(&self) -> Result<(), Error> {
        self.write(|tx| Box::pin(write_checkpoint(tx))).await
    }
}

async fn write_checkpoint(tx: &DatabaseTransaction) -> Result<(), Error> {
    // NOTE: one checkpoint row stores every record's head, about 100 bytes per record, and is
    // built in memory. Past about a million records it should be split into pages.
    let rows: Vec<(i64, String, i64, String)> = records::Entity::find()
        .select_only()
        .column(records::Column::Id)
        .column(records::Column::Number)
        .column(records::Column::JournalSeq)
        .column(records::Column::JournalHead)
        .filter(records::Column::JournalSeq.gt(0))
        .order_by_asc(records::Column::Id)
        .into_tuple()
        .all(tx)
        .await?;
    let heads: Vec<CheckpointHead> = rows
        .into_iter()
        .map(|(record_id, number, seq, hash)| CheckpointHead {
            record_id,
            number,
            seq,
            hash,
        })
        .collect();
    let heads = serde_json::to_string(&heads).map_err(|error| Error::Invalid(error.to_string()))?;
    let prev_hash = latest_checkpoint(tx)
        .await?
        .map(|c| c.hash)
        .unwrap_or_default();
    let hash = checkpoint_hash(&prev_hash, &heads);
    let row = audit_checkpoints::ActiveModel {
        at: Set(now()),
        heads: Set(heads),
        prev_hash: Set(prev_hash),
        hash: Set(hash),
        ..Default::default()
    };
    audit_checkpoints::Entity::insert(row).exec(tx).await?;
    Ok(())
}

fn check_record(
    record: &records::Model,
    chain: &[journal::Model],
    checkpoint: Option<CheckpointHead>,
    problems: &mut Vec<AuditProblem>,
) -> Result<(), Error> {
    let mut report = |seq: Option<i64>, kind: ProblemKind| {
        problems.push(AuditProblem {
            record_number: record.number.clone(),
            seq,
            kind,
        });
    };

    let mut previous: Option<&journal::Model> = None;
    for entry in chain {
        let expected_seq = previous.map_or(1, |p| p.seq + 1);
        if entry.seq != expected_seq {
            report(
                Some(entry.seq),
                ProblemKind::SeqGap {
                    after: expected_seq - 1,
                },
            );
        }
        // After a gap the link cannot match; the gap is the finding, not a second one.
        let expected_prev = previous.map_or("", |p| p.hash.as_str());
        if entry.seq == expected_seq && entry.prev_hash != expected_prev {
            report(Some(entry.seq), ProblemKind::BrokenLink);
        }
        let body: Value = serde_json::from_str(&entry.body).map_err(|error| {
            Error::corrupt(
                format!("journal entry {} of record {}", entry.seq, record.number),
                error,
            )
        })?;
        let hash = entry_hash(
            &entry.prev_hash,
            &record.number,
            entry.seq,
            entry.at,
            &entry.actor,
            &body,
        );
        if hash != entry.hash {
            report(Some(entry.seq), ProblemKind::HashMismatch);
        }
        if let Some(head) = checkpoint.as_ref().filter(|head| head.seq == entry.seq)
            && head.hash != entry.hash
        {
            report(Some(entry.seq), ProblemKind::CheckpointHashMismatch);
        }
        previous = Some(entry);
    }

    let (last_seq, last_hash) = previous.map_or((0, ""), |p| (p.seq, p.hash.as_str()));
    if record.journal_seq != last_seq || record.journal_head != last_hash {
        report(
            Some(last_seq),
            ProblemKind::HeadMismatch {
                head_seq: record.journal_seq,
                last_seq,
            },
        );
    }
    if let Some(head) = checkpoint
        && last_seq < head.seq
    {
        report(
            Some(last_seq),
            ProblemKind::SeqWentBack {
                checkpoint_seq: head.seq,
            },
        );
    }
    Ok(())
}

/// Loads the journal entries of records `first..=last`, grouped by record, in seq order.
async fn entries_of<C: ConnectionTrait>(
    db: &C,
    first: i64,
    last: i64,
) -> Result<BTreeMap<i64, Vec<journal::Model>>, Error> {
    let rows = journal::Entity::find()
        .filter(journal::Column::RecordId.between(first, last))
        .order_by_asc(journal::Column::RecordId)
        .order_by_asc(journal::Column::Seq)
        .all(db)
        .await?;
    let mut grouped: BTreeMap<i64, Vec<journal::Model>> = BTreeMap::new();
    for row in rows {
        grouped.entry(row.record_id).or_default().push(row);
    }
    Ok(grouped)
}

async fn latest_checkpoint<C: ConnectionTrait>(
    db: &C,
) -> Result<Option<audit_checkpoints::Model>, Error> {
    Ok(audit_checkpoints::Entity::find()
        .order_by_desc(audit_checkpoints::Column::Id)
        .one(db)
        .await?)
}

fn checkpoint_content(
    prev_hash: &str,
    heads: &str,
) -> Result<(Vec<CheckpointHead>, String), Error> {
    let parsed: Vec<CheckpointHead> = serde_json::from_str(heads)
        .map_err(|error| Error::corrupt("audit checkpoint heads", error))?;
    Ok((parsed, checkpoint_hash(prev_hash, heads)))
}

fn checkpoint_hash(prev_hash: &str, heads: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(b"\n");
    hasher.update(heads.as_bytes());
    hex::encode(hasher.finalize())
}

impl Store {
    /// Returns when the latest checkpoint was written, if ever.
    pub async fn last_checkpoint_at(&self) -> Result<Option<DateTime<Utc>>, Error> {
        Ok(latest_checkpoint(self.db())
            .await?
            .map(|checkpoint| checkpoint.at))
    }
}

impl Store {
    /// Begins a read-only transaction that reads one snapshot. SQLite in WAL mode keeps the
    /// snapshot of the first read for the whole transaction and takes no isolation options.
    async fn begin_snapshot(&self) -> Result<DatabaseTransaction, Error> {
        let db = self.db();
        let tx = match self.backend() {
            Backend::Postgres => {
                db.begin_with_config(
                    Some(IsolationLevel::RepeatableRead),
                    Some(AccessMode::ReadOnly),
                )
                .await?
            }
            Backend::Sqlite => db.begin().await?,
        };
        Ok(tx)
    }
}
