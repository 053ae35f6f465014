//! Approvals: rounds opened by a transition, decided by users, groups and boards, with
//! the share rule of case C62, self-approval, rejection paths and deadlines.

use std::path::Path;
use std::sync::Arc;

use chrono::{Duration, Utc};
use serde_json::{Value, json};
use tend_test_support::reqwest::StatusCode;
use tend_test_support::tend_api::Commands;
use tend_test_support::tend_api::approvals::Decision;
use tend_test_support::tend_domain::{Actor, Command, Fields, Role};
use tend_test_support::tend_workflow::{Definition, GroupDef, parse_yaml};
use tend_test_support::{Backend, backend_tests};

use crate::common::{Desk, RECORDS, assert_error, read};

backend_tests!(
    all_approvers_one_rejection_rejects_at_once,
    half_of_four_is_approved_by_two,
    half_of_two_waits_after_one_rejection,
    a_later_round_decides_the_overall_status,
    requester_cannot_approve_own_request,
    approvers_decide_over_the_api,
    deadline_escalates_to_the_escalation_approver,
    leaving_the_state_cancels_the_round,
    members_who_are_not_users_are_reported
);

/// A process whose transitions cover the approval policies. `board10` has ten members,
/// `board4` four, `pair` two, and `ops` contains tom and sara.
const ACCESS_REQUEST: &str = r#"
process: access_request
title: Access request
number_prefix: ACC
permissions:
  create: [requester, technician]
  update: [technician]
  comment: [requester, technician]
fields:
  requester: { type: user, set_by: [technician] }
  justification: { type: text }
states:
  submitted: { initial: true }
  approved: {}
  declined: {}
  done: { final: true }
transitions:
  - name: grant_all
    from: [submitted]
    to: approved
    roles: [technician]
    approval: { approvers: ["board:board10"], policy: all, on_reject: decline }
  - name: grant_half
    from: [submitted]
    to: approved
    roles: [technician]
    approval: { approvers: ["board:board4"], policy: share, share: 50 }
  - name: grant_pair
    from: [submitted]
    to: approved
    roles: [technician, requester]
    approval: { approvers: ["board:pair"], policy: share, share: 50, on_reject: decline }
  - name: grant_ops
    from: [submitted]
    to: approved
    roles: [technician]
    approval:
      approvers: ["group:ops"]
      deadline: 1h
      on_deadline: escalate
      escalate_to: ["user:cio"]
  - name: decline
    from: [submitted]
    to: declined
    roles: [technician]
  - name: reconsider
    from: [approved, declined]
    to: submitted
    roles: [technician]
  - name: finish
    from: [approved, declined, submitted]
    to: done
    roles: [technician]
"#;

/// Adds the test process and its groups to the server's definitions.
fn install(desk: &Desk) -> anyhow::Result<&Commands> {
    let commands = desk
        .server
        .commands()
        .expect("the in-process server exposes its command path");
    let definition: Definition = parse_yaml(Path::new("access_request.yaml"), ACCESS_REQUEST)
        .map_err(|problems| anyhow::anyhow!("the test definition is invalid: {problems:?}"))?;
    let mut set = (*commands.engine.definitions()).clone();
    set.definitions
        .insert(definition.process.clone(), Arc::new(definition));
    let group = |members: Vec<String>| GroupDef {
        label: None,
        members,
    };
    let numbered = |prefix: &str, count: usize| -> Vec<String> {
        (1..=count).map(|i| format!("{prefix}{i}")).collect()
    };
    set.groups
        .insert("board10".into(), group(numbered("member", 10)));
    set.groups
        .insert("board4".into(), group(numbered("reviewer", 4)));
    set.groups.insert("pair".into(), group(numbered("peer", 2)));
    set.groups
        .insert("ops".into(), group(vec!["tom".into(), "sara".into()]));
    commands.engine.replace_definitions(set);
    Ok(commands)
}

async fn new_request(desk: &Desk) -> anyhow::Result<String> {
    let reply = desk
        .tom
        .client
        .post(
            &format!("{RECORDS}/access_request"),
            &json!({
                "title": "Read access to the finance share",
                "fields": { "requester": "alice", "justification": "Quarter-end reports" }
            }),
        )
        .await?;
    let body = reply.expect_status(StatusCode::CREATED)?.body;
    Ok(body["number"].as_str().unwrap_or_default().to_owned())
}

