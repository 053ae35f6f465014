//! Outbound notifications: what a change queues in the outbox (template, headers, threading,
//! suppression), and the worker that sends the queue to a real SMTP receiver, through an
//! outage and without sending anything twice.

use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};
use tend_test_support::reqwest::StatusCode;
use tend_test_support::tend_api::Commands;
use tend_test_support::tend_api::mail_intake::IntakeOutcome;
use tend_test_support::tend_api::outbox_worker::OutboxWorker;
use tend_test_support::tend_domain::{Actor, Command, Fields, Role};
use tend_test_support::tend_mail::outbound::{OutgoingMail, SmtpSender, build_message};
use tend_test_support::tend_store::mail::MailStatus;
use tend_test_support::tend_store::outbox::{MailKind, OutboxMail, OutboxStatus};
use tend_test_support::{Backend, TEST_PASSWORD, TestDatabase, TestServer, backend_tests};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::common::{RECORDS, read};

backend_tests!(
    outgoing_headers_mark_kind_and_thread,
    template_syntax_in_user_text_is_inert,
    reply_to_acknowledgement_threads_by_our_id,
    copy_of_our_message_is_not_answered,
    helpdesk_ping_pong_is_not_acknowledged,
    own_follow_up_is_not_notified,
    bounced_address_gets_no_notification,
    outage_delays_mail_without_loss,
    expired_lease_is_claimed_again,
    assignee_gets_assignment_notice,
    serve_sends_through_smtp_url,
    recipient_language_picks_variant,
);

const MAILBOX: &str = "support";

struct Desk {
    server: TestServer,
    tom: tend_test_support::ApiClient,
}

impl Desk {
    async fn open(backend: Backend) -> anyhow::Result<Desk> {
        let server = TestServer::in_process(backend).await?;
        Desk::with_users(server).await
    }

    async fn with_users(server: TestServer) -> anyhow::Result<Desk> {
        let commands = server.commands().expect("in-process server");
        let store = &commands.store;
        store
            .add_user(
                "user",
                Some("user@example.org"),
                &[Role::Requester],
                TEST_PASSWORD,
            )
            .await?;
        store
            .add_user(
                "tom",
                Some("tech@example.com"),
                &[Role::Technician],
                TEST_PASSWORD,
            )
            .await?;
        let token = store.create_token("tom", "tests").await?;
        let tom = server.client(&token);
        Ok(Desk { server, tom })
    }

    fn commands(&self) -> &Commands {
        self.server.commands().expect("in-process server")
    }

    async fn take(&self, raw: &str) -> anyhow::Result<IntakeOutcome> {
        self.commands()
            .take_mail(MAILBOX, "http", raw.as_bytes().to_vec())
            .await
            .map_err(|error| anyhow::anyhow!("the intake failed: {error}"))
    }

    /// Returns the outbox rows of record `number`, oldest first.
    async fn outbox(&self, number: &str) -> anyhow::Result<Vec<OutboxMail>> {
        let record = self
            .commands()
            .store
            .get_record(number)
            .await?
            .context("the record exists")?;
        Ok(self.commands().store.outbox_of(record.id).await?)
    }

    async fn apply(&self, actor: &str, number: &str, command: Command) -> anyhow::Result<()> {
        let roles = if actor == "tom" {
            vec![Role::Technician]
        } else {
            vec![Role::Requester]
        };
        self.commands()
            .apply(&Actor::new(actor, roles), number, command)
            .await
            .map_err(|error| anyhow::anyhow!("{actor}'s command on {number} failed: {error}"))?;
        Ok(())
    }
}

/// Reads a case message of the shared corpus.
fn case(name: &str) -> anyhow::Result<String> {
    let path = tend_test_support::repo_root().join(format!("../shared/cases/{name}.eml"));
    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
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
    outcome.record.clone().context("the outcome names a record")
}

fn queued_to<'a>(mail: &'a [OutboxMail], address: &str) -> Vec<&'a OutboxMail> {
    mail.iter()
        .filter(|row| row.recipient == address && row.status == OutboxStatus::Queued)
        .collect()
}

