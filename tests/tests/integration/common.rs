//! Helpers shared by the tests: a service desk with users, and assertions on records.

use std::collections::HashSet;

use anyhow::Context as _;
use serde_json::{Value, json};
use tend_test_support::reqwest::StatusCode;
use tend_test_support::{ApiClient, Backend, Role, TestServer, TestUser};

pub const RECORDS: &str = "/api/v1/records";
pub const NEW_INCIDENT: &str = "/api/v1/records/incident";

/// A server with two requesters (`alice`, `bob`) and a technician (`tom`).
pub struct Desk {
    pub server: TestServer,
    pub alice: TestUser,
    pub bob: TestUser,
    pub tom: TestUser,
}

impl Desk {
    /// Starts an in-process server on a fresh database of `backend` and adds the users.
    pub async fn open(backend: Backend) -> anyhow::Result<Desk> {
        let server = TestServer::in_process(backend).await?;
        Desk::with_users(server).await
    }

    pub async fn with_users(server: TestServer) -> anyhow::Result<Desk> {
        let alice = server.add_user("alice", &[Role::Requester]).await?;
        let bob = server.add_user("bob", &[Role::Requester]).await?;
        let tom = server.add_user("tom", &[Role::Technician]).await?;
        Ok(Desk {
            server,
            alice,
            bob,
            tom,
        })
    }
}

/// Creates an incident as `user`, expects 201 and returns the record.
pub async fn create_incident(
    user: &TestUser,
    title: &str,
    description: &str,
    fields: Value,
) -> anyhow::Result<Value> {
    let body = json!({ "title": title, "description": description, "fields": fields });
    let reply = user.client.post(NEW_INCIDENT, &body).await?;
    let reply = reply.expect_status(StatusCode::CREATED)?;
    Ok(reply.body)
}

/// Reads a record, expecting 200.
pub async fn read(client: &ApiClient, number: &str) -> anyhow::Result<Value> {
    let reply = client.get(&format!("{RECORDS}/{number}")).await?;
    Ok(reply.expect_status(StatusCode::OK)?.body)
}

/// Takes a transition, expecting 200, and returns the record.
pub async fn take(
    client: &ApiClient,
    number: &str,
    transition: &str,
    body: Value,
) -> anyhow::Result<Value> {
    let reply = client
        .post(
            &format!("{RECORDS}/{number}/transitions/{transition}"),
            &body,
        )
        .await?;
    let reply = reply.expect_status(StatusCode::OK)?;
    Ok(reply.body)
}

/// Lists every record that `client` may see, following `next_cursor` with pages of
/// `page_size`, and returns their numbers in list order.
pub async fn list_numbers(
    client: &ApiClient,
    query: &str,
    page_size: u32,
) -> anyhow::Result<Vec<String>> {
    let mut numbers = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let mut path = format!("{RECORDS}?limit={page_size}");
        if !query.is_empty() {
            path.push('&');
            path.push_str(query);
        }
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let page = client.get(&path).await?.expect_status(StatusCode::OK)?.body;
        let records = page["records"]
            .as_array()
            .context("the list has no `records` array")?;
        anyhow::ensure!(
            records.len() <= page_size as usize,
            "a page of limit {page_size} holds {} records",
            records.len()
        );
        for record in records {
            numbers.push(
                record["number"]
                    .as_str()
                    .context("a listed record has no number")?
                    .to_owned(),
            );
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return Ok(numbers),
        }
    }
    anyhow::bail!("the list did not end after 1000 pages")
}

/// Returns the numbers of the records `client` may see, from one list of at most 500.
pub async fn visible_numbers(client: &ApiClient) -> anyhow::Result<HashSet<String>> {
    Ok(list_numbers(client, "", 500).await?.into_iter().collect())
}

/// Returns the journal of a record as a read returns it.
pub fn journal(record: &Value) -> &[Value] {
    record["journal"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// Returns the `event` names of a record's journal, in order.
pub fn journal_events(record: &Value) -> Vec<&str> {
    journal(record)
        .iter()
        .map(|entry| entry["event"].as_str().unwrap_or("(none)"))
        .collect()
}

/// Returns the names of the transitions a read offers.
pub fn transition_names(record: &Value) -> Vec<&str> {
    record["transitions"]
        .as_array()
        .map(|transitions| {
            transitions
                .iter()
                .filter_map(|t| t["name"].as_str())
                .collect()
        })
        .unwrap_or_default()
}

/// A snapshot of one record and of the record list, taken before a request that must be
/// rejected. [`Unchanged::check`] then asserts that the request wrote nothing: the record
/// reads exactly as before (fields, state, revision and journal) and the list is the same.
pub struct Unchanged<'a> {
    pub observer: &'a ApiClient,
    pub number: String,
    pub record: Value,
    pub listed: HashSet<String>,
}

impl<'a> Unchanged<'a> {
    /// Reads the reference state of `number` as `observer` (a technician).
    pub async fn capture(observer: &'a ApiClient, number: &str) -> anyhow::Result<Unchanged<'a>> {
        Ok(Unchanged {
            observer,
            number: number.to_owned(),
            record: read(observer, number).await?,
            listed: visible_numbers(observer).await?,
        })
    }

    /// Asserts that nothing changed since the snapshot; `request` names it in failures.
    pub async fn check(&self, request: &str) -> anyhow::Result<()> {
        let now = read(self.observer, &self.number).await?;
        assert_eq!(
            journal(&now).len(),
            journal(&self.record).len(),
            "{request} added journal entries to {}",
            self.number
        );
        assert_eq!(
            without_running_time(&now),
            without_running_time(&self.record),
            "{request} changed {}",
            self.number
        );
        let listed = visible_numbers(self.observer).await?;
        assert_eq!(listed, self.listed, "{request} changed the list of records");
        Ok(())
    }
}

/// Asserts that `reply` is an API error with `status`, `code` and (when given) `field`.
pub fn assert_error(
    reply: &tend_test_support::Reply,
    status: StatusCode,
    code: &str,
    field: Option<&str>,
) {
    assert_eq!(
        reply.status, status,
        "unexpected status; body: {}",
        reply.text
    );
    assert_eq!(
        reply.error_code(),
        Some(code),
        "unexpected error code; body: {}",
        reply.text
    );
    if let Some(field) = field {
        assert_eq!(
            reply.error_field(),
            Some(field),
            "unexpected error field; body: {}",
            reply.text
        );
    }
    let message = reply.body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        !message.is_empty(),
        "the error has no message: {}",
        reply.text
    );
}

/// Returns `record` without the figures of its SLA clocks that grow while they run.
pub fn without_running_time(record: &Value) -> Value {
    let mut record = record.clone();
    if let Some(clocks) = record["clocks"].as_array_mut() {
        for clock in clocks.iter_mut().filter_map(Value::as_object_mut) {
            for live in ["elapsed", "elapsed_seconds", "left_seconds", "breached"] {
                clock.remove(live);
            }
        }
    }
    record
}
