//! Inbound email: every message kept raw before it is processed, what became of it, and
//! the files it carried.
//!
//! A message is stored first, in its own write, with status `received`. The intake then
//! parses and acts on it and records the end state with [`finish_mail`]: `processed`
//! (it created or reached a record), `robot` (machine-made, never answered), `quarantined`
//! (kept for a person, with the reason) or `rejected`. The unique `dedup_key` (the
//! Message-ID, or an id made from the SHA-256 of the raw bytes) makes a second delivery
//! of the same message a no-op.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};

use crate::entities::{attachments, mail_messages, users};
use crate::{Error, Store, User, now, truncate};

/// The processing state of a stored message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MailStatus {
    /// Stored and not processed yet, or marked for a retry.
    Received,
    /// It created a record or reached one.
    Processed,
    /// Machine-made (a bounce, an auto-reply, a list); kept and never answered.
    Robot,
    /// Kept for a person to look at, with the cause in `reason`.
    Quarantined,
    /// Rejected by the mailbox's policy, with the cause in `reason`.
    Rejected,
}

impl MailStatus {
    pub const ALL: [MailStatus; 5] = [
        MailStatus::Received,
        MailStatus::Processed,
        MailStatus::Robot,
        MailStatus::Quarantined,
        MailStatus::Rejected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MailStatus::Received => "received",
            MailStatus::Processed => "processed",
            MailStatus::Robot => "robot",
            MailStatus::Quarantined => "quarantined",
            MailStatus::Rejected => "rejected",
        }
    }
}

impl fmt::Display for MailStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MailStatus {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        MailStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == value)
            .ok_or_else(|| {
                format!(
                    "unknown mail status `{value}`: use received, processed, robot, quarantined or rejected"
                )
            })
    }
}

/// A message to store with [`Store::store_mail`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMail {
    pub mailbox: String,
    pub source: String,
    pub received_at: DateTime<Utc>,
    pub message_id: Option<String>,
    pub dedup_key: String,
    pub raw_sha256: String,
    pub raw: Vec<u8>,
    pub from_address: Option<String>,
    pub subject: Option<String>,
}

/// A stored message without its raw bytes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MailMessage {
    pub id: i64,
    pub mailbox: String,
    pub source: String,
    pub received_at: DateTime<Utc>,
    pub message_id: Option<String>,
    pub dedup_key: String,
    pub raw_sha256: String,
    pub raw_size: i64,
    pub from_address: Option<String>,
    pub subject: Option<String>,
    pub status: MailStatus,
    pub reason: Option<String>,
    pub record_number: Option<String>,
    pub effect: Option<String>,
    pub warnings: Vec<String>,
    pub attempts: i64,
    pub processed_at: Option<DateTime<Utc>>,
}

/// The result of [`Store::store_mail`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredMail {
    /// The message is new and stored under this id, with status `received`.
    New(i64),
    /// A message with the same dedup key was stored before; nothing was written.
    Duplicate(Box<MailMessage>),
}

/// The end state of one processing attempt, written by [`finish_mail`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MailResult {
    pub status: Option<MailStatus>,
    pub reason: Option<String>,
    pub record_id: Option<i64>,
    pub record_number: Option<String>,
    pub effect: Option<String>,
    pub warnings: Vec<String>,
    /// The sender address found by parsing, when the store had none.
    pub from_address: Option<String>,
    pub subject: Option<String>,
}

/// A file to store with [`insert_attachment`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAttachment {
    pub record_id: Option<i64>,
    pub mail_message_id: Option<i64>,
    pub file_name: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    pub content_id: Option<String>,
    pub inline: bool,
    /// The file, or `None` when it is not stored, with the cause in `skipped`.
    pub content: Option<Vec<u8>>,
    pub skipped: Option<String>,
}

