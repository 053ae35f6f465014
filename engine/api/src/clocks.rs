//! SLA clocks of records: computed from a record's journal and the policies that cover it,
//! kept in the `sla_clocks` index and the SLA timers by every write, and read live by the
//! record API.
//!
//! A clock is a function of the journal and the policy. The record's current fields choose
//! the policies that cover it, and each clock is replayed over the record's whole history.
//! So a policy swapped by a priority change counts from the record's creation with all its
//! paused time, and a changed calendar or target recomputes an open clock at its record's
//! next write.

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use serde_json::Value;
use tend_domain::{Fields, JournalEntry, JournalEvent, Record};
use tend_sla::{BusinessCalendar, ClockReading, Phase, read_clock};
use tend_store::SlaTimer;
use tend_store::clocks::ClockRow;
use tend_workflow::sla::{SlaPolicy, TargetDef};
use tend_workflow::{Definition, DefinitionSet};

use crate::calendars::business_calendar;

/// One clock of a record at an instant.
#[derive(Debug, Clone)]
pub struct RecordClock {
    pub policy: String,
    pub kind: &'static str,
    pub target: String,
    pub calendar: String,
    pub target_minutes: i64,
    pub reading: ClockReading,
    /// Thresholds already reached for this target, in percent.
    pub reached: Vec<u32>,
    /// The next threshold to reach and when, while the clock runs.
    pub next: Option<(u32, DateTime<Utc>)>,
}

