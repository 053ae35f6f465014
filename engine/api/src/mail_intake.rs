//! Inbound email. [`Commands::take_mail`] turns one raw message into a new record, a reply
//! on a record, a note, or a message kept aside with the reason. The HTTP endpoints under
//! `/api/v1/mail` hand messages in and let people look at and retry what was kept.
//!
//! The steps of one message:
//!
//! 1. The raw bytes are stored in their own write, keyed by the Message-ID (or the SHA-256
//!    of the bytes without one). A key stored before means a second delivery: nothing more
//!    happens.
//! 2. The message is parsed on a blocking thread, so that neither a slow message nor a panic
//!    in the parser stops the server. A message that does not parse is quarantined.
//! 3. Machine-made mail (bounces, auto-replies, lists) is never answered and opens no
//!    record; when it concerns a record (by its references or, for a bounce, the returned
//!    Message-ID) it is journaled there as a note.
//! 4. A sender over the mailbox's rate limit is quarantined.
//! 5. A reply is threaded by its `In-Reply-To` and `References` (against the stored
//!    Message-IDs) and then by a subject tag such as `[INC0000042]`. It reaches the record
//!    only from the record's requester, a watcher or staff, through the reply command, so
//!    the definition's `replies:` policy applies. Anyone else gets a new record linked to
//!    the named one, or is rejected, as the mailbox says.
//! 6. A new message opens a record of the mailbox's process for the requester found by
//!    address (an account is created for an unknown address), with the mailbox's fields
//!    and what its `on_email` rule decides.
//!
//! Whatever fails after step 1 leaves the message quarantined with the reason, and the
//! result is journaled on the record with the Message-ID (`email_received`).

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tend_domain::{Actor, Effect, Fields, JournalEvent, Record, Role};
use tend_mail::{InboundMessage, LoopMarker};
use tend_store::mail::{
    AttachmentInfo, MailMessage, MailResult, MailStatus, NewAttachment, NewMail, StoredMail,
};
use tend_store::{Store, User};
use tend_workflow::engine::{MAX_TEXT_LENGTH, MAX_TITLE_LENGTH};
use tend_workflow::mailbox::{DEFAULT_MESSAGE_BYTES, Mailbox, StrangerPolicy, UnknownSenders};
use tend_workflow::{Definition, DefinitionSet, Hook, RuleInput};

use crate::AppState;
use crate::auth::Caller;
use crate::commands::{Access, Commands, NewRecord, Replied};
use crate::error::ApiError;

/// Name of the system actor that journals what no person did: robot notes, links and
/// rejections.
pub const MAIL_ACTOR: &str = "mail";

/// Instance id that Tend's own outgoing mail carries in its loop header.
// NOTE: outgoing mail does not exist yet. When it does, this id must come from its
// configuration, so that every node recognises the mail its instance sent.
pub(crate) const LOOP_INSTANCE: &str = "tend";

/// Age after which a stored message still `received` counts as left by a process that
/// stopped, so that a new delivery of it processes it again.
const STALE_RECEIVED_SECONDS: i64 = 120;

/// The outcome of one delivered message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntakeOutcome {
    /// Id of the stored message.
    pub mail: i64,
    /// True when the same message was stored before and nothing was done now.
    pub duplicate: bool,
    pub status: MailStatus,
    pub reason: Option<String>,
    /// The record the message created or reached.
    pub record: Option<String>,
    /// `created`, `commented`, `reopened`, `follow_up`, `linked` or `noted`.
    pub effect: Option<String>,
}

impl IntakeOutcome {
    fn of(message: &MailMessage, duplicate: bool) -> IntakeOutcome {
        IntakeOutcome {
            mail: message.id,
            duplicate,
            status: message.status,
            reason: message.reason.clone(),
            record: message.record_number.clone(),
            effect: message.effect.clone(),
        }
    }
}

/// Why a message did not reach a record: it is kept with this status and reason.
struct Refusal {
    status: MailStatus,
    reason: String,
}

impl Refusal {
    fn quarantine(reason: impl Into<String>) -> Refusal {
        Refusal {
            status: MailStatus::Quarantined,
            reason: reason.into(),
        }
    }

    fn reject(reason: impl Into<String>) -> Refusal {
        Refusal {
            status: MailStatus::Rejected,
            reason: reason.into(),
        }
    }
}

impl From<ApiError> for Refusal {
    fn from(error: ApiError) -> Refusal {
        Refusal::quarantine(error.to_string())
    }
}

impl From<tend_store::Error> for Refusal {
    fn from(error: tend_store::Error) -> Refusal {
        Refusal::quarantine(error.to_string())
    }
}

/// The record a message reached and the entry to journal there.
struct Landing {
    record: String,
    status: MailStatus,
    effect: &'static str,
    related: Option<String>,
    robot: Option<String>,
    /// Author of the `email_received` entry.
    actor: String,
    /// Entries journaled with it, such as the notes and failures of an `on_email` rule.
    extra: Vec<JournalEvent>,
}

impl Commands {
    /// Stores one raw message delivered to `mailbox` through `source` (`gateway`, `http`)
    /// and processes it. Returns an error only when the message could not be stored (the
    /// database is unreachable), so that the sender delivers it again. Every later problem
    /// is in the outcome's status and reason.
    pub async fn take_mail(
        &self,
        mailbox: &str,
        source: &str,
        raw: Vec<u8>,
    ) -> Result<IntakeOutcome, ApiError> {
        match store_raw(&self.store, mailbox, source, raw.clone()).await? {
            StoredMail::New(id) => self.process_mail(id, mailbox, raw, false).await,
            StoredMail::Duplicate(existing) => {
                let stale = existing.status == MailStatus::Received
                    && Utc::now() - existing.received_at
                        > chrono::TimeDelta::seconds(STALE_RECEIVED_SECONDS);
                if stale {
                    let mailbox = existing.mailbox.clone();
                    return self.process_mail(existing.id, &mailbox, raw, false).await;
                }
                Ok(IntakeOutcome::of(&existing, true))
            }
        }
    }

