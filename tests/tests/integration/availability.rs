//! Availability events and capacity plans through the REST API. A major event opens an
//! incident and gets its duration when it is resolved. A resource that reaches its
//! threshold opens a capacity review task and puts its plan under review.

use serde_json::json;
use tend_test_support::reqwest::StatusCode;
use tend_test_support::{Backend, backend_tests};

use crate::common::{Desk, assert_error, read, take};
use crate::support::{
    attempt, create, entries, error_message, last_transition, links_of_type, number, update,
};

backend_tests!(major_event_opens_incident, threshold_opens_review_task);

async fn major_event_opens_incident(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let tom = &desk.tom.client;
    let event = create(
        tom,
        "availability",
        json!({
            "title": "Checkout service unreachable",
            "description": "HTTP probe failed from three locations.",
            "fields": {
                "source": "prometheus",
                "fingerprint": "probe-checkout-http",
                "service": "webshop",
                "ci": "checkout-api",
                "severity": "major",
                "started_at": "2026-04-07T09:15:00Z",
            }
        }),
    )
    .await?;
    let event = number(&event);
    assert!(event.starts_with("AVL"), "{event}");

    let record = read(tom, &event).await?;
    let detected = links_of_type(&record, "detected_by");
    assert_eq!(detected.len(), 1, "{}", record["links"]);
    assert_eq!(detected[0]["label"], "Detected");
    let incident = read(tom, &number(&detected[0])).await?;
    assert_eq!(incident["process"], "incident");
    assert_eq!(incident["title"], "Checkout service unreachable");
    assert_eq!(incident["fields"]["priority"], "P2");
    assert_eq!(incident["fields"]["ci"], "checkout-api");
    assert_eq!(incident["fields"]["contact_type"], "monitoring");
    assert!(
        incident["description"].as_str().is_some_and(|text| text.starts_with(
            "prometheus reported a major event (fingerprint probe-checkout-http) that started at 2026-04-07T09:15:00Z."
        )),
        "{}",
        incident["description"]
    );
    assert_eq!(
        links_of_type(&incident, "detected_by")[0]["label"],
        "Detected by"
    );

    take(tom, &event, "acknowledge", json!({})).await?;
    let reply = attempt(tom, &event, "resolve", json!({})).await?;
    assert_error(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "required_field_missing",
        Some("ended_at"),
    );
    let reply = attempt(
        tom,
        &event,
        "resolve",
        json!({ "fields": { "ended_at": "2026-04-07T09:00:00Z" } }),
    )
    .await?;
    assert_error(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "guard_failed",
        None,
    );
    assert_eq!(
        error_message(&reply),
        "The event ends at 2026-04-07T09:00:00Z, before it started at 2026-04-07T09:15:00Z: correct \"Ended at\" or \"Started at\""
    );

    // 12:50+02:00 is 10:50 UTC: 95 minutes after the start.
    let resolved = take(
        tom,
        &event,
        "resolve",
        json!({ "fields": { "ended_at": "2026-04-07T12:50:00+02:00" } }),
    )
    .await?;
    assert_eq!(resolved["state"], "resolved");
    assert_eq!(resolved["fields"]["duration_minutes"], 95);
    let reopened = take(tom, &event, "reopen", json!({})).await?;
    assert_eq!(reopened["fields"]["ended_at"], serde_json::Value::Null);
    assert_eq!(
        reopened["fields"]["duration_minutes"],
        serde_json::Value::Null
    );
    let record = read(tom, &event).await?;
    assert_eq!(
        links_of_type(&record, "detected_by").len(),
        1,
        "a reopened event opens no second incident"
    );
    Ok(())
}

async fn threshold_opens_review_task(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let tom = &desk.tom.client;
    let plan = create(
        tom,
        "capacity_plan",
        json!({
            "title": "File server storage",
            "fields": {
                "service": "file-services",
                "resource": "storage",
                "unit": "TB",
                "current_usage": 61,
                "threshold": 80,
            }
        }),
    )
    .await?;
    let plan = number(&plan);
    assert!(plan.starts_with("CAP"), "{plan}");

    let reply = attempt(tom, &plan, "activate", json!({})).await?;
    assert_error(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "required_field_missing",
        Some("review_date"),
    );
    let active = take(
        tom,
        &plan,
        "activate",
        json!({ "fields": { "review_date": "2026-09-30", "owner": "tom" } }),
    )
    .await?;
    assert_eq!(active["state"], "active");

    let noted = update(tom, &plan, json!({ "forecast": 84 })).await?;
    assert_eq!(
        noted["state"], "active",
        "a forecast alone starts no review"
    );
    let notes = entries(&noted, "note");
    assert_eq!(
        notes.last().map(|note| note["text"].clone()),
        Some(json!(
            "The forecast of 84 TB reaches the threshold of 80 TB by the review date, while the usage is 61 TB"
        ))
    );
    assert!(links_of_type(&noted, "task_of").is_empty());

    update(tom, &plan, json!({ "current_usage": 82.5 })).await?;
    let record = read(tom, &plan).await?;
    assert_eq!(record["state"], "under_review");
    let step = last_transition(&record);
    assert_eq!(step["transition"], "review");
    assert_eq!(step["actor"], "rule:capacity_plan/check_threshold");
    let tasks = links_of_type(&record, "task_of");
    assert_eq!(tasks.len(), 1, "{}", record["links"]);
    assert_eq!(tasks[0]["label"], "Tasks");
    let task = read(tom, &number(&tasks[0])).await?;
    assert_eq!(task["title"], "Capacity review: storage of file-services");
    assert_eq!(task["state"], "open");
    assert_eq!(task["fields"]["assignee"], "tom");
    assert_eq!(task["fields"]["requester"], "tom");
    assert!(
        task["description"]
            .as_str()
            .is_some_and(|text| text.starts_with("Usage 82.5 TB reached the threshold of 80 TB.")),
        "{}",
        task["description"]
    );

    // Usage that keeps rising opens no second task.
    update(tom, &plan, json!({ "current_usage": 85 })).await?;
    let record = read(tom, &plan).await?;
    assert_eq!(links_of_type(&record, "task_of").len(), 1);
    Ok(())
}
