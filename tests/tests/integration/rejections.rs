//! Requests the API must reject, each with its status and error code, and each without
//! writing anything: the record, its journal and the list stay as they were.

use serde_json::json;
use tend_test_support::reqwest::{Method, StatusCode};
use tend_test_support::{Backend, backend_tests};

use crate::common::{Desk, NEW_INCIDENT, RECORDS, Unchanged, assert_error, create_incident};

backend_tests!(
    requesters_are_confined,
    invalid_input_is_rejected,
    invalid_moves_are_rejected,
    missing_token_is_rejected
);

async fn requesters_are_confined(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let record = create_incident(
        &desk.alice,
        "Keyboard is missing keys",
        "The E and the R keys fell off.",
        json!({}),
    )
    .await?;
    let number = record["number"].as_str().unwrap_or_default().to_owned();
    let path = format!("{RECORDS}/{number}");
    let unchanged = Unchanged::capture(&desk.tom.client, &number).await?;

    // To another requester the record does not exist.
    let reply = desk.bob.client.get(&path).await?;
    assert_error(&reply, StatusCode::NOT_FOUND, "not_found", None);
    assert!(
        !reply.text.contains("Keyboard"),
        "the 404 leaks the record: {}",
        reply.text
    );
    let reply = desk
        .bob
        .client
        .post(&format!("{path}/comments"), &json!({ "text": "Me too." }))
        .await?;
    assert_error(&reply, StatusCode::NOT_FOUND, "not_found", None);
    unchanged.check("bob's comment on alice's record").await?;
    let reply = desk
        .bob
        .client
        .post(&format!("{path}/transitions/close"), &json!({}))
        .await?;
    assert_error(&reply, StatusCode::NOT_FOUND, "not_found", None);
    unchanged
        .check("bob's transition on alice's record")
        .await?;
    let bob_list = desk.bob.client.get(RECORDS).await?;
    assert_eq!(bob_list.status, StatusCode::OK, "{}", bob_list.text);
    assert_eq!(
        bob_list.body["records"],
        json!([]),
        "bob lists alice's record: {}",
        bob_list.text
    );
    let reply = desk
        .bob
        .client
        .get(&format!("{RECORDS}?requester=alice"))
        .await?;
    assert_eq!(
        reply.body["records"],
        json!([]),
        "the requester filter widens bob's view: {}",
        reply.text
    );

    // The requester may not take technician transitions or edit fields.
    let reply = desk
        .alice
        .client
        .post(&format!("{path}/transitions/start"), &json!({}))
        .await?;
    assert_error(&reply, StatusCode::FORBIDDEN, "forbidden", None);
    unchanged.check("a requester's start").await?;
    let reply = desk
        .alice
        .client
        .post(
            &format!("{path}/transitions/resolve"),
            &json!({ "fields": { "resolution_code": "fixed" } }),
        )
        .await?;
    assert_error(&reply, StatusCode::FORBIDDEN, "forbidden", None);
    unchanged.check("a requester's resolve").await?;
    let reply = desk
        .alice
        .client
        .patch(&path, &json!({ "fields": { "urgency": "high" } }))
        .await?;
    assert_error(&reply, StatusCode::FORBIDDEN, "forbidden", None);
    unchanged.check("a requester's PATCH").await?;

    // A requester may not open a record in someone else's name.
    let reply = desk
        .alice
        .client
        .post(
            NEW_INCIDENT,
            &json!({ "title": "On behalf of bob", "fields": { "requester": "bob" } }),
        )
        .await?;
    assert_error(&reply, StatusCode::FORBIDDEN, "forbidden", None);
    unchanged.check("a create for someone else").await?;

    let reply = desk
        .tom
        .client
        .get(&format!("{RECORDS}/INC9999999"))
        .await?;
    assert_error(&reply, StatusCode::NOT_FOUND, "not_found", None);
    Ok(())
}

async fn invalid_input_is_rejected(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let tom = &desk.tom.client;
    let record = create_incident(
        &desk.alice,
        "Monitor flickers",
        "When the laptop is docked.",
        json!({}),
    )
    .await?;
    let number = record["number"].as_str().unwrap_or_default().to_owned();
    let path = format!("{RECORDS}/{number}");
    let unchanged = Unchanged::capture(tom, &number).await?;

    let cases = [
        (
            "an unknown field",
            json!({ "title": "Colour", "fields": { "colour": "red" } }),
            "unknown_field",
            "colour",
        ),
        (
            "an invalid enum value",
            json!({ "title": "Huge", "fields": { "impact": "huge" } }),
            "invalid_value",
            "impact",
        ),
        (
            "a number for an enum",
            json!({ "title": "Three", "fields": { "urgency": 3 } }),
            "invalid_value",
            "urgency",
        ),
        (
            "a read-only field",
            json!({ "title": "Mine first", "fields": { "priority": "P1" } }),
            "read_only_field",
            "priority",
        ),
        (
            "an empty title",
            json!({ "title": "  ", "fields": {} }),
            "required_field_missing",
            "title",
        ),
    ];
    for (case, body, code, field) in cases {
        let status = if code == "required_field_missing" {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::BAD_REQUEST
        };
        let reply = desk.alice.client.post(NEW_INCIDENT, &body).await?;
        assert_error(&reply, status, code, Some(field));
        unchanged.check(&format!("a create with {case}")).await?;
    }

    let reply = desk
        .alice
        .client
        .send(
            desk.alice
                .client
                .request(Method::POST, NEW_INCIDENT)
                .header("content-type", "application/json")
                .body("{\"title\": "),
        )
        .await?;
    assert_error(&reply, StatusCode::BAD_REQUEST, "invalid_json", None);
    unchanged.check("a create with broken JSON").await?;

    let reply = desk
        .alice
        .client
        .post(
            "/api/v1/records/teleport",
            &json!({ "title": "Beam me up" }),
        )
        .await?;
    assert_error(&reply, StatusCode::NOT_FOUND, "unknown_process", None);
    unchanged.check("a create of an unknown process").await?;

    for (case, body, code, field) in [
        (
            "an unknown field",
            json!({ "fields": { "colour": "red" } }),
            "unknown_field",
            "colour",
        ),
        (
            "an invalid enum value",
            json!({ "fields": { "urgency": "urgent" } }),
            "invalid_value",
            "urgency",
        ),
        (
            "a read-only field",
            json!({ "fields": { "priority": "P1" } }),
            "read_only_field",
            "priority",
        ),
    ] {
        let reply = tom.patch(&path, &body).await?;
        assert_error(&reply, StatusCode::BAD_REQUEST, code, Some(field));
        unchanged.check(&format!("a PATCH with {case}")).await?;
    }

    let reply = tom
        .post(
            &format!("{path}/transitions/start"),
            &json!({ "fields": { "colour": "red" } }),
        )
        .await?;
    assert_error(
        &reply,
        StatusCode::BAD_REQUEST,
        "unknown_field",
        Some("colour"),
    );
    unchanged
        .check("a transition with an unknown field")
        .await?;

    let reply = tom
        .post(&format!("{path}/comments"), &json!({ "text": " " }))
        .await?;
    assert_error(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "required_field_missing",
        Some("text"),
    );
    unchanged.check("an empty comment").await?;
    Ok(())
}

