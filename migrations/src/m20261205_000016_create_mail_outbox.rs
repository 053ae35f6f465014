use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Every notification rendered for one recipient, written in the transaction of
        // the change that caused it. `status` is `queued` (to be sent at
        // `next_attempt_at`), `sent`, `suppressed` (never sent, with `last_error` as the
        // reason) or `failed`. `kind` is `auto-replied`, `auto-generated` or `personal`,
        // the value of the `Auto-Submitted` header (none for `personal`). A worker claims
        // a row by setting `lease_owner` and `lease_until`. `message_id` is stored
        // without angle brackets and is unique, so a reply naming it finds its record.
        manager
            .create_table(
                Table::create()
                    .table("mail_outbox")
                    .col(big_pk_auto("id"))
                    .col(big_integer_null("record_id"))
                    .col(text("record_number"))
                    .col(text("mailbox"))
                    .col(text("event"))
                    .col(text("template"))
                    .col(text("recipient"))
                    .col(text("from_address"))
                    .col(text_null("from_name"))
                    .col(text_null("reply_to"))
                    .col(text("subject"))
                    .col(text("text_body"))
                    .col(text_null("html_body"))
                    .col(text("message_id"))
                    .col(text_null("in_reply_to"))
                    .col(text("message_references"))
                    .col(text("kind"))
                    .col(text("status"))
                    .col(big_integer("attempts").default(0))
                    .col(timestamp_with_time_zone("next_attempt_at"))
                    .col(text_null("last_error"))
                    .col(text_null("lease_owner"))
                    .col(timestamp_with_time_zone_null("lease_until"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone_null("sent_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_mail_outbox_record")
                            .from("mail_outbox", "record_id")
                            .to("records", "id")
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_mail_outbox_message_id")
                    .table("mail_outbox")
                    .col("message_id")
                    .unique()
                    .to_owned(),
            )
            .await?;
        // The worker claims due rows by status and time; the record page lists a
        // record's mail; the rate limit counts a recipient's recent automatic mail.
        for (name, columns) in [
            ("idx_mail_outbox_due", &["status", "next_attempt_at"][..]),
            ("idx_mail_outbox_record", &["record_id", "id"][..]),
            (
                "idx_mail_outbox_recipient",
                &["recipient", "created_at"][..],
            ),
        ] {
            let mut index = Index::create();
            index.name(name).table("mail_outbox");
            for column in columns {
                index.col(*column);
            }
            manager.create_index(index.to_owned()).await?;
        }

        // Addresses that must not get notifications: mail to them bounced.
        manager
            .create_table(
                Table::create()
                    .table("mail_addresses")
                    .col(text("address").primary_key())
                    .col(boolean("undeliverable"))
                    .col(text_null("reason"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .to_owned(),
            )
            .await?;

        // A user's switch to get notifications about their own changes; off by default.
        manager
            .alter_table(
                Table::alter()
                    .table("users")
                    .add_column(boolean("notify_own_changes").default(false))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("users")
                    .drop_column("notify_own_changes")
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table("mail_addresses").to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table("mail_outbox").to_owned())
            .await
    }
}
