use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // What became of each due time of a cron schedule (`workflows/schedules/`): one row
        // per schedule and due time, so that a due time runs on one node only, and the row
        // with the latest `due_at` is where the next run is computed from.
        //
        // `outcome` is `claimed` (a node took the run and is opening its record), `opened`
        // (with `record_number`), `failed` (with `error`), `skipped` (due times missed under
        // `missed: skip`; `due_at` is the latest of them) or `started` (the schedule was
        // first seen, or its expression or time zone changed, at `due_at`; nothing ran).
        // `missed` counts the due times the row stands for that passed while no node ran,
        // and `late` marks a run that started after its grace period.
        manager
            .create_table(
                Table::create()
                    .table("schedule_runs")
                    .col(big_pk_auto("id"))
                    .col(text("schedule"))
                    .col(timestamp_with_time_zone("due_at"))
                    .col(text("outcome"))
                    .col(text_null("record_number"))
                    .col(timestamp_with_time_zone("ran_at"))
                    .col(boolean("late").default(false))
                    .col(big_integer("missed").default(0))
                    .col(text("cron"))
                    .col(text("timezone"))
                    .col(text_null("error"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_schedule_runs_schedule_due_at")
                    .table("schedule_runs")
                    .col("schedule")
                    .col("due_at")
                    .unique()
                    .to_owned(),
            )
            .await?;
        // Runs whose node stopped between the claim and the record are found by outcome
        // and claim time.
        manager
            .create_index(
                Index::create()
                    .name("idx_schedule_runs_outcome_ran_at")
                    .table("schedule_runs")
                    .col("outcome")
                    .col("ran_at")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("schedule_runs").to_owned())
            .await
    }
}