    /// Processes a quarantined or rejected message again, for example after its mailbox
    /// was configured. The sender's rate limit does not apply to a retry.
    pub async fn retry_mail(&self, id: i64) -> Result<IntakeOutcome, ApiError> {
        let message = self.store.mark_mail_for_retry(id).await?;
        let raw = self
            .store
            .mail_raw(id)
            .await?
            .ok_or_else(|| ApiError::NotFound {
                what: "mail message",
                key: id.to_string(),
            })?;
        self.process_mail(id, &message.mailbox, raw, true).await
    }

    /// Processes stored message `id` and records its end state.
    async fn process_mail(
        &self,
        id: i64,
        mailbox: &str,
        raw: Vec<u8>,
        retry: bool,
    ) -> Result<IntakeOutcome, ApiError> {
        let parsed = tokio::task::spawn_blocking(move || tend_mail::parse(&raw)).await;
        let message = match parsed {
            Ok(Ok(message)) => Some(message),
            Ok(Err(error)) => {
                let refusal = Refusal::quarantine(format!("the message does not parse: {error}"));
                return self.finish(id, None, Err(refusal)).await;
            }
            Err(panic) => {
                let refusal = Refusal::quarantine(format!(
                    "the mail parser failed on this message ({panic}); the raw message is kept for a bug report"
                ));
                return self.finish(id, None, Err(refusal)).await;
            }
        };
        let message = message.expect("set above");
        let outcome = self.decide_mail(id, mailbox, &message, retry).await;
        self.finish(id, Some(&message), outcome).await
    }

    /// Records the end of processing: on success the attachments and the journal entry on
    /// the record, and the message's status, in one write.
    async fn finish(
        &self,
        id: i64,
        message: Option<&InboundMessage>,
        outcome: Result<Landing, Refusal>,
    ) -> Result<IntakeOutcome, ApiError> {
        let mut result = MailResult {
            warnings: message
                .map(|message| message.warnings.iter().map(ToString::to_string).collect())
                .unwrap_or_default(),
            from_address: message
                .and_then(InboundMessage::requester_address)
                .map(str::to_lowercase),
            subject: message.and_then(|message| message.subject.clone()),
            ..MailResult::default()
        };
        let landing = match outcome {
            Ok(landing) => landing,
            Err(refusal) => {
                result.status = Some(refusal.status);
                result.reason = Some(refusal.reason);
                return self.finish_without_record(id, result).await;
            }
        };
        let Some(message) = message else {
            result.status = Some(MailStatus::Quarantined);
            return self.finish_without_record(id, result).await;
        };
        let mailbox = self.store.mail_message(id).await?.map(|m| m.mailbox);
        let limits = mailbox
            .as_deref()
            .and_then(|name| self.engine.current().set.mailboxes.get(name).cloned())
            .map(|mailbox| mailbox.file.limits)
            .unwrap_or_default();
        let files = select_files(message, limits);
        let event = JournalEvent::EmailReceived {
            mail: id,
            message_id: message.dedup_key(),
            mailbox: mailbox.unwrap_or_default(),
            from: message.requester_address().unwrap_or_default().to_owned(),
            subject: message.subject.clone().unwrap_or_default(),
            effect: landing.effect.to_owned(),
            related: landing.related.clone(),
            robot: landing.robot.clone(),
            attachments: files
                .iter()
                .filter(|file| file.content.is_some())
                .map(|file| file.file_name.clone())
                .collect(),
            skipped: files
                .iter()
                .filter_map(|file| {
                    file.skipped
                        .as_ref()
                        .map(|reason| format!("{}: {reason}", file.file_name))
                })
                .collect(),
        };
        result.status = Some(landing.status);
        result.record_number = Some(landing.record.clone());
        result.effect = Some(landing.effect.to_owned());
        result.reason = landing.robot.clone();
        let number = landing.record.clone();
        let actor = landing.actor.clone();
        let mut events = landing.extra;
        events.push(event);
        let written = self
            .store
            .write(move |tx| {
                Box::pin(async move {
                    let mut record = tend_store::load_record_for_update(tx, &number)
                        .await?
                        .ok_or_else(|| tend_store::Error::NotFound {
                            what: "record",
                            key: number.clone(),
                        })?;
                    if !tend_store::mail::has_attachments(tx, id).await? {
                        for mut file in files {
                            file.record_id = Some(record.id);
                            file.mail_message_id = Some(id);
                            tend_store::mail::insert_attachment(tx, &file).await?;
                        }
                    }
                    record.updated_at = Utc::now();
                    let record = tend_store::update_record(tx, &record, &actor, &events).await?;
                    result.record_id = Some(record.id);
                    tend_store::mail::finish_mail(tx, id, &result).await?;
                    Ok(())
                })
            })
            .await;
        if let Err(error) = written {
            tracing::warn!(mail.id = id, record.number = landing.record, %error, "journaling a message on its record failed");
            let result = MailResult {
                status: Some(MailStatus::Quarantined),
                reason: Some(format!(
                    "the message reached {} but its journal entry and attachments could not be written ({error}); retry it",
                    landing.record
                )),
                record_number: Some(landing.record.clone()),
                ..MailResult::default()
            };
            return self.finish_without_record(id, result).await;
        }
        self.outcome_of(id).await
    }

    async fn finish_without_record(
        &self,
        id: i64,
        result: MailResult,
    ) -> Result<IntakeOutcome, ApiError> {
        if result.status == Some(MailStatus::Quarantined) {
            tracing::warn!(
                mail.id = id,
                reason = result.reason.as_deref().unwrap_or_default(),
                "inbound message quarantined"
            );
        }
        self.store
            .write(move |tx| {
                Box::pin(async move { tend_store::mail::finish_mail(tx, id, &result).await })
            })
            .await?;
        self.outcome_of(id).await
    }

    async fn outcome_of(&self, id: i64) -> Result<IntakeOutcome, ApiError> {
        let message = self
            .store
            .mail_message(id)
            .await?
            .ok_or_else(|| ApiError::NotFound {
                what: "mail message",
                key: id.to_string(),
            })?;
        Ok(IntakeOutcome::of(&message, false))
    }

