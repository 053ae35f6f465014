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
    firing_twice_closes_once,
    business_time_close_waits_for_working_hours
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
    // SLA clock entries follow the transition that moved the clocks.
    let last = journal(&record)
        .iter()
        .rev()
        .find(|entry| entry["event"] != "sla_clock")
        .expect("the journal is empty");
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

/// With a calendar, `after` counts working time: 8 business hours from Friday 16:00 under
/// Monday to Friday 09:00-17:00 Europe/Berlin end on Monday at 16:00.
async fn business_time_close_waits_for_working_hours(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let commands = desk
        .server
        .commands()
        .expect("the in-process server exposes its command path");
    let mut set = (*commands.engine.definitions()).clone();
    let mut incident = (**set.get("incident").expect("incident ships")).clone();
    for step in &mut incident.transitions {
        if step.name == "close" {
            step.after = Some(tend_test_support::tend_workflow::Span::parse("8h").unwrap());
            step.calendar = Some("business-hours".into());
        }
    }
    set.definitions
        .insert("incident".into(), std::sync::Arc::new(incident));
    commands.engine.replace_definitions(set);

    let record = create_incident(&desk.alice, "Scanner offline", "", json!({})).await?;
    let number = record["number"].as_str().unwrap_or_default().to_owned();
    let tom = Actor::new("tom", vec![Role::Technician]);
    let friday =
        chrono::DateTime::parse_from_rfc3339("2026-12-04T16:00:00+01:00")?.with_timezone(&Utc);
    let mut fields = Fields::new();
    fields.insert("resolution_code".into(), json!("restarted"));
    commands
        .apply_at(
            &tom,
            &number,
            Command::Transition {
                name: "resolve".into(),
                fields,
                comment: None,
            },
            Some(friday),
        )
        .await?;
    let stored = commands.store.get_record(&number).await?.expect("stored");
    let timers = commands.store.timers_of(stored.id).await?;
    let monday =
        chrono::DateTime::parse_from_rfc3339("2026-12-07T16:00:00+01:00")?.with_timezone(&Utc);
    assert_eq!(timers.len(), 1, "{timers:?}");
    assert_eq!(timers[0].due_at, monday);

    assert_eq!(
        commands
            .fire_due_timers(monday - Duration::minutes(1))
            .await?,
        0
    );
    assert_eq!(commands.fire_due_timers(monday).await?, 1);
    assert_eq!(read(&desk.tom.client, &number).await?["state"], "closed");
    Ok(())
}