fn person(name: &str) -> Actor {
    Actor::new(name, vec![Role::Requester])
}

fn technician(name: &str) -> Actor {
    Actor::new(name, vec![Role::Technician])
}

async fn ask(commands: &Commands, number: &str, transition: &str) -> anyhow::Result<()> {
    let command = Command::Transition {
        name: transition.into(),
        fields: Fields::new(),
        comment: None,
    };
    commands
        .apply(&technician("tom"), number, command)
        .await
        .map_err(|error| anyhow::anyhow!("asking for {transition} failed: {error}"))?;
    Ok(())
}

/// Returns the pending request ids of the last round, by approver.
async fn requests(commands: &Commands, number: &str) -> anyhow::Result<Vec<(String, i64)>> {
    let record = commands
        .store
        .get_record(number)
        .await?
        .ok_or_else(|| anyhow::anyhow!("{number} is missing"))?;
    let rounds = commands.store.approval_rounds(record.id).await?;
    let last = rounds
        .last()
        .ok_or_else(|| anyhow::anyhow!("{number} has no approval round"))?;
    Ok(last
        .requests
        .iter()
        .filter(|r| r.status == "pending")
        .map(|r| (r.users[0].clone(), r.id))
        .collect())
}

async fn decide(
    commands: &Commands,
    number: &str,
    user: &str,
    decision: Decision,
) -> anyhow::Result<()> {
    let pending = requests(commands, number).await?;
    let (_, id) = pending
        .iter()
        .find(|(name, _)| name == user)
        .ok_or_else(|| anyhow::anyhow!("{user} has no pending request on {number}"))?;
    let reason = if decision == Decision::Reject {
        "Not needed for this role"
    } else {
        ""
    };
    commands
        .decide_approval(&person(user), number, *id, decision, reason)
        .await
        .map_err(|error| anyhow::anyhow!("{user} could not decide: {error}"))?;
    Ok(())
}

async fn state_and_status(desk: &Desk, number: &str) -> anyhow::Result<(String, Value)> {
    let record = read(&desk.tom.client, number).await?;
    Ok((
        record["state"].as_str().unwrap_or_default().to_owned(),
        record["approval_status"].clone(),
    ))
}

/// C62 (a): ten approvers, all must approve: one rejection rejects the round at once, the
/// nine open requests are closed, and the definition's `on_reject` transition is taken.
async fn all_approvers_one_rejection_rejects_at_once(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let commands = install(&desk)?;
    let number = new_request(&desk).await?;
    ask(commands, &number, "grant_all").await?;
    assert_eq!(requests(commands, &number).await?.len(), 10);
    let (state, status) = state_and_status(&desk, &number).await?;
    assert_eq!((state.as_str(), status), ("submitted", json!("pending")));

    decide(commands, &number, "member3", Decision::Reject).await?;

    let (state, status) = state_and_status(&desk, &number).await?;
    assert_eq!((state.as_str(), status), ("declined", json!("rejected")));
    assert!(requests(commands, &number).await?.is_empty());
    for i in [1, 2, 4, 10] {
        let queue = commands
            .store
            .pending_approvals(&format!("member{i}"))
            .await?;
        assert!(queue.is_empty(), "member{i} still sees {queue:?}");
    }
    let record = read(&desk.tom.client, &number).await?;
    let events: Vec<&str> = record["journal"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["event"].as_str())
        .collect();
    assert!(
        events.ends_with(&[
            "approval_decided",
            "approval_completed",
            "transitioned",
            "commented"
        ]),
        "{events:?}"
    );
    Ok(())
}

