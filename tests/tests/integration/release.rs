//! A release through the REST API. The readiness guard runs before the pilot, a release
//! manager gives the go for the pilot, and the release board's majority decides before
//! each wave. A no-go leaves the release in its wave until the board is asked again.

use serde_json::{Value, json};
use tend_test_support::reqwest::StatusCode;
use tend_test_support::{Backend, Role, backend_tests};

use crate::common::{Desk, RECORDS, assert_error, read, take};
use crate::support::{
    approve, attempt, create, decide, entries, error_message, last_transition, number, set_members,
};

backend_tests!(release_goes_through_waves);

/// Returns the transitions of the `transitioned` entries of a journal, in order.
fn transitions_taken(record: &Value) -> Vec<String> {
    entries(record, "transitioned")
        .iter()
        .filter_map(|entry| entry["transition"].as_str().map(str::to_owned))
        .collect()
}

async fn release_goes_through_waves(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    set_members(
        &desk,
        &[
            ("release_managers", &["rita"]),
            ("release_board", &["tom", "uma", "vic", "wes"]),
        ],
    )?;
    let technician = [Role::Technician];
    let rita = desk.server.add_user("rita", &technician).await?;
    let uma = desk.server.add_user("uma", &technician).await?;
    let vic = desk.server.add_user("vic", &technician).await?;
    let wes = desk.server.add_user("wes", &technician).await?;
    let tom = &desk.tom.client;

    let release = create(
        tom,
        "release",
        json!({
            "title": "Payroll 4.2",
            "fields": {
                "version": "4.2",
                "dsl_items": "# payroll\npayroll-api@4.2.1\n\npayroll-web@4.2.0",
                "target_groups": "Pilot: finance; wave 1: HR; wave 2: everyone else",
                "rollback_plan": "Redeploy 4.1.3 from the library",
            }
        }),
    )
    .await?;
    let release = number(&release);
    assert!(release.starts_with("REL"), "{release}");

    let reply = attempt(tom, &release, "start_pilot", json!({})).await?;
    assert_error(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "guard_failed",
        None,
    );
    assert_eq!(
        error_message(&reply),
        "The release delivers no change: before the pilot, link each change it deploys to this release with \"Delivered by\""
    );

    // A standard change needs no approval. It delivers the packages.
    let change = create(
        tom,
        "change",
        json!({
            "title": "Deploy payroll 4.2",
            "fields": {
                "type": "standard",
                "template": "Deploy a tested release package",
                "planned_start": "2026-06-01T18:00:00Z",
                "planned_end": "2026-06-01T20:00:00Z",
                "implementation_plan": "Run the deployment pipeline",
                "backout_plan": "Run the pipeline with 4.1.3",
            }
        }),
    )
    .await?;
    let change = number(&change);
    tom.post(
        &format!("{RECORDS}/{change}/links"),
        &json!({ "type": "delivered_by", "target": release }),
    )
    .await?
    .expect_status(StatusCode::CREATED)?;
    let reply = attempt(tom, &release, "start_pilot", json!({})).await?;
    assert_error(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "guard_failed",
        None,
    );
    assert_eq!(
        error_message(&reply),
        format!(
            "Every change in a release must be authorised before the pilot, and these are not: {change} (new). Authorise them, or cancel those the release no longer delivers"
        )
    );
    take(tom, &change, "submit", json!({})).await?;
    let authorised = take(tom, &change, "authorize", json!({})).await?;
    assert_eq!(
        authorised["state"], "scheduled",
        "a standard change is pre-approved"
    );
    assert_eq!(authorised["approvals"], json!([]));

    let waiting = take(tom, &release, "start_pilot", json!({})).await?;
    assert_eq!(waiting["state"], "planning");
    assert_eq!(
        waiting["approvals"][0]["requests"][0]["approver"],
        "group:release_managers"
    );
    let pilot = approve(&rita, &release).await?;
    assert_eq!(pilot["state"], "pilot");

    let waiting = take(tom, &release, "start_wave_1", json!({})).await?;
    let round = &waiting["approvals"][1];
    assert_eq!(round["total"], 3, "tom asked, so he has no vote");
    assert_eq!(round["required"], 2);
    assert_eq!(approve(&uma, &release).await?["state"], "pilot");
    let wave_1 = approve(&vic, &release).await?;
    assert_eq!(wave_1["state"], "wave_1");
    let wave_1_round = &wave_1["approvals"][1]["requests"];
    let wes_request = wave_1_round
        .as_array()
        .into_iter()
        .flatten()
        .find(|request| request["users"] == json!(["wes"]))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        wes_request["status"], "cancelled",
        "the majority decided without wes"
    );

    // No-go for wave 2: the release stays in wave 1.
    take(tom, &release, "start_wave_2", json!({})).await?;
    let reason = "The helpdesk still gets printing errors from wave 1";
    decide(&uma, &release, "reject", reason)
        .await?
        .expect_status(StatusCode::OK)?;
    let no_go = decide(&wes, &release, "reject", "Same as uma")
        .await?
        .expect_status(StatusCode::OK)?
        .body;
    assert_eq!(no_go["state"], "wave_1");
    assert_eq!(no_go["approval_status"], "rejected");
    assert_eq!(last_transition(&no_go)["transition"], "start_wave_1");
    let completed = entries(&no_go, "approval_completed");
    assert_eq!(
        completed.last().map(|e| e["outcome"].clone()),
        Some(json!("rejected"))
    );

    // Asked again once the errors are fixed, the board approves.
    take(
        tom,
        &release,
        "start_wave_2",
        json!({ "comment": "Printer driver fixed in payroll-web@4.2.0" }),
    )
    .await?;
    approve(&uma, &release).await?;
    let wave_2 = approve(&wes, &release).await?;
    assert_eq!(wave_2["state"], "wave_2");
    assert_eq!(wave_2["approvals"].as_array().map(Vec::len), Some(4));

    let deployed = take(tom, &release, "complete", json!({})).await?;
    assert_eq!(deployed["state"], "deployed");
    assert_eq!(deployed["open"], false);
    let record = read(tom, &release).await?;
    assert_eq!(
        transitions_taken(&record),
        ["start_pilot", "start_wave_1", "start_wave_2", "complete"]
    );
    Ok(())
}