/// A stored attachment without its content.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sea_orm::FromQueryResult)]
pub struct AttachmentInfo {
    pub id: i64,
    #[serde(skip)]
    pub record_id: Option<i64>,
    pub mail_message_id: Option<i64>,
    pub file_name: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    pub content_id: Option<String>,
    pub inline: bool,
    /// Whether the content is stored (false for a file over a size limit).
    pub stored: bool,
    pub skipped: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The record a stored message reached, found by its Message-ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadMatch {
    pub message_id: String,
    pub record_id: i64,
    pub record_number: String,
}

impl Store {
    /// Stores a received message in its own write, before anything else happens to it.
    /// Returns [`StoredMail::Duplicate`] and writes nothing when a message with the same
    /// dedup key is stored already.
    pub async fn store_mail(&self, mail: NewMail) -> Result<StoredMail, Error> {
        let key = mail.dedup_key.clone();
        let inserted = self
            .write(move |tx| {
                Box::pin(async move {
                    if let Some(existing) = find_by_key(tx, &mail.dedup_key).await? {
                        return Ok(Err(existing));
                    }
                    let size = i64::try_from(mail.raw.len()).unwrap_or(i64::MAX);
                    let row = mail_messages::ActiveModel {
                        mailbox: Set(mail.mailbox),
                        source: Set(mail.source),
                        received_at: Set(truncate(mail.received_at)),
                        message_id: Set(mail.message_id),
                        dedup_key: Set(mail.dedup_key.clone()),
                        raw_sha256: Set(mail.raw_sha256),
                        raw_size: Set(size),
                        raw: Set(mail.raw),
                        from_address: Set(mail.from_address),
                        subject: Set(mail.subject),
                        status: Set(MailStatus::Received.as_str().to_owned()),
                        reason: Set(None),
                        record_id: Set(None),
                        record_number: Set(None),
                        effect: Set(None),
                        warnings: Set("[]".to_owned()),
                        attempts: Set(0),
                        processed_at: Set(None),
                        ..Default::default()
                    };
                    let inserted =
                        mail_messages::Entity::insert(row)
                            .exec(tx)
                            .await
                            .map_err(|error| {
                                Error::from_insert(error, "mail message", &mail.dedup_key)
                            })?;
                    Ok(Ok(inserted.last_insert_id))
                })
            })
            .await;
        match inserted {
            Ok(Ok(id)) => Ok(StoredMail::New(id)),
            Ok(Err(existing)) => Ok(StoredMail::Duplicate(Box::new(to_message(existing)?))),
            // Another node stored the same message between the check and the insert.
            Err(Error::Duplicate { .. }) => match find_by_key(self.db(), &key).await? {
                Some(existing) => Ok(StoredMail::Duplicate(Box::new(to_message(existing)?))),
                None => Err(Error::corrupt(
                    "mail message",
                    format!("`{key}` was reported stored and cannot be read"),
                )),
            },
            Err(error) => Err(error),
        }
    }

    /// Reads a stored message without its raw bytes.
    pub async fn mail_message(&self, id: i64) -> Result<Option<MailMessage>, Error> {
        mail_messages::Entity::find_by_id(id)
            .select_only()
            .columns(METADATA_COLUMNS)
            .into_model::<MetadataRow>()
            .one(self.db())
            .await?
            .map(MetadataRow::into_message)
            .transpose()
    }

    /// Reads the raw bytes of a stored message.
    pub async fn mail_raw(&self, id: i64) -> Result<Option<Vec<u8>>, Error> {
        Ok(mail_messages::Entity::find_by_id(id)
            .one(self.db())
            .await?
            .map(|row| row.raw))
    }