/// C62 (b): four approvers, half needed: two approvals approve, the transition is taken,
/// and the two others no longer see the request.
async fn half_of_four_is_approved_by_two(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let commands = install(&desk)?;
    let number = new_request(&desk).await?;
    ask(commands, &number, "grant_half").await?;
    decide(commands, &number, "reviewer1", Decision::Approve).await?;
    assert_eq!(state_and_status(&desk, &number).await?.0, "submitted");
    decide(commands, &number, "reviewer4", Decision::Approve).await?;

    let (state, status) = state_and_status(&desk, &number).await?;
    assert_eq!((state.as_str(), status), ("approved", json!("approved")));
    for user in ["reviewer2", "reviewer3"] {
        assert!(commands.store.pending_approvals(user).await?.is_empty());
    }
    let record = read(&desk.tom.client, &number).await?;
    let last = record["journal"]
        .as_array()
        .and_then(|journal| journal.iter().rev().find(|e| e["event"] == "transitioned"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(last["transition"], "grant_half", "{last}");
    Ok(())
}

/// C62 (c): two approvers, half needed: one rejection leaves one approval possible, so the
/// round waits; the second rejection rejects it.
async fn half_of_two_waits_after_one_rejection(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let commands = install(&desk)?;
    let number = new_request(&desk).await?;
    ask(commands, &number, "grant_pair").await?;
    decide(commands, &number, "peer1", Decision::Reject).await?;
    let (state, status) = state_and_status(&desk, &number).await?;
    assert_eq!((state.as_str(), status), ("submitted", json!("pending")));
    assert_eq!(commands.store.pending_approvals("peer2").await?.len(), 1);

    decide(commands, &number, "peer2", Decision::Reject).await?;
    let (state, status) = state_and_status(&desk, &number).await?;
    assert_eq!((state.as_str(), status), ("declined", json!("rejected")));
    Ok(())
}

/// C62 (d): a second, independent round after the first was approved is rejected, and
/// the record's overall approval status is the second round's.
async fn a_later_round_decides_the_overall_status(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let commands = install(&desk)?;
    let number = new_request(&desk).await?;
    ask(commands, &number, "grant_pair").await?;
    decide(commands, &number, "peer1", Decision::Approve).await?;
    assert_eq!(
        state_and_status(&desk, &number).await?,
        ("approved".to_owned(), json!("approved"))
    );

    ask(commands, &number, "reconsider").await?;
    ask(commands, &number, "grant_pair").await?;
    decide(commands, &number, "peer1", Decision::Reject).await?;
    decide(commands, &number, "peer2", Decision::Reject).await?;

    let record = read(&desk.tom.client, &number).await?;
    assert_eq!(record["approval_status"], "rejected");
    assert_eq!(record["state"], "declined");
    let rounds = record["approvals"].as_array().cloned().unwrap_or_default();
    let statuses: Vec<&str> = rounds.iter().filter_map(|r| r["status"].as_str()).collect();
    assert_eq!(statuses, ["approved", "rejected"]);
    Ok(())
}

/// Leaves the person asking out of the approvers. A round with no other approver is
/// rejected with a message that names the fix.
async fn requester_cannot_approve_own_request(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let commands = install(&desk)?;
    let number = new_request(&desk).await?;
    ask(commands, &number, "grant_ops").await?;
    let pending = requests(commands, &number).await?;
    let (_, id) = pending[0].clone();
    let record = commands.store.get_record(&number).await?.expect("stored");
    let rounds = commands.store.approval_rounds(record.id).await?;
    assert_eq!(
        rounds[0].requests[0].users,
        ["sara"],
        "tom asked, so only sara decides"
    );

    let refused = commands
        .decide_approval(&technician("tom"), &number, id, Decision::Approve, "")
        .await;
    assert!(refused.is_err(), "tom approved his own request");

    // peer1 takes `grant_pair` and is one of its two approvers: only peer2 is asked.
    let second = new_request(&desk).await?;
    let command = Command::Transition {
        name: "grant_pair".into(),
        fields: Fields::new(),
        comment: None,
    };
    commands
        .apply(
            &Actor::new("peer1", vec![Role::Technician]),
            &second,
            command,
        )
        .await?;
    let pending = requests(commands, &second).await?;
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].0, "peer2");
    Ok(())
}