/// Formats an outbox row as the worker would send it.
fn formatted(mail: &OutboxMail) -> anyhow::Result<String> {
    let outgoing = OutgoingMail {
        from_address: mail.from_address.clone(),
        from_name: mail.from_name.clone(),
        reply_to: mail.reply_to.clone(),
        to: mail.recipient.clone(),
        subject: mail.subject.clone(),
        text: mail.text.clone(),
        html: mail.html.clone(),
        message_id: mail.message_id.clone(),
        in_reply_to: mail.in_reply_to.clone(),
        references: mail.references.clone(),
        auto_submitted: mail
            .kind
            .is_automatic()
            .then(|| mail.kind.as_str().to_owned()),
        loop_instance: "tend".into(),
    };
    let message = build_message(&outgoing).map_err(|error| anyhow::anyhow!("{error}"))?;
    Ok(String::from_utf8(message.formatted())?)
}

async fn outgoing_headers_mark_kind_and_thread(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let number = created(
        &desk
            .take(&message(
                "User <user@example.org>",
                "Printer jams",
                "c25-first@mail.example.org",
                "",
                "The printer on floor 2 jams.",
            ))
            .await?,
    )?;
    // (a) the acknowledgement of the new message.
    let mail = desk.outbox(&number).await?;
    let ack = queued_to(&mail, "user@example.org");
    assert_eq!(ack.len(), 1, "{mail:#?}");
    let ack = ack[0].clone();
    assert_eq!(ack.kind, MailKind::AutoReplied);
    assert_eq!(ack.event, "on_create");
    assert_eq!(
        ack.in_reply_to.as_deref(),
        Some("c25-first@mail.example.org")
    );
    assert!(
        ack.subject.starts_with(&format!("[{number}] ")),
        "{}",
        ack.subject
    );
    assert!(
        ack.message_id.ends_with("@example.com"),
        "{}",
        ack.message_id
    );
    let text = formatted(&ack)?;
    assert!(text.contains("Auto-Submitted: auto-replied\r\n"), "{text}");
    assert!(text.contains("X-Auto-Response-Suppress: All\r\n"), "{text}");
    assert!(
        text.contains(&format!("Message-ID: <{}>\r\n", ack.message_id)),
        "{text}"
    );

    // (c) a technician's comment: a person wrote it.
    desk.apply(
        "tom",
        &number,
        Command::Comment {
            text: "Which tray?".into(),
        },
    )
    .await?;
    // (b) the resolution notification.
    let mut fields = Fields::new();
    fields.insert("resolution_code".into(), json!("fixed"));
    desk.apply(
        "tom",
        &number,
        Command::Transition {
            name: "resolve".into(),
            fields,
            comment: None,
        },
    )
    .await?;

    let mail = desk.outbox(&number).await?;
    let to_user = queued_to(&mail, "user@example.org");
    assert_eq!(to_user.len(), 3, "{mail:#?}");
    let (comment, resolved) = (to_user[1], to_user[2]);
    assert_eq!(comment.kind, MailKind::Personal);
    assert_eq!(comment.event, "on_comment");
    assert!(comment.text.contains("Which tray?"), "{}", comment.text);
    assert!(!formatted(comment)?.contains("Auto-Submitted"));
    assert_eq!(resolved.kind, MailKind::AutoGenerated);
    assert_eq!(resolved.event, "on_resolve");
    assert!(formatted(resolved)?.contains("Auto-Submitted: auto-generated\r\n"));
    for later in [comment, resolved] {
        assert_eq!(
            later.in_reply_to.as_deref(),
            Some("c25-first@mail.example.org"),
            "{later:#?}"
        );
        assert!(
            later.references.contains(&ack.message_id),
            "{:?}",
            later.references
        );
    }
    let mut ids: Vec<&str> = mail.iter().map(|row| row.message_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), mail.len(), "Message-IDs repeat: {ids:?}");

    // The journal shows each queued mail, and staff see the outbox on the record.
    let record = read(&desk.tom, &number).await?;
    let queued = record["journal"]
        .as_array()
        .context("the record has a journal")?
        .iter()
        .filter(|entry| entry["event"] == "email_queued")
        .count();
    assert_eq!(queued, mail.len());
    assert_eq!(
        record["mail"].as_array().map(Vec::len),
        Some(mail.len()),
        "{}",
        record["mail"]
    );
    Ok(())
}

