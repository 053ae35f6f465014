//! Helpers of the process tests (change, service request, release, ...): members for the
//! shipped groups, which list only `admin`, approval decisions made the way an approver
//! makes them, and short reads of records.

use anyhow::Context as _;
use serde_json::{Value, json};
use tend_test_support::reqwest::StatusCode;
use tend_test_support::{ApiClient, Reply, TestUser};

use crate::common::{Desk, RECORDS, journal};

/// Replaces the members of shipped groups in the running server's definitions, as an
/// organisation does in `workflows/groups/groups.yaml`. Call it before creating records.
pub fn set_members(desk: &Desk, groups: &[(&str, &[&str])]) -> anyhow::Result<()> {
    let commands = desk
        .server
        .commands()
        .context("the in-process server exposes its command path")?;
    let mut set = (*commands.engine.definitions()).clone();
    for (name, members) in groups {
        let group = set
            .groups
            .get_mut(*name)
            .with_context(|| format!("workflows/groups/ declares no group `{name}`"))?;
        group.members = members.iter().map(|member| (*member).to_owned()).collect();
    }
    commands.engine.replace_definitions(set);
    Ok(())
}

/// Creates a record of `process` as `client`, expects 201 and returns it.
pub async fn create(client: &ApiClient, process: &str, body: Value) -> anyhow::Result<Value> {
    let reply = client.post(&format!("{RECORDS}/{process}"), &body).await?;
    Ok(reply.expect_status(StatusCode::CREATED)?.body)
}

/// Asks for a transition and returns the reply, whatever its status.
pub async fn attempt(
    client: &ApiClient,
    number: &str,
    transition: &str,
    body: Value,
) -> anyhow::Result<Reply> {
    client
        .post(
            &format!("{RECORDS}/{number}/transitions/{transition}"),
            &body,
        )
        .await
}

/// Updates fields of a record, expecting 200, and returns the record.
pub async fn update(client: &ApiClient, number: &str, fields: Value) -> anyhow::Result<Value> {
    let reply = client
        .patch(&format!("{RECORDS}/{number}"), &json!({ "fields": fields }))
        .await?;
    Ok(reply.expect_status(StatusCode::OK)?.body)
}

/// Returns the record's number.
pub fn number(record: &Value) -> String {
    record["number"].as_str().unwrap_or_default().to_owned()
}

/// Returns the links of `record` of one type.
pub fn links_of_type(record: &Value, link_type: &str) -> Vec<Value> {
    record["links"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|link| link["type"] == link_type)
        .cloned()
        .collect()
}

/// Returns the journal entries of `record` with `event`, oldest first.
pub fn entries<'a>(record: &'a Value, event: &str) -> Vec<&'a Value> {
    journal(record)
        .iter()
        .filter(|entry| entry["event"] == event)
        .collect()
}

/// Returns the last `transitioned` entry of the journal, or `null`.
pub fn last_transition(record: &Value) -> Value {
    entries(record, "transitioned")
        .last()
        .map_or(Value::Null, |entry| (*entry).clone())
}

/// Returns the `message` of an API error reply.
pub fn error_message(reply: &Reply) -> &str {
    reply.body["error"]["message"].as_str().unwrap_or_default()
}

/// Returns the id of the approval request on `number` that waits for `user`, as
/// `GET /api/v1/approvals` lists it to them.
pub async fn pending_request(user: &TestUser, number: &str) -> anyhow::Result<i64> {
    let queue = user.client.get("/api/v1/approvals").await?;
    let queue = queue.expect_status(StatusCode::OK)?.body;
    queue["approvals"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|pending| pending["number"] == number)
        .and_then(|pending| pending["request"]["id"].as_i64())
        .with_context(|| format!("{} has no request of {number} in {queue}", user.name))
}

/// Decides `user`'s pending request on `number` through the API and returns the reply.
pub async fn decide(
    user: &TestUser,
    number: &str,
    decision: &str,
    reason: &str,
) -> anyhow::Result<Reply> {
    let id = pending_request(user, number).await?;
    user.client
        .post(
            &format!("{RECORDS}/{number}/approvals/{id}"),
            &json!({ "decision": decision, "reason": reason }),
        )
        .await
}

/// Approves `user`'s pending request on `number`, expects 200 and returns the record.
pub async fn approve(user: &TestUser, number: &str) -> anyhow::Result<Value> {
    let reply = decide(user, number, "approve", "").await?;
    Ok(reply.expect_status(StatusCode::OK)?.body)
}
