mod common;

use common::{comment, create, new_record, update};
use serde_json::json;
use tend_domain::Record;
use tend_store::testing::TestDb;
use tend_store::{AuditProblem, AuditReport, ProblemKind};

on_both_backends!(
    clean_journal_verifies,
    edited_entry_detected,
    removed_middle_entry_detected,
    removed_last_entry_after_checkpoint_detected,
    rehashed_tail_after_checkpoint_detected,
    deleted_record_after_checkpoint_detected,
    edited_checkpoint_detected,
    audit_during_writes_stays_clean,
);

/// Creates a record with entries 1 (created), 2, 3 and 4.
async fn record_with_four_entries(db: &TestDb, title: &str) -> Record {
    let stored = create(
        &db.store,
        new_record("incident", title, json!({})),
        vec![comment("one")],
    )
    .await;
    update(
        &db.store,
        stored.clone(),
        vec![comment("two"), comment("three")],
    )
    .await
    .unwrap()
}

fn problems_of<'a>(report: &'a AuditReport, number: &str) -> Vec<&'a AuditProblem> {
    report
        .problems
        .iter()
        .filter(|problem| problem.record_number == number)
        .collect()
}

async fn clean_journal_verifies(db: &TestDb) {
    let empty = db.store.verify_audit().await.unwrap();
    assert!(empty.is_clean(), "{:?}", empty.problems);
    assert_eq!(empty.checkpoint_id, None);

    record_with_four_entries(db, "A").await;
    record_with_four_entries(db, "B").await;
    db.store.checkpoint().await.unwrap();
    let report = db.store.verify_audit().await.unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
    assert_eq!(report.records_checked, 2);
    assert_eq!(report.entries_checked, 8);
    assert!(report.checkpoint_id.is_some());

    // Writes after a checkpoint are normal growth, not tampering.
    let c = record_with_four_entries(db, "C").await;
    update(&db.store, c, vec![comment("five")]).await.unwrap();
    let report = db.store.verify_audit().await.unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
    assert!(db.store.last_checkpoint_at().await.unwrap().is_some());
}

async fn edited_entry_detected(db: &TestDb) {
    let record = record_with_four_entries(db, "Edited").await;
    let untouched = record_with_four_entries(db, "Untouched").await;
    let changed = db
        .execute(&format!(
            "UPDATE journal SET body = replace(body, 'two', 'TWO') WHERE record_id = {} AND seq = 3",
            record.id
        ))
        .await;
    assert_eq!(changed, 1);

    let report = db.store.verify_audit().await.unwrap();
    let problems = problems_of(&report, &record.number);
    assert_eq!(problems.len(), 1, "{:?}", report.problems);
    assert_eq!(problems[0].seq, Some(3));
    assert_eq!(problems[0].kind, ProblemKind::HashMismatch);
    assert!(problems_of(&report, &untouched.number).is_empty());
    assert!(
        problems[0].to_string().contains("was edited"),
        "{}",
        problems[0]
    );
}

async fn removed_middle_entry_detected(db: &TestDb) {
    let record = record_with_four_entries(db, "Gap").await;
    db.execute(&format!(
        "DELETE FROM journal WHERE record_id = {} AND seq = 2",
        record.id
    ))
    .await;

    let report = db.store.verify_audit().await.unwrap();
    let problems = problems_of(&report, &record.number);
    assert_eq!(problems.len(), 1, "{:?}", report.problems);
    assert_eq!(problems[0].seq, Some(3));
    assert_eq!(problems[0].kind, ProblemKind::SeqGap { after: 1 });
}

async fn removed_last_entry_after_checkpoint_detected(db: &TestDb) {
    let record = record_with_four_entries(db, "Tail").await;
    db.store.checkpoint().await.unwrap();
    db.execute(&format!(
        "DELETE FROM journal WHERE record_id = {} AND seq = 4",
        record.id
    ))
    .await;

    let report = db.store.verify_audit().await.unwrap();
    let kinds: Vec<&ProblemKind> = problems_of(&report, &record.number)
        .iter()
        .map(|p| &p.kind)
        .collect();
    assert!(
        kinds.contains(&&ProblemKind::HeadMismatch {
            head_seq: 4,
            last_seq: 3
        }),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&&ProblemKind::SeqWentBack { checkpoint_seq: 4 }),
        "{kinds:?}"
    );

    // Moving the record's head back as well hides the cut from the chain, not from the
    // checkpoint.
    let entry_three: String = hash_of(db, record.id, 3).await;
    db.execute(&format!(
        "UPDATE records SET journal_seq = 3, journal_head = '{entry_three}' WHERE id = {}",
        record.id
    ))
    .await;
    let report = db.store.verify_audit().await.unwrap();
    let problems = problems_of(&report, &record.number);
    assert_eq!(problems.len(), 1, "{:?}", report.problems);
    assert_eq!(
        problems[0].kind,
        ProblemKind::SeqWentBack { checkpoint_seq: 4 }
    );
    assert_eq!(problems[0].seq, Some(3));
}