/// A clock as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ClockView {
    pub policy: String,
    pub kind: &'static str,
    pub target_name: String,
    pub calendar: String,
    /// Target in working time, as an ISO 8601 duration and in seconds.
    pub target: String,
    pub target_seconds: i64,
    pub elapsed: String,
    pub elapsed_seconds: i64,
    /// Working time left; negative once breached.
    pub left_seconds: i64,
    pub state: &'static str,
    pub started_at: DateTime<Utc>,
    pub due: Option<DateTime<Utc>>,
    pub stopped_at: Option<DateTime<Utc>>,
    pub breached: bool,
    pub thresholds_reached: Vec<u32>,
    pub next_threshold: Option<NextThreshold>,
    /// Periods the due time skips: the due time is the start plus the target in working
    /// time of the calendar, without these periods.
    pub paused: Vec<Period>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NextThreshold {
    pub percent: u32,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Period {
    pub from: DateTime<Utc>,
    /// None while the clock is still paused or stopped.
    pub to: Option<DateTime<Utc>>,
}

impl RecordClock {
    pub fn view(&self) -> ClockView {
        let reading = &self.reading;
        ClockView {
            policy: self.policy.clone(),
            kind: self.kind,
            target_name: self.target.clone(),
            calendar: self.calendar.clone(),
            target: iso_duration(reading.target),
            target_seconds: reading.target.num_seconds(),
            elapsed: iso_duration(reading.elapsed),
            elapsed_seconds: reading.elapsed.num_seconds(),
            left_seconds: reading.left().num_seconds(),
            state: reading.phase.as_str(),
            started_at: reading.started_at,
            due: reading.due_at,
            stopped_at: reading.stopped_at,
            breached: reading.breached,
            thresholds_reached: self.reached.clone(),
            next_threshold: self.next.map(|(percent, at)| NextThreshold { percent, at }),
            paused: reading
                .pauses
                .iter()
                .enumerate()
                .map(|(index, &(from, to))| {
                    // The open pause of a clock that is not running ends at the reading.
                    let open = reading.phase != Phase::Running && index + 1 == reading.pauses.len();
                    Period {
                        from,
                        to: (!open).then_some(to),
                    }
                })
                .collect(),
        }
    }

    fn row(&self, record: &Record) -> ClockRow {
        let reading = &self.reading;
        ClockRow {
            policy: self.policy.clone(),
            target: self.target.clone(),
            kind: self.kind.to_owned(),
            process: record.process.clone(),
            priority: record.field_str("priority").map(str::to_owned),
            assignment_group: record.field_str("assignment_group").map(str::to_owned),
            phase: reading.phase.as_str().to_owned(),
            started_at: reading.started_at,
            due_at: reading.due_at,
            stopped_at: reading.stopped_at,
            target_seconds: reading.target.num_seconds(),
            elapsed_seconds: reading.elapsed.num_seconds(),
            breached: reading.breached,
        }
    }

    fn timer(&self) -> Option<SlaTimer> {
        let (percent, due_at) = self.next?;
        Some(SlaTimer {
            policy: self.policy.clone(),
            target: self.target.clone(),
            percent,
            target_minutes: self.target_minutes,
            due_at,
        })
    }
}

/// Writes `1h30m` style durations as ISO 8601 (`PT1H30M`).
fn iso_duration(duration: TimeDelta) -> String {
    let negative = duration < TimeDelta::zero();
    let seconds = duration.num_seconds().abs();
    let (hours, minutes, seconds) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    let mut text = String::from(if negative { "-PT" } else { "PT" });
    if hours > 0 {
        text.push_str(&format!("{hours}H"));
    }
    if minutes > 0 {
        text.push_str(&format!("{minutes}M"));
    }
    if seconds > 0 || (hours == 0 && minutes == 0) {
        text.push_str(&format!("{seconds}S"));
    }
    text
}

/// Computes the clocks of `record` at `now` from its journal, `entries` being `(instant,
/// event)` in journal order. Policies are chosen by the record's current fields; a
/// calendar that cannot be built leaves its policy's clocks out, with a warning.
pub fn compute(
    set: &DefinitionSet,
    definition: &Definition,
    record: &Record,
    entries: &[(DateTime<Utc>, &JournalEvent)],
    now: DateTime<Utc>,
) -> Vec<RecordClock> {
    let mut calendars: HashMap<&str, Option<BusinessCalendar>> = HashMap::new();
    let mut clocks = Vec::new();
    for (name, policy) in &set.sla_policies {
        if !policy.covers(&record.process, &record.fields) {
            continue;
        }
        let calendar = calendars
            .entry(policy.calendar.as_str())
            .or_insert_with(|| match business_calendar(set, &policy.calendar) {
                Ok(calendar) => Some(calendar),
                Err(error) => {
                    tracing::warn!(policy = %name, %error, "SLA policy skipped");
                    None
                }
            });
        let Some(calendar) = calendar.as_ref() else {
            continue;
        };
        for (target_name, target) in &policy.targets {
            let Some(span) = target.duration_for(&record.fields) else {
                continue;
            };
            let changes = phases(policy, target, definition, entries);
            let duration = TimeDelta::minutes(span.minutes);
            let reading = match read_clock(calendar, duration, &changes, now) {
                Ok(Some(reading)) => reading,
                Ok(None) => continue,
                Err(error) => {
                    tracing::warn!(
                        record.number = %record.number,
                        policy = %name,
                        %error,
                        "SLA clock cannot be computed"
                    );
                    continue;
                }
            };
            let reached = reached(entries, name, target_name, span.minutes);
            let mut thresholds: Vec<u32> = policy
                .thresholds
                .iter()
                .filter(|threshold| threshold.watches(target_name))
                .map(|threshold| threshold.at.0)
                .filter(|percent| !reached.contains(percent))
                .collect();
            thresholds.sort_unstable();
            thresholds.dedup();
            let next = thresholds.first().and_then(|&percent| {
                let at = reading.threshold_at(calendar, percent).ok().flatten()?;
                Some((percent, at))
            });
            clocks.push(RecordClock {
                policy: name.clone(),
                kind: policy.kind.as_str(),
                target: target_name.clone(),
                calendar: policy.calendar.clone(),
                target_minutes: span.minutes,
                reading,
                reached,
                next,
            });
        }
    }
    clocks
}

/// Lists the thresholds already reached for a target of `minutes`, from the journal.
fn reached(
    entries: &[(DateTime<Utc>, &JournalEvent)],
    policy: &str,
    target: &str,
    minutes: i64,
) -> Vec<u32> {
    let mut reached: Vec<u32> = entries
        .iter()
        .filter_map(|(_, event)| match event {
            JournalEvent::SlaThreshold {
                policy: p,
                target: t,
                percent,
                target_minutes,
                ..
            } if p == policy && t == target && *target_minutes == minutes => Some(*percent),
            _ => None,
        })
        .collect();
    reached.sort_unstable();
    reached.dedup();
    reached
}

/// Replays the journal into the phase changes of one target's clock.
fn phases(
    policy: &SlaPolicy,
    target: &TargetDef,
    definition: &Definition,
    entries: &[(DateTime<Utc>, &JournalEvent)],
) -> Vec<(DateTime<Utc>, Phase)> {
    let mut state = String::new();
    let mut fields = Fields::new();
    let mut changes: Vec<(DateTime<Utc>, Phase)> = Vec::new();
    let mut met = false;
    for (at, event) in entries {
        match event {
            JournalEvent::Created {
                state: initial,
                fields: initial_fields,
                ..
            } => {
                state = initial.clone();
                fields = initial_fields.clone();
            }
            JournalEvent::Transitioned { to, .. } => state = to.clone(),
            JournalEvent::FieldChanged { field, to, .. } => {
                if to.is_null() {
                    fields.remove(field);
                } else {
                    fields.insert(field.clone(), to.clone());
                }
            }
            _ => continue,
        }
        let phase = if met || policy.stops_in(definition, target, &state) {
            if !target.resumes && changes.iter().any(|(_, p)| *p == Phase::Running) {
                met = true;
            }
            Phase::Stopped
        } else if policy.pauses_in(definition, &state) || !policy.counts_during(&fields) {
            Phase::Paused
        } else {
            Phase::Running
        };
        if changes.last().map(|(_, last)| *last) != Some(phase) {
            changes.push((*at, phase));
        }
    }
    changes
}

/// The clocks a write leaves on a record: journal events for the clocks that started,
/// paused, resumed, stopped or changed target, and the rows and timers to store.
pub struct ClockUpdate {
    pub events: Vec<JournalEvent>,
    rows: Vec<ClockRow>,
    timers: Vec<SlaTimer>,
    at: DateTime<Utc>,
    /// False when no policy is defined, so there is nothing to store.
    active: bool,
}

/// Computes the clocks of `record` after a write that appends `events` at `at`, inside
/// the write job: reads the stored journal (none for a new record, `record.id == 0`) and
/// the stored clocks, and returns the events that describe what changed.
pub async fn prepare(
    tx: &tend_store::Transaction,
    set: &DefinitionSet,
    definition: &Definition,
    record: &Record,
    events: &[JournalEvent],
    at: DateTime<Utc>,
) -> Result<ClockUpdate, tend_store::Error> {
    if set.sla_policies.is_empty() {
        return Ok(ClockUpdate {
            events: Vec::new(),
            rows: Vec::new(),
            timers: Vec::new(),
            at,
            active: false,
        });
    }
    let (stored, before) = if record.id == 0 {
        (Vec::new(), Vec::new())
    } else {
        (
            tend_store::read_journal(tx, record.id).await?,
            tend_store::clocks::clocks_in(tx, record.id).await?,
        )
    };
    Ok(update(
        set, definition, record, &stored, &before, events, at,
    ))
}

/// Computes the clocks after a write from the stored journal and clocks. It is pure, so a
/// new record's clocks are computed before its write job is queued.
pub fn update(
    set: &DefinitionSet,
    definition: &Definition,
    record: &Record,
    stored: &[JournalEntry],
    before: &[ClockRow],
    events: &[JournalEvent],
    at: DateTime<Utc>,
) -> ClockUpdate {
    if set.sla_policies.is_empty() {
        return ClockUpdate {
            events: Vec::new(),
            rows: Vec::new(),
            timers: Vec::new(),
            at,
            active: false,
        };
    }
    let mut entries: Vec<(DateTime<Utc>, &JournalEvent)> = stored
        .iter()
        .map(|entry| (entry.at, &entry.event))
        .collect();
    entries.extend(events.iter().map(|event| (at, event)));
    let clocks = compute(set, definition, record, &entries, at);
    let mut changes = Vec::new();
    for clock in &clocks {
        let previous = before
            .iter()
            .find(|row| row.policy == clock.policy && row.target == clock.target);
        let change = match (previous, clock.reading.phase) {
            (None, _) => Some("started"),
            (Some(row), phase) if row.phase != phase.as_str() => Some(match phase {
                Phase::Running => "resumed",
                Phase::Paused => "paused",
                Phase::Stopped => "stopped",
            }),
            (Some(row), _) if row.target_seconds != clock.reading.target.num_seconds() => {
                Some("retargeted")
            }
            _ => None,
        };
        if let Some(change) = change {
            changes.push(JournalEvent::SlaClock {
                policy: clock.policy.clone(),
                target: clock.target.clone(),
                change: change.to_owned(),
                due_at: clock.reading.due_at,
            });
        }
    }
    for row in before {
        if !clocks
            .iter()
            .any(|clock| clock.policy == row.policy && clock.target == row.target)
        {
            changes.push(JournalEvent::SlaClock {
                policy: row.policy.clone(),
                target: row.target.clone(),
                change: "detached".into(),
                due_at: None,
            });
        }
    }
    ClockUpdate {
        rows: clocks.iter().map(|clock| clock.row(record)).collect(),
        timers: clocks.iter().filter_map(RecordClock::timer).collect(),
        events: changes,
        at,
        active: true,
    }
}

impl ClockUpdate {
    /// Stores the clock rows and the next SLA timers of the written `record`.
    pub async fn store(
        &self,
        tx: &tend_store::Transaction,
        record: &Record,
    ) -> Result<(), tend_store::Error> {
        if !self.active {
            return Ok(());
        }
        tend_store::clocks::replace_clocks(tx, record.id, &self.rows, self.at).await?;
        tend_store::replace_sla_timers(tx, record.id, &self.timers).await
    }
}

/// Reads the clocks of a stored record at `now`, for the record API and page.
pub fn read(
    set: &DefinitionSet,
    definition: &Definition,
    record: &Record,
    journal: &[JournalEntry],
    now: DateTime<Utc>,
) -> Vec<ClockView> {
    if set.sla_policies.is_empty() {
        return Vec::new();
    }
    let entries: Vec<(DateTime<Utc>, &JournalEvent)> = journal
        .iter()
        .map(|entry| (entry.at, &entry.event))
        .collect();
    compute(set, definition, record, &entries, now)
        .iter()
        .map(RecordClock::view)
        .collect()
}

/// Returns the effects of reaching a threshold on `record`: the field changes of its
/// escalation, as (field, new value), and the recipients to notify.
pub(crate) fn escalation(
    definition: &Definition,
    record: &Record,
    threshold: &tend_workflow::sla::ThresholdDef,
) -> (Vec<(String, Value)>, Vec<String>) {
    let mut changes = Vec::new();
    if let Some(escalate) = &threshold.escalate {
        if let Some(group) = &escalate.assignment_group {
            changes.push(("assignment_group".to_owned(), Value::String(group.clone())));
        }
        if let Some(user) = &escalate.assignee {
            changes.push(("assignee".to_owned(), Value::String(user.clone())));
        }
        if escalate.raise_priority
            && let Some(field) = definition.fields.get("priority")
            && let Some(current) = record.field_str("priority")
            && let Some(position) = field.values.iter().position(|value| value == current)
            && position > 0
        {
            changes.push((
                "priority".to_owned(),
                Value::String(field.values[position - 1].clone()),
            ));
        }
        if let Some(watcher) = &escalate.add_watcher {
            let current = record.field_str("watchers").unwrap_or_default();
            let mut watchers: Vec<&str> = current
                .split(',')
                .map(str::trim)
                .filter(|name| !name.is_empty())
                .collect();
            if !watchers.contains(&watcher.as_str()) {
                watchers.push(watcher);
                changes.push(("watchers".to_owned(), Value::String(watchers.join(", "))));
            }
        }
    }
    let mut notified = Vec::new();
    for who in &threshold.notify {
        let name = match who.as_str() {
            "assignee" | "assignment_group" | "requester" => record.field_str(who),
            other => Some(other),
        };
        if let Some(name) = name
            && !notified.iter().any(|known: &String| known == name)
        {
            notified.push(name.to_owned());
        }
    }
    (changes, notified)
}

impl crate::Commands {
    /// Fires SLA timer `timer` at `now`. It checks that the threshold is still the clock's
    /// next one and is due. Then one write consumes the timer, journals the threshold,
    /// applies the escalation, runs the threshold's rule and stores the clocks with their
    /// next timer. Returns false, writing nothing, when the timer is stale or
    /// another node fired it first.
    pub(crate) async fn fire_sla_timer(
        &self,
        timer: &tend_store::DueTimer,
        sla: &SlaTimer,
        now: DateTime<Utc>,
    ) -> Result<bool, crate::ApiError> {
        let mut attempt = 0;
        loop {
            let current = self.load_record(&timer.number).await?;
            let pinned = self.engine.pinned(&current).await?;
            let (set, definition) = (&pinned.set, &pinned.definition);
            let journal = self.store.journal(current.id).await?;
            let entries: Vec<(DateTime<Utc>, &JournalEvent)> = journal
                .iter()
                .map(|entry| (entry.at, &entry.event))
                .collect();
            let clocks = compute(set, definition, &current, &entries, now);
            let Some(clock) = clocks
                .iter()
                .find(|clock| clock.policy == sla.policy && clock.target == sla.target)
            else {
                return Ok(false);
            };
            let Some((percent, reached_at)) = clock.next else {
                return Ok(false);
            };
            if percent != sla.percent
                || clock.target_minutes != sla.target_minutes
                || reached_at > now
            {
                return Ok(false);
            }
            let Some(policy) = set.sla_policies.get(&sla.policy) else {
                return Ok(false);
            };
            let actor = tend_domain::Actor::system(crate::commands::TIMER_ACTOR);
            let links = self.linked_records(&current).await?;
            let context = tend_workflow::Context {
                definition,
                version: &set.version,
                rules: pinned.rules.as_ref(),
                actor: &actor,
                now,
                groups: &set.groups,
                links: &links,
                cmdb: None,
            };
            let mut record = current.clone();
            let mut notified = Vec::new();
            let mut changes = Vec::new();
            let mut follow_ons = Vec::new();
            let reason = format!(
                "{percent} % of the {} target of {} was used",
                sla.target, sla.policy
            );
            for threshold in policy
                .thresholds
                .iter()
                .filter(|threshold| threshold.at.0 == percent && threshold.watches(&sla.target))
            {
                let (fields, people) = escalation(definition, &record, threshold);
                for (field, value) in fields {
                    if let Some(declared) = definition.fields.get(&field)
                        && let Err(message) = tend_workflow::values::check_value(declared, &value)
                    {
                        changes.push(JournalEvent::RuleFailed {
                            rule: format!("sla:{}", sla.policy),
                            error: format!("escalation value for `{field}` is invalid: {message}"),
                        });
                        continue;
                    }
                    let old = record.fields.get(&field).cloned().unwrap_or(Value::Null);
                    if old == value {
                        continue;
                    }
                    record.fields.insert(field.clone(), value.clone());
                    changes.push(JournalEvent::FieldChanged {
                        field,
                        from: old,
                        to: value,
                        rule: Some(format!("sla:{}", sla.policy)),
                        reason: Some(reason.clone()),
                    });
                }
                for person in people {
                    if !notified.contains(&person) {
                        notified.push(person);
                    }
                }
                if let Some(rule) = &threshold.rule {
                    let outcome = tend_workflow::engine::run_timer_rule(&context, &record, rule);
                    record = outcome.record;
                    changes.extend(outcome.events);
                    follow_ons.extend(outcome.follow_ons);
                }
            }
            let mut events = vec![JournalEvent::SlaThreshold {
                policy: sla.policy.clone(),
                target: sla.target.clone(),
                percent,
                target_minutes: sla.target_minutes,
                due_at: reached_at,
                notified,
            }];
            events.extend(crate::commands::late_event(
                &format!("{} {} {percent} % threshold", sla.policy, sla.target),
                timer.due_at,
                now,
            ));
            events.extend(changes);
            record.updated_at = now;
            let pending = crate::cascade::PendingWork::encode(&events, &follow_ons, 0);
            let (set, definition) = (set.clone(), definition.clone());
            let timer_id = timer.id;
            let result = self
                .store
                .write(move |tx| {
                    Box::pin(async move {
                        if !tend_store::consume_timer(tx, timer_id).await? {
                            return Err(tend_store::Error::TimerGone { id: timer_id });
                        }
                        let clocks = prepare(tx, &set, &definition, &record, &events, now).await?;
                        events.extend(clocks.events.iter().cloned());
                        let record = tend_store::update_record(
                            tx,
                            &record,
                            crate::commands::TIMER_ACTOR,
                            &events,
                        )
                        .await?;
                        clocks.store(tx, &record).await?;
                        let queued =
                            crate::commands::queue_work(tx, &record, pending.as_deref()).await?;
                        Ok((record, events, queued))
                    })
                })
                .await;
            match result {
                Ok((record, events, queued)) => {
                    self.after_commit(&record, &events, follow_ons, 0, queued)
                        .await;
                    return Ok(true);
                }
                Err(tend_store::Error::Conflict { .. })
                    if attempt < crate::commands::MAX_CONFLICT_RETRIES =>
                {
                    attempt += 1;
                }
                Err(tend_store::Error::TimerGone { .. }) => return Ok(false),
                Err(error) => return Err(error.into()),
            }
        }
    }
}
