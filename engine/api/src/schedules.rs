//! Runs the cron schedules of `workflows/schedules/`, as the system actor `scheduler`. A due
//! run of a schedule with `open` opens its record through the normal create command, so
//! rules and SLA clocks apply as to any other record. A run of a schedule with `run_rule`
//! applies a rule to records (see [`crate::scheduled_rules`]), and one with `run_action`
//! queues a plugin action run.
//!
//! A pass ([`Commands::run_due_schedules`]) looks at every schedule of the current
//! definitions:
//! - a schedule never seen, or whose expression or time zone changed, starts at the pass:
//!   nothing runs for due times before it (no back-fill, and an edited expression never
//!   runs for past times);
//! - otherwise runs follow the schedule's latest row in `schedule_runs`. Due times older
//!   than the grace period passed while no node ran: `missed: run_once` makes one late run
//!   for the latest of them and journals how many it replaces, and `missed: skip` runs
//!   none of them. Due times within the grace period run on time, each once.
//!
//! Exactly once across nodes: a node claims a run by inserting its `(schedule, due_at)`
//! row, which is unique, so only the node whose insert lands owns the run. The record is
//! then created with the idempotency key `schedule:NAME:DUE`, whose row is written in the
//! same transaction as the record, and the claim is marked with the record's number. A node
//! that stops between the claim and the record leaves a claimed row, which any node takes
//! over after [`CLAIM_LEASE`]; the idempotency key makes that second create return the
//! record of the first if it was written. So each due time opens at most one record (the
//! key) and at least one (the takeover). A rule run keeps its own key per record.
//!
//! DESIGN.md names a PostgreSQL advisory lock for this. The rows replace it for three
//! reasons. A lock ends with its session or transaction, but the create runs in another
//! transaction of the write funnel, so the lock would not cover it. A lock leaves no trace
//! that a run happened, which the next pass and a restarted server need. And the rows
//! work the same on SQLite and PostgreSQL.

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use chrono_tz::Tz;
use tend_domain::{Actor, Command, Fields, JournalEvent};
use tend_sla::CronSchedule;
use tend_store::schedules::{self as runs, NewScheduleRun, RunOutcome};
use tend_workflow::DefinitionSet;
use tend_workflow::jobs::{MissedRuns, OpenRecord, RuleRun, ScheduleAction, ScheduledJob};

use crate::actions::ScheduledQueue;
use crate::commands::{Commands, NewRecord};
use crate::error::ApiError;
use crate::scheduled_rules::RuleRunSummary;

/// Name of the system actor that runs schedules: it opens their records and writes the
/// effects of their rules.
pub const SCHEDULE_ACTOR: &str = "scheduler";

/// How long a claimed run may stay without its record before another node takes it over.
/// Opening a record takes milliseconds; a claim this old belongs to a node that stopped.
pub const CLAIM_LEASE: TimeDelta = TimeDelta::minutes(5);

/// Up to this many missed due times are counted exactly; more are reported as "or more".
/// The bound keeps a pass after a long downtime short for schedules that run every few
/// seconds.
const MISSED_COUNT_LIMIT: usize = 1_000;

/// At most this many due times run on time in one pass; the rest wait for the next pass.
const ON_TIME_LIMIT: usize = 1_000;

/// Runs asked of the cron evaluator at once. Each call walks back three hours of wall time
/// first (see `tend_sla::CronSchedule::next_runs`), so frequent schedules need large
/// batches, and the evaluator's sort makes very large ones slow.
///
/// NOTE: that walk counts against the evaluator's budget of 10,000 candidate times, so
/// `next_runs` returns no run for a schedule due every second (10,800 times in three hours),
/// and such a schedule never runs. Every two seconds and less often work.
const BATCH: usize = 128;

/// Claimed runs taken over from stopped nodes in one pass.
const TAKEOVER_BATCH: u64 = 100;

