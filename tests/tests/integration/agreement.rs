//! Service level agreements as records: only process owners keep them, and an agreement
//! is put in force only with its start and review dates.

use serde_json::json;
use tend_test_support::reqwest::StatusCode;
use tend_test_support::{Backend, Role, backend_tests};

use crate::common::{Desk, RECORDS, assert_error, take};

backend_tests!(agreement_lifecycle);

async fn agreement_lifecycle(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let olga = desk.server.add_user("olga", &[Role::ProcessOwner]).await?;
    let body = json!({
        "title": "Payroll service for Finance",
        "fields": { "kind": "sla", "service": "payroll", "owner": "olga", "resolution_target": "8 business hours" }
    });

    let reply = desk
        .tom
        .client
        .post(&format!("{RECORDS}/agreement"), &body)
        .await?;
    assert_error(&reply, StatusCode::FORBIDDEN, "forbidden", None);

    let reply = olga
        .client
        .post(
            &format!("{RECORDS}/agreement"),
            &json!({ "title": "No kind", "fields": { "service": "payroll", "owner": "olga" } }),
        )
        .await?;
    assert_error(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "required_field_missing",
        Some("kind"),
    );

    let reply = olga
        .client
        .post(&format!("{RECORDS}/agreement"), &body)
        .await?;
    let agreement = reply.expect_status(StatusCode::CREATED)?.body;
    let number = agreement["number"].as_str().unwrap_or_default().to_owned();
    assert!(number.starts_with("SLA"), "{number}");

    let reply = olga
        .client
        .post(
            &format!("{RECORDS}/{number}/transitions/activate"),
            &json!({ "fields": { "starts_on": "2027-01-01" } }),
        )
        .await?;
    assert_error(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "required_field_missing",
        Some("review_on"),
    );

    let reply = olga
        .client
        .post(
            &format!("{RECORDS}/{number}/transitions/activate"),
            &json!({ "fields": { "starts_on": "2027-01-01", "review_on": "1 July" } }),
        )
        .await?;
    assert_error(
        &reply,
        StatusCode::BAD_REQUEST,
        "invalid_value",
        Some("review_on"),
    );

    let active = take(
        &olga.client,
        &number,
        "activate",
        json!({ "fields": { "starts_on": "2027-01-01", "review_on": "2027-07-01" } }),
    )
    .await?;
    assert_eq!(active["state"], "active");
    let offered: Vec<&str> = active["transitions"]
        .as_array()
        .map(|all| all.iter().filter_map(|t| t["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(offered, ["review", "retire"]);
    Ok(())
}
