//! Service requests ordered from the catalog through the REST API. The tests cover the
//! items a requester may order, the laptop entitlement and the budget holder's approval.
//! An approved order opens its fulfilment tasks, and the request fulfils itself when its
//! last task is done.

use serde_json::{Value, json};
use tend_test_support::reqwest::StatusCode;
use tend_test_support::{Backend, Role, TestUser, backend_tests};

use crate::common::{Desk, RECORDS, assert_error, read, take, visible_numbers};
use crate::support::{
    approve, attempt, decide, entries, error_message, last_transition, links_of_type, number,
    pending_request, set_members,
};

backend_tests!(
    catalog_lists_orderable_items,
    entitlement_rejects_order,
    laptop_order_to_fulfilled,
    rejected_order_opens_no_tasks,
    requester_cannot_set_approvers,
);

const CATALOG: &str = "/api/v1/catalog";

/// The answers of a valid laptop order.
fn laptop_answers() -> Value {
    json!({
        "model": "standard",
        "justification": "My current laptop no longer boots after the last update",
        "delivery_site": "Berlin office",
    })
}

async fn order(
    user: &TestUser,
    item: &str,
    answers: Value,
) -> anyhow::Result<tend_test_support::Reply> {
    user.client
        .post(&format!("{CATALOG}/{item}"), &json!({ "answers": answers }))
        .await
}

/// Opens a desk with bea, a budget holder who does not work at the service desk.
async fn with_budget_holder(backend: Backend) -> anyhow::Result<(Desk, TestUser)> {
    let desk = Desk::open(backend).await?;
    set_members(&desk, &[("budget_holders", &["bea"])])?;
    let bea = desk.server.add_user("bea", &[Role::Requester]).await?;
    Ok((desk, bea))
}

async fn catalog_lists_orderable_items(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let reply = desk.alice.client.get(CATALOG).await?;
    let items = reply.expect_status(StatusCode::OK)?.body["items"].clone();
    let names: Vec<&str> = items
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| item["name"].as_str())
        .collect();
    assert_eq!(
        names,
        ["laptop", "shared_folder_access", "software_install"]
    );

    let laptop = &items[0];
    assert_eq!(laptop["title"], "New laptop");
    assert_eq!(laptop["process"], "service_request");
    assert_eq!(laptop["needs_approval"], true);
    let questions: Vec<&str> = laptop["form"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|question| question["name"].as_str())
        .collect();
    assert_eq!(questions, ["model", "justification", "delivery_site"]);
    let model = &laptop["form"][0];
    assert_eq!(model["type"], "enum");
    assert_eq!(
        model["values"],
        json!(["standard", "developer", "ultralight"])
    );
    assert_eq!(model["required"], true);
    assert_eq!(model["default"], "standard");
    assert_eq!(
        items[2]["needs_approval"], false,
        "software has no approvers"
    );

    let anonymous = desk.server.anonymous().get(CATALOG).await?;
    assert_eq!(
        anonymous.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        anonymous.text
    );
    Ok(())
}

async fn entitlement_rejects_order(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let mut answers = laptop_answers();
    answers["model"] = json!("developer");
    let reply = order(&desk.alice, "laptop", answers.clone()).await?;
    assert_error(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "guard_failed",
        None,
    );
    assert_eq!(
        error_message(&reply),
        "The developer laptop is for technicians: order the standard model, or ask the service desk for an exception"
    );

    let mut terse = laptop_answers();
    terse["justification"] = json!("broken");
    let reply = order(&desk.alice, "laptop", terse).await?;
    assert_error(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "guard_failed",
        None,
    );
    assert!(
        error_message(&reply).contains("at least 3 words"),
        "{}",
        reply.text
    );

    let mut unknown = laptop_answers();
    unknown["colour"] = json!("black");
    let reply = order(&desk.alice, "laptop", unknown).await?;
    assert_error(
        &reply,
        StatusCode::BAD_REQUEST,
        "invalid_value",
        Some("answers.colour"),
    );

    let reply = order(&desk.alice, "tablet", laptop_answers()).await?;
    assert_error(&reply, StatusCode::NOT_FOUND, "not_found", None);
    assert!(
        visible_numbers(&desk.tom.client).await?.is_empty(),
        "a refused order opened a record"
    );

    // Technicians are entitled to the developer model.
    let reply = order(&desk.tom, "laptop", answers).await?;
    let record = reply.expect_status(StatusCode::CREATED)?.body;
    assert!(
        record["fields"]["variables"]
            .as_str()
            .is_some_and(|text| text.contains("Model: developer")),
        "{}",
        record["fields"]
    );
    Ok(())
}