async fn template_syntax_in_user_text_is_inert(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let number = created(&desk.take(&case("C28")?).await?)?;
    let mail = desk.outbox(&number).await?;
    let ack = queued_to(&mail, "user@example.org");
    assert_eq!(ack.len(), 1, "{mail:#?}");
    assert_eq!(
        ack[0].subject,
        format!(
            "[{number}] We received: Hello {{{{ ticket.requester.email }}}} #{{config.smtp_password}} ${{env:HOME}} {{% raw %}}"
        )
    );
    assert!(
        ack[0]
            .text
            .contains("Body with {{ 7*7 }} and {{.Values}} and #{ticket.id} and <%= 1+1 %>."),
        "{}",
        ack[0].text
    );
    assert!(!ack[0].text.contains("49"), "{}", ack[0].text);
    Ok(())
}

async fn reply_to_acknowledgement_threads_by_our_id(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
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
    let ack = desk.outbox(&number).await?[0].message_id.clone();
    // As in the field: the reply names only our acknowledgement, and its subject has no
    // tag.
    let reply = message(
        "Requester <user@example.org>",
        "Re: We have received your request",
        "c20-reply-ack@mail.example.org",
        &format!("In-Reply-To: <{ack}>\nReferences: <{ack}>\n"),
        "Adding the screenshot you asked for.",
    );
    let outcome = desk.take(&reply).await?;
    assert_eq!(outcome.effect.as_deref(), Some("commented"), "{outcome:?}");
    assert_eq!(outcome.record.as_deref(), Some(number.as_str()));
    let page = desk
        .tom
        .get(&format!("{RECORDS}?limit=500"))
        .await?
        .expect_status(StatusCode::OK)?
        .body;
    assert_eq!(page["records"].as_array().map(Vec::len), Some(1));
    Ok(())
}

async fn copy_of_our_message_is_not_answered(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let number = created(
        &desk
            .take(&message(
                "user@example.org",
                "VPN down",
                "vpn-1@mail.example.org",
                "",
                "No VPN since 8:00.",
            ))
            .await?,
    )?;
    let ack = desk.outbox(&number).await?[0].clone();
    // Our acknowledgement comes back, without any auto-reply header, as a list or a Bcc
    // would return it.
    let copy = message(
        "Service desk <support@example.com>",
        &ack.subject,
        &ack.message_id,
        "",
        &ack.text,
    );
    let outcome = desk.take(&copy).await?;
    assert_eq!(outcome.status, MailStatus::Robot, "{outcome:?}");
    assert!(
        outcome
            .reason
            .as_deref()
            .is_some_and(|reason| reason.contains("one Tend sent")),
        "{outcome:?}"
    );
    assert_eq!(desk.outbox(&number).await?.len(), 1);
    Ok(())
}

