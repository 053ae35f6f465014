use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Columns of an action run's approval and window. A run of an action that needs an
/// approval waits as `awaiting_approval` until someone decides; a run on an authorised
/// change starts only between `not_before` and `not_after`, the change's window.
const COLUMNS: [&str; 5] = [
    "not_before",
    "not_after",
    "decided_by",
    "decided_at",
    "decision_note",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE statement.
        for column in COLUMNS {
            let definition = match column {
                "not_before" | "not_after" | "decided_at" => timestamp_with_time_zone_null(column),
                _ => text_null(column),
            };
            manager
                .alter_table(
                    Table::alter()
                        .table("action_runs")
                        .add_column(definition)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in COLUMNS.iter().rev() {
            manager
                .alter_table(
                    Table::alter()
                        .table("action_runs")
                        .drop_column(*column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
