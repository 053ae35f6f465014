use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ci_discovered")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub ci_id: i64,
    /// Discovery source: `fusioninventory`, `glpi_agent` or `lshw`.
    pub source: String,
    pub attribute: String,
    /// The reported value as JSON.
    pub value: String,
    /// The value is a firmware placeholder, never written to the CI.
    pub placeholder: bool,
    pub reported_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