/// Checks the REST API: the record lists its rounds, a rejection needs a reason, a user
/// who is not an approver may not decide, and the approver's decision takes the transition.
async fn approvers_decide_over_the_api(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    install(&desk)?;
    let sara = desk.server.add_user("sara", &[Role::Technician]).await?;
    let number = new_request(&desk).await?;
    let reply = desk
        .tom
        .client
        .post(
            &format!("{RECORDS}/{number}/transitions/grant_ops"),
            &json!({}),
        )
        .await?;
    let record = reply.expect_status(StatusCode::OK)?.body;
    assert_eq!(record["state"], "submitted");
    assert_eq!(record["approval_status"], "pending");
    let request = &record["approvals"][0]["requests"][0];
    assert_eq!(request["approver"], "group:ops");
    let id = request["id"].as_i64().expect("request id");
    let path = format!("{RECORDS}/{number}/approvals/{id}");

    // A method the path does not take gets the API's error shape, not an empty 405.
    let wrong_method = sara.client.post("/api/v1/approvals", &json!({})).await?;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        wrong_method.error_code(),
        Some("method_not_allowed"),
        "{}",
        wrong_method.text
    );

    let queue = sara.client.get("/api/v1/approvals").await?;
    let queue = queue.expect_status(StatusCode::OK)?.body;
    assert_eq!(queue["approvals"][0]["number"], number.as_str());

    let again = desk
        .tom
        .client
        .post(
            &format!("{RECORDS}/{number}/transitions/grant_ops"),
            &json!({}),
        )
        .await?;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text);

    let no_reason = sara
        .client
        .post(&path, &json!({ "decision": "reject" }))
        .await?;
    assert_error(
        &no_reason,
        StatusCode::BAD_REQUEST,
        "reason_required",
        Some("reason"),
    );
    let stranger = desk
        .tom
        .client
        .post(&path, &json!({ "decision": "approve" }))
        .await?;
    assert_eq!(stranger.status, StatusCode::FORBIDDEN, "{}", stranger.text);
    let unknown = sara
        .client
        .post(&path, &json!({ "decision": "maybe" }))
        .await?;
    assert_error(
        &unknown,
        StatusCode::BAD_REQUEST,
        "invalid_decision",
        Some("decision"),
    );

    let approved = sara
        .client
        .post(
            &path,
            &json!({ "decision": "approve", "reason": "Owner confirmed" }),
        )
        .await?;
    let record = approved.expect_status(StatusCode::OK)?.body;
    assert_eq!(record["state"], "approved");
    assert_eq!(record["approvals"][0]["requests"][0]["decided_by"], "sara");
    let twice = sara
        .client
        .post(&path, &json!({ "decision": "approve" }))
        .await?;
    assert_eq!(twice.status, StatusCode::CONFLICT, "{}", twice.text);
    Ok(())
}

/// Checks that a round past its deadline goes to the escalation approver, whose decision
/// ends it.
async fn deadline_escalates_to_the_escalation_approver(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let commands = install(&desk)?;
    let number = new_request(&desk).await?;
    let command = Command::Transition {
        name: "grant_ops".into(),
        fields: Fields::new(),
        comment: None,
    };
    commands
        .apply_at(
            &technician("tom"),
            &number,
            command,
            Some(Utc::now() - Duration::hours(2)),
        )
        .await?;
    assert_eq!(commands.handle_approval_deadlines(Utc::now()).await?, 1);
    assert_eq!(
        commands.handle_approval_deadlines(Utc::now()).await?,
        0,
        "a deadline is handled once"
    );
    assert!(commands.store.pending_approvals("sara").await?.is_empty());
    assert_eq!(commands.store.pending_approvals("cio").await?.len(), 1);

    decide(commands, &number, "cio", Decision::Approve).await?;
    let record = read(&desk.tom.client, &number).await?;
    assert_eq!(record["state"], "approved");
    let events: Vec<&str> = record["journal"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["event"].as_str())
        .collect();
    assert!(events.contains(&"approval_escalated"), "{events:?}");
    Ok(())
}

/// Checks that a record leaving its state by another transition cancels its round.
async fn leaving_the_state_cancels_the_round(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let commands = install(&desk)?;
    let number = new_request(&desk).await?;
    ask(commands, &number, "grant_half").await?;
    ask(commands, &number, "decline").await?;
    let (state, status) = state_and_status(&desk, &number).await?;
    assert_eq!((state.as_str(), status), ("declined", json!("cancelled")));
    assert!(
        commands
            .store
            .pending_approvals("reviewer1")
            .await?
            .is_empty()
    );
    Ok(())
}

/// Checks that group members who are not users are listed as warnings, because they can
/// never decide.
async fn members_who_are_not_users_are_reported(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let commands = install(&desk)?;
    let warnings = commands.group_warnings().await?;
    assert!(
        warnings.iter().any(|w| w.contains("`pair` lists `peer2`")),
        "{warnings:?}"
    );
    assert!(
        !warnings.iter().any(|w| w.contains("`tom`")),
        "tom is a user: {warnings:?}"
    );
    desk.server.add_user("peer2", &[Role::Technician]).await?;
    let warnings = commands.group_warnings().await?;
    assert!(
        !warnings.iter().any(|w| w.contains("`peer2`")),
        "{warnings:?}"
    );
    Ok(())
}
