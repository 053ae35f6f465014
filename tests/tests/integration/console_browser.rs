//! The web console in a real browser: headless Chromium, driven over WebDriver, logs in
//! through the login form and clicks the forms of `tend serve` as a technician or a
//! process owner does. One test runs with JavaScript turned off, because the console's
//! forms must work without it.
//!
//! The tests skip when Chromium is missing, and fail under `TEND_REQUIRE_BROWSER=1`
//! (`scripts/ensure-chromium.sh` installs it).

use serde_json::{Value, json};
use tend_test_support::reqwest::{Method, StatusCode};
use tend_test_support::{
    Backend, Browser, Role, Scripts, TEST_PASSWORD, TestDatabase, TestServer, TestUser,
    backend_tests,
};

use crate::actions::{LostFile, lost_file};

backend_tests!(
    lost_file_restored_by_click,
    run_form_works_without_javascript,
    run_approved_and_rejected_by_click,
    quarantine_retry_by_click,
);

/// Returns the XPath of the Tool runs table's row of run `id`.
fn run_row(id: i64) -> String {
    format!("//section[@id='runs']//tr[td[1][normalize-space()='{id}']]")
}

/// Creates an incident as `user` and returns its number.
async fn create_incident(
    user: &TestUser,
    title: &str,
    description: &str,
) -> anyhow::Result<String> {
    let created = user
        .client
        .post(
            "/api/v1/records/incident",
            &json!({ "title": title, "description": description }),
        )
        .await?
        .expect_status(StatusCode::CREATED)?;
    created.body["number"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("the created incident has no number: {}", created.text))
}

/// Returns the runs of record `number`, oldest first, from the REST API.
async fn runs_of(user: &TestUser, number: &str) -> anyhow::Result<Vec<Value>> {
    let record = user
        .client
        .get(&format!("/api/v1/records/{number}"))
        .await?
        .expect_status(StatusCode::OK)?;
    let mut ids: Vec<i64> = record.body["journal"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter(|entry| entry["event"] == "action_queued")
                .filter_map(|entry| entry["run"].as_i64())
                .collect()
        })
        .unwrap_or_default();
    ids.sort_unstable();
    let mut runs = Vec::new();
    for id in ids {
        let run = user
            .client
            .get(&format!("/api/v1/action-runs/{id}"))
            .await?
            .expect_status(StatusCode::OK)?;
        runs.push(run.body);
    }
    Ok(runs)
}

/// Runs the lost-file story in the browser. The technician logs in, opens the incident and
/// clicks the recommendation's Run button without typing a parameter. The page then shows
/// the run succeed, the file is back, and the journal has the queued and finished entries.
async fn restore_through_console(backend: Backend, scripts: Scripts) -> anyhow::Result<()> {
    if !Browser::available("the console browser test")? {
        return Ok(());
    }
    let Some(LostFile {
        root: _root,
        budget,
        content,
        plugins_dir,
    }) = lost_file()?
    else {
        return Ok(());
    };
    let database = TestDatabase::create(backend).await?;
    let server = TestServer::binary_with(database, &["--plugins-dir", &plugins_dir]).await?;
    let tara = server.add_user("tara", &[Role::Technician]).await?;
    let number = create_incident(
        &tara,
        "Deleted budget file",
        &format!("I deleted {} by mistake this morning.", budget.display()),
    )
    .await?;

    let mut browser = Browser::start(scripts).await?;
    if scripts == Scripts::Disabled {
        // A `<noscript>` element is parsed as markup only when scripts are off, so this
        // fails if the switch stopped working.
        browser
            .goto("data:text/html,<noscript><p id='scripts-off'>Scripts are off</p></noscript>")
            .await?;
        browser.wait_for_text("Scripts are off").await?;
    }
    browser
        .log_in(server.base_url(), "tara", TEST_PASSWORD)
        .await?;
    browser
        .goto(&format!("{}/records/{number}", server.base_url()))
        .await?;
    let page = browser.wait_for_text("Recommendations").await?;
    assert!(
        page.contains("Lost file: restore it from the last backup"),
        "the recommendation's reason is missing:\n{page}"
    );
    let path = browser.field_value("input[name='param.path']").await?;
    assert_eq!(
        path,
        budget.display().to_string(),
        "the run form is filled in from the recommendation"
    );

    browser.click_button("Run Restore file").await?;
    browser.wait_for_text("Tool runs").await?;
    let runs = runs_of(&tara, &number).await?;
    assert_eq!(runs.len(), 1, "one click queues one run: {runs:?}");
    let id = runs[0]["id"].as_i64().expect("run id");
    let row = run_row(id);
    let queued_row = browser.text_of(&row).await?;
    assert!(queued_row.contains("Restore file"), "{queued_row}");
    assert!(queued_row.contains("tara"), "{queued_row}");

    browser.reload_until_text("Succeeded").await?;
    let finished_row = browser.text_of(&row).await?;
    assert!(finished_row.contains("Succeeded"), "{finished_row}");
    assert!(finished_row.contains("Restored"), "{finished_row}");
    assert_eq!(
        std::fs::read(&budget)?,
        content,
        "the file is back, byte for byte"
    );

    let journal = browser.text_of("//section[@id='journal']").await?;
    assert!(
        journal.contains(&format!("Queued recovery Restore file (run {id})")),
        "{journal}"
    );
    let finished = journal.lines().find(|line| {
        line.contains("recovery Restore file succeeded after")
            && line.ends_with(&format!("(run {id})"))
    });
    assert!(
        finished.is_some(),
        "no finished entry of run {id}:\n{journal}"
    );
    Ok(())
}

