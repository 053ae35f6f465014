//! Email notifications: deciding, inside the write of a command, which notifications its
//! events send (the definition's `notify:` block), rendering them, and keeping one outbox
//! row per recipient address, with an `email_queued` journal entry each. The
//! [`OutboxWorker`] sends the queued rows later.
//!
//! Rendering happens in the write, so a mail shows the record as it was when its change
//! was made. A notification that must not go out is kept with status `suppressed` and the
//! reason, in this order of checks:
//!
//! 1. the recipient made the change, and their `notify_own_changes` switch is off (but
//!    the acknowledgement of a new record still goes to the person who opened it);
//! 2. the address is flagged undeliverable (a bounce), or only ever sent machine-made mail;
//! 3. an acknowledgement answers a message that replies to one of our automatic messages
//!    (two help desks would otherwise acknowledge each other without end);
//! 4. the address got the mailbox's `notify_limit` of automatic messages within its window.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tend_domain::{Actor, JournalEntry, JournalEvent, Record};
use tend_store::User;
use tend_store::outbox::{self, MailKind, NewOutboxMail, OutboxStatus};
use tend_workflow::mailbox::Sender;
use tend_workflow::notify::RecipientRole;
use tend_workflow::{Definition, DefinitionSet};

/// Name of the system actor of `email_queued` and `email_sent` entries.
pub const NOTIFY_ACTOR: &str = "notify";

/// At most this many earlier Message-IDs go into `References`, newest kept.
pub(crate) const MAX_REFERENCES: usize = 20;

/// Settings of outbound mail that come from the server's options.
#[derive(Debug, Clone)]
pub struct OutboundConfig {
    /// Base URL of the web console, for the links in notifications.
    pub console_url: String,
    /// Sender of records that belong to no mailbox.
    pub default_sender: Sender,
    /// The value of the loop header, which names this Tend instance.
    pub loop_instance: String,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        OutboundConfig {
            console_url: "http://127.0.0.1:8080".to_owned(),
            default_sender: Sender {
                address: "tend@localhost".to_owned(),
                name: Some("Tend".to_owned()),
                reply_to: None,
                message_id_domain: None,
            },
            loop_instance: crate::mail_intake::LOOP_INSTANCE.to_owned(),
        }
    }
}

/// The inbound message a command comes from, when it comes from mail.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceMail {
    pub mailbox: String,
    /// Without angle brackets.
    pub message_id: Option<String>,
    /// Its `In-Reply-To` and `References`, without angle brackets.
    pub parents: Vec<String>,
}

tokio::task_local! {
    static SOURCE_MAIL: SourceMail;
}

/// Runs `work` with `source` as the inbound message of the commands it issues, so their
/// notifications reply to that message.
pub async fn with_source_mail<F: std::future::Future>(source: SourceMail, work: F) -> F::Output {
    SOURCE_MAIL.scope(source, work).await
}

/// Returns the inbound message of the current task's commands, if it comes from mail.
fn current_source() -> Option<SourceMail> {
    SOURCE_MAIL.try_with(Clone::clone).ok()
}

/// The inputs a write needs to queue the notifications of its events. It is built before
/// the write and moved into it.
#[derive(Clone)]
pub(crate) struct NotifyContext {
    set: Arc<DefinitionSet>,
    definition: Arc<Definition>,
    actor: Actor,
    source: Option<SourceMail>,
    config: Arc<OutboundConfig>,
}

impl NotifyContext {
    pub(crate) fn new(
        set: Arc<DefinitionSet>,
        definition: Arc<Definition>,
        actor: &Actor,
        config: Arc<OutboundConfig>,
    ) -> Option<NotifyContext> {
        if definition.notify.is_empty() {
            return None;
        }
        Some(NotifyContext {
            set,
            definition,
            actor: actor.clone(),
            source: current_source(),
            config,
        })
    }
}

/// A notification event of a write, with what the templates may show of it.
#[derive(Debug, Clone, PartialEq)]
struct Occasion {
    /// `on_create`, `on_comment`, `on_assign` or `on_<transition>`.
    name: String,
    transition: Option<String>,
    comment: Option<String>,
}

