//! The REST API end to end: create, rules, list and paging, transitions, comments and
//! updates, as a requester and a technician would use them.

use std::collections::HashSet;

use serde_json::{Value, json};
use tend_test_support::reqwest::StatusCode;
use tend_test_support::{Backend, backend_tests};

use crate::common::{
    Desk, NEW_INCIDENT, RECORDS, Unchanged, assert_error, create_incident, journal, journal_events,
    list_numbers, read, take, transition_names, visible_numbers,
};

backend_tests!(
    create_runs_the_rules,
    list_filters_and_pages,
    technician_works_an_incident,
    update_reprioritises
);

/// Values of the incident `category` field.
const CATEGORIES: [&str; 7] = [
    "access",
    "procurement",
    "infrastructure",
    "facilities",
    "security",
    "data",
    "general",
];

/// Returns the journal entry in which rule `rule` set `field`, if any.
fn rule_change<'a>(record: &'a Value, field: &str, rule: &str) -> Option<&'a Value> {
    journal(record).iter().find(|entry| {
        entry["event"] == "field_changed" && entry["field"] == field && entry["rule"] == rule
    })
}

async fn create_runs_the_rules(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let reply = desk
        .alice
        .client
        .post(
            NEW_INCIDENT,
            &json!({
                "title": "VPN login fails after the password change",
                "description": "Since this morning the VPN client rejects my new password.",
                "fields": { "urgency": "high" }
            }),
        )
        .await?;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let record = reply.body;

    assert_eq!(record["number"], "INC0000001");
    assert_eq!(record["process"], "incident");
    assert_eq!(record["state"], "new");
    assert_eq!(record["title"], "VPN login fails after the password change");
    assert_eq!(record["fields"]["requester"], "alice");
    assert_eq!(record["fields"]["urgency"], "high");
    assert_eq!(
        record["fields"]["impact"], "medium",
        "the definition's default"
    );

    let category = record["fields"]["category"].as_str().unwrap_or_default();
    assert!(
        CATEGORIES.contains(&category),
        "category set by the rules: {record}"
    );
    let priority = record["fields"]["priority"].as_str().unwrap_or_default();
    assert!(
        ["P1", "P2", "P3", "P4"].contains(&priority),
        "priority set by the rules: {record}"
    );
    let group = record["fields"]["assignment_group"]
        .as_str()
        .unwrap_or_default();
    assert!(
        !group.is_empty(),
        "assignment group set by the rules: {record}"
    );
    // The shipped rules: "vpn" is an infrastructure word, and medium impact with high
    // urgency is P2 in the priority matrix.
    assert_eq!(category, "infrastructure");
    assert_eq!(group, "infrastructure");
    assert_eq!(priority, "P2");
    let recommended: Vec<&str> = record["recommendations"]
        .as_array()
        .map(|all| all.iter().filter_map(|r| r["action"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        recommended,
        ["reset_password"],
        "a password problem: {}",
        record["recommendations"]
    );

    let events = journal_events(&record);
    assert_eq!(events.first(), Some(&"created"), "journal: {events:?}");
    assert_eq!(journal(&record)[0]["actor"], "alice");
    assert_eq!(journal(&record)[0]["seq"], 1);
    for (field, rule) in [
        ("category", "incident/categorize"),
        ("priority", "common/prioritize"),
        ("assignment_group", "incident/assign"),
    ] {
        let entry = rule_change(&record, field, rule)
            .unwrap_or_else(|| panic!("no field_changed entry of {rule} for {field}: {events:?}"));
        assert_eq!(
            entry["to"], record["fields"][field],
            "{field} in the journal and on the record"
        );
        let reason = entry["reason"].as_str().unwrap_or_default();
        assert!(!reason.trim().is_empty(), "{rule} gave no reason: {entry}");
    }
    assert!(
        !events.contains(&"rule_failed"),
        "a rule failed on create: {}",
        serde_json::to_string_pretty(&record["journal"])?
    );

    // The created record reads back the same as the create returned it, with its SLA
    // clocks, which only a read computes.
    let mut read_back = read(&desk.alice.client, "INC0000001").await?;
    let clocks = read_back
        .as_object_mut()
        .and_then(|object| object.remove("clocks"))
        .unwrap_or_default();
    assert_eq!(read_back, record);
    assert!(
        clocks.as_array().is_some_and(|clocks| !clocks.is_empty()),
        "{clocks}"
    );
    Ok(())
}

async fn list_filters_and_pages(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let mut alice_numbers = Vec::new();
    for (title, description) in [
        ("VPN login fails", "The VPN client rejects my password."),
        (
            "New laptop for a new hire",
            "Please order a laptop for Maria, who starts on Monday.",
        ),
        (
            "Printer on the third floor jams",
            "The printer jams on every second page.",
        ),
    ] {
        let record = create_incident(&desk.alice, title, description, json!({})).await?;
        alice_numbers.push(record["number"].as_str().unwrap_or_default().to_owned());
    }
    let mut all_numbers = alice_numbers.clone();
    for (title, fields) in [
        (
            "Mail server very slow",
            json!({ "impact": "high", "urgency": "high" }),
        ),
        (
            "Shared drive is full",
            json!({ "impact": "low", "urgency": "low" }),
        ),
    ] {
        let record = create_incident(&desk.bob, title, "Reported by bob.", fields).await?;
        all_numbers.push(record["number"].as_str().unwrap_or_default().to_owned());
    }
    let expected: HashSet<String> = all_numbers.iter().cloned().collect();
    assert_eq!(expected.len(), 5, "five distinct numbers: {all_numbers:?}");

    // Pages of two: three pages, every record once.
    // The P1 incident also opened a major incident, which this list leaves out.
    let paged = list_numbers(&desk.tom.client, "process=incident", 2).await?;
    assert_eq!(paged.len(), 5, "records over all pages: {paged:?}");
    let unique: HashSet<String> = paged.iter().cloned().collect();
    assert_eq!(
        unique.len(),
        paged.len(),
        "a record appeared on two pages: {paged:?}"
    );
    assert_eq!(unique, expected);
    // Newest first: the last created record leads.
    assert_eq!(paged.first(), all_numbers.last());

    let first_page = desk.tom.client.get(&format!("{RECORDS}?limit=2")).await?;
    assert_eq!(first_page.status, StatusCode::OK, "{}", first_page.text);
    assert_eq!(first_page.body["records"].as_array().map(Vec::len), Some(2));
    assert!(
        first_page.body["next_cursor"].is_string(),
        "{}",
        first_page.text
    );
    let everything = desk
        .tom
        .client
        .get(&format!("{RECORDS}?limit=5&process=incident"))
        .await?;
    assert!(
        everything.body["next_cursor"].is_null(),
        "no next page: {}",
        everything.text
    );

    let filtered = list_numbers(&desk.tom.client, "process=incident&state=new", 50).await?;
    assert_eq!(filtered.into_iter().collect::<HashSet<_>>(), expected);
    let closed = list_numbers(&desk.tom.client, "state=closed", 50).await?;
    assert!(closed.is_empty(), "no closed record yet: {closed:?}");

    // Full-text filter, case-insensitive, on title and description.
    let vpn = list_numbers(&desk.tom.client, "q=vpn", 50).await?;
    assert_eq!(vpn, vec![alice_numbers[0].clone()]);
    let maria = list_numbers(&desk.tom.client, "q=MARIA", 50).await?;
    assert_eq!(maria, vec![alice_numbers[1].clone()]);

    // Priority and group filters return exactly the records with that value.
    let first = read(&desk.tom.client, &alice_numbers[0]).await?;
    let priority = first["fields"]["priority"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let group = first["fields"]["assignment_group"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    for (query, field, value) in [
        (format!("priority={priority}"), "priority", priority.clone()),
        (
            format!("group={}", group.replace(' ', "%20")),
            "assignment_group",
            group.clone(),
        ),
    ] {
        let numbers = list_numbers(&desk.tom.client, &query, 50).await?;
        assert!(numbers.contains(&alice_numbers[0]), "{query}: {numbers:?}");
        for number in &all_numbers {
            let record = read(&desk.tom.client, number).await?;
            let matches = record["fields"][field] == value.as_str();
            assert_eq!(
                numbers.contains(number),
                matches,
                "{query} and {number} ({field} {})",
                record["fields"][field]
            );
        }
    }

    // Assignee filter after the technician takes one record.
    let reply = desk
        .tom
        .client
        .patch(
            &format!("{RECORDS}/{}", alice_numbers[2]),
            &json!({ "fields": { "assignee": "tom" } }),
        )
        .await?;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let mine = list_numbers(&desk.tom.client, "assignee=tom", 50).await?;
    assert_eq!(mine, vec![alice_numbers[2].clone()]);

    // Requesters list only their own records.
    let alice_sees = visible_numbers(&desk.alice.client).await?;
    assert_eq!(alice_sees, alice_numbers.iter().cloned().collect());
    let bob_paged = list_numbers(&desk.bob.client, "", 1).await?;
    assert_eq!(bob_paged.len(), 2, "{bob_paged:?}");
    assert!(
        bob_paged
            .iter()
            .all(|number| !alice_numbers.contains(number)),
        "{bob_paged:?}"
    );

    // Invalid list parameters are rejected.
    let reply = desk.tom.client.get(&format!("{RECORDS}?limit=0")).await?;
    assert_error(
        &reply,
        StatusCode::BAD_REQUEST,
        "invalid_query",
        Some("limit"),
    );
    let reply = desk
        .tom
        .client
        .get(&format!("{RECORDS}?cursor=not-a-cursor"))
        .await?;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
    Ok(())
}

async fn technician_works_an_incident(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let tom = &desk.tom.client;
    let record = create_incident(
        &desk.alice,
        "Outlook crashes on start",
        "It closes right after the splash screen.",
        json!({}),
    )
    .await?;
    let number = record["number"].as_str().unwrap_or_default().to_owned();
    let path = format!("{RECORDS}/{number}");

    // The requester comments on their own record.
    let reply = desk
        .alice
        .client
        .post(
            &format!("{path}/comments"),
            &json!({ "text": "It also crashes in safe mode." }),
        )
        .await?;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let last = journal(&reply.body).last().cloned().unwrap_or_default();
    assert_eq!(last["event"], "commented");
    assert_eq!(last["text"], "It also crashes in safe mode.");
    assert_eq!(last["actor"], "alice");

    let record = read(tom, &number).await?;
    let offered = transition_names(&record);
    for name in ["start", "resolve", "cancel"] {
        assert!(
            offered.contains(&name),
            "a technician may {name} a new incident: {offered:?}"
        );
    }

    let record = take(tom, &number, "start", json!({})).await?;
    assert_eq!(record["state"], "in_progress");
    // SLA clock entries follow the transition that moved the clocks.
    let last = journal(&record)
        .iter()
        .rev()
        .find(|entry| entry["event"] != "sla_clock")
        .cloned()
        .unwrap_or_default();
    assert_eq!(last["event"], "transitioned");
    assert_eq!(last["transition"], "start");
    assert_eq!(last["from"], "new");
    assert_eq!(last["to"], "in_progress");
    assert_eq!(last["actor"], "tom");

    // Resolving needs a resolution code; without one nothing is written.
    let unchanged = Unchanged::capture(tom, &number).await?;
    let reply = tom
        .post(
            &format!("{path}/transitions/resolve"),
            &json!({ "comment": "Reinstalled Outlook." }),
        )
        .await?;
    assert_error(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "required_field_missing",
        Some("resolution_code"),
    );
    unchanged.check("resolve without resolution_code").await?;

    let before = journal(&unchanged.record).len();
    let record = take(
        tom,
        &number,
        "resolve",
        json!({ "fields": { "resolution_code": "fixed" }, "comment": "Reinstalled Outlook." }),
    )
    .await?;
    assert_eq!(record["state"], "resolved");
    assert_eq!(record["fields"]["resolution_code"], "fixed");
    let added: Vec<&Value> = journal(&record)[before..].iter().collect();
    let code_change = added
        .iter()
        .find(|entry| entry["event"] == "field_changed" && entry["field"] == "resolution_code")
        .unwrap_or_else(|| panic!("no field_changed entry for resolution_code: {added:?}"));
    assert_eq!(code_change["to"], "fixed");
    assert!(
        code_change.get("rule").is_none(),
        "a person set it: {code_change}"
    );
    assert!(
        added
            .iter()
            .any(|e| e["event"] == "transitioned" && e["transition"] == "resolve")
    );
    assert!(
        added
            .iter()
            .any(|e| e["event"] == "commented" && e["text"] == "Reinstalled Outlook.")
    );

    let record = take(tom, &number, "close", json!({})).await?;
    assert_eq!(record["state"], "closed");
    assert!(
        transition_names(&record).is_empty(),
        "a closed incident offers nothing: {}",
        record["transitions"]
    );
    let moves: Vec<&str> = journal(&record)
        .iter()
        .filter(|entry| entry["event"] == "transitioned")
        .filter_map(|entry| entry["transition"].as_str())
        .collect();
    assert_eq!(moves, ["start", "resolve", "close"]);

    // Sequence numbers count up from 1 without gaps.
    for (index, entry) in journal(&record).iter().enumerate() {
        assert_eq!(entry["seq"], index + 1, "journal entry {index}: {entry}");
    }
    let closed = crate::common::list_numbers(tom, "state=closed", 50).await?;
    assert_eq!(closed, vec![number]);
    Ok(())
}

async fn update_reprioritises(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let record = create_incident(
        &desk.alice,
        "Shared calendar does not sync",
        "My shared calendar shows last week's meetings.",
        json!({ "impact": "low", "urgency": "low" }),
    )
    .await?;
    let number = record["number"].as_str().unwrap_or_default().to_owned();
    let low = record["fields"]["priority"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let before = journal(&record).len();

    let reply = desk
        .tom
        .client
        .patch(
            &format!("{RECORDS}/{number}"),
            &json!({ "fields": { "impact": "high", "urgency": "high" } }),
        )
        .await?;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let record = reply.body;
    assert_eq!(record["fields"]["impact"], "high");
    assert_eq!(record["fields"]["urgency"], "high");
    assert_eq!(
        record["fields"]["priority"], "P1",
        "high impact and high urgency"
    );
    assert_ne!(
        record["fields"]["priority"],
        low.as_str(),
        "the priority changed"
    );

    let added = &journal(&record)[before..];
    let fields_by_person: Vec<&str> = added
        .iter()
        .filter(|entry| entry["event"] == "field_changed" && entry.get("rule").is_none())
        .filter_map(|entry| entry["field"].as_str())
        .collect();
    assert_eq!(
        fields_by_person,
        ["impact", "urgency"],
        "entries added: {added:?}"
    );
    let priority = added
        .iter()
        .find(|entry| entry["event"] == "field_changed" && entry["field"] == "priority")
        .unwrap_or_else(|| panic!("the re-prioritisation is not journaled: {added:?}"));
    assert_eq!(priority["rule"], "common/prioritize");
    assert_eq!(priority["from"], low.as_str());
    assert_eq!(priority["to"], "P1");
    assert!(
        !priority["reason"].as_str().unwrap_or_default().is_empty(),
        "{priority}"
    );
    // Raising the incident to P1 also links it to a new major incident, by the rule.
    let (by_rule, by_tom): (Vec<&Value>, Vec<&Value>) = added
        .iter()
        .partition(|entry| entry["actor"] == "rule:incident/major");
    assert_eq!(by_rule.len(), 1, "{added:?}");
    assert_eq!(by_rule[0]["link_type"], "major_incident_of", "{added:?}");
    assert!(
        by_tom.iter().all(|entry| entry["actor"] == "tom"),
        "{added:?}"
    );

    // The same values again change nothing and journal nothing.
    let unchanged = Unchanged::capture(&desk.tom.client, &number).await?;
    let reply = desk
        .tom
        .client
        .patch(
            &format!("{RECORDS}/{number}"),
            &json!({ "fields": { "impact": "high", "urgency": "high" } }),
        )
        .await?;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    unchanged.check("a PATCH with the current values").await?;

    // A title edit is journaled as a text change.
    let reply = desk
        .tom
        .client
        .patch(
            &format!("{RECORDS}/{number}"),
            &json!({ "title": "Shared calendar of the sales team does not sync" }),
        )
        .await?;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(
        reply.body["title"],
        "Shared calendar of the sales team does not sync"
    );
    let last = journal(&reply.body).last().cloned().unwrap_or_default();
    assert_eq!(last["event"], "text_changed");
    assert_eq!(last["field"], "title");
    assert_eq!(last["from"], "Shared calendar does not sync");
    Ok(())
}
