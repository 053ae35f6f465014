//! The email plugin through `tend serve`. A technician runs the shipped
//! `vendor_escalation` message on an incident, and the action worker queues it in the
//! outbox. The outbox worker sends it through the real Postfix that
//! `scripts/ensure-mailserver.sh` starts, and it arrives in the supplier's Dovecot INBOX.
//! The supplier's reply then threads back to the incident by its `In-Reply-To`. Without the servers the test is skipped, or
//! fails under TEND_REQUIRE_MAIL_SERVERS=1.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::{Value, json};
use tend_test_support::reqwest::{Method, StatusCode};
use tend_test_support::tend_domain::Role;
use tend_test_support::{
    Backend, MailServers, TestDatabase, TestServer, TestUser, backend_tests, repo_root,
};

backend_tests!(escalation_is_mailed_and_reply_threads);

/// How long the run, the send and the delivery to Dovecot may take together.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);

/// Polls run `id` over the API until it has ended.
async fn ended_run(user: &TestUser, id: i64) -> anyhow::Result<Value> {
    let deadline = Instant::now() + DELIVERY_TIMEOUT;
    loop {
        let run = user
            .client
            .get(&format!("/api/v1/action-runs/{id}"))
            .await?
            .expect_status(StatusCode::OK)?
            .body;
        let status = run["status"].as_str().unwrap_or_default();
        if !matches!(status, "queued" | "running" | "awaiting_approval") {
            return Ok(run);
        }
        anyhow::ensure!(Instant::now() < deadline, "run {id} did not end: {run}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Returns the value of header `name` in a raw message, unfolded.
fn header(raw: &str, name: &str) -> Option<String> {
    let head = raw.split("\r\n\r\n").next().unwrap_or_default();
    let mut value: Option<String> = None;
    for line in head.split("\r\n") {
        if let Some(found) = &mut value {
            if line.starts_with([' ', '\t']) {
                found.push(' ');
                found.push_str(line.trim());
                continue;
            }
            break;
        }
        if let Some((key, rest)) = line.split_once(':')
            && key.eq_ignore_ascii_case(name)
        {
            value = Some(rest.trim().to_owned());
        }
    }
    value
}

/// Returns the body of a raw single-part message, decoded from quoted-printable
/// (RFC 2045, section 6.7), which the outbox uses for text with long lines or `=`.
fn quoted_printable_body(raw: &str) -> String {
    let body = raw.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    let joined = body.replace("=\r\n", "");
    let bytes = joined.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'='
            && let Some(hex) = joined.get(index + 1..index + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            decoded.push(byte);
            index += 3;
            continue;
        }
        decoded.push(bytes[index]);
        index += 1;
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

async fn escalation_is_mailed_and_reply_threads(backend: Backend) -> anyhow::Result<()> {
    let Some(servers) =
        MailServers::find("email_plugin::escalation_is_mailed_and_reply_threads").await?
    else {
        return Ok(());
    };
    let vendor = servers.address("vendor", "example.net");

    // The shipped configuration, in a plugins directory of its own.
    let plugins = tempfile::tempdir()?;
    std::fs::create_dir_all(plugins.path().join("email"))?;
    std::fs::copy(
        repo_root().join("plugins/email/email.yaml"),
        plugins.path().join("email/email.yaml"),
    )?;
    let plugins_dir = plugins.path().display().to_string();
    let smtp_url = format!("smtp://127.0.0.1:{}", servers.smtp_port);
    let database = TestDatabase::create(backend).await?;
    let server = TestServer::binary_with(
        database,
        &[
            "--plugins-dir",
            &plugins_dir,
            "--smtp-url",
            &smtp_url,
            "--mail-seconds",
            "1",
        ],
    )
    .await?;
    let tom = server.add_user("tom", &[Role::Technician]).await?;
    let admin = server.add_user("ops", &[Role::Admin]).await?;

    let listed = tom
        .client
        .get("/api/v1/plugins")
        .await?
        .expect_status(StatusCode::OK)?
        .body;
    let email = listed["plugins"]
        .as_array()
        .and_then(|plugins| plugins.iter().find(|plugin| plugin["name"] == "email"))
        .with_context(|| format!("the email plugin is listed: {listed}"))?;
    assert_eq!(email["actions"][0]["name"], "vendor_escalation");
    assert_eq!(email["actions"][0]["allowed"], true);

    let title = "Mail relay rejects everything {{7*7}}";
    let created = tom
        .client
        .post(
            "/api/v1/records/incident",
            &json!({ "title": title, "description": "Since 09:00 the relay answers 451." }),
        )
        .await?
        .expect_status(StatusCode::CREATED)?;
    let number = created.body["number"]
        .as_str()
        .context("a record number")?
        .to_owned();

    // An address outside the allowed domains is rejected with the fix, and nothing is sent.
    let refused = tom
        .client
        .post(
            &format!("/api/v1/records/{number}/actions"),
            &json!({ "plugin": "email", "action": "vendor_escalation",
                     "params": { "vendor_address": "desk@vendor.test", "note": "x" } }),
        )
        .await?
        .expect_status(StatusCode::ACCEPTED)?;
    let refused_id = refused.body["id"].as_i64().context("run id")?;
    let refused = ended_run(&tom, refused_id).await?;
    assert_eq!(refused["status"], "failed", "{refused}");
    assert!(
        refused["summary"]
            .as_str()
            .unwrap_or_default()
            .contains("whose domain vendor.test is not among the domains"),
        "{refused}"
    );

    let queued = tom
        .client
        .post(
            &format!("/api/v1/records/{number}/actions"),
            &json!({ "plugin": "email", "action": "vendor_escalation",
                     "params": { "vendor_address": vendor, "note": "Please check relay-02 {{params.note}}." } }),
        )
        .await?
        .expect_status(StatusCode::ACCEPTED)?;
    let id = queued.body["id"].as_i64().context("run id")?;
    let run = ended_run(&tom, id).await?;
    assert_eq!(run["status"], "succeeded", "{run}\n{}", server.log());
    let message_id = run["data"]["mail"][0]["message_id"]
        .as_str()
        .with_context(|| format!("the run names the Message-ID: {run}"))?
        .to_owned();
    assert_eq!(run["data"]["mail"][0]["to"], vendor.as_str());
    assert_eq!(run["data"]["mail"][0]["status"], "queued");
    assert!(message_id.ends_with("@example.com"), "{message_id}");
    assert_eq!(
        run["summary"],
        format!("Queued message `vendor_escalation`: {vendor} <{message_id}>").as_str()
    );

    // The message arrives with the rendered subject and body, the record tag and its id.
    let arrived = servers
        .wait_for_messages(&vendor, "INBOX", 1, DELIVERY_TIMEOUT)
        .await
        .with_context(|| server.log())?;
    assert_eq!(arrived.len(), 1);
    let raw = String::from_utf8_lossy(&arrived[0]).into_owned();
    assert_eq!(
        header(&raw, "Subject").as_deref(),
        Some(format!("[{number}] Escalation: {title}").as_str()),
        "{raw}"
    );
    assert_eq!(
        header(&raw, "Message-ID").as_deref(),
        Some(format!("<{message_id}>").as_str()),
        "{raw}"
    );
    assert_eq!(header(&raw, "Auto-Submitted"), None, "{raw}");
    let body = quoted_printable_body(&raw);
    assert!(
        body.contains(&format!("incident {number} to you: {title}")),
        "{raw}"
    );
    assert!(
        body.contains("Please check relay-02 {{params.note}}."),
        "{raw}"
    );
    assert!(body.contains("\r\ntom\r\n"), "{raw}");

    // The journal shows the queued mail and the run's end, each naming the Message-ID.
    let record = tom
        .client
        .get(&format!("/api/v1/records/{number}"))
        .await?
        .expect_status(StatusCode::OK)?
        .body;
    let journal = record["journal"].as_array().context("a journal")?;
    let queued_entry = journal
        .iter()
        .find(|entry| entry["event"] == "email_queued" && entry["to"] == vendor.as_str())
        .with_context(|| format!("an email_queued entry: {record}"))?;
    assert_eq!(queued_entry["message_id"], message_id.as_str());
    assert_eq!(queued_entry["notify"], "email/vendor_escalation");
    assert_eq!(queued_entry["actor"], "tom");
    let finished = journal
        .iter()
        .find(|entry| entry["event"] == "action_finished" && entry["run"] == id)
        .with_context(|| format!("an action_finished entry: {record}"))?;
    assert!(
        finished["summary"]
            .as_str()
            .unwrap_or_default()
            .contains(&message_id),
        "{finished}"
    );

    // The supplier's reply, without the tag in its subject, finds the incident by its
    // In-Reply-To.
    let reply = format!(
        "From: Vendor Desk <{vendor}>\r\nTo: support@example.com\r\nSubject: Re: Escalation\r\nMessage-ID: <reply-{id}@example.net>\r\nIn-Reply-To: <{message_id}>\r\nReferences: <{message_id}>\r\nDate: Sat, 05 Dec 2026 10:00:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nWe restarted relay-02.\r\n"
    );
    let taken = admin
        .client
        .send(
            admin
                .client
                .request(Method::POST, "/api/v1/mail/inbound/support")
                .header("Content-Type", "message/rfc822")
                .body(reply),
        )
        .await?;
    assert!(taken.status.is_success(), "{} {}", taken.status, taken.text);
    assert_eq!(taken.body["record"], number.as_str(), "{}", taken.text);
    let record = tom
        .client
        .get(&format!("/api/v1/records/{number}"))
        .await?
        .expect_status(StatusCode::OK)?
        .body;
    let received = record["journal"]
        .as_array()
        .context("a journal")?
        .iter()
        .find(|entry| entry["event"] == "email_received")
        .with_context(|| format!("an email_received entry: {record}"))?;
    assert_eq!(received["from"], vendor.as_str(), "{received}");
    Ok(())
}