async fn lost_file_restored_by_click(backend: Backend) -> anyhow::Result<()> {
    restore_through_console(backend, Scripts::Enabled).await
}

async fn run_form_works_without_javascript(backend: Backend) -> anyhow::Result<()> {
    restore_through_console(backend, Scripts::Disabled).await
}

/// Runs that need an approval. The technician queues two and the process owner logs in.
/// A Reject without a reason shows the error and changes nothing. Approve run lets the
/// worker run the first, and Reject with a reason ends the second without running it.
async fn run_approved_and_rejected_by_click(backend: Backend) -> anyhow::Result<()> {
    if !Browser::available("the console approval test")? {
        return Ok(());
    }
    let plugins = tempfile::tempdir()?;
    let work = tempfile::tempdir()?;
    std::fs::create_dir_all(plugins.path().join("script"))?;
    std::fs::write(
        plugins.path().join("script/allowed.yaml"),
        format!(
            "actions:\n  - name: mark_file\n    label: Mark file\n    executable: /usr/bin/touch\n    working_dir: {}\n    params:\n      path: {{ type: string, required: true, max_length: 200 }}\n    timeout_seconds: 10\n    roles: [technician]\n    needs_approval: true\n",
            work.path().display()
        ),
    )?;
    let plugins_dir = plugins.path().display().to_string();
    let database = TestDatabase::create(backend).await?;
    let server = TestServer::binary_with(database, &["--plugins-dir", &plugins_dir]).await?;
    let tara = server.add_user("tara", &[Role::Technician]).await?;
    server.add_user("olga", &[Role::ProcessOwner]).await?;
    let number = create_incident(&tara, "Mark the share", "Needs a marker file").await?;
    let mut ids = Vec::new();
    for name in ["approved.txt", "rejected.txt"] {
        let queued = tara
            .client
            .post(
                &format!("/api/v1/records/{number}/actions"),
                &json!({ "plugin": "script", "action": "mark_file", "params": { "path": name } }),
            )
            .await?
            .expect_status(StatusCode::ACCEPTED)?;
        assert_eq!(
            queued.body["status"], "awaiting_approval",
            "{}",
            queued.text
        );
        ids.push(queued.body["id"].as_i64().expect("run id"));
    }
    let (approved, rejected) = (ids[0], ids[1]);

    let mut browser = Browser::start(Scripts::Enabled).await?;
    browser
        .log_in(server.base_url(), "olga", TEST_PASSWORD)
        .await?;
    let record_url = format!("{}/records/{number}", server.base_url());
    browser.goto(&record_url).await?;
    browser.wait_for_text("Tool runs").await?;
    let waiting = browser.text_of(&run_row(approved)).await?;
    assert!(waiting.contains("Awaiting approval"), "{waiting}");

    browser
        .click_button_in(Some(&run_row(approved)), "Reject run")
        .await?;
    let error_page = browser.wait_for_text("say why the run is rejected").await?;
    assert!(error_page.contains("Invalid request"), "{error_page}");
    let after_error = runs_of(&tara, &number).await?;
    assert_eq!(
        after_error[0]["status"], "awaiting_approval",
        "{after_error:?}"
    );

    browser.goto(&record_url).await?;
    browser
        .click_button_in(Some(&run_row(approved)), "Approve run")
        .await?;
    browser.wait_for_text("Tool runs").await?;
    let reason_field = format!("#run-reason-{rejected}");
    browser
        .type_into(&reason_field, "Not during office hours")
        .await?;
    browser
        .click_button_in(Some(&run_row(rejected)), "Reject run")
        .await?;
    browser.wait_for_text("Tool runs").await?;

    browser.reload_until_text("Succeeded").await?;
    let approved_row = browser.text_of(&run_row(approved)).await?;
    assert!(approved_row.contains("Succeeded"), "{approved_row}");
    let rejected_row = browser.text_of(&run_row(rejected)).await?;
    assert!(rejected_row.contains("Rejected"), "{rejected_row}");
    assert!(work.path().join("approved.txt").exists());
    assert!(!work.path().join("rejected.txt").exists());

    let journal = browser.text_of("//section[@id='journal']").await?;
    assert!(
        journal.contains(&format!("Approved script Mark file (run {approved})")),
        "{journal}"
    );
    assert!(
        journal.contains(&format!("Rejected script Mark file (run {rejected})")),
        "{journal}"
    );
    assert!(journal.contains("Not during office hours"), "{journal}");
    Ok(())
}

