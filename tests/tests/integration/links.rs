//! Typed links between records: a technician links two incidents, both records show the
//! link with the label of their end and a `linked` journal entry, and the audit stays
//! clean. Rejected links write nothing. A reply that opens a follow-up links it to the
//! original with `follow_up_of`.

use chrono::{Duration, Utc};
use serde_json::{Value, json};
use tend_test_support::reqwest::StatusCode;
use tend_test_support::tend_domain::{Actor, Command, Fields, Role};
use tend_test_support::tend_workflow::LinkType;
use tend_test_support::{ApiClient, Backend, backend_tests};

use crate::common::{Desk, RECORDS, Unchanged, assert_error, create_incident, journal, read};

backend_tests!(
    technician_links_two_incidents,
    rejected_links_write_nothing,
    link_type_limits_processes,
    follow_up_reply_links_original,
);

async fn new_incident(desk: &Desk, requester: &str, title: &str) -> anyhow::Result<String> {
    let user = match requester {
        "alice" => &desk.alice,
        _ => &desk.bob,
    };
    let record = create_incident(user, title, "Reported at the service desk.", json!({})).await?;
    Ok(record["number"].as_str().unwrap_or_default().to_owned())
}

async fn post_link(
    client: &ApiClient,
    number: &str,
    link_type: &str,
    target: &str,
) -> anyhow::Result<tend_test_support::Reply> {
    client
        .post(
            &format!("{RECORDS}/{number}/links"),
            &json!({ "type": link_type, "target": target }),
        )
        .await
}

fn links(record: &Value) -> Vec<Value> {
    record["links"].as_array().cloned().unwrap_or_default()
}

fn last_entry(record: &Value) -> Value {
    journal(record).last().cloned().unwrap_or_default()
}

async fn audit_is_clean(desk: &Desk) -> anyhow::Result<bool> {
    let store = desk.server.database().connect().await?;
    Ok(store.verify_audit().await?.is_clean())
}

async fn technician_links_two_incidents(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let tom = &desk.tom.client;
    let outage = new_incident(&desk, "alice", "Mail is down for the sales team").await?;
    let cause = new_incident(&desk, "bob", "Mail server disk is full").await?;
    let revision = read(tom, &outage).await?["revision"].clone();

    let reply = post_link(tom, &outage, "caused_by", &cause).await?;
    let source = reply.expect_status(StatusCode::CREATED)?.body;
    assert_eq!(source["number"], outage.as_str());
    assert_eq!(
        source["revision"],
        revision.as_i64().unwrap_or_default() + 1
    );
    assert_eq!(
        links(&source),
        [json!({
            "type": "caused_by",
            "label": "Caused by",
            "direction": "outgoing",
            "number": cause,
            "process": "incident",
            "title": "Mail server disk is full",
            "state": "new",
            "state_label": "New",
            "actor": "tom",
            "created_at": source["links"][0]["created_at"],
        })]
    );
    let entry = last_entry(&source);
    assert_eq!(entry["event"], "linked");
    assert_eq!(entry["link_type"], "caused_by");
    assert_eq!(entry["other"], cause.as_str());
    assert_eq!(entry["outgoing"], true);
    assert_eq!(entry["actor"], "tom");
    assert_eq!(
        read(tom, &outage).await?,
        source,
        "the answer is the record as read"
    );

    let target = read(tom, &cause).await?;
    let target_links = links(&target);
    assert_eq!(target_links.len(), 1, "{target_links:?}");
    assert_eq!(target_links[0]["type"], "caused_by");
    assert_eq!(target_links[0]["label"], "Caused");
    assert_eq!(target_links[0]["direction"], "incoming");
    assert_eq!(target_links[0]["number"], outage.as_str());
    assert_eq!(target_links[0]["title"], "Mail is down for the sales team");
    let entry = last_entry(&target);
    assert_eq!(entry["event"], "linked");
    assert_eq!(entry["link_type"], "caused_by");
    assert_eq!(entry["other"], outage.as_str());
    assert_eq!(entry["outgoing"], false);

    // Requesters see links only to records they may see themselves.
    let own = new_incident(&desk, "alice", "Shared mailbox is missing").await?;
    post_link(tom, &own, "related_to", &outage)
        .await?
        .expect_status(StatusCode::CREATED)?;
    let seen_by_alice = read(&desk.alice.client, &outage).await?;
    let numbers: Vec<Value> = links(&seen_by_alice)
        .iter()
        .map(|link| link["number"].clone())
        .collect();
    assert_eq!(numbers, [json!(own)], "alice sees a link to bob's incident");
    let seen_by_tom = read(tom, &outage).await?;
    assert_eq!(links(&seen_by_tom).len(), 2);
    assert_eq!(links(&seen_by_tom)[1]["label"], "Related to");
    assert_eq!(links(&seen_by_tom)[1]["direction"], "incoming");

    assert!(audit_is_clean(&desk).await?, "the audit found problems");
    Ok(())
}

