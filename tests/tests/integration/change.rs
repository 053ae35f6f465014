//! The change process through the REST API. A change manager or the CAB's majority
//! authorises a change according to its risk, a rejection sends it back to `new`, and
//! emergency changes go to the emergency CAB. The tests also cover the fields that
//! implementation and review require, and the schedule checks against other changes and
//! the shipped year-end freeze window.

use serde_json::{Value, json};
use tend_test_support::reqwest::StatusCode;
use tend_test_support::{Backend, Role, TestUser, backend_tests};

use crate::common::{Desk, RECORDS, assert_error, read, take, transition_names};
use crate::support::{
    approve, attempt, create, decide, entries, error_message, last_transition, number,
    pending_request, set_members, update,
};

backend_tests!(
    low_risk_by_change_manager,
    high_risk_by_cab_majority,
    rejection_returns_to_new,
    emergency_by_ecab,
    implementation_to_close,
    overlap_on_shared_ci,
    freeze_spares_emergency_only,
    approval_rechecks_moved_window,
);

/// A desk with approvers. tom raises the changes and is a change manager and a CAB member
/// himself, so the tests also show that he never approves his own change.
struct Approvers {
    desk: Desk,
    mia: TestUser,
    ann: TestUser,
    ben: TestUser,
    cal: TestUser,
    eve: TestUser,
}

async fn open(backend: Backend) -> anyhow::Result<Approvers> {
    let desk = Desk::open(backend).await?;
    set_members(
        &desk,
        &[
            ("change_managers", &["tom", "mia"]),
            ("cab", &["tom", "ann", "ben", "cal"]),
            ("ecab", &["eve"]),
        ],
    )?;
    let technician = [Role::Technician];
    Ok(Approvers {
        mia: desk.server.add_user("mia", &technician).await?,
        ann: desk.server.add_user("ann", &technician).await?,
        ben: desk.server.add_user("ben", &technician).await?,
        cal: desk.server.add_user("cal", &technician).await?,
        eve: desk.server.add_user("eve", &technician).await?,
        desk,
    })
}

/// Fields of a change on configuration item `ci` in the window `start` to `end`, with
/// every plan filled in. Impact and urgency keep their defaults (medium).
fn planned(ci: &str, start: &str, end: &str) -> Value {
    json!({
        "ci": ci,
        "cis": ci,
        "planned_start": start,
        "planned_end": end,
        "implementation_plan": "Stop the service, apply the update, start the service",
        "test_plan": "Run the smoke tests of the service",
        "backout_plan": "Restore the snapshot taken before the update",
    })
}

/// Creates a change as tom with `fields` and submits it for assessment.
async fn submitted(desk: &Desk, title: &str, fields: Value) -> anyhow::Result<String> {
    let tom = &desk.tom.client;
    let change = create(tom, "change", json!({ "title": title, "fields": fields })).await?;
    let number = number(&change);
    assert!(number.starts_with("CHG"), "{number}");
    let assessed = take(tom, &number, "submit", json!({})).await?;
    assert_eq!(assessed["state"], "assess");
    Ok(number)
}

