//! The store of Tend: records, their hash-chained journal, users, API tokens and web
//! sessions, over SQLite (one file, WAL mode) or PostgreSQL.
//!
//! Reads go straight to the connection pool. Every write goes through `Store::write`, which
//! queues a job for the one writer task of this process (see `writer`). Write jobs receive a
//! `&DatabaseTransaction` and call the free functions of this crate, such as
//! [`insert_record`] and [`update_record`].
//!
//! Layout: `records` (record writes and reads), `listing` (filtered, paged lists),
//! `cmdb` (configuration items, their versions and relationships), `impact` (walks over
//! CI relationships),
//! `links` (typed links between records), `timers` (automatic transitions due later),
//! `schedules` (what became of each due time of a cron schedule), `mail` (inbound
//! messages kept raw, and attachments), `versions` (the files of
//! each loaded definition set), `journal` (hash chain) and `audit` (verification
//! and checkpoints). `identity` (users and passwords), `credentials` (API tokens and
//! sessions), `writer` (the write funnel), `entities` (sea-orm table models) and `testing`
//! (fresh databases for tests).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait,
};
use tend_migrations::{Migrator, MigratorTrait};

pub mod action_runs;
pub mod alerts;
pub mod approvals;
mod audit;
pub mod clocks;
pub mod cmdb;
pub mod cmdb_audit;
mod credentials;
pub mod entities;
mod error;
pub mod follow_ons;
mod identity;
pub mod impact;
pub mod inventory;
mod journal;
mod links;
mod listing;
pub mod mail;
pub mod outbox;
mod records;
pub mod schedules;
#[cfg(feature = "testing")]
pub mod testing;
mod timers;
mod versions;
mod writer;

pub use audit::{AuditProblem, AuditReport, CheckpointHead, ProblemKind};
pub use credentials::{TOKEN_PREFIX, sha256_hex};
pub use error::{Error, Result};
pub use identity::{User, user_with_email, users_named};
pub use journal::{entry_hash, read_journal};
pub use links::{LinkDirection, LinkView, insert_link, link_records};
pub use listing::{MAX_LIMIT, RecordFilter, RecordPage};
pub use records::{
    append_journal, find_idempotent, insert_record, insert_record_journaled,
    load_record_for_update, save_idempotent, update_record, update_record_journaled,
};
pub use sea_orm::DatabaseTransaction as Transaction;
pub use timers::{
    DueTimer, PlannedTimer, SLA_TIMER, SlaTimer, TRANSITION_TIMER, consume_timer, due_timers,
    replace_sla_timers, replace_timers,
};
pub use versions::{RecordScan, StoredVersion, save_definition_version};
pub use writer::{BoxFuture, MAX_BATCH, WriterStats};

/// How long a SQLite connection waits for another process's write lock before failing.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Maximum pooled connections, shared by reads and the writer task.
const MAX_CONNECTIONS: u32 = 16;

/// Key of the PostgreSQL advisory lock that serializes migrations of nodes starting at once.
const MIGRATION_LOCK_KEY: i64 = 0x7465_6e64_6d69_6772; // "tendmigr"

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Handle on the database. Cloning is cheap, and every clone shares the pool and the writer.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    db: DatabaseConnection,
    backend: Backend,
    writer: writer::Writer,
}

impl Store {
    /// Connects to `url` (`sqlite://PATH?mode=rwc` or `postgres://…`) and applies pending
    /// migrations. SQLite connections use WAL mode, a busy timeout, `synchronous=NORMAL`
    /// (durable in WAL mode except for the last commits on power loss) and foreign keys.
    pub async fn connect(url: &str) -> Result<Store, Error> {
        let backend = backend_of(url)?;
        // Each connection to an in-memory SQLite database opens its own empty database, so
        // such a store must share one connection between the writer and the readers.
        let in_memory =
            backend == Backend::Sqlite && (url.contains(":memory:") || url.contains("mode=memory"));
        let options = connect_options(url, if in_memory { 1 } else { MAX_CONNECTIONS });
        let db = Database::connect(options).await?;
        migrate(&db).await?;

        let writer = writer::Writer::start(db.clone());
        Ok(Store {
            inner: Arc::new(Inner {
                db,
                backend,
                writer,
            }),
        })
    }

