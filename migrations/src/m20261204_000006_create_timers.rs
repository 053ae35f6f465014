use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // A timer takes `transition` on its record at `due_at`, unless the record has left
        // the state it entered at `state_changed_at`. Deleting a record deletes its timers.
        manager
            .create_table(
                Table::create()
                    .table("timers")
                    .col(big_pk_auto("id"))
                    .col(big_integer("record_id"))
                    .col(text("transition"))
                    .col(timestamp_with_time_zone("due_at"))
                    .col(timestamp_with_time_zone("state_changed_at"))
                    .col(timestamp_with_time_zone("created_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_timers_record")
                            .from("timers", "record_id")
                            .to("records", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_timers_due_at")
                    .table("timers")
                    .col("due_at")
                    .to_owned(),
            )
            .await?;
        // Replacing a record's timers deletes by `record_id`.
        manager
            .create_index(
                Index::create()
                    .name("idx_timers_record_id")
                    .table("timers")
                    .col("record_id")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("timers").to_owned())
            .await
    }
}