    /// Decides what message `id` does, and does it: every write but the final journal entry.
    async fn decide_mail(
        &self,
        id: i64,
        mailbox_name: &str,
        message: &InboundMessage,
        retry: bool,
    ) -> Result<Landing, Refusal> {
        let current = self.engine.current();
        let set = current.set.clone();
        let Some(mailbox) = set.mailboxes.get(mailbox_name).cloned() else {
            let known: Vec<&str> = set.mailboxes.keys().map(String::as_str).collect();
            return Err(Refusal::quarantine(format!(
                "mailbox `{mailbox_name}` is not defined: add workflows/mailboxes/{mailbox_name}.yaml or deliver to {}, then retry the message",
                if known.is_empty() {
                    "a mailbox defined there".to_owned()
                } else {
                    format!("one of {}", known.join(", "))
                }
            )));
        };
        let target = self.thread_target(&set, &mailbox, message).await?;
        if message.requester_address().is_none() && target.is_none() {
            return Err(Refusal::quarantine(
                "the message names no sender (From, Sender and Return-Path are missing or null), so there is nobody to open a record for or answer",
            ));
        }

        self.flag_bounced(message).await;
        let own = match &message.message_id {
            Some(id) => self.store.sent_among(&[id.as_str()]).await?,
            None => None,
        };
        if let Some(own) = own {
            // A copy of our own notification (a Bcc, or a list that sent it back) is
            // never answered and never opens a record.
            let reason = format!("Message-ID: <{}> is one Tend sent", own.message_id);
            let Some(record) = target else {
                return Err(Refusal {
                    status: MailStatus::Robot,
                    reason: format!("our own message, not answered ({reason})"),
                });
            };
            return Ok(Landing {
                record: record.number,
                status: MailStatus::Robot,
                effect: "noted",
                related: None,
                robot: Some(reason),
                actor: MAIL_ACTOR.to_owned(),
                extra: Vec::new(),
            });
        }
        if let Some(reason) = tend_mail::robot(message, &LoopMarker::new(LOOP_INSTANCE)) {
            let Some(record) = target else {
                return Err(Refusal {
                    status: MailStatus::Robot,
                    reason: format!("machine-made message, not answered ({reason})"),
                });
            };
            return Ok(Landing {
                record: record.number,
                status: MailStatus::Robot,
                effect: "noted",
                related: None,
                robot: Some(reason.to_string()),
                actor: MAIL_ACTOR.to_owned(),
                extra: Vec::new(),
            });
        }

        let Some(address) = message.requester_address().map(str::to_lowercase) else {
            return Err(Refusal::quarantine(
                "the message names no sender (From, Sender and Return-Path are missing or null), so there is nobody to open a record for or answer",
            ));
        };
        if !retry {
            let limit = mailbox.file.rate_limit;
            let since = Utc::now() - limit.within.duration();
            let earlier = self.store.mail_from_since(&address, since, id).await?;
            if earlier >= u64::from(limit.messages) {
                return Err(Refusal::quarantine(format!(
                    "rate limit: {earlier} earlier messages from {address} within {} minutes, and the mailbox processes {} (rate_limit in workflows/mailboxes/{}.yaml); retry the message if it is wanted",
                    limit.within.minutes, limit.messages, mailbox.name
                )));
            }
        }
        let user = self.store.find_user_by_email(&address).await?;
        if let Some(user) = &user
            && !user.active
        {
            return Err(Refusal::reject(format!(
                "the account `{}` of {address} is disabled",
                user.name
            )));
        }

        if let Some(record) = target {
            let watcher = is_watcher(&record, &address, user.as_ref());
            let requester = user
                .as_ref()
                .is_some_and(|user| record.field_str("requester") == Some(user.name.as_str()));
            let staff = user.as_ref().is_some_and(|user| user.actor().is_staff());
            // Someone Tend wrote to about the record, such as a supplier that a plugin run
            // escalated to, may reply to that mail.
            let mailed = !(requester || staff || watcher)
                && self.store.was_mailed(record.id, &address).await?;
            if requester || staff || watcher || mailed {
                let user = match user {
                    Some(user) => user,
                    None => self.store.add_mail_requester(&address).await?,
                };
                return self.reply_by_mail(&user, &record, message).await;
            }
            return match mailbox.file.strangers {
                StrangerPolicy::Reject => {
                    self.journal_rejection(id, &mailbox, message, &record).await;
                    Err(Refusal::reject(format!(
                        "{address} is not the requester, a watcher or staff of {}, which the message names, and mailbox `{}` rejects such messages",
                        record.number, mailbox.name
                    )))
                }
                StrangerPolicy::NewRecord => {
                    let user = self.sender_account(user, &address, &mailbox).await?;
                    let mut landing = self
                        .open_by_mail(id, &set, &mailbox, message, &user)
                        .await?;
                    self.link(
                        &Actor::system(MAIL_ACTOR),
                        &landing.record,
                        &mailbox.file.stranger_link,
                        &record.number,
                    )
                    .await?;
                    landing.effect = "linked";
                    landing.related = Some(record.number);
                    Ok(landing)
                }
            };
        }
        let user = self.sender_account(user, &address, &mailbox).await?;
        self.open_by_mail(id, &set, &mailbox, message, &user).await
    }

    /// Finds the record a message answers: by `In-Reply-To` and `References` (and, for a
    /// bounce, the Message-ID it returns) against stored messages, then by a subject tag,
    /// then, where the mailbox allows it, by the record token of a plus address it was
    /// sent to.
    async fn thread_target(
        &self,
        set: &DefinitionSet,
        mailbox: &Mailbox,
        message: &InboundMessage,
    ) -> Result<Option<Record>, Refusal> {
        let mut ids = tend_mail::parent_candidates(message);
        if let Some(original) = message
            .report
            .as_ref()
            .and_then(|report| report.original_message_id.as_deref())
            && !ids.contains(&original)
        {
            ids.push(original);
        }
        if let Some(found) = self.store.thread_of(&ids).await?
            && let Some(record) = self.store.get_record(&found.record_number).await?
        {
            return Ok(Some(record));
        }
        let Some(subject) = &message.subject else {
            return Ok(None);
        };
        let own_prefix = set
            .get(&mailbox.file.process)
            .map(|definition| definition.number_prefix.as_str())
            .unwrap_or_default();
        for tag in tend_mail::subject_tags(subject, &mailbox.tag_prefixes(own_prefix)) {
            let Some(number) = record_number(set, &tag) else {
                continue;
            };
            if let Some(record) = self.store.get_record(&number).await? {
                return Ok(Some(record));
            }
        }
        if mailbox.file.reply_tokens {
            for token in reply_tokens(mailbox, message) {
                let Some(number) = record_number(set, &token) else {
                    continue;
                };
                if let Some(record) = self.store.get_record(&number).await? {
                    return Ok(Some(record));
                }
            }
        }
        Ok(None)
    }

