//! `GET /api/v1/records` query checks: a `state` that no record can be in is a 400 that
//! lists the valid states, with and without `process`.

use serde_json::json;
use tend_test_support::reqwest::StatusCode;
use tend_test_support::{Backend, backend_tests};

use crate::common::{Desk, RECORDS, assert_error, create_incident, list_numbers};

backend_tests!(state_filter_is_checked);

async fn state_filter_is_checked(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let record = create_incident(
        &desk.alice,
        "Monitor flickers",
        "The left monitor flickers every few seconds.",
        json!({}),
    )
    .await?;
    let number = record["number"].as_str().unwrap_or_default().to_owned();
    let initial = record["state"].as_str().unwrap_or_default().to_owned();
    assert!(!initial.is_empty(), "the record has no state: {record}");

    // Valid state filters still list the record.
    for query in [
        format!("state={initial}"),
        format!("process=incident&state={initial}"),
    ] {
        let numbers = list_numbers(&desk.tom.client, &query, 50).await?;
        assert_eq!(numbers, vec![number.clone()], "list with `{query}`");
    }

    let processes = desk.tom.client.get("/api/v1/processes").await?;
    let processes = processes.expect_status(StatusCode::OK)?.body;
    let incident_states: Vec<String> = processes["processes"]
        .as_array()
        .and_then(|all| all.iter().find(|p| p["process"] == "incident"))
        .and_then(|incident| incident["states"].as_array())
        .map(|states| {
            states
                .iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    assert!(
        incident_states.contains(&initial),
        "the incident states {incident_states:?} lack `{initial}`"
    );

    // With a process, the message lists that process's states.
    let reply = desk
        .tom
        .client
        .get(&format!("{RECORDS}?process=incident&state=bogus"))
        .await?;
    assert_error(
        &reply,
        StatusCode::BAD_REQUEST,
        "invalid_query",
        Some("state"),
    );
    let message = reply.body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("`bogus`"), "{message}");
    assert!(message.contains("process `incident`"), "{message}");
    for state in &incident_states {
        assert!(
            message.contains(state.as_str()),
            "`{state}` is missing from: {message}"
        );
    }

    // Without a process, a state of no loaded definition is rejected too, for every role.
    for client in [&desk.tom.client, &desk.alice.client] {
        let reply = client.get(&format!("{RECORDS}?state=bogus")).await?;
        assert_error(
            &reply,
            StatusCode::BAD_REQUEST,
            "invalid_query",
            Some("state"),
        );
        let message = reply.body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("any process"), "{message}");
        assert!(message.contains(initial.as_str()), "{message}");
    }

    // A state name is matched exactly, not by case or prefix.
    let upper = initial.to_uppercase();
    let reply = desk
        .tom
        .client
        .get(&format!("{RECORDS}?state={upper}"))
        .await?;
    assert_error(
        &reply,
        StatusCode::BAD_REQUEST,
        "invalid_query",
        Some("state"),
    );
    Ok(())
}
