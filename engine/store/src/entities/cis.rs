use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "cis")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub class: String,
    pub name: String,
    /// `name` in lower case, for lookups that ignore case.
    pub name_key: String,
    pub status: String,
    /// JSON object of the class's attributes.
    pub attributes: String,
    /// Number of the CI's last version in `ci_versions`.
    pub version: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub retired_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
