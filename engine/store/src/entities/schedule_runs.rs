use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "schedule_runs")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Name of the schedule in `workflows/schedules/`.
    pub schedule: String,
    /// The due time; unique per schedule.
    pub due_at: DateTimeUtc,
    /// `claimed`, `opened`, `ran`, `failed`, `skipped` or `started`.
    pub outcome: String,
    pub record_number: Option<String>,
    /// When a node took the run, or took it over from a node that stopped.
    pub ran_at: DateTimeUtc,
    pub late: bool,
    pub missed: i64,
    /// The expression and time zone the due time was computed with.
    pub cron: String,
    pub timezone: String,
    pub error: Option<String>,
    /// What a run of a `run_rule` schedule did.
    pub summary: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
