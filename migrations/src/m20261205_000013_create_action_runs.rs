use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Runs of plugin actions, queued in the transaction that asked for them and run by
        // the workers of any node. `status` is `queued`, `running` (claimed by `node`
        // until `lease_until`, which the node's heartbeat pushes on), `succeeded`,
        // `failed`, `timed_out` or `interrupted` (its node stopped and the action is not
        // idempotent). A run belongs to a record, or to a schedule when `record_id` is
        // null.
        manager
            .create_table(
                Table::create()
                    .table("action_runs")
                    .col(big_pk_auto("id"))
                    .col(big_integer_null("record_id"))
                    .col(text_null("record_number"))
                    .col(text_null("schedule"))
                    .col(text("plugin"))
                    .col(text("action"))
                    .col(text("params"))
                    .col(text("actor"))
                    .col(text_null("reason"))
                    .col(text("status"))
                    .col(boolean("idempotent"))
                    .col(big_integer("timeout_seconds"))
                    .col(big_integer("attempts").default(0))
                    .col(timestamp_with_time_zone("queued_at"))
                    .col(timestamp_with_time_zone_null("started_at"))
                    .col(timestamp_with_time_zone_null("finished_at"))
                    .col(timestamp_with_time_zone_null("lease_until"))
                    .col(text_null("node"))
                    .col(big_integer_null("duration_ms"))
                    .col(text_null("summary"))
                    .col(text_null("output"))
                    .col(text_null("data"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_action_runs_record")
                            .from("action_runs", "record_id")
                            .to("records", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // Workers claim queued runs in id order, and find running runs whose lease ran out.
        for (name, columns) in [
            ("idx_action_runs_status_id", ["status", "id"]),
            ("idx_action_runs_status_lease", ["status", "lease_until"]),
            ("idx_action_runs_record", ["record_id", "id"]),
        ] {
            let mut index = Index::create();
            index.name(name).table("action_runs");
            for column in columns {
                index.col(column);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("action_runs").to_owned())
            .await
    }
}
