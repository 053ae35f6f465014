use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "mail_messages")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Name of the mailbox of `workflows/mailboxes/` the message was delivered to.
    pub mailbox: String,
    /// How it arrived: `gateway` (an MTA pipe) or `http`.
    pub source: String,
    pub received_at: DateTimeUtc,
    pub message_id: Option<String>,
    /// The Message-ID, or `sha256-HEX@generated.invalid` without one; unique.
    pub dedup_key: String,
    pub raw_sha256: String,
    pub raw_size: i64,
    pub raw: Vec<u8>,
    /// The requester address, lower case, for the per-sender rate limit.
    pub from_address: Option<String>,
    pub subject: Option<String>,
    /// `received`, `processed`, `robot`, `quarantined` or `rejected`.
    pub status: String,
    pub reason: Option<String>,
    pub record_id: Option<i64>,
    pub record_number: Option<String>,
    /// `created`, `commented`, `reopened`, `follow_up`, `linked` or `noted`.
    pub effect: Option<String>,
    /// Parse warnings, as a JSON array of strings.
    pub warnings: String,
    /// How often processing was tried.
    pub attempts: i64,
    pub processed_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
