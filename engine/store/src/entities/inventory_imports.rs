use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "inventory_imports")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub received_at: DateTimeUtc,
    pub source: String,
    pub device_id: Option<String>,
    pub actor: String,
    /// `created`, `updated`, `unchanged`, `conflict` or `rejected`.
    pub outcome: String,
    pub ci_id: Option<i64>,
    pub item_name: Option<String>,
    /// The import's plan: what it changed, as JSON.
    pub summary: String,
    /// Why a conflict or a rejected document was not applied.
    pub message: Option<String>,
    pub sha256: String,
    /// The document as received, kept for conflicts and rejections only.
    pub document: Option<Vec<u8>>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
