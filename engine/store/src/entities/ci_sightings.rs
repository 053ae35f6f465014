use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ci_sightings")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub ci_id: i64,
    pub source: String,
    /// The agent's device id from the last document, which partial documents name.
    pub device_id: Option<String>,
    pub first_seen_at: DateTimeUtc,
    pub last_seen_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
