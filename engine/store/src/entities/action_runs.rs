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
    /// `awaiting_approval`, `queued`, `running`, `succeeded`, `failed`, `timed_out`,
    /// `interrupted`, `rejected` or `expired`.
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
    /// Start of the window the run may start in (the approved change's window).
    pub not_before: Option<DateTimeUtc>,
    /// End of that window: a run still queued then is expired.
    pub not_after: Option<DateTimeUtc>,
    /// The approver of the run, or `change:NUMBER` for a run on an authorised change.
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTimeUtc>,
    pub decision_note: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