    /// Flags the failed recipients of a delivery-status report (a bounce) undeliverable, so
    /// that no further notification goes to them. A failure is logged: the message is still
    /// processed.
    async fn flag_bounced(&self, message: &InboundMessage) {
        let Some(report) = &message.report else {
            return;
        };
        if report.report_type != "delivery-status" {
            return;
        }
        for recipient in &report.recipients {
            let failed = recipient.action.as_deref() == Some("failed")
                || recipient
                    .status
                    .as_deref()
                    .is_some_and(|status| status.starts_with('5'));
            let Some(address) = recipient.final_recipient.as_deref() else {
                continue;
            };
            if !failed {
                continue;
            }
            let reason = format!(
                "delivery failed with status {}{}",
                recipient.status.as_deref().unwrap_or("unknown"),
                recipient
                    .diagnostic
                    .as_deref()
                    .map(|text| format!(" ({text})"))
                    .unwrap_or_default()
            );
            match self.store.flag_undeliverable(address, &reason).await {
                Ok(()) => tracing::info!(
                    address,
                    reason,
                    "address flagged undeliverable after a bounce"
                ),
                Err(error) => tracing::warn!(address, %error, "flagging a bounced address failed"),
            }
        }
    }

    /// Returns the sender's account, creating a requester account when the mailbox allows.
    async fn sender_account(
        &self,
        user: Option<User>,
        address: &str,
        mailbox: &Mailbox,
    ) -> Result<User, Refusal> {
        if let Some(user) = user {
            return Ok(user);
        }
        match mailbox.file.unknown_senders {
            UnknownSenders::CreateRequester => Ok(self.store.add_mail_requester(address).await?),
            UnknownSenders::Reject => Err(Refusal::reject(format!(
                "no user has the address {address}, and mailbox `{}` takes mail from known users only (unknown_senders: reject)",
                mailbox.name
            ))),
        }
    }

    /// Adds the message to `record` through the reply command.
    async fn reply_by_mail(
        &self,
        user: &User,
        record: &Record,
        message: &InboundMessage,
    ) -> Result<Landing, Refusal> {
        let text = body_text(message);
        let actor = user.actor();
        let replied = crate::outbound::with_source_mail(
            source_mail(&record_mailbox(self, record), message),
            self.reply_with(&actor, &record.number, &text, Access::Participant),
        )
        .await?;
        let (number, effect, related) = match replied {
            Replied::Appended(after) => {
                let effect = if after.state != record.state {
                    "reopened"
                } else {
                    "commented"
                };
                (after.number, effect, None)
            }
            Replied::FollowUp {
                record: follow_up,
                original,
            } => (follow_up.number, "follow_up", Some(original)),
        };
        Ok(Landing {
            record: number,
            status: MailStatus::Processed,
            effect,
            related,
            robot: None,
            actor: user.name.clone(),
            extra: Vec::new(),
        })
    }

    /// Opens a record for a new message, after the mailbox's `on_email` rule.
    async fn open_by_mail(
        &self,
        id: i64,
        set: &Arc<DefinitionSet>,
        mailbox: &Mailbox,
        message: &InboundMessage,
        user: &User,
    ) -> Result<Landing, Refusal> {
        let actor = user.actor();
        let mut draft = Draft {
            process: mailbox.file.process.clone(),
            title: record_title(message),
            description: truncate_chars(&body_text(message), MAX_TEXT_LENGTH),
            preset: mailbox.file.fields.clone(),
            extra: Vec::new(),
        };
        if let Some(definition) = set.get(&draft.process) {
            add_watchers(definition, mailbox, message, &mut draft.preset);
        }
        if let Some(rule) = &mailbox.file.on_email {
            self.run_on_email(rule, set, mailbox, message, &actor, &mut draft)?;
        }
        let input = NewRecord {
            title: draft.title,
            description: draft.description,
            fields: Fields::new(),
            idempotency_key: Some(format!("mail-message-{id}")),
            preset: draft.preset,
        };
        let created = crate::outbound::with_source_mail(
            source_mail(&mailbox.name, message),
            self.create_journaled(&actor, &draft.process, input, Utc::now()),
        )
        .await?;
        Ok(Landing {
            record: created.record.number,
            status: MailStatus::Processed,
            effect: "created",
            related: None,
            robot: None,
            actor: user.name.clone(),
            extra: draft.extra,
        })
    }

