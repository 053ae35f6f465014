//! Runs of plugin actions: queueing a run on a record, and the worker that claims queued
//! runs, runs them with their timeout, renews their leases while they run and writes
//! their outcome to the run and to the record's journal.
//!
//! A run is queued in the same write job as its `action_queued` journal entry, so a run
//! exists exactly when its request was written. Parameters are validated against the
//! action's declaration before the write, and roles are checked there too. The worker of
//! each node claims runs (one node per run), renews their leases at every pass, and ends
//! the leases of stopped nodes (see `tend_store::action_runs::expire_action_runs`). An
//! interrupted run is journaled on its record like a finished one.
//!
//! An action that needs an approval waits as `awaiting_approval` until a process owner or
//! an administrator other than the requester approves it. On a change, the authorised
//! change is the approval, and the run may start only inside the change's window. A run
//! whose window closes first ends as `expired`.

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Map, Value, json};
use tend_domain::{Actor, JournalEvent, Record, Role};
use tend_plugin_api::{
    ActionOutcome, ActionRequest, ActionSpec, CancellationToken, OutcomeStatus, OutgoingMail,
    PROTOCOL_VERSION, PluginError, RecordContext,
};
use tend_store::action_runs::{self as runs, ActionRun, FinishedRun, NewActionRun, RunStatus};
use tend_workflow::{DefinitionSet, FieldType};

use crate::commands::{Commands, MAX_CONFLICT_RETRIES};
use crate::error::ApiError;
use crate::plugin_mail;

/// How long a claimed run stays this node's without a renewal. The worker renews at every
/// pass, so passes must come more often than this.
pub const LEASE: TimeDelta = TimeDelta::seconds(30);

/// Characters of a run's output kept in the journal entry; the run keeps all the plugin
/// returned.
const JOURNAL_OUTPUT: usize = 4_000;

/// Runs expired in one pass of the worker.
const EXPIRE_BATCH: u64 = 100;

/// A request to run an action, as the API and the web form give it.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionInput {
    pub plugin: String,
    pub action: String,
    #[serde(default)]
    pub params: Map<String, Value>,
    /// The reason for the run, such as the reason of the recommendation it follows.
    #[serde(default)]
    pub reason: Option<String>,
}

/// Checks whether `actor` may run `spec`: admins always, others when one of their roles is
/// among the action's roles.
pub fn may_run(actor: &Actor, spec: &ActionSpec) -> bool {
    let allowed: Vec<Role> = spec
        .roles
        .iter()
        .filter_map(|role| Role::from_str(role).ok())
        .collect();
    actor.may(&allowed)
}

/// The start condition of a run: at once, after an approval, or inside a change's window.
struct Gate {
    status: RunStatus,
    window: Option<tend_workflow::schedule::Window>,
    decided_by: Option<String>,
    decision_note: Option<String>,
    /// The condition the run waits for, as the journal entry states it.
    waits_for: Option<String>,
}

impl Gate {
    fn queued() -> Gate {
        Gate {
            status: RunStatus::Queued,
            window: None,
            decided_by: None,
            decision_note: None,
            waits_for: None,
        }
    }
}

impl Commands {
    /// Finds `plugin`'s action `action` with its plugin, or an error that lists the
    /// plugins or actions that exist.
    fn find_action(
        &self,
        plugin: &str,
        action: &str,
    ) -> Result<(Arc<dyn tend_plugin_api::Plugin>, ActionSpec), ApiError> {
        if let Some((found, spec)) = self.plugins.action(plugin, action) {
            return Ok((found.clone(), spec.clone()));
        }
        let message = match self.plugins.get(plugin) {
            None => {
                let names: Vec<&str> = self.plugins.iter().map(|p| p.name()).collect();
                format!(
                    "unknown plugin `{plugin}`: use one of {}",
                    if names.is_empty() {
                        "(no plugin is installed)".to_owned()
                    } else {
                        names.join(", ")
                    }
                )
            }
            Some(found) => {
                let names: Vec<&str> = found.actions().iter().map(|a| a.name.as_str()).collect();
                format!(
                    "plugin `{plugin}` has no action `{action}`: use one of {}",
                    names.join(", ")
                )
            }
        };
        Err(ApiError::bad_request(
            "unknown_action",
            message,
            Some("action"),
        ))
    }

