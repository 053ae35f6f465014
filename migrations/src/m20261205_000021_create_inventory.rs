use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // What each discovery source last reported of a CI, one row per (CI, source,
        // attribute), also for people-owned attributes and firmware placeholders that are
        // never written to the CI. Source precedence reads it to decide which source's
        // value stands, and the CMDB audit compares it with the CI's values.
        manager
            .create_table(
                Table::create()
                    .table("ci_discovered")
                    .col(big_pk_auto("id"))
                    .col(big_integer("ci_id"))
                    .col(text("source"))
                    .col(text("attribute"))
                    .col(text("value"))
                    .col(boolean("placeholder"))
                    .col(timestamp_with_time_zone("reported_at"))
                    .foreign_key(&mut ci_reference(
                        "fk_ci_discovered_ci",
                        "ci_discovered",
                        "ci_id",
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_ci_discovered_ci_source_attribute")
                    .table("ci_discovered")
                    .col("ci_id")
                    .col("source")
                    .col("attribute")
                    .unique()
                    .to_owned(),
            )
            .await?;

        // When each source last saw each CI, and the agent's device id, which partial
        // inventories name instead of the hardware keys. The audit lists CIs by
        // `last_seen_at`, so it is indexed.
        manager
            .create_table(
                Table::create()
                    .table("ci_sightings")
                    .col(big_pk_auto("id"))
                    .col(big_integer("ci_id"))
                    .col(text("source"))
                    .col(text_null("device_id"))
                    .col(timestamp_with_time_zone("first_seen_at"))
                    .col(timestamp_with_time_zone("last_seen_at"))
                    .foreign_key(&mut ci_reference(
                        "fk_ci_sightings_ci",
                        "ci_sightings",
                        "ci_id",
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_ci_sightings_ci_source")
                    .table("ci_sightings")
                    .col("ci_id")
                    .col("source")
                    .unique()
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("idx_ci_sightings_device", "device_id"),
            ("idx_ci_sightings_last_seen", "last_seen_at"),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table("ci_sightings")
                        .col(column)
                        .to_owned(),
                )
                .await?;
        }

        // One row per imported item: its outcome, the changes it made and, for a
        // conflict or a rejected document, the document itself, so that nothing an
        // agent sent is lost and it can be imported again once the conflict is resolved.
        manager
            .create_table(
                Table::create()
                    .table("inventory_imports")
                    .col(big_pk_auto("id"))
                    .col(timestamp_with_time_zone("received_at"))
                    .col(text("source"))
                    .col(text_null("device_id"))
                    .col(text("actor"))
                    .col(text("outcome"))
                    .col(big_integer_null("ci_id"))
                    .col(text_null("item_name"))
                    .col(text("summary"))
                    .col(text_null("message"))
                    .col(text("sha256"))
                    .col(blob_null("document"))
                    .to_owned(),
            )
            .await?;
        for (name, columns) in [
            ("idx_inventory_imports_outcome", &["outcome", "id"][..]),
            ("idx_inventory_imports_ci", &["ci_id", "id"][..]),
        ] {
            let mut index = Index::create();
            index.name(name).table("inventory_imports");
            for column in columns {
                index.col(*column);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["inventory_imports", "ci_sightings", "ci_discovered"] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

fn ci_reference(
    name: &str,
    table: &'static str,
    column: &'static str,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(table, column)
        .to("cis", "id")
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}
