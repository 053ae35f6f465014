//! The command path shared by every channel (REST API, web console, CLI imports): load
//! the definition and the record, let the state machine decide, write the outcome and its
//! journal in one transaction.
//!
//! Rules run before the write job is queued, on the caller's task, so that the single
//! writer only does database work. Updates are optimistic: the write checks the record's
//! revision and the command is decided again if another writer came first.

use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use serde_json::Value;
use tend_domain::{Actor, Command, Fields, JournalEntry, JournalEvent, Record, Role};
use tend_store::{Store, approvals};
use tend_workflow::{
    ApprovalPlan, Context, Definition, DefinitionSet, FOLLOW_UP_LINK, LinkedRecord, Outcome,
    Rejection, RuleRunner,
};

use crate::cascade::PendingWork;
use crate::error::ApiError;
use crate::outbound::{NotifyContext, queue_notifications};
use crate::versions::{Loaded, Versions};

/// How often a command is decided again after losing an optimistic-lock race.
pub(crate) const MAX_CONFLICT_RETRIES: usize = 5;

/// Maximum timers that one call of [`Commands::fire_due_timers`] claims.
const TIMER_BATCH: u64 = 100;

/// Name of the system actor that takes automatic transitions.
pub const TIMER_ACTOR: &str = "timer";

/// The loaded definitions and the rule host; swapped as a whole on reload. With
/// [`Engine::open`], it also keeps the older definition versions that records are pinned to
/// (see `versions`).
pub struct Engine {
    pub(crate) definitions: RwLock<Loaded>,
    pub(crate) versions: Option<Versions>,
}

impl Engine {
    /// Creates an engine that decides every command against `definitions`, whatever
    /// version a record is pinned to, and cannot reload.
    pub fn new(definitions: DefinitionSet, rules: Arc<dyn RuleRunner>) -> Engine {
        Engine {
            definitions: RwLock::new(Loaded {
                set: Arc::new(definitions),
                rules,
            }),
            versions: None,
        }
    }

    /// Returns the current definition set with its rules, which new records get.
    pub fn current(&self) -> Loaded {
        self.definitions
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub fn definitions(&self) -> Arc<DefinitionSet> {
        self.current().set
    }

    /// Replaces the current definition set and keeps the current rules.
    pub fn replace_definitions(&self, definitions: DefinitionSet) {
        self.definitions
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .set = Arc::new(definitions);
    }

    pub fn rules(&self) -> Arc<dyn RuleRunner> {
        self.current().rules
    }

    /// The definition a command on `record` is decided against, with its set and rules:
    /// those of the version the record is pinned to.
    pub async fn pinned(&self, record: &Record) -> Result<Pinned, ApiError> {
        let loaded = self.version(&record.definition_version).await?;
        let definition = loaded.definition(&record.process)?;
        Ok(Pinned {
            definition,
            set: loaded.set,
            rules: loaded.rules,
        })
    }

    pub fn definition(&self, process: &str) -> Result<Arc<Definition>, ApiError> {
        self.current().definition(process)
    }
}

/// A record's definition together with the set and the rules it belongs to.
pub struct Pinned {
    pub definition: Arc<Definition>,
    pub set: Arc<DefinitionSet>,
    pub rules: Arc<dyn RuleRunner>,
}

/// Entry point for commands; cheap to clone.
#[derive(Clone)]
pub struct Commands {
    pub store: Store,
    pub engine: Arc<Engine>,
    /// The plugins whose actions records can run.
    pub plugins: Arc<tend_plugin_api::PluginRegistry>,
    /// Settings of the notifications that commands queue.
    pub outbound: Arc<crate::outbound::OutboundConfig>,
}

/// How a command finds its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// As the actor may see it: requesters only their own records.
    Visible,
    /// Without the visibility check: the caller checked that the actor takes part in the
    /// record, as the mail intake does for a watcher who replies.
    Participant,
}

/// The record a reply landed on.
#[derive(Debug, Clone)]
pub enum Replied {
    /// On the record itself, as a comment or with a reopen.
    Appended(Record),
    /// On a new record that refers to `original`, which stays as it was.
    FollowUp { record: Record, original: String },
}

/// A record returned by a create command, with its journal.
#[derive(Debug, Clone)]
pub struct Created {
    pub record: Record,
    pub journal: Vec<JournalEntry>,
    /// False when an idempotency key matched an earlier create.
    pub is_new: bool,
}

/// Input of a create command.
#[derive(Debug, Clone, Default)]
pub struct NewRecord {
    pub title: String,
    pub description: String,
    pub fields: Fields,
    /// Client-chosen key that makes retries of the same create return the same record.
    pub idempotency_key: Option<String>,
    /// Fields the channel sets rather than the person, such as a catalog order's item.
    pub preset: Fields,
}

impl Commands {
    pub fn new(store: Store, engine: Arc<Engine>) -> Commands {
        Commands {
            store,
            engine,
            plugins: Arc::new(tend_plugin_api::PluginRegistry::new()),
            outbound: Arc::new(crate::outbound::OutboundConfig::default()),
        }
    }

