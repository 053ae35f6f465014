use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One row per alert of a monitoring system, keyed by the source (the file name in
        // workflows/alerts/) and the alert's fingerprint. It is written before the alert
        // acts on a record, so that a repeated delivery finds the record of the first one.
        // `status` is the last status received (`firing` or `resolved`); `count` counts the
        // firing deliveries; `episode` grows each time the alert opens a new record.
        // `record_number` is the record the alert lives on: the one it opened, or the
        // change whose window it fell into. `last_note_at` limits the notes of an alert
        // that keeps firing; `resolved_at` starts the `reopen_within` window.
        manager
            .create_table(
                Table::create()
                    .table("alerts")
                    .col(big_pk_auto("id"))
                    .col(text("source"))
                    .col(text("fingerprint"))
                    .col(text("alertname"))
                    .col(text("status"))
                    .col(timestamp_with_time_zone("first_seen"))
                    .col(timestamp_with_time_zone("last_seen"))
                    .col(big_integer("count").default(0))
                    .col(big_integer("episode").default(1))
                    .col(text_null("record_number"))
                    .col(text_null("effect"))
                    .col(timestamp_with_time_zone_null("last_note_at"))
                    .col(timestamp_with_time_zone_null("resolved_at"))
                    .col(text("last_payload"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_alerts_source_fingerprint")
                    .table("alerts")
                    .col("source")
                    .col("fingerprint")
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("alerts").to_owned())
            .await
    }
}