/// An attacker who edits an entry and re-hashes every entry after it (and the record head)
/// leaves a consistent chain. Only the checkpoint still contains the old hash.
async fn rehashed_tail_after_checkpoint_detected(db: &TestDb) {
    let record = record_with_four_entries(db, "Rehashed").await;
    db.store.checkpoint().await.unwrap();

    let journal = db.store.journal(record.id).await.unwrap();
    let mut prev_hash = journal[1].hash.clone();
    for entry in &journal[2..] {
        let mut event = serde_json::to_value(&entry.event).unwrap();
        if entry.seq == 3 {
            event["text"] = json!("forged");
        }
        let hash = tend_store::entry_hash(
            &prev_hash,
            &record.number,
            entry.seq,
            entry.at,
            &entry.actor,
            &event,
        );
        db.execute(&format!(
            "UPDATE journal SET body = '{}', prev_hash = '{prev_hash}', hash = '{hash}' WHERE record_id = {} AND seq = {}",
            event, record.id, entry.seq
        ))
        .await;
        prev_hash = hash;
    }
    db.execute(&format!(
        "UPDATE records SET journal_head = '{prev_hash}' WHERE id = {}",
        record.id
    ))
    .await;

    let report = db.store.verify_audit().await.unwrap();
    let problems = problems_of(&report, &record.number);
    assert_eq!(problems.len(), 1, "{:?}", report.problems);
    assert_eq!(problems[0].kind, ProblemKind::CheckpointHashMismatch);
    assert_eq!(problems[0].seq, Some(4));
}

async fn deleted_record_after_checkpoint_detected(db: &TestDb) {
    let remaining = record_with_four_entries(db, "Kept").await;
    let deleted = record_with_four_entries(db, "Deleted").await;
    db.store.checkpoint().await.unwrap();

    db.execute(&format!(
        "DELETE FROM journal WHERE record_id = {}",
        deleted.id
    ))
    .await;
    db.execute(&format!("DELETE FROM records WHERE id = {}", deleted.id))
        .await;

    let report = db.store.verify_audit().await.unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert_eq!(report.problems[0].record_number, deleted.number);
    assert_eq!(report.problems[0].kind, ProblemKind::RecordMissing);
    assert_eq!(report.problems[0].seq, Some(4));
    assert!(problems_of(&report, &remaining.number).is_empty());

    // A new checkpoint accepts the deletion from then on.
    db.store.checkpoint().await.unwrap();
    assert!(db.store.verify_audit().await.unwrap().is_clean());
}

async fn edited_checkpoint_detected(db: &TestDb) {
    let record = record_with_four_entries(db, "Checkpointed").await;
    db.store.checkpoint().await.unwrap();
    db.execute("UPDATE audit_checkpoints SET heads = '[]'")
        .await;

    let report = db.store.verify_audit().await.unwrap();
    let kinds: Vec<&ProblemKind> = report
        .problems
        .iter()
        .map(|problem| &problem.kind)
        .collect();
    assert!(
        matches!(kinds.as_slice(), [ProblemKind::CheckpointTampered { .. }]),
        "{:?} (record {})",
        report.problems,
        record.number
    );
}

async fn hash_of(db: &TestDb, record_id: i64, seq: i64) -> String {
    db.store
        .journal(record_id)
        .await
        .unwrap()
        .into_iter()
        .find(|entry| entry.seq == seq)
        .map(|entry| entry.hash)
        .expect("entry not found")
}

/// Checks that records growing during an audit are not reported, because the audit reads
/// one snapshot.
async fn audit_during_writes_stays_clean(db: &TestDb) {
    let mut records = Vec::new();
    for index in 0..20 {
        records.push(record_with_four_entries(db, &format!("Busy {index}")).await);
    }
    db.store.checkpoint().await.unwrap();

    let store = db.store.clone();
    let writer = tokio::spawn(async move {
        for round in 0..10 {
            for record in records.iter_mut() {
                *record = update(
                    &store,
                    record.clone(),
                    vec![comment(&format!("round {round}"))],
                )
                .await
                .unwrap();
            }
        }
    });
    let mut audits = 0;
    while !writer.is_finished() {
        let report = db.store.verify_audit().await.unwrap();
        assert!(report.is_clean(), "{:?}", report.problems);
        audits += 1;
    }
    writer.await.unwrap();
    assert!(audits > 0);
    let report = db.store.verify_audit().await.unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
    assert_eq!(report.entries_checked, 20 * 14);
}