    /// Queues a run of an action on record `number` for `actor` at `now`, after checking
    /// the actor's role and the parameters. Returns the queued run.
    pub async fn queue_action(
        &self,
        actor: &Actor,
        number: &str,
        input: ActionInput,
        now: DateTime<Utc>,
    ) -> Result<ActionRun, ApiError> {
        let (_, spec) = self.find_action(&input.plugin, &input.action)?;
        if !may_run(actor, &spec) {
            return Err(ApiError::Forbidden(format!(
                "{} may not run {} {}: it needs one of the roles {}",
                actor.name,
                input.plugin,
                input.action,
                if spec.roles.is_empty() {
                    "admin".to_owned()
                } else {
                    spec.roles.join(", ")
                }
            )));
        }
        let params =
            tend_plugin_api::params::validate_params(&spec, &input.params).map_err(|errors| {
                ApiError::bad_request("invalid_params", errors.to_string(), Some("params"))
            })?;
        let params = Value::Object(params);
        let mut attempt = 0;
        loop {
            let current = self.visible(actor, number).await?;
            let gate = self.approval_gate(&spec, &current, &input, now).await?;
            let mut record = current.clone();
            record.updated_at = now;
            let new_run = NewActionRun {
                record_id: Some(current.id),
                record_number: Some(current.number.clone()),
                schedule: None,
                plugin: input.plugin.clone(),
                action: input.action.clone(),
                params: params.clone(),
                actor: actor.name.clone(),
                reason: input.reason.clone(),
                idempotent: spec.idempotent,
                timeout_seconds: i64::try_from(spec.timeout_seconds).unwrap_or(i64::MAX),
                queued_at: now,
                status: gate.status,
                not_before: gate.window.map(|window| window.start),
                not_after: gate.window.map(|window| window.end),
                decided_by: gate.decided_by,
                decision_note: gate.decision_note,
            };
            let waits_for = gate.waits_for;
            let name = actor.name.clone();
            let result = self
                .store
                .write(move |tx| {
                    Box::pin(async move {
                        let id = runs::queue_action_run(tx, &new_run).await?;
                        let event = JournalEvent::ActionQueued {
                            run: id,
                            plugin: new_run.plugin.clone(),
                            action: new_run.action.clone(),
                            params: new_run.params.clone(),
                            reason: new_run.reason.clone(),
                            waits_for,
                        };
                        tend_store::update_record(tx, &record, &name, &[event]).await?;
                        Ok(id)
                    })
                })
                .await;
            match result {
                Ok(id) => {
                    tracing::info!(
                        record.number = number,
                        run = id,
                        plugin = input.plugin,
                        action = input.action,
                        actor = actor.name,
                        "queued an action run"
                    );
                    return self.action_run(id).await;
                }
                Err(tend_store::Error::Conflict { .. }) if attempt < MAX_CONFLICT_RETRIES => {
                    attempt += 1;
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// Decides how a run of `spec` on `record` starts. An action without an approval is
    /// queued. One that needs an approval waits for an approver, unless the record is a
    /// change (its definition has a `schedule` block): then the change's authorisation is
    /// the approval, so the change must be in an authorised state, and the run may start
    /// only inside the change's window.
    async fn approval_gate(
        &self,
        spec: &ActionSpec,
        record: &Record,
        input: &ActionInput,
        now: DateTime<Utc>,
    ) -> Result<Gate, ApiError> {
        if !spec.needs_approval {
            return Ok(Gate::queued());
        }
        let pinned = self.engine.pinned(record).await?;
        let Some(schedule) = &pinned.definition.schedule else {
            return Ok(Gate {
                status: RunStatus::AwaitingApproval,
                waits_for: Some(
                    "an approval by a process owner or an administrator other than the requester"
                        .to_owned(),
                ),
                ..Gate::queued()
            });
        };
        let action = format!("{} {}", input.plugin, input.action);
        if !schedule.blocking_states.contains(&record.state) {
            return Err(ApiError::Conflict(format!(
                "{action} needs an approval, and on {} that approval is the authorised change: it is in state `{}`, so run the action once the change is in one of {}",
                record.number,
                record.state,
                schedule.blocking_states.join(", ")
            )));
        }
        let Some(window) = schedule.window(record) else {
            return Err(ApiError::Conflict(format!(
                "{action} runs on {} only inside the change's window: set `{}` and `{}` first",
                record.number, schedule.start, schedule.end
            )));
        };
        if now >= window.end {
            return Err(ApiError::Conflict(format!(
                "the window of {} ended at {}, so {action} may no longer run on it: plan a new window or open a new change",
                record.number,
                window
                    .end
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )));
        }
        let span = format!(
            "{} to {}",
            window
                .start
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            window
                .end
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        Ok(Gate {
            status: RunStatus::Queued,
            window: Some(window),
            decided_by: Some(format!("change:{}", record.number)),
            decision_note: Some(format!(
                "approved by the authorisation of {}, window {span}",
                record.number
            )),
            waits_for: (now < window.start)
                .then(|| format!("the window of {}: {span}", record.number)),
        })
    }

    /// Approves or rejects run `id`, which waits for an approval, as `actor`. Approvers are
    /// process owners and administrators, and never the person who asked for the run.
    pub async fn decide_action(
        &self,
        actor: &Actor,
        id: i64,
        approve: bool,
        note: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<ActionRun, ApiError> {
        let run = self.action_run(id).await?;
        if !(actor.is_admin() || actor.has_role(Role::ProcessOwner)) {
            return Err(ApiError::Forbidden(format!(
                "{} may not decide on action runs: approvers need the process_owner or admin role",
                actor.name
            )));
        }
        if run.actor == actor.name {
            return Err(ApiError::Forbidden(format!(
                "{} asked for run {id}, so another approver must decide on it",
                actor.name
            )));
        }
        if run.status != RunStatus::AwaitingApproval {
            return Err(ApiError::Conflict(format!(
                "run {id} is {}, so there is nothing to decide",
                run.status
            )));
        }
        if !approve && note.as_deref().is_none_or(|note| note.trim().is_empty()) {
            return Err(ApiError::bad_request(
                "reason_required",
                "say why the run is rejected in `reason`",
                Some("reason"),
            ));
        }
        let Some(number) = run.record_number.clone() else {
            return Err(ApiError::Conflict(format!(
                "run {id} belongs to no record, so it cannot be decided here"
            )));
        };
        let by = actor.name.clone();
        let mut attempt = 0;
        loop {
            let current = self.load(&number).await?;
            let mut record = current.clone();
            record.updated_at = now;
            let (by, note) = (by.clone(), note.clone());
            let decided = self
                .store
                .write(move |tx| {
                    Box::pin(async move {
                        let Some(run) =
                            runs::decide_action_run(tx, id, approve, &by, note.as_deref(), now)
                                .await?
                        else {
                            return Ok(None);
                        };
                        let event = JournalEvent::ActionDecided {
                            run: id,
                            plugin: run.plugin.clone(),
                            action: run.action.clone(),
                            approved: approve,
                            note,
                        };
                        tend_store::update_record(tx, &record, &by, &[event]).await?;
                        Ok(Some(run))
                    })
                })
                .await;
            match decided {
                Ok(Some(run)) => {
                    tracing::info!(
                        run = id,
                        record.number = number,
                        approved = approve,
                        actor = actor.name,
                        "decided on an action run"
                    );
                    return Ok(run);
                }
                Ok(None) => {
                    return Err(ApiError::Conflict(format!(
                        "run {id} was decided by someone else first"
                    )));
                }
                Err(tend_store::Error::Conflict { .. }) if attempt < MAX_CONFLICT_RETRIES => {
                    attempt += 1;
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// Queues the action of a claimed run of schedule `schedule` due at `due`, in the same
    /// write job that marks the scheduled run done, so each due time queues one action run.
    pub(crate) async fn queue_scheduled_action(
        &self,
        schedule: &str,
        wanted: &tend_workflow::jobs::ActionRun,
        due: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<ScheduledQueue, ApiError> {
        let spec = match self.find_action(&wanted.plugin, &wanted.action) {
            Ok((_, spec)) => spec,
            Err(error) => return Ok(ScheduledQueue::Rejected(error.to_string())),
        };
        if spec.needs_approval {
            // A scheduled run has no record to hold the approval or a change window.
            return Ok(ScheduledQueue::Rejected(format!(
                "{} {} needs an approval for each run, and a schedule cannot wait for one: run it from a change or a record instead",
                wanted.plugin, wanted.action
            )));
        }
        let params = match tend_plugin_api::params::validate_params(&spec, &wanted.params) {
            Ok(params) => params,
            Err(errors) => {
                return Ok(ScheduledQueue::Rejected(format!(
                    "invalid `run_action.params`: {errors}"
                )));
            }
        };
        let new_run = NewActionRun {
            record_id: None,
            record_number: None,
            schedule: Some(schedule.to_owned()),
            plugin: wanted.plugin.clone(),
            action: wanted.action.clone(),
            params: Value::Object(params),
            actor: crate::schedules::SCHEDULE_ACTOR.to_owned(),
            reason: Some(format!(
                "Schedule {schedule}, due {}",
                due.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )),
            idempotent: spec.idempotent,
            timeout_seconds: i64::try_from(spec.timeout_seconds).unwrap_or(i64::MAX),
            queued_at: now,
            status: RunStatus::Queued,
            not_before: None,
            not_after: None,
            decided_by: None,
            decision_note: None,
        };
        let schedule = schedule.to_owned();
        let queued = self
            .store
            .write(move |tx| {
                Box::pin(async move {
                    let id = runs::queue_action_run(tx, &new_run).await?;
                    let summary = format!(
                        "queued action run {id} ({} {})",
                        new_run.plugin, new_run.action
                    );
                    if tend_store::schedules::finish_rule_run(tx, &schedule, due, &summary).await? {
                        Ok(id)
                    } else {
                        // Another node took the scheduled run over and finished it; this
                        // write must not queue a second action run.
                        Err(tend_store::Error::Invalid(format!(
                            "the run of schedule `{schedule}` due {due} is no longer claimed"
                        )))
                    }
                })
            })
            .await;
        match queued {
            Ok(id) => Ok(ScheduledQueue::Queued(id)),
            Err(tend_store::Error::Invalid(message)) => {
                tracing::warn!("{message}; the node that finished it queued its action");
                Ok(ScheduledQueue::Gone)
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Queues the run a rule asked for with `run_action`, as the actor `rule:NAME`, when
    /// the record's definition lists the action under `automatic_actions`. Follow-ons run
    /// at least once, so a run that this command already queued (same rule, action and
    /// time) is not queued again.
    pub(crate) async fn run_automatic_action(
        &self,
        record: &Record,
        rule: &str,
        reason: &str,
        action: &str,
        params: &Value,
        at: DateTime<Utc>,
    ) -> Result<(), ApiError> {
        let pinned = self.engine.pinned(record).await?;
        if !pinned
            .definition
            .automatic_actions
            .iter()
            .any(|allowed| allowed == action)
        {
            return Err(ApiError::Forbidden(format!(
                "the {} definition does not let rules run {action} by themselves: add it to `automatic_actions` in its definition, or recommend it with recommend() for a technician to run",
                record.process
            )));
        }
        let Some((plugin, name)) = action.split_once('/') else {
            return Err(ApiError::bad_request(
                "unknown_action",
                format!("`{action}` does not name an action as plugin/action"),
                Some("action"),
            ));
        };
        let actor = Actor::system(format!("rule:{rule}"));
        let earlier = self.store.action_runs_of(record.id, 50).await?;
        if earlier.iter().any(|run| {
            run.plugin == plugin
                && run.action == name
                && run.actor == actor.name
                && run.queued_at == at
        }) {
            return Ok(());
        }
        let params = match params {
            Value::Object(map) => map.clone(),
            Value::Null => Map::new(),
            other => {
                return Err(ApiError::bad_request(
                    "invalid_params",
                    format!("the parameters of {action} must be a map, not {other}"),
                    Some("params"),
                ));
            }
        };
        let input = ActionInput {
            plugin: plugin.to_owned(),
            action: name.to_owned(),
            params,
            reason: Some(reason.to_owned()),
        };
        let run = self.queue_action(&actor, &record.number, input, at).await?;
        tracing::info!(
            record.number = record.number,
            run = run.id,
            rule,
            action,
            "a rule queued an action run"
        );
        Ok(())
    }

    /// Reads run `id`.
    pub async fn action_run(&self, id: i64) -> Result<ActionRun, ApiError> {
        self.store
            .action_run(id)
            .await?
            .ok_or_else(|| ApiError::NotFound {
                what: "action run",
                key: id.to_string(),
            })
    }

    /// Returns a CI as plugins see it: the name and the field that named it and, when the
    /// name (or id) is one CI of the CMDB, its `id`, `class` and text attributes, with
    /// `host` set to its FQDN or else its first IP address.
    async fn plugin_ci(&self, given: &str, field: &str) -> Result<Value, ApiError> {
        let db = self.store.db();
        let mut found = match given.parse::<i64>() {
            Ok(id) => tend_store::cmdb::load_ci(db, id)
                .await?
                .into_iter()
                .collect(),
            Err(_) => tend_store::cmdb::find_cis_by_name(db, given).await?,
        };
        found.retain(|ci| ci.retired_at.is_none());
        let [ci] = found.as_slice() else {
            return Ok(json!({ "name": given, "field": field }));
        };
        let mut view = serde_json::Map::new();
        for (attribute, value) in &ci.attributes {
            if let Value::String(text) = value {
                view.insert(attribute.clone(), Value::String(text.clone()));
            }
        }
        let first_ip = ci
            .attributes
            .get("ip_addresses")
            .and_then(Value::as_array)
            .and_then(|addresses| addresses.first())
            .and_then(Value::as_str);
        if let Some(ip) = first_ip {
            view.insert("ip".into(), Value::String(ip.to_owned()));
        }
        if let Some(host) = ci
            .attributes
            .get("fqdn")
            .and_then(Value::as_str)
            .or(first_ip)
        {
            view.insert("host".into(), Value::String(host.to_owned()));
            view.insert("fqdn".into(), Value::String(host.to_owned()));
        }
        view.insert("name".into(), Value::String(ci.name.clone()));
        view.insert("field".into(), Value::String(field.to_owned()));
        view.insert("class".into(), Value::String(ci.class.clone()));
        view.insert("id".into(), Value::from(ci.id));
        Ok(Value::Object(view))
    }

    /// Builds the plugin's view of a run's record: its columns, fields and the CIs its
    /// configuration-item fields name, with their CMDB class and attributes when known.
    async fn record_context(&self, record: &Record) -> Result<RecordContext, ApiError> {
        let pinned = self.engine.pinned(record).await?;
        let mut cis = Vec::new();
        for (name, field) in &pinned.definition.fields {
            if field.kind != FieldType::CiRef {
                continue;
            }
            let Some(text) = record.field_str(name) else {
                continue;
            };
            for ci in text
                .split(|c: char| c == ',' || c == ';' || c.is_whitespace())
                .filter(|ci| !ci.is_empty())
            {
                cis.push(self.plugin_ci(ci, name).await?);
            }
        }
        Ok(RecordContext {
            number: record.number.clone(),
            process: record.process.clone(),
            title: record.title.clone(),
            state: record.state.clone(),
            fields: Value::Object(record.fields.clone()),
            cis,
        })
    }

    /// Runs one claimed run to its end and returns how it ended. Never fails: a missing
    /// plugin, a plugin error and a timeout are outcomes too.
    /// Returns the messages of a built-in plugin's outcome beside it, for
    /// [`finish_run`](Self::finish_run) to queue.
    async fn execute(
        &self,
        run: &ActionRun,
        cancel: CancellationToken,
    ) -> (FinishedRun, Vec<OutgoingMail>) {
        let started = Instant::now();
        let ended = |status, summary: String, output: String, data| {
            let finished = FinishedRun {
                status,
                finished_at: Utc::now(),
                duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
                summary,
                output,
                data,
            };
            (finished, Vec::new())
        };
        let (plugin, _) = match self.find_action(&run.plugin, &run.action) {
            Ok(found) => found,
            Err(error) => {
                return ended(
                    RunStatus::Failed,
                    format!("Not run: {error}; install the plugin on every node"),
                    String::new(),
                    Value::Null,
                );
            }
        };
        let record = match &run.record_number {
            Some(number) => match self.load_record(number).await {
                Ok(record) => match self.record_context(&record).await {
                    Ok(context) => Some(context),
                    Err(error) => {
                        return ended(
                            RunStatus::Failed,
                            format!("Not run: reading record {number} failed: {error}"),
                            String::new(),
                            Value::Null,
                        );
                    }
                },
                Err(error) => {
                    return ended(
                        RunStatus::Failed,
                        format!("Not run: {error}"),
                        String::new(),
                        Value::Null,
                    );
                }
            },
            None => None,
        };
        let params = match &run.params {
            Value::Object(map) => map.clone(),
            _ => Map::new(),
        };
        let request = ActionRequest {
            protocol: PROTOCOL_VERSION,
            run_id: run.id,
            plugin: run.plugin.clone(),
            action: run.action.clone(),
            params,
            record,
            actor: run.actor.clone(),
        };
        let timeout = Duration::from_secs(u64::try_from(run.timeout_seconds).unwrap_or(0));
        let outcome = tokio::select! {
            outcome = plugin.run(request, cancel.clone()) => Some(outcome),
            () = tokio::time::sleep(timeout) => None,
        };
        match outcome {
            Some(Ok(ActionOutcome {
                status,
                summary,
                output,
                data,
                mail,
            })) => {
                let status = match status {
                    OutcomeStatus::Succeeded => RunStatus::Succeeded,
                    OutcomeStatus::Failed => RunStatus::Failed,
                };
                let (finished, _) = ended(status, summary, output, data);
                (finished, mail)
            }
            Some(Err(PluginError::Cancelled)) => ended(
                RunStatus::Failed,
                "Cancelled: the server stopped while the run was in progress".to_owned(),
                String::new(),
                Value::Null,
            ),
            Some(Err(error)) => ended(
                RunStatus::Failed,
                format!("The plugin failed: {error}"),
                String::new(),
                Value::Null,
            ),
            None => {
                // Dropping the plugin's future stops it; the token cancels anything it
                // spawned.
                cancel.cancel();
                ended(
                    RunStatus::TimedOut,
                    format!(
                        "Timed out: the run did not finish within its {} s timeout and was stopped",
                        run.timeout_seconds
                    ),
                    String::new(),
                    Value::Null,
                )
            }
        }
    }

    /// Stores the end of a run this node claimed and journals it on the run's record.
    /// Returns false when the run was no longer this node's.
    /// Stores the end of a run this node claimed and journals it on the run's record.
    /// The messages of a built-in plugin's outcome are queued in the same write, with an
    /// `email_queued` entry each before the `action_finished` entry, whose summary names
    /// the recipients and Message-IDs. Returns false when the run was no longer this
    /// node's.
    async fn finish_run(
        &self,
        run: &ActionRun,
        node: &str,
        mut finished: FinishedRun,
        mail: Vec<OutgoingMail>,
    ) -> Result<bool, ApiError> {
        let id = run.id;
        let node = node.to_owned();
        let number = run.record_number.clone();
        let actor = run.actor.clone();
        let set = if mail.is_empty() {
            None
        } else {
            match self.mail_definitions(run).await {
                Ok(set) => Some(set),
                Err(reason) => {
                    finished.status = RunStatus::Failed;
                    finished.summary = format!("Not sent: {reason}");
                    None
                }
            }
        };
        let outbound = self.outbound.clone();
        let run = run.clone();
        let stored = self
            .store
            .write(move |tx| {
                Box::pin(async move {
                    let mut events = Vec::new();
                    let mut prepared = None;
                    if let (Some(set), Some(number)) = (&set, &number)
                        && finished.status == RunStatus::Succeeded
                        && let Some(record) = tend_store::load_record_for_update(tx, number).await?
                    {
                        let person = !tend_store::users_named(tx, std::slice::from_ref(&actor))
                            .await?
                            .is_empty();
                        let origin = plugin_mail::RunOrigin {
                            event: format!("{}/{}", run.plugin, run.action),
                            person,
                            set,
                            config: &outbound,
                        };
                        let now = finished.finished_at;
                        let rows = plugin_mail::prepare(tx, &origin, &record, &mail, now).await?;
                        describe_mail(&mut finished, &rows);
                        prepared = Some(rows);
                    }
                    let Some(stored) = runs::finish_action_run(tx, id, &node, &finished).await?
                    else {
                        return Ok(false);
                    };
                    if let Some(rows) = prepared {
                        let label = format!("action run {id}");
                        events.extend(rows.store(tx, &label).await?);
                    }
                    events.push(finished_event(&run, &finished));
                    if let Some(number) = number {
                        journal_on(tx, &number, &actor, events, stored.finished_at).await?;
                    }
                    Ok(true)
                })
            })
            .await?;
        Ok(stored)
    }

    /// Returns the definition set of the record of `run`, whose mailboxes give the sender
    /// of the run's mail, or why the mail cannot be sent.
    async fn mail_definitions(&self, run: &ActionRun) -> Result<Arc<DefinitionSet>, String> {
        let Some(number) = &run.record_number else {
            return Err(
                "the run belongs to no record, and mail from a plugin is sent about a record"
                    .to_owned(),
            );
        };
        let record = self
            .load_record(number)
            .await
            .map_err(|error| format!("reading record {number} failed: {error}"))?;
        let pinned = self.engine.pinned(&record).await.map_err(|error| {
            format!("loading the definition of record {number} failed: {error}")
        })?;
        Ok(pinned.set)
    }

    /// Ends the leases of runs whose node stopped, and journals each interrupted run on its
    /// record. Returns the runs it ended or queued again.
    pub async fn expire_action_runs(&self, now: DateTime<Utc>) -> Result<Vec<ActionRun>, ApiError> {
        let expired = self
            .store
            .write(move |tx| {
                Box::pin(async move {
                    let mut expired = runs::expire_action_runs(tx, now, EXPIRE_BATCH).await?;
                    expired.extend(runs::expire_closed_windows(tx, now, EXPIRE_BATCH).await?);
                    for run in &expired {
                        if !matches!(run.status, RunStatus::Interrupted | RunStatus::Expired) {
                            continue;
                        }
                        if let Some(number) = &run.record_number {
                            let finished = FinishedRun {
                                status: run.status,
                                finished_at: now,
                                duration_ms: run
                                    .started_at
                                    .map_or(0, |started| (now - started).num_milliseconds()),
                                summary: run.summary.clone().unwrap_or_default(),
                                output: String::new(),
                                data: Value::Null,
                            };
                            let event = finished_event(run, &finished);
                            journal_on(tx, number, &run.actor, vec![event], Some(now)).await?;
                        }
                    }
                    Ok(expired)
                })
            })
            .await?;
        for run in &expired {
            if run.status == RunStatus::Expired {
                tracing::warn!(
                    run = run.id,
                    plugin = run.plugin,
                    action = run.action,
                    not_after = ?run.not_after,
                    "an action run's window closed before it could start"
                );
            } else {
                tracing::warn!(
                    run = run.id,
                    plugin = run.plugin,
                    action = run.action,
                    node = run.node,
                    status = %run.status,
                    "an action run's node stopped renewing its lease"
                );
            }
        }
        Ok(expired)
    }
}

/// Result of queueing the action of a scheduled run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ScheduledQueue {
    /// The action run with this id was queued and the scheduled run marked done.
    Queued(i64),
    /// The action cannot run, for this reason: an unknown plugin or action, or invalid
    /// parameters.
    Rejected(String),
    /// Another node finished the scheduled run first.
    Gone,
}

/// Adds the queued messages of a run to its outcome: each recipient with its Message-ID
/// in the summary, and the full list under `mail` in the data. A run none of whose
/// messages found a recipient to send to has failed.
fn describe_mail(finished: &mut FinishedRun, mail: &plugin_mail::PluginMail) {
    if mail.is_empty() {
        finished.status = RunStatus::Failed;
        finished.summary = format!(
            "{}, but not sent: none of its recipients has an email address",
            finished.summary
        );
        return;
    }
    if mail.queued() == 0 {
        finished.status = RunStatus::Failed;
    }
    finished.summary = format!("{}: {}", finished.summary, mail.summary());
    let described = mail.describe();
    match &mut finished.data {
        Value::Object(map) => {
            map.insert("mail".to_owned(), described);
        }
        other => *other = json!({ "mail": described }),
    }
}

/// Builds the `action_finished` entry of a run.
fn finished_event(run: &ActionRun, finished: &FinishedRun) -> JournalEvent {
    let output: String = finished.output.chars().take(JOURNAL_OUTPUT).collect();
    let output = if output.len() < finished.output.len() {
        format!("{output}\n[output cut at {JOURNAL_OUTPUT} characters; the run keeps all of it]")
    } else {
        output
    };
    JournalEvent::ActionFinished {
        run: run.id,
        plugin: run.plugin.clone(),
        action: run.action.clone(),
        status: finished.status.as_str().to_owned(),
        duration_ms: finished.duration_ms,
        summary: finished.summary.clone(),
        output,
    }
}

/// Appends `events` to record `number`'s journal inside a write job, as `actor`.
async fn journal_on(
    tx: &tend_store::Transaction,
    number: &str,
    actor: &str,
    events: Vec<JournalEvent>,
    at: Option<DateTime<Utc>>,
) -> Result<(), tend_store::Error> {
    let Some(mut record) = tend_store::load_record_for_update(tx, number).await? else {
        // The record was deleted; the run keeps the outcome.
        return Ok(());
    };
    record.updated_at = at.unwrap_or_else(Utc::now);
    tend_store::update_record(tx, &record, actor, &events).await?;
    Ok(())
}

/// The worker of one node: claims queued runs up to its parallelism, runs each in its own
/// task, renews their leases, and ends the leases of stopped nodes.
#[derive(Clone)]
pub struct ActionWorker {
    commands: Commands,
    node: String,
    parallel: usize,
    running: Arc<Mutex<HashSet<i64>>>,
    shutdown: CancellationToken,
}

impl ActionWorker {
    /// Creates the worker of node `node`, which runs at most `parallel` runs at once and
    /// cancels them when `shutdown` fires.
    pub fn new(
        commands: Commands,
        node: impl Into<String>,
        parallel: usize,
        shutdown: CancellationToken,
    ) -> Self {
        ActionWorker {
            commands,
            node: node.into(),
            parallel: parallel.max(1),
            running: Arc::new(Mutex::new(HashSet::new())),
            shutdown,
        }
    }

    fn running(&self) -> Vec<i64> {
        self.running
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .copied()
            .collect()
    }

    /// Does one pass: ends expired leases, renews this node's leases, and starts queued
    /// runs in free slots. Returns the ids of the runs it started.
    pub async fn pass(&self) -> Result<Vec<i64>, ApiError> {
        let now = Utc::now();
        self.commands.expire_action_runs(now).await?;
        let running = self.running();
        if !running.is_empty() {
            let node = self.node.clone();
            self.commands
                .store
                .write(move |tx| {
                    Box::pin(async move {
                        runs::renew_action_leases(tx, &node, &running, now + LEASE).await
                    })
                })
                .await?;
        }
        let free = self.parallel.saturating_sub(self.running().len());
        if free == 0 || self.shutdown.is_cancelled() {
            return Ok(Vec::new());
        }
        let node = self.node.clone();
        let claimed = self
            .commands
            .store
            .write(move |tx| {
                Box::pin(async move {
                    runs::claim_action_runs(tx, &node, now, now + LEASE, free as u64).await
                })
            })
            .await?;
        let mut started = Vec::new();
        for run in claimed {
            started.push(run.id);
            self.running
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .insert(run.id);
            let worker = self.clone();
            tokio::spawn(async move { worker.carry_out(run).await });
        }
        Ok(started)
    }

    async fn carry_out(&self, run: ActionRun) {
        tracing::info!(
            run = run.id,
            plugin = run.plugin,
            action = run.action,
            record.number = run.record_number,
            attempt = run.attempts,
            "starting an action run"
        );
        let cancel = self.shutdown.child_token();
        let (finished, mail) = self.commands.execute(&run, cancel).await;
        let status = finished.status;
        match self
            .commands
            .finish_run(&run, &self.node, finished, mail)
            .await
        {
            Ok(true) => tracing::info!(run = run.id, %status, "an action run ended"),
            Ok(false) => tracing::warn!(
                run = run.id,
                %status,
                "an action run ended after its lease ran out; the outcome is not stored"
            ),
            Err(error) => tracing::error!(
                run = run.id,
                %status,
                %error,
                "storing the end of an action run failed; its lease runs out and it is marked interrupted or run again"
            ),
        }
        self.running
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(&run.id);
    }

    /// Waits until this node runs nothing, at most `limit`.
    pub async fn drain(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.running().is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