    /// Lists stored messages in one of `statuses`, newest first, at most `limit`, with ids
    /// below `before` when given (for paging).
    pub async fn list_mail(
        &self,
        statuses: &[MailStatus],
        limit: u64,
        before: Option<i64>,
    ) -> Result<Vec<MailMessage>, Error> {
        let names: Vec<&str> = statuses.iter().map(|status| status.as_str()).collect();
        let mut query = mail_messages::Entity::find()
            .select_only()
            .columns(METADATA_COLUMNS)
            .filter(mail_messages::Column::Status.is_in(names))
            .order_by_desc(mail_messages::Column::Id)
            .limit(limit);
        if let Some(before) = before {
            query = query.filter(mail_messages::Column::Id.lt(before));
        }
        query
            .into_model::<MetadataRow>()
            .all(self.db())
            .await?
            .into_iter()
            .map(MetadataRow::into_message)
            .collect()
    }

    /// Lists the quarantined messages and those stored but never finished (a process
    /// stopped while it handled them), newest first.
    pub async fn quarantined_mail(&self, limit: u64) -> Result<Vec<MailMessage>, Error> {
        self.list_mail(
            &[MailStatus::Quarantined, MailStatus::Received],
            limit,
            None,
        )
        .await
    }

    /// Marks a quarantined or rejected message for another processing attempt: its status
    /// goes back to `received`. Returns the message as it is now. A message that was
    /// processed, or is a robot message, is refused, since processing it again would act
    /// twice.
    pub async fn mark_mail_for_retry(&self, id: i64) -> Result<MailMessage, Error> {
        self.write(move |tx| {
            Box::pin(async move {
                let row = mail_messages::Entity::find_by_id(id)
                    .one(tx)
                    .await?
                    .ok_or_else(|| Error::NotFound {
                        what: "mail message",
                        key: id.to_string(),
                    })?;
                let status: MailStatus = row.status.parse().map_err(|error: String| {
                    Error::corrupt(format!("status of mail message {id}"), error)
                })?;
                match status {
                    MailStatus::Quarantined | MailStatus::Rejected | MailStatus::Received => {}
                    MailStatus::Processed | MailStatus::Robot => {
                        return Err(Error::Invalid(format!(
                            "mail message {id} is `{status}`{}, so it is not processed again: only quarantined or rejected messages can be retried",
                            row.record_number
                                .as_deref()
                                .map(|number| format!(" on {number}"))
                                .unwrap_or_default()
                        )));
                    }
                }
                let update = mail_messages::ActiveModel {
                    id: Set(id),
                    status: Set(MailStatus::Received.as_str().to_owned()),
                    ..Default::default()
                };
                mail_messages::Entity::update(update).exec(tx).await?;
                Ok(())
            })
        })
        .await?;
        self.mail_message(id).await?.ok_or_else(|| Error::NotFound {
            what: "mail message",
            key: id.to_string(),
        })
    }

    /// Counts the messages from `address` (lower case) received after `since`, without
    /// message `except`.
    pub async fn mail_from_since(
        &self,
        address: &str,
        since: DateTime<Utc>,
        except: i64,
    ) -> Result<u64, Error> {
        Ok(mail_messages::Entity::find()
            .filter(mail_messages::Column::FromAddress.eq(address))
            .filter(mail_messages::Column::ReceivedAt.gt(truncate(since)))
            .filter(mail_messages::Column::Id.ne(except))
            .count(self.db())
            .await?)
    }