/// Checks that the mail quarantine page lists a message that came to an undefined mailbox,
/// and that its Retry button processes it again and shows the outcome.
async fn quarantine_retry_by_click(backend: Backend) -> anyhow::Result<()> {
    if !Browser::available("the console quarantine test")? {
        return Ok(());
    }
    let server = TestServer::binary(backend).await?;
    server.add_user("tom", &[Role::Technician]).await?;
    let gateway = server.add_user("gateway", &[Role::MailGateway]).await?;
    let raw = "From: alice@example.org\r\nTo: support@example.com\r\nSubject: Wrong mailbox\r\nMessage-ID: <browser-1@mail.example.org>\r\n\r\nSent to a mailbox nobody defined.\r\n";
    let taken = gateway
        .client
        .send(
            gateway
                .client
                .request(Method::POST, "/api/v1/mail/inbound/nosuchbox")
                .header("Content-Type", "message/rfc822")
                .body(raw),
        )
        .await?
        .expect_status(StatusCode::CREATED)?;
    assert_eq!(taken.body["status"], "quarantined", "{}", taken.text);
    let id = taken.body["mail"].as_i64().expect("mail id");

    let mut browser = Browser::start(Scripts::Enabled).await?;
    browser
        .log_in(server.base_url(), "tom", TEST_PASSWORD)
        .await?;
    browser
        .goto(&format!("{}/mail/quarantine", server.base_url()))
        .await?;
    let list = browser.wait_for_text("Wrong mailbox").await?;
    assert!(list.contains("nosuchbox"), "{list}");

    let row = format!("//tr[td[1]/a[normalize-space()='{id}']]");
    let before = browser.text_of(&row).await?;
    assert!(before.contains("Wrong mailbox"), "{before}");
    browser.click_button_in(Some(&row), "Retry").await?;
    let notice = browser
        .wait_for_text(&format!("Message {id} was retried: quarantined"))
        .await?;
    assert!(notice.contains("Mail quarantine"), "{notice}");
    let tries = browser.text_of(&format!("{row}/td[8]")).await?;
    assert_eq!(tries, "2", "the row counts the second try");
    Ok(())
}