    /// Runs the mailbox's `on_email` rule on the draft record and applies its effects to
    /// the draft: fields, another process, notes, or a refusal.
    fn run_on_email(
        &self,
        rule: &str,
        set: &DefinitionSet,
        mailbox: &Mailbox,
        message: &InboundMessage,
        actor: &Actor,
        draft: &mut Draft,
    ) -> Result<(), Refusal> {
        let Some(definition) = set.get(&draft.process) else {
            return Ok(());
        };
        let now = Utc::now();
        let mut fields = Fields::new();
        for (name, field) in &definition.fields {
            if let Some(default) = &field.default {
                fields.insert(name.clone(), default.clone());
            }
        }
        fields.extend(draft.preset.clone());
        fields.insert("requester".into(), Value::String(actor.name.clone()));
        let record = Record {
            id: 0,
            number: String::new(),
            process: draft.process.clone(),
            definition_version: set.version.clone(),
            state: definition.initial_state().unwrap_or_default().to_owned(),
            open: true,
            title: draft.title.clone(),
            description: draft.description.clone(),
            fields,
            recommendations: Vec::new(),
            created_at: now,
            updated_at: now,
            state_changed_at: now,
            revision: 0,
        };
        let email = email_json(mailbox, message);
        let input = RuleInput {
            hook: Hook::OnEmail,
            record: &record,
            previous: None,
            actor,
            transition: None,
            links: &[],
            linked: None,
            now,
            email: Some(&email),
            cmdb: None,
            alert: None,
        };
        let effects = match self.engine.rules().run(rule, &input) {
            Ok(effects) => effects,
            Err(failure) => {
                draft.extra.push(JournalEvent::RuleFailed {
                    rule: rule.to_owned(),
                    error: failure.message,
                });
                return Ok(());
            }
        };
        let mut fields = Fields::new();
        for proposed in effects {
            match proposed.effect {
                Effect::SetField { field, value } => {
                    fields.insert(field, value);
                }
                Effect::Deny { message } => {
                    return Err(Refusal::reject(format!(
                        "rule `{rule}` refused the message: {message}"
                    )));
                }
                Effect::Open {
                    process,
                    title,
                    description,
                    fields: opened,
                    ..
                } => {
                    if set.get(&process).is_none() {
                        draft.extra.push(JournalEvent::RuleFailed {
                            rule: rule.to_owned(),
                            error: format!(
                                "open_record names unknown process `{process}`; the message opened a {} record",
                                draft.process
                            ),
                        });
                        continue;
                    }
                    if process != draft.process {
                        draft.process = process;
                        draft.preset = Fields::new();
                    }
                    if !title.trim().is_empty() {
                        draft.title = truncate_chars(title.trim(), MAX_TITLE_LENGTH);
                    }
                    if !description.trim().is_empty() {
                        draft.description = truncate_chars(&description, MAX_TEXT_LENGTH);
                    }
                    fields.extend(opened);
                }
                Effect::Note { text } => draft.extra.push(JournalEvent::Note {
                    text,
                    rule: proposed.rule,
                    reason: proposed.reason,
                }),
                other => draft.extra.push(JournalEvent::RuleFailed {
                    rule: rule.to_owned(),
                    error: format!(
                        "an on_email rule may set fields, open_record (to choose the process), note or deny; its `{}` was ignored",
                        effect_name(&other)
                    ),
                }),
            }
        }
        // The values the rule set are checked against the process finally chosen: one
        // that does not fit is journaled and left out, and the record is still opened.
        let definition = set.get(&draft.process).cloned();
        for (name, value) in fields {
            let problem = match definition
                .as_ref()
                .and_then(|definition| definition.fields.get(&name))
            {
                None => Some(format!(
                    "set_field names `{name}`, which the {} process does not declare",
                    draft.process
                )),
                Some(declared) => tend_workflow::values::check_value(declared, &value)
                    .err()
                    .map(|message| format!("invalid value for `{name}`: {message}")),
            };
            match problem {
                Some(error) => draft.extra.push(JournalEvent::RuleFailed {
                    rule: rule.to_owned(),
                    error,
                }),
                None => {
                    draft.preset.insert(name, value);
                }
            }
        }
        Ok(())
    }

    /// Journals on `record` that a stranger's message naming it was rejected. A failure is
    /// logged only: the message is rejected either way.
    async fn journal_rejection(
        &self,
        id: i64,
        mailbox: &Mailbox,
        message: &InboundMessage,
        record: &Record,
    ) {
        let event = JournalEvent::EmailReceived {
            mail: id,
            message_id: message.dedup_key(),
            mailbox: mailbox.name.clone(),
            from: message.requester_address().unwrap_or_default().to_owned(),
            subject: message.subject.clone().unwrap_or_default(),
            effect: "rejected".to_owned(),
            related: None,
            robot: None,
            attachments: Vec::new(),
            skipped: Vec::new(),
        };
        let number = record.number.clone();
        let written = self
            .store
            .write(move |tx| {
                Box::pin(async move {
                    let Some(mut record) = tend_store::load_record_for_update(tx, &number).await?
                    else {
                        return Ok(());
                    };
                    record.updated_at = Utc::now();
                    tend_store::update_record(tx, &record, MAIL_ACTOR, &[event]).await?;
                    Ok(())
                })
            })
            .await;
        if let Err(error) = written {
            tracing::warn!(mail.id = id, record.number = record.number, %error, "journaling a rejected message failed");
        }
    }
}

/// Stores a raw message before anything else happens to it, keyed for de-duplication.
async fn store_raw(
    store: &Store,
    mailbox: &str,
    source: &str,
    raw: Vec<u8>,
) -> Result<StoredMail, tend_store::Error> {
    let raw_sha256 = hex::encode(Sha256::digest(&raw));
    let message_id = scan_message_id(&raw);
    let dedup_key = message_id
        .clone()
        .unwrap_or_else(|| format!("sha256-{raw_sha256}@generated.invalid"));
    let mail = NewMail {
        mailbox: mailbox.to_owned(),
        source: source.to_owned(),
        received_at: Utc::now(),
        message_id,
        dedup_key,
        raw_sha256,
        raw,
        from_address: None,
        subject: None,
    };
    store.store_mail(mail).await
}

/// Stores a raw message that cannot be processed now (the definitions did not load) and
/// quarantines it with `reason`, so that it waits for `tend mail retry`. A message stored
/// before is left as it is.
pub async fn keep_mail(
    store: &Store,
    mailbox: &str,
    source: &str,
    raw: Vec<u8>,
    reason: &str,
) -> Result<IntakeOutcome, ApiError> {
    let id = match store_raw(store, mailbox, source, raw).await? {
        StoredMail::New(id) => id,
        StoredMail::Duplicate(existing) => return Ok(IntakeOutcome::of(&existing, true)),
    };
    let result = MailResult {
        status: Some(MailStatus::Quarantined),
        reason: Some(reason.to_owned()),
        ..MailResult::default()
    };
    store
        .write(move |tx| {
            Box::pin(async move { tend_store::mail::finish_mail(tx, id, &result).await })
        })
        .await?;
    let message = store
        .mail_message(id)
        .await?
        .ok_or_else(|| ApiError::NotFound {
            what: "mail message",
            key: id.to_string(),
        })?;
    Ok(IntakeOutcome::of(&message, false))
}

/// A record a new message is about to open.
struct Draft {
    process: String,
    title: String,
    description: String,
    preset: Fields,
    extra: Vec<JournalEvent>,
}

fn effect_name(effect: &Effect) -> &'static str {
    match effect {
        Effect::SetField { .. } => "set_field",
        Effect::Recommend { .. } => "recommend",
        Effect::Note { .. } => "note",
        Effect::Deny { .. } => "deny",
        Effect::Approver { .. } => "approver",
        Effect::Transition { .. } => "take_transition",
        Effect::Link { .. } => "link_to",
        Effect::Open { .. } => "open_record",
        Effect::RunAction { .. } => "run_action",
    }
}

