//! Fresh databases for tests (feature `testing`).
//!
//! SQLite databases live in a temporary directory. PostgreSQL databases are created as
//! `tend_test_<random>` on the server of `TEND_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`) and dropped when the `TestDb` is dropped.
//! An unreachable PostgreSQL fails the test, unless `TEND_TEST_SKIP_POSTGRES=1`.

use rand::Rng;
use std::time::Duration;

use sea_orm::{ConnectOptions, ConnectionTrait, Database};

use crate::{Backend, Store};

pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A store on a database that exists for one test.
pub struct TestDb {
    pub store: Store,
    /// URL of the database, to open more stores on it (as more server nodes would).
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    postgres: Option<PostgresDatabase>,
}

struct PostgresDatabase {
    admin_url: String,
    name: String,
}

impl TestDb {
    /// Opens a fresh database of `backend`, or returns `None` when `backend` is PostgreSQL
    /// and `TEND_TEST_SKIP_POSTGRES=1`.
    pub async fn open(backend: Backend) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => Some(TestDb::sqlite().await),
            Backend::Postgres => TestDb::postgres().await,
        }
    }

    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("failed to create a temporary directory");
        let url = Store::sqlite_url(dir.path());
        let store = Store::connect(&url)
            .await
            .unwrap_or_else(|error| panic!("failed to open SQLite at {url}: {error}"));
        TestDb {
            store,
            url,
            _dir: Some(dir),
            postgres: None,
        }
    }

    pub async fn postgres() -> Option<TestDb> {
        if std::env::var("TEND_TEST_SKIP_POSTGRES").is_ok_and(|value| value == "1") {
            eprintln!("skipping the PostgreSQL half of this test: TEND_TEST_SKIP_POSTGRES=1");
            return None;
        }
        let admin_url = std::env::var("TEND_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
        let name = format!("tend_test_{:016x}", rand::thread_rng().r#gen::<u64>());

        let admin = Database::connect(admin_options(&admin_url))
            .await
            .unwrap_or_else(|error| {
                panic!(
                    "PostgreSQL at {admin_url} is unreachable: {error}; start it, point \
                 TEND_TEST_POSTGRES_URL at a server, or set TEND_TEST_SKIP_POSTGRES=1"
                )
            });
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|error| {
                panic!("failed to create database {name} at {admin_url}: {error}")
            });
        let _ = admin.close().await;

        let url = database_url(&admin_url, &name);
        let store = Store::connect(&url)
            .await
            .unwrap_or_else(|error| panic!("failed to open {url}: {error}"));
        Some(TestDb {
            store,
            url,
            _dir: None,
            postgres: Some(PostgresDatabase { admin_url, name }),
        })
    }

    /// Runs one SQL statement outside the store, as an operator (or an attacker) would.
    pub async fn execute(&self, sql: &str) -> u64 {
        self.store
            .db()
            .execute_unprepared(sql)
            .await
            .unwrap_or_else(|error| panic!("failed to run `{sql}`: {error}"))
            .rows_affected()
    }
}

impl Drop for TestDb {
    /// Drops the PostgreSQL database, best effort. A thread with its own runtime does it,
    /// because `Drop` cannot await and may run inside the test's runtime.
    fn drop(&mut self) {
        let Some(PostgresDatabase { admin_url, name }) = self.postgres.take() else {
            return;
        };
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let admin = Database::connect(admin_options(&admin_url)).await.ok()?;
                let result = admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await;
                let _ = admin.close().await;
                result.ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!(
                "warning: failed to drop a PostgreSQL test database; drop tend_test_* by hand"
            );
        }
    }
}

/// Returns options for the server's admin database, with a short acquire timeout so that a
/// stopped server fails the test in seconds.
fn admin_options(url: &str) -> ConnectOptions {
    let mut options = ConnectOptions::new(url);
    options
        .acquire_timeout(Duration::from_secs(5))
        .sqlx_logging(false);
    options
}

/// Replaces the database name in `url` (the last path segment) with `name`, keeping the query.
fn database_url(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_end = base.find("://").map_or(0, |at| at + 3);
    let server = match base[authority_end..].find('/') {
        Some(slash) => &base[..authority_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::database_url;

    #[test]
    fn database_url_replaces_the_name() {
        assert_eq!(
            database_url("postgres://u@h:5432/test", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            database_url("postgres://u@h/test?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
        assert_eq!(database_url("postgres://u@h", "x"), "postgres://u@h/x");
    }
}
