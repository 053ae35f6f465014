//! Runs of schedules with `run_rule`: each run applies one rule, with the `on_timer` hook,
//! to every record of a process in the states it names, as the system actor `scheduler`.
//! A record for which the rule proposes nothing is not written. Proposed effects are
//! written like those of an SLA threshold's rule, and follow-ons (`take_transition`,
//! `link_to`, `open_record`) run after the write.
//!
//! Exactly once per record and due time: the write that applies a run's effects to a record
//! also saves the idempotency key `schedule:NAME:DUE:NUMBER`, and a write that finds the key
//! applies nothing. A node that stops half-way leaves its run claimed; the node that takes it
//! over walks the records again and skips those already done. A node working through many
//! records renews its claim after each page, so no other node takes the run over while it
//! works.

use std::fmt;
use std::time::Instant;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use tend_domain::{Actor, Record};
use tend_store::schedules as runs;
use tend_workflow::jobs::RuleRun;

use crate::commands::{Commands, MAX_CONFLICT_RETRIES, late_event, queue_work};
use crate::error::ApiError;
use crate::schedules::SCHEDULE_ACTOR;

/// Records read and handled per page; the claim is renewed after each page.
const PAGE: u64 = 200;

/// Counts of a finished run of a `run_rule` schedule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RuleRunSummary {
    /// Records in the selected states that the rule ran on.
    pub examined: u64,
    /// Records the run changed: fields, notes or follow-ons.
    pub changed: u64,
    /// Records that an earlier attempt of the same run had already changed, found when a
    /// run is taken over from a node that stopped.
    pub already_done: u64,
    /// Records whose write failed after its retries; the log names each.
    pub failed: u64,
}

impl fmt::Display for RuleRunSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = |count: u64| if count == 1 { "" } else { "s" };
        write!(
            f,
            "ran on {} record{}, changed {}",
            self.examined,
            plural(self.examined),
            self.changed
        )?;
        if self.already_done > 0 {
            write!(
                f,
                ", {} already changed by this run before",
                self.already_done
            )?;
        }
        if self.failed > 0 {
            write!(f, ", {} failed to write (see the server log)", self.failed)?;
        }
        Ok(())
    }
}

/// Returns the idempotency key of the write a run of `schedule` due at `due_at` makes on
/// record `number`.
pub fn rule_run_key(schedule: &str, due_at: DateTime<Utc>, number: &str) -> String {
    format!(
        "schedule:{schedule}:{}:{number}",
        due_at.to_rfc3339_opts(SecondsFormat::Secs, true)
    )
}

/// Result of the rule on one record.
enum Applied {
    Changed,
    Unchanged,
    AlreadyDone,
}

impl Commands {
    /// Applies the rule of schedule `name` to its records for the run due at `due`, at
    /// `now`. `late` marks a run that starts after its grace period: each record it changes
    /// gets a `fired_late` entry. Fails only when the records cannot be read or the claim
    /// renewed. A record whose write fails is counted and logged, and the run goes on.
    pub(crate) async fn apply_scheduled_rule(
        &self,
        name: &str,
        run: &RuleRun,
        due: DateTime<Utc>,
        now: DateTime<Utc>,
        late: bool,
    ) -> Result<RuleRunSummary, ApiError> {
        let states: Vec<String> = if run.states.is_empty() {
            let definition = self.engine.definition(&run.process)?;
            definition
                .states
                .iter()
                .filter(|(_, state)| !state.is_final)
                .map(|(state, _)| state.clone())
                .collect()
        } else {
            run.states.clone()
        };
        let started = Instant::now();
        let mut summary = RuleRunSummary::default();
        let mut after = 0;
        loop {
            let page = self
                .store
                .records_in_states(&run.process, &states, after, PAGE)
                .await?;
            let Some(last) = page.last() else {
                break;
            };
            after = last.id;
            for record in page {
                summary.examined += 1;
                let number = record.number.clone();
                match self
                    .apply_rule_to(name, run, record, &states, due, now, late)
                    .await
                {
                    Ok(Applied::Changed) => summary.changed += 1,
                    Ok(Applied::Unchanged) => {}
                    Ok(Applied::AlreadyDone) => summary.already_done += 1,
                    Err(error) => {
                        summary.failed += 1;
                        tracing::error!(
                            schedule = name,
                            rule = run.rule,
                            record.number = number,
                            %error,
                            "a scheduled rule's effects could not be written to a record; the run goes on with the next record"
                        );
                    }
                }
            }
            // The pass's clock moved on by the time spent, so that a node whose pass runs
            // at a given instant (as in tests) still renews into the future.
            let beat = now + TimeDelta::from_std(started.elapsed()).unwrap_or(TimeDelta::MAX);
            let schedule = name.to_owned();
            let renewed = self
                .store
                .write(move |tx| {
                    Box::pin(
                        async move { runs::renew_schedule_run(tx, &schedule, due, beat).await },
                    )
                })
                .await?;
            if !renewed {
                tracing::warn!(
                    schedule = name,
                    due_at = %due,
                    "the scheduled run is no longer claimed by this node; it stops here"
                );
                break;
            }
        }
        Ok(summary)
    }