/// Outcome of one due time in a pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleRunReport {
    pub schedule: String,
    pub due_at: DateTime<Utc>,
    /// `Opened`, `Failed`, `Skipped` or `Started`.
    pub outcome: RunOutcome,
    pub record_number: Option<String>,
    pub late: bool,
    /// Number of missed due times that the run catches up with, or that the skip leaves out.
    pub missed: i64,
    /// Counts of the run of a `run_rule` schedule.
    pub summary: Option<RuleRunSummary>,
}

/// The parsed expression and time zone of a schedule.
struct Plan {
    cron: CronSchedule,
    tz: Tz,
}

impl Plan {
    fn of(job: &ScheduledJob) -> Result<Plan, String> {
        let cron = CronSchedule::parse(&job.cron).map_err(|error| error.to_string())?;
        let tz = job.timezone.parse::<Tz>().map_err(|_| {
            format!(
                "unknown time zone `{}`: use an IANA name such as Europe/Berlin",
                job.timezone
            )
        })?;
        Ok(Plan { cron, tz })
    }

    /// Lists the due times in `(after, until]`, earliest first, at most `limit` of them.
    fn due_times(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Vec<DateTime<Utc>> {
        let mut found = Vec::new();
        let mut from = after;
        while found.len() < limit {
            let batch = self.cron.next_runs(self.tz, from, BATCH);
            let exhausted = batch.len() < BATCH;
            let Some(&last) = batch.last() else {
                break;
            };
            for at in batch {
                if at > until || found.len() == limit {
                    return found;
                }
                found.push(at);
            }
            if exhausted {
                break;
            }
            from = last;
        }
        found
    }

    /// Describes the due times in `(after, until]`: how many (exactly up to
    /// [`MISSED_COUNT_LIMIT`]) and the latest; `None` when there is none.
    fn missed(&self, after: DateTime<Utc>, until: DateTime<Utc>) -> Option<Missed> {
        let counted = self.due_times(after, until, MISSED_COUNT_LIMIT);
        let latest = *counted.last()?;
        if counted.len() < MISSED_COUNT_LIMIT {
            return Some(Missed {
                count: counted.len(),
                latest,
            });
        }
        // Too many to count: find the latest in growing windows that end at `until`. The
        // first window with a due time contains few, because the one before contained none.
        let windows = [
            TimeDelta::minutes(1),
            TimeDelta::hours(1),
            TimeDelta::days(1),
            TimeDelta::days(32),
            TimeDelta::days(367),
        ];
        let mut from = latest;
        for window in windows {
            let start = (until - window).max(latest);
            if !self.due_times(start, until, 1).is_empty() {
                from = start;
                break;
            }
        }
        let mut latest = latest;
        loop {
            let more = self.due_times(from, until, MISSED_COUNT_LIMIT);
            match more.last() {
                Some(&last) => {
                    latest = last;
                    from = last;
                }
                None => break,
            }
            if more.len() < MISSED_COUNT_LIMIT {
                break;
            }
        }
        Some(Missed {
            count: MISSED_COUNT_LIMIT,
            latest,
        })
    }
}

/// Due times that passed while no node ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Missed {
    /// Number of them, counted up to [`MISSED_COUNT_LIMIT`].
    count: usize,
    latest: DateTime<Utc>,
}

/// Returns the idempotency key of the create that a run makes (the create prefixes it with
/// the actor's name).
pub fn run_key(schedule: &str, due_at: DateTime<Utc>) -> String {
    format!(
        "schedule:{schedule}:{}",
        due_at.to_rfc3339_opts(SecondsFormat::Secs, true)
    )
}

