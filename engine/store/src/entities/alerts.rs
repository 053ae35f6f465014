use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "alerts")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Name of the alert source of `workflows/alerts/`.
    pub source: String,
    /// The sender's fingerprint, or one made from the sorted labels.
    pub fingerprint: String,
    pub alertname: String,
    /// `firing` or `resolved`: the last status received.
    pub status: String,
    pub first_seen: DateTimeUtc,
    pub last_seen: DateTimeUtc,
    /// Firing deliveries received.
    pub count: i64,
    /// Grows each time the alert opens a new record.
    pub episode: i64,
    pub record_number: Option<String>,
    /// Effect of the last delivery: `created`, `updated`, `noted`, `resolved`, `reopened`,
    /// `suppressed` or `ignored`.
    pub effect: Option<String>,
    pub last_note_at: Option<DateTimeUtc>,
    pub resolved_at: Option<DateTimeUtc>,
    /// The last alert received, as JSON.
    pub last_payload: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