async fn helpdesk_ping_pong_is_not_acknowledged(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let vendor = "support@vendor.example.net";
    let number = created(
        &desk
            .take(&message(
                "Vendor Support <support@vendor.example.net>",
                "Ticket Received - 286612",
                "vendor-first@vendor.example.net",
                "",
                "Thank you for contacting us. Your ticket number is 286612.",
            ))
            .await?,
    )?;
    let ack = desk.outbox(&number).await?[0].message_id.clone();
    // The vendor's system replies to our acknowledgement with its own, without the usual
    // auto-reply headers and without our tag.
    let answer = message(
        "Vendor Support <support@vendor.example.net>",
        "Ticket Received - 286614 - Ticket Received - 286612",
        "c23-pingpong@vendor.example.net",
        &format!("Reply-To: {vendor}\nIn-Reply-To: <{ack}>\nReferences: <{ack}>\n"),
        "Thank you for contacting us. Your ticket number is 286614.",
    );
    let outcome = desk.take(&answer).await?;
    assert_eq!(
        outcome.record.as_deref(),
        Some(number.as_str()),
        "{outcome:?}"
    );
    assert_eq!(outcome.effect.as_deref(), Some("commented"), "{outcome:?}");
    let mail = desk.outbox(&number).await?;
    assert_eq!(queued_to(&mail, vendor).len(), 1, "{mail:#?}");

    // A message that names our acknowledgement only in References threads into the
    // record as a comment of its requester, so no new record acknowledges it.
    let new_thread = message(
        "Vendor Support <support@vendor.example.net>",
        "Ticket Received - 286615",
        "c23-new-thread@vendor.example.net",
        &format!("References: <unknown@vendor.example.net> <{ack}>\n"),
        "Thank you for contacting us.",
    );
    let outcome = desk.take(&new_thread).await?;
    assert_eq!(
        outcome.record.as_deref(),
        Some(number.as_str()),
        "{outcome:?}"
    );
    assert_eq!(outcome.effect.as_deref(), Some("commented"), "{outcome:?}");

    // Another address of the vendor is a stranger to the record, so its reply to our
    // acknowledgement opens a linked record, which acknowledges nothing.
    let stranger = message(
        "Vendor Robot <robot@vendor.example.net>",
        "Ticket Received - 286616",
        "c23-stranger@vendor.example.net",
        &format!("In-Reply-To: <{ack}>\nReferences: <{ack}>\n"),
        "Thank you for contacting us.",
    );
    let outcome = desk.take(&stranger).await?;
    assert_eq!(outcome.effect.as_deref(), Some("linked"), "{outcome:?}");
    let linked = outcome.record.clone().context("a linked record")?;
    let mail = desk.outbox(&linked).await?;
    assert_eq!(mail.len(), 1, "{mail:#?}");
    assert_eq!(mail[0].status, OutboxStatus::Suppressed);
    assert!(
        mail[0]
            .last_error
            .as_deref()
            .is_some_and(|reason| reason.contains(&format!("our automatic message <{ack}>"))),
        "{:#?}",
        mail[0]
    );

    // Ten new threads within a minute: at most three automatic messages in the hour.
    let mut numbers = vec![number];
    for round in 0..10 {
        let outcome = desk
            .take(&message(
                "Vendor Support <support@vendor.example.net>",
                &format!("Ticket Received - 2870{round:02}"),
                &format!("c23-burst-{round}@vendor.example.net"),
                "",
                "Thank you for contacting us.",
            ))
            .await?;
        numbers.push(created(&outcome)?);
    }
    let mut sent = 0;
    let mut limited = 0;
    for number in &numbers {
        for row in desk.outbox(number).await? {
            if row.recipient != vendor {
                continue;
            }
            match row.status {
                OutboxStatus::Queued => sent += 1,
                OutboxStatus::Suppressed
                    if row
                        .last_error
                        .as_deref()
                        .is_some_and(|reason| reason.starts_with("rate limit")) =>
                {
                    limited += 1
                }
                _ => {}
            }
        }
    }
    // Eleven acknowledgements were due (the first record and ten more): three went out.
    assert_eq!(sent, 3, "automatic mail queued to the vendor");
    assert_eq!(limited, 8, "acknowledgements held back by the rate limit");
    Ok(())
}

