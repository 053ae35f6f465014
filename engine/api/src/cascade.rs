//! What happens after a command is written: the follow-on effects its rules proposed (a
//! transition of the record, a link, a new record) and the `on_linked` rules of the records
//! linked to a record that took a transition.
//!
//! Follow-ons run after the command's own transaction, each as its own command. So a
//! follow-on that fails never undoes the command that asked for it, and the failure is
//! journaled on the record instead.
//!
//! A write with such work also queues it in the `follow_ons` table, in its own
//! transaction, and the row is deleted once the work is done. Work that a stopped node left
//! behind is taken up again by [`Commands::resume_follow_ons`].
//! NOTE: that is at least once, not exactly once: a node that stops after the work but
//! before deleting the row has it done again. The shipped rules check before they open or
//! link a record, so a repeat mostly journals a refused transition.

use serde::{Deserialize, Serialize};
use tend_domain::{Actor, Command, Effect, Fields, JournalEvent, ProposedEffect, Record};
use tend_workflow::{Context, LinkedChange, LinkedRecord};

use crate::commands::{Commands, NewRecord};
use crate::error::ApiError;

/// How many follow-ons may lead from one command, so that rules that keep triggering each
/// other stop.
pub const MAX_FOLLOW_ON_DEPTH: usize = 4;

/// How long queued work may wait before another run takes it up: longer than a node needs
/// to do it right after its commit.
const STALE_AFTER_SECONDS: i64 = 60;

/// The work a write leaves for after its commit, as the `follow_ons` table stores it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PendingWork {
    depth: usize,
    follow_ons: Vec<ProposedEffect>,
    /// Transitions the write took, as (transition, from, to).
    transitions: Vec<(String, String, String)>,
}

impl PendingWork {
    /// Returns the work of a write as JSON, or `None` when it leaves none.
    pub(crate) fn encode(
        events: &[JournalEvent],
        follow_ons: &[ProposedEffect],
        depth: usize,
    ) -> Option<String> {
        let transitions: Vec<(String, String, String)> = events
            .iter()
            .filter_map(|event| match event {
                JournalEvent::Transitioned {
                    transition,
                    from,
                    to,
                } => Some((transition.clone(), from.clone(), to.clone())),
                _ => None,
            })
            .collect();
        if transitions.is_empty() && follow_ons.is_empty() {
            return None;
        }
        let work = PendingWork {
            depth,
            follow_ons: follow_ons.to_vec(),
            transitions,
        };
        serde_json::to_string(&work).ok()
    }
}

impl Commands {
    /// Does the work a committed write left, then removes its queued row.
    pub(crate) async fn after_commit(
        &self,
        record: &Record,
        events: &[JournalEvent],
        follow_ons: Vec<ProposedEffect>,
        depth: usize,
        queued: Option<i64>,
    ) {
        self.after_write(record, record, events, follow_ons, depth)
            .await;
        if let Some(id) = queued {
            let done = self
                .store
                .write(move |tx| {
                    Box::pin(async move { tend_store::follow_ons::finish_follow_on(tx, id).await })
                })
                .await;
            if let Err(error) = done {
                tracing::warn!(record.number = record.number, queued = id, %error, "removing done follow-on work failed; it will run again");
            }
        }
    }