async fn laptop_order_to_fulfilled(backend: Backend) -> anyhow::Result<()> {
    let (desk, bea) = with_budget_holder(backend).await?;
    let tom = &desk.tom.client;
    let reply = order(&desk.alice, "laptop", laptop_answers()).await?;
    let ordered = reply.expect_status(StatusCode::CREATED)?.body;
    let request = number(&ordered);
    assert!(request.starts_with("REQ"), "{request}");

    let record = read(&desk.alice.client, &request).await?;
    assert_eq!(record["title"], "New laptop");
    assert_eq!(record["fields"]["catalog_item"], "laptop");
    assert_eq!(
        record["fields"]["variables"],
        "Model: standard\nWhy do you need it?: My current laptop no longer boots after the last update\nDelivery site: Berlin office"
    );
    assert_eq!(record["fields"]["approvers"], "group:budget_holders");
    assert_eq!(record["fields"]["requester"], "alice");
    assert_eq!(record["state"], "approval");
    assert_eq!(record["approval_status"], "pending");
    let routed = last_transition(&record);
    assert_eq!(routed["transition"], "request_approval");
    assert_eq!(routed["actor"], "rule:service_request/approval");
    let round = &record["approvals"][0];
    assert_eq!(round["transition"], "approve");
    assert_eq!(round["requests"][0]["approver"], "group:budget_holders");
    assert_eq!(round["requests"][0]["users"], json!(["bea"]));
    assert_eq!(record["links"], json!([]), "no task before the approval");

    // bea may read the request she is asked about, but alice may not decide it.
    let seen = read(&bea.client, &request).await?;
    assert_eq!(seen["number"], request.as_str());
    let id = pending_request(&bea, &request).await?;
    let own = desk
        .alice
        .client
        .post(
            &format!("{RECORDS}/{request}/approvals/{id}"),
            &json!({ "decision": "approve" }),
        )
        .await?;
    assert_error(&own, StatusCode::FORBIDDEN, "forbidden", None);

    let approved = approve(&bea, &request).await?;
    assert_eq!(approved["state"], "fulfilment");
    assert_eq!(approved["approval_status"], "approved");

    let record = read(tom, &request).await?;
    let tasks = links_of_type(&record, "task_of");
    let titles: Vec<&str> = tasks.iter().filter_map(|t| t["title"].as_str()).collect();
    assert_eq!(
        titles,
        [
            "Order the laptop",
            "Image and enrol the laptop",
            "Hand the laptop over"
        ]
    );
    let task_numbers: Vec<String> = tasks.iter().map(number).collect();
    for (link, group) in tasks
        .iter()
        .zip(["procurement", "desktop_support", "desktop_support"])
    {
        assert_eq!(link["label"], "Tasks");
        assert_eq!(link["direction"], "incoming");
        assert_eq!(link["state"], "open");
        let task = read(tom, &number(link)).await?;
        assert_eq!(task["process"], "task");
        assert_eq!(task["fields"]["assignment_group"], group);
        assert_eq!(task["fields"]["requester"], "alice");
        assert_eq!(links_of_type(&task, "task_of")[0]["label"], "Task of");
    }

    let early = attempt(tom, &request, "fulfil", json!({})).await?;
    assert_error(
        &early,
        StatusCode::UNPROCESSABLE_ENTITY,
        "guard_failed",
        None,
    );
    let message = error_message(&early);
    assert!(
        message.starts_with("The request still has open tasks:"),
        "{message}"
    );
    for task in &task_numbers {
        assert!(message.contains(task.as_str()), "{task} missing: {message}");
    }

    take(tom, &task_numbers[0], "start", json!({})).await?;
    take(
        tom,
        &task_numbers[0],
        "complete",
        json!({ "fields": { "result": "Ordered, PO 4711" } }),
    )
    .await?;
    take(tom, &task_numbers[1], "complete", json!({})).await?;
    assert_eq!(read(tom, &request).await?["state"], "fulfilment");

    take(tom, &task_numbers[2], "complete", json!({})).await?;
    let fulfilled = read(&desk.alice.client, &request).await?;
    assert_eq!(fulfilled["state"], "fulfilled");
    let step = last_transition(&fulfilled);
    assert_eq!(step["transition"], "fulfil");
    assert_eq!(step["actor"], "rule:service_request/tasks");
    let closed = take(&desk.alice.client, &request, "close", json!({})).await?;
    assert_eq!(closed["state"], "closed");
    Ok(())
}

async fn rejected_order_opens_no_tasks(backend: Backend) -> anyhow::Result<()> {
    let (desk, bea) = with_budget_holder(backend).await?;
    let reply = order(&desk.bob, "laptop", laptop_answers()).await?;
    let request = number(&reply.expect_status(StatusCode::CREATED)?.body);

    let reason = "Laptops are replaced after four years; yours is two years old";
    let reply = decide(&bea, &request, "reject", reason).await?;
    let rejected = reply.expect_status(StatusCode::OK)?.body;
    assert_eq!(rejected["state"], "rejected");
    assert_eq!(rejected["approval_status"], "rejected");
    let record = read(&desk.bob.client, &request).await?;
    assert_eq!(last_transition(&record)["transition"], "reject");
    let comments = entries(&record, "commented");
    assert!(
        comments
            .last()
            .and_then(|entry| entry["text"].as_str())
            .is_some_and(|text| text.ends_with(reason)),
        "{comments:?}"
    );
    let record = read(&desk.tom.client, &request).await?;
    assert_eq!(links_of_type(&record, "task_of"), Vec::<Value>::new());
    Ok(())
}

async fn requester_cannot_set_approvers(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let alice = &desk.alice.client;
    let path = format!("{RECORDS}/service_request");
    for (field, value) in [
        ("approvers", json!("user:bob")),
        ("catalog_item", json!("laptop")),
        ("approval_required", json!(false)),
    ] {
        let reply = alice
            .post(
                &path,
                &json!({ "title": "A laptop, please", "fields": { field: value } }),
            )
            .await?;
        assert_error(&reply, StatusCode::FORBIDDEN, "forbidden", Some(field));
        assert_eq!(
            error_message(&reply),
            format!("setting field `{field}` needs the role technician")
        );
    }
    assert!(visible_numbers(&desk.tom.client).await?.is_empty());

    let reply = alice
        .post(&path, &json!({ "title": "A second monitor, please" }))
        .await?;
    let record = reply.expect_status(StatusCode::CREATED)?.body;
    assert_eq!(record["state"], "submitted", "nothing asks for approval");
    assert_eq!(record["fields"]["requester"], "alice");
    Ok(())
}
