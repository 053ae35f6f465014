//! The write funnel. One task takes queued write jobs and runs up to `MAX_BATCH` of them in
//! one transaction, each inside its own savepoint, and commits them together (group commit).
//! A job that fails rolls back to its savepoint alone; the other jobs of the batch still
//! commit. Results reach the callers only after the commit, so no caller sees a write that
//! could still be lost.
//!
//! On SQLite this is what turns many concurrent requests into a few commits instead of
//! "database is locked" errors. On PostgreSQL it saves commits (and fsyncs) too; several
//! server nodes each have their own funnel, and row locks order them.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use sea_orm::{
    DatabaseConnection, DatabaseTransaction, DbBackend, SqliteTransactionMode, TransactionOptions,
    TransactionTrait,
};
use tokio::sync::{mpsc, oneshot};

use crate::Error;

/// A boxed, sendable future, the return type of write jobs.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Upper bound of jobs that share one transaction. It bounds how long the write lock is held
/// and how much work one failed commit throws away.
pub const MAX_BATCH: usize = 64;

/// Jobs waiting beyond this many make `write` wait for room, which pushes back on callers.
const QUEUE_CAPACITY: usize = 4096;

/// The handle that queues jobs for the writer task. The task ends when every handle is
/// dropped, after it has run the jobs already queued.
#[derive(Clone)]
pub(crate) struct Writer {
    queue: mpsc::Sender<Box<dyn Job>>,
    counters: Arc<Counters>,
}

/// Counts of the writer's work since the store was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriterStats {
    /// Transactions that the writer committed or tried to commit.
    pub batches: u64,
    /// Jobs that ran, whatever their result.
    pub jobs: u64,
}

#[derive(Default)]
struct Counters {
    batches: AtomicU64,
    jobs: AtomicU64,
}

impl Writer {
    pub(crate) fn start(db: DatabaseConnection) -> Writer {
        let (queue, jobs) = mpsc::channel(QUEUE_CAPACITY);
        let counters = Arc::new(Counters::default());
        tokio::spawn(run(db, jobs, counters.clone()));
        Writer { queue, counters }
    }

    pub(crate) fn stats(&self) -> WriterStats {
        WriterStats {
            batches: self.counters.batches.load(Ordering::Relaxed),
            jobs: self.counters.jobs.load(Ordering::Relaxed),
        }
    }

    pub(crate) async fn write<T, F>(&self, job: F) -> Result<T, Error>
    where
        F: for<'t> FnOnce(&'t DatabaseTransaction) -> BoxFuture<'t, Result<T, Error>>
            + Send
            + 'static,
        T: Send + 'static,
    {
        let (reply, result) = oneshot::channel();
        let job = Box::new(TypedJob { job, reply });
        self.queue.send(job).await.map_err(|_| Error::Closed)?;
        result.await.map_err(|_| Error::Closed)?
    }
}

async fn run(
    db: DatabaseConnection,
    mut jobs: mpsc::Receiver<Box<dyn Job>>,
    counters: Arc<Counters>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while jobs.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let size = batch.len();
        // Counted before the run, so that a caller with its result finds its batch counted.
        counters.batches.fetch_add(1, Ordering::Relaxed);
        counters.jobs.fetch_add(size as u64, Ordering::Relaxed);
        run_batch(&db, std::mem::take(&mut batch)).await;
        tracing::trace!(jobs = size, "store.writer finished a batch");
    }
    tracing::debug!("store.writer stopped: every store handle was dropped");
}

