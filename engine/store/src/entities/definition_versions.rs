use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "definition_versions")]
pub struct Model {
    /// Content hash of the definition set, as records store it in `definition_version`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub version: String,
    /// When a server first loaded the set.
    pub loaded_at: DateTimeUtc,
    /// JSON object that maps each file's path, relative to the definitions directory, to
    /// its text.
    pub files: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