async fn rejected_links_write_nothing(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let tom = &desk.tom.client;
    let alice = &desk.alice.client;
    let first = new_incident(&desk, "alice", "Laptop does not charge").await?;
    let second = new_incident(&desk, "alice", "Docking station is dead").await?;
    let foreign = new_incident(&desk, "bob", "Monitor flickers").await?;
    post_link(tom, &first, "related_to", &second)
        .await?
        .expect_status(StatusCode::CREATED)?;

    let unchanged_first = Unchanged::capture(tom, &first).await?;
    let unchanged_second = Unchanged::capture(tom, &second).await?;
    let unchanged_foreign = Unchanged::capture(tom, &foreign).await?;
    let check = |request: &'static str| {
        let (a, b, c) = (&unchanged_first, &unchanged_second, &unchanged_foreign);
        async move {
            a.check(request).await?;
            b.check(request).await?;
            c.check(request).await
        }
    };

    let reply = post_link(alice, &first, "caused_by", &second).await?;
    assert_error(&reply, StatusCode::FORBIDDEN, "forbidden", None);
    assert!(reply.text.contains("technician"), "{}", reply.text);
    check("a requester's link").await?;

    let reply = post_link(alice, &first, "caused_by", &foreign).await?;
    assert_error(&reply, StatusCode::NOT_FOUND, "not_found", None);
    check("a requester's link to a record of someone else").await?;

    let reply = post_link(tom, &first, "blocks", &second).await?;
    assert_error(
        &reply,
        StatusCode::BAD_REQUEST,
        "unknown_link_type",
        Some("type"),
    );
    for known in [
        "caused_by",
        "duplicate_of",
        "follow_up_of",
        "parent_of",
        "related_to",
    ] {
        assert!(
            reply.text.contains(known),
            "{known} is not named: {}",
            reply.text
        );
    }
    check("a link of an unknown type").await?;

    let reply = post_link(tom, &first, "related_to", &first).await?;
    assert_error(
        &reply,
        StatusCode::BAD_REQUEST,
        "invalid_link",
        Some("target"),
    );
    check("a link of a record to itself").await?;

    let reply = post_link(tom, &first, "related_to", &second).await?;
    assert_error(&reply, StatusCode::CONFLICT, "duplicate", None);
    check("a second identical link").await?;

    let reply = post_link(tom, &first, "related_to", "INC9999999").await?;
    assert_error(&reply, StatusCode::NOT_FOUND, "not_found", None);
    check("a link to a record that does not exist").await?;

    let reply = tom
        .post(
            &format!("{RECORDS}/{first}/links"),
            &json!({ "target": second }),
        )
        .await?;
    assert_error(
        &reply,
        StatusCode::BAD_REQUEST,
        "invalid_json",
        Some("type"),
    );
    check("a link without a type").await?;

    assert!(audit_is_clean(&desk).await?, "the audit found problems");
    Ok(())
}

