//! SLA clocks on records under the shipped policies. Clocks are computed from the
//! journal and paused and stopped by states. A priority change swaps the policy and keeps
//! the paused time, thresholds fire once each (also after a restart), and the SLA reports
//! count the clocks.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tend_test_support::reqwest::StatusCode;
use tend_test_support::tend_api::{Commands, NewRecord};
use tend_test_support::tend_domain::{Actor, Command, Fields, Role};
use tend_test_support::{Backend, backend_tests};

use crate::common::{Desk, read};

backend_tests!(
    pause_moves_the_due_time_and_response_stops,
    policy_swapped_while_pending_counts_from_creation,
    thresholds_fire_once_each_also_after_a_restart,
    reports_count_met_and_breached_clocks
);

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|error| panic!("{text}: {error}"))
        .with_timezone(&Utc)
}

fn commands(desk: &Desk) -> &Commands {
    desk.server
        .commands()
        .expect("the in-process server exposes its command path")
}

fn tom() -> Actor {
    Actor::new("tom", vec![Role::Technician])
}

/// Creates an incident at `when` with `fields` (impact and urgency pick the priority).
async fn incident_at(desk: &Desk, when: &str, fields: Value) -> anyhow::Result<String> {
    let Value::Object(fields) = fields else {
        anyhow::bail!("fields must be an object");
    };
    let input = NewRecord {
        title: "VPN drops every few minutes".into(),
        description: "The VPN client disconnects several times an hour.".into(),
        fields,
        ..Default::default()
    };
    let (record, _) = commands(desk)
        .create_at(&tom(), "incident", input, at(when))
        .await
        .map_err(|error| anyhow::anyhow!("create failed: {error}"))?;
    Ok(record.number)
}

async fn transition_at(desk: &Desk, number: &str, name: &str, when: &str) -> anyhow::Result<()> {
    let comment = name
        .starts_with("await")
        .then(|| "Asked for the logs.".to_owned());
    let command = Command::Transition {
        name: name.to_owned(),
        fields: Fields::new(),
        comment,
    };
    commands(desk)
        .apply_at(&tom(), number, command, Some(at(when)))
        .await
        .map_err(|error| anyhow::anyhow!("{name} failed: {error}"))?;
    Ok(())
}

fn clock<'a>(record: &'a Value, policy: &str, target: &str) -> &'a Value {
    record["clocks"]
        .as_array()
        .and_then(|clocks| {
            clocks
                .iter()
                .find(|clock| clock["policy"] == policy && clock["target_name"] == target)
        })
        .unwrap_or_else(|| panic!("no {policy} {target} clock in {}", record["clocks"]))
}

fn instant(value: &Value) -> DateTime<Utc> {
    at(value
        .as_str()
        .unwrap_or_else(|| panic!("not an instant: {value}")))
}

fn events<'a>(record: &'a Value, kind: &str) -> Vec<&'a Value> {
    record["journal"]
        .as_array()
        .map(|journal| {
            journal
                .iter()
                .filter(|entry| entry["event"] == kind)
                .collect()
        })
        .unwrap_or_default()
}

