use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Timers gain a kind: `transition` (an automatic transition, as before) or `sla`
        // (the next threshold of a clock, described by `detail` as JSON). SQLite adds one
        // column per statement.
        manager
            .alter_table(
                Table::alter()
                    .table("timers")
                    .add_column(text("kind").default("transition"))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("timers")
                    .add_column(text_null("detail"))
                    .to_owned(),
            )
            .await?;
        // The clocks of open and closed records as of their last write: the index that
        // the breaching-soon list and the SLA reports read. The journal stays the source
        // of truth; a row is rewritten whenever its record is.
        manager
            .create_table(
                Table::create()
                    .table("sla_clocks")
                    .col(big_pk_auto("id"))
                    .col(big_integer("record_id"))
                    .col(text("policy"))
                    .col(text("target"))
                    .col(text("kind"))
                    .col(text("process"))
                    .col(text_null("priority"))
                    .col(text_null("assignment_group"))
                    .col(text("phase"))
                    .col(timestamp_with_time_zone("started_at"))
                    .col(timestamp_with_time_zone_null("due_at"))
                    .col(timestamp_with_time_zone_null("stopped_at"))
                    .col(big_integer("target_seconds"))
                    .col(big_integer("elapsed_seconds"))
                    .col(boolean("breached"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_sla_clocks_record")
                            .from("sla_clocks", "record_id")
                            .to("records", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, columns) in [
            ("idx_sla_clocks_phase_due_at", &["phase", "due_at"][..]),
            ("idx_sla_clocks_record_id", &["record_id"][..]),
            ("idx_sla_clocks_started_at", &["started_at"][..]),
        ] {
            let mut index = Index::create();
            index.name(name).table("sla_clocks");
            for column in columns {
                index.col(*column);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("sla_clocks").to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("timers")
                    .drop_column("detail")
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("timers")
                    .drop_column("kind")
                    .to_owned(),
            )
            .await
    }
}
