use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "action_runs")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub record_id: Option<i64>,
    pub record_number: Option<String>,
    /// Name of the schedule that queued the run, for runs without a record.
    pub schedule: Option<String>,
    pub plugin: String,
    pub action: String,
    /// Validated parameters, as a JSON object.
    pub params: String,
    pub actor: String,
    pub reason: Option<String>,
    /// `queued`, `running`, `succeeded`, `failed`, `timed_out` or `interrupted`.
    pub status: String,
    pub idempotent: bool,
    pub timeout_seconds: i64,
    pub attempts: i64,
    pub queued_at: DateTimeUtc,
    pub started_at: Option<DateTimeUtc>,
    pub finished_at: Option<DateTimeUtc>,
    pub lease_until: Option<DateTimeUtc>,
    pub node: Option<String>,
    pub duration_ms: Option<i64>,
    pub summary: Option<String>,
    pub output: Option<String>,
    /// Structured results of the plugin, as JSON.
    pub data: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