/// A P3 incident opened Friday 16:00 in Berlin office hours, pending from 16:30 to
/// Monday 10:00: the response clock stopped when the technician asked for information,
/// and the 24-hour resolution target skips the paused time.
async fn pause_moves_the_due_time_and_response_stops(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let number = incident_at(
        &desk,
        "2026-11-27T16:00:00+01:00",
        json!({ "impact": "medium", "urgency": "medium" }),
    )
    .await?;
    let record = read(&desk.tom.client, &number).await?;
    assert_eq!(record["fields"]["priority"], "P3", "{record}");
    let response = clock(&record, "incident_standard", "response");
    // 4 working hours: Friday 16:00-17:00 and Monday 09:00-12:00.
    assert_eq!(instant(&response["due"]), at("2026-11-30T12:00:00+01:00"));

    transition_at(
        &desk,
        &number,
        "await_user_info",
        "2026-11-27T16:30:00+01:00",
    )
    .await?;
    transition_at(&desk, &number, "start", "2026-11-30T10:00:00+01:00").await?;
    let record = read(&desk.tom.client, &number).await?;

    let response = clock(&record, "incident_standard", "response");
    assert_eq!(response["state"], "stopped", "{response}");
    assert_eq!(response["elapsed_seconds"], 30 * 60, "{response}");
    assert_eq!(response["breached"], false, "{response}");

    let resolution = clock(&record, "incident_standard", "resolution");
    assert_eq!(resolution["state"], "running", "{resolution}");
    // 24 working hours: Friday 0.5 h, Monday 7 h, Tuesday and Wednesday 8 h each, and
    // Thursday 09:00-09:30.
    assert_eq!(
        instant(&resolution["due"]),
        at("2026-12-03T09:30:00+01:00"),
        "{resolution}"
    );
    let paused = resolution["paused"].as_array().expect("paused periods");
    assert_eq!(paused.len(), 1, "{resolution}");
    assert_eq!(instant(&paused[0]["from"]), at("2026-11-27T16:30:00+01:00"));
    assert_eq!(instant(&paused[0]["to"]), at("2026-11-30T10:00:00+01:00"));

    let changes: Vec<(&str, &str)> = events(&record, "sla_clock")
        .iter()
        .filter(|entry| entry["policy"] == "incident_standard")
        .map(|entry| {
            (
                entry["target"].as_str().unwrap_or_default(),
                entry["change"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        vec![
            ("response", "started"),
            ("resolution", "started"),
            ("response", "stopped"),
            ("resolution", "paused"),
            ("resolution", "resumed"),
        ],
        "{}",
        record["journal"]
    );
    Ok(())
}

/// Case C34: a P4 incident pending from 10:00 to 12:00 becomes P1 at 11:00. The P1
/// policy (4 hours around the clock) counts from the creation at 09:00 with the two
/// pending hours added: due 15:00, and not breached before.
async fn policy_swapped_while_pending_counts_from_creation(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let number = incident_at(
        &desk,
        "2026-11-30T09:00:00Z",
        json!({ "impact": "low", "urgency": "low" }),
    )
    .await?;
    transition_at(&desk, &number, "await_user_info", "2026-11-30T10:00:00Z").await?;
    let mut fields = Fields::new();
    fields.insert("impact".into(), json!("high"));
    fields.insert("urgency".into(), json!("high"));
    commands(&desk)
        .apply_at(
            &tom(),
            &number,
            Command::Update {
                title: None,
                description: None,
                fields,
            },
            Some(at("2026-11-30T11:00:00Z")),
        )
        .await
        .map_err(|error| anyhow::anyhow!("update failed: {error}"))?;
    transition_at(&desk, &number, "start", "2026-11-30T12:00:00Z").await?;

    let record = read(&desk.tom.client, &number).await?;
    assert_eq!(record["fields"]["priority"], "P1");
    let resolution = clock(&record, "incident_critical", "resolution");
    assert_eq!(instant(&resolution["due"]), at("2026-11-30T15:00:00Z"));
    assert_eq!(
        instant(&resolution["started_at"]),
        at("2026-11-30T09:00:00Z")
    );
    assert!(
        record["clocks"]
            .as_array()
            .is_some_and(|clocks| clocks.iter().all(|c| c["policy"] != "incident_standard")),
        "the P4 policy no longer covers the record: {}",
        record["clocks"]
    );
    let detached: Vec<&Value> = events(&record, "sla_clock")
        .into_iter()
        .filter(|entry| entry["change"] == "detached")
        .collect();
    assert!(
        detached.iter().any(|e| e["policy"] == "incident_standard"),
        "{}",
        record["journal"]
    );
    Ok(())
}

/// Case C37: every threshold of a long-breached record fires exactly once, in due
/// order, journals that it fired late, and firing again (as after a restart, from a second
/// command path on the same database) repeats none of them.
async fn thresholds_fire_once_each_also_after_a_restart(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let number = incident_at(
        &desk,
        "2026-11-02T09:00:00+01:00",
        json!({ "impact": "medium", "urgency": "medium" }),
    )
    .await?;
    let now = Utc::now();
    let fired = commands(&desk).fire_due_timers(now).await?;
    assert!(fired >= 3, "fired {fired}");
    let record = read(&desk.tom.client, &number).await?;
    let reached = events(&record, "sla_threshold");
    let mut keys: Vec<(String, String, u64, i64)> = reached
        .iter()
        .map(|entry| {
            (
                entry["policy"].as_str().unwrap_or_default().to_owned(),
                entry["target"].as_str().unwrap_or_default().to_owned(),
                entry["percent"].as_u64().unwrap_or_default(),
                entry["target_minutes"].as_i64().unwrap_or_default(),
            )
        })
        .collect();
    let count = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), count, "a threshold fired twice: {reached:?}");
    for (policy, target, percent) in [
        ("incident_standard", "response", 100),
        ("incident_standard", "resolution", 75),
        ("incident_standard", "resolution", 100),
        ("incident_standard", "resolution", 150),
    ] {
        assert!(
            keys.iter()
                .any(|(p, t, n, _)| p == policy && t == target && *n == percent),
            "{policy} {target} {percent} % did not fire: {keys:?}"
        );
    }
    // Thresholds of a policy fire in the order they fell due. Those of the P2 policy,
    // which covers the record from the escalation on, fire after it.
    for policy in ["incident_standard", "incident_critical"] {
        let due: Vec<DateTime<Utc>> = reached
            .iter()
            .filter(|entry| entry["policy"] == policy)
            .map(|entry| instant(&entry["due_at"]))
            .collect();
        let mut sorted = due.clone();
        sorted.sort();
        assert_eq!(due, sorted, "{policy}");
    }
    assert!(
        events(&record, "fired_late").len() >= count,
        "{}",
        record["journal"]
    );
    // The 150 % threshold raised the priority, which put the record under the P2 policy.
    assert_eq!(record["fields"]["priority"], "P2", "{}", record["journal"]);

    // A second node (or the same one after a restart) finds nothing left to fire.
    let again = commands(&desk).fire_due_timers(Utc::now()).await?;
    let store = tend_test_support::tend_store::Store::connect(desk.server.database().url()).await?;
    let restarted = Commands::new(store, commands(&desk).engine.clone());
    let after_restart = restarted.fire_due_timers(Utc::now()).await?;
    let record = read(&desk.tom.client, &number).await?;
    let reached_again = events(&record, "sla_threshold").len();
    assert_eq!(
        reached_again,
        count + again + after_restart,
        "only new thresholds may fire"
    );
    assert_eq!(again + after_restart, 0, "{}", record["journal"]);
    Ok(())
}

async fn reports_count_met_and_breached_clocks(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    // Met: resolved within the hour. Breached: still open weeks later.
    let met = incident_at(
        &desk,
        "2026-11-02T09:00:00Z",
        json!({ "impact": "high", "urgency": "high" }),
    )
    .await?;
    transition_at(&desk, &met, "start", "2026-11-02T09:05:00Z").await?;
    let mut fields = Fields::new();
    fields.insert(
        "resolution_code".into(),
        json!("restarted the VPN concentrator"),
    );
    commands(&desk)
        .apply_at(
            &tom(),
            &met,
            Command::Transition {
                name: "resolve".into(),
                fields,
                comment: None,
            },
            Some(at("2026-11-02T10:00:00Z")),
        )
        .await
        .map_err(|error| anyhow::anyhow!("resolve failed: {error}"))?;
    let _breached = incident_at(
        &desk,
        "2026-11-03T09:00:00Z",
        json!({ "impact": "high", "urgency": "high" }),
    )
    .await?;

    let reply = desk
        .tom
        .client
        .get("/api/v1/reports/sla?from=2026-11-01&to=2026-12-01&group_by=policy,target,month")
        .await?;
    let body = reply.expect_status(StatusCode::OK)?.body;
    let row = body["rows"]
        .as_array()
        .and_then(|rows| {
            rows.iter()
                .find(|row| row["policy"] == "incident_critical" && row["target"] == "resolution")
        })
        .unwrap_or_else(|| panic!("no resolution row: {body}"))
        .clone();
    assert_eq!(row["month"], "2026-11", "{row}");
    assert_eq!(row["met"], 1, "{row}");
    assert_eq!(row["breached"], 1, "{row}");
    assert_eq!(row["compliance"], 50.0, "{row}");

    let reply = desk
        .tom
        .client
        .get("/api/v1/reports/sla?group_by=weekday")
        .await?;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    let reply = desk.alice.client.get("/api/v1/reports/sla").await?;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);

    // A P1 incident opened now is due within the hour for its response.
    let soon = crate::common::create_incident(
        &desk.alice,
        "Payroll system down",
        "Nobody can open the payroll system.",
        json!({ "impact": "high", "urgency": "high" }),
    )
    .await?;
    let reply = desk
        .tom
        .client
        .get("/api/v1/reports/sla/breaching?within=1h")
        .await?;
    let body = reply.expect_status(StatusCode::OK)?.body;
    let listed: Vec<&Value> = body["records"]
        .as_array()
        .map(|records| {
            records
                .iter()
                .filter(|r| r["number"] == soon["number"])
                .collect()
        })
        .unwrap_or_default();
    assert!(listed.iter().any(|r| r["target"] == "response"), "{body}");
    Ok(())
}