async fn own_follow_up_is_not_notified(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let number = created(
        &desk
            .take(&message(
                "Requester <user@example.org>",
                "Access denied on the share",
                "c26-first@mail.example.org",
                "",
                "I cannot open the team share.",
            ))
            .await?,
    )?;
    let mut fields = Fields::new();
    fields.insert("assignee".into(), json!("tom"));
    desk.apply(
        "tom",
        &number,
        Command::Update {
            title: None,
            description: None,
            fields,
        },
    )
    .await?;
    let before = desk.outbox(&number).await?.len();
    let raw = case("C26")?.replace("[#50]", &format!("[{number}]"));
    let outcome = desk.take(&raw).await?;
    assert_eq!(outcome.effect.as_deref(), Some("commented"), "{outcome:?}");
    let mail = desk.outbox(&number).await?;
    let new: Vec<&OutboxMail> = mail[before..].iter().collect();
    let queued: Vec<&str> = new
        .iter()
        .filter(|row| row.status == OutboxStatus::Queued)
        .map(|row| row.recipient.as_str())
        .collect();
    assert_eq!(queued, ["tech@example.com"], "{new:#?}");
    let own = new
        .iter()
        .find(|row| row.recipient == "user@example.org")
        .context("the requester's notification is kept")?;
    assert_eq!(own.status, OutboxStatus::Suppressed);
    assert!(
        own.last_error
            .as_deref()
            .is_some_and(|reason| reason.contains("own changes")),
        "{own:#?}"
    );

    // With the switch on, the requester hears about their own follow-ups too.
    desk.commands()
        .store
        .set_notify_own_changes("user", true)
        .await?;
    desk.apply(
        "user",
        &number,
        Command::Comment {
            text: "It works on Wednesdays.".into(),
        },
    )
    .await?;
    let mail = desk.outbox(&number).await?;
    let own = mail
        .iter()
        .rev()
        .find(|row| row.recipient == "user@example.org")
        .context("the requester's notification is kept")?;
    assert_eq!(own.status, OutboxStatus::Queued, "{own:#?}");
    assert!(own.text.contains("It works on Wednesdays."), "{}", own.text);
    Ok(())
}

async fn bounced_address_gets_no_notification(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let outcome = desk.take(&case("C22")?).await?;
    assert_eq!(outcome.status, MailStatus::Robot, "{outcome:?}");
    let store = &desk.commands().store;
    store
        .add_user(
            "gone",
            Some("gone@example.org"),
            &[Role::Requester],
            TEST_PASSWORD,
        )
        .await?;
    let outcome = desk
        .take(&message(
            "gone@example.org",
            "Still there?",
            "gone-1@example.org",
            "",
            "Testing.",
        ))
        .await?;
    let number = created(&outcome)?;
    let mail = desk.outbox(&number).await?;
    assert_eq!(mail.len(), 1, "{mail:#?}");
    assert_eq!(mail[0].status, OutboxStatus::Suppressed);
    assert!(
        mail[0]
            .last_error
            .as_deref()
            .is_some_and(|reason| reason.contains("bounced")),
        "{:#?}",
        mail[0]
    );
    // The suppression is on the record's journal with its reason.
    let record = read(&desk.tom, &number).await?;
    let entry = record["journal"]
        .as_array()
        .context("the record has a journal")?
        .iter()
        .find(|entry| entry["event"] == "email_queued")
        .cloned()
        .context("an email_queued entry")?;
    assert_eq!(entry["status"], "suppressed");
    assert!(
        entry["reason"]
            .as_str()
            .is_some_and(|reason| reason.contains("bounced")),
        "{entry}"
    );

    // An address that only ever sent machine-made mail is taken for a robot.
    let robot = message(
        "Auto Responder <auto@robots.example.net>",
        "Out of office",
        "ooo-1@robots.example.net",
        "Auto-Submitted: auto-replied\n",
        "I am away.",
    );
    assert_eq!(desk.take(&robot).await?.status, MailStatus::Robot);
    store
        .add_user(
            "robot",
            Some("auto@robots.example.net"),
            &[Role::Requester],
            TEST_PASSWORD,
        )
        .await?;
    let actor = Actor::new("tom", vec![Role::Technician]);
    let mut fields = Fields::new();
    fields.insert("requester".into(), json!("robot"));
    let (record, _) = desk
        .commands()
        .create(
            &actor,
            "incident",
            tend_test_support::tend_api::commands::NewRecord {
                title: "Robot's record".into(),
                description: "Opened for a robot".into(),
                fields,
                ..Default::default()
            },
        )
        .await
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    let mail = desk.outbox(&record.number).await?;
    let to_robot: Vec<&OutboxMail> = mail
        .iter()
        .filter(|row| row.recipient == "auto@robots.example.net")
        .collect();
    assert_eq!(to_robot.len(), 1, "{mail:#?}");
    assert_eq!(to_robot[0].status, OutboxStatus::Suppressed);
    assert!(
        to_robot[0]
            .last_error
            .as_deref()
            .is_some_and(|reason| reason.contains("machine-made")),
        "{:#?}",
        to_robot[0]
    );
    Ok(())
}

