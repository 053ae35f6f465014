use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Mirror columns copied from a record's `fields` so that lists filter through an index.
/// Each index ends with `updated_at, id`, the order of lists, so that a filtered list reads
/// its rows in order from the index instead of sorting them.
const MIRROR_INDEXES: [&str; 5] = [
    "assignee",
    "assignment_group",
    "requester",
    "priority",
    "ci",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("records")
                    .col(big_pk_auto("id"))
                    .col(text_uniq("number"))
                    .col(text("process"))
                    .col(text("definition_version"))
                    .col(text("state"))
                    .col(text("title"))
                    .col(text("description"))
                    .col(text("fields"))
                    .col(text("recommendations"))
                    .col(text_null("priority"))
                    .col(text_null("assignee"))
                    .col(text_null("assignment_group"))
                    .col(text_null("requester"))
                    .col(text_null("ci"))
                    .col(boolean("is_open"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .col(timestamp_with_time_zone("state_changed_at"))
                    .col(big_integer("revision"))
                    .col(big_integer("journal_seq"))
                    .col(text("journal_head"))
                    .to_owned(),
            )
            .await?;

        create_index(
            manager,
            "idx_records_process_state",
            &["process", "state", "updated_at", "id"],
        )
        .await?;
        create_index(manager, "idx_records_updated_at", &["updated_at", "id"]).await?;
        create_index(
            manager,
            "idx_records_is_open",
            &["is_open", "updated_at", "id"],
        )
        .await?;
        for column in MIRROR_INDEXES {
            let name = format!("idx_records_{column}");
            create_index(manager, &name, &[column, "updated_at", "id"]).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table("record_counters")
                    .col(text("process").primary_key())
                    .col(big_integer("next_value"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("record_counters").to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table("records").to_owned())
            .await
    }
}

async fn create_index(
    manager: &SchemaManager<'_>,
    name: &str,
    columns: &[&str],
) -> Result<(), DbErr> {
    let mut index = Index::create();
    index.name(name).table("records");
    for column in columns {
        index.col(Alias::new(*column));
    }
    manager.create_index(index.to_owned()).await
}