/// Lists the notification events among `events`, each once, in order.
fn occasions(events: &[JournalEvent]) -> Vec<Occasion> {
    let mut found: Vec<Occasion> = Vec::new();
    let mut add = |occasion: Occasion| {
        if !found.iter().any(|known| known.name == occasion.name) {
            found.push(occasion);
        }
    };
    for event in events {
        match event {
            JournalEvent::Created { fields, .. } => {
                add(Occasion {
                    name: "on_create".into(),
                    transition: None,
                    comment: None,
                });
                if ["assignee", "assignment_group"]
                    .iter()
                    .any(|field| fields.get(*field).is_some_and(|value| !value.is_null()))
                {
                    add(Occasion {
                        name: "on_assign".into(),
                        transition: None,
                        comment: None,
                    });
                }
            }
            JournalEvent::Transitioned { transition, .. } => add(Occasion {
                name: format!("on_{transition}"),
                transition: Some(transition.clone()),
                comment: None,
            }),
            JournalEvent::Commented { text } => add(Occasion {
                name: "on_comment".into(),
                transition: None,
                comment: Some(text.clone()),
            }),
            JournalEvent::FieldChanged { field, to, .. }
                if (field == "assignee" || field == "assignment_group") && !to.is_null() =>
            {
                add(Occasion {
                    name: "on_assign".into(),
                    transition: None,
                    comment: None,
                });
            }
            _ => {}
        }
    }
    // A comment given with a transition belongs to that transition's notification.
    if let Some(comment) = found
        .iter()
        .find(|occasion| occasion.name == "on_comment")
        .and_then(|occasion| occasion.comment.clone())
    {
        for occasion in &mut found {
            if occasion.transition.is_some() {
                occasion.comment = Some(comment.clone());
            }
        }
    }
    found
}

/// One person or address a notification goes to.
#[derive(Debug, Clone)]
pub(crate) struct Recipient {
    pub(crate) address: String,
    name: String,
    pub(crate) user: Option<User>,
    role: RecipientRole,
}

/// Queues the notifications of `events`, which were just written on `record`, inside the
/// same write job, and journals each on the record. Returns the journal entries added.
pub(crate) async fn queue_notifications(
    tx: &tend_store::Transaction,
    context: &NotifyContext,
    record: &Record,
    events: &[JournalEvent],
    now: DateTime<Utc>,
) -> Result<Vec<JournalEntry>, tend_store::Error> {
    let occasions = occasions(events);
    if occasions.is_empty() {
        return Ok(Vec::new());
    }
    let (mailbox_name, sender, limit, mailbox_locale) = sender_of(context, record);
    let mut thread = outbox::thread_message_ids(tx, record.id).await?;
    if let Some(source) = &context.source
        && let Some(id) = &source.message_id
    {
        if !thread.ids.contains(id) {
            thread.ids.push(id.clone());
        }
        thread.latest_received = Some(id.clone());
    }
    let actor_user = tend_store::users_named(tx, std::slice::from_ref(&context.actor.name))
        .await?
        .into_iter()
        .next();
    let mut journal = Vec::new();
    for occasion in &occasions {
        let Some(rules) = context.definition.notify.get(&occasion.name) else {
            continue;
        };
        for rule in rules {
            let recipients = recipients(tx, &context.set, record, &rule.to).await?;
            for recipient in recipients {
                let kind = kind_of(occasion, context, actor_user.as_ref());
                let is_creation = occasion.name == "on_create";
                let reason = suppression(
                    tx,
                    context,
                    &recipient,
                    actor_user.as_ref(),
                    (kind, is_creation),
                    limit,
                    now,
                )
                .await?;
                let data = template_data(context, record, occasion, &recipient);
                // The recipient's language, else the mailbox's, else the default variant.
                let locale = recipient
                    .user
                    .as_ref()
                    .and_then(|user| user.locale.as_deref())
                    .or(mailbox_locale.as_deref());
                let rendered = match context
                    .set
                    .notifications
                    .render(&rule.template, locale, &data)
                {
                    Ok(rendered) => rendered,
                    Err(error) => {
                        tracing::error!(record.number = record.number, %error, "a notification could not be rendered; it is not queued");
                        journal.push(JournalEvent::RuleFailed {
                            rule: format!("notify.{}", occasion.name),
                            error: error.to_string(),
                        });
                        continue;
                    }
                };
                let tag = format!("[{}]", record.number);
                let subject = if rendered.subject.contains(&tag) {
                    rendered.subject
                } else {
                    format!("{tag} {}", rendered.subject)
                };
                let message_id = new_message_id(&record.number, &sender.domain());
                let in_reply_to = thread
                    .latest_received
                    .clone()
                    .or_else(|| thread.ids.last().cloned());
                let skip = thread.ids.len().saturating_sub(MAX_REFERENCES);
                let references: Vec<String> = thread.ids[skip..].to_vec();
                let status = if reason.is_some() {
                    OutboxStatus::Suppressed
                } else {
                    OutboxStatus::Queued
                };
                let mail = NewOutboxMail {
                    record_id: record.id,
                    record_number: record.number.clone(),
                    mailbox: mailbox_name.clone(),
                    event: occasion.name.clone(),
                    template: rule.template.clone(),
                    recipient: recipient.address.clone(),
                    from_address: sender.address.clone(),
                    from_name: sender.name.clone(),
                    reply_to: sender.reply_to.clone(),
                    subject: subject.clone(),
                    text: rendered.text,
                    html: rendered.html,
                    message_id: message_id.clone(),
                    in_reply_to,
                    references,
                    kind,
                    status,
                    reason: reason.clone(),
                    created_at: now,
                };
                let id = outbox::insert_outbox(tx, &mail).await?;
                if status == OutboxStatus::Queued {
                    tracing::debug!(
                        record.number = record.number,
                        outbox = id,
                        to = recipient.address,
                        "notification queued"
                    );
                } else {
                    tracing::info!(
                        record.number = record.number,
                        outbox = id,
                        to = recipient.address,
                        reason = reason.as_deref().unwrap_or_default(),
                        "notification suppressed"
                    );
                }
                journal.push(JournalEvent::EmailQueued {
                    outbox: id,
                    message_id,
                    notify: occasion.name.clone(),
                    template: rule.template.clone(),
                    to: recipient.address.clone(),
                    subject,
                    status: status.as_str().to_owned(),
                    reason,
                });
            }
        }
    }
    if journal.is_empty() {
        return Ok(Vec::new());
    }
    tend_store::append_journal(tx, record.id, NOTIFY_ACTOR, now, &journal).await
}

