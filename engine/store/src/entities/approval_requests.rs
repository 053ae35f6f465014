use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "approval_requests")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub round_id: i64,
    pub record_id: i64,
    pub approver: String,
    /// User names that may decide, as `,ann,bob,`.
    pub users: String,
    pub status: String,
    /// Whether the request went to an escalation approver after the deadline.
    pub escalation: bool,
    pub decided_by: Option<String>,
    pub reason: String,
    pub decided_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
