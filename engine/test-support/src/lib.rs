//! Support for Tend's integration tests: fresh databases, servers on a free port, users
//! with API tokens, an API client, and the real `tend` binary.
//!
//! - [`database`]: [`Backend`], [`backends`] and [`TestDatabase`] (a SQLite file in a
//!   temporary directory, or a PostgreSQL database `tend_it_<random>` dropped afterwards).
//! - [`server`]: [`TestServer`], in process or as a `tend serve` child, and [`TestUser`].
//! - [`client`]: [`ApiClient`] and [`Reply`].
//! - [`binary`]: [`tend_binary`] and [`run_tend`] for the command line.
//! - [`browser`]: [`Browser`], headless Chromium driven over WebDriver.
//! - [`mail_servers`]: [`MailServers`], the Postfix and Dovecot test servers.
//!
//! Environment variables:
//! - `TEND_TEST_POSTGRES_URL`: the server for PostgreSQL test databases.
//! - `TEND_TEST_SKIP_POSTGRES=1`: test on SQLite only. Without it, an unreachable
//!   PostgreSQL fails the test.
//! - `TEND_BIN`: a prebuilt `tend` to use instead of building it.
//! - `TEND_TEST_SMTP_PORT`, `TEND_TEST_IMAP_PORT`, `TEND_TEST_IMAPS_PORT`,
//!   `TEND_TEST_MAIL_PASSWORD`, `TEND_TEST_MAIL_CA`: the mail test servers, as
//!   `scripts/ensure-mailserver.sh` prints them. `TEND_REQUIRE_MAIL_SERVERS=1`: fail the
//!   mail server tests when those servers do not run, instead of skipping them.
//! - `TEND_REQUIRE_BROWSER=1`: fail the browser tests when Chromium or chromedriver is
//!   missing, instead of skipping them.

pub mod binary;
pub mod browser;
pub mod client;
pub mod database;
pub mod mail_servers;
pub mod server;

use std::path::PathBuf;

pub use binary::{CliOutput, run_tend, run_tend_with_bytes, tend_binary};
pub use browser::{Browser, Scripts};
pub use client::{ApiClient, Reply};
pub use database::{Backend, TestDatabase, backends};
pub use mail_servers::MailServers;
pub use reqwest;
pub use server::{TEST_PASSWORD, TestServer, TestUser, load_definitions};
pub use tend_domain::Role;
// The crates under test, so that test crates need only this one as a dependency.
pub use {tend_api, tend_domain, tend_imap, tend_mail, tend_plugin_api, tend_store, tend_workflow};

/// Returns the repository root, which contains `workflows/` and `rules/`.
pub fn repo_root() -> PathBuf {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    root.canonicalize().unwrap_or(root)
}

/// Defines, for each async function `NAME(Backend) -> anyhow::Result<()>`, a module `NAME`
/// with one `#[tokio::test]` per backend: `NAME::sqlite` and `NAME::postgres`. The
/// PostgreSQL test returns at once when `TEND_TEST_SKIP_POSTGRES=1`. Tests run on a
/// two-thread runtime, so that an in-process server handles concurrent requests in parallel.
///
/// The calling crate needs `tokio` (with the `macros` and `rt` features) and `anyhow`.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() -> ::anyhow::Result<()> {
                    super::$name($crate::Backend::Sqlite).await
                }

                #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() -> ::anyhow::Result<()> {
                    if !$crate::Backend::Postgres.enabled() {
                        eprintln!("skipped on PostgreSQL: TEND_TEST_SKIP_POSTGRES=1");
                        return Ok(());
                    }
                    super::$name($crate::Backend::Postgres).await
                }
            }
        )+
    };
}
