use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Work that a write leaves for after its commit: the follow-ons its rules asked for
        // and the reactions of linked records. The row is written in the same transaction
        // and deleted once the work is done, so work a stopped node left behind is found.
        manager
            .create_table(
                Table::create()
                    .table("follow_ons")
                    .col(big_pk_auto("id"))
                    .col(big_integer("record_id"))
                    .col(text("payload"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone_null("claimed_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_follow_ons_record")
                            .from("follow_ons", "record_id")
                            .to("records", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_follow_ons_created_at")
                    .table("follow_ons")
                    .col("created_at")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("follow_ons").to_owned())
            .await
    }
}
