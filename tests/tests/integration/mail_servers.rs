//! Mail intake over IMAP against the real Postfix and Dovecot that
//! `scripts/ensure-mailserver.sh` starts on 127.0.0.1. Each test sends through Postfix to
//! addresses of its own and points the `support` mailbox of a copy of the definitions at
//! its own Dovecot user, so the SQLite and PostgreSQL runs never see each other's mail.
//! Without the servers the tests are skipped, or fail under TEND_REQUIRE_MAIL_SERVERS=1.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tend_test_support::tend_domain::Record;
use tend_test_support::tend_store::mail::{MailMessage, MailStatus};
use tend_test_support::tend_store::{RecordFilter, Store};
use tend_test_support::{
    Backend, MailServers, TestDatabase, TestServer, backend_tests, repo_root, run_tend,
};

backend_tests!(
    imap_message_opens_incident,
    killed_poller_loses_and_doubles_nothing,
    poll_once_over_starttls,
    poll_once_flags_over_imaps,
);

/// How long a running `tend serve` may take to take the messages the test waits for.
pub(crate) const TAKE_TIMEOUT: Duration = Duration::from_secs(60);

/// How long the restarted server of the crash test may take: a message whose processing
/// the kill cut off is taken again only once it is two minutes old (the intake's guard
/// against two servers processing one message at once).
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(300);

/// Messages put in the mailbox before the crash test's server starts.
const CRASH_MESSAGES: usize = 150;

/// Records that must exist before the crash test kills the server.
const RECORDS_BEFORE_KILL: usize = 10;

/// Copies the repository's definitions to `target` and gives the `support` mailbox an
/// `imap:` section for `user` on Dovecot's STARTTLS port, with the password in a file.
pub(crate) fn definitions_for(
    target: &Path,
    servers: &MailServers,
    user: &str,
    password: &str,
    port: u16,
) -> anyhow::Result<()> {
    definitions_with(
        target,
        servers,
        user,
        password,
        (port, "starttls"),
        "{ move_to: Processed }",
    )
}

/// Like [`definitions_for`], on `port` with `security` (`none`, `starttls` or `tls`) and
/// the `processed` action given.
fn definitions_with(
    target: &Path,
    servers: &MailServers,
    user: &str,
    password: &str,
    (port, security): (u16, &str),
    processed: &str,
) -> anyhow::Result<()> {
    copy_dir(&repo_root().join("workflows"), &target.join("workflows"))?;
    copy_dir(&repo_root().join("rules"), &target.join("rules"))?;
    std::fs::write(target.join("imap-password"), format!("{password}\n"))?;
    let path = target.join("workflows/mailboxes/support.yaml");
    let shipped = std::fs::read_to_string(&path)?;
    let mailbox = shipped.replace(
        "addresses: [support@example.com, helpdesk@example.com]",
        &format!("addresses: [{user}]"),
    );
    anyhow::ensure!(
        mailbox != shipped,
        "support.yaml no longer lists its addresses as expected"
    );
    let imap = format!(
        "\nimap:\n  host: 127.0.0.1\n  port: {port}\n  security: {security}\n  username: {user}\n  password_file: imap-password\n  ca_file: {}\n  folder: INBOX\n  processed: {processed}\n  idle: true\n  poll_every: 2s\n",
        servers.ca_file.display()
    );
    std::fs::write(&path, format!("{mailbox}{imap}"))?;
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let path = entry.path();
        if path.is_dir() {
            copy_dir(&path, &to.join(entry.file_name()))?;
        } else {
            std::fs::copy(&path, to.join(entry.file_name()))?;
        }
    }
    Ok(())
}

pub(crate) fn message(
    from: &str,
    to: &str,
    subject: &str,
    id: &str,
    extra: &str,
    body: &str,
) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\nDate: Sat, 05 Dec 2026 09:00:00 +0000\r\n{extra}Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

pub(crate) async fn incidents(store: &Store) -> anyhow::Result<Vec<Record>> {
    let mut filter = RecordFilter {
        process: Some("incident".into()),
        limit: tend_test_support::tend_store::MAX_LIMIT,
        ..Default::default()
    };
    let mut records = Vec::new();
    loop {
        let page = store.list_records(&filter).await?;
        records.extend(page.records);
        match page.next_cursor {
            Some(cursor) => filter.cursor = Some(cursor),
            None => return Ok(records),
        }
    }
}

pub(crate) async fn stored_mail(store: &Store) -> anyhow::Result<Vec<MailMessage>> {
    Ok(store.list_mail(&MailStatus::ALL, 10_000, None).await?)
}

