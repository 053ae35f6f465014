use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "timers")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub record_id: i64,
    /// Transition the system takes when the timer fires.
    pub transition: String,
    pub due_at: DateTimeUtc,
    /// When the record entered the state that planned the timer.
    pub state_changed_at: DateTimeUtc,
    pub created_at: DateTimeUtc,
    /// `transition`, or `sla` for the next threshold of a clock.
    pub kind: String,
    /// JSON that describes an `sla` timer: policy, target, percent and target minutes.
    pub detail: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
