//! Inbound email through the intake, `tend mail-gateway` and `POST /api/v1/mail/inbound`:
//! every message of the shared corpus lands somewhere with a reason, a second delivery
//! does nothing, replies thread by tag and by reference and reach a record only from its
//! people. Machine-made mail is not answered, and the rate limit stops mail loops.

use std::path::PathBuf;

use anyhow::Context as _;

use chrono::{Duration, Utc};
use serde_json::{Value, json};
use tend_test_support::reqwest::{Method, StatusCode};
use tend_test_support::tend_api::Commands;
use tend_test_support::tend_api::mail_intake::IntakeOutcome;
use tend_test_support::tend_domain::{Actor, Command, Fields, Role};
use tend_test_support::tend_store::mail::MailStatus;
use tend_test_support::{
    Backend, TEST_PASSWORD, TestServer, backend_tests, repo_root, run_tend, run_tend_with_bytes,
};

use crate::common::{RECORDS, read};

backend_tests!(
    every_message_lands_with_a_reason,
    second_delivery_does_nothing,
    replies_thread_by_tag_and_references,
    stranger_with_a_tag_gets_a_linked_record,
    reply_to_acknowledgement_threads,
    bounce_is_noted_and_not_answered,
    helpdesks_answering_each_other_stop,
    mail_defaults_are_visible_to_rules,
    replies_follow_the_reply_policy,
    concurrent_deliveries_create_one_record,
    gateway_exit_codes,
    http_intake_and_quarantine,
);

const MAILBOX: &str = "support";

struct MailDesk {
    server: TestServer,
    /// A technician's API client.
    tom: tend_test_support::ApiClient,
}

impl MailDesk {
    async fn open(backend: Backend) -> anyhow::Result<MailDesk> {
        let server = TestServer::in_process(backend).await?;
        let store = &server.commands().expect("in-process server").store;
        store
            .add_user(
                "alice",
                Some("alice@example.org"),
                &[Role::Requester],
                TEST_PASSWORD,
            )
            .await?;
        store
            .add_user(
                "tom",
                Some("tom@example.com"),
                &[Role::Technician],
                TEST_PASSWORD,
            )
            .await?;
        let token = store.create_token("tom", "tests").await?;
        let tom = server.client(&token);
        Ok(MailDesk { server, tom })
    }

    fn commands(&self) -> &Commands {
        self.server.commands().expect("in-process server")
    }

    async fn take(&self, raw: &str) -> anyhow::Result<IntakeOutcome> {
        self.take_bytes(raw.as_bytes().to_vec()).await
    }

    async fn take_bytes(&self, raw: Vec<u8>) -> anyhow::Result<IntakeOutcome> {
        self.commands()
            .take_mail(MAILBOX, "http", raw)
            .await
            .map_err(|error| anyhow::anyhow!("the intake failed: {error}"))
    }

    async fn record(&self, number: &str) -> anyhow::Result<Value> {
        read(&self.tom, number).await
    }

    async fn count_records(&self) -> anyhow::Result<usize> {
        let page = self
            .tom
            .get(&format!("{RECORDS}?limit=500"))
            .await?
            .expect_status(StatusCode::OK)?
            .body;
        Ok(page["records"].as_array().map_or(0, Vec::len))
    }
}

/// Builds a plain message; `extra` contains more header lines, each ending in a newline.
fn message(from: &str, subject: &str, id: &str, extra: &str, body: &str) -> String {
    format!(
        "From: {from}\nTo: support@example.com\nSubject: {subject}\nDate: Thu, 12 Feb 2026 09:00:00 +0100\nMessage-ID: <{id}>\n{extra}MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n{body}\n"
    )
}

fn created(outcome: &IntakeOutcome) -> anyhow::Result<String> {
    anyhow::ensure!(
        outcome.status == MailStatus::Processed && outcome.effect.as_deref() == Some("created"),
        "expected a new record: {outcome:?}"
    );
    outcome
        .record
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no record in {outcome:?}"))
}

