//! A requester's reply follows the incident's reply policy: it reopens an incident resolved
//! within 7 days, and opens a follow-up incident when the original is closed or was
//! resolved longer ago. The original of a follow-up keeps its state and fields, and gains
//! only the `follow_up_of` link with its `linked` journal entry.

use chrono::{Duration, Utc};
use serde_json::{Value, json};
use tend_test_support::reqwest::StatusCode;
use tend_test_support::tend_domain::{Actor, Command, Fields, Role};
use tend_test_support::{Backend, backend_tests};

use crate::common::{Desk, RECORDS, create_incident, read};

backend_tests!(
    reply_to_closed_opens_follow_up,
    reply_to_recently_resolved_reopens,
    reply_after_reopen_window_opens_follow_up,
    reply_to_open_incident_is_comment
);

/// Creates an incident as alice and, as tom, moves it through `transitions` at `days_ago`.
async fn incident_moved(
    desk: &Desk,
    transitions: &[&str],
    days_ago: i64,
) -> anyhow::Result<String> {
    let record = create_incident(
        &desk.alice,
        "Laptop shows a blue screen at start",
        "Since the update the laptop stops with a blue screen.",
        json!({}),
    )
    .await?;
    let number = record["number"].as_str().unwrap_or_default().to_owned();
    let commands = desk
        .server
        .commands()
        .expect("the in-process server exposes its command path");
    let tom = Actor::new("tom", vec![Role::Technician]);
    let at = Utc::now() - Duration::days(days_ago);
    for name in transitions {
        let mut fields = Fields::new();
        if *name == "resolve" {
            fields.insert("resolution_code".into(), json!("driver rolled back"));
        }
        let command = Command::Transition {
            name: (*name).to_owned(),
            fields,
            comment: None,
        };
        commands
            .apply_at(&tom, &number, command, Some(at))
            .await
            .map_err(|error| anyhow::anyhow!("{name} failed: {error}"))?;
    }
    Ok(number)
}

async fn reply(desk: &Desk, number: &str, text: &str) -> anyhow::Result<(StatusCode, Value)> {
    let reply = desk
        .alice
        .client
        .post(
            &format!("{RECORDS}/{number}/replies"),
            &json!({ "text": text }),
        )
        .await?;
    Ok((reply.status, reply.body))
}

fn journal_len(record: &Value) -> usize {
    record["journal"].as_array().map_or(0, Vec::len)
}

async fn reply_to_closed_opens_follow_up(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let original = incident_moved(&desk, &["start", "resolve", "close"], 15).await?;
    let before = read(&desk.tom.client, &original).await?;

    let text = "The same error is back on a different laptop.";
    let (status, follow_up) = reply(&desk, &original, text).await?;
    assert_eq!(status, StatusCode::CREATED, "{follow_up}");
    assert_ne!(follow_up["number"], original);
    assert_eq!(follow_up["follow_up_of"], original.as_str());
    assert_eq!(follow_up["fields"]["follow_up_of"], original.as_str());
    assert_eq!(follow_up["fields"]["requester"], "alice");
    assert_eq!(follow_up["description"], text);
    assert_eq!(follow_up["state"], "new");
    let title = follow_up["title"].as_str().unwrap_or_default();
    assert!(
        title.starts_with(&format!("Follow-up of {original}")),
        "{title}"
    );

    let after = read(&desk.tom.client, &original).await?;
    assert_eq!(after["state"], "closed");
    assert_eq!(after["fields"], before["fields"]);
    assert_eq!(
        journal_len(&after),
        journal_len(&before) + 1,
        "the closed incident got more than its `linked` entry"
    );
    let last = after["journal"]
        .as_array()
        .and_then(|journal| journal.last())
        .cloned()
        .unwrap_or_default();
    assert_eq!(last["event"], "linked");
    assert_eq!(last["link_type"], "follow_up_of");
    Ok(())
}

async fn reply_to_recently_resolved_reopens(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let number = incident_moved(&desk, &["start", "resolve"], 2).await?;

    let (status, record) = reply(&desk, &number, "Still broken after the fix.").await?;
    assert_eq!(status, StatusCode::OK, "{record}");
    assert_eq!(record["number"], number.as_str());
    assert_eq!(record["state"], "in_progress");
    assert_eq!(record["fields"]["reopen_count"], 1);
    let journal = record["journal"].as_array().cloned().unwrap_or_default();
    let reopened = journal.iter().any(|entry| {
        entry["event"] == "transitioned"
            && entry["transition"] == "reopen"
            && entry["actor"] == "alice"
    });
    assert!(reopened, "no reopen by alice in {journal:?}");
    let commented = journal.iter().any(|entry| {
        entry["event"] == "commented" && entry["text"] == "Still broken after the fix."
    });
    assert!(commented, "the reply text is not in {journal:?}");
    Ok(())
}

async fn reply_after_reopen_window_opens_follow_up(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let number = incident_moved(&desk, &["start", "resolve"], 10).await?;

    let (status, follow_up) = reply(&desk, &number, "It happened again today.").await?;
    assert_eq!(status, StatusCode::CREATED, "{follow_up}");
    assert_eq!(follow_up["follow_up_of"], number.as_str());
    let original = read(&desk.tom.client, &number).await?;
    assert_eq!(original["state"], "resolved");
    Ok(())
}

async fn reply_to_open_incident_is_comment(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let number = incident_moved(&desk, &["start"], 0).await?;

    let (status, record) = reply(&desk, &number, "Here is the photo of the screen.").await?;
    assert_eq!(status, StatusCode::OK, "{record}");
    assert_eq!(record["state"], "in_progress");
    let last = record["journal"]
        .as_array()
        .and_then(|journal| journal.last())
        .cloned()
        .unwrap_or_default();
    assert_eq!(last["event"], "commented");
    assert_eq!(last["actor"], "alice");
    Ok(())
}