async fn run_batch(db: &DatabaseConnection, jobs: Vec<Box<dyn Job>>) {
    let transaction = match begin(db).await {
        Ok(transaction) => transaction,
        Err(error) => {
            tracing::error!(%error, jobs = jobs.len(), "store.writer failed to begin a transaction");
            let message = error.to_string();
            for job in jobs {
                job.fail(Error::CommitFailed(message.clone()));
            }
            return;
        }
    };

    let mut finished = Vec::with_capacity(jobs.len());
    for job in jobs {
        let savepoint = match transaction.begin().await {
            Ok(savepoint) => savepoint,
            Err(error) => {
                job.fail(Error::Database(error));
                continue;
            }
        };
        let outcome = job.run(&savepoint).await;
        let closed = if outcome.succeeded {
            savepoint.commit().await
        } else {
            savepoint.rollback().await
        };
        match closed {
            Ok(()) => finished.push(outcome),
            Err(error) => {
                tracing::error!(%error, "store.writer failed to close a savepoint");
                (outcome.deliver)(Some(Error::Database(error)));
            }
        }
    }

    match transaction.commit().await {
        Ok(()) => {
            for outcome in finished {
                (outcome.deliver)(None);
            }
        }
        Err(error) => {
            tracing::error!(%error, jobs = finished.len(), "store.writer failed to commit a batch");
            let message = error.to_string();
            for outcome in finished {
                (outcome.deliver)(Some(Error::CommitFailed(message.clone())));
            }
        }
    }
}

/// Begins the batch transaction. SQLite starts it with `BEGIN IMMEDIATE` so that the write
/// lock is taken up front: a deferred transaction that upgrades from read to write fails at
/// once with SQLITE_BUSY instead of waiting for the busy timeout.
async fn begin(db: &DatabaseConnection) -> Result<DatabaseTransaction, sea_orm::DbErr> {
    let mut options = TransactionOptions::default();
    if db.get_database_backend() == DbBackend::Sqlite {
        options.sqlite_transaction_mode = Some(SqliteTransactionMode::Immediate);
    }
    db.begin_with_options(options).await
}

/// Result of a job that ran: whether to keep its savepoint, and the function that sends its
/// result to the caller once the batch committed or failed (`Some(error)` replaces a success).
struct Outcome {
    succeeded: bool,
    deliver: Box<dyn FnOnce(Option<Error>) + Send>,
}

/// A write job with its result type erased, so that jobs of any type share one queue.
trait Job: Send {
    fn run<'t>(self: Box<Self>, transaction: &'t DatabaseTransaction) -> BoxFuture<'t, Outcome>;
    fn fail(self: Box<Self>, error: Error);
}

struct TypedJob<T, F> {
    job: F,
    reply: oneshot::Sender<Result<T, Error>>,
}

impl<T, F> Job for TypedJob<T, F>
where
    F: for<'t> FnOnce(&'t DatabaseTransaction) -> BoxFuture<'t, Result<T, Error>> + Send + 'static,
    T: Send + 'static,
{
    fn run<'t>(self: Box<Self>, transaction: &'t DatabaseTransaction) -> BoxFuture<'t, Outcome> {
        let TypedJob { job, reply } = *self;
        Box::pin(async move {
            // The job is called inside the guarded future, so a panic in its synchronous
            // part is caught as well as one in its async body.
            let guarded: BoxFuture<'t, Result<T, Error>> =
                Box::pin(async move { job(transaction).await });
            let result = match CatchUnwind(guarded).await {
                Ok(result) => result,
                Err(panic) => {
                    let message = panic_message(panic.as_ref());
                    tracing::error!(panic = %message, "store.writer job panicked");
                    Err(Error::JobPanicked(message))
                }
            };
            Outcome {
                succeeded: result.is_ok(),
                deliver: Box::new(move |failure: Option<Error>| {
                    let result = match (result, failure) {
                        (Ok(_), Some(error)) => Err(error),
                        (result, _) => result,
                    };
                    // The caller may have stopped waiting; its result is then dropped.
                    let _ = reply.send(result);
                }),
            }
        })
    }

    fn fail(self: Box<Self>, error: Error) {
        let _ = self.reply.send(Err(error));
    }
}

/// Polls a future and turns a panic inside it into an error, so that one bad job cannot
/// stop the writer task.
struct CatchUnwind<F>(F);

impl<F: Future + Unpin> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Box<dyn Any + Send>>;

    fn poll(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.0;
        match std::panic::catch_unwind(AssertUnwindSafe(|| Pin::new(inner).poll(context))) {
            Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".to_owned()
    }
}
