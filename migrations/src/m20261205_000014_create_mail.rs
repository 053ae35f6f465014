use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Every inbound message, stored raw before anything else happens to it. `dedup_key`
        // is the Message-ID, or an id made from the SHA-256 of the raw bytes when there is
        // none; its unique index makes a second delivery of the same message a no-op.
        // `status` is `received` (stored, not yet processed), `processed`, `robot`
        // (machine-made, never answered), `quarantined` (kept for a person to look at,
        // with `reason`) or `rejected`. `effect` says what a processed message did to
        // `record_number`: `created`, `commented`, `reopened`, `follow_up`, `linked` or
        // `noted`.
        manager
            .create_table(
                Table::create()
                    .table("mail_messages")
                    .col(big_pk_auto("id"))
                    .col(text("mailbox"))
                    .col(text("source"))
                    .col(timestamp_with_time_zone("received_at"))
                    .col(text_null("message_id"))
                    .col(text("dedup_key"))
                    .col(text("raw_sha256"))
                    .col(big_integer("raw_size"))
                    .col(blob("raw"))
                    .col(text_null("from_address"))
                    .col(text_null("subject"))
                    .col(text("status"))
                    .col(text_null("reason"))
                    .col(big_integer_null("record_id"))
                    .col(text_null("record_number"))
                    .col(text_null("effect"))
                    .col(text("warnings"))
                    .col(big_integer("attempts").default(0))
                    .col(timestamp_with_time_zone_null("processed_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_mail_messages_record")
                            .from("mail_messages", "record_id")
                            .to("records", "id")
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_mail_messages_dedup_key")
                    .table("mail_messages")
                    .col("dedup_key")
                    .unique()
                    .to_owned(),
            )
            .await?;
        // Threading looks replies up by the Message-IDs they name; the rate limit counts a
        // sender's recent messages; the quarantine list reads by status.
        for (name, columns) in [
            ("idx_mail_messages_message_id", &["message_id"][..]),
            (
                "idx_mail_messages_sender",
                &["from_address", "received_at"][..],
            ),
            ("idx_mail_messages_status", &["status", "id"][..]),
        ] {
            let mut index = Index::create();
            index.name(name).table("mail_messages");
            for column in columns {
                index.col(*column);
            }
            manager.create_index(index.to_owned()).await?;
        }

        // Files that arrived with a message. `content` is null for a file over a size
        // limit, and `skipped` then says which limit.
        manager
            .create_table(
                Table::create()
                    .table("attachments")
                    .col(big_pk_auto("id"))
                    .col(big_integer_null("record_id"))
                    .col(big_integer_null("mail_message_id"))
                    .col(text("file_name"))
                    .col(text("content_type"))
                    .col(big_integer("size"))
                    .col(text("sha256"))
                    .col(text_null("content_id"))
                    .col(boolean("inline"))
                    .col(blob_null("content"))
                    .col(text_null("skipped"))
                    .col(timestamp_with_time_zone("created_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_attachments_record")
                            .from("attachments", "record_id")
                            .to("records", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_attachments_mail_message")
                            .from("attachments", "mail_message_id")
                            .to("mail_messages", "id")
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("idx_attachments_record", "record_id"),
            ("idx_attachments_mail_message", "mail_message_id"),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table("attachments")
                        .col(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("attachments").to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table("mail_messages").to_owned())
            .await
    }
}
