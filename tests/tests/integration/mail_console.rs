//! Stored mail in the web console. The record page lists the files of its mail, and the
//! message page shows the HTML in a sandboxed frame with inline images in place. Only staff
//! and the record's requester read a message. The quarantine page retries a message.

use tend_test_support::reqwest::{Method, StatusCode};
use tend_test_support::tend_api::mail_intake::IntakeOutcome;
use tend_test_support::tend_store::mail::MailStatus;
use tend_test_support::{ApiClient, Backend, Role, TEST_PASSWORD, TestServer, backend_tests};

backend_tests!(console_shows_mail_files_and_html, quarantine_page_retries);

/// A 1x1 PNG, as a mail client would attach a logo.
const PNG: [u8; 67] = [
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0a, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae,
    0x42, 0x60, 0x82,
];

struct Desk {
    server: TestServer,
    tom: ApiClient,
    alice: ApiClient,
    bob: ApiClient,
}

async fn open(backend: Backend) -> anyhow::Result<Desk> {
    let server = TestServer::in_process(backend).await?;
    let store = &server.commands().expect("in-process server").store;
    for (name, address, role) in [
        ("alice", "alice@example.org", Role::Requester),
        ("bob", "bob@example.org", Role::Requester),
        ("tom", "tom@example.com", Role::Technician),
    ] {
        store
            .add_user(name, Some(address), &[role], TEST_PASSWORD)
            .await?;
    }
    let tom = server.client(&store.create_token("tom", "tests").await?);
    let alice = server.client(&store.create_token("alice", "tests").await?);
    let bob = server.client(&store.create_token("bob", "tests").await?);
    Ok(Desk {
        server,
        tom,
        alice,
        bob,
    })
}

impl Desk {
    async fn take(&self, raw: Vec<u8>) -> anyhow::Result<IntakeOutcome> {
        self.server
            .commands()
            .expect("in-process server")
            .take_mail("support", "http", raw)
            .await
            .map_err(|error| anyhow::anyhow!("the intake failed: {error}"))
    }
}

async fn page(client: &ApiClient, path: &str) -> anyhow::Result<tend_test_support::Reply> {
    client.send(client.request(Method::GET, path)).await
}

fn html_message() -> Vec<u8> {
    let logo = base64(&PNG);
    format!(
        "From: Alice <alice@example.org>\r\nTo: support@example.com\r\nSubject: Printer shows a red light\r\nMessage-ID: <console-1@mail.example.org>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n--outer\r\nContent-Type: multipart/related; boundary=\"rel\"\r\n\r\n--rel\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>The light is <b>red</b>:</p><img src=\"cid:logo@mail.example.org\" alt=\"light\"><script>alert(1)</script><img src=\"https://tracker.example/p.gif\">\r\n--rel\r\nContent-Type: image/png; name=\"light.png\"\r\nContent-ID: <logo@mail.example.org>\r\nContent-Disposition: inline; filename=\"light.png\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{logo}\r\n--rel--\r\n--outer\r\nContent-Type: text/plain; name=\"log.txt\"\r\nContent-Disposition: attachment; filename=\"log.txt\"\r\n\r\nE42 fuser jam\r\n--outer--\r\n"
    )
    .into_bytes()
}

