use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sla_clocks")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub record_id: i64,
    pub policy: String,
    pub target: String,
    /// `sla`, `ola` or `underpinning_contract`.
    pub kind: String,
    pub process: String,
    pub priority: Option<String>,
    pub assignment_group: Option<String>,
    /// `running`, `paused` or `stopped`.
    pub phase: String,
    pub started_at: DateTimeUtc,
    pub due_at: Option<DateTimeUtc>,
    pub stopped_at: Option<DateTimeUtc>,
    pub target_seconds: i64,
    pub elapsed_seconds: i64,
    pub breached: bool,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
