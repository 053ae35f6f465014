//! Account recovery from the command line, against a running `tend serve`:
//! `tend user list`, `set-password`, `disable` and `enable`.

use std::ffi::OsString;
use std::time::{Duration, Instant};

use tend_test_support::reqwest::StatusCode;
use tend_test_support::{Backend, CliOutput, Role, TestServer, backend_tests, run_tend};

use crate::common::RECORDS;

backend_tests!(users_are_managed_from_the_cli);

/// How long a disabled user's token may keep working: the server caches a checked token for
/// 10 seconds, plus slack for a slow machine.
const DISABLED_TOKEN_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs `tend user SUBCOMMAND ARGS` on the server's database.
async fn tend_user(
    server: &TestServer,
    args: &[&str],
    stdin: Option<&str>,
) -> anyhow::Result<CliOutput> {
    let mut command: Vec<OsString> = vec!["user".into()];
    command.extend(args.iter().map(OsString::from));
    command.extend(server.database().store_args());
    run_tend(command, stdin).await
}

/// Returns the row of `name` in the output of `tend user list`, split into columns.
fn listed<'a>(output: &'a CliOutput, name: &str) -> Vec<&'a str> {
    output
        .stdout
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .find(|columns| columns.first() == Some(&name))
        .unwrap_or_default()
}

async fn users_are_managed_from_the_cli(backend: Backend) -> anyhow::Result<()> {
    let server = TestServer::binary(backend).await?;
    let first_password = server
        .admin_password()
        .expect("the first start prints the admin password")
        .to_owned();
    let tom = server.add_user("tom", &[Role::Technician]).await?;
    let store = server.database().connect().await?;

    let list = tend_user(&server, &["list"], None)
        .await?
        .expect_success()?;
    assert_eq!(
        list.stdout
            .lines()
            .next()
            .map(str::split_whitespace)
            .map(Iterator::collect::<Vec<_>>),
        Some(vec!["NAME", "ROLES", "EMAIL", "ACTIVE"]),
        "{list}"
    );
    assert_eq!(
        listed(&list, "admin"),
        ["admin", "admin", "-", "yes"],
        "{list}"
    );
    assert_eq!(
        listed(&list, "tom"),
        ["tom", "technician", "-", "yes"],
        "{list}"
    );
    assert!(list.stderr.is_empty(), "a one-shot command logged:\n{list}");

    // A short password is rejected and leaves the old one in place.
    let short = tend_user(
        &server,
        &["set-password", "admin", "--password-stdin"],
        Some("short\n"),
    )
    .await?;
    assert_eq!(short.code(), Some(1), "{short}");
    assert!(
        short.stderr.contains("shorter than 8 characters"),
        "{short}"
    );
    assert!(
        store
            .verify_password("admin", &first_password)
            .await?
            .is_some(),
        "a rejected set-password changed the admin password"
    );

    let new_password = "a new admin password";
    tend_user(
        &server,
        &["set-password", "admin", "--password-stdin"],
        Some(&format!("{new_password}\n")),
    )
    .await?
    .expect_success()?;
    assert!(
        store
            .verify_password("admin", new_password)
            .await?
            .is_some(),
        "the new admin password does not log in"
    );
    assert!(
        store
            .verify_password("admin", &first_password)
            .await?
            .is_none(),
        "the old admin password still logs in"
    );

    let unknown = tend_user(
        &server,
        &["set-password", "nobody", "--password-stdin"],
        Some("long enough password\n"),
    )
    .await?;
    assert_eq!(unknown.code(), Some(1), "{unknown}");
    assert!(
        unknown.stderr.contains("user `nobody` was not found"),
        "{unknown}"
    );
    assert!(unknown.stderr.contains("tend user list"), "{unknown}");

    // A disabled user's token stops working once the server's token cache (10 seconds)
    // expires, and works again at once when the user is enabled.
    let before = tom.client.get(RECORDS).await?;
    assert_eq!(before.status, StatusCode::OK, "{}", before.text);
    tend_user(&server, &["disable", "tom"], None)
        .await?
        .expect_success()?;
    let deadline = Instant::now() + DISABLED_TOKEN_TIMEOUT;
    loop {
        let reply = tom.client.get(RECORDS).await?;
        if reply.status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        assert!(
            Instant::now() < deadline,
            "the disabled user's token still works after {DISABLED_TOKEN_TIMEOUT:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let list = tend_user(&server, &["list"], None)
        .await?
        .expect_success()?;
    assert_eq!(
        listed(&list, "tom"),
        ["tom", "technician", "-", "no"],
        "{list}"
    );
    assert!(
        store.verify_password("tom", &tom.password).await?.is_none(),
        "a disabled user can log in"
    );

    tend_user(&server, &["enable", "tom"], None)
        .await?
        .expect_success()?;
    let enabled = tom.client.get(RECORDS).await?;
    assert_eq!(enabled.status, StatusCode::OK, "{}", enabled.text);
    let list = tend_user(&server, &["list"], None)
        .await?
        .expect_success()?;
    assert_eq!(
        listed(&list, "tom"),
        ["tom", "technician", "-", "yes"],
        "{list}"
    );

    let ghost = tend_user(&server, &["disable", "ghost"], None).await?;
    assert_eq!(ghost.code(), Some(1), "{ghost}");
    assert!(
        ghost.stderr.contains("user `ghost` was not found"),
        "{ghost}"
    );
    Ok(())
}