    /// Returns these commands with `outbound` as the settings of notifications.
    pub fn with_outbound(self, outbound: crate::outbound::OutboundConfig) -> Commands {
        Commands {
            outbound: Arc::new(outbound),
            ..self
        }
    }

    /// Returns these commands with `plugins` as the plugins records can run.
    pub fn with_plugins(self, plugins: tend_plugin_api::PluginRegistry) -> Commands {
        Commands {
            plugins: Arc::new(plugins),
            ..self
        }
    }

    /// Creates a record of `process`. Returns the record and whether it was created now
    /// (false when an idempotency key matched an earlier create).
    pub async fn create(
        &self,
        actor: &Actor,
        process: &str,
        input: NewRecord,
    ) -> Result<(Record, bool), ApiError> {
        self.create_at(actor, process, input, Utc::now()).await
    }

    /// Like [`Commands::create`], at a given time; replays of recorded histories use it.
    pub async fn create_at(
        &self,
        actor: &Actor,
        process: &str,
        input: NewRecord,
        now: DateTime<Utc>,
    ) -> Result<(Record, bool), ApiError> {
        let created = self.create_journaled(actor, process, input, now).await?;
        Ok((created.record, created.is_new))
    }

    /// Creates a record and returns it with its journal. The journal comes from the write
    /// itself for a new record, and is read back for a replayed idempotent request.
    pub async fn create_journaled(
        &self,
        actor: &Actor,
        process: &str,
        input: NewRecord,
        now: DateTime<Utc>,
    ) -> Result<Created, ApiError> {
        let current = self.engine.current();
        let definition = current.definition(process)?;
        let idempotency_key = input
            .idempotency_key
            .as_deref()
            .map(|key| format!("{}:{key}", actor.name));
        if let Some(key) = &idempotency_key
            && let Some(record) = self.replayed(key).await?
        {
            return self.existing(record).await;
        }
        let cmdb = self
            .cmdb_context(&definition, None, &input.fields, Some(&actor.name))
            .await?;
        let mut outcome =
            self.decide_create(actor, &current, &definition, input, now, cmdb.as_ref())?;
        let follow_ons = std::mem::take(&mut outcome.follow_ons);
        let pending = PendingWork::encode(&[], &follow_ons, 0);
        let clocks = crate::clocks::update(
            &current.set,
            &definition,
            &outcome.record,
            &[],
            &[],
            &outcome.events,
            outcome.record.created_at,
        );
        outcome.events.extend(clocks.events.iter().cloned());
        let prefix = definition.number_prefix.clone();
        let digits = definition.number_digits;
        let actor_name = actor.name.clone();
        let key = idempotency_key.clone();
        let notify = NotifyContext::new(
            current.set.clone(),
            definition.clone(),
            actor,
            self.outbound.clone(),
        );
        let stored = self
            .store
            .write(move |tx| {
                Box::pin(async move {
                    if let Some(key) = &key
                        && let Some(number) = tend_store::find_idempotent(tx, key).await?
                    {
                        return Ok(Err(number));
                    }
                    let (record, mut journal) = tend_store::insert_record_journaled(
                        tx,
                        &outcome.record,
                        &prefix,
                        digits,
                        &actor_name,
                        &outcome.events,
                    )
                    .await?;
                    if let Some(notify) = &notify {
                        journal.extend(
                            queue_notifications(tx, notify, &record, &outcome.events, now).await?,
                        );
                    }
                    // A new record has no timers yet, so only plans need a write: under
                    // load every statement is a round trip to the store.
                    if !outcome.timers.is_empty() {
                        replace_timers(tx, &record, &outcome).await?;
                    }
                    clocks.store(tx, &record).await?;
                    if let Some(key) = &key {
                        tend_store::save_idempotent(tx, key, &record.number).await?;
                    }
                    let queued = queue_work(tx, &record, pending.as_deref()).await?;
                    Ok(Ok((record, journal, queued)))
                })
            })
            .await?;
        match stored {
            Ok((record, journal, queued)) => {
                if !follow_ons.is_empty() {
                    self.after_commit(&record, &[], follow_ons, 0, queued).await;
                }
                if !definition.trends.is_empty() {
                    self.detect_trends(&record).await;
                }
                Ok(Created {
                    record,
                    journal,
                    is_new: true,
                })
            }
            Err(number) => self.existing(self.load(&number).await?).await,
        }
    }

    /// Decides a create command of `definition`'s process, with its on_create rules, under
    /// the definition set `current` that `definition` belongs to; writes nothing.
    fn decide_create(
        &self,
        actor: &Actor,
        current: &Loaded,
        definition: &Definition,
        input: NewRecord,
        now: DateTime<Utc>,
        cmdb: Option<&Value>,
    ) -> Result<Outcome, ApiError> {
        let command = Command::Create {
            title: input.title,
            description: input.description,
            fields: input.fields,
            preset: input.preset,
        };
        let context = Context {
            definition,
            version: &current.set.version,
            rules: current.rules.as_ref(),
            actor,
            now,
            groups: &current.set.groups,
            links: &[],
            cmdb,
        };
        let mut outcome = tend_workflow::execute(&context, None, &command)?;
        crate::calendars::count_business_time(&current.set, definition, &mut outcome);
        Ok(outcome)
    }

