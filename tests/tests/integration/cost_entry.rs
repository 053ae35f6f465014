//! Cost entries through the REST API. Labour is priced from minutes and rate, linked to
//! the record it is charged to and confirmed at once. A purchase above the limit waits
//! for a budget holder, and confirmed amounts are locked.

use serde_json::json;
use tend_test_support::reqwest::StatusCode;
use tend_test_support::{Backend, Role, backend_tests};

use crate::common::{Desk, RECORDS, assert_error, create_incident, read, take};
use crate::support::{approve, create, entries, links_of_type, number, set_members, update};

backend_tests!(labour_priced_and_confirmed, purchase_needs_budget_holder);

async fn labour_priced_and_confirmed(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let tom = &desk.tom.client;
    let incident = create_incident(
        &desk.alice,
        "Laptop will not start",
        "The power light blinks.",
        json!({}),
    )
    .await?;
    let incident = number(&incident);

    let entry = create(
        tom,
        "cost_entry",
        json!({
            "title": "Bench repair",
            "fields": { "record": incident, "minutes": 95, "cost_centre": "CC-4100" }
        }),
    )
    .await?;
    let entry = number(&entry);
    assert!(entry.starts_with("COST"), "{entry}");
    let record = read(tom, &entry).await?;
    assert_eq!(record["fields"]["kind"], "labour");
    assert_eq!(record["fields"]["currency"], "EUR");
    assert_eq!(record["fields"]["amount"], serde_json::Value::Null);
    let notes = entries(&record, "note");
    assert_eq!(
        notes.last().map(|note| note["text"].clone()),
        Some(json!(
            "95 minutes of labour have no hourly rate, so the amount is not computed"
        ))
    );

    // 95 minutes at 65 an hour is 102.9166..., rounded to cents.
    let priced = update(tom, &entry, json!({ "rate": 65 })).await?;
    assert_eq!(priced["fields"]["amount"], 102.92);
    let set = entries(&priced, "field_changed")
        .into_iter()
        .rfind(|change| change["field"] == "amount")
        .cloned()
        .unwrap_or_default();
    assert_eq!(set["rule"], "cost_entry/labour_amount");
    assert_eq!(set["reason"], "95 minutes at 65 EUR an hour");

    let costs = links_of_type(&priced, "cost_of");
    assert_eq!(costs.len(), 1, "{}", priced["links"]);
    assert_eq!(costs[0]["number"], incident.as_str());
    assert_eq!(costs[0]["direction"], "outgoing");
    let charged = read(tom, &incident).await?;
    assert_eq!(links_of_type(&charged, "cost_of")[0]["label"], "Costs");

    // A typed amount is replaced by the computed one.
    let repriced = update(tom, &entry, json!({ "amount": 10 })).await?;
    assert_eq!(repriced["fields"]["amount"], 102.92);

    let confirmed = take(tom, &entry, "confirm", json!({})).await?;
    assert_eq!(confirmed["state"], "confirmed", "labour needs no approval");
    assert_eq!(confirmed["approvals"], json!([]));
    let locked = tom
        .patch(
            &format!("{RECORDS}/{entry}"),
            &json!({ "fields": { "minutes": 30 } }),
        )
        .await?;
    assert_error(
        &locked,
        StatusCode::BAD_REQUEST,
        "read_only_field",
        Some("minutes"),
    );
    Ok(())
}

async fn purchase_needs_budget_holder(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    set_members(&desk, &[("budget_holders", &["bea"])])?;
    let bea = desk.server.add_user("bea", &[Role::Requester]).await?;
    let tom = &desk.tom.client;
    let incident = create_incident(&desk.bob, "Disk failed in nas-02", "", json!({})).await?;
    let incident = number(&incident);

    let small = create(
        tom,
        "cost_entry",
        json!({
            "title": "Spare disk",
            "fields": { "kind": "purchase", "record": incident, "amount": 240, "supplier": "Disk Depot" }
        }),
    )
    .await?;
    let small = take(tom, &number(&small), "confirm", json!({})).await?;
    assert_eq!(small["state"], "confirmed", "below the limit of 1000");

    let large = create(
        tom,
        "cost_entry",
        json!({
            "title": "Replacement NAS",
            "fields": { "kind": "purchase", "record": incident, "amount": 4800, "currency": "EUR" }
        }),
    )
    .await?;
    let large = number(&large);
    let waiting = take(tom, &large, "confirm", json!({})).await?;
    assert_eq!(waiting["state"], "recorded");
    assert_eq!(waiting["approval_status"], "pending");
    assert_eq!(
        waiting["approvals"][0]["requests"][0]["approver"],
        "group:budget_holders"
    );
    let requested = entries(&waiting, "approval_requested");
    assert_eq!(requested[0]["approvers"], json!(["group:budget_holders"]));

    let confirmed = approve(&bea, &large).await?;
    assert_eq!(confirmed["state"], "confirmed");
    let reply = tom
        .patch(
            &format!("{RECORDS}/{large}"),
            &json!({ "fields": { "amount": 480 } }),
        )
        .await?;
    assert_error(
        &reply,
        StatusCode::BAD_REQUEST,
        "read_only_field",
        Some("amount"),
    );
    let record = read(tom, &incident).await?;
    assert_eq!(links_of_type(&record, "cost_of").len(), 2);
    Ok(())
}
