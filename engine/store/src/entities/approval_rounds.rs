use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "approval_rounds")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub record_id: i64,
    /// Position among the rounds of the record, from 1.
    pub round: i64,
    pub transition: String,
    pub status: String,
    pub required: i64,
    pub total: i64,
    pub requested_by: String,
    pub requested_at: DateTimeUtc,
    pub due_at: Option<DateTimeUtc>,
    pub comment: Option<String>,
    pub escalated: bool,
    pub completed_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