/// A minimal SMTP receiver on 127.0.0.1 that keeps every message it accepts.
struct SmtpReceiver {
    messages: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl SmtpReceiver {
    async fn start(listener: TcpListener) -> SmtpReceiver {
        let messages = Arc::new(Mutex::new(Vec::new()));
        let kept = messages.clone();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let kept = kept.clone();
                tokio::spawn(async move {
                    let _ = serve_smtp(socket, kept).await;
                });
            }
        });
        SmtpReceiver { messages, task }
    }

    fn messages(&self) -> Vec<String> {
        self.messages
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

impl Drop for SmtpReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Speaks the server side of one SMTP session (RFC 5321), enough for lettre.
async fn serve_smtp(
    socket: tokio::net::TcpStream,
    kept: Arc<Mutex<Vec<String>>>,
) -> std::io::Result<()> {
    let (read_half, mut write) = socket.into_split();
    let mut lines = BufReader::new(read_half);
    write.write_all(b"220 receiver.test ESMTP\r\n").await?;
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_ascii_uppercase();
        if command.starts_with("EHLO") {
            write
                .write_all(b"250-receiver.test\r\n250 8BITMIME\r\n")
                .await?;
        } else if command.starts_with("DATA") {
            write.write_all(b"354 end with .\r\n").await?;
            let mut data = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" {
                    break;
                }
                data.push_str(&line);
            }
            kept.lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(data);
            write.write_all(b"250 queued\r\n").await?;
        } else if command.starts_with("QUIT") {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            write.write_all(b"250 ok\r\n").await?;
        }
    }
}

/// Returns a port on 127.0.0.1 that nothing listens on.
async fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    Ok(listener.local_addr()?.port())
}

async fn outage_delays_mail_without_loss(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let number = created(
        &desk
            .take(&message(
                "User <user@example.org>",
                "Laptop will not boot",
                "outage-1@mail.example.org",
                "",
                "Black screen.",
            ))
            .await?,
    )?;
    let port = free_port().await?;
    let sender = SmtpSender::from_url(&format!("smtp://127.0.0.1:{port}"))
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    let worker = OutboxWorker::new(desk.commands().clone(), sender, "test-node");

    // The SMTP server is down: the attempt fails and the mail waits a minute.
    let start = Utc::now();
    assert_eq!(worker.pass(start).await?, 0);
    let row = desk.outbox(&number).await?[0].clone();
    assert_eq!(row.status, OutboxStatus::Queued);
    assert_eq!(row.attempts, 1);
    assert!(row.last_error.is_some(), "{row:#?}");
    let wait = row.next_attempt_at - start;
    assert!(
        wait >= TimeDelta::seconds(55) && wait <= TimeDelta::seconds(65),
        "waits {wait}"
    );

    // Still down a minute later: the wait doubles.
    let second = start + TimeDelta::seconds(61);
    assert_eq!(worker.pass(second).await?, 0);
    let row = desk.outbox(&number).await?[0].clone();
    assert_eq!(row.attempts, 2);
    assert!(row.next_attempt_at - Utc::now() > TimeDelta::seconds(110));

    // The server comes up: before the due time nothing is sent, then the mail goes once.
    let receiver = SmtpReceiver::start(TcpListener::bind(("127.0.0.1", port)).await?).await;
    assert_eq!(worker.pass(Utc::now()).await?, 0);
    assert!(receiver.messages().is_empty());
    let later = Utc::now() + TimeDelta::minutes(3);
    assert_eq!(worker.pass(later).await?, 1);
    assert_eq!(worker.pass(later + TimeDelta::hours(2)).await?, 0);
    let received = receiver.messages();
    assert_eq!(received.len(), 1, "{received:#?}");
    assert!(
        received[0].contains(&format!("Message-ID: <{}>", row.message_id)),
        "{}",
        received[0]
    );
    assert!(received[0].contains("Auto-Submitted: auto-replied"));
    let row = desk.outbox(&number).await?[0].clone();
    assert_eq!(row.status, OutboxStatus::Sent);
    assert_eq!(row.attempts, 3);
    assert!(row.sent_at.is_some());

    let record = read(&desk.tom, &number).await?;
    let sent: Vec<&Value> = record["journal"]
        .as_array()
        .context("the record has a journal")?
        .iter()
        .filter(|entry| entry["event"] == "email_sent")
        .collect();
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert_eq!(sent[0]["message_id"], row.message_id.as_str());
    Ok(())
}

