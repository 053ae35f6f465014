//! The problem process through the API: its main path, the guard on `resolve` quoting its
//! own message, a state that requires a field, and an incident linked to its problem.

use serde_json::json;
use tend_test_support::reqwest::StatusCode;
use tend_test_support::{Backend, backend_tests};

use crate::common::{Desk, RECORDS, assert_error, create_incident, read, take};

backend_tests!(problem_main_path_and_guard);

async fn problem_main_path_and_guard(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let tom = &desk.tom.client;
    let body = json!({
        "title": "VPN gateway drops tunnels every hour",
        "description": "Several incidents show the same hourly drop.",
        "fields": { "impact": "high", "urgency": "medium", "category": "infrastructure" }
    });

    // Requesters do not open problems.
    let reply = desk
        .alice
        .client
        .post(&format!("{RECORDS}/problem"), &body)
        .await?;
    assert_error(&reply, StatusCode::FORBIDDEN, "forbidden", None);

    let reply = tom.post(&format!("{RECORDS}/problem"), &body).await?;
    let problem = reply.expect_status(StatusCode::CREATED)?.body;
    let number = problem["number"].as_str().unwrap_or_default().to_owned();
    assert!(number.starts_with("PRB"), "{number}");
    assert_eq!(
        problem["fields"]["priority"], "P2",
        "the shared priority rule ran"
    );

    let reply = tom
        .post(
            &format!("{RECORDS}/{number}/transitions/analyse"),
            &json!({}),
        )
        .await?;
    assert_error(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "required_field_missing",
        Some("assignee"),
    );
    take(
        tom,
        &number,
        "analyse",
        json!({ "fields": { "assignee": "tom" } }),
    )
    .await?;

    // Entering `fix_in_progress` needs the root cause (a requirement of the state).
    let reply = tom
        .post(
            &format!("{RECORDS}/{number}/transitions/fix"),
            &json!({ "comment": "Patch the gateway firmware" }),
        )
        .await?;
    assert_error(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "required_field_missing",
        Some("root_cause"),
    );
    take(
        tom,
        &number,
        "fix",
        json!({ "fields": { "root_cause": "Firmware 4.2 leaks sessions" }, "comment": "Patch the gateway firmware" }),
    )
    .await?;

    // The guard quotes its own message, and nothing is written.
    let before = read(tom, &number).await?;
    let reply = tom
        .post(
            &format!("{RECORDS}/{number}/transitions/resolve"),
            &json!({ "fields": { "closure_code": "fixed" } }),
        )
        .await?;
    assert_error(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "guard_failed",
        None,
    );
    assert_eq!(
        reply.body["error"]["message"],
        "A problem resolved as fixed needs the change that fixes it: fill in \"Change that fixes it\""
    );
    let after = read(tom, &number).await?;
    assert_eq!(after["revision"], before["revision"]);
    assert_eq!(after["state"], "fix_in_progress");

    let resolved = take(
        tom,
        &number,
        "resolve",
        json!({ "fields": { "closure_code": "fixed", "fix_change": "CHG0000012" } }),
    )
    .await?;
    assert_eq!(resolved["state"], "resolved");
    let closed = take(tom, &number, "close", json!({})).await?;
    assert_eq!(closed["state"], "closed");

    // An incident is linked to its problem; both sides show the link.
    let incident = create_incident(
        &desk.alice,
        "VPN dropped again",
        "At 10:00 sharp.",
        json!({}),
    )
    .await?;
    let incident_number = incident["number"].as_str().unwrap_or_default().to_owned();
    let reply = tom
        .post(
            &format!("{RECORDS}/{incident_number}/links"),
            &json!({ "type": "incident_of", "target": number }),
        )
        .await?;
    let linked = reply.expect_status(StatusCode::CREATED)?.body;
    assert_eq!(linked["links"][0]["label"], "Incident of");
    assert_eq!(linked["links"][0]["number"], number.as_str());
    let problem = read(tom, &number).await?;
    assert_eq!(problem["links"][0]["label"], "Incidents");
    assert_eq!(problem["links"][0]["number"], incident_number.as_str());
    Ok(())
}
