use sea_orm::{DbErr, SqlErr};

/// Errors of the store. Messages are sentences that name the value and, where there is one,
/// the fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database error: {0}")]
    Database(#[from] DbErr),

    #[error("{what} `{key}` was not found")]
    NotFound { what: &'static str, key: String },

    #[error(
        "record {number} was changed by another writer (expected revision {expected}, found {found}); reload it and retry"
    )]
    Conflict {
        number: String,
        expected: i64,
        found: i64,
    },

    /// The timer a write was to fire is gone: another node fired it, or a write replaced
    /// it. The write is rolled back so that the timer's effect is not applied twice.
    #[error("timer {id} was already fired or replaced; nothing was written")]
    TimerGone { id: i64 },

    /// A unique CI attribute already has this value on another CI that is not retired.
    #[error(
        "attribute `{attribute}` value `{value}` is already used by CI {ci_id} ({ci_name}); use another value, or change or retire CI {ci_id}"
    )]
    AttributeTaken {
        attribute: String,
        value: String,
        ci_id: i64,
        ci_name: String,
    },

    #[error(
        "CI {id} was changed by another writer (expected version {expected}, found {found}); reload it and retry"
    )]
    CiConflict { id: i64, expected: i64, found: i64 },

    #[error("{what} `{key}` already exists; choose another {what}")]
    Duplicate { what: &'static str, key: String },

    /// A write job aborted its own work; the store rolled back that job only.
    #[error("{0}")]
    Rejected(Box<dyn std::error::Error + Send + Sync>),

    #[error("{0}")]
    Invalid(String),

    #[error("stored {what} is unreadable: {detail}")]
    Corrupt { what: String, detail: String },

    #[error("the store's writer has stopped, so the write was not done; restart the server")]
    Closed,

    #[error("the write job panicked, so its changes were rolled back: {0}")]
    JobPanicked(String),

    #[error(
        "the transaction holding this write failed, so nothing was saved; retry the request: {0}"
    )]
    CommitFailed(String),

    #[error("password hashing failed: {0}")]
    Password(String),
}

impl Error {
    /// Wraps a caller's own error so that a write job can abort without failing its batch.
    pub fn rejected(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Error::Rejected(error.into())
    }

    pub(crate) fn corrupt(what: impl Into<String>, detail: impl ToString) -> Self {
        Error::Corrupt {
            what: what.into(),
            detail: detail.to_string(),
        }
    }

    /// Maps a unique-constraint violation to `Duplicate`, and any other error to `Database`.
    pub(crate) fn from_insert(error: DbErr, what: &'static str, key: &str) -> Self {
        match error.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => Error::Duplicate {
                what,
                key: key.to_owned(),
            },
            _ => Error::Database(error),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
