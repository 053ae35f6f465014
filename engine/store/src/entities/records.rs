use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "records")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub number: String,
    pub process: String,
    pub definition_version: String,
    pub state: String,
    pub title: String,
    pub description: String,
    /// JSON object of the process-specific fields.
    pub fields: String,
    /// JSON array of recommendations.
    pub recommendations: String,
    pub priority: Option<String>,
    pub assignee: Option<String>,
    pub assignment_group: Option<String>,
    pub requester: Option<String>,
    pub ci: Option<String>,
    pub is_open: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub state_changed_at: DateTimeUtc,
    pub revision: i64,
    /// Seq of the record's last journal entry, 0 when the journal is empty.
    pub journal_seq: i64,
    /// Hash of the record's last journal entry, empty when the journal is empty.
    pub journal_head: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
