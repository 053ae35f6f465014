use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Deleting a record deletes its journal (cascade), which also lets sea-orm-migration's
        // `fresh` drop the tables in any order on SQLite. The store never deletes records, and
        // the audit reports a record deleted after the last checkpoint.
        manager
            .create_table(
                Table::create()
                    .table("journal")
                    .col(big_pk_auto("id"))
                    .col(big_integer("record_id"))
                    .col(big_integer("seq"))
                    .col(timestamp_with_time_zone("at"))
                    .col(text("actor"))
                    .col(text("kind"))
                    .col(text("body"))
                    .col(text("prev_hash"))
                    .col(text("hash"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_journal_record")
                            .from("journal", "record_id")
                            .to("records", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_journal_record_seq")
                    .table("journal")
                    .col("record_id")
                    .col("seq")
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("audit_checkpoints")
                    .col(big_pk_auto("id"))
                    .col(timestamp_with_time_zone("at"))
                    .col(text("heads"))
                    .col(text("prev_hash"))
                    .col(text("hash"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("audit_checkpoints").to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table("journal").to_owned())
            .await
    }
}
