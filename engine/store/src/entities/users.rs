use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub name: String,
    pub email: Option<String>,
    /// Comma-separated role names.
    pub roles: String,
    pub password_hash: String,
    pub active: bool,
    /// Whether the user gets notifications about changes they made themselves.
    pub notify_own_changes: bool,
    /// Language of the user's notifications, such as `fr`.
    pub locale: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