/// Checks that a link type rejects processes it does not allow. The shipped link types all
/// allow incidents, so the test adds two narrow types to the running server, as a site's
/// own `workflows/links/*.yaml` could.
async fn link_type_limits_processes(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let tom = &desk.tom.client;
    let commands = desk
        .server
        .commands()
        .expect("the in-process server exposes its command path");
    let mut definitions = (*commands.engine.definitions()).clone();
    let narrow = |from: &[&str], to: &[&str]| LinkType {
        label: "Solved by".into(),
        inverse_label: "Solves".into(),
        from: from.iter().map(|p| (*p).to_owned()).collect(),
        to: to.iter().map(|p| (*p).to_owned()).collect(),
    };
    definitions
        .link_types
        .insert("solved_by".into(), narrow(&["problem"], &["change"]));
    definitions
        .link_types
        .insert("delivered_by".into(), narrow(&[], &["release", "change"]));
    commands.engine.replace_definitions(definitions);

    let first = new_incident(&desk, "alice", "Wi-Fi drops on floor 3").await?;
    let second = new_incident(&desk, "alice", "Wi-Fi drops on floor 4").await?;
    let unchanged_first = Unchanged::capture(tom, &first).await?;
    let unchanged_second = Unchanged::capture(tom, &second).await?;

    let reply = post_link(tom, &first, "solved_by", &second).await?;
    assert_error(
        &reply,
        StatusCode::BAD_REQUEST,
        "invalid_link",
        Some("type"),
    );
    let message = reply.body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("goes from problem records only") && message.contains(&first),
        "{message}"
    );
    unchanged_first
        .check("a link from a process the type does not allow")
        .await?;
    unchanged_second
        .check("a link from a process the type does not allow")
        .await?;

    let reply = post_link(tom, &first, "delivered_by", &second).await?;
    assert_error(
        &reply,
        StatusCode::BAD_REQUEST,
        "invalid_link",
        Some("type"),
    );
    let message = reply.body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("goes to release or change records only") && message.contains(&second),
        "{message}"
    );
    unchanged_first
        .check("a link to a process the type does not allow")
        .await?;
    unchanged_second
        .check("a link to a process the type does not allow")
        .await?;
    Ok(())
}

async fn follow_up_reply_links_original(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let tom = &desk.tom.client;
    let original = new_incident(&desk, "alice", "Laptop shows a blue screen at start").await?;
    let commands = desk
        .server
        .commands()
        .expect("the in-process server exposes its command path");
    let technician = Actor::new("tom", vec![Role::Technician]);
    let at = Utc::now() - Duration::days(15);
    for name in ["start", "resolve", "close"] {
        let mut fields = Fields::new();
        if name == "resolve" {
            fields.insert("resolution_code".into(), json!("driver rolled back"));
        }
        let command = Command::Transition {
            name: name.to_owned(),
            fields,
            comment: None,
        };
        commands
            .apply_at(&technician, &original, command, Some(at))
            .await
            .map_err(|error| anyhow::anyhow!("{name} failed: {error}"))?;
    }
    let before = read(tom, &original).await?;

    let reply = desk
        .alice
        .client
        .post(
            &format!("{RECORDS}/{original}/replies"),
            &json!({ "text": "The blue screen is back." }),
        )
        .await?;
    let follow_up = reply.expect_status(StatusCode::CREATED)?.body;
    let number = follow_up["number"].as_str().unwrap_or_default().to_owned();
    assert_eq!(follow_up["fields"]["follow_up_of"], original.as_str());
    let follow_up_links = links(&follow_up);
    assert_eq!(follow_up_links.len(), 1, "{follow_up_links:?}");
    assert_eq!(follow_up_links[0]["type"], "follow_up_of");
    assert_eq!(follow_up_links[0]["label"], "Follow-up of");
    assert_eq!(follow_up_links[0]["direction"], "outgoing");
    assert_eq!(follow_up_links[0]["number"], original.as_str());
    assert_eq!(follow_up_links[0]["state"], "closed");
    assert_eq!(follow_up_links[0]["actor"], "alice");
    let entry = last_entry(&follow_up);
    assert_eq!(entry["event"], "linked");
    assert_eq!(entry["other"], original.as_str());
    assert_eq!(entry["outgoing"], true);

    let after = read(tom, &original).await?;
    assert_eq!(after["state"], "closed");
    assert_eq!(after["fields"], before["fields"]);
    assert_eq!(journal(&after).len(), journal(&before).len() + 1);
    let entry = last_entry(&after);
    assert_eq!(entry["event"], "linked");
    assert_eq!(entry["link_type"], "follow_up_of");
    assert_eq!(entry["other"], number.as_str());
    assert_eq!(entry["outgoing"], false);
    assert_eq!(entry["actor"], "alice");
    let original_links = links(&after);
    assert_eq!(original_links.len(), 1, "{original_links:?}");
    assert_eq!(original_links[0]["label"], "Followed up by");
    assert_eq!(original_links[0]["direction"], "incoming");
    assert_eq!(original_links[0]["number"], number.as_str());

    // The requester gets the same link when she reads her own original.
    let seen_by_alice = read(&desk.alice.client, &original).await?;
    assert_eq!(links(&seen_by_alice), original_links);

    assert!(audit_is_clean(&desk).await?, "the audit found problems");
    Ok(())
}
