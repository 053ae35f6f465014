use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // A link is directed: `source_id` is the record that names it with the link type's
        // label, `target_id` the one that names it with the inverse label. Deleting a record
        // deletes its links, like its journal.
        manager
            .create_table(
                Table::create()
                    .table("record_links")
                    .col(big_pk_auto("id"))
                    .col(big_integer("source_id"))
                    .col(big_integer("target_id"))
                    .col(text("link_type"))
                    .col(text("actor"))
                    .col(timestamp_with_time_zone("created_at"))
                    .foreign_key(&mut record_reference("fk_record_links_source", "source_id"))
                    .foreign_key(&mut record_reference("fk_record_links_target", "target_id"))
                    .to_owned(),
            )
            .await?;
        // The unique index also serves the lookup of a record's outgoing links, since it
        // starts with `source_id`; incoming links need their own index.
        manager
            .create_index(
                Index::create()
                    .name("idx_record_links_unique")
                    .table("record_links")
                    .col("source_id")
                    .col("target_id")
                    .col("link_type")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_record_links_target")
                    .table("record_links")
                    .col("target_id")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("record_links").to_owned())
            .await
    }
}

fn record_reference(name: &str, column: &'static str) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from("record_links", column)
        .to("records", "id")
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}
