//! `tend audit verify` over a database that the API wrote: clean after ordinary commands,
//! and naming the record and entry after a journal row is edited or removed by hand.

use serde_json::json;
use tend_test_support::{Backend, TestServer, backend_tests, run_tend};

use crate::common::{Desk, RECORDS, create_incident, journal, read, take};

backend_tests!(audit_detects_tampering);

async fn audit_verify(desk: &Desk) -> anyhow::Result<tend_test_support::CliOutput> {
    let mut args = vec!["audit".into(), "verify".into()];
    args.extend(desk.server.database().store_args());
    run_tend(args, None).await
}

async fn audit_detects_tampering(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let tom = &desk.tom.client;
    let first = create_incident(
        &desk.alice,
        "Laptop battery swollen",
        "The case bulges near the touchpad.",
        json!({}),
    )
    .await?;
    let first = first["number"].as_str().unwrap_or_default().to_owned();
    let second = create_incident(
        &desk.bob,
        "Printer out of toner",
        "Second floor, next to the kitchen.",
        json!({}),
    )
    .await?;
    let second = second["number"].as_str().unwrap_or_default().to_owned();
    take(tom, &first, "start", json!({})).await?;
    take(
        tom,
        &first,
        "resolve",
        json!({ "fields": { "resolution_code": "replaced" }, "comment": "New battery fitted." }),
    )
    .await?;
    let reply = desk
        .bob
        .client
        .post(
            &format!("{RECORDS}/{second}/comments"),
            &json!({ "text": "Toner cartridge model TN-2420." }),
        )
        .await?;
    assert!(reply.status.is_success(), "{}", reply.text);

    let entries =
        journal(&read(tom, &first).await?).len() + journal(&read(tom, &second).await?).len();
    let clean = audit_verify(&desk).await?;
    assert!(
        clean.success(),
        "audit of an untouched journal failed:\n{clean}"
    );
    assert!(
        clean
            .stdout
            .contains(&format!("checked 2 records and {entries} journal entries")),
        "{clean}"
    );
    assert!(
        clean.stdout.contains("ok: every journal chain is intact"),
        "{clean}"
    );

    let mut args = vec!["audit".into(), "checkpoint".into()];
    args.extend(desk.server.database().store_args());
    run_tend(args, None).await?.expect_success()?;
    let checked = audit_verify(&desk).await?;
    assert!(
        checked.success(),
        "audit after a checkpoint failed:\n{checked}"
    );
    assert!(checked.stdout.contains("against checkpoint"), "{checked}");

    // Edit the comment of the second record in place, as someone with database access could.
    let record = read(tom, &second).await?;
    let comment = journal(&record)
        .iter()
        .find(|entry| entry["event"] == "commented")
        .cloned()
        .expect("the comment is journaled");
    let seq = comment["seq"].as_i64().unwrap_or_default();
    let edited = desk
        .server
        .database()
        .execute(&format!(
            "UPDATE journal SET body = REPLACE(body, 'TN-2420', 'TN-9999') \
             WHERE seq = {seq} AND record_id = (SELECT id FROM records WHERE number = '{second}')"
        ))
        .await?;
    assert_eq!(edited, 1, "rows edited");
    let tampered = audit_verify(&desk).await?;
    assert_eq!(
        tampered.code(),
        Some(1),
        "audit of an edited journal:\n{tampered}"
    );
    assert!(
        tampered
            .stdout
            .contains(&format!("record {second}: journal entry {seq} was edited")),
        "the report names the record and entry:\n{tampered}"
    );
    assert!(
        !tampered.stdout.contains(&first),
        "the untouched record is reported:\n{tampered}"
    );

    // Remove the last entry of the first record, which the checkpoint still contains.
    let last_seq = journal(&read(tom, &first).await?).len();
    let removed = desk
        .server
        .database()
        .execute(&format!(
            "DELETE FROM journal WHERE seq = {last_seq} \
             AND record_id = (SELECT id FROM records WHERE number = '{first}')"
        ))
        .await?;
    assert_eq!(removed, 1, "rows removed");
    let truncated = audit_verify(&desk).await?;
    assert_eq!(
        truncated.code(),
        Some(1),
        "audit of a truncated journal:\n{truncated}"
    );
    assert!(
        truncated
            .stdout
            .lines()
            .any(|line| line.contains(&format!("record {first}")) && line.contains("entry")),
        "the report names the truncated record:\n{truncated}"
    );
    Ok(())
}

backend_tests!(serve_writes_periodic_checkpoints);

/// `tend serve` writes audit checkpoints by itself, so that a deleted record is detected
/// without anyone running `tend audit checkpoint`.
async fn serve_writes_periodic_checkpoints(backend: Backend) -> anyhow::Result<()> {
    let database = tend_test_support::TestDatabase::create(backend).await?;
    let server = TestServer::binary_with(database, &["--checkpoint-seconds", "1"]).await?;
    let store = server.database().connect().await?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while store.last_checkpoint_at().await?.is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint after 20 s; server log:\n{}",
            server.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    Ok(())
}