impl Commands {
    /// Runs the schedules of the current definitions that are due at `now` (see the module
    /// documentation). A due time more than `grace` before `now` counts as missed. The
    /// server passes a grace of twice its pass interval, so a run it makes on time never
    /// counts as missed. Also takes over runs that a stopped node claimed
    /// more than [`CLAIM_LEASE`] ago without opening their record.
    ///
    /// Every schedule is tried even when one fails; the first failure is returned after
    /// the others ran, and each is logged.
    pub async fn run_due_schedules(
        &self,
        now: DateTime<Utc>,
        grace: TimeDelta,
    ) -> Result<Vec<ScheduleRunReport>, ApiError> {
        let set = self.engine.definitions();
        let mut reports = Vec::new();
        let mut first_error = None;
        if let Err(error) = self.take_over_runs(&set, now, &mut reports).await {
            tracing::error!(%error, "taking over scheduled runs of stopped nodes failed");
            first_error.get_or_insert(error);
        }
        for (name, job) in &set.schedules {
            if let Err(error) = self.run_schedule(name, job, now, grace, &mut reports).await {
                tracing::error!(schedule = name, %error, "running a schedule failed; it is tried again at the next pass");
                first_error.get_or_insert(error);
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(reports),
        }
    }

    async fn run_schedule(
        &self,
        name: &str,
        job: &ScheduledJob,
        now: DateTime<Utc>,
        grace: TimeDelta,
        reports: &mut Vec<ScheduleRunReport>,
    ) -> Result<(), ApiError> {
        let plan = match Plan::of(job) {
            Ok(plan) => plan,
            Err(message) => {
                // `tend validate` reports it too; the other schedules still run.
                tracing::error!(schedule = name, "the schedule does not run: {message}");
                return Ok(());
            }
        };
        let cursor = match self.store.last_schedule_run(name).await? {
            None => {
                tracing::info!(
                    schedule = name,
                    next = ?plan.due_times(now, DateTime::<Utc>::MAX_UTC, 1).first(),
                    "a new schedule runs from now on; due times before now do not run"
                );
                return self.start(name, job, now, reports).await;
            }
            Some(last) if last.cron != job.cron || last.timezone != job.timezone => {
                tracing::info!(
                    schedule = name,
                    from = format!("{} in {}", last.cron, last.timezone),
                    to = format!("{} in {}", job.cron, job.timezone),
                    "a schedule changed: it runs by the new expression from now on, and due times before now do not run"
                );
                // After the latest row, so that it becomes the latest row even when this
                // node's clock is behind the node that wrote that row.
                let at = now.max(last.due_at + TimeDelta::microseconds(1));
                return self.start(name, job, at, reports).await;
            }
            Some(last) => last.due_at,
        };
        let late_before = now - grace;
        if cursor < late_before
            && let Some(missed) = plan.missed(cursor, late_before)
        {
            let count = i64::try_from(missed.count).unwrap_or(i64::MAX);
            match job.missed {
                MissedRuns::RunOnce => {
                    self.run(name, job, missed.latest, now, true, count, reports)
                        .await?;
                }
                MissedRuns::Skip => {
                    let row = new_row(name, job, missed.latest, RunOutcome::Skipped, now);
                    let row = NewScheduleRun {
                        missed: count,
                        late: true,
                        ..row
                    };
                    if self.insert_row(row).await? {
                        tracing::warn!(
                            schedule = name,
                            missed = count,
                            latest = %missed.latest,
                            "skipped runs that were due while no server ran, as `missed: skip` asks"
                        );
                        reports.push(ScheduleRunReport {
                            schedule: name.to_owned(),
                            due_at: missed.latest,
                            outcome: RunOutcome::Skipped,
                            record_number: None,
                            late: true,
                            missed: count,
                            summary: None,
                        });
                    }
                }
            }
        }
        for due in plan.due_times(cursor.max(late_before), now, ON_TIME_LIMIT) {
            self.run(name, job, due, now, false, 0, reports).await?;
        }
        Ok(())
    }

    /// Writes the row that a schedule runs from, at `at`.
    async fn start(
        &self,
        name: &str,
        job: &ScheduledJob,
        at: DateTime<Utc>,
        reports: &mut Vec<ScheduleRunReport>,
    ) -> Result<(), ApiError> {
        if self
            .insert_row(new_row(name, job, at, RunOutcome::Started, at))
            .await?
        {
            reports.push(ScheduleRunReport {
                schedule: name.to_owned(),
                due_at: at,
                outcome: RunOutcome::Started,
                record_number: None,
                late: false,
                missed: 0,
                summary: None,
            });
        }
        Ok(())
    }

    async fn insert_row(&self, row: NewScheduleRun) -> Result<bool, ApiError> {
        Ok(self
            .store
            .write(move |tx| Box::pin(async move { runs::insert_schedule_run(tx, &row).await }))
            .await?)
    }

    /// Claims the run of `name` due at `due` and, when this node owns it, opens its record.
    #[allow(clippy::too_many_arguments)]
    async fn run(
        &self,
        name: &str,
        job: &ScheduledJob,
        due: DateTime<Utc>,
        now: DateTime<Utc>,
        late: bool,
        missed: i64,
        reports: &mut Vec<ScheduleRunReport>,
    ) -> Result<(), ApiError> {
        let claim = NewScheduleRun {
            late,
            missed,
            ..new_row(name, job, due, RunOutcome::Claimed, now)
        };
        if !self.insert_row(claim).await? {
            tracing::debug!(schedule = name, due_at = %due, "another node has this scheduled run");
            return Ok(());
        }
        self.carry_out(name, job, due, now, late, missed, reports)
            .await
    }

    /// Does what a claimed run is for: opens its record or applies its rule.
    #[allow(clippy::too_many_arguments)]
    async fn carry_out(
        &self,
        name: &str,
        job: &ScheduledJob,
        due: DateTime<Utc>,
        now: DateTime<Utc>,
        late: bool,
        missed: i64,
        reports: &mut Vec<ScheduleRunReport>,
    ) -> Result<(), ApiError> {
        match job.action() {
            Ok(ScheduleAction::Open(open)) => {
                self.open_run(name, &job.timezone, open, due, now, late, missed, reports)
                    .await
            }
            Ok(ScheduleAction::RunRule(run)) => {
                self.rule_run(name, run, due, now, late, missed, reports)
                    .await
            }
            Ok(ScheduleAction::RunAction(wanted)) => {
                let (outcome, summary) = match self
                    .queue_scheduled_action(name, wanted, due, now)
                    .await?
                {
                    ScheduledQueue::Queued(id) => {
                        tracing::info!(
                            schedule = name,
                            due_at = %due,
                            run = id,
                            late,
                            "a schedule queued its plugin action"
                        );
                        (RunOutcome::Ran, None)
                    }
                    ScheduledQueue::Rejected(reason) => {
                        tracing::error!(
                            schedule = name,
                            due_at = %due,
                            "a schedule's plugin action cannot run: {reason}; correct its `run_action`"
                        );
                        self.fail_run(name, due, &reason).await?;
                        (RunOutcome::Failed, None)
                    }
                    ScheduledQueue::Gone => return Ok(()),
                };
                reports.push(ScheduleRunReport {
                    schedule: name.to_owned(),
                    due_at: due,
                    outcome,
                    record_number: None,
                    late,
                    missed,
                    summary,
                });
                Ok(())
            }
            Err(message) => {
                self.fail_run(name, due, message).await?;
                reports.push(ScheduleRunReport {
                    schedule: name.to_owned(),
                    due_at: due,
                    outcome: RunOutcome::Failed,
                    record_number: None,
                    late,
                    missed,
                    summary: None,
                });
                Ok(())
            }
        }
    }

    /// Marks a claimed run failed with `reason`.
    async fn fail_run(&self, name: &str, due: DateTime<Utc>, reason: &str) -> Result<(), ApiError> {
        let schedule = name.to_owned();
        let reason = reason.to_owned();
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    runs::finish_schedule_run(tx, &schedule, due, Err(&reason)).await
                })
            })
            .await?;
        Ok(())
    }

    /// Applies the rule of a claimed run to its records and marks the run with what it
    /// did. An error reading the records leaves the run claimed, to be taken over after the
    /// lease; the records it changed before are not changed again.
    #[allow(clippy::too_many_arguments)]
    async fn rule_run(
        &self,
        name: &str,
        run: &RuleRun,
        due: DateTime<Utc>,
        now: DateTime<Utc>,
        late: bool,
        missed: i64,
        reports: &mut Vec<ScheduleRunReport>,
    ) -> Result<(), ApiError> {
        let summary = self.apply_scheduled_rule(name, run, due, now, late).await?;
        let schedule = name.to_owned();
        let text = summary.to_string();
        self.store
            .write(move |tx| {
                Box::pin(async move { runs::finish_rule_run(tx, &schedule, due, &text).await })
            })
            .await?;
        if late {
            tracing::warn!(
                schedule = name,
                due_at = %due,
                rule = run.rule,
                missed,
                "a scheduled rule ran late, because no server ran at its due time: {summary}"
            );
        } else {
            tracing::info!(
                schedule = name,
                due_at = %due,
                rule = run.rule,
                "a scheduled rule ran: {summary}"
            );
        }
        reports.push(ScheduleRunReport {
            schedule: name.to_owned(),
            due_at: due,
            outcome: RunOutcome::Ran,
            record_number: None,
            late,
            missed,
            summary: Some(summary),
        });
        Ok(())
    }

    /// Opens the record of a claimed run and marks the run with it. A rejected create marks
    /// the run failed; any other error leaves it claimed, to be taken over after the lease.
    #[allow(clippy::too_many_arguments)]
    async fn open_run(
        &self,
        name: &str,
        timezone: &str,
        open: &OpenRecord,
        due: DateTime<Utc>,
        now: DateTime<Utc>,
        late: bool,
        missed: i64,
        reports: &mut Vec<ScheduleRunReport>,
    ) -> Result<(), ApiError> {
        let opened = self
            .open_record(name, timezone, open, due, now, late, missed)
            .await;
        let (result, outcome) = match &opened {
            Ok(number) => (Ok(number.clone()), RunOutcome::Opened),
            Err(ApiError::Rejected(rejection)) => (Err(rejection.to_string()), RunOutcome::Failed),
            Err(_) => return opened.map(|_| ()),
        };
        let schedule = name.to_owned();
        let stored = result.clone();
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    let result = stored.as_deref().map_err(String::as_str);
                    runs::finish_schedule_run(tx, &schedule, due, result).await
                })
            })
            .await?;
        match &result {
            Ok(number) if late => tracing::warn!(
                schedule = name,
                due_at = %due,
                record.number = number,
                missed,
                "a scheduled run started late, because no server ran at its due time"
            ),
            Ok(number) => tracing::info!(
                schedule = name,
                due_at = %due,
                record.number = number,
                "a schedule opened a record"
            ),
            Err(reason) => tracing::error!(
                schedule = name,
                due_at = %due,
                process = open.process,
                "a schedule could not open its record: {reason}; correct the schedule's `open`"
            ),
        }
        reports.push(ScheduleRunReport {
            schedule: name.to_owned(),
            due_at: due,
            outcome,
            record_number: result.ok(),
            late,
            missed,
            summary: None,
        });
        Ok(())
    }

    /// Creates the record of a run, idempotent per schedule and due time, and journals a
    /// late run's delay as a comment. Returns the record's number.
    #[allow(clippy::too_many_arguments)]
    async fn open_record(
        &self,
        name: &str,
        timezone: &str,
        open: &OpenRecord,
        due: DateTime<Utc>,
        now: DateTime<Utc>,
        late: bool,
        missed: i64,
    ) -> Result<String, ApiError> {
        let actor = Actor::system(SCHEDULE_ACTOR);
        let input = NewRecord {
            title: open.title.clone(),
            description: open.description.clone(),
            fields: open.fields.clone(),
            idempotency_key: Some(run_key(name, due)),
            preset: Fields::new(),
        };
        let process = &open.process;
        let created = match self
            .create_journaled(&actor, process, input.clone(), now)
            .await
        {
            // Another node created it at the same moment and its key row landed first;
            // asking again returns that record.
            Err(ApiError::BadRequest {
                code: "duplicate", ..
            }) => self.create_journaled(&actor, process, input, now).await?,
            other => other?,
        };
        let number = created.record.number.clone();
        let noted = created.journal.iter().any(|entry| {
            entry.actor == SCHEDULE_ACTOR && matches!(entry.event, JournalEvent::Commented { .. })
        });
        if late && !noted {
            let text = late_note(name, timezone, due, now, missed);
            let command = Command::Comment { text };
            if let Err(error) = self.apply_at(&actor, &number, command, Some(now)).await {
                tracing::warn!(
                    schedule = name,
                    record.number = number,
                    %error,
                    "journaling that a scheduled run started late failed"
                );
            }
        }
        Ok(number)
    }

    /// Takes over runs claimed by nodes that stopped before opening their record.
    async fn take_over_runs(
        &self,
        set: &DefinitionSet,
        now: DateTime<Utc>,
        reports: &mut Vec<ScheduleRunReport>,
    ) -> Result<(), ApiError> {
        let stale_before = now - CLAIM_LEASE;
        let stale = self
            .store
            .write(move |tx| {
                Box::pin(async move {
                    runs::claim_stale_schedule_runs(tx, stale_before, now, TAKEOVER_BATCH).await
                })
            })
            .await?;
        for run in stale {
            tracing::warn!(
                schedule = run.schedule,
                due_at = %run.due_at,
                "taking over a scheduled run whose node stopped before it opened the record"
            );
            let Some(job) = set.schedules.get(&run.schedule) else {
                let schedule = run.schedule.clone();
                let due = run.due_at;
                self.store
                    .write(move |tx| {
                        Box::pin(async move {
                            runs::finish_schedule_run(
                                tx,
                                &schedule,
                                due,
                                Err("the schedule was removed before the run opened its record"),
                            )
                            .await
                        })
                    })
                    .await?;
                continue;
            };
            self.carry_out(
                &run.schedule,
                job,
                run.due_at,
                now,
                run.late,
                run.missed,
                reports,
            )
            .await?;
        }
        Ok(())
    }
}