/// Turns a subject tag (`INC42`, `INC0000042`) into the stored number of the process whose
/// prefix it has, with that process's digits.
/// Collects the plus-address tokens of the mailbox's own addresses that a message was sent
/// to. It reads `To`, `Cc` and the envelope headers a delivering server adds
/// (`Delivered-To`, `X-Original-To`), in that order, and skips repeats.
fn reply_tokens(mailbox: &Mailbox, message: &InboundMessage) -> Vec<String> {
    let envelope = message
        .headers
        .iter()
        .filter(|field| {
            field.name.eq_ignore_ascii_case("Delivered-To")
                || field.name.eq_ignore_ascii_case("X-Original-To")
        })
        .map(|field| field.value.as_str());
    let mut tokens: Vec<String> = Vec::new();
    for address in message
        .to
        .iter()
        .chain(&message.cc)
        .map(|recipient| recipient.address.as_str())
        .chain(envelope)
    {
        for own in &mailbox.file.addresses {
            if let Some(token) = tend_mail::reply_token(address, own)
                && !tokens.contains(&token)
            {
                tokens.push(token);
            }
        }
    }
    tokens
}

fn record_number(set: &DefinitionSet, tag: &str) -> Option<String> {
    set.definitions.values().find_map(|definition| {
        let prefix = &definition.number_prefix;
        let digits = tag
            .get(..prefix.len())
            .filter(|head| head.eq_ignore_ascii_case(prefix))
            .map(|_| &tag[prefix.len()..])?;
        let value: u64 = digits.parse().ok()?;
        Some(format!(
            "{prefix}{value:0width$}",
            width = usize::from(definition.number_digits)
        ))
    })
}

/// Checks whether the record's `watchers` field lists the address or the user's name.
fn is_watcher(record: &Record, address: &str, user: Option<&User>) -> bool {
    let Some(watchers) = record.field_str("watchers") else {
        return false;
    };
    watchers
        .split([',', ';', ' ', '\t', '\n'])
        .map(|entry| entry.trim().trim_start_matches('<').trim_end_matches('>'))
        .filter(|entry| !entry.is_empty())
        .any(|entry| {
            entry.eq_ignore_ascii_case(address)
                || user.is_some_and(|user| {
                    entry.eq_ignore_ascii_case(&user.name)
                        || user
                            .email
                            .as_deref()
                            .is_some_and(|email| entry.eq_ignore_ascii_case(email))
                })
        })
}

/// Puts the other people the message went to (`To` and `Cc` without the mailbox's own
/// addresses and the sender) into the `watchers` field, when the process has one, so that
/// their replies thread into the record. Addresses that do not fit the field's length are
/// left out.
fn add_watchers(
    definition: &Definition,
    mailbox: &Mailbox,
    message: &InboundMessage,
    preset: &mut Fields,
) {
    let Some(field) = definition.fields.get("watchers") else {
        return;
    };
    if field.kind != tend_workflow::FieldType::String || preset.contains_key("watchers") {
        return;
    }
    let sender = message.requester_address().unwrap_or_default();
    let limit = field.max_length.unwrap_or(500);
    let mut list: Vec<String> = Vec::new();
    for mailbox_entry in message.to.iter().chain(&message.cc) {
        let address = mailbox_entry.address.trim().to_lowercase();
        if address.is_empty()
            || mailbox.owns(&address)
            || address.eq_ignore_ascii_case(sender)
            || list.contains(&address)
        {
            continue;
        }
        let joined = list.iter().map(String::len).sum::<usize>() + 2 * list.len() + address.len();
        if joined > limit {
            break;
        }
        list.push(address);
    }
    if !list.is_empty() {
        preset.insert("watchers".into(), Value::String(list.join(", ")));
    }
}

/// The message as an `on_email` rule reads it.
fn email_json(mailbox: &Mailbox, message: &InboundMessage) -> Value {
    json!({
        "from": message.requester_address().unwrap_or_default(),
        "from_name": message.from.as_ref().and_then(|from| from.name.clone()).unwrap_or_default(),
        "to": message.to.iter().map(|to| to.address.clone()).collect::<Vec<_>>(),
        "cc": message.cc.iter().map(|cc| cc.address.clone()).collect::<Vec<_>>(),
        "subject": message.subject.clone().unwrap_or_default(),
        "message_id": message.dedup_key(),
        "mailbox": mailbox.name,
        "text": truncate_chars(&message.text, MAX_TEXT_LENGTH),
    })
}

/// The title of a record a message opens: the subject without reply prefixes, on one
/// line, shortened to the longest title allowed.
/// Describes `message`, delivered to mailbox `mailbox`, as the source of a command.
fn source_mail(mailbox: &str, message: &InboundMessage) -> crate::outbound::SourceMail {
    crate::outbound::SourceMail {
        mailbox: mailbox.to_owned(),
        message_id: message.message_id.clone(),
        parents: message
            .in_reply_to
            .iter()
            .chain(&message.references)
            .cloned()
            .collect(),
    }
}

/// Returns the name of the mailbox whose process `record` belongs to, or an empty name.
fn record_mailbox(commands: &Commands, record: &Record) -> String {
    commands
        .engine
        .current()
        .set
        .mailboxes
        .values()
        .find(|mailbox| mailbox.file.process == record.process)
        .map(|mailbox| mailbox.name.clone())
        .unwrap_or_default()
}

fn record_title(message: &InboundMessage) -> String {
    let subject = message.subject.as_deref().unwrap_or_default();
    let title = tend_mail::strip_reply_prefixes(subject)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if title.is_empty() {
        let from = message.requester_address().unwrap_or("an unknown sender");
        return truncate_chars(
            &format!("Email from {from} without a subject"),
            MAX_TITLE_LENGTH,
        );
    }
    truncate_chars(&title, MAX_TITLE_LENGTH)
}

/// The text of a reply or description: the body, or a line saying there is none.
fn body_text(message: &InboundMessage) -> String {
    let text = message.text.trim();
    if text.is_empty() {
        let files = message.attachments.len();
        return if files == 0 {
            "(The message has no text.)".to_owned()
        } else {
            format!("(The message has no text, and {files} attached files.)")
        };
    }
    truncate_chars(text, MAX_TEXT_LENGTH)
}