    /// Takes up the work that writes queued more than a minute before `now` and that is
    /// still there, because the node that wrote it stopped first. Returns how many items
    /// it did.
    pub async fn resume_follow_ons(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<usize, ApiError> {
        let stale_before = now - chrono::TimeDelta::seconds(STALE_AFTER_SECONDS);
        let queued = self
            .store
            .write(move |tx| {
                Box::pin(async move {
                    tend_store::follow_ons::claim_stale_follow_ons(tx, stale_before, 100).await
                })
            })
            .await?;
        let mut done = 0;
        for item in queued {
            let work: PendingWork = match serde_json::from_str(&item.payload) {
                Ok(work) => work,
                Err(error) => {
                    tracing::error!(record.number = item.number, queued = item.id, %error, "queued follow-on work is unreadable; it is kept for inspection");
                    continue;
                }
            };
            let record = match self.load_record(&item.number).await {
                Ok(record) => record,
                Err(error) => {
                    tracing::warn!(record.number = item.number, %error, "the record of queued follow-on work cannot be read");
                    continue;
                }
            };
            tracing::info!(
                record.number = item.number,
                queued = item.id,
                "resuming follow-on work a stopped node left"
            );
            let events: Vec<JournalEvent> = work
                .transitions
                .into_iter()
                .map(|(transition, from, to)| JournalEvent::Transitioned {
                    transition,
                    from,
                    to,
                })
                .collect();
            self.after_commit(&record, &events, work.follow_ons, work.depth, Some(item.id))
                .await;
            done += 1;
        }
        Ok(done)
    }

    /// Runs the follow-ons of a written command on `record` (as it was written), whose
    /// state before the command was `before`.
    pub(crate) fn after_write<'a>(
        &'a self,
        record: &'a Record,
        before: &'a Record,
        events: &'a [JournalEvent],
        follow_ons: Vec<ProposedEffect>,
        depth: usize,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            if follow_ons.is_empty() && !events.iter().any(is_transition) {
                return;
            }
            if depth >= MAX_FOLLOW_ON_DEPTH {
                for proposed in follow_ons {
                    self.journal_failure(
                        &record.number,
                        &proposed,
                        format!(
                            "not carried out: {MAX_FOLLOW_ON_DEPTH} follow-ons in a row already led here, so the rules probably trigger each other; change one of them"
                        ),
                    )
                    .await;
                }
                return;
            }
            for proposed in follow_ons {
                if let Err(error) = self.follow_on(record, &proposed, depth).await {
                    self.journal_failure(&record.number, &proposed, error.to_string())
                        .await;
                }
            }
            if let Err(error) = self.open_fulfilment_tasks(record, events).await {
                tracing::warn!(record.number = record.number, %error, "opening fulfilment tasks failed");
                let proposed = ProposedEffect {
                    rule: crate::catalog::CATALOG_ACTOR.to_owned(),
                    reason: "fulfilment tasks of the catalog item".to_owned(),
                    effect: Effect::Open {
                        process: tend_workflow::catalog::TASK_PROCESS.to_owned(),
                        title: "fulfilment tasks".to_owned(),
                        description: String::new(),
                        fields: Fields::new(),
                        link_type: None,
                    },
                };
                self.journal_failure(&record.number, &proposed, error.to_string())
                    .await;
            }
            for event in events {
                if let JournalEvent::Transitioned {
                    transition, from, ..
                } = event
                {
                    self.notify_linked(record, before, transition, from, depth)
                        .await;
                }
            }
        })
    }

    async fn follow_on(
        &self,
        record: &Record,
        proposed: &ProposedEffect,
        depth: usize,
    ) -> Result<(), ApiError> {
        let actor = Actor::system(format!("rule:{}", proposed.rule));
        // A follow-on happens at the time of the command that asked for it, which differs
        // from now when a recorded history is replayed.
        let at = record.updated_at;
        match &proposed.effect {
            Effect::Transition { name } => {
                let command = Command::Transition {
                    name: name.clone(),
                    fields: Fields::new(),
                    comment: None,
                };
                self.apply_with_depth(
                    &actor,
                    &record.number,
                    command,
                    Some(at),
                    None,
                    depth + 1,
                    None,
                )
                .await?;
            }
            Effect::Link { link_type, target } => {
                self.link_at(&actor, &record.number, link_type, target, at)
                    .await?;
            }
            Effect::Open {
                process,
                title,
                description,
                fields,
                link_type,
            } => {
                // A record a rule opens is on behalf of the record's requester, not the rule.
                let mut fields = fields.clone();
                if let Some(requester) = record.field_str("requester")
                    && !fields.contains_key("requester")
                    && self
                        .engine
                        .definition(process)
                        .is_ok_and(|d| d.fields.contains_key("requester"))
                {
                    fields.insert("requester".into(), requester.into());
                }
                let input = NewRecord {
                    title: title.clone(),
                    description: description.clone(),
                    fields,
                    idempotency_key: None,
                    preset: Fields::new(),
                };
                let (created, _) = self.create_at(&actor, process, input, at).await?;
                tracing::info!(
                    record.number = record.number,
                    opened = created.number,
                    rule = proposed.rule,
                    "a rule opened a record"
                );
                if let Some(link_type) = link_type {
                    self.link_at(&actor, &created.number, link_type, &record.number, at)
                        .await?;
                }
            }
            Effect::RunAction { action, params } => {
                self.run_automatic_action(
                    record,
                    &proposed.rule,
                    &proposed.reason,
                    action,
                    params,
                    at,
                )
                .await?;
            }
            other => {
                tracing::error!(
                    ?other,
                    "an effect that is not a follow-on reached the follow-on path"
                );
            }
        }
        Ok(())
    }

    /// Runs the `on_linked` rules of every record linked to `record`, which took
    /// `transition` from state `from`.
    async fn notify_linked(
        &self,
        record: &Record,
        before: &Record,
        transition: &str,
        from: &str,
        depth: usize,
    ) {
        let links = match self.store.links_of(record.id).await {
            Ok(links) => links,
            Err(error) => {
                tracing::warn!(record.number = record.number, %error, "reading links for linked rules failed");
                return;
            }
        };
        for link in links {
            let change = LinkedChange {
                record: LinkedRecord {
                    link_type: link.link_type.clone(),
                    // Seen from the other record, the direction is reversed.
                    outgoing: !link.direction.is_outgoing(),
                    number: record.number.clone(),
                    process: record.process.clone(),
                    state: record.state.clone(),
                    open: record.open,
                },
                transition: transition.to_owned(),
                from: from.to_owned(),
            };
            if let Err(error) = self
                .react(&link.number, &change, record.updated_at, depth)
                .await
            {
                tracing::warn!(
                    record.number = link.number,
                    linked = record.number,
                    %error,
                    "linked rules failed"
                );
            }
        }
        let _ = before;
    }

    async fn react(
        &self,
        number: &str,
        change: &LinkedChange,
        at: chrono::DateTime<chrono::Utc>,
        depth: usize,
    ) -> Result<(), ApiError> {
        let current = self.load_record(number).await?;
        let pinned = self.engine.pinned(&current).await?;
        if pinned.definition.rules.on_linked.is_empty() {
            return Ok(());
        }
        let links = self.linked_records(&current).await?;
        let actor = Actor::system("rules");
        let context = Context {
            definition: &pinned.definition,
            version: &pinned.set.version,
            rules: pinned.rules.as_ref(),
            actor: &actor,
            now: at,
            groups: &pinned.set.groups,
            links: &links,
            cmdb: None,
        };
        let mut outcome = tend_workflow::react_to_linked(&context, &current, change);
        let follow_ons = std::mem::take(&mut outcome.follow_ons);
        let record = if outcome.events.is_empty() {
            // Not written, but its follow-ons happen at the time of the linked change.
            let mut record = current.clone();
            record.updated_at = at;
            record
        } else {
            let mut events = outcome.events.clone();
            let record = outcome.record.clone();
            let (set, definition) = (pinned.set.clone(), pinned.definition.clone());
            self.store
                .write(move |tx| {
                    Box::pin(async move {
                        let clocks = crate::clocks::prepare(
                            tx,
                            &set,
                            &definition,
                            &record,
                            &events,
                            record.updated_at,
                        )
                        .await?;
                        events.extend(clocks.events.iter().cloned());
                        let record =
                            tend_store::update_record(tx, &record, "rules", &events).await?;
                        clocks.store(tx, &record).await?;
                        Ok(record)
                    })
                })
                .await?
        };
        self.after_write(&record, &current, &[], follow_ons, depth + 1)
            .await;
        Ok(())
    }

    /// Journals on record `number` that a follow-on could not be carried out.
    async fn journal_failure(&self, number: &str, proposed: &ProposedEffect, error: String) {
        tracing::warn!(
            record.number = number,
            rule = proposed.rule,
            error,
            "a follow-on failed"
        );
        let event = JournalEvent::FollowOnFailed {
            rule: proposed.rule.clone(),
            effect: describe(&proposed.effect),
            error,
        };
        for _ in 0..3 {
            let Ok(mut record) = self.load_record(number).await else {
                return;
            };
            record.updated_at = chrono::Utc::now();
            let events = vec![event.clone()];
            let written = self
                .store
                .write(move |tx| {
                    Box::pin(async move {
                        tend_store::update_record(tx, &record, "rules", &events).await
                    })
                })
                .await;
            match written {
                Err(tend_store::Error::Conflict { .. }) => continue,
                Err(error) => {
                    tracing::error!(record.number = number, %error, "journaling a failed follow-on failed");
                    return;
                }
                Ok(_) => return,
            }
        }
    }
}

fn is_transition(event: &JournalEvent) -> bool {
    matches!(event, JournalEvent::Transitioned { .. })
}

/// Describes a follow-on effect for the journal.
fn describe(effect: &Effect) -> String {
    match effect {
        Effect::Transition { name } => format!("transition `{name}`"),
        Effect::Link { link_type, target } => format!("link `{link_type}` to {target}"),
        Effect::Open { process, title, .. } => format!("open a {process} record \"{title}\""),
        Effect::RunAction { action, .. } => format!("run `{action}`"),
        other => format!("{other:?}"),
    }
}
