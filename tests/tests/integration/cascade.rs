//! Link cascades: a transition of one record runs the `on_linked` rules of the records
//! linked to it, which may take transitions of their own.

use serde_json::{Value, json};
use tend_test_support::{Backend, backend_tests};

use crate::common::{Desk, RECORDS, create_incident, read, take};

backend_tests!(
    resolved_problem_sends_waiting_incident_back,
    work_of_a_stopped_node_is_resumed
);

fn events<'a>(record: &'a Value, actor: &str) -> Vec<&'a str> {
    record["journal"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|entry| entry["actor"] == actor)
        .filter_map(|entry| entry["event"].as_str())
        // The SLA clocks a transition moves are journaled by the same actor.
        .filter(|event| *event != "sla_clock")
        .collect()
}

async fn resolved_problem_sends_waiting_incident_back(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let tom = &desk.tom.client;
    let waiting = create_incident(&desk.alice, "VPN drops every hour", "Again.", json!({})).await?
        ["number"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let working = create_incident(&desk.bob, "VPN tunnel resets", "Twice today.", json!({}))
        .await?["number"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    take(tom, &waiting, "await_problem", json!({})).await?;
    take(tom, &working, "start", json!({})).await?;

    let reply = tom
        .post(
            &format!("{RECORDS}/problem"),
            &json!({ "title": "VPN gateway drops tunnels", "fields": { "assignee": "tom" } }),
        )
        .await?;
    let problem = reply.body["number"].as_str().unwrap_or_default().to_owned();
    for incident in [&waiting, &working] {
        let reply = tom
            .post(
                &format!("{RECORDS}/{incident}/links"),
                &json!({ "type": "incident_of", "target": problem }),
            )
            .await?;
        assert_eq!(reply.status.as_u16(), 201, "{}", reply.text);
    }
    take(tom, &problem, "analyse", json!({})).await?;
    take(
        tom,
        &problem,
        "resolve",
        json!({ "fields": { "closure_code": "cannot_fix", "root_cause": "Firmware 4.2 leaks sessions", "workaround": "Restart the tunnel" } }),
    )
    .await?;

    let picked_up = read(tom, &waiting).await?;
    assert_eq!(picked_up["state"], "in_progress", "{picked_up}");
    assert_eq!(
        events(&picked_up, "rules"),
        ["note"],
        "the note comes from the on_linked rule"
    );
    assert_eq!(
        events(&picked_up, "rule:incident/follow_problem"),
        ["transitioned"]
    );
    let noted = read(tom, &working).await?;
    assert_eq!(noted["state"], "in_progress");
    assert_eq!(events(&noted, "rules"), ["note"]);
    Ok(())
}

/// Checks that follow-on work is queued with its write and removed when done. Work that a
/// stopped node left behind is done once by the next run of `resume_follow_ons`.
async fn work_of_a_stopped_node_is_resumed(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let commands = desk
        .server
        .commands()
        .expect("the in-process server exposes its command path");
    let tom = &desk.tom.client;
    let number =
        create_incident(&desk.alice, "VPN drops every hour", "Again.", json!({})).await?["number"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
    take(tom, &number, "await_problem", json!({})).await?;
    let later = chrono::Utc::now() + chrono::TimeDelta::minutes(5);
    assert_eq!(
        commands.resume_follow_ons(later).await?,
        0,
        "done work leaves nothing queued"
    );

    // A node that stopped right after committing a write whose rule asked for `start`.
    let record = commands.store.get_record(&number).await?.expect("stored");
    let payload = json!({
        "depth": 0,
        "follow_ons": [{ "rule": "incident/example", "reason": "The vendor answered", "effect": "transition", "name": "start" }],
        "transitions": [],
    })
    .to_string();
    commands
        .store
        .write(move |tx| {
            Box::pin(async move {
                tend_test_support::tend_store::follow_ons::queue_follow_on(tx, record.id, &payload)
                    .await
            })
        })
        .await?;
    assert_eq!(
        commands.resume_follow_ons(chrono::Utc::now()).await?,
        0,
        "fresh work belongs to the node that wrote it"
    );
    assert_eq!(commands.resume_follow_ons(later).await?, 1);
    let resumed = read(tom, &number).await?;
    assert_eq!(resumed["state"], "in_progress", "{resumed}");
    assert_eq!(events(&resumed, "rule:incident/example"), ["transitioned"]);
    assert_eq!(commands.resume_follow_ons(later).await?, 0, "done once");
    Ok(())
}