/// Shortens `text` to at most `max` characters, ending with an ellipsis when cut.
fn truncate_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    text.chars().take(max.saturating_sub(1)).collect::<String>() + "…"
}

/// Chooses the files of a message to store within the mailbox's limits: every attachment
/// and every file inside a TNEF container, each stored or listed with the reason it was not.
fn select_files(
    message: &InboundMessage,
    limits: tend_workflow::mailbox::MailLimits,
) -> Vec<NewAttachment> {
    let mut files = Vec::new();
    let mut total: u64 = 0;
    let mut add = |name: String,
                   content_type: String,
                   sha256: String,
                   content_id: Option<String>,
                   inline: bool,
                   data: &[u8]| {
        let size = data.len() as u64;
        let skipped = if size > limits.attachment_bytes {
            Some(format!(
                "{size} bytes, over the limit of {} bytes per file (limits.attachment_bytes)",
                limits.attachment_bytes
            ))
        } else if total + size > limits.attachments_bytes {
            Some(format!(
                "the files of the message pass the limit of {} bytes for one message (limits.attachments_bytes)",
                limits.attachments_bytes
            ))
        } else {
            total += size;
            None
        };
        files.push(NewAttachment {
            record_id: None,
            mail_message_id: None,
            file_name: name,
            content_type,
            size: i64::try_from(size).unwrap_or(i64::MAX),
            sha256,
            content_id,
            inline,
            content: skipped.is_none().then(|| data.to_vec()),
            skipped,
        });
    };
    for attachment in &message.attachments {
        let name = attachment
            .filename
            .clone()
            .unwrap_or_else(|| format!("part-{}", attachment.part));
        add(
            name,
            attachment.content_type.clone(),
            attachment.sha256.clone(),
            attachment.content_id.clone(),
            attachment.inline,
            &attachment.data,
        );
        for (position, file) in attachment.tnef.iter().flatten().enumerate() {
            let name = file
                .filename
                .clone()
                .unwrap_or_else(|| format!("part-{}-file-{}", attachment.part, position + 1));
            add(
                name,
                "application/octet-stream".to_owned(),
                file.sha256.clone(),
                None,
                false,
                &file.data,
            );
        }
    }
    files
}

/// Reads the `Message-ID` from the raw header block, without the angle brackets, so that
/// a message can be stored and de-duplicated before it is parsed. Folded lines are joined.
pub fn scan_message_id(raw: &[u8]) -> Option<String> {
    let mut lines = raw.split(|byte| *byte == b'\n').peekable();
    while let Some(line) = lines.next() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return None;
        }
        let Some(colon) = line.iter().position(|byte| *byte == b':') else {
            continue;
        };
        if !line[..colon]
            .trim_ascii()
            .eq_ignore_ascii_case(b"message-id")
        {
            continue;
        }
        let mut value = line[colon + 1..].to_vec();
        while let Some(next) = lines.peek() {
            if next
                .first()
                .is_some_and(|byte| *byte == b' ' || *byte == b'\t')
            {
                value.extend_from_slice(next.strip_suffix(b"\r").unwrap_or(next));
                lines.next();
            } else {
                break;
            }
        }
        let value = String::from_utf8_lossy(&value);
        let value = value.trim();
        let id = match (value.find('<'), value.find('>')) {
            (Some(open), Some(close)) if close > open => &value[open + 1..close],
            _ => value,
        };
        let id = id.trim();
        return (!id.is_empty() && id.len() <= 998).then(|| id.to_owned());
    }
    None
}

// ---- HTTP ----------------------------------------------------------------------------

/// The routes under `/api/v1/mail` and the attachment download. They carry their own body
/// limit: raw messages are larger than the API's other bodies.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/mail/inbound", post(inbound))
        .route("/api/v1/mail/inbound/{mailbox}", post(inbound_to))
        .route("/api/v1/mail/quarantine", get(quarantine))
        .route("/api/v1/mail/outbox", get(crate::outbound::outbox_list))
        .route("/api/v1/mail/quarantine/{id}/retry", post(retry))
        .route("/api/v1/mail/messages/{id}", get(message))
        .route("/api/v1/mail/messages/{id}/raw", get(raw))
        .route("/api/v1/mail/messages/{id}/retry", post(retry))
        .route("/api/v1/attachments/{id}", get(attachment))
        .layer(axum::extract::DefaultBodyLimit::disable())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboundQuery {
    mailbox: String,
}

fn error_response(
    status: StatusCode,
    code: &str,
    message: String,
    field: Option<&str>,
) -> Response {
    let body = json!({ "error": { "code": code, "message": message, "field": field } });
    (status, axum::Json(body)).into_response()
}

/// `POST /api/v1/mail/inbound?mailbox=NAME` with a raw message (`message/rfc822`): the
/// same as [`inbound_to`], for gateways that can only vary the query.
pub async fn inbound(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<InboundQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|rejection| {
        ApiError::bad_request(
            "invalid_query",
            format!(
                "{}: name the mailbox, as in /api/v1/mail/inbound/support or ?mailbox=support",
                rejection.body_text()
            ),
            Some("mailbox"),
        )
    })?;
    take_inbound(state, caller, query.mailbox, headers, body).await
}

/// `POST /api/v1/mail/inbound/{mailbox}` with a raw message (`message/rfc822`).
/// Returns 201 with the outcome, or 200 when the message was delivered before.
pub async fn inbound_to(
    State(state): State<AppState>,
    caller: Caller,
    Path(mailbox): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    take_inbound(state, caller, mailbox, headers, body).await
}