/// Returns the mailbox of `record` (the one its message came to, else the first that
/// opens records of its process), its sender, its limit of automatic mail and its locale.
fn sender_of(
    context: &NotifyContext,
    record: &Record,
) -> (
    String,
    Sender,
    tend_workflow::mailbox::RateLimit,
    Option<String>,
) {
    mailbox_sender(
        &context.set,
        &context.config,
        context
            .source
            .as_ref()
            .map(|source| source.mailbox.as_str()),
        record,
    )
}

/// Returns the mailbox `source_mailbox` (or else the first that opens records of
/// `record`'s process), its sender, its limit of automatic mail and its locale.
pub(crate) fn mailbox_sender(
    set: &DefinitionSet,
    config: &OutboundConfig,
    source_mailbox: Option<&str>,
    record: &Record,
) -> (
    String,
    Sender,
    tend_workflow::mailbox::RateLimit,
    Option<String>,
) {
    let mailboxes = &set.mailboxes;
    let mailbox = source_mailbox
        .and_then(|name| mailboxes.get(name))
        .or_else(|| {
            mailboxes
                .values()
                .find(|mailbox| mailbox.file.process == record.process)
        });
    match mailbox {
        Some(mailbox) => {
            let mut sender = mailbox.sender();
            if mailbox.file.reply_tokens {
                // Replies go to the record's plus address, which threads them even from a
                // mail client that drops the references and the subject tag.
                let base = sender.reply_to.as_deref().unwrap_or(&sender.address);
                sender.reply_to = plus_address(base, &record.number);
            }
            (
                mailbox.name.clone(),
                sender,
                mailbox.file.notify_limit,
                mailbox.file.locale.clone(),
            )
        }
        None => (
            String::new(),
            config.default_sender.clone(),
            tend_workflow::mailbox::RateLimit {
                messages: 3,
                within: tend_workflow::Span { minutes: 60 },
            },
            None,
        ),
    }
}

/// Builds `local+TOKEN@domain` from `address`, or `None` when it has no `@`.
fn plus_address(address: &str, token: &str) -> Option<String> {
    let (local, domain) = address.rsplit_once('@')?;
    let local = local.split_once('+').map_or(local, |(head, _)| head);
    Some(format!("{local}+{token}@{domain}"))
}

/// Returns the kind of a notification: `auto-replied` for the acknowledgement of a
/// message, `personal` for a comment a person wrote, else `auto-generated`.
fn kind_of(occasion: &Occasion, context: &NotifyContext, actor: Option<&User>) -> MailKind {
    match occasion.name.as_str() {
        "on_create" if context.source.is_some() => MailKind::AutoReplied,
        "on_comment" if actor.is_some() => MailKind::Personal,
        _ => MailKind::AutoGenerated,
    }
}

