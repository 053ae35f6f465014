use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ci_keys")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub ci_id: i64,
    pub attribute: String,
    /// The value in lower case and trimmed; one row per item of a list.
    pub value: String,
    /// Class within which a unique value may occur once: the class declaring the attribute.
    pub scope: String,
    pub is_unique: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