async fn take_inbound(
    state: AppState,
    caller: Caller,
    mailbox: String,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    if !(caller.actor.is_admin() || caller.actor.has_role(Role::MailGateway)) {
        return Err(ApiError::Forbidden(
            "handing in mail needs the admin or mail_gateway role: create a user with `--role mail_gateway` for the gateway".into(),
        ));
    }
    let query = InboundQuery { mailbox };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if content_type != "message/rfc822" {
        return Ok(error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "the body must be one raw message sent as `Content-Type: message/rfc822`, not `{content_type}`"
            ),
            Some("Content-Type"),
        ));
    }
    let limit = state
        .commands
        .engine
        .current()
        .set
        .mailboxes
        .get(&query.mailbox)
        .map_or(DEFAULT_MESSAGE_BYTES, |mailbox| {
            mailbox.file.limits.message_bytes
        });
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let too_large = |size: Option<u64>| {
        let size = size.map_or_else(
            || "more than the limit".to_owned(),
            |size| format!("{size} bytes"),
        );
        error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            "message_too_large",
            format!(
                "the message is {size}, and mailbox `{}` takes at most {limit} bytes (limits.message_bytes in workflows/mailboxes/{}.yaml)",
                query.mailbox, query.mailbox
            ),
            None,
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if let Some(size) = declared.filter(|size| *size > limit as u64) {
        // A client still sending its body when the answer comes sees a broken connection
        // instead of the 413, so a body up to twice the limit is read and dropped first.
        if size <= 2 * limit as u64 {
            let _ = axum::body::to_bytes(body, 2 * limit).await;
        }
        return Ok(too_large(declared));
    }
    let Ok(raw) = axum::body::to_bytes(body, limit).await else {
        return Ok(too_large(None));
    };
    let outcome = state
        .commands
        .take_mail(&query.mailbox, "http", raw.to_vec())
        .await?;
    let status = if outcome.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, axum::Json(outcome)).into_response())
}

fn require_staff(caller: &Caller) -> Result<(), ApiError> {
    if caller.actor.is_staff() {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "stored mail is for staff: log in as a technician, process owner or admin".into(),
        ))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuarantineQuery {
    #[serde(default)]
    limit: Option<u64>,
}

/// `GET /api/v1/mail/quarantine`: the quarantined messages and those never finished,
/// newest first.
pub async fn quarantine(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<QuarantineQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<Value>, ApiError> {
    require_staff(&caller)?;
    let Query(query) = query
        .map_err(|rejection| ApiError::bad_request("invalid_query", rejection.body_text(), None))?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("limit is {limit}: use a value from 1 to 500"),
            Some("limit"),
        ));
    }
    let messages = state.commands.store.quarantined_mail(limit).await?;
    let messages: Vec<Value> = messages.iter().map(message_json).collect();
    Ok(axum::Json(json!({ "messages": messages })))
}

fn message_json(message: &MailMessage) -> Value {
    let mut value = serde_json::to_value(message).unwrap_or(Value::Null);
    value["raw_url"] = Value::String(format!("/api/v1/mail/messages/{}/raw", message.id));
    value
}

fn parse_id(id: &str) -> Result<i64, ApiError> {
    id.parse().map_err(|_| ApiError::NotFound {
        what: "mail message",
        key: id.to_owned(),
    })
}

/// `GET /api/v1/mail/messages/{id}`: what became of a message, with a link to its raw bytes.
pub async fn message(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    require_staff(&caller)?;
    let id = parse_id(&id)?;
    let message = state
        .commands
        .store
        .mail_message(id)
        .await?
        .ok_or_else(|| ApiError::NotFound {
            what: "mail message",
            key: id.to_string(),
        })?;
    Ok(axum::Json(message_json(&message)))
}

/// `GET /api/v1/mail/messages/{id}/raw`: the message as it was delivered.
pub async fn raw(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require_staff(&caller)?;
    let id = parse_id(&id)?;
    let raw = state
        .commands
        .store
        .mail_raw(id)
        .await?
        .ok_or_else(|| ApiError::NotFound {
            what: "mail message",
            key: id.to_string(),
        })?;
    Ok((
        [
            (header::CONTENT_TYPE, "message/rfc822".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"message-{id}.eml\""),
            ),
        ],
        raw,
    )
        .into_response())
}

/// `POST /api/v1/mail/messages/{id}/retry` (also `/api/v1/mail/quarantine/{id}/retry`):
/// processes a quarantined or rejected message again.
pub async fn retry(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<IntakeOutcome>, ApiError> {
    require_staff(&caller)?;
    let id = parse_id(&id)?;
    Ok(axum::Json(state.commands.retry_mail(id).await?))
}

/// `GET /api/v1/attachments/{id}`: a stored file, for those who may see its record.
pub async fn attachment(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::NotFound {
        what: "attachment",
        key: id.clone(),
    };
    let number: i64 = id.parse().map_err(|_| not_found())?;
    let (info, content) = state
        .commands
        .store
        .attachment(number)
        .await?
        .ok_or_else(not_found)?;
    let record_id = info.record_id.ok_or_else(not_found)?;
    let record = state
        .commands
        .store
        .get_record_by_id(record_id)
        .await?
        .ok_or_else(not_found)?;
    // Requesters see the files of their own records only, as they see the records.
    state
        .commands
        .visible(&caller.actor, &record.number)
        .await?;
    let Some(content) = content else {
        return Err(ApiError::NotFound {
            what: "attachment content",
            key: format!("{id} ({})", info.skipped.as_deref().unwrap_or("not stored")),
        });
    };
    let name = info.file_name.replace(['"', '\\', '\r', '\n'], "_");
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        content,
    )
        .into_response())
}

/// The attachments of a record as the record view lists them.
pub fn attachments_json(attachments: &[AttachmentInfo]) -> Value {
    Value::Array(
        attachments
            .iter()
            .map(|attachment| {
                let mut value = serde_json::to_value(attachment).unwrap_or(Value::Null);
                if attachment.stored {
                    value["url"] = Value::String(format!("/api/v1/attachments/{}", attachment.id));
                }
                value
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_id_from_raw_header() {
        let raw = b"From: a@example.org\r\nMessage-ID:\r\n <abc@example.org>\r\nSubject: x\r\n\r\nMessage-ID: <body@example.org>\r\n";
        assert_eq!(scan_message_id(raw).as_deref(), Some("abc@example.org"));
        let raw = b"From: a@example.org\n\nMessage-ID: <body@example.org>\n";
        assert_eq!(scan_message_id(raw), None);
        let raw = b"message-id: plain-id@example.org\n\n";
        assert_eq!(
            scan_message_id(raw).as_deref(),
            Some("plain-id@example.org")
        );
        assert_eq!(scan_message_id(b"Message-ID: <>\n\n"), None);
    }

    #[test]
    fn truncation_counts_characters() {
        assert_eq!(truncate_chars("äöü", 3), "äöü");
        assert_eq!(truncate_chars("äöüß", 3), "äö…");
    }
}