    /// Runs the rule on one record and writes what it proposes, once per due time.
    #[allow(clippy::too_many_arguments)]
    async fn apply_rule_to(
        &self,
        name: &str,
        run: &RuleRun,
        record: Record,
        states: &[String],
        due: DateTime<Utc>,
        now: DateTime<Utc>,
        late: bool,
    ) -> Result<Applied, ApiError> {
        let key = rule_run_key(name, due, &record.number);
        let actor = Actor::system(SCHEDULE_ACTOR);
        let rules = self.engine.rules();
        let mut current = record;
        let mut attempt = 0;
        loop {
            let pinned = self.engine.pinned(&current).await?;
            let links = self.linked_records(&current).await?;
            let context = tend_workflow::Context {
                definition: &pinned.definition,
                version: &pinned.set.version,
                rules: rules.as_ref(),
                actor: &actor,
                now,
                groups: &pinned.set.groups,
                links: &links,
                cmdb: None,
            };
            let outcome = tend_workflow::engine::run_timer_rule(&context, &current, &run.rule);
            if outcome.events.is_empty() && outcome.follow_ons.is_empty() {
                return Ok(Applied::Unchanged);
            }
            let mut events = Vec::new();
            if late {
                events.extend(late_event(&format!("schedule {name}"), due, now));
            }
            events.extend(outcome.events);
            let follow_ons = outcome.follow_ons;
            let mut record = outcome.record;
            record.updated_at = now;
            let pending = crate::cascade::PendingWork::encode(&events, &follow_ons, 0);
            let (set, definition) = (pinned.set.clone(), pinned.definition.clone());
            let key = key.clone();
            let result = self
                .store
                .write(move |tx| {
                    Box::pin(async move {
                        if tend_store::find_idempotent(tx, &key).await?.is_some() {
                            return Ok(None);
                        }
                        let clocks =
                            crate::clocks::prepare(tx, &set, &definition, &record, &events, now)
                                .await?;
                        events.extend(clocks.events.iter().cloned());
                        let record =
                            tend_store::update_record(tx, &record, SCHEDULE_ACTOR, &events).await?;
                        clocks.store(tx, &record).await?;
                        tend_store::save_idempotent(tx, &key, &record.number).await?;
                        let queued = queue_work(tx, &record, pending.as_deref()).await?;
                        Ok(Some((record, events, queued)))
                    })
                })
                .await;
            match result {
                Ok(Some((record, events, queued))) => {
                    self.after_commit(&record, &events, follow_ons, 0, queued)
                        .await;
                    return Ok(Applied::Changed);
                }
                Ok(None) => return Ok(Applied::AlreadyDone),
                Err(tend_store::Error::Conflict { .. }) if attempt < MAX_CONFLICT_RETRIES => {
                    attempt += 1;
                    // Someone wrote the record meanwhile: run the rule again on what is
                    // stored now, if the record still belongs to the run.
                    match self.store.get_record(&current.number).await? {
                        Some(stored) if states.contains(&stored.state) => current = stored,
                        _ => return Ok(Applied::Unchanged),
                    }
                }
                Err(error) => return Err(error.into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_schedule_due_and_record() {
        let due = DateTime::parse_from_rfc3339("2027-03-01T08:00:00+01:00")
            .unwrap()
            .to_utc();
        assert_eq!(
            rule_run_key("chase_requesters", due, "INC0000042"),
            "schedule:chase_requesters:2027-03-01T07:00:00Z:INC0000042"
        );
    }

    #[test]
    fn summary_reads_as_a_sentence() {
        let summary = RuleRunSummary {
            examined: 1,
            changed: 0,
            already_done: 0,
            failed: 0,
        };
        assert_eq!(summary.to_string(), "ran on 1 record, changed 0");
        let summary = RuleRunSummary {
            examined: 250,
            changed: 12,
            already_done: 3,
            failed: 1,
        };
        assert_eq!(
            summary.to_string(),
            "ran on 250 records, changed 12, 3 already changed by this run before, 1 failed to write (see the server log)"
        );
    }
}
