//! A create sent twice with the same `Idempotency-Key` makes one record, whether the two
//! requests follow each other or run at the same time.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tend_test_support::reqwest::{Method, StatusCode};
use tend_test_support::{Backend, Reply, TestUser, backend_tests};

use crate::common::{Desk, NEW_INCIDENT, visible_numbers};

backend_tests!(
    double_submission_creates_once,
    concurrent_submission_creates_once
);

async fn create_with_key(user: &TestUser, key: &str, body: &Value) -> anyhow::Result<Reply> {
    let request = user
        .client
        .request(Method::POST, NEW_INCIDENT)
        .header("Idempotency-Key", key)
        .json(body);
    user.client.send(request).await
}

fn number(reply: &Reply) -> String {
    reply.body["number"].as_str().unwrap_or_default().to_owned()
}

async fn double_submission_creates_once(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let body = json!({ "title": "Cannot print payslips", "description": "The print button does nothing." });

    let started = Instant::now();
    let first = create_with_key(&desk.alice, "form-7f3a", &body).await?;
    let second = create_with_key(&desk.alice, "form-7f3a", &body).await?;
    let elapsed = started.elapsed();
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    assert_eq!(
        second.status,
        StatusCode::OK,
        "the repeat returns the first record: {}",
        second.text
    );
    assert_eq!(number(&first), number(&second));
    assert_eq!(
        second.body["journal"], first.body["journal"],
        "the repeat wrote to the journal"
    );
    if elapsed > Duration::from_millis(200) {
        eprintln!("note: the two submissions took {elapsed:?}, longer than a double click");
    }
    let listed = visible_numbers(&desk.tom.client).await?;
    assert_eq!(
        listed.len(),
        1,
        "records after a double submission: {listed:?}"
    );

    // The key belongs to the user: the same key from bob is a new record.
    let bobs = create_with_key(&desk.bob, "form-7f3a", &body).await?;
    assert_eq!(bobs.status, StatusCode::CREATED, "{}", bobs.text);
    assert_ne!(number(&bobs), number(&first));

    // Without a key, two submissions are two records.
    let third = desk.alice.client.post(NEW_INCIDENT, &body).await?;
    let fourth = desk.alice.client.post(NEW_INCIDENT, &body).await?;
    assert_eq!(third.status, StatusCode::CREATED, "{}", third.text);
    assert_eq!(fourth.status, StatusCode::CREATED, "{}", fourth.text);
    assert_ne!(number(&third), number(&fourth));
    assert_eq!(visible_numbers(&desk.tom.client).await?.len(), 4);

    // An empty key is rejected, and nothing is written.
    let reply = create_with_key(&desk.alice, "", &body).await?;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
    assert_eq!(reply.error_code(), Some("invalid_header"));
    assert_eq!(visible_numbers(&desk.tom.client).await?.len(), 4);
    Ok(())
}

async fn concurrent_submission_creates_once(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let body = json!({ "title": "Wi-Fi drops every few minutes", "description": "Meeting room 2, since the update." });

    for round in 0..3 {
        let key = format!("concurrent-{round}");
        let (left, right) = tokio::join!(
            create_with_key(&desk.alice, &key, &body),
            create_with_key(&desk.alice, &key, &body)
        );
        let (left, right) = (left?, right?);
        let mut statuses = [left.status.as_u16(), right.status.as_u16()];
        statuses.sort_unstable();
        assert_eq!(
            statuses,
            [200, 201],
            "round {round}: {} / {}",
            left.text,
            right.text
        );
        assert_eq!(number(&left), number(&right), "round {round}");
        let listed = visible_numbers(&desk.tom.client).await?;
        assert_eq!(listed.len(), round + 1, "round {round}: {listed:?}");
    }
    Ok(())
}