/// Waits until `user`'s INBOX is empty and `Processed` has `count` messages.
pub(crate) async fn wait_until_processed(
    servers: &MailServers,
    user: &str,
    count: usize,
    timeout: Duration,
    server: &TestServer,
) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let inbox = servers.messages(user, "INBOX").await?.len();
        let processed = servers.messages(user, "Processed").await?.len();
        if inbox == 0 && processed >= count {
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < timeout,
            "after {timeout:?} INBOX has {inbox} and Processed {processed} messages; expected 0 and {count}; server log:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A message sent through Postfix reaches Dovecot, a running `tend serve` takes it over
/// IMAP (IDLE) and opens an incident for a new requester, and the message leaves INBOX.
/// The same message delivered again creates nothing, and an out-of-office reply is kept
/// as robot mail without a record.
async fn imap_message_opens_incident(backend: Backend) -> anyhow::Result<()> {
    let Some(servers) = MailServers::find("imap_message_opens_incident").await? else {
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
    let database = TestDatabase::create(backend).await?;
    let server =
        TestServer::binary_with_definitions(database, definitions.path(), &["--no-watch"]).await?;
    let store = server.database().connect().await?;

    let first = message(
        &alice,
        &support,
        "Printer on floor 3 is jammed",
        &format!("jam-{alice}"),
        "",
        "The printer near the kitchen shows paper jam in tray 2.",
    );
    servers.send(&alice, &[&support], &first).await?;
    wait_until_processed(&servers, &support, 1, TAKE_TIMEOUT, &server).await?;

    let records = incidents(&store).await?;
    assert_eq!(records.len(), 1, "one incident: {records:?}");
    let record = &records[0];
    assert_eq!(record.title, "Printer on floor 3 is jammed");
    assert!(
        record.description.contains("paper jam in tray 2"),
        "{}",
        record.description
    );
    let requester = store
        .find_user_by_email(&alice)
        .await?
        .expect("the sender became a requester");
    assert_eq!(record.field_str("requester"), Some(requester.name.as_str()));
    let mail = stored_mail(&store).await?;
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].source, "imap");
    assert_eq!(mail[0].status, MailStatus::Processed);
    assert_eq!(
        mail[0].record_number.as_deref(),
        Some(record.number.as_str())
    );

    // The same message again: Dovecot stores a second copy, the intake finds it stored.
    servers.send(&alice, &[&support], &first).await?;
    wait_until_processed(&servers, &support, 2, TAKE_TIMEOUT, &server).await?;
    assert_eq!(
        incidents(&store).await?.len(),
        1,
        "the second delivery created a record"
    );
    assert_eq!(
        stored_mail(&store).await?.len(),
        1,
        "the second delivery was stored again"
    );

    let out_of_office = message(
        &alice,
        &support,
        "Out of office: Printer on floor 3 is jammed",
        &format!("ooo-{alice}"),
        "Auto-Submitted: auto-replied\r\n",
        "I am away until Monday.",
    );
    servers.send(&alice, &[&support], &out_of_office).await?;
    wait_until_processed(&servers, &support, 3, TAKE_TIMEOUT, &server).await?;
    assert_eq!(
        incidents(&store).await?.len(),
        1,
        "the auto-reply created a record"
    );
    let mail = stored_mail(&store).await?;
    let robot: Vec<&MailMessage> = mail
        .iter()
        .filter(|stored| stored.message_id.as_deref() == Some(&format!("ooo-{alice}")))
        .collect();
    assert_eq!(robot.len(), 1, "{mail:?}");
    assert_eq!(robot[0].status, MailStatus::Robot);
    assert_eq!(robot[0].record_number, None);

    Ok(())
}