    /// Opens one connection with the store's settings and without migrating, for running
    /// `tend_migrations::Migrator` commands (`down`, `fresh`, `reset`) by hand. Use it rather
    /// than a pool: each SQLite connection caches the schema, and a pooled connection that
    /// missed a `DROP` can reject the next `CREATE INDEX` as a duplicate.
    pub async fn migration_connection(url: &str) -> Result<DatabaseConnection, Error> {
        backend_of(url)?;
        Ok(Database::connect(connect_options(url, 1)).await?)
    }

    /// Returns the URL of the SQLite database `tend.db` in `data_dir`, creating the
    /// directory. When the directory cannot be created, the failure is logged and `connect`
    /// then fails on the URL.
    pub fn sqlite_url(data_dir: &Path) -> String {
        if let Err(error) = std::fs::create_dir_all(data_dir) {
            tracing::error!(%error, path = %data_dir.display(), "failed to create the data directory");
        }
        format!("sqlite://{}?mode=rwc", data_dir.join("tend.db").display())
    }

    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// The connection pool, for reads that this crate has no function for.
    pub fn db(&self) -> &DatabaseConnection {
        &self.inner.db
    }

    /// Checks that the database responds.
    pub async fn ping(&self) -> Result<(), Error> {
        Ok(self.inner.db.ping().await?)
    }

    /// Runs `job` through the write funnel and returns its result once its batch committed.
    ///
    /// The job gets its own savepoint: when it returns an error (for example
    /// `Error::rejected(…)` for a domain-level refusal) only its own changes roll back. Jobs
    /// run one after the other on one connection, so a job must not wait for anything but
    /// its own database work.
    ///
    /// ```no_run
    /// # async fn example(
    /// #     store: tend_store::Store,
    /// #     record: tend_domain::Record,
    /// #     events: Vec<tend_domain::JournalEvent>,
    /// # ) -> Result<(), tend_store::Error> {
    /// let stored = store
    ///     .write(move |tx| {
    ///         Box::pin(async move { tend_store::update_record(tx, &record, "ada", &events).await })
    ///     })
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn write<T, F>(&self, job: F) -> Result<T, Error>
    where
        F: for<'t> FnOnce(&'t DatabaseTransaction) -> BoxFuture<'t, Result<T, Error>>
            + Send
            + 'static,
        T: Send + 'static,
    {
        self.inner.writer.write(job).await
    }

    /// Returns how many batches and jobs the writer ran since the store was opened.
    pub fn writer_stats(&self) -> WriterStats {
        self.inner.writer.stats()
    }
}

fn backend_of(url: &str) -> Result<Backend, Error> {
    if url.starts_with("sqlite:") {
        Ok(Backend::Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Backend::Postgres)
    } else {
        Err(Error::Invalid(format!(
            "invalid database URL `{url}`: use sqlite://PATH?mode=rwc or postgres://USER@HOST/DATABASE"
        )))
    }
}

fn connect_options(url: &str, max_connections: u32) -> ConnectOptions {
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(max_connections)
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|options| {
            options
                .journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(SQLITE_BUSY_TIMEOUT)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
        });
    options
}

/// Applies pending migrations in one transaction, so that they run on one connection and
/// a failed migration leaves no half-made schema. Processes starting together migrate one
/// after the other: SQLite's `BEGIN IMMEDIATE` and PostgreSQL's advisory lock serialize them,
/// and the later ones find nothing pending.
async fn migrate(db: &DatabaseConnection) -> Result<(), Error> {
    let backend = db.get_database_backend();
    let mut options = TransactionOptions::default();
    if backend == DbBackend::Sqlite {
        options.sqlite_transaction_mode = Some(SqliteTransactionMode::Immediate);
    }
    let tx = db.begin_with_options(options).await?;
    if backend == DbBackend::Postgres {
        tx.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock($1)",
            [MIGRATION_LOCK_KEY.into()],
        ))
        .await?;
    }
    Migrator::up(&tx, None).await?;
    tx.commit().await?;
    Ok(())
}

/// Returns the current time truncated to microseconds, the precision that PostgreSQL stores,
/// so that times read back equal the times written on both backends.
pub fn now() -> DateTime<Utc> {
    truncate(Utc::now())
}

pub(crate) fn truncate(time: DateTime<Utc>) -> DateTime<Utc> {
    time.duration_trunc(TimeDelta::microseconds(1))
        .unwrap_or(time)
}
