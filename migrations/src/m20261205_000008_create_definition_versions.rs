use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One row per definition set a server has loaded, keyed by its content hash, so
        // that a record pinned to an older version can be decided against that version.
        // `files` is a JSON object that maps each file's path, relative to the
        // definitions directory, to its text.
        manager
            .create_table(
                Table::create()
                    .table("definition_versions")
                    .col(string("version").primary_key())
                    .col(timestamp_with_time_zone("loaded_at"))
                    .col(text("files"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("definition_versions").to_owned())
            .await
    }
}