    /// Finds the record of the first of `message_ids` that a stored message reached or
    /// that Tend sent about a record, in the order given: the thread a reply belongs to.
    pub async fn thread_of(&self, message_ids: &[&str]) -> Result<Option<ThreadMatch>, Error> {
        if message_ids.is_empty() {
            return Ok(None);
        }
        let rows = mail_messages::Entity::find()
            .filter(mail_messages::Column::MessageId.is_in(message_ids.iter().copied()))
            .filter(mail_messages::Column::RecordId.is_not_null())
            .select_only()
            .columns([
                mail_messages::Column::MessageId,
                mail_messages::Column::RecordId,
                mail_messages::Column::RecordNumber,
            ])
            .into_tuple::<(Option<String>, Option<i64>, Option<String>)>()
            .all(self.db())
            .await?;
        let sent: Vec<(String, Option<i64>, String)> = crate::entities::mail_outbox::Entity::find()
            .filter(
                crate::entities::mail_outbox::Column::MessageId.is_in(message_ids.iter().copied()),
            )
            .filter(crate::entities::mail_outbox::Column::RecordId.is_not_null())
            .select_only()
            .columns([
                crate::entities::mail_outbox::Column::MessageId,
                crate::entities::mail_outbox::Column::RecordId,
                crate::entities::mail_outbox::Column::RecordNumber,
            ])
            .into_tuple()
            .all(self.db())
            .await?;
        for wanted in message_ids {
            let ours = sent.iter().find_map(|(id, record_id, number)| {
                (id == wanted).then(|| ThreadMatch {
                    message_id: id.clone(),
                    record_id: record_id.unwrap_or_default(),
                    record_number: number.clone(),
                })
            });
            if ours.is_some() {
                return Ok(ours);
            }
            let found = rows.iter().find_map(|(id, record_id, number)| {
                match (id.as_deref(), record_id, number) {
                    (Some(id), Some(record_id), Some(number)) if id == *wanted => {
                        Some(ThreadMatch {
                            message_id: id.to_owned(),
                            record_id: *record_id,
                            record_number: number.clone(),
                        })
                    }
                    _ => None,
                }
            });
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// Lists the attachments of a record, without their content, oldest first.
    pub async fn attachments_of(&self, record_id: i64) -> Result<Vec<AttachmentInfo>, Error> {
        self.list_attachments(attachments::Column::RecordId.eq(record_id))
            .await
    }

    /// Lists the attachments of stored message `mail_message_id`, without their content, in
    /// the order of the message.
    pub async fn attachments_of_mail(
        &self,
        mail_message_id: i64,
    ) -> Result<Vec<AttachmentInfo>, Error> {
        self.list_attachments(attachments::Column::MailMessageId.eq(mail_message_id))
            .await
    }

    async fn list_attachments(
        &self,
        condition: impl sea_orm::sea_query::IntoCondition,
    ) -> Result<Vec<AttachmentInfo>, Error> {
        Ok(attachments::Entity::find()
            .select_only()
            .columns([
                attachments::Column::Id,
                attachments::Column::RecordId,
                attachments::Column::MailMessageId,
                attachments::Column::FileName,
                attachments::Column::ContentType,
                attachments::Column::Size,
                attachments::Column::Sha256,
                attachments::Column::ContentId,
                attachments::Column::Inline,
                attachments::Column::Skipped,
                attachments::Column::CreatedAt,
            ])
            .column_as(
                Expr::col(attachments::Column::Content).is_not_null(),
                "stored",
            )
            .filter(condition)
            .order_by_asc(attachments::Column::Id)
            .into_model::<AttachmentInfo>()
            .all(self.db())
            .await?)
    }

    /// Reads one attachment with its content (`None` content when it was not stored).
    pub async fn attachment(
        &self,
        id: i64,
    ) -> Result<Option<(AttachmentInfo, Option<Vec<u8>>)>, Error> {
        Ok(attachments::Entity::find_by_id(id)
            .one(self.db())
            .await?
            .map(|mut row| {
                let content = row.content.take();
                let mut info = to_attachment(row);
                info.stored = content.is_some();
                (info, content)
            }))
    }

    /// Finds the active user whose email is `address`, compared without case. When several
    /// users share the address, the oldest account is taken.
    pub async fn find_user_by_email(&self, address: &str) -> Result<Option<User>, Error> {
        let row = users::Entity::find()
            .filter(
                Expr::expr(Func::lower(Expr::col(users::Column::Email))).eq(address.to_lowercase()),
            )
            .order_by_asc(users::Column::Id)
            .one(self.db())
            .await?;
        row.map(crate::identity::to_user).transpose()
    }

    /// Creates a requester account for a person who wrote in and has none: the name is the
    /// address in lower case (with `-2`, `-3`, ... when that name is taken by another
    /// account), and the password is random, so the person logs in only after an
    /// administrator sets one. Returns the existing account when one with the address
    /// appeared in the meantime.
    pub async fn add_mail_requester(&self, address: &str) -> Result<User, Error> {
        let base = address.trim().to_lowercase();
        // User names hold no spaces, colons or control characters, and at most 100
        // characters; an address with such characters gets them replaced.
        let stem: String = base
            .chars()
            .map(|c| {
                if c.is_whitespace() || c.is_control() || c == ':' {
                    '_'
                } else {
                    c
                }
            })
            .take(96)
            .collect();
        for attempt in 1..=20 {
            if let Some(user) = self.find_user_by_email(&base).await? {
                return Ok(user);
            }
            let name = if attempt == 1 {
                stem.clone()
            } else {
                format!("{stem}-{attempt}")
            };
            let password = crate::credentials::random_text(32);
            match self
                .add_user(
                    &name,
                    Some(&base),
                    &[tend_domain::Role::Requester],
                    &password,
                )
                .await
            {
                Ok(user) => return Ok(user),
                Err(Error::Duplicate { .. }) => continue,
                Err(error) => return Err(error),
            }
        }
        Err(Error::Invalid(format!(
            "no free user name for `{base}` after 20 tries: add a user with this email by hand"
        )))
    }
}

/// Records the end state of a processing attempt inside a write job, and counts the
/// attempt.
pub async fn finish_mail<C: ConnectionTrait>(
    tx: &C,
    id: i64,
    result: &MailResult,
) -> Result<(), Error> {
    let row = mail_messages::Entity::find_by_id(id)
        .one(tx)
        .await?
        .ok_or_else(|| Error::NotFound {
            what: "mail message",
            key: id.to_string(),
        })?;
    let warnings = serde_json::to_string(&result.warnings)
        .map_err(|error| Error::corrupt("mail warnings", error))?;
    let mut update = mail_messages::ActiveModel {
        id: Set(id),
        status: Set(result
            .status
            .unwrap_or(MailStatus::Quarantined)
            .as_str()
            .to_owned()),
        reason: Set(result.reason.clone()),
        record_id: Set(result.record_id),
        record_number: Set(result.record_number.clone()),
        effect: Set(result.effect.clone()),
        warnings: Set(warnings),
        attempts: Set(row.attempts + 1),
        processed_at: Set(Some(now())),
        ..Default::default()
    };
    if row.from_address.is_none() && result.from_address.is_some() {
        update.from_address = Set(result.from_address.clone());
    }
    if row.subject.is_none() && result.subject.is_some() {
        update.subject = Set(result.subject.clone());
    }
    mail_messages::Entity::update(update).exec(tx).await?;
    Ok(())
}

/// Stores one attachment inside a write job and returns its id.
pub async fn insert_attachment<C: ConnectionTrait>(
    tx: &C,
    attachment: &NewAttachment,
) -> Result<i64, Error> {
    let row = attachments::ActiveModel {
        record_id: Set(attachment.record_id),
        mail_message_id: Set(attachment.mail_message_id),
        file_name: Set(attachment.file_name.clone()),
        content_type: Set(attachment.content_type.clone()),
        size: Set(attachment.size),
        sha256: Set(attachment.sha256.clone()),
        content_id: Set(attachment.content_id.clone()),
        inline: Set(attachment.inline),
        content: Set(attachment.content.clone()),
        skipped: Set(attachment.skipped.clone()),
        created_at: Set(now()),
        ..Default::default()
    };
    Ok(attachments::Entity::insert(row)
        .exec(tx)
        .await?
        .last_insert_id)
}

/// Checks inside a write job whether message `id` already has stored attachments, so that
/// a retried message does not store its files twice.
pub async fn has_attachments<C: ConnectionTrait>(tx: &C, id: i64) -> Result<bool, Error> {
    Ok(attachments::Entity::find()
        .filter(attachments::Column::MailMessageId.eq(id))
        .count(tx)
        .await?
        > 0)
}

const METADATA_COLUMNS: [mail_messages::Column; 17] = [
    mail_messages::Column::Id,
    mail_messages::Column::Mailbox,
    mail_messages::Column::Source,
    mail_messages::Column::ReceivedAt,
    mail_messages::Column::MessageId,
    mail_messages::Column::DedupKey,
    mail_messages::Column::RawSha256,
    mail_messages::Column::RawSize,
    mail_messages::Column::FromAddress,
    mail_messages::Column::Subject,
    mail_messages::Column::Status,
    mail_messages::Column::Reason,
    mail_messages::Column::RecordNumber,
    mail_messages::Column::Effect,
    mail_messages::Column::Warnings,
    mail_messages::Column::Attempts,
    mail_messages::Column::ProcessedAt,
];

/// The columns of [`METADATA_COLUMNS`], read without the raw bytes.
#[derive(Debug, sea_orm::FromQueryResult)]
struct MetadataRow {
    id: i64,
    mailbox: String,
    source: String,
    received_at: DateTime<Utc>,
    message_id: Option<String>,
    dedup_key: String,
    raw_sha256: String,
    raw_size: i64,
    from_address: Option<String>,
    subject: Option<String>,
    status: String,
    reason: Option<String>,
    record_number: Option<String>,
    effect: Option<String>,
    warnings: String,
    attempts: i64,
    processed_at: Option<DateTime<Utc>>,
}

impl MetadataRow {
    fn into_message(self) -> Result<MailMessage, Error> {
        let status = self.status.parse().map_err(|error: String| {
            Error::corrupt(format!("status of mail message {}", self.id), error)
        })?;
        let warnings = serde_json::from_str(&self.warnings).map_err(|error| {
            Error::corrupt(format!("warnings of mail message {}", self.id), error)
        })?;
        Ok(MailMessage {
            id: self.id,
            mailbox: self.mailbox,
            source: self.source,
            received_at: self.received_at,
            message_id: self.message_id,
            dedup_key: self.dedup_key,
            raw_sha256: self.raw_sha256,
            raw_size: self.raw_size,
            from_address: self.from_address,
            subject: self.subject,
            status,
            reason: self.reason,
            record_number: self.record_number,
            effect: self.effect,
            warnings,
            attempts: self.attempts,
            processed_at: self.processed_at,
        })
    }
}

async fn find_by_key<C: ConnectionTrait>(
    db: &C,
    key: &str,
) -> Result<Option<mail_messages::Model>, Error> {
    Ok(mail_messages::Entity::find()
        .filter(mail_messages::Column::DedupKey.eq(key))
        .one(db)
        .await?)
}

fn to_message(row: mail_messages::Model) -> Result<MailMessage, Error> {
    MetadataRow {
        id: row.id,
        mailbox: row.mailbox,
        source: row.source,
        received_at: row.received_at,
        message_id: row.message_id,
        dedup_key: row.dedup_key,
        raw_sha256: row.raw_sha256,
        raw_size: row.raw_size,
        from_address: row.from_address,
        subject: row.subject,
        status: row.status,
        reason: row.reason,
        record_number: row.record_number,
        effect: row.effect,
        warnings: row.warnings,
        attempts: row.attempts,
        processed_at: row.processed_at,
    }
    .into_message()
}

fn to_attachment(row: attachments::Model) -> AttachmentInfo {
    AttachmentInfo {
        id: row.id,
        record_id: row.record_id,
        mail_message_id: row.mail_message_id,
        file_name: row.file_name,
        content_type: row.content_type,
        size: row.size,
        sha256: row.sha256,
        content_id: row.content_id,
        inline: row.inline,
        stored: row.content.is_some(),
        skipped: row.skipped,
        created_at: row.created_at,
    }
}
