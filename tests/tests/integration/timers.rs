//! Automatic transitions: an incident resolved more than 5 days ago is closed by the
//! system actor `timer`, and one resolved recently, or reopened since, is not.

use chrono::{Duration, Utc};
use serde_json::{Value, json};
use tend_test_support::tend_domain::{Actor, Command, Fields, Role};
use tend_test_support::{Backend, backend_tests};

use crate::common::{Desk, create_incident, read};

backend_tests!(
    resolved_long_ago_is_closed,
    resolved_recently_stays_resolved,
    reopened_incident_is_not_closed,
    firing_twice_closes_once
);

/// Creates an incident as alice and, as tom, applies `steps` (transition name and days
/// ago) in order.
async fn incident_moved(desk: &Desk, steps: &[(&str, i64)]) -> anyhow::Result<String> {
    let record = create_incident(
        &desk.alice,
        "Printer on floor 3 prints blank pages",
        "Every page comes out blank since this morning.",
        json!({}),
    )
    .await?;
    let number = record["number"].as_str().unwrap_or_default().to_owned();
    let tom = Actor::new("tom", vec![Role::Technician]);
    for (name, days_ago) in steps {
        let mut fields = Fields::new();
        if *name == "resolve" {
            fields.insert("resolution_code".into(), json!("toner replaced"));
        }
        let comment = (*name == "reopen").then(|| "Still blank after the new toner.".to_owned());
        let command = Command::Transition {
            name: (*name).to_owned(),
            fields,
            comment,
        };
        let at = Utc::now() - Duration::days(*days_ago);
        desk.server
            .commands()
            .expect("the in-process server exposes its command path")
            .apply_at(&tom, &number, command, Some(at))
            .await
            .map_err(|error| anyhow::anyhow!("{name} failed: {error}"))?;
    }
    Ok(number)
}

async fn fire(desk: &Desk) -> anyhow::Result<usize> {
    desk.server
        .commands()
        .expect("the in-process server exposes its command path")
        .fire_due_timers(Utc::now())
        .await
        .map_err(|error| anyhow::anyhow!("firing timers failed: {error}"))
}

fn journal(record: &Value) -> &[Value] {
    record["journal"].as_array().map_or(&[], Vec::as_slice)
}

async fn resolved_long_ago_is_closed(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let number = incident_moved(&desk, &[("start", 7), ("resolve", 6)]).await?;

    assert_eq!(fire(&desk).await?, 1);

    let record = read(&desk.tom.client, &number).await?;
    assert_eq!(record["state"], "closed");
    let last = journal(&record).last().expect("the journal is empty");
    assert_eq!(last["event"], "transitioned", "{last}");
    assert_eq!(last["transition"], "close", "{last}");
    assert_eq!(last["actor"], "timer", "{last}");
    Ok(())
}

async fn resolved_recently_stays_resolved(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let number = incident_moved(&desk, &[("start", 2), ("resolve", 1)]).await?;
    let before = read(&desk.tom.client, &number).await?;

    assert_eq!(fire(&desk).await?, 0);

    let after = read(&desk.tom.client, &number).await?;
    assert_eq!(after["state"], "resolved");
    assert_eq!(journal(&after).len(), journal(&before).len());
    Ok(())
}

async fn reopened_incident_is_not_closed(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    // Resolved 8 days ago, so the first timer was due 3 days ago, but reopened before that.
    let number = incident_moved(&desk, &[("start", 9), ("resolve", 8), ("reopen", 7)]).await?;

    assert_eq!(fire(&desk).await?, 0);

    let record = read(&desk.tom.client, &number).await?;
    assert_eq!(record["state"], "in_progress");
    assert!(
        journal(&record)
            .iter()
            .all(|entry| entry["actor"] != "timer"),
        "{record}"
    );
    Ok(())
}

async fn firing_twice_closes_once(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let number = incident_moved(&desk, &[("start", 7), ("resolve", 6)]).await?;

    assert_eq!(fire(&desk).await?, 1);
    assert_eq!(fire(&desk).await?, 0);

    let record = read(&desk.tom.client, &number).await?;
    assert_eq!(record["state"], "closed");
    let closes = journal(&record)
        .iter()
        .filter(|entry| entry["transition"] == "close")
        .count();
    assert_eq!(closes, 1, "{record}");
    Ok(())
}