/// Returns the users of the latest approval round's requests, sorted.
fn approver_users(record: &Value) -> Vec<String> {
    let rounds = record["approvals"].as_array().cloned().unwrap_or_default();
    let mut users: Vec<String> = rounds
        .last()
        .and_then(|round| round["requests"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .flat_map(|request| request["users"].as_array().cloned().unwrap_or_default())
        .filter_map(|user| user.as_str().map(str::to_owned))
        .collect();
    users.sort();
    users
}

async fn low_risk_by_change_manager(backend: Backend) -> anyhow::Result<()> {
    let approvers = open(backend).await?;
    let desk = &approvers.desk;
    let tom = &desk.tom.client;
    let fields = planned("app-01", "2026-03-10T20:00:00Z", "2026-03-10T22:00:00Z");
    let number = submitted(desk, "Patch the payroll application", fields).await?;

    let change = read(tom, &number).await?;
    assert_eq!(change["fields"]["risk"], "low");
    assert_eq!(change["fields"]["requester"], "tom");
    let risk = entries(&change, "field_changed")
        .into_iter()
        .find(|entry| entry["field"] == "risk")
        .cloned()
        .unwrap_or_default();
    assert_eq!(risk["rule"], "change/assess_risk");
    assert_eq!(
        risk["reason"],
        "Impact medium (2) + urgency medium (0) + 1 CI (0) + normal change (0) = 2"
    );

    let waiting = take(tom, &number, "authorize", json!({})).await?;
    assert_eq!(
        waiting["state"], "assess",
        "authorising waits for the approval"
    );
    assert_eq!(waiting["approval_status"], "pending");
    let round = &waiting["approvals"][0];
    assert_eq!(round["transition"], "authorize");
    assert_eq!(round["required"], 1);
    assert_eq!(round["requests"][0]["approver"], "group:change_managers");
    assert_eq!(
        approver_users(&waiting),
        ["mia"],
        "tom asked for the approval and requested the change"
    );
    let requested = entries(&waiting, "approval_requested");
    assert_eq!(requested.len(), 1);
    assert_eq!(requested[0]["approvers"], json!(["group:change_managers"]));

    // tom is a change manager, but not for his own change.
    let id = pending_request(&approvers.mia, &number).await?;
    let own = tom
        .post(
            &format!("{RECORDS}/{number}/approvals/{id}"),
            &json!({ "decision": "approve" }),
        )
        .await?;
    assert_error(&own, StatusCode::FORBIDDEN, "forbidden", None);
    assert!(
        error_message(&own).contains("group:change_managers"),
        "{}",
        own.text
    );
    let queue = desk.tom.client.get("/api/v1/approvals").await?;
    assert_eq!(
        queue.expect_status(StatusCode::OK)?.body["approvals"],
        json!([])
    );

    let scheduled = approve(&approvers.mia, &number).await?;
    assert_eq!(scheduled["state"], "scheduled");
    assert_eq!(scheduled["approval_status"], "approved");
    assert_eq!(
        scheduled["approvals"][0]["requests"][0]["decided_by"],
        "mia"
    );
    let step = last_transition(&scheduled);
    assert_eq!(step["transition"], "authorize");
    assert_eq!(step["from"], "assess");
    assert_eq!(step["to"], "scheduled");
    assert_eq!(
        step["actor"], "mia",
        "the deciding vote takes the transition"
    );
    let decided = entries(&scheduled, "approval_decided");
    assert_eq!(decided.len(), 1);
    assert_eq!(decided[0]["actor"], "mia");
    assert_eq!(decided[0]["decision"], "approve");
    assert!(pending_request(&approvers.mia, &number).await.is_err());
    Ok(())
}

async fn high_risk_by_cab_majority(backend: Backend) -> anyhow::Result<()> {
    let approvers = open(backend).await?;
    let desk = &approvers.desk;
    let tom = &desk.tom.client;
    let mut fields = planned("sw-core-a", "2026-03-14T06:00:00Z", "2026-03-14T09:00:00Z");
    fields["impact"] = json!("high");
    fields["urgency"] = json!("high");
    let number = submitted(desk, "Replace the core switch in building A", fields).await?;
    assert_eq!(read(tom, &number).await?["fields"]["risk"], "high");

    let waiting = take(tom, &number, "authorize", json!({})).await?;
    assert_eq!(waiting["approval_status"], "pending");
    assert_eq!(approver_users(&waiting), ["ann", "ben", "cal"]);
    let round = &waiting["approvals"][0];
    assert_eq!(round["total"], 3);
    assert_eq!(round["required"], 2, "a majority of three members");
    assert!(
        entries(&waiting, "approval_requested")[0]["approvers"]
            .to_string()
            .contains("board:cab"),
        "{}",
        waiting["journal"]
    );
    assert!(
        pending_request(&approvers.mia, &number).await.is_err(),
        "a change manager decides low-risk changes only"
    );

    let first = approve(&approvers.ann, &number).await?;
    assert_eq!(first["state"], "assess", "one vote of three is no majority");
    assert_eq!(first["approval_status"], "pending");
    let dissent = decide(
        &approvers.ben,
        &number,
        "reject",
        "Do it after the quarter-end run",
    )
    .await?;
    let dissent = dissent.expect_status(StatusCode::OK)?.body;
    assert_eq!(
        dissent["state"], "assess",
        "one rejection still leaves a majority possible"
    );
    assert_eq!(dissent["approval_status"], "pending");

    let scheduled = approve(&approvers.cal, &number).await?;
    assert_eq!(scheduled["state"], "scheduled");
    assert_eq!(scheduled["approval_status"], "approved");
    let decisions: Vec<String> = entries(&scheduled, "approval_decided")
        .iter()
        .map(|entry| format!("{} {}", entry["actor"], entry["decision"]))
        .collect();
    assert_eq!(
        decisions,
        [
            "\"ann\" \"approve\"",
            "\"ben\" \"reject\"",
            "\"cal\" \"approve\""
        ]
    );
    assert_eq!(last_transition(&scheduled)["transition"], "authorize");
    Ok(())
}

async fn rejection_returns_to_new(backend: Backend) -> anyhow::Result<()> {
    let approvers = open(backend).await?;
    let desk = &approvers.desk;
    let tom = &desk.tom.client;
    let fields = planned("db-02", "2026-04-02T19:00:00Z", "2026-04-02T21:00:00Z");
    let number = submitted(desk, "Upgrade the reporting database", fields).await?;
    take(tom, &number, "authorize", json!({})).await?;

    let silent = decide(&approvers.mia, &number, "reject", "  ").await?;
    assert_error(
        &silent,
        StatusCode::BAD_REQUEST,
        "reason_required",
        Some("reason"),
    );
    assert_eq!(read(tom, &number).await?["approval_status"], "pending");

    let reason = "The backout plan was never tried on the replica";
    let rejected = decide(&approvers.mia, &number, "reject", reason).await?;
    let rejected = rejected.expect_status(StatusCode::OK)?.body;
    assert_eq!(rejected["state"], "new");
    assert_eq!(rejected["approval_status"], "rejected");
    let step = last_transition(&rejected);
    assert_eq!(step["transition"], "rework");
    assert_eq!(step["from"], "assess");
    assert_eq!(
        step["actor"], "mia",
        "the deciding vote takes the transition"
    );
    let comments = entries(&rejected, "commented");
    let comment = comments.last().map(|entry| entry["text"].clone());
    assert_eq!(
        comment,
        Some(json!(format!(
            "Approval of `authorize` was rejected: {reason}"
        )))
    );
    let decided = entries(&rejected, "approval_decided");
    assert_eq!(decided[0]["reason"], reason);
    assert!(transition_names(&rejected).contains(&"submit"));

    // After rework the change goes through a new round.
    update(
        tom,
        &number,
        json!({ "backout_plan": "Restore the replica's snapshot; tried on 2026-03-30" }),
    )
    .await?;
    take(tom, &number, "submit", json!({})).await?;
    let again = take(tom, &number, "authorize", json!({})).await?;
    assert_eq!(again["approval_status"], "pending");
    assert_eq!(again["approvals"][1]["round"], 2);
    let scheduled = approve(&approvers.mia, &number).await?;
    assert_eq!(scheduled["state"], "scheduled");
    Ok(())
}

async fn emergency_by_ecab(backend: Backend) -> anyhow::Result<()> {
    let approvers = open(backend).await?;
    let desk = &approvers.desk;
    let tom = &desk.tom.client;
    let mut fields = planned("fw-edge-01", "2026-02-03T13:00:00Z", "2026-02-03T13:30:00Z");
    fields["type"] = json!("emergency");
    let number = submitted(desk, "Block the exploited VPN port", fields).await?;
    let change = read(tom, &number).await?;
    assert_eq!(
        change["fields"]["risk"], "medium",
        "an emergency adds one point"
    );

    let normal = attempt(tom, &number, "authorize", json!({})).await?;
    assert_error(
        &normal,
        StatusCode::UNPROCESSABLE_ENTITY,
        "guard_failed",
        None,
    );
    assert_eq!(
        error_message(&normal),
        "An emergency change is authorised by the emergency CAB: take \"Authorise as an emergency\" instead"
    );
    let unchanged = read(tom, &number).await?;
    assert_eq!(unchanged["revision"], change["revision"]);
    assert_eq!(unchanged["approvals"], json!([]));

    let waiting = take(tom, &number, "authorize_emergency", json!({})).await?;
    assert_eq!(waiting["approval_status"], "pending");
    let round = &waiting["approvals"][0];
    assert_eq!(round["requests"][0]["approver"], "group:ecab");
    assert_eq!(approver_users(&waiting), ["eve"]);
    let requested =
        chrono::DateTime::parse_from_rfc3339(round["requested_at"].as_str().unwrap_or_default())?;
    let due = chrono::DateTime::parse_from_rfc3339(round["due_at"].as_str().unwrap_or_default())?;
    assert_eq!(due - requested, chrono::Duration::hours(4));
    assert!(pending_request(&approvers.mia, &number).await.is_err());

    let scheduled = approve(&approvers.eve, &number).await?;
    assert_eq!(scheduled["state"], "scheduled");
    assert_eq!(
        last_transition(&scheduled)["transition"],
        "authorize_emergency"
    );

    // A normal change may not take the emergency path.
    let fields = planned("fw-edge-02", "2026-02-04T13:00:00Z", "2026-02-04T13:30:00Z");
    let normal = submitted(desk, "Tidy the firewall rules", fields).await?;
    let shortcut = attempt(tom, &normal, "authorize_emergency", json!({})).await?;
    assert_error(
        &shortcut,
        StatusCode::UNPROCESSABLE_ENTITY,
        "guard_failed",
        None,
    );
    assert_eq!(
        error_message(&shortcut),
        "Only emergency changes skip the normal authorisation, and this is a normal change: take \"Authorise\" instead, or make it an emergency change"
    );
    Ok(())
}

async fn implementation_to_close(backend: Backend) -> anyhow::Result<()> {
    let approvers = open(backend).await?;
    let desk = &approvers.desk;
    let tom = &desk.tom.client;
    let mut fields = planned("mail-01", "2026-05-06T18:00:00Z", "2026-05-06T19:00:00Z");
    fields
        .as_object_mut()
        .and_then(|map| map.remove("backout_plan"));
    let number = submitted(desk, "Renew the mail server certificate", fields).await?;
    take(tom, &number, "authorize", json!({})).await?;
    assert_eq!(
        approve(&approvers.mia, &number).await?["state"],
        "scheduled"
    );

    let before = read(tom, &number).await?;
    let reply = attempt(tom, &number, "start", json!({})).await?;
    assert_error(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "required_field_missing",
        Some("backout_plan"),
    );
    assert!(
        error_message(&reply).contains("`backout_plan`"),
        "{}",
        reply.text
    );
    let after = read(tom, &number).await?;
    assert_eq!(after["state"], "scheduled");
    assert_eq!(after["revision"], before["revision"]);

    // The authorised plan is locked, the backout plan is not.
    let locked = tom
        .patch(
            &format!("{RECORDS}/{number}"),
            &json!({ "fields": { "implementation_plan": "Something else" } }),
        )
        .await?;
    assert_error(
        &locked,
        StatusCode::BAD_REQUEST,
        "read_only_field",
        Some("implementation_plan"),
    );
    update(
        tom,
        &number,
        json!({ "backout_plan": "Put the old certificate back" }),
    )
    .await?;
    let started = take(tom, &number, "start", json!({})).await?;
    assert_eq!(started["state"], "implement");

    let reply = attempt(tom, &number, "complete", json!({})).await?;
    assert_error(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "required_field_missing",
        Some("outcome"),
    );
    let reviewed = take(
        tom,
        &number,
        "complete",
        json!({ "fields": { "outcome": "successful_with_issues" } }),
    )
    .await?;
    assert_eq!(reviewed["state"], "review");

    let reply = attempt(tom, &number, "close", json!({})).await?;
    assert_error(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "guard_failed",
        None,
    );
    assert_eq!(
        error_message(&reply),
        "This change needs a post-implementation review because its outcome is successful_with_issues: fill in \"Post-implementation review notes\" before closing it"
    );
    let closed = take(
        tom,
        &number,
        "close",
        json!({ "fields": { "pir_notes": "Two clients cached the old chain for an hour" } }),
    )
    .await?;
    assert_eq!(closed["state"], "closed");
    assert_eq!(closed["open"], false);
    assert!(transition_names(&closed).is_empty());
    Ok(())
}

async fn overlap_on_shared_ci(backend: Backend) -> anyhow::Result<()> {
    let approvers = open(backend).await?;
    let desk = &approvers.desk;
    let tom = &desk.tom.client;
    let fields = planned("db-01", "2026-03-10T10:00:00Z", "2026-03-10T12:00:00Z");
    let first = submitted(desk, "Add an index to the orders table", fields).await?;
    take(tom, &first, "authorize", json!({})).await?;
    assert_eq!(approve(&approvers.mia, &first).await?["state"], "scheduled");

    // 12:30+01:00 is 11:30 UTC, inside the first window. DB-01 names the same item as db-01.
    let mut fields = planned(
        "db-01",
        "2026-03-10T12:30:00+01:00",
        "2026-03-10T14:00:00+01:00",
    );
    fields["cis"] = json!("web-01\nDB-01");
    let second = submitted(desk, "Move the orders service to the new pool", fields).await?;
    let before = read(tom, &second).await?;
    let reply = attempt(tom, &second, "authorize", json!({})).await?;
    assert_error(&reply, StatusCode::CONFLICT, "schedule_conflict", None);
    let message = error_message(&reply);
    for expected in [
        first.as_str(),
        "db-01",
        "2026-03-10 10:00 UTC",
        "2026-03-10 12:00 UTC",
    ] {
        assert!(message.contains(expected), "{expected} missing: {message}");
    }
    assert!(!message.contains("web-01"), "{message}");
    let after = read(tom, &second).await?;
    assert_eq!(after, before, "a refused authorisation writes nothing");
    assert!(pending_request(&approvers.mia, &second).await.is_err());

    // Another item in the same window does not conflict.
    let fields = planned("web-02", "2026-03-10T11:30:00Z", "2026-03-10T13:00:00Z");
    let elsewhere = submitted(desk, "Rotate the web-02 logs", fields).await?;
    let waiting = take(tom, &elsewhere, "authorize", json!({})).await?;
    assert_eq!(waiting["approval_status"], "pending");

    // Windows are half-open: starting when the first one ends is no overlap.
    update(
        tom,
        &second,
        json!({
            "planned_start": "2026-03-10T12:00:00Z",
            "planned_end": "2026-03-10T13:00:00Z",
        }),
    )
    .await?;
    let waiting = take(tom, &second, "authorize", json!({})).await?;
    assert_eq!(waiting["approval_status"], "pending");
    assert_eq!(
        approve(&approvers.mia, &second).await?["state"],
        "scheduled"
    );
    Ok(())
}

async fn freeze_spares_emergency_only(backend: Backend) -> anyhow::Result<()> {
    let approvers = open(backend).await?;
    let desk = &approvers.desk;
    let tom = &desk.tom.client;
    let fields = planned("erp-01", "2026-12-22T08:00:00Z", "2026-12-22T10:00:00Z");
    let frozen = submitted(desk, "Upgrade the ERP client", fields).await?;
    let before = read(tom, &frozen).await?;
    let reply = attempt(tom, &frozen, "authorize", json!({})).await?;
    assert_error(&reply, StatusCode::CONFLICT, "schedule_conflict", None);
    let message = error_message(&reply);
    for expected in [
        "Year-end closing 2026",
        "2026-12-21 00:00 UTC",
        "2027-01-04 00:00 UTC",
        "set `type` to emergency",
    ] {
        assert!(message.contains(expected), "{expected} missing: {message}");
    }
    assert_eq!(read(tom, &frozen).await?, before);

    // A window that ends when the freeze starts is outside it.
    let fields = planned("erp-02", "2026-12-20T22:00:00Z", "2026-12-21T00:00:00Z");
    let before_freeze = submitted(desk, "Patch the ERP database", fields).await?;
    let waiting = take(tom, &before_freeze, "authorize", json!({})).await?;
    assert_eq!(waiting["approval_status"], "pending");

    let mut fields = planned("erp-01", "2026-12-28T08:00:00Z", "2026-12-28T09:00:00Z");
    fields["type"] = json!("emergency");
    let emergency = submitted(desk, "Fix the ERP posting failure", fields).await?;
    let waiting = take(tom, &emergency, "authorize_emergency", json!({})).await?;
    assert_eq!(waiting["approval_status"], "pending");
    assert_eq!(
        approve(&approvers.eve, &emergency).await?["state"],
        "scheduled"
    );
    let started = take(tom, &emergency, "start", json!({})).await?;
    assert_eq!(started["state"], "implement");

    // The exemption covers the freeze, not another change on the same item.
    let mut fields = planned("erp-01", "2026-12-28T08:30:00Z", "2026-12-28T09:30:00Z");
    fields["type"] = json!("emergency");
    let second = submitted(desk, "Restart the ERP queue workers", fields).await?;
    let reply = attempt(tom, &second, "authorize_emergency", json!({})).await?;
    assert_error(&reply, StatusCode::CONFLICT, "schedule_conflict", None);
    let message = error_message(&reply);
    assert!(
        message.contains(&format!("{emergency} (implement) works on erp-01")),
        "{message}"
    );
    assert!(!message.contains("freeze"), "{message}");
    Ok(())
}

/// Moving a window while its approval round is pending cancels the round, and a round
/// approved after another change took the same CI and window leaves the change where it is,
/// with the conflict in its journal.
async fn approval_rechecks_moved_window(backend: Backend) -> anyhow::Result<()> {
    let approvers = open(backend).await?;
    let desk = &approvers.desk;
    let tom = &desk.tom.client;
    let moved = submitted(
        desk,
        "Patch the ERP server",
        planned("erp-01", "2026-12-10T10:00:00Z", "2026-12-10T12:00:00Z"),
    )
    .await?;
    let asked = take(tom, &moved, "authorize", json!({})).await?;
    assert_eq!(asked["approval_status"], "pending");
    let record = update(
        tom,
        &moved,
        json!({ "planned_start": "2026-12-22T10:00:00Z", "planned_end": "2026-12-22T12:00:00Z" }),
    )
    .await?;
    assert_eq!(record["approval_status"], "cancelled", "{record}");
    assert_eq!(entries(&record, "note").len(), 1, "{record}");
    assert!(
        pending_request(&approvers.mia, &moved).await.is_err(),
        "the cancelled round left mia's queue"
    );

    // Two changes on one CI and window wait for approval at the same time.
    let window = planned("db-07", "2027-02-03T20:00:00Z", "2027-02-03T22:00:00Z");
    let first = submitted(desk, "Upgrade the database", window.clone()).await?;
    let second = submitted(desk, "Resize the database disks", window).await?;
    take(tom, &first, "authorize", json!({})).await?;
    take(tom, &second, "authorize", json!({})).await?;
    assert_eq!(approve(&approvers.mia, &first).await?["state"], "scheduled");
    let record = approve(&approvers.mia, &second).await?;
    assert_eq!(record["state"], "assess", "{record}");
    assert_eq!(record["approval_status"], "approved");
    let failed = entries(&record, "follow_on_failed");
    assert_eq!(failed.len(), 1, "{record}");
    let error = failed[0]["error"].as_str().unwrap_or_default();
    assert!(error.contains(&first), "{error}");
    Ok(())
}