fn new_row(
    name: &str,
    job: &ScheduledJob,
    due_at: DateTime<Utc>,
    outcome: RunOutcome,
    now: DateTime<Utc>,
) -> NewScheduleRun {
    NewScheduleRun {
        schedule: name.to_owned(),
        due_at,
        outcome,
        ran_at: now,
        late: false,
        missed: 0,
        cron: job.cron.clone(),
        timezone: job.timezone.clone(),
    }
}

/// Writes the comment a late run leaves on its record.
fn late_note(
    name: &str,
    timezone: &str,
    due: DateTime<Utc>,
    now: DateTime<Utc>,
    missed: i64,
) -> String {
    let local = match timezone.parse::<Tz>() {
        Ok(tz) => due.with_timezone(&tz).to_rfc3339(),
        Err(_) => due.to_rfc3339(),
    };
    let delay = describe(now - due);
    let mut note = format!(
        "Schedule `{name}` opened this record {delay} after its run due at {local}, because \
         no server was running then."
    );
    if missed > 1 {
        let or_more = if missed >= MISSED_COUNT_LIMIT as i64 {
            " or more"
        } else {
            ""
        };
        note.push_str(&format!(
            " This one run catches up with {missed}{or_more} missed runs (`missed: run_once`)."
        ));
    }
    note
}

