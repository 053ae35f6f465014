use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Runs of schedules that apply a rule to records (`run_rule`) end as `ran`, with a
        // one-line summary of what they did: records looked at, changed and failed.
        manager
            .alter_table(
                Table::alter()
                    .table("schedule_runs")
                    .add_column(text_null("summary"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("schedule_runs")
                    .drop_column("summary")
                    .to_owned(),
            )
            .await
    }
}
