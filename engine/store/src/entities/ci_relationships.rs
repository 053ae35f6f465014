use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ci_relationships")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Relationship type, from `workflows/cmdb/relationships.yaml`.
    pub kind: String,
    pub source_id: i64,
    pub target_id: i64,
    pub created_by: String,
    /// `person`, `import` or `rule`.
    pub created_via: String,
    pub created_at: DateTimeUtc,
    pub retired_at: Option<DateTimeUtc>,
    pub retired_by: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