/// Describes a duration in its two largest units, such as "3 hours 10 minutes".
fn describe(delta: TimeDelta) -> String {
    let seconds = delta.num_seconds().max(0);
    let units = [
        (86_400, "day", "days"),
        (3_600, "hour", "hours"),
        (60, "minute", "minutes"),
        (1, "second", "seconds"),
    ];
    let mut parts = Vec::new();
    let mut rest = seconds;
    for (size, one, many) in units {
        let count = rest / size;
        rest %= size;
        if count > 0 && parts.len() < 2 {
            parts.push(format!("{count} {}", if count == 1 { one } else { many }));
        } else if !parts.is_empty() {
            // Two units side by side only: "1 day 5 seconds" would mislead.
            break;
        }
    }
    if parts.is_empty() {
        "0 seconds".to_owned()
    } else {
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    fn plan(cron: &str, timezone: &str) -> Plan {
        Plan {
            cron: CronSchedule::parse(cron).unwrap(),
            tz: timezone.parse().unwrap(),
        }
    }

    #[test]
    fn due_times_in_half_open_window() {
        let hourly = plan("0 * * * *", "UTC");
        let times = hourly.due_times(at("2027-01-01T10:00:00Z"), at("2027-01-01T13:00:00Z"), 10);
        assert_eq!(
            times,
            [
                at("2027-01-01T11:00:00Z"),
                at("2027-01-01T12:00:00Z"),
                at("2027-01-01T13:00:00Z")
            ]
        );
        assert_eq!(
            hourly
                .due_times(at("2027-01-01T10:00:00Z"), at("2027-01-01T13:00:00Z"), 2)
                .len(),
            2
        );
        assert!(
            hourly
                .due_times(at("2027-01-01T10:00:00Z"), at("2027-01-01T10:59:59Z"), 10)
                .is_empty()
        );
    }

    #[test]
    fn due_times_cross_batches() {
        let every_minute = plan("* * * * *", "UTC");
        let times = every_minute.due_times(
            at("2027-01-01T00:00:00Z"),
            at("2027-01-01T05:00:00Z"),
            1_000,
        );
        assert_eq!(times.len(), 300);
        assert_eq!(times.last(), Some(&at("2027-01-01T05:00:00Z")));
        assert!(
            times
                .windows(2)
                .all(|pair| pair[1] - pair[0] == TimeDelta::minutes(1))
        );
    }

    #[test]
    fn missed_counts_and_latest() {
        let hourly = plan("0 * * * *", "Europe/Berlin");
        let missed = hourly
            .missed(at("2027-01-01T10:00:00Z"), at("2027-01-01T15:30:00Z"))
            .unwrap();
        assert_eq!(missed.count, 5);
        assert_eq!(missed.latest, at("2027-01-01T15:00:00Z"));
        assert_eq!(
            hourly.missed(at("2027-01-01T10:00:00Z"), at("2027-01-01T10:30:00Z")),
            None
        );
    }

    #[test]
    fn missed_past_limit_finds_latest() {
        let every_minute = plan("* * * * *", "UTC");
        let missed = every_minute
            .missed(at("2027-01-01T00:00:00Z"), at("2027-01-03T12:34:56Z"))
            .unwrap();
        assert_eq!(missed.count, MISSED_COUNT_LIMIT);
        assert_eq!(missed.latest, at("2027-01-03T12:34:00Z"));
        let every_ten_seconds = plan("*/10 * * * * *", "UTC");
        let missed = every_ten_seconds
            .missed(at("2027-01-01T00:00:00Z"), at("2027-01-02T00:00:01.5Z"))
            .unwrap();
        assert_eq!(missed.count, MISSED_COUNT_LIMIT);
        assert_eq!(missed.latest, at("2027-01-02T00:00:00Z"));
    }

    #[test]
    fn run_key_names_schedule_and_due() {
        assert_eq!(
            run_key("cmdb_verification", at("2027-03-28T03:00:00+02:00")),
            "schedule:cmdb_verification:2027-03-28T01:00:00Z"
        );
    }

    #[test]
    fn delay_uses_two_units() {
        assert_eq!(describe(TimeDelta::seconds(59)), "59 seconds");
        assert_eq!(describe(TimeDelta::minutes(190)), "3 hours 10 minutes");
        assert_eq!(describe(TimeDelta::hours(49)), "2 days 1 hour");
        assert_eq!(describe(TimeDelta::seconds(86_405)), "1 day");
        assert_eq!(describe(TimeDelta::zero()), "0 seconds");
    }
}