/// 150 messages wait in INBOX; `tend serve` is killed with SIGKILL while it works through
/// them and started again. In the end every message made exactly one record, none is
/// left in INBOX, and none is stored twice.
async fn killed_poller_loses_and_doubles_nothing(backend: Backend) -> anyhow::Result<()> {
    let Some(servers) = MailServers::find("killed_poller_loses_and_doubles_nothing").await? else {
        return Ok(());
    };
    let support = servers.address("support", "example.com");
    let definitions = tempfile::tempdir()?;
    definitions_for(
        definitions.path(),
        &servers,
        &support,
        &servers.password,
        servers.imap_port,
    )?;

    // One sender per message, so that the per-sender rate limit quarantines none.
    let tag = servers.address("crash", "example.org");
    let messages: Vec<Vec<u8>> = (0..CRASH_MESSAGES)
        .map(|i| {
            let sender = format!("user{i}-{tag}");
            message(
                &sender,
                &support,
                &format!("Crash test message {i}"),
                &format!("crash-{i}-{tag}"),
                "",
                &format!("Message number {i} of the crash test."),
            )
        })
        .collect();
    servers
        .send_many(&format!("sender-{tag}"), &[&support], &messages)
        .await?;
    servers
        .wait_for_messages(&support, "INBOX", CRASH_MESSAGES, TAKE_TIMEOUT)
        .await?;

    let database = Arc::new(TestDatabase::create(backend).await?);
    let first =
        TestServer::binary_on_shared(database.clone(), definitions.path(), &["--no-watch"]).await?;
    let store = first.database().connect().await?;
    let started = Instant::now();
    let before_kill = loop {
        let count = incidents(&store).await?.len();
        if count >= RECORDS_BEFORE_KILL {
            break count;
        }
        anyhow::ensure!(
            started.elapsed() < TAKE_TIMEOUT,
            "only {count} records after {TAKE_TIMEOUT:?}; server log:\n{}",
            first.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let database = first.kill().await?;
    assert!(
        before_kill < CRASH_MESSAGES,
        "the server took all {CRASH_MESSAGES} messages before the kill, so the kill proves nothing"
    );
    let left = servers.messages(&support, "INBOX").await?.len();
    assert!(left > 0, "no message was left in INBOX at the kill");

    let second =
        TestServer::binary_on_shared(database, definitions.path(), &["--no-watch"]).await?;
    wait_until_processed(
        &servers,
        &support,
        CRASH_MESSAGES,
        RECOVERY_TIMEOUT,
        &second,
    )
    .await?;

    let records = incidents(&store).await?;
    assert_eq!(records.len(), CRASH_MESSAGES, "one record per message");
    let titles: BTreeSet<&str> = records.iter().map(|record| record.title.as_str()).collect();
    assert_eq!(titles.len(), CRASH_MESSAGES, "a message made two records");
    let mail = stored_mail(&store).await?;
    assert_eq!(
        mail.len(),
        CRASH_MESSAGES,
        "a message was stored twice or not at all"
    );
    let mut by_record: BTreeMap<&str, usize> = BTreeMap::new();
    for stored in &mail {
        assert_eq!(stored.status, MailStatus::Processed, "{stored:?}");
        let number = stored
            .record_number
            .as_deref()
            .expect("a processed message has a record");
        *by_record.entry(number).or_default() += 1;
    }
    assert_eq!(by_record.len(), CRASH_MESSAGES);
    assert!(by_record.values().all(|count| *count == 1), "{by_record:?}");
    assert_eq!(
        servers.messages(&support, "Processed").await?.len(),
        CRASH_MESSAGES,
        "Processed has a message twice or misses one"
    );
    Ok(())
}

/// `tend mail poll --once` takes a message over STARTTLS with the test CA and prints what
/// became of it; a wrong password or a port where nothing listens fails with a message
/// that names the mailbox and the setting to fix.
async fn poll_once_over_starttls(backend: Backend) -> anyhow::Result<()> {
    let Some(servers) = MailServers::find("poll_once_over_starttls").await? else {
        return Ok(());
    };
    let support = servers.address("support", "example.com");
    let bob = servers.address("bob", "example.net");
    let database = TestDatabase::create(backend).await?;
    let store_args = database.store_args();
    let poll = |definitions: &Path| {
        let mut args: Vec<std::ffi::OsString> = vec![
            "mail".into(),
            "poll".into(),
            "--mailbox".into(),
            "support".into(),
            "--once".into(),
            "--definitions".into(),
            definitions.into(),
        ];
        args.extend(store_args.iter().cloned());
        args
    };

    let good = tempfile::tempdir()?;
    definitions_for(
        good.path(),
        &servers,
        &support,
        &servers.password,
        servers.imap_port,
    )?;
    let nothing = run_tend(poll(good.path()), None).await?.expect_success()?;
    assert!(
        nothing.stdout.contains("no unprocessed messages"),
        "{}",
        nothing.stdout
    );

    let raw = message(
        &bob,
        &support,
        "VPN drops every hour",
        &format!("vpn-{bob}"),
        "",
        "Since Monday.",
    );
    servers.send(&bob, &[&support], &raw).await?;
    servers
        .wait_for_messages(&support, "INBOX", 1, TAKE_TIMEOUT)
        .await?;
    let taken = run_tend(poll(good.path()), None).await?.expect_success()?;
    assert!(
        taken.stdout.contains("processed, created INC"),
        "{}",
        taken.stdout
    );
    assert!(
        taken.stdout.contains("marked processed"),
        "{}",
        taken.stdout
    );
    assert!(servers.messages(&support, "INBOX").await?.is_empty());
    assert_eq!(servers.messages(&support, "Processed").await?.len(), 1);

    let wrong_password = tempfile::tempdir()?;
    definitions_for(
        wrong_password.path(),
        &servers,
        &support,
        "not-the-password",
        servers.imap_port,
    )?;
    let refused = run_tend(poll(wrong_password.path()), None).await?;
    assert!(
        !refused.success(),
        "a wrong password succeeded: {}",
        refused.stdout
    );
    assert!(
        refused.stderr.contains("mailbox `support`"),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("login"), "{}", refused.stderr);
    assert!(
        refused.stderr.contains("imap.password_file"),
        "{}",
        refused.stderr
    );
    assert!(!refused.stderr.contains("panicked"), "{}", refused.stderr);
    assert!(
        !refused.stderr.contains("not-the-password"),
        "{}",
        refused.stderr
    );

    // A port next to Dovecot's where nothing listens (the test servers use none of these).
    let closed_port = free_port().await?;
    let wrong_port = tempfile::tempdir()?;
    definitions_for(
        wrong_port.path(),
        &servers,
        &support,
        &servers.password,
        closed_port,
    )?;
    let unreachable = run_tend(poll(wrong_port.path()), None).await?;
    assert!(!unreachable.success());
    assert!(
        unreachable.stderr.contains("mailbox `support`"),
        "{}",
        unreachable.stderr
    );
    assert!(
        unreachable
            .stderr
            .contains(&format!("127.0.0.1:{closed_port}")),
        "{}",
        unreachable.stderr
    );
    assert!(
        unreachable.stderr.contains("imap.port"),
        "{}",
        unreachable.stderr
    );
    assert!(
        !unreachable.stderr.contains("panicked"),
        "{}",
        unreachable.stderr
    );
    database.cleanup().await
}

/// `tend mail poll --once` over IMAPS with `processed: { flag: KEYWORD }` takes a message
/// and leaves it in INBOX with the keyword, so that the next pass skips it.
async fn poll_once_flags_over_imaps(backend: Backend) -> anyhow::Result<()> {
    let Some(servers) = MailServers::find("poll_once_flags_over_imaps").await? else {
        return Ok(());
    };
    let support = servers.address("support", "example.com");
    let carol = servers.address("carol", "example.org");
    let database = TestDatabase::create(backend).await?;
    let definitions = tempfile::tempdir()?;
    definitions_with(
        definitions.path(),
        &servers,
        &support,
        &servers.password,
        (servers.imaps_port, "tls"),
        "{ flag: TendProcessed }",
    )?;
    let mut args: Vec<std::ffi::OsString> = vec![
        "mail".into(),
        "poll".into(),
        "--mailbox".into(),
        "support".into(),
        "--once".into(),
        "--definitions".into(),
        definitions.path().into(),
    ];
    args.extend(database.store_args());

    let raw = message(
        &carol,
        &support,
        "Badge reader at door B",
        &format!("badge-{carol}"),
        "",
        "It beeps red.",
    );
    servers.send(&carol, &[&support], &raw).await?;
    servers
        .wait_for_messages(&support, "INBOX", 1, TAKE_TIMEOUT)
        .await?;
    let taken = run_tend(args.clone(), None).await?.expect_success()?;
    assert!(
        taken.stdout.contains("processed, created INC"),
        "{}",
        taken.stdout
    );
    assert!(
        taken.stdout.contains("marked processed"),
        "{}",
        taken.stdout
    );

    let again = run_tend(args, None).await?.expect_success()?;
    assert!(
        again.stdout.contains("no unprocessed messages"),
        "{}",
        again.stdout
    );
    assert_eq!(
        servers.messages(&support, "INBOX").await?.len(),
        1,
        "the flagged message left INBOX"
    );
    assert!(
        servers.messages(&support, "Processed").await?.is_empty(),
        "a Processed folder was used"
    );
    let store = database.connect().await?;
    assert_eq!(incidents(&store).await?.len(), 1);
    drop(store);
    database.cleanup().await
}

/// Returns a port of 127.0.0.1 that nothing listens on: one the system just gave out and
/// took back.
async fn free_port() -> anyhow::Result<u16> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    Ok(listener.local_addr()?.port())
}