async fn console_shows_mail_files_and_html(backend: Backend) -> anyhow::Result<()> {
    let desk = open(backend).await?;
    let outcome = desk.take(html_message()).await?;
    assert_eq!(outcome.status, MailStatus::Processed, "{outcome:?}");
    let number = outcome.record.clone().expect("a record");
    let mail = outcome.mail;

    // The record page lists both files and links each to its message.
    let record = page(&desk.tom, &format!("/records/{number}")).await?;
    assert_eq!(record.status, StatusCode::OK, "{}", record.text);
    assert!(record.text.contains("Attachments"), "{}", record.text);
    assert!(record.text.contains("light.png"));
    assert!(record.text.contains("log.txt"));
    assert!(record.text.contains("(inline)"));
    assert!(
        record
            .text
            .contains(&format!("href=\"/mail/messages/{mail}\""))
    );

    // The message page frames the sanitised HTML and lists the files.
    let message = page(&desk.tom, &format!("/mail/messages/{mail}")).await?;
    assert_eq!(message.status, StatusCode::OK, "{}", message.text);
    assert!(message.text.contains("Printer shows a red light"));
    assert!(message.text.contains("Alice &lt;alice@example.org&gt;"));
    assert!(
        message
            .text
            .contains(&format!("src=\"/mail/messages/{mail}/html\""))
    );
    let policy = message.headers["content-security-policy"].to_str()?;
    assert!(policy.contains("frame-src 'self'"), "{policy}");

    // The frame: no script, no remote image, the inline image from Tend.
    let frame = page(&desk.tom, &format!("/mail/messages/{mail}/html")).await?;
    assert_eq!(frame.status, StatusCode::OK, "{}", frame.text);
    assert!(!frame.text.contains("<script"), "{}", frame.text);
    assert!(!frame.text.contains("tracker.example"), "{}", frame.text);
    let policy = frame.headers["content-security-policy"].to_str()?;
    assert!(policy.starts_with("sandbox"), "{policy}");
    let start = frame
        .text
        .find("/attachments/")
        .unwrap_or_else(|| panic!("the cid source points at Tend: {}", frame.text));
    let inline = &frame.text[start..];
    let inline = &inline[..inline.find('"').expect("a quoted source")];
    assert!(inline.ends_with("/inline"), "{inline}");

    let image = desk
        .tom
        .request(Method::GET, inline)
        .send()
        .await?
        .error_for_status()?;
    assert_eq!(image.headers()["content-type"], "image/png");
    assert_eq!(image.bytes().await?.as_ref(), PNG.as_slice());
    // The text file is offered for download only, not shown in place.
    let text_id = {
        let record = desk
            .tom
            .get(&format!("/api/v1/records/{number}"))
            .await?
            .expect_status(StatusCode::OK)?;
        record.body["attachments"]
            .as_array()
            .and_then(|files| files.iter().find(|file| file["file_name"] == "log.txt"))
            .and_then(|file| file["id"].as_i64())
            .expect("log.txt is listed")
    };
    let shown = page(&desk.tom, &format!("/attachments/{text_id}/inline")).await?;
    assert_eq!(shown.status, StatusCode::NOT_FOUND);

    // The requester reads the message of her record; another requester does not.
    let own = page(&desk.alice, &format!("/mail/messages/{mail}")).await?;
    assert_eq!(own.status, StatusCode::OK, "{}", own.text);
    assert!(!own.text.contains("/raw"), "raw mail is for staff");
    for path in [
        format!("/mail/messages/{mail}"),
        format!("/mail/messages/{mail}/html"),
        inline.to_owned(),
    ] {
        let other = page(&desk.bob, &path).await?;
        assert_eq!(
            other.status,
            StatusCode::NOT_FOUND,
            "{path}: {}",
            other.text
        );
    }
    Ok(())
}

async fn quarantine_page_retries(backend: Backend) -> anyhow::Result<()> {
    let desk = open(backend).await?;
    let kept = desk
        .take(
            b"From: alice@example.org\nSubject: Lost mailbox\nMessage-ID: <console-2@mail.example.org>\n\nSent to a mailbox nobody defined."
                .to_vec(),
        )
        .await?;
    // Delivered to the right mailbox, so quarantine it by sending it to an undefined one.
    assert_eq!(kept.status, MailStatus::Processed, "{kept:?}");
    let lost = desk
        .server
        .commands()
        .expect("in-process server")
        .take_mail(
            "nosuchbox",
            "http",
            b"From: alice@example.org\nSubject: Wrong mailbox\nMessage-ID: <console-3@mail.example.org>\n\nHello."
                .to_vec(),
        )
        .await
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    assert_eq!(lost.status, MailStatus::Quarantined, "{lost:?}");

    let list = page(&desk.tom, "/mail/quarantine").await?;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    assert!(list.text.contains("Wrong mailbox"), "{}", list.text);
    assert!(list.text.contains("nosuchbox.yaml"), "{}", list.text);
    assert!(
        !list.text.contains("Lost mailbox"),
        "a processed message is listed"
    );
    let forbidden = page(&desk.alice, "/mail/quarantine").await?;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);

    let retried = desk
        .tom
        .send(
            desk.tom
                .request(
                    Method::POST,
                    &format!("/mail/quarantine/{}/retry", lost.mail),
                )
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(""),
        )
        .await?;
    assert_eq!(retried.status, StatusCode::OK, "{}", retried.text);
    assert!(
        retried
            .text
            .contains(&format!("Message {} was retried: quarantined", lost.mail)),
        "{}",
        retried.text
    );
    let stored = desk
        .server
        .commands()
        .expect("in-process server")
        .store
        .mail_message(lost.mail)
        .await?
        .expect("stored");
    assert_eq!(stored.attempts, 2);
    Ok(())
}

/// Encodes bytes as base64 with 76-character lines, as mail carries them.
fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    encoded
        .as_bytes()
        .chunks(76)
        .map(|line| String::from_utf8_lossy(line).into_owned())
        .collect::<Vec<_>>()
        .join("\r\n")
}