async fn serve_sends_through_smtp_url(backend: Backend) -> anyhow::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let receiver = SmtpReceiver::start(listener).await;
    let url = format!("smtp://127.0.0.1:{port}");
    let database = TestDatabase::create(backend).await?;
    let server =
        TestServer::binary_with(database, &["--smtp-url", &url, "--mail-seconds", "1"]).await?;
    let admin = server.add_user("ops", &[Role::Admin]).await?;
    let raw = message(
        "Walk-in <walkin@example.org>",
        "Monitor flickers",
        "serve-1@mail.example.org",
        "",
        "It flickers.",
    );
    let reply = admin
        .client
        .send(
            admin
                .client
                .request(
                    tend_test_support::reqwest::Method::POST,
                    "/api/v1/mail/inbound/support",
                )
                .header("Content-Type", "message/rfc822")
                .body(raw),
        )
        .await?
        .expect_status(StatusCode::CREATED)?;
    let number = reply.body["record"]
        .as_str()
        .context("a record")?
        .to_owned();

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while receiver.messages().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let received = receiver.messages();
    assert_eq!(received.len(), 1, "{received:#?}\n{}", server.log());
    assert!(
        received[0].contains(&format!(
            "Subject: [{number}] We received: Monitor flickers"
        )),
        "{}",
        received[0]
    );
    assert!(received[0].contains("In-Reply-To: <serve-1@mail.example.org>"));

    // The admin listing shows it sent; a technician may not read the outbox.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let sent = admin
            .client
            .get("/api/v1/mail/outbox?status=sent")
            .await?
            .expect_status(StatusCode::OK)?
            .body;
        if sent["mail"].as_array().map(Vec::len) == Some(1) {
            assert_eq!(sent["mail"][0]["record_number"], number.as_str());
            assert_eq!(sent["mail"][0]["recipient"], "walkin@example.org");
            break;
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "not marked sent: {sent}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let wrong = admin
        .client
        .get("/api/v1/mail/outbox?status=lost")
        .await?
        .expect_status(StatusCode::BAD_REQUEST)?;
    assert!(wrong.text.contains("lost"), "{}", wrong.text);
    let tom = server.add_user("tom", &[Role::Technician]).await?;
    tom.client
        .get("/api/v1/mail/outbox")
        .await?
        .expect_status(StatusCode::FORBIDDEN)?;
    Ok(())
}

