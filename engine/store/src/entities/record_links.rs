use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "record_links")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Record that shows the link type's `label`.
    pub source_id: i64,
    /// Record that shows the link type's `inverse_label`.
    pub target_id: i64,
    pub link_type: String,
    pub actor: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