/// Returns why the notification to `recipient` must not be sent, if it must not.
async fn suppression(
    tx: &tend_store::Transaction,
    context: &NotifyContext,
    recipient: &Recipient,
    actor: Option<&User>,
    (kind, is_creation): (MailKind, bool),
    limit: tend_workflow::mailbox::RateLimit,
    now: DateTime<Utc>,
) -> Result<Option<String>, tend_store::Error> {
    let own = recipient
        .user
        .as_ref()
        .is_some_and(|user| user.name == context.actor.name)
        || actor
            .and_then(|user| user.email.as_deref())
            .is_some_and(|email| email.eq_ignore_ascii_case(&recipient.address));
    let wants_own = recipient
        .user
        .as_ref()
        .or(actor)
        .is_some_and(|user| user.notify_own_changes);
    // The acknowledgement of a new record goes to the person who opened it: confirming
    // receipt to its author is its purpose.
    if own && !wants_own && !is_creation {
        return Ok(Some(format!(
            "{} made the change, and gets no mail about their own changes unless their notify_own_changes switch is on",
            context.actor.name
        )));
    }
    if let Some(block) = outbox::address_block(tx, &recipient.address).await? {
        return Ok(Some(block));
    }
    if kind == MailKind::AutoReplied
        && let Some(source) = &context.source
        && let Some(ours) = outbox::automatic_message_among(tx, &source.parents).await?
    {
        return Ok(Some(format!(
            "the message replies to our automatic message <{ours}>, and an acknowledgement of it could start a loop between two help desks"
        )));
    }
    if kind.is_automatic() {
        let since = now - limit.within.duration();
        let earlier = outbox::automatic_mail_since(tx, &recipient.address, since).await?;
        if earlier >= u64::from(limit.messages) {
            return Ok(Some(format!(
                "rate limit: {earlier} automatic messages went to {} within {} minutes, and the mailbox allows {} (notify_limit)",
                recipient.address, limit.within.minutes, limit.messages
            )));
        }
    }
    Ok(None)
}

/// Resolves `roles` on `record` to addresses, each once, in the order of the roles.
/// People without an email address are left out.
pub(crate) async fn recipients(
    tx: &tend_store::Transaction,
    set: &DefinitionSet,
    record: &Record,
    roles: &[RecipientRole],
) -> Result<Vec<Recipient>, tend_store::Error> {
    let mut found: Vec<Recipient> = Vec::new();
    for role in roles {
        let mut names: Vec<String> = Vec::new();
        let mut addresses: Vec<String> = Vec::new();
        match role {
            RecipientRole::Requester => {
                names.extend(record.field_str("requester").map(str::to_owned))
            }
            RecipientRole::Assignee => {
                names.extend(record.field_str("assignee").map(str::to_owned))
            }
            RecipientRole::Group => {
                if let Some(group) = record
                    .field_str("assignment_group")
                    .and_then(|group| set.groups.get(group))
                {
                    names.extend(group.members.iter().cloned());
                }
            }
            RecipientRole::Watchers => {
                for watcher in record
                    .field_str("watchers")
                    .unwrap_or_default()
                    .split([',', ';', ' ', '\n'])
                    .filter(|item| !item.is_empty())
                {
                    if watcher.contains('@') {
                        addresses.push(watcher.to_lowercase());
                    } else {
                        names.push(watcher.to_owned());
                    }
                }
            }
            RecipientRole::Approvers => {
                for round in tend_store::approvals::rounds_of(tx, record.id).await? {
                    if !round.is_pending() {
                        continue;
                    }
                    for request in round.counting() {
                        if request.decided_by.is_none() {
                            names.extend(request.users.iter().cloned());
                        }
                    }
                }
            }
        }
        for user in tend_store::users_named(tx, &names).await? {
            let Some(address) = user.email.clone().filter(|_| user.active) else {
                continue;
            };
            addresses.retain(|other| !other.eq_ignore_ascii_case(&address));
            push_recipient(
                &mut found,
                address.to_lowercase(),
                user.name.clone(),
                Some(user),
                *role,
            );
        }
        for address in addresses {
            let user = tend_store::user_with_email(tx, &address).await?;
            let name = user
                .as_ref()
                .map_or_else(|| address.clone(), |user| user.name.clone());
            push_recipient(&mut found, address, name, user, *role);
        }
    }
    Ok(found)
}

fn push_recipient(
    found: &mut Vec<Recipient>,
    address: String,
    name: String,
    user: Option<User>,
    role: RecipientRole,
) {
    if found.iter().any(|known| known.address == address) {
        return;
    }
    found.push(Recipient {
        address,
        name,
        user,
        role,
    });
}