async fn invalid_moves_are_rejected(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let tom = &desk.tom.client;
    let record = create_incident(
        &desk.alice,
        "Badge does not open the door",
        "Side entrance, since Monday.",
        json!({}),
    )
    .await?;
    let number = record["number"].as_str().unwrap_or_default().to_owned();
    let path = format!("{RECORDS}/{number}");
    let unchanged = Unchanged::capture(tom, &number).await?;

    let reply = tom
        .post(&format!("{path}/transitions/close"), &json!({}))
        .await?;
    assert_error(&reply, StatusCode::CONFLICT, "transition_not_allowed", None);
    unchanged.check("close from new").await?;

    let reply = tom
        .post(
            &format!("{path}/transitions/reopen"),
            &json!({ "comment": "Again." }),
        )
        .await?;
    assert_error(&reply, StatusCode::CONFLICT, "transition_not_allowed", None);
    unchanged.check("reopen from new").await?;

    let reply = tom
        .post(&format!("{path}/transitions/teleport"), &json!({}))
        .await?;
    assert_error(&reply, StatusCode::NOT_FOUND, "unknown_transition", None);
    unchanged.check("an unknown transition").await?;

    let reply = tom
        .post(&format!("{path}/transitions/await_user_info"), &json!({}))
        .await?;
    assert_error(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "comment_required",
        Some("comment"),
    );
    unchanged.check("await_user_info without a comment").await?;

    let reply = tom
        .post(
            &format!("{RECORDS}/INC9999999/transitions/start"),
            &json!({}),
        )
        .await?;
    assert_error(&reply, StatusCode::NOT_FOUND, "not_found", None);
    unchanged.check("a transition on an unknown record").await?;
    Ok(())
}

async fn missing_token_is_rejected(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let record = create_incident(
        &desk.alice,
        "Phone has no dial tone",
        "Desk phone in room 4.12.",
        json!({}),
    )
    .await?;
    let number = record["number"].as_str().unwrap_or_default().to_owned();
    let path = format!("{RECORDS}/{number}");
    let unchanged = Unchanged::capture(&desk.tom.client, &number).await?;

    let anonymous = desk.server.anonymous();
    let forged = desk.server.client("tend_this-token-was-never-issued");
    for (who, client) in [("no token", &anonymous), ("an unknown token", &forged)] {
        let reply = client.get(RECORDS).await?;
        assert_error(&reply, StatusCode::UNAUTHORIZED, "unauthenticated", None);
        let reply = client.get(&path).await?;
        assert_error(&reply, StatusCode::UNAUTHORIZED, "unauthenticated", None);
        let reply = client
            .post(NEW_INCIDENT, &json!({ "title": "Sneaky" }))
            .await?;
        assert_error(&reply, StatusCode::UNAUTHORIZED, "unauthenticated", None);
        unchanged.check(&format!("a create with {who}")).await?;
        let reply = client
            .post(&format!("{path}/transitions/start"), &json!({}))
            .await?;
        assert_error(&reply, StatusCode::UNAUTHORIZED, "unauthenticated", None);
        let reply = client
            .post(&format!("{path}/comments"), &json!({ "text": "Hello" }))
            .await?;
        assert_error(&reply, StatusCode::UNAUTHORIZED, "unauthenticated", None);
        let reply = client.patch(&path, &json!({ "title": "Renamed" })).await?;
        assert_error(&reply, StatusCode::UNAUTHORIZED, "unauthenticated", None);
        unchanged.check(&format!("changes with {who}")).await?;
    }

    // A malformed Authorization header is no token either.
    let reply = desk
        .server
        .anonymous()
        .send(
            desk.server
                .anonymous()
                .request(Method::GET, RECORDS)
                .header("authorization", format!("Basic {}", desk.tom.token)),
        )
        .await?;
    assert_error(&reply, StatusCode::UNAUTHORIZED, "unauthenticated", None);

    // The health check needs no token.
    let health = anonymous.get("/healthz").await?;
    assert_eq!(health.status, StatusCode::OK, "{}", health.text);
    assert_eq!(health.body["status"], "ok");
    Ok(())
}
