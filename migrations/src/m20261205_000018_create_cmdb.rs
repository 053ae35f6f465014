use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // A CI's class-specific attributes live in a JSON object, like a record's fields.
        // `name_key` is the lower-cased name, so that lookups by name ignore case through an
        // index on both backends.
        manager
            .create_table(
                Table::create()
                    .table("cis")
                    .col(big_pk_auto("id"))
                    .col(text("class"))
                    .col(text("name"))
                    .col(text("name_key"))
                    .col(text("status"))
                    .col(text("attributes"))
                    .col(big_integer("version"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .col(timestamp_with_time_zone_null("retired_at"))
                    .to_owned(),
            )
            .await?;
        // Lists page by id within a class; lookups by name may name the class too.
        create_index(manager, "idx_cis_class_id", "cis", &["class", "id"]).await?;
        create_index(manager, "idx_cis_name_key", "cis", &["name_key", "class"]).await?;
        create_index(manager, "idx_cis_status_id", "cis", &["status", "id"]).await?;

        // Every version of a CI: version 1 is its creation, and each later one holds the
        // attributes that changed with their values before and after, so replaying the
        // versions up to a date rebuilds the CI as it was then.
        manager
            .create_table(
                Table::create()
                    .table("ci_versions")
                    .col(big_pk_auto("id"))
                    .col(big_integer("ci_id"))
                    .col(big_integer("version"))
                    .col(timestamp_with_time_zone("at"))
                    .col(text("actor"))
                    .col(text("source"))
                    .col(text("changes"))
                    .foreign_key(&mut ci_reference(
                        "fk_ci_versions_ci",
                        "ci_versions",
                        "ci_id",
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_ci_versions_ci_version")
                    .table("ci_versions")
                    .col("ci_id")
                    .col("version")
                    .unique()
                    .to_owned(),
            )
            .await?;

        // The values of the identification-key and unique attributes of the CIs that are
        // not retired, one row per value (a list attribute gives one row per item), lower
        // case and trimmed. Imports match incoming items by (attribute, value), and the
        // partial unique index enforces unique attributes within the scope class.
        manager
            .create_table(
                Table::create()
                    .table("ci_keys")
                    .col(big_pk_auto("id"))
                    .col(big_integer("ci_id"))
                    .col(text("attribute"))
                    .col(text("value"))
                    .col(text("scope"))
                    .col(boolean("is_unique"))
                    .foreign_key(&mut ci_reference("fk_ci_keys_ci", "ci_keys", "ci_id"))
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "idx_ci_keys_lookup",
            "ci_keys",
            &["attribute", "value"],
        )
        .await?;
        create_index(manager, "idx_ci_keys_ci", "ci_keys", &["ci_id"]).await?;
        execute(
            manager,
            "CREATE UNIQUE INDEX idx_ci_keys_unique ON ci_keys (scope, attribute, value) WHERE is_unique",
        )
        .await?;

        // A relationship is directed from `source_id` to `target_id`. Retiring one keeps
        // its row, so the unique index is partial and refuses only a second active
        // (type, source, target). The two others cover retired rows too, because a CI
        // shown as it was at a past date needs the relationships retired since; they serve
        // impact traversal, which reads one level of the graph per query.
        manager
            .create_table(
                Table::create()
                    .table("ci_relationships")
                    .col(big_pk_auto("id"))
                    .col(text("kind"))
                    .col(big_integer("source_id"))
                    .col(big_integer("target_id"))
                    .col(text("created_by"))
                    .col(text("created_via"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone_null("retired_at"))
                    .col(text_null("retired_by"))
                    .foreign_key(&mut ci_reference(
                        "fk_ci_relationships_source",
                        "ci_relationships",
                        "source_id",
                    ))
                    .foreign_key(&mut ci_reference(
                        "fk_ci_relationships_target",
                        "ci_relationships",
                        "target_id",
                    ))
                    .to_owned(),
            )
            .await?;
        execute(
            manager,
            "CREATE UNIQUE INDEX idx_ci_relationships_active ON ci_relationships (kind, source_id, target_id) WHERE retired_at IS NULL",
        )
        .await?;
        create_index(
            manager,
            "idx_ci_relationships_source",
            "ci_relationships",
            &["source_id", "kind", "retired_at"],
        )
        .await?;
        create_index(
            manager,
            "idx_ci_relationships_target",
            "ci_relationships",
            &["target_id", "kind", "retired_at"],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["ci_relationships", "ci_keys", "ci_versions", "cis"] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

async fn create_index(
    manager: &SchemaManager<'_>,
    name: &str,
    table: &'static str,
    columns: &[&'static str],
) -> Result<(), DbErr> {
    let mut index = Index::create();
    index.name(name).table(table);
    for column in columns {
        index.col(*column);
    }
    manager.create_index(index.to_owned()).await
}

/// Runs a statement that sea-query cannot build, here partial indexes; SQLite and
/// PostgreSQL accept the same text.
async fn execute(manager: &SchemaManager<'_>, sql: &str) -> Result<(), DbErr> {
    manager.get_connection().execute_unprepared(sql).await?;
    Ok(())
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
