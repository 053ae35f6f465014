//! Reopening follows the transition matrix of the shipped incident definition: offered and
//! allowed on a resolved incident, neither offered nor allowed on a closed one.

use serde_json::json;
use tend_test_support::reqwest::StatusCode;
use tend_test_support::{Backend, backend_tests, load_definitions};

use crate::common::{
    Desk, RECORDS, Unchanged, assert_error, create_incident, journal, read, take, transition_names,
};

backend_tests!(reopen_follows_the_definition);

async fn reopen_follows_the_definition(backend: Backend) -> anyhow::Result<()> {
    let (definitions, _) = load_definitions()?;
    let incident = definitions
        .get("incident")
        .expect("the incident definition is shipped");
    let reopen = incident
        .transition("reopen")
        .expect("the incident definition has `reopen`");
    assert!(
        reopen.from.iter().any(|state| state == "resolved"),
        "reopen from: {:?}",
        reopen.from
    );
    assert_eq!(reopen.to, "in_progress");
    assert!(
        !reopen.from.iter().any(|state| state == "closed"),
        "reopen from: {:?}",
        reopen.from
    );

    let desk = Desk::open(backend).await?;
    let tom = &desk.tom.client;
    let alice = &desk.alice.client;
    let record = create_incident(
        &desk.alice,
        "VPN drops every hour",
        "The tunnel closes at the full hour.",
        json!({}),
    )
    .await?;
    let number = record["number"].as_str().unwrap_or_default().to_owned();
    let path = format!("{RECORDS}/{number}");
    take(tom, &number, "start", json!({})).await?;
    let record = take(
        tom,
        &number,
        "resolve",
        json!({ "fields": { "resolution_code": "fixed" } }),
    )
    .await?;
    assert_eq!(record["state"], "resolved");

    // Both the technician and the requester are offered reopen, leading to in_progress.
    for (who, client) in [("tom", tom), ("alice", alice)] {
        let record = read(client, &number).await?;
        let offered = transition_names(&record);
        assert!(
            offered.contains(&"reopen"),
            "{who} is not offered reopen: {offered:?}"
        );
        let entry = record["transitions"]
            .as_array()
            .and_then(|all| all.iter().find(|t| t["name"] == "reopen"))
            .cloned()
            .unwrap_or_default();
        assert_eq!(entry["to"], "in_progress");
        assert_eq!(entry["comment_required"], true);
    }

    // Reopening needs a reason.
    let unchanged = Unchanged::capture(tom, &number).await?;
    let reply = alice
        .post(&format!("{path}/transitions/reopen"), &json!({}))
        .await?;
    assert_error(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "comment_required",
        Some("comment"),
    );
    unchanged.check("reopen without a comment").await?;

    let record = take(
        alice,
        &number,
        "reopen",
        json!({ "comment": "It drops again since this morning." }),
    )
    .await?;
    assert_eq!(record["state"], "in_progress");
    let moves: Vec<(String, String, String)> = journal(&record)
        .iter()
        .filter(|entry| entry["event"] == "transitioned")
        .map(|entry| {
            (
                entry["transition"].as_str().unwrap_or_default().to_owned(),
                entry["from"].as_str().unwrap_or_default().to_owned(),
                entry["to"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        moves.last(),
        Some(&(
            "reopen".to_owned(),
            "resolved".to_owned(),
            "in_progress".to_owned()
        ))
    );
    assert_eq!(
        record["fields"]["reopen_count"], 1,
        "the reopen is counted: {}",
        record["fields"]
    );

    // Resolved again and closed, the incident cannot be reopened.
    take(tom, &number, "resolve", json!({})).await?;
    let record = take(tom, &number, "close", json!({})).await?;
    assert_eq!(record["state"], "closed");
    for (who, client) in [("tom", tom), ("alice", alice)] {
        let record = read(client, &number).await?;
        let offered = transition_names(&record);
        assert!(
            !offered.contains(&"reopen"),
            "{who} is offered reopen on a closed incident: {offered:?}"
        );
    }
    let unchanged = Unchanged::capture(tom, &number).await?;
    for (who, client) in [("tom", tom), ("alice", alice)] {
        let reply = client
            .post(
                &format!("{path}/transitions/reopen"),
                &json!({ "comment": "Once more." }),
            )
            .await?;
        assert_error(&reply, StatusCode::CONFLICT, "transition_not_allowed", None);
        unchanged
            .check(&format!("{who}'s reopen of a closed incident"))
            .await?;
    }
    Ok(())
}
