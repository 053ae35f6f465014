use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // A round asks approvers whether a record may take `transition`. `round` counts
        // the rounds of one record from 1. `due_at` is set while the round waits for a
        // deadline, and cleared once the deadline has been handled.
        manager
            .create_table(
                Table::create()
                    .table("approval_rounds")
                    .col(big_pk_auto("id"))
                    .col(big_integer("record_id"))
                    .col(big_integer("round"))
                    .col(text("transition"))
                    .col(text("status"))
                    .col(big_integer("required"))
                    .col(big_integer("total"))
                    .col(text("requested_by"))
                    .col(timestamp_with_time_zone("requested_at"))
                    .col(timestamp_with_time_zone_null("due_at"))
                    .col(text_null("comment"))
                    .col(boolean("escalated").default(false))
                    .col(timestamp_with_time_zone_null("completed_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_approval_rounds_record")
                            .from("approval_rounds", "record_id")
                            .to("records", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_approval_rounds_record_round")
                    .table("approval_rounds")
                    .col("record_id")
                    .col("round")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_approval_rounds_due_at")
                    .table("approval_rounds")
                    .col("due_at")
                    .to_owned(),
            )
            .await?;
        // One vote of a round. `users` lists who may cast it as `,ann,bob,`, so that a
        // person's open requests are found with one LIKE on pending rows.
        manager
            .create_table(
                Table::create()
                    .table("approval_requests")
                    .col(big_pk_auto("id"))
                    .col(big_integer("round_id"))
                    .col(big_integer("record_id"))
                    .col(text("approver"))
                    .col(text("users"))
                    .col(text("status"))
                    .col(boolean("escalation").default(false))
                    .col(text_null("decided_by"))
                    .col(text("reason").default(""))
                    .col(timestamp_with_time_zone_null("decided_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_approval_requests_round")
                            .from("approval_requests", "round_id")
                            .to("approval_rounds", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_approval_requests_round_id")
                    .table("approval_requests")
                    .col("round_id")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_approval_requests_status")
                    .table("approval_requests")
                    .col("status")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("approval_requests").to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table("approval_rounds").to_owned())
            .await
    }
}
