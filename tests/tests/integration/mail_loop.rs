//! The whole mail loop against the real Postfix and Dovecot of
//! `scripts/ensure-mailserver.sh`. A requester's message goes through Postfix into the
//! support mailbox, and a running `tend serve` takes it over IMAP and opens an incident.
//! The acknowledgement goes out through Postfix into the requester's mailbox. The
//! requester's reply, built from that acknowledgement as a mail client would, lands on the
//! same incident. An out-of-office reply and a second delivery change nothing.

use std::time::Duration;

use tend_test_support::tend_mail::{InboundMessage, parse};
use tend_test_support::tend_store::Store;
use tend_test_support::tend_store::mail::MailStatus;
use tend_test_support::tend_store::outbox::OutboxStatus;
use tend_test_support::{Backend, MailServers, TestDatabase, TestServer, backend_tests};

use crate::mail_servers::{
    TAKE_TIMEOUT, definitions_for, incidents, message, stored_mail, wait_until_processed,
};

backend_tests!(requester_round_trip_threads);

/// How long the outbox may take to send what is queued.
const SEND_TIMEOUT: Duration = Duration::from_secs(60);

/// Waits until no notification is queued any more, and returns how many were sent.
async fn until_outbox_idle(store: &Store, server: &TestServer) -> anyhow::Result<usize> {
    let started = std::time::Instant::now();
    loop {
        let rows = store.outbox(None, 1_000).await?;
        if !rows.iter().any(|row| row.status == OutboxStatus::Queued) {
            return Ok(rows
                .iter()
                .filter(|row| row.status == OutboxStatus::Sent)
                .count());
        }
        anyhow::ensure!(
            started.elapsed() < SEND_TIMEOUT,
            "notifications still queued after {SEND_TIMEOUT:?}: {rows:?}\nserver log:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn header<'m>(message: &'m InboundMessage, name: &str) -> &'m str {
    message.header(name).unwrap_or_default()
}

async fn requester_round_trip_threads(backend: Backend) -> anyhow::Result<()> {
    let Some(servers) = MailServers::find("requester_round_trip_threads").await? else {
        return Ok(());
    };
    let support = servers.address("support", "example.com");
    let alice = servers.address("alice", "example.org");
    let definitions = tempfile::tempdir()?;
    definitions_for(
        definitions.path(),
        &servers,
        &support,
        &servers.password,
        servers.imap_port,
    )?;
    // Notifications come from the test's own support address, so that replies to them
    // reach the mailbox this server reads.
    let mailbox = definitions.path().join("workflows/mailboxes/support.yaml");
    let text = std::fs::read_to_string(&mailbox)?;
    let patched = text.replace(
        "  address: support@example.com",
        &format!("  address: {support}"),
    );
    anyhow::ensure!(
        patched != text,
        "support.yaml no longer sets `from.address`"
    );
    std::fs::write(&mailbox, patched)?;

    let smtp = format!("smtp://127.0.0.1:{}", servers.smtp_port);
    let database = TestDatabase::create(backend).await?;
    let server = TestServer::binary_with_definitions(
        database,
        definitions.path(),
        &["--no-watch", "--smtp-url", &smtp, "--mail-seconds", "1"],
    )
    .await?;
    let store = server.database().connect().await?;

    // 1. The requester writes in.
    let first_id = format!("vpn-{alice}");
    let first = message(
        &format!("Alice <{alice}>"),
        &support,
        "VPN drops every ten minutes",
        &first_id,
        "",
        "Since this morning the VPN client disconnects every ten minutes.",
    );
    servers.send(&alice, &[&support], &first).await?;
    wait_until_processed(&servers, &support, 1, TAKE_TIMEOUT, &server).await?;
    let records = incidents(&store).await?;
    assert_eq!(records.len(), 1, "{records:?}");
    let number = records[0].number.clone();

    // 2. The acknowledgement arrives in the requester's mailbox through Postfix.
    let inbox = servers
        .wait_for_messages(&alice, "INBOX", 1, SEND_TIMEOUT)
        .await?;
    assert_eq!(inbox.len(), 1, "one acknowledgement");
    let ack = parse(&inbox[0])?;
    let ack_subject = ack.subject.clone().unwrap_or_default();
    assert!(
        ack_subject.contains(&format!("[{number}]")),
        "{ack_subject}"
    );
    assert_eq!(header(&ack, "Auto-Submitted"), "auto-replied");
    assert_eq!(header(&ack, "X-Auto-Response-Suppress"), "All");
    assert_eq!(ack.in_reply_to, std::slice::from_ref(&first_id));
    let ack_id = ack
        .message_id
        .clone()
        .expect("the acknowledgement has a Message-ID");
    let reply_to = ack
        .reply_to
        .first()
        .map(|mailbox| mailbox.address.clone())
        .expect("the acknowledgement names a reply address");
    let (local, domain) = support.split_once('@').expect("an address");
    assert_eq!(
        reply_to.to_lowercase(),
        format!("{local}+{number}@{domain}").to_lowercase()
    );

    // 3. The requester replies to the acknowledgement from a mail client: to its
    // Reply-To, with "Re:" and the references a client sets.
    let reply = message(
        &format!("Alice <{alice}>"),
        &reply_to,
        &format!("Re: {ack_subject}"),
        &format!("vpn-reply-{alice}"),
        &format!("In-Reply-To: <{ack_id}>\r\nReferences: <{first_id}> <{ack_id}>\r\n"),
        "It also happens on the office network.\r\n\r\n> We have received your request.",
    );
    servers.send(&alice, &[&reply_to], &reply).await?;
    wait_until_processed(&servers, &support, 2, TAKE_TIMEOUT, &server).await?;
    assert_eq!(
        incidents(&store).await?.len(),
        1,
        "the reply opened a record"
    );
    let record = store.get_record(&number).await?.expect("the incident");
    let journal = store.journal(record.id).await?;
    let landed = journal.iter().any(|entry| {
        serde_json::to_value(&entry.event).is_ok_and(|event| {
            event["event"] == "email_received"
                && event["effect"] == "commented"
                && event["message_id"] == format!("vpn-reply-{alice}")
        })
    });
    assert!(landed, "the reply is not on {number}: {journal:?}");

    // 4. An out-of-office reply to the acknowledgement is stored and gets no reply.
    let away = message(
        &format!("Alice <{alice}>"),
        &support,
        &format!("Automatic reply: {ack_subject}"),
        &format!("vpn-ooo-{alice}"),
        &format!("Auto-Submitted: auto-replied\r\nIn-Reply-To: <{ack_id}>\r\n"),
        "I am out of the office until Monday.",
    );
    servers.send(&alice, &[&support], &away).await?;
    wait_until_processed(&servers, &support, 3, TAKE_TIMEOUT, &server).await?;

    // 5. Postfix delivers the first message a second time.
    servers.send(&alice, &[&support], &first).await?;
    wait_until_processed(&servers, &support, 4, TAKE_TIMEOUT, &server).await?;
    assert_eq!(
        incidents(&store).await?.len(),
        1,
        "a message opened a second record"
    );

    let mail = stored_mail(&store).await?;
    assert_eq!(mail.len(), 3, "stored once each: {mail:?}");
    let away = mail
        .iter()
        .find(|stored| stored.message_id.as_deref() == Some(&format!("vpn-ooo-{alice}")))
        .expect("the out-of-office answer is stored");
    assert_eq!(away.status, MailStatus::Robot);

    // Only the acknowledgement went to the requester: no notice of her own reply, and no
    // reply to her out-of-office message.
    until_outbox_idle(&store, &server).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        servers.messages(&alice, "INBOX").await?.len(),
        1,
        "the requester got more than the acknowledgement"
    );
    let sent_to_alice = store
        .outbox(None, 1_000)
        .await?
        .into_iter()
        .filter(|row| row.recipient.eq_ignore_ascii_case(&alice))
        .filter(|row| row.status == OutboxStatus::Sent)
        .count();
    assert_eq!(sent_to_alice, 1);
    Ok(())
}
