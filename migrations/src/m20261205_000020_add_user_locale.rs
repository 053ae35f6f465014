use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The language of a user's notifications, such as `fr` or `de-CH`; without it the
        // mailbox's locale, else the templates' default variant, applies.
        manager
            .alter_table(
                Table::alter()
                    .table("users")
                    .add_column(text_null("locale"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("users")
                    .drop_column("locale")
                    .to_owned(),
            )
            .await
    }
}