async fn expired_lease_is_claimed_again(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let number = created(
        &desk
            .take(&message(
                "user@example.org",
                "Keyboard missing keys",
                "lease-1@mail.example.org",
                "",
                "The Q key is gone.",
            ))
            .await?,
    )?;
    let store = desk.commands().store.clone();
    let now = Utc::now();
    let claim = |owner: &'static str, at: chrono::DateTime<Utc>| {
        let store = store.clone();
        async move {
            store
                .write(move |tx| {
                    Box::pin(async move {
                        tend_test_support::tend_store::outbox::claim_outbox(
                            tx,
                            owner,
                            at,
                            at + TimeDelta::minutes(5),
                            10,
                        )
                        .await
                    })
                })
                .await
        }
    };
    // Node A claims the mail and stops before sending it.
    let first = claim("node-a", now).await?;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].attempts, 1);
    // Node B leaves it alone while A's lease runs.
    assert!(
        claim("node-b", now + TimeDelta::minutes(4))
            .await?
            .is_empty()
    );
    // Once the lease ran out, node B takes it; A can no longer mark it sent.
    let second = claim("node-b", now + TimeDelta::minutes(6)).await?;
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].attempts, 2);
    let id = second[0].id;
    let stale = store
        .write(move |tx| {
            Box::pin(async move {
                tend_test_support::tend_store::outbox::mark_outbox_sent(
                    tx,
                    id,
                    "node-a",
                    Utc::now(),
                )
                .await
            })
        })
        .await?;
    assert!(stale.is_none(), "{stale:#?}");
    let row = desk.outbox(&number).await?[0].clone();
    assert_eq!(row.status, OutboxStatus::Queued);
    Ok(())
}

async fn assignee_gets_assignment_notice(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let store = &desk.commands().store;
    store
        .add_user(
            "wendy",
            Some("wendy@example.com"),
            &[Role::Technician],
            TEST_PASSWORD,
        )
        .await?;
    // The colleague in Cc becomes a watcher, whom the shipped incident notifies of
    // nothing.
    let number = created(
        &desk
            .take(&message(
                "user@example.org",
                "Projector dead",
                "watch-1@mail.example.org",
                "Cc: colleague@example.org\n",
                "No image.",
            ))
            .await?,
    )?;
    let mut fields = Fields::new();
    fields.insert("assignee".into(), json!("wendy"));
    desk.apply(
        "tom",
        &number,
        Command::Update {
            title: None,
            description: None,
            fields,
        },
    )
    .await?;
    let mail = desk.outbox(&number).await?;
    let assigned: Vec<&OutboxMail> = mail.iter().filter(|row| row.event == "on_assign").collect();
    let recipients: Vec<&str> = assigned.iter().map(|row| row.recipient.as_str()).collect();
    assert!(recipients.contains(&"wendy@example.com"), "{mail:#?}");
    let to_wendy = assigned
        .iter()
        .find(|row| row.recipient == "wendy@example.com")
        .context("wendy's notification")?;
    assert_eq!(to_wendy.status, OutboxStatus::Queued);
    assert!(
        to_wendy.subject.contains("Assigned to wendy"),
        "{}",
        to_wendy.subject
    );
    assert!(
        !mail
            .iter()
            .any(|row| row.recipient == "colleague@example.org"),
        "{mail:#?}"
    );
    Ok(())
}

async fn recipient_language_picks_variant(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let store = &desk.commands().store;
    let first = created(
        &desk
            .take(&message(
                "User <user@example.org>",
                "Screen flickers",
                "locale-1@mail.example.org",
                "",
                "Since the update.",
            ))
            .await?,
    )?;
    let mail = desk.outbox(&first).await?;
    let ack = queued_to(&mail, "user@example.org");
    assert_eq!(
        ack[0].subject,
        format!("[{first}] We received: Screen flickers")
    );

    // With a language of her own, the requester gets the French variant.
    store.set_user_locale("user", Some("fr-CH".into())).await?;
    let second = created(
        &desk
            .take(&message(
                "User <user@example.org>",
                "Souris cassée",
                "locale-2@mail.example.org",
                "",
                "Le clic droit ne marche plus.",
            ))
            .await?,
    )?;
    let mail = desk.outbox(&second).await?;
    let ack = queued_to(&mail, "user@example.org");
    assert_eq!(
        ack[0].subject,
        format!("[{second}] Demande reçue : Souris cassée")
    );
    Ok(())
}
