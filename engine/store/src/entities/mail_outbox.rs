use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "mail_outbox")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub record_id: Option<i64>,
    pub record_number: String,
    pub mailbox: String,
    /// The notification event, such as `on_create`.
    pub event: String,
    pub template: String,
    pub recipient: String,
    pub from_address: String,
    pub from_name: Option<String>,
    pub reply_to: Option<String>,
    pub subject: String,
    pub text_body: String,
    pub html_body: Option<String>,
    /// Without angle brackets.
    pub message_id: String,
    pub in_reply_to: Option<String>,
    /// Space-separated Message-IDs, without angle brackets, oldest first.
    pub message_references: String,
    /// `auto-replied`, `auto-generated` or `personal`.
    pub kind: String,
    /// `queued`, `sent`, `suppressed` or `failed`.
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: DateTimeUtc,
    pub last_error: Option<String>,
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub sent_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
