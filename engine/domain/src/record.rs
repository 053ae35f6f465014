use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Recommendation;

/// Process-specific field values of a record, keyed by the field names of its definition.
pub type Fields = serde_json::Map<String, Value>;

/// Fields that the store mirrors into indexed columns so that lists and sweeps use an index.
/// They stay in `fields` too, which remains the one source of truth.
pub const CORE_COLUMNS: [&str; 5] = [
    "priority",
    "assignee",
    "assignment_group",
    "requester",
    "ci",
];

/// One ticket of a process, in the form the engine works on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Store id; 0 until the record is inserted.
    pub id: i64,
    /// Human-facing number such as `INC0000042`; empty until the store allocates it.
    pub number: String,
    pub process: String,
    /// Content hash of the definition set the record started with.
    pub definition_version: String,
    pub state: String,
    /// Whether the state counts as open work; set by the engine from the definition so
    /// that the store can index open records without knowing definitions.
    pub open: bool,
    pub title: String,
    pub description: String,
    pub fields: Fields,
    /// Tools the rules suggest for this record, newest set last applied.
    pub recommendations: Vec<Recommendation>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the record entered its current state; reply policies count from it.
    pub state_changed_at: DateTime<Utc>,
    /// Optimistic-lock counter, increased by every write.
    pub revision: i64,
}

impl Record {
    pub fn field_str(&self, name: &str) -> Option<&str> {
        self.fields.get(name).and_then(Value::as_str)
    }
}