    async fn existing(&self, record: Record) -> Result<Created, ApiError> {
        let journal = self.store.journal(record.id).await?;
        Ok(Created {
            record,
            journal,
            is_new: false,
        })
    }

    async fn replayed(&self, key: &str) -> Result<Option<Record>, ApiError> {
        let key = key.to_owned();
        let number = self
            .store
            .write(move |tx| Box::pin(async move { tend_store::find_idempotent(tx, &key).await }))
            .await?;
        match number {
            Some(number) => Ok(Some(self.load(&number).await?)),
            None => Ok(None),
        }
    }

    /// Loads a record the actor may see. Requesters see only their own records; to them a
    /// record of someone else does not exist.
    pub async fn visible(&self, actor: &Actor, number: &str) -> Result<Record, ApiError> {
        let record = self.load(number).await?;
        if !actor.is_staff() && record.field_str("requester") != Some(actor.name.as_str()) {
            return Err(ApiError::NotFound {
                what: "record",
                key: number.to_owned(),
            });
        }
        Ok(record)
    }

    /// Loads a record with the visibility check that `access` selects.
    async fn load_with(
        &self,
        actor: &Actor,
        number: &str,
        access: Access,
    ) -> Result<Record, ApiError> {
        match access {
            Access::Visible => self.visible(actor, number).await,
            Access::Participant => self.load(number).await,
        }
    }

    /// Loads a record without a visibility check, which callers make themselves.
    pub(crate) async fn load_record(&self, number: &str) -> Result<Record, ApiError> {
        self.load(number).await
    }

    pub(crate) async fn load(&self, number: &str) -> Result<Record, ApiError> {
        self.store
            .get_record(number)
            .await?
            .ok_or_else(|| ApiError::NotFound {
                what: "record",
                key: number.to_owned(),
            })
    }

    /// Applies a requester's reply: reopens the record, opens a follow-up record, or adds a
    /// comment, as the definition's reply policy decides. A follow-up record is linked to
    /// the original with a `follow_up_of` link when the definitions declare that link type
    /// for the process.
    pub async fn reply(
        &self,
        actor: &Actor,
        number: &str,
        text: &str,
    ) -> Result<Replied, ApiError> {
        self.reply_with(actor, number, text, Access::Visible).await
    }