/// Builds the data a template renders. Record values are data only, because handlebars
/// never evaluates data as template source.
fn template_data(
    context: &NotifyContext,
    record: &Record,
    occasion: &Occasion,
    recipient: &Recipient,
) -> Value {
    let definition = &context.definition;
    let state_label = definition
        .states
        .get(&record.state)
        .and_then(|state| state.label.clone())
        .unwrap_or_else(|| record.state.clone());
    json!({
        "record": {
            "number": record.number,
            "process": record.process,
            "process_title": definition.title,
            "title": record.title,
            "description": record.description,
            "state": record.state,
            "state_label": state_label,
            "priority": record.field_str("priority").unwrap_or_default(),
            "fields": record.fields,
            "url": format!("{}/records/{}", context.config.console_url.trim_end_matches('/'), record.number),
        },
        "event": {
            "name": occasion.name,
            "transition": occasion.transition,
            "comment": occasion.comment,
            "actor": context.actor.name,
            "actor_name": context.actor.name,
        },
        "recipient": {
            "name": recipient.name,
            "address": recipient.address,
            "role": recipient.role.as_str(),
        },
    })
}

/// Creates a Message-ID (without angle brackets) for a notification about `number`.
pub(crate) fn new_message_id(number: &str, domain: &str) -> String {
    let random: u64 = rand::random();
    format!(
        "tend.{}.{}.{random:016x}@{domain}",
        number.to_ascii_lowercase(),
        Utc::now().timestamp_micros()
    )
}

/// Query of `GET /api/v1/mail/outbox`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxQuery {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    limit: Option<u64>,
}

/// `GET /api/v1/mail/outbox?status=&limit=`: notifications, newest first, for admins.
pub async fn outbox_list(
    axum::extract::State(state): axum::extract::State<crate::AppState>,
    caller: crate::auth::Caller,
    query: Result<axum::extract::Query<OutboxQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<Value>, crate::error::ApiError> {
    use crate::error::ApiError;
    if !caller.actor.has_role(tend_domain::Role::Admin) {
        return Err(ApiError::Forbidden(
            "the outbox is for administrators: log in as a user with the admin role".into(),
        ));
    }
    let axum::extract::Query(query) = query
        .map_err(|rejection| ApiError::bad_request("invalid_query", rejection.body_text(), None))?;
    let status = match query.status.as_deref() {
        None | Some("") => None,
        Some(text) => Some(
            text.parse::<OutboxStatus>()
                .map_err(|error| ApiError::bad_request("invalid_query", error, Some("status")))?,
        ),
    };
    let limit = query.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("limit is {limit}: use a value from 1 to 500"),
            Some("limit"),
        ));
    }
    let mail = state.commands.store.outbox(status, limit).await?;
    Ok(axum::Json(json!({
        "mail": mail.iter().map(outbox_json).collect::<Vec<_>>()
    })))
}

/// Converts one outbox row to the JSON of the API.
pub fn outbox_json(mail: &tend_store::outbox::OutboxMail) -> Value {
    serde_json::to_value(mail).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plus_address_names_the_record() {
        assert_eq!(
            plus_address("support@example.com", "INC0000042").as_deref(),
            Some("support+INC0000042@example.com")
        );
        assert_eq!(
            plus_address("support+old@example.com", "INC7").as_deref(),
            Some("support+INC7@example.com")
        );
        assert_eq!(plus_address("not an address", "INC7"), None);
    }

    #[test]
    fn occasions_of_a_resolve_with_comment() {
        let events = vec![
            JournalEvent::Transitioned {
                transition: "resolve".into(),
                from: "in_progress".into(),
                to: "resolved".into(),
            },
            JournalEvent::Commented {
                text: "Replaced the toner".into(),
            },
            JournalEvent::FieldChanged {
                field: "assignee".into(),
                from: Value::Null,
                to: json!("tech"),
                rule: None,
                reason: None,
            },
        ];
        let found = occasions(&events);
        let names: Vec<&str> = found
            .iter()
            .map(|occasion| occasion.name.as_str())
            .collect();
        assert_eq!(names, ["on_resolve", "on_comment", "on_assign"]);
        assert_eq!(found[0].comment.as_deref(), Some("Replaced the toner"));
    }

    #[test]
    fn clearing_an_assignee_is_no_assignment() {
        let events = vec![JournalEvent::FieldChanged {
            field: "assignee".into(),
            from: json!("tech"),
            to: Value::Null,
            rule: None,
            reason: None,
        }];
        assert!(occasions(&events).is_empty());
    }

    #[test]
    fn message_ids_are_unique_under_the_domain() {
        let first = new_message_id("INC0000001", "example.com");
        let second = new_message_id("INC0000001", "example.com");
        assert_ne!(first, second);
        assert!(first.starts_with("tend.inc0000001."), "{first}");
        assert!(first.ends_with("@example.com"), "{first}");
    }
}