/// Returns the `email_received` entries of a record's journal.
fn mail_entries(record: &Value) -> Vec<Value> {
    record["journal"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter(|entry| entry["event"] == "email_received")
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

fn comments(record: &Value) -> Vec<String> {
    record["journal"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter_map(|entry| match entry["event"].as_str() {
                    Some("commented") => entry["text"].as_str().map(str::to_owned),
                    Some("transitioned") => entry["comment"].as_str().map(str::to_owned),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Lists the `.eml` files of a directory, sorted, or none when it does not exist.
fn eml_files(directory: PathBuf) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(&directory) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "eml"))
        .collect();
    files.sort();
    files
}

fn shared_directory(name: &str) -> PathBuf {
    repo_root().join("../shared").join(name)
}

async fn every_message_lands_with_a_reason(backend: Backend) -> anyhow::Result<()> {
    let desk = MailDesk::open(backend).await?;
    let mut files = eml_files(repo_root().join("tests/fixtures/emails"));
    let corpus = eml_files(shared_directory("data/emails"));
    if corpus.is_empty() {
        eprintln!("no shared corpus beside the repository: only the fixtures are delivered");
    }
    files.extend(corpus);
    files.extend(eml_files(shared_directory("cases")));
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for path in &files {
        let raw = std::fs::read(path)?;
        let name = path.display();
        let outcome = desk.take_bytes(raw.clone()).await?;
        match outcome.status {
            MailStatus::Processed => {
                let number = outcome.record.as_deref().unwrap_or_default();
                anyhow::ensure!(!number.is_empty(), "{name}: processed without a record");
                let record = desk.record(number).await?;
                let entries = mail_entries(&record);
                anyhow::ensure!(
                    entries.iter().any(|entry| entry["mail"] == outcome.mail),
                    "{name}: {number} has no email_received entry for message {}",
                    outcome.mail
                );
            }
            MailStatus::Robot | MailStatus::Quarantined | MailStatus::Rejected => {
                let reason = outcome.reason.as_deref().unwrap_or_default();
                anyhow::ensure!(
                    !reason.is_empty(),
                    "{name}: {:?} without a reason",
                    outcome.status
                );
            }
            MailStatus::Received => anyhow::bail!("{name}: left unprocessed: {outcome:?}"),
        }
        *counts.entry(outcome.status.to_string()).or_default() += 1;
        // The same bytes again are a duplicate of the same stored message.
        let again = desk.take_bytes(raw).await?;
        anyhow::ensure!(
            again.mail == outcome.mail || outcome.duplicate,
            "{name}: second delivery stored as {} after {}",
            again.mail,
            outcome.mail
        );
        anyhow::ensure!(
            again.duplicate,
            "{name}: second delivery was processed: {again:?}"
        );
    }
    eprintln!("{} messages: {counts:?}", files.len());
    anyhow::ensure!(
        counts.get("processed").copied().unwrap_or(0) > 0,
        "{counts:?}"
    );
    Ok(())
}

async fn second_delivery_does_nothing(backend: Backend) -> anyhow::Result<()> {
    let desk = MailDesk::open(backend).await?;
    // No Message-ID, so the key is made from the bytes.
    let raw = "From: Requester <user@example.org>\nTo: helpdesk@example.com\nSubject: Password reset needed\nDate: Mon, 09 Feb 2026 09:00:00 +0100\nMIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n\nPlease reset my password for the expense portal.\n";
    let first = desk.take(raw).await?;
    let number = created(&first)?;
    let again = desk.take(raw).await?;
    assert!(again.duplicate, "{again:?}");
    assert_eq!(again.mail, first.mail);
    assert_eq!(again.record.as_deref(), Some(number.as_str()));
    assert_eq!(desk.count_records().await?, 1);
    let stored = desk
        .commands()
        .store
        .mail_message(first.mail)
        .await?
        .expect("stored");
    assert!(
        stored.dedup_key.starts_with("sha256-") && stored.dedup_key.ends_with("@generated.invalid"),
        "{}",
        stored.dedup_key
    );
    // One character more in the body is another message.
    let other = desk.take(&raw.replace("portal.", "portal!")).await?;
    assert_ne!(created(&other)?, number);
    assert_eq!(desk.count_records().await?, 2);
    Ok(())
}

async fn replies_thread_by_tag_and_references(backend: Backend) -> anyhow::Result<()> {
    let desk = MailDesk::open(backend).await?;
    let first = desk
        .take(&message(
            "Alice <alice@example.org>",
            "Printer on floor 3 jams",
            "first@mail.example.org",
            "Cc: Colleague <colleague@example.org>\n",
            "Every second page jams.",
        ))
        .await?;
    let number = created(&first)?;
    let record = desk.record(&number).await?;
    assert_eq!(record["fields"]["requester"], "alice");
    assert_eq!(record["fields"]["contact_type"], "email");
    assert_eq!(record["fields"]["watchers"], "colleague@example.org");
    assert_eq!(record["description"], "Every second page jams.");

    // By subject tag, behind a Nordic reply prefix, without references.
    let tagged = desk
        .take(&message(
            "alice@example.org",
            &format!("VS: [{number}] Printer on floor 3 jams"),
            "tagged@mail.example.org",
            "",
            "It jams on the blue paper only.",
        ))
        .await?;
    assert_eq!(tagged.status, MailStatus::Processed, "{tagged:?}");
    assert_eq!(tagged.effect.as_deref(), Some("commented"));
    assert_eq!(tagged.record.as_deref(), Some(number.as_str()));

    // By In-Reply-To only: the colleague in Cc replies to the original.
    let reply_all = desk
        .take(&message(
            "Colleague <colleague@example.org>",
            "Re: Printer on floor 3 jams",
            "reply-all@mail.example.org",
            "In-Reply-To: <first@mail.example.org>\nReferences: <first@mail.example.org>\n",
            "Same here since Monday.",
        ))
        .await?;
    assert_eq!(
        reply_all.effect.as_deref(),
        Some("commented"),
        "{reply_all:?}"
    );
    assert_eq!(reply_all.record.as_deref(), Some(number.as_str()));

    let record = desk.record(&number).await?;
    assert_eq!(record["title"], "Printer on floor 3 jams");
    let texts = comments(&record);
    assert!(
        texts
            .iter()
            .any(|text| text == "It jams on the blue paper only."),
        "{texts:?}"
    );
    assert!(
        texts.iter().any(|text| text == "Same here since Monday."),
        "{texts:?}"
    );
    let entries = mail_entries(&record);
    let ids: Vec<&str> = entries
        .iter()
        .filter_map(|entry| entry["message_id"].as_str())
        .collect();
    assert_eq!(
        ids,
        [
            "first@mail.example.org",
            "tagged@mail.example.org",
            "reply-all@mail.example.org"
        ]
    );
    let actors: Vec<&str> = entries
        .iter()
        .filter_map(|entry| entry["actor"].as_str())
        .collect();
    assert_eq!(actors, ["alice", "alice", "colleague@example.org"]);
    assert_eq!(desk.count_records().await?, 1);
    Ok(())
}

async fn stranger_with_a_tag_gets_a_linked_record(backend: Backend) -> anyhow::Result<()> {
    let desk = MailDesk::open(backend).await?;
    let original = created(
        &desk
            .take(&message(
                "alice@example.org",
                "Invoice question",
                "c19-original@mail.example.org",
                "",
                "Which IBAN do you have for us?",
            ))
            .await?,
    )?;
    let before = desk.record(&original).await?;

    // Someone else names the record in the subject, without references.
    let outcome = desk
        .take(&message(
            "Someone Else <someone@example.net>",
            &format!("[{original}] urgent: change bank details"),
            "c19-stranger@mail.example.net",
            "",
            "Please update the IBAN on this request to DE00 0000 0000 0000 0000 00.",
        ))
        .await?;
    assert_eq!(outcome.status, MailStatus::Processed, "{outcome:?}");
    assert_eq!(outcome.effect.as_deref(), Some("linked"));
    let new = outcome.record.clone().unwrap_or_default();
    assert_ne!(new, original);

    let after = desk.record(&original).await?;
    assert_eq!(
        comments(&after),
        comments(&before),
        "the stranger's text reached {original}"
    );
    assert_eq!(after["description"], before["description"]);
    let stranger = desk.record(&new).await?;
    assert_eq!(stranger["fields"]["requester"], "someone@example.net");
    assert_eq!(
        stranger["links"][0]["number"],
        original.as_str(),
        "{}",
        stranger["links"]
    );
    let entry = &mail_entries(&stranger)[0];
    assert_eq!(entry["effect"], "linked");
    assert_eq!(entry["related"], original.as_str());

    // The stranger's account sees only its own record.
    let store = &desk.commands().store;
    let token = store.create_token("someone@example.net", "tests").await?;
    let someone = desk.server.client(&token);
    let hidden = someone.get(&format!("{RECORDS}/{original}")).await?;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND, "{}", hidden.text);

    // A watcher the technician added may write to the record.
    let tom = Actor::new("tom", vec![Role::Technician]);
    let mut fields = Fields::new();
    fields.insert("watchers".into(), json!("someone@example.net"));
    desk.commands()
        .apply(
            &tom,
            &original,
            Command::Update {
                title: None,
                description: None,
                fields,
            },
        )
        .await
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    let watched = desk
        .take(&message(
            "someone@example.net",
            &format!("Re: [{original}] Invoice question"),
            "c19-watcher@mail.example.net",
            "",
            "Our IBAN is on the attached letter.",
        ))
        .await?;
    assert_eq!(watched.effect.as_deref(), Some("commented"), "{watched:?}");
    assert_eq!(watched.record.as_deref(), Some(original.as_str()));
    Ok(())
}

async fn reply_to_acknowledgement_threads(backend: Backend) -> anyhow::Result<()> {
    let desk = MailDesk::open(backend).await?;
    let number = created(
        &desk
            .take(&message(
                "Requester <user@example.org>",
                "Screen flickers",
                "orig-46@mail.example.org",
                "",
                "The screen flickers after lunch.",
            ))
            .await?,
    )?;
    // The reply to the acknowledgement has no tag, but its References name the message
    // that opened the record.
    let raw = message(
        "Requester <user@example.org>",
        "Re: We have received your request",
        "c20-reply-ack@mail.example.org",
        "In-Reply-To: <ack-46-1@helpdesk.example.com>\nReferences: <orig-46@mail.example.org> <ack-46-1@helpdesk.example.com>\n",
        "Adding the screenshot you asked for.",
    );
    let outcome = desk.take(&raw).await?;
    assert_eq!(outcome.effect.as_deref(), Some("commented"), "{outcome:?}");
    assert_eq!(outcome.record.as_deref(), Some(number.as_str()));
    assert_eq!(desk.count_records().await?, 1);
    Ok(())
}

async fn bounce_is_noted_and_not_answered(backend: Backend) -> anyhow::Result<()> {
    let desk = MailDesk::open(backend).await?;
    let number = created(
        &desk
            .take(&message(
                "alice@example.org",
                "Please add gone@example.org to the team list",
                "list-request@mail.example.org",
                "Cc: gone@example.org\n",
                "She starts on Monday.",
            ))
            .await?,
    )?;
    let users_before = desk.commands().store.list_users().await?.len();
    // The delivery report names the message the record came from.
    let bounce = "Return-Path: <>\nFrom: Mail Delivery System <MAILER-DAEMON@mx.example.org>\nTo: helpdesk@example.com\nSubject: Undelivered Mail Returned to Sender\nDate: Fri, 13 Feb 2026 07:05:00 +0100\nMessage-ID: <c22-dsn@mx.example.org>\nAuto-Submitted: auto-replied\nMIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b22\"\n\n--b22\nContent-Type: text/plain; charset=us-ascii\n\nYour message could not be delivered to gone@example.org.\n\n--b22\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.org\n\nFinal-Recipient: rfc822; gone@example.org\nAction: failed\nStatus: 5.1.1\n\n--b22\nContent-Type: text/rfc822-headers\n\nFrom: alice@example.org\nTo: gone@example.org\nSubject: Please add gone@example.org to the team list\nMessage-ID: <list-request@mail.example.org>\n\n--b22--\n";
    let outcome = desk.take(bounce).await?;
    assert_eq!(outcome.status, MailStatus::Robot, "{outcome:?}");
    assert_eq!(outcome.effect.as_deref(), Some("noted"));
    assert_eq!(outcome.record.as_deref(), Some(number.as_str()));
    let record = desk.record(&number).await?;
    let entry = mail_entries(&record)
        .pop()
        .expect("an entry for the bounce");
    assert_eq!(entry["effect"], "noted");
    assert_eq!(entry["actor"], "mail");
    assert!(
        entry["robot"]
            .as_str()
            .unwrap_or_default()
            .contains("multipart/report"),
        "{entry}"
    );
    assert!(comments(&record).is_empty(), "a bounce became a comment");
    assert_eq!(desk.count_records().await?, 1);
    assert_eq!(
        desk.commands().store.list_users().await?.len(),
        users_before
    );

    // A bounce about nothing known stays a robot message without a record.
    let other = bounce.replace("c22-dsn@", "c22-other-dsn@").replace(
        "<list-request@mail.example.org>",
        "<unknown@mail.example.org>",
    );
    let outcome = desk.take(&other).await?;
    assert_eq!(outcome.status, MailStatus::Robot, "{outcome:?}");
    assert_eq!(outcome.record, None);
    assert!(
        outcome
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("not answered")
    );
    assert_eq!(desk.count_records().await?, 1);
    Ok(())
}

async fn helpdesks_answering_each_other_stop(backend: Backend) -> anyhow::Result<()> {
    let desk = MailDesk::open(backend).await?;
    // An acknowledgement that says what it is is a robot message.
    let marked = desk
        .take(&message(
            "Vendor Support <support@vendor.example.net>",
            "Ticket Received - 286613",
            "vendor-ack-0@vendor.example.net",
            "Auto-Submitted: auto-replied\n",
            "Thank you for contacting us.",
        ))
        .await?;
    assert_eq!(marked.status, MailStatus::Robot, "{marked:?}");
    assert!(
        marked
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("Auto-Submitted")
    );

    // One that does not is stopped by the rate limit, 20 per 10 minutes.
    let mut outcomes = Vec::new();
    for round in 1..=25 {
        outcomes.push(
            desk.take(&message(
                "Vendor Support <support@vendor.example.net>",
                &format!(
                    "Ticket Received - {} - [#117904] Ticket Received",
                    286613 + round
                ),
                &format!("vendor-ack-{round}@vendor.example.net"),
                "In-Reply-To: <autoreply-117904@helpdesk.example.com>\n",
                "Thank you for contacting us. Your ticket number is 286614.",
            ))
            .await?,
        );
    }
    // The robot message counts towards the limit too.
    let processed = outcomes
        .iter()
        .filter(|o| o.status == MailStatus::Processed)
        .count();
    let held: Vec<&IntakeOutcome> = outcomes
        .iter()
        .filter(|o| o.status == MailStatus::Quarantined)
        .collect();
    assert_eq!(processed, 19, "{outcomes:?}");
    assert_eq!(held.len(), 6, "{outcomes:?}");
    assert!(
        held.iter().all(|o| o
            .reason
            .as_deref()
            .unwrap_or_default()
            .starts_with("rate limit")),
        "{held:?}"
    );
    assert_eq!(desk.count_records().await?, 19);

    // Quarantined messages are listed, and a retry by a person skips the limit.
    let listed = desk.commands().store.quarantined_mail(100).await?;
    assert_eq!(listed.len(), 6);
    let retried = desk
        .commands()
        .retry_mail(held[0].mail)
        .await
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    assert_eq!(retried.status, MailStatus::Processed, "{retried:?}");
    assert_eq!(desk.count_records().await?, 20);
    // A processed message is not processed twice.
    let refused = desk.commands().retry_mail(held[0].mail).await;
    assert!(refused.is_err(), "{refused:?}");
    Ok(())
}

async fn mail_defaults_are_visible_to_rules(backend: Backend) -> anyhow::Result<()> {
    let desk = MailDesk::open(backend).await?;
    // The tag gives the category through the mailbox's on_email rule, and the
    // incident's own rules see it together with the defaults.
    let number = created(
        &desk
            .take(&message(
                "alice@example.org",
                "[NET] Switch down in room 3",
                "c61@mail.example.org",
                "",
                "Nothing in room 3 has a network connection.",
            ))
            .await?,
    )?;
    let by_mail = desk.record(&number).await?;
    assert_eq!(
        by_mail["fields"]["category"], "infrastructure",
        "{}",
        by_mail["fields"]
    );
    assert_eq!(by_mail["fields"]["contact_type"], "email");
    assert_eq!(by_mail["fields"]["impact"], "medium");
    assert_eq!(by_mail["fields"]["urgency"], "medium");
    let by_form = desk
        .tom
        .post(
            "/api/v1/records/incident",
            &json!({
                "title": "[NET] Switch down in room 3",
                "description": "Nothing in room 3 has a network connection.",
                "fields": { "category": "infrastructure", "requester": "alice" }
            }),
        )
        .await?
        .expect_status(StatusCode::CREATED)?
        .body;
    for field in [
        "priority",
        "category",
        "assignment_group",
        "impact",
        "urgency",
    ] {
        assert_eq!(
            by_mail["fields"][field], by_form["fields"][field],
            "{field}"
        );
    }
    assert!(
        by_mail["fields"]["priority"].is_string(),
        "{}",
        by_mail["fields"]
    );
    Ok(())
}

async fn replies_follow_the_reply_policy(backend: Backend) -> anyhow::Result<()> {
    let desk = MailDesk::open(backend).await?;
    let tom = Actor::new("tom", vec![Role::Technician]);
    let mut numbers = Vec::new();
    for (index, days_ago, transitions) in [
        (1, 2, &["start", "resolve"][..]),
        (2, 15, &["start", "resolve", "close"][..]),
    ] {
        let number = created(
            &desk
                .take(&message(
                    "alice@example.org",
                    "Laptop shows a blue screen",
                    &format!("policy-{index}@mail.example.org"),
                    "",
                    "Since the update the laptop stops with a blue screen.",
                ))
                .await?,
        )?;
        let at = Utc::now() - Duration::days(days_ago);
        for name in transitions {
            let mut fields = Fields::new();
            if *name == "resolve" {
                fields.insert("resolution_code".into(), json!("driver rolled back"));
            }
            let command = Command::Transition {
                name: (*name).to_owned(),
                fields,
                comment: None,
            };
            desk.commands()
                .apply_at(&tom, &number, command, Some(at))
                .await
                .map_err(|error| anyhow::anyhow!("{name}: {error}"))?;
        }
        numbers.push(number);
    }
    // Resolved 2 days ago, so the reply reopens it to the state `reopen` leads to.
    let reopened = desk
        .take(&message(
            "alice@example.org",
            &format!("Re: [{}] Laptop shows a blue screen", numbers[0]),
            "policy-reply-1@mail.example.org",
            "",
            "The blue screen is back.",
        ))
        .await?;
    assert_eq!(reopened.effect.as_deref(), Some("reopened"), "{reopened:?}");
    assert_eq!(desk.record(&numbers[0]).await?["state"], "in_progress");

    // Closed, so the reply opens a follow-up and the original stays closed.
    let follow_up = desk
        .take(&message(
            "alice@example.org",
            &format!("Re: [{}] Your ticket was closed", numbers[1]),
            "policy-reply-2@mail.example.org",
            "In-Reply-To: <notif-51-close@helpdesk.example.com>\n",
            "The same error is back on a different laptop.",
        ))
        .await?;
    assert_eq!(
        follow_up.effect.as_deref(),
        Some("follow_up"),
        "{follow_up:?}"
    );
    let new = follow_up.record.clone().unwrap_or_default();
    assert_ne!(new, numbers[1]);
    assert_eq!(desk.record(&numbers[1]).await?["state"], "closed");
    let record = desk.record(&new).await?;
    assert_eq!(record["fields"]["follow_up_of"], numbers[1].as_str());
    assert_eq!(record["fields"]["requester"], "alice");
    assert_eq!(
        record["description"],
        "The same error is back on a different laptop."
    );
    assert_eq!(mail_entries(&record)[0]["related"], numbers[1].as_str());
    Ok(())
}

async fn concurrent_deliveries_create_one_record(backend: Backend) -> anyhow::Result<()> {
    let desk = MailDesk::open(backend).await?;
    // The same message delivered twice at once.
    let raw = message(
        "alice@example.org",
        "Laptop will not boot",
        "c73@mail.example.org",
        "",
        "Black screen after the logo.",
    );
    let (first, second) = tokio::join!(desk.take(&raw), desk.take(&raw));
    let (first, second) = (first?, second?);
    assert_eq!(first.mail, second.mail);
    assert!(first.duplicate != second.duplicate, "{first:?} {second:?}");
    assert_eq!(desk.count_records().await?, 1);
    Ok(())
}

async fn gateway(
    server: &TestServer,
    mailbox: &str,
    raw: &[u8],
) -> anyhow::Result<tend_test_support::CliOutput> {
    let mut args: Vec<std::ffi::OsString> = vec![
        "mail-gateway".into(),
        "--mailbox".into(),
        mailbox.into(),
        "--definitions".into(),
        repo_root().into(),
    ];
    args.extend(server.database().store_args());
    run_tend_with_bytes(args, Some(raw)).await
}

async fn gateway_exit_codes(backend: Backend) -> anyhow::Result<()> {
    let desk = MailDesk::open(backend).await?;
    let raw = message(
        "alice@example.org",
        "Scanner not found",
        "gateway-1@mail.example.org",
        "",
        "The scan app lists no device.",
    );
    let delivered = gateway(&desk.server, MAILBOX, raw.as_bytes()).await?;
    assert_eq!(delivered.code(), Some(0), "{delivered}");
    assert!(
        delivered.stdout.contains("created INC0000001"),
        "{delivered}"
    );
    let again = gateway(&desk.server, MAILBOX, raw.as_bytes()).await?;
    assert_eq!(again.code(), Some(0), "{again}");
    assert!(again.stdout.contains("delivered before"), "{again}");

    // Not a message: stored and quarantined, and still 0 (never 65).
    let garbage = gateway(&desk.server, MAILBOX, b"this is not a message\x00\xff").await?;
    assert_eq!(garbage.code(), Some(0), "{garbage}");
    assert!(garbage.stdout.contains("quarantined"), "{garbage}");

    // An unknown mailbox keeps the message until it is retried.
    let lost = message(
        "alice@example.org",
        "Wrong mailbox",
        "gateway-2@mail.example.org",
        "",
        "Delivered to a mailbox that is not defined.",
    );
    let unknown = gateway(&desk.server, "nosuchbox", lost.as_bytes()).await?;
    assert_eq!(unknown.code(), Some(0), "{unknown}");
    assert!(unknown.stdout.contains("quarantined"), "{unknown}");
    assert!(
        unknown
            .stdout
            .contains("workflows/mailboxes/nosuchbox.yaml"),
        "{unknown}"
    );

    let mut args: Vec<std::ffi::OsString> = vec!["mail".into(), "quarantine".into()];
    args.extend(desk.server.database().store_args());
    let listed = run_tend(args, None).await?.expect_success()?;
    assert_eq!(listed.stdout.lines().count(), 2, "{listed}");
    assert!(listed.stdout.contains("Wrong mailbox"), "{listed}");
    let id = listed
        .stdout
        .lines()
        .find(|line| line.contains("Wrong mailbox"))
        .and_then(|line| line.split('\t').next())
        .unwrap_or_default()
        .to_owned();
    let mut args: Vec<std::ffi::OsString> = vec![
        "mail".into(),
        "retry".into(),
        id.clone().into(),
        "--definitions".into(),
        repo_root().into(),
    ];
    args.extend(desk.server.database().store_args());
    let retried = run_tend(args, None).await?;
    assert_eq!(retried.code(), Some(0), "{retried}");
    assert!(retried.stdout.contains("quarantined"), "{retried}");

    // A sender whose account is disabled is refused for good: 65, with the reason on
    // standard error for the bounce, and the message still kept.
    let alice = desk
        .commands()
        .store
        .find_user_by_email("alice@example.org")
        .await?
        .context("the first message made alice a requester")?;
    let mut args: Vec<std::ffi::OsString> =
        vec!["user".into(), "disable".into(), alice.name.clone().into()];
    args.extend(desk.server.database().store_args());
    run_tend(args, None).await?.expect_success()?;
    let refused = message(
        "alice@example.org",
        "Still there?",
        "gateway-3@mail.example.org",
        "",
        "Written after the account was disabled.",
    );
    let bounced = gateway(&desk.server, MAILBOX, refused.as_bytes()).await?;
    assert_eq!(bounced.code(), Some(65), "{bounced}");
    assert!(
        bounced.stderr.contains("rejected the message") && bounced.stderr.contains("disabled"),
        "{bounced}"
    );
    let again = gateway(&desk.server, MAILBOX, refused.as_bytes()).await?;
    assert_eq!(
        again.code(),
        Some(65),
        "a re-delivery is refused alike: {again}"
    );

    // No database: 75, so the MTA delivers the message again later.
    let down = run_tend_with_bytes(
        [
            "mail-gateway",
            "--mailbox",
            MAILBOX,
            "--connect-timeout",
            "5",
            "--database-url",
            "postgres://postgres@127.0.0.1:9/unreachable",
        ],
        Some(raw.as_bytes()),
    )
    .await?;
    assert_eq!(down.code(), Some(75), "{down}");
    assert!(down.stderr.contains("deliver it again later"), "{down}");
    Ok(())
}

async fn http_intake_and_quarantine(backend: Backend) -> anyhow::Result<()> {
    let desk = MailDesk::open(backend).await?;
    let store = &desk.commands().store;
    store
        .add_user("mta", None, &[Role::MailGateway], TEST_PASSWORD)
        .await?;
    let mta = desk
        .server
        .client(&store.create_token("mta", "tests").await?);
    let alice_token = store.create_token("alice", "tests").await?;
    let alice = desk.server.client(&alice_token);
    let inbound = "/api/v1/mail/inbound/support";
    let post = |client: &tend_test_support::ApiClient, body: Vec<u8>, content_type: &str| {
        client
            .request(Method::POST, inbound)
            .header("Content-Type", content_type.to_owned())
            .body(body)
    };

    // Over the API's 2 MiB body limit and under the mailbox's: one file over the 10 MiB
    // limit per file, and one small file.
    let big = "QUFB".repeat(11 * 1024 * 1024 / 3 + 1);
    let big: String = big
        .as_bytes()
        .chunks(76)
        .map(|line| format!("{}\n", String::from_utf8_lossy(line)))
        .collect();
    let raw = format!(
        "From: alice@example.org\nTo: support@example.com\nSubject: Logs attached\nMessage-ID: <http-1@mail.example.org>\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b\"\n\n--b\nContent-Type: text/plain\n\nTwo files.\n--b\nContent-Type: text/plain; name=\"small.txt\"\nContent-Disposition: attachment; filename=\"small.txt\"\n\nsmall file\n--b\nContent-Type: application/octet-stream; name=\"big.bin\"\nContent-Disposition: attachment; filename=\"big.bin\"\nContent-Transfer-Encoding: base64\n\n{big}--b--\n"
    );
    let reply = mta
        .send(post(&mta, raw.clone().into_bytes(), "message/rfc822"))
        .await?;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_eq!(reply.body["effect"], "created");
    let number = reply.body["record"].as_str().unwrap_or_default().to_owned();
    let again = mta
        .send(post(&mta, raw.into_bytes(), "message/rfc822"))
        .await?;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.body["duplicate"], true);

    let record = read(&alice, &number).await?;
    let files = record["attachments"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(files.len(), 2, "{}", record["attachments"]);
    assert_eq!(files[0]["file_name"], "small.txt");
    assert_eq!(files[0]["stored"], true);
    assert_eq!(files[1]["file_name"], "big.bin");
    assert_eq!(files[1]["stored"], false);
    assert!(
        files[1]["skipped"]
            .as_str()
            .unwrap_or_default()
            .contains("limits.attachment_bytes"),
        "{}",
        files[1]
    );
    let url = files[0]["url"].as_str().unwrap_or_default();
    let download = alice.get(url).await?;
    assert_eq!(download.status, StatusCode::OK);
    // The line break before the boundary belongs to the boundary (RFC 2046).
    assert_eq!(download.text, "small file");
    // Someone else's requester does not see the file.
    store
        .add_user("bob", None, &[Role::Requester], TEST_PASSWORD)
        .await?;
    let bob = desk
        .server
        .client(&store.create_token("bob", "tests").await?);
    assert_eq!(bob.get(url).await?.status, StatusCode::NOT_FOUND);

    // Who may hand in mail, in which form, and how much.
    let small = message(
        "alice@example.org",
        "Hi",
        "http-2@mail.example.org",
        "",
        "Hello",
    );
    let forbidden = alice
        .send(post(&alice, small.clone().into_bytes(), "message/rfc822"))
        .await?;
    assert_eq!(
        forbidden.status,
        StatusCode::FORBIDDEN,
        "{}",
        forbidden.text
    );
    let wrong_type = mta
        .send(post(&mta, small.clone().into_bytes(), "text/plain"))
        .await?;
    assert_eq!(
        wrong_type.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "{}",
        wrong_type.text
    );
    let too_large = mta
        .send(post(&mta, vec![b'a'; 26 * 1024 * 1024], "message/rfc822"))
        .await?;
    assert_eq!(
        too_large.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        too_large.text
    );
    assert!(
        too_large.text.contains("limits.message_bytes"),
        "{}",
        too_large.text
    );

    // The quarantine, a message's details and raw bytes, and a retry.
    let broken = b"not a message at all\n".to_vec();
    let held = mta
        .send(post(&mta, broken.clone(), "message/rfc822"))
        .await?;
    assert_eq!(held.status, StatusCode::CREATED, "{}", held.text);
    assert_eq!(held.body["status"], "quarantined");
    let id = held.body["mail"].as_i64().unwrap_or_default();
    let list = desk
        .tom
        .get("/api/v1/mail/quarantine")
        .await?
        .expect_status(StatusCode::OK)?;
    assert_eq!(list.body["messages"][0]["id"], id, "{}", list.text);
    assert!(
        list.body["messages"][0]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("does not parse")
    );
    assert_eq!(
        alice.get("/api/v1/mail/quarantine").await?.status,
        StatusCode::FORBIDDEN
    );
    let details = desk
        .tom
        .get(&format!("/api/v1/mail/messages/{id}"))
        .await?
        .expect_status(StatusCode::OK)?;
    let raw_url = details.body["raw_url"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let raw = desk
        .tom
        .get(&raw_url)
        .await?
        .expect_status(StatusCode::OK)?;
    assert_eq!(raw.text.as_bytes(), broken.as_slice());
    let retried = desk
        .tom
        .send(
            desk.tom
                .request(Method::POST, &format!("/api/v1/mail/messages/{id}/retry")),
        )
        .await?
        .expect_status(StatusCode::OK)?;
    assert_eq!(retried.body["status"], "quarantined");
    let retried = desk
        .tom
        .send(
            desk.tom
                .request(Method::POST, &format!("/api/v1/mail/quarantine/{id}/retry")),
        )
        .await?
        .expect_status(StatusCode::OK)?;
    assert_eq!(retried.body["status"], "quarantined");
    let stored = store.mail_message(id).await?.expect("stored");
    assert_eq!(stored.attempts, 3);
    Ok(())
}
