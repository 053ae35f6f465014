//! Fresh databases for tests.
//!
//! A SQLite database is the file `tend.db` in a temporary data directory. A PostgreSQL
//! database is created as `tend_it_<random>` on the server of `TEND_TEST_POSTGRES_URL`
//! (default [`DEFAULT_POSTGRES_URL`]) and dropped by [`TestDatabase::cleanup`] or, best
//! effort, when the [`TestDatabase`] is dropped. Every database also gets its own data
//! directory, which `tend` subcommands receive as `--data-dir`.

use std::ffi::OsString;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use rand::Rng;
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};
use tend_store::Store;

/// Server on which PostgreSQL test databases are created when `TEND_TEST_POSTGRES_URL` is unset.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Environment variable with the URL of a PostgreSQL database on the server to create test
/// databases on. Its user needs the `CREATEDB` privilege.
pub const POSTGRES_URL_VAR: &str = "TEND_TEST_POSTGRES_URL";

/// Environment variable that, set to `1`, leaves PostgreSQL out of the backends to test.
pub const SKIP_POSTGRES_VAR: &str = "TEND_TEST_SKIP_POSTGRES";

/// How long connecting to PostgreSQL may take before a test fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A database system that Tend runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// Checks whether tests run on this backend: SQLite always, PostgreSQL unless
    /// `TEND_TEST_SKIP_POSTGRES=1`.
    pub fn enabled(self) -> bool {
        match self {
            Backend::Sqlite => true,
            Backend::Postgres => {
                std::env::var(SKIP_POSTGRES_VAR).map_or(true, |value| value != "1")
            }
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Lists the backends that tests run on: both by default, SQLite only when
/// `TEND_TEST_SKIP_POSTGRES=1`. An unreachable PostgreSQL is not skipped: the test fails.
pub fn backends() -> Vec<Backend> {
    [Backend::Sqlite, Backend::Postgres]
        .into_iter()
        .filter(|backend| backend.enabled())
        .collect()
}

/// A database that exists for one test, with its own data directory.
pub struct TestDatabase {
    backend: Backend,
    url: String,
    data_dir: tempfile::TempDir,
    postgres: Option<PostgresDatabase>,
}

/// The PostgreSQL database to drop, and the server URL to drop it through.
struct PostgresDatabase {
    admin_url: String,
    name: String,
}

impl TestDatabase {
    /// Creates a fresh, empty database of `backend`. Tend's migrations run when a store or
    /// the `tend` binary first opens it.
    ///
    /// Fails with a message that names the fix when PostgreSQL is unreachable; set
    /// `TEND_TEST_SKIP_POSTGRES=1` to run without it.
    pub async fn create(backend: Backend) -> anyhow::Result<TestDatabase> {
        let data_dir = tempfile::Builder::new()
            .prefix("tend-test-")
            .tempdir()
            .context("failed to create a temporary data directory")?;
        match backend {
            Backend::Sqlite => Ok(TestDatabase {
                backend,
                url: Store::sqlite_url(data_dir.path()),
                data_dir,
                postgres: None,
            }),
            Backend::Postgres => {
                let admin_url = std::env::var(POSTGRES_URL_VAR)
                    .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
                let name = format!("tend_it_{:016x}", rand::thread_rng().r#gen::<u64>());
                let admin = connect_admin(&admin_url).await?;
                let created = admin
                    .execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await;
                let _ = admin.close().await;
                created.with_context(|| {
                    format!(
                        "failed to create the database {name} on PostgreSQL at {}: give its user \
                         the CREATEDB privilege or point {POSTGRES_URL_VAR} at another server",
                        redact(&admin_url)
                    )
                })?;
                Ok(TestDatabase {
                    backend,
                    url: replace_database_name(&admin_url, &name),
                    data_dir,
                    postgres: Some(PostgresDatabase { admin_url, name }),
                })
            }
        }
    }

    /// Returns another handle on this database, with a data directory of its own, for a
    /// second server node on the same database. The handle does not drop the database;
    /// keep `self` until every server on either handle has stopped.
    pub fn share(&self) -> anyhow::Result<TestDatabase> {
        let data_dir = tempfile::Builder::new()
            .prefix("tend-test-")
            .tempdir()
            .context("failed to create a temporary data directory")?;
        Ok(TestDatabase {
            backend: self.backend,
            url: self.url.clone(),
            data_dir,
            postgres: None,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Returns the database URL, as `tend --database-url` and `Store::connect` take it.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Returns the test's own data directory, which contains the SQLite file on that backend.
    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// Returns `--data-dir DIR --database-url URL`, the store options of `tend` subcommands.
    pub fn store_args(&self) -> Vec<OsString> {
        vec![
            "--data-dir".into(),
            self.data_dir.path().into(),
            "--database-url".into(),
            self.url.clone().into(),
        ]
    }

    /// Opens a store on this database, applying the migrations.
    pub async fn connect(&self) -> anyhow::Result<Store> {
        Store::connect(&self.url).await.with_context(|| {
            format!(
                "failed to open the {} store at {}",
                self.backend,
                redact(&self.url)
            )
        })
    }

    /// Runs one SQL statement on a connection of its own, outside the store, as an operator
    /// with direct database access would. Returns the number of rows it affected.
    pub async fn execute(&self, sql: &str) -> anyhow::Result<u64> {
        let connection = Database::connect(quiet_options(&self.url))
            .await
            .with_context(|| format!("failed to connect to {}", redact(&self.url)))?;
        let result = connection.execute_unprepared(sql).await;
        let _ = connection.close().await;
        Ok(result
            .with_context(|| format!("failed to run `{sql}`"))?
            .rows_affected())
    }

    /// Drops the PostgreSQL database now and reports a failure, unlike the best-effort drop.
    /// The SQLite file goes with the data directory.
    pub async fn cleanup(mut self) -> anyhow::Result<()> {
        match self.postgres.take() {
            Some(database) => database.drop_database().await,
            None => Ok(()),
        }
    }
}

impl Drop for TestDatabase {
    /// Drops the PostgreSQL database, best effort. A thread with its own runtime runs the
    /// statement, because `drop` cannot await and may run inside the test's runtime.
    fn drop(&mut self) {
        let Some(database) = self.postgres.take() else {
            return;
        };
        let name = database.name.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(anyhow::Error::from)?;
            runtime.block_on(database.drop_database())
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(error)) => eprintln!("warning: {error:#}; drop it by hand"),
            Err(_) => {
                eprintln!("warning: dropping the test database {name} panicked; drop it by hand")
            }
        }
    }
}

impl PostgresDatabase {
    async fn drop_database(&self) -> anyhow::Result<()> {
        let admin = connect_admin(&self.admin_url).await?;
        // FORCE ends the connections that a killed `tend` child or a pool may have left.
        let result = admin
            .execute_unprepared(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await;
        let _ = admin.close().await;
        result.with_context(|| format!("failed to drop the test database {}", self.name))?;
        Ok(())
    }
}

async fn connect_admin(admin_url: &str) -> anyhow::Result<DatabaseConnection> {
    Database::connect(quiet_options(admin_url)).await.with_context(|| {
        format!(
            "PostgreSQL at {} is unreachable: start it, point {POSTGRES_URL_VAR} at a server \
             where the user may create databases, or set {SKIP_POSTGRES_VAR}=1 to test on SQLite only",
            redact(admin_url)
        )
    })
}

/// Builds options for one connection without statement logging, because these connections
/// run a single statement.
fn quiet_options(url: &str) -> ConnectOptions {
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(1)
        .min_connections(0)
        .connect_timeout(CONNECT_TIMEOUT)
        .sqlx_logging(false);
    options
}

/// Replaces the database name of a PostgreSQL URL (its last path segment) with `name`,
/// keeping the query string.
fn replace_database_name(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |at| at + 3);
    let server = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    }
}

/// Hides the password of a database URL in messages.
pub(crate) fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|at| at + 3) else {
        return url.to_owned();
    };
    let authority_end = url[scheme_end..]
        .find('/')
        .map_or(url.len(), |at| scheme_end + at);
    let authority = &url[scheme_end..authority_end];
    match authority.rsplit_once('@') {
        Some((credentials, host)) => match credentials.split_once(':') {
            Some((user, _)) => format!(
                "{}{user}:***@{host}{}",
                &url[..scheme_end],
                &url[authority_end..]
            ),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_name_is_replaced() {
        assert_eq!(
            replace_database_name("postgres://postgres@127.0.0.1:5432/test", "tend_it_1"),
            "postgres://postgres@127.0.0.1:5432/tend_it_1"
        );
        assert_eq!(
            replace_database_name("postgres://u@h/test?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
        assert_eq!(
            replace_database_name("postgres://u@h", "x"),
            "postgres://u@h/x"
        );
    }

    #[test]
    fn redact_hides_only_the_password() {
        assert_eq!(
            redact("postgres://ada:secret@db:5432/test"),
            "postgres://ada:***@db:5432/test"
        );
        assert_eq!(redact("postgres://ada@db/test"), "postgres://ada@db/test");
        assert_eq!(
            redact("sqlite:///tmp/x/tend.db?mode=rwc"),
            "sqlite:///tmp/x/tend.db?mode=rwc"
        );
    }

    #[test]
    fn sqlite_is_always_a_backend() {
        assert_eq!(backends().first(), Some(&Backend::Sqlite));
    }

    #[tokio::test]
    async fn sqlite_database_opens_and_runs_sql() {
        let database = TestDatabase::create(Backend::Sqlite).await.unwrap();
        let store = database.connect().await.unwrap();
        store.ping().await.unwrap();
        assert!(database.data_dir().join("tend.db").exists());
        assert_eq!(database.execute("DELETE FROM records").await.unwrap(), 0);
    }

    #[tokio::test]
    async fn postgres_database_is_created_and_dropped() {
        if !Backend::Postgres.enabled() {
            eprintln!("skipped: {SKIP_POSTGRES_VAR}=1");
            return;
        }
        let database = TestDatabase::create(Backend::Postgres).await.unwrap();
        let name = database.url().rsplit('/').next().unwrap().to_owned();
        assert!(name.starts_with("tend_it_"), "{name}");
        database.connect().await.unwrap().ping().await.unwrap();

        let admin_url = database.postgres.as_ref().unwrap().admin_url.clone();
        database.cleanup().await.unwrap();
        let admin = connect_admin(&admin_url).await.unwrap();
        let rows = admin
            .query_all_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                format!("SELECT 1 FROM pg_database WHERE datname = '{name}'"),
            ))
            .await
            .unwrap();
        assert!(
            rows.is_empty(),
            "database {name} still exists after cleanup"
        );
    }
}