    /// Like [`Commands::reply`], with the record loaded as `access` selects.
    pub(crate) async fn reply_with(
        &self,
        actor: &Actor,
        number: &str,
        text: &str,
        access: Access,
    ) -> Result<Replied, ApiError> {
        let mut attempt = 0;
        loop {
            let current = self.load_with(actor, number, access).await?;
            let pinned = self.engine.pinned(&current).await?;
            let (definition, set) = (&pinned.definition, &pinned.set);
            let now = Utc::now();
            let links = self.linked_records(&current).await?;
            let context = Context {
                definition,
                version: &set.version,
                rules: pinned.rules.as_ref(),
                actor,
                now,
                groups: &set.groups,
                links: &links,
                cmdb: None,
            };
            let command = Command::Reply {
                text: text.to_owned(),
            };
            let outcome = tend_workflow::execute(&context, Some(&current), &command)?;
            let Some(follow_up) = outcome.follow_up else {
                let record = self
                    .apply_with_access(actor, number, command, None, None, 0, None, access)
                    .await?
                    .expect("a command without a state precondition is never skipped");
                return Ok(Replied::Appended(record));
            };
            let mut fields = Fields::new();
            fields.insert(
                follow_up.field,
                serde_json::Value::String(follow_up.of.clone()),
            );
            let input = NewRecord {
                title: follow_up_title(&current),
                description: text.to_owned(),
                fields,
                idempotency_key: None,
                preset: Fields::new(),
            };
            match self.open_follow_up(actor, current, input, now).await {
                Ok(record) => {
                    return Ok(Replied::FollowUp {
                        record,
                        original: follow_up.of,
                    });
                }
                // The original changed since it was read: decide the reply again.
                Err(ApiError::Conflict(_)) if attempt < MAX_CONFLICT_RETRIES => {
                    attempt += 1;
                    tracing::debug!(
                        record.number = number,
                        attempt,
                        "retrying a follow-up after a write conflict"
                    );
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Creates the follow-up record of `original` under the current definition set, like
    /// every new record, and, in the same write, links it to the original when that set
    /// allows a `follow_up_of` link between them.
    async fn open_follow_up(
        &self,
        actor: &Actor,
        original: Record,
        input: NewRecord,
        now: DateTime<Utc>,
    ) -> Result<Record, ApiError> {
        let current = self.engine.current();
        let definition = current.definition(&original.process)?;
        let cmdb = self
            .cmdb_context(&definition, None, &input.fields, Some(&actor.name))
            .await?;
        let mut outcome =
            self.decide_create(actor, &current, &definition, input, now, cmdb.as_ref())?;
        let follow_ons = std::mem::take(&mut outcome.follow_ons);
        let pending = PendingWork::encode(&[], &follow_ons, 0);
        let clocks = crate::clocks::update(
            &current.set,
            &definition,
            &outcome.record,
            &[],
            &[],
            &outcome.events,
            outcome.record.created_at,
        );
        outcome.events.extend(clocks.events.iter().cloned());
        let link = current
            .set
            .link_type(FOLLOW_UP_LINK)
            .filter(|link| {
                link.allows_source(&original.process) && link.allows_target(&original.process)
            })
            .is_some();
        let prefix = definition.number_prefix.clone();
        let digits = definition.number_digits;
        let actor_name = actor.name.clone();
        let notify = NotifyContext::new(
            current.set.clone(),
            definition.clone(),
            actor,
            self.outbound.clone(),
        );
        let record = self
            .store
            .write(move |tx| {
                Box::pin(async move {
                    let record = tend_store::insert_record(
                        tx,
                        &outcome.record,
                        &prefix,
                        digits,
                        &actor_name,
                        &outcome.events,
                    )
                    .await?;
                    if let Some(notify) = &notify {
                        queue_notifications(tx, notify, &record, &outcome.events, now).await?;
                    }
                    if !outcome.timers.is_empty() {
                        replace_timers(tx, &record, &outcome).await?;
                    }
                    clocks.store(tx, &record).await?;
                    let queued = queue_work(tx, &record, pending.as_deref()).await?;
                    if !link {
                        return Ok((record, queued));
                    }
                    let (record, _) = tend_store::link_records(
                        tx,
                        &record,
                        &original,
                        FOLLOW_UP_LINK,
                        &actor_name,
                        now,
                    )
                    .await?;
                    Ok((record, queued))
                })
            })
            .await?;
        let (record, queued) = record;
        if !follow_ons.is_empty() {
            self.after_commit(&record, &[], follow_ons, 0, queued).await;
        }
        Ok(record)
    }

    /// Links record `number` to record `target` with a link of type `link_type`, directed
    /// from `number` to `target`, and appends a `linked` entry to both journals in the same
    /// write. Both records must be visible to `actor`, and only staff may link. Returns the
    /// record `number` as stored.
    pub async fn link(
        &self,
        actor: &Actor,
        number: &str,
        link_type: &str,
        target: &str,
    ) -> Result<Record, ApiError> {
        self.link_at(actor, number, link_type, target, Utc::now())
            .await
    }

    /// Like [`Commands::link`], at a given time; follow-ons of replayed commands use it.
    pub async fn link_at(
        &self,
        actor: &Actor,
        number: &str,
        link_type: &str,
        target: &str,
        at: DateTime<Utc>,
    ) -> Result<Record, ApiError> {
        let mut attempt = 0;
        loop {
            let source = self.visible(actor, number).await?;
            let target = self.visible(actor, target).await?;
            if !actor.is_staff() {
                return Err(ApiError::Rejected(Rejection::Forbidden {
                    what: "linking records".into(),
                    roles: vec![Role::Technician, Role::ProcessOwner, Role::Admin],
                }));
            }
            let set = self.engine.definitions();
            check_link(&set, link_type, &source, &target)?;

            let (source_number, target_number) = (source.number.clone(), target.number.clone());
            let link_type_name = link_type.to_owned();
            let actor_name = actor.name.clone();
            let result = self
                .store
                .write(move |tx| {
                    Box::pin(async move {
                        tend_store::link_records(
                            tx,
                            &source,
                            &target,
                            &link_type_name,
                            &actor_name,
                            at,
                        )
                        .await
                    })
                })
                .await;
            match result {
                Ok((record, _)) => return Ok(record),
                Err(tend_store::Error::Conflict { .. }) if attempt < MAX_CONFLICT_RETRIES => {
                    attempt += 1;
                    tracing::debug!(
                        record.number = number,
                        attempt,
                        "retrying a link after a write conflict"
                    );
                }
                Err(tend_store::Error::Duplicate { .. }) => {
                    return Err(ApiError::Duplicate(format!(
                        "{source_number} is already linked to {target_number} as `{link_type}`, so nothing was written"
                    )));
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// Applies a transition, update or comment to an existing record.
    pub async fn apply(
        &self,
        actor: &Actor,
        number: &str,
        command: Command,
    ) -> Result<Record, ApiError> {
        self.apply_at(actor, number, command, None).await
    }

    /// Like [`Commands::apply`], at a given time (`None` for the current time).
    pub async fn apply_at(
        &self,
        actor: &Actor,
        number: &str,
        command: Command,
        at: Option<DateTime<Utc>>,
    ) -> Result<Record, ApiError> {
        let applied = self
            .apply_if_entered_at(actor, number, command, at, None, None)
            .await?;
        Ok(applied.expect("a command without a state precondition is never skipped"))
    }

    /// Applies `command` as [`Commands::apply_at`] does, but only while the record's
    /// `state_changed_at` equals `entered_at` (when given), and consuming timer `timer`
    /// (when given) in the same write. Returns `None`, writing nothing, when the record
    /// has left that state or entered it again since, or the timer is gone.
    async fn apply_if_entered_at(
        &self,
        actor: &Actor,
        number: &str,
        command: Command,
        at: Option<DateTime<Utc>>,
        entered_at: Option<DateTime<Utc>>,
        timer: Option<(i64, DateTime<Utc>)>,
    ) -> Result<Option<Record>, ApiError> {
        self.apply_with_depth(actor, number, command, at, entered_at, 0, timer)
            .await
    }

    /// Applies a command and then its follow-ons: the transitions, links and new records
    /// its rules proposed, and the reactions of linked records to a transition. `depth`
    /// counts how many follow-ons led here, so that rules that keep triggering each other
    /// stop.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn apply_with_depth(
        &self,
        actor: &Actor,
        number: &str,
        command: Command,
        at: Option<DateTime<Utc>>,
        entered_at: Option<DateTime<Utc>>,
        depth: usize,
        consume: Option<(i64, DateTime<Utc>)>,
    ) -> Result<Option<Record>, ApiError> {
        let access = Access::Visible;
        self.apply_with_access(
            actor, number, command, at, entered_at, depth, consume, access,
        )
        .await
    }

    /// Like [`Commands::apply_with_depth`], with the record loaded as `access` selects.
    #[allow(clippy::too_many_arguments)]
    async fn apply_with_access(
        &self,
        actor: &Actor,
        number: &str,
        command: Command,
        at: Option<DateTime<Utc>>,
        entered_at: Option<DateTime<Utc>>,
        depth: usize,
        consume: Option<(i64, DateTime<Utc>)>,
        access: Access,
    ) -> Result<Option<Record>, ApiError> {
        let mut attempt = 0;
        loop {
            let current = self.load_with(actor, number, access).await?;
            if let Some(entered_at) = entered_at
                && current.state_changed_at.timestamp_micros() != entered_at.timestamp_micros()
            {
                return Ok(None);
            }
            let pinned = self.engine.pinned(&current).await?;
            let links = self.linked_records(&current).await?;
            let needs_approval = match &command {
                Command::Transition { name, .. } => pinned
                    .definition
                    .transition(name)
                    .is_some_and(|step| step.approval.is_some()),
                _ => false,
            };
            let rounds = if needs_approval {
                self.store.approval_rounds(current.id).await?
            } else {
                Vec::new()
            };
            if let Some(pending) = rounds.iter().find(|round| round.is_pending()) {
                return Err(ApiError::Duplicate(format!(
                    "{number} already waits for approval of `{}` (round {}, asked by {}): let the approvers decide before asking again",
                    pending.transition, pending.round, pending.requested_by
                )));
            }
            let changed = match &command {
                Command::Update { fields, .. } | Command::Transition { fields, .. } => {
                    fields.clone()
                }
                _ => Fields::new(),
            };
            let cmdb = self
                .cmdb_context(&pinned.definition, Some(&current), &changed, None)
                .await?;
            let context = Context {
                definition: &pinned.definition,
                version: &pinned.set.version,
                rules: pinned.rules.as_ref(),
                actor,
                now: at.unwrap_or_else(Utc::now),
                groups: &pinned.set.groups,
                links: &links,
                cmdb: cmdb.as_ref(),
            };
            let mut outcome = tend_workflow::execute(&context, Some(&current), &command)?;
            crate::calendars::count_business_time(&pinned.set, &pinned.definition, &mut outcome);
            if let Command::Transition { name, .. } = &command
                && let Some(schedule) = &pinned.definition.schedule
                && schedule.check_on.contains(name)
            {
                self.check_schedule(schedule, &pinned.set, &outcome.record, name)
                    .await?;
            }
            if outcome.follow_up.is_some() {
                return Err(ApiError::bad_request(
                    "follow_up_required",
                    format!(
                        "{number} no longer takes replies; send the reply to open a follow-up record"
                    ),
                    None,
                ));
            }
            if outcome.is_empty() {
                return Ok(Some(current));
            }
            let round = outcome.approval.take().map(|plan| {
                let round = i64::try_from(rounds.len()).unwrap_or(i64::MAX) + 1;
                for event in &mut outcome.events {
                    if let JournalEvent::ApprovalRequested { round: number, .. } = event {
                        *number = round;
                    }
                }
                new_round(round, plan, actor, context.now)
            });
            let actor_name = actor.name.clone();
            let follow_ons = std::mem::take(&mut outcome.follow_ons);
            let pending = PendingWork::encode(&outcome.events, &follow_ons, depth);
            // Approvers decide on the window they were shown: moving it, or changing its
            // CIs, while they decide cancels their round.
            let window_moved = pinned.definition.schedule.as_ref().is_some_and(|schedule| {
                outcome.events.iter().any(|event| {
                    matches!(event, JournalEvent::FieldChanged { field, .. }
                        if *field == schedule.start || *field == schedule.end || schedule.cis.contains(field))
                })
            });
            let set = pinned.set.clone();
            let definition = pinned.definition.clone();
            let notify = NotifyContext::new(
                set.clone(),
                definition.clone(),
                actor,
                self.outbound.clone(),
            );
            let late = consume.and_then(|(_, due_at)| match &command {
                Command::Transition { name, .. } => late_event(
                    &format!("automatic transition `{name}`"),
                    due_at,
                    context.now,
                ),
                _ => None,
            });
            let result = self
                .store
                .write(move |tx| {
                    Box::pin(async move {
                        if let Some((timer, _)) = consume
                            && !tend_store::consume_timer(tx, timer).await?
                        {
                            return Err(tend_store::Error::TimerGone { id: timer });
                        }
                        // A late timer's entry comes before the transition it takes.
                        let mut events: Vec<JournalEvent> = late.iter().cloned().collect();
                        events.extend(outcome.events.iter().cloned());
                        if outcome.entered_state() {
                            events.extend(cancel_pending_rounds(tx, &outcome.record).await?);
                        } else if window_moved {
                            let cancelled = cancel_pending_rounds(tx, &outcome.record).await?;
                            if !cancelled.is_empty() {
                                events.extend(cancelled);
                                events.push(JournalEvent::Note {
                                    text: "The planned window or its configuration items changed, so the pending approval round was cancelled: ask for approval again".into(),
                                    rule: "approvals".into(),
                                    reason: "Approvers decide on the window they were shown".into(),
                                });
                            }
                        }
                        let clocks = crate::clocks::prepare(
                            tx,
                            &set,
                            &definition,
                            &outcome.record,
                            &events,
                            outcome.record.updated_at,
                        )
                        .await?;
                        events.extend(clocks.events.iter().cloned());
                        let record =
                            tend_store::update_record(tx, &outcome.record, &actor_name, &events)
                                .await?;
                        if let Some(notify) = &notify {
                            queue_notifications(tx, notify, &record, &events, record.updated_at)
                                .await?;
                        }
                        clocks.store(tx, &record).await?;
                        if let Some(round) = &round {
                            approvals::open_round(tx, record.id, &record.number, round).await?;
                        }
                        if outcome.entered_state() {
                            replace_timers(tx, &record, &outcome).await?;
                        }
                        let queued = queue_work(tx, &record, pending.as_deref()).await?;
                        Ok((record, events, queued))
                    })
                })
                .await;
            match result {
                Ok((record, events, queued)) => {
                    self.after_commit(&record, &events, follow_ons, depth, queued)
                        .await;
                    return Ok(Some(record));
                }
                Err(tend_store::Error::Conflict { .. }) if attempt < MAX_CONFLICT_RETRIES => {
                    attempt += 1;
                    tracing::debug!(
                        record.number = number,
                        attempt,
                        "retrying after a write conflict"
                    );
                }
                Err(tend_store::Error::TimerGone { .. }) => return Ok(None),
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// Refuses transition `name` while `record`'s planned window overlaps another record's
    /// window on a shared configuration item, or a freeze window.
    pub(crate) async fn check_schedule(
        &self,
        schedule: &tend_workflow::schedule::ScheduleDef,
        set: &DefinitionSet,
        record: &Record,
        name: &str,
    ) -> Result<(), ApiError> {
        if schedule.window(record).is_none() {
            return Ok(());
        }
        let mut others = Vec::new();
        let mut filter = tend_store::RecordFilter {
            process: Some(record.process.clone()),
            open: Some(true),
            limit: tend_store::MAX_LIMIT,
            ..Default::default()
        };
        // NOTE: only the newest 20 pages of open records are compared, which is plenty
        // for changes but would miss conflicts in a process with more open records.
        for _ in 0..20 {
            let page = self.store.list_records(&filter).await?;
            others.extend(page.records);
            match page.next_cursor {
                Some(cursor) => filter.cursor = Some(cursor),
                None => break,
            }
        }
        let conflicts = schedule.conflicts(record, &others, &set.freeze_windows);
        if conflicts.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Rejected(Rejection::ScheduleConflict {
                transition: name.to_owned(),
                conflicts,
            }))
        }
    }

    /// Loads the records linked to `record`, as rules see them.
    /// Loads what the CMDB knows about a record for its rules, when its process has a
    /// `ci`, `cis` or `target_collection` field: the record's fields as they will be after
    /// `changed`, and its requester (`creator` for a new record).
    async fn cmdb_context(
        &self,
        definition: &Definition,
        current: Option<&Record>,
        changed: &Fields,
        creator: Option<&str>,
    ) -> Result<Option<Value>, ApiError> {
        if !["ci", "cis", "target_collection"]
            .iter()
            .any(|field| definition.fields.contains_key(*field))
        {
            return Ok(None);
        }
        let mut fields = current
            .map(|record| record.fields.clone())
            .unwrap_or_default();
        for (name, value) in changed {
            fields.insert(name.clone(), value.clone());
        }
        let requester = fields
            .get("requester")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| creator.map(str::to_owned));
        let schema = self.engine.definitions().cmdb.clone();
        let context = crate::record_cmdb::context(
            self.store.db(),
            &schema,
            &fields,
            requester.as_deref(),
            current.map(|record| record.number.as_str()),
        )
        .await?;
        Ok((!context.is_null()).then_some(context))
    }

    pub(crate) async fn linked_records(
        &self,
        record: &Record,
    ) -> Result<Vec<LinkedRecord>, ApiError> {
        if record.id == 0 {
            return Ok(Vec::new());
        }
        Ok(self
            .store
            .links_of(record.id)
            .await?
            .into_iter()
            .map(|link| LinkedRecord {
                link_type: link.link_type,
                outgoing: link.direction.is_outgoing(),
                number: link.number,
                process: link.process,
                state: link.state,
                open: link.open,
            })
            .collect())
    }

    /// Fires the timers due at `now`, earliest first: automatic transitions and SLA
    /// thresholds. Each timer fires in the write that applies its effect and deletes it,
    /// so a node stopped at any point leaves every timer either fired or due, and nodes
    /// reading the same timers fire each once. A timer fired more than a minute after its
    /// due time (after downtime) adds a `fired_late` journal entry. Reads batches of 100 until no
    /// timer is due. Returns how many timers took effect.
    pub async fn fire_due_timers(&self, now: DateTime<Utc>) -> Result<usize, ApiError> {
        let mut taken = 0;
        let mut last_batch: Vec<i64> = Vec::new();
        loop {
            let due = tend_store::due_timers(self.store.db(), now, TIMER_BATCH).await?;
            let ids: Vec<i64> = due.iter().map(|timer| timer.id).collect();
            // A batch that took no effect and came back unchanged cannot make progress.
            if due.is_empty() || ids == last_batch {
                return Ok(taken);
            }
            last_batch = ids;
            for timer in due {
                if self.fire_timer(&timer, now).await {
                    taken += 1;
                }
            }
        }
    }

    /// Fires one due timer; returns whether it took effect. A timer that can no longer
    /// take effect (its record left the state, or is gone, or the transition is refused)
    /// is deleted.
    async fn fire_timer(&self, timer: &tend_store::DueTimer, now: DateTime<Utc>) -> bool {
        let applied = match &timer.sla {
            Some(sla) => self.fire_sla_timer(timer, sla, now).await,
            None => {
                let actor = Actor::system(TIMER_ACTOR);
                let command = Command::Transition {
                    name: timer.transition.clone(),
                    fields: Fields::new(),
                    comment: None,
                };
                self.apply_if_entered_at(
                    &actor,
                    &timer.number,
                    command,
                    Some(now),
                    Some(timer.state_changed_at),
                    Some((timer.id, timer.due_at)),
                )
                .await
                .map(|record| record.is_some())
            }
        };
        let what = if timer.sla.is_some() {
            "SLA threshold"
        } else {
            "automatic transition"
        };
        match applied {
            Ok(true) => return true,
            Ok(false) => tracing::debug!(
                record.number = timer.number,
                timer.id = timer.id,
                "{what} skipped: its record changed since it was planned"
            ),
            Err(ApiError::NotFound { .. }) => tracing::debug!(
                record.number = timer.number,
                timer.id = timer.id,
                "{what} skipped: its record no longer exists"
            ),
            Err(
                error @ (ApiError::Rejected(_)
                | ApiError::BadRequest { .. }
                | ApiError::Forbidden(_)),
            ) => tracing::warn!(
                record.number = timer.number,
                timer.id = timer.id,
                %error,
                "{what} was rejected; the timer is dropped"
            ),
            // A database error or a lost race may pass: the timer stays due and is tried
            // again at the next run.
            Err(error) => {
                tracing::warn!(
                    record.number = timer.number,
                    timer.id = timer.id,
                    %error,
                    "{what} failed; trying again at the next run"
                );
                return false;
            }
        }
        let id = timer.id;
        if let Err(error) = self
            .store
            .write(move |tx| Box::pin(async move { tend_store::consume_timer(tx, id).await }))
            .await
        {
            tracing::warn!(timer.id = id, %error, "dropping a timer failed");
        }
        false
    }
}

/// Returns the `fired_late` event of a timer that fires more than a minute after `due_at`.
pub(crate) fn late_event(
    timer: &str,
    due_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<JournalEvent> {
    (now - due_at > chrono::TimeDelta::minutes(1)).then(|| JournalEvent::FiredLate {
        timer: timer.to_owned(),
        due_at,
    })
}

/// Queues the work a write leaves for after its commit, inside the write job.
pub(crate) async fn queue_work(
    tx: &tend_store::Transaction,
    record: &Record,
    pending: Option<&str>,
) -> Result<Option<i64>, tend_store::Error> {
    match pending {
        Some(payload) => Ok(Some(
            tend_store::follow_ons::queue_follow_on(tx, record.id, payload).await?,
        )),
        None => Ok(None),
    }
}

/// Turns an approval plan into the round to store.
fn new_round(
    round: i64,
    plan: ApprovalPlan,
    actor: &Actor,
    now: DateTime<Utc>,
) -> approvals::NewRound {
    approvals::NewRound {
        round,
        transition: plan.transition,
        required: i64::try_from(plan.required).unwrap_or(i64::MAX),
        requested_by: actor.name.clone(),
        requested_at: now,
        due_at: plan.due_at,
        comment: plan.comment,
        requests: plan
            .slots
            .into_iter()
            .map(|slot| (slot.approver, slot.users))
            .collect(),
    }
}

/// Cancels the pending approval rounds of a record that moved to another state, inside
/// a write job, and returns the journal events that record it.
async fn cancel_pending_rounds(
    tx: &tend_store::Transaction,
    record: &Record,
) -> Result<Vec<JournalEvent>, tend_store::Error> {
    let mut events = Vec::new();
    for round in approvals::rounds_of(tx, record.id).await? {
        if !round.is_pending() {
            continue;
        }
        approvals::complete_round(
            tx,
            &record.number,
            round.id,
            approvals::CANCELLED,
            record.updated_at,
        )
        .await?;
        events.push(JournalEvent::ApprovalCompleted {
            round: round.round,
            transition: round.transition,
            outcome: approvals::CANCELLED.to_owned(),
        });
    }
    Ok(events)
}

/// Replaces the timers of the stored `record` with the ones `outcome` plans, inside a
/// write job.
pub(crate) async fn replace_timers_of(
    tx: &tend_store::Transaction,
    record: &Record,
    outcome: &Outcome,
) -> Result<(), tend_store::Error> {
    replace_timers(tx, record, outcome).await
}

async fn replace_timers(
    tx: &tend_store::Transaction,
    record: &Record,
    outcome: &Outcome,
) -> Result<(), tend_store::Error> {
    let plans: Vec<tend_store::PlannedTimer> = outcome
        .timers
        .iter()
        .map(|plan| tend_store::PlannedTimer {
            transition: plan.transition.clone(),
            due_at: plan.due_at,
        })
        .collect();
    tend_store::replace_timers(tx, record.id, &plans, record.state_changed_at).await
}

/// Returns the title of a follow-up of `original`, shortened to the longest title allowed.
fn follow_up_title(original: &Record) -> String {
    let title = format!("Follow-up of {}: {}", original.number, original.title);
    if title.chars().count() <= tend_workflow::engine::MAX_TITLE_LENGTH {
        return title;
    }
    title
        .chars()
        .take(tend_workflow::engine::MAX_TITLE_LENGTH - 1)
        .collect::<String>()
        + "…"
}

/// Checks that `set` declares `link_type` and that it allows `source` and `target`.
fn check_link(
    set: &DefinitionSet,
    link_type: &str,
    source: &Record,
    target: &Record,
) -> Result<(), ApiError> {
    let Some(declared) = set.link_type(link_type) else {
        let message = if set.link_types.is_empty() {
            format!(
                "unknown link type `{link_type}`: no link types are defined; declare them in workflows/links/*.yaml"
            )
        } else {
            let known: Vec<&str> = set.link_types.keys().map(String::as_str).collect();
            format!(
                "unknown link type `{link_type}`: use one of {}",
                known.join(", ")
            )
        };
        return Err(ApiError::bad_request(
            "unknown_link_type",
            message,
            Some("type"),
        ));
    };
    if source.id == target.id {
        return Err(ApiError::bad_request(
            "invalid_link",
            format!(
                "{} cannot be linked to itself: choose another record as `target`",
                source.number
            ),
            Some("target"),
        ));
    }
    if !declared.allows_source(&source.process) {
        return Err(ApiError::bad_request(
            "invalid_link",
            format!(
                "link type `{link_type}` goes from {} records only, and {} is a record of process `{}`: choose another link type or link from another record",
                either(&declared.from),
                source.number,
                source.process
            ),
            Some("type"),
        ));
    }
    if !declared.allows_target(&target.process) {
        return Err(ApiError::bad_request(
            "invalid_link",
            format!(
                "link type `{link_type}` goes to {} records only, and {} is a record of process `{}`: choose another link type or another target",
                either(&declared.to),
                target.number,
                target.process
            ),
            Some("type"),
        ));
    }
    Ok(())
}

/// Joins names as "a", "a or b", "a, b or c".
fn either(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}
